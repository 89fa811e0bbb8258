"""Exact, cheap ablation of one layer's neurons, measured on the next layer's neurons.

A neuron j of layer l adds a_j * w_j to the residual stream, w_j being its column of the MLP's
output projection. Changing its activation by delta at some positions therefore changes the
residual stream after block l by exactly delta * w_j there, and nothing else: block l + 1 can be
rerun alone on the cached, patched stream. The inputs block l + 1 was called with (its hidden
states and every keyword the model computed for it: masks, rotary position embeddings) are
cached once per batch, so a patch costs one block, not a forward pass. Where the architecture
normalises after the residual sum (BERT's post-LN blocks), the cache holds the sum before that
LayerNorm, and the patch is added there before normalising again.

Used for the paper's suggested next step: do a neuron's top-segment activations matter more to
the next layer than its lower ones, per unit of activation removed?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .models import LoadedModel, _get


@dataclass(frozen=True)
class Readout:
    """Where an architecture's neurons write into the residual stream."""

    projection: str  # dotted path in a block of the MLP's output projection
    neuron_axis: int  # axis of its weight indexed by the neuron
    post_norm: str | None  # dotted path of a LayerNorm applied after the residual sum, if any


READOUTS = {
    "gpt2": Readout("mlp.c_proj", 0, None),  # Conv1D weight: (n_inner, n_embd)
    "llama": Readout("mlp.down_proj", 1, None),  # Linear weight: (hidden, intermediate)
    "bert": Readout("output.dense", 1, "output.LayerNorm"),  # post-LN: LN(sum + mlp out)
}


class _Captured(Exception):
    """Stops a forward pass once everything needed is cached."""


@dataclass
class BatchCache:
    """One batch's cached state around layer l: its neurons, the next layer's neurons, and what
    block l + 1 was called with (or, post-LN, the residual sum before block l's LayerNorm)."""

    acts: torch.Tensor  # [B, T, N] layer l
    next_acts: torch.Tensor  # [B, T, N'] layer l + 1, unpatched
    block_args: tuple
    block_kwargs: dict
    pre_norm_sum: torch.Tensor | None


class NextLayerAblation:
    """Patches one neuron of `layer` and returns the neurons of `layer + 1`, exactly."""

    def __init__(self, loaded: LoadedModel, layer: int):
        if loaded.arch.name not in READOUTS:
            raise ValueError(f"no ablation readout for architecture {loaded.arch.name}")
        self.loaded = loaded
        self.layer = layer
        self.readout = READOUTS[loaded.arch.name]
        block = loaded.block(layer)
        weight = _get(block, self.readout.projection).weight.detach()
        self.write = weight if self.readout.neuron_axis == 0 else weight.T  # [N, d]
        self.norm = _get(block, self.readout.post_norm) if self.readout.post_norm else None
        self.next_block = loaded.block(layer + 1)

    def cache(self, input_ids: torch.Tensor) -> BatchCache:
        """Run the model up to block l + 1's neurons once, caching what patches need."""
        out: dict = {}
        arch = self.loaded.arch
        this = _get(self.loaded.block(self.layer), arch.neuron_module)
        nxt = _get(self.next_block, arch.neuron_module)
        handles = [
            _neuron_hook(this, arch.capture, lambda a: out.__setitem__("acts", a.clone())),
            _neuron_hook(nxt, arch.capture, lambda a: _stop(out, "next_acts", a.clone())),
            self.next_block.register_forward_pre_hook(
                lambda _m, args, kwargs: out.update(args=args, kwargs=kwargs), with_kwargs=True),
        ]
        if self.norm is not None:
            handles.append(self.norm.register_forward_pre_hook(
                lambda _m, args: out.__setitem__("sum", args[0].clone())))
        try:  # no key/value cache: block l + 1 must see exactly this batch when rerun
            with torch.inference_mode():
                self.loaded.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                  use_cache=False)
        except _Captured:
            pass
        finally:
            for h in handles:
                h.remove()
        return BatchCache(out["acts"], out["next_acts"], out["args"], out["kwargs"],
                          out.get("sum"))

    def next_layer(self, cache: BatchCache, neuron: int, delta: torch.Tensor,
                   rows: torch.Tensor | None = None) -> torch.Tensor:
        """Layer l + 1's neurons [B, T, N'] when neuron `neuron` of layer l changes by `delta`
        [B, T] (zero-ablation: delta = -acts; mean-ablation: delta = mean - acts, at the chosen
        positions and 0 elsewhere). With `rows` (window indices), only those windows are rerun
        (block l + 1 sees each window on its own) and `delta` is [len(rows), T]: the cost is
        then that of the windows used. Compare such a result with an unpatched rerun of the
        same rows (delta 0), not with the cache: float products depend on the batch shape."""
        args, kwargs = cache.block_args, cache.block_kwargs
        pre_norm = cache.pre_norm_sum
        if rows is not None:
            size = cache.acts.shape[0]
            args, kwargs = _take_rows(args, rows, size), _take_rows(kwargs, rows, size)
            pre_norm = None if pre_norm is None else pre_norm[rows]
        change = delta[..., None].to(self.write.dtype) * self.write[neuron]
        hidden = self.norm(pre_norm + change) if self.norm is not None else args[0] + change
        out: dict = {}
        arch = self.loaded.arch
        handle = _neuron_hook(_get(self.next_block, arch.neuron_module), arch.capture,
                              lambda a: _stop(out, "acts", a))
        try:
            with torch.inference_mode():
                self.next_block(hidden, *args[1:], **kwargs)
        except _Captured:
            pass
        finally:
            handle.remove()
        return out["acts"]


def _take_rows(value, rows: torch.Tensor, size: int):
    """`value` (block arguments: tensors, tuples, dicts) with every per-window tensor (two or
    more axes, the first of length `size`) cut to `rows`; broadcast and 1-D tensors (position
    ids of shape [1, T], cache positions) are kept whole."""
    if isinstance(value, torch.Tensor):
        return value[rows] if value.ndim >= 2 and value.shape[0] == size else value
    if isinstance(value, (tuple, list)):
        return type(value)(_take_rows(v, rows, size) for v in value)
    if isinstance(value, dict):
        return {k: _take_rows(v, rows, size) for k, v in value.items()}
    return value


def _stop(store: dict, key: str, value: torch.Tensor) -> None:
    store[key] = value
    raise _Captured


def _neuron_hook(module: nn.Module, capture: str, deliver):
    if capture == "output":
        return module.register_forward_hook(lambda _m, _i, out: deliver(out))
    return module.register_forward_pre_hook(lambda _m, inp: deliver(inp[0]))


CONDITIONS = ("top", "lower", "random")


def effect_ratio(windows: dict[str, np.ndarray], rng: np.random.Generator,
                 n_boot: int) -> tuple[float, float, float]:
    """log of (top effect per unit removed) / (lower effect per unit removed), pooled over
    windows, with a bootstrap 95% interval resampling windows. NaN without both conditions."""
    def log_ratio(index):
        top = windows["top_effect"][index].sum() / windows["top_mass"][index].sum()
        low = windows["lower_effect"][index].sum() / windows["lower_mass"][index].sum()
        return np.log(top / low)

    n = windows["top_effect"].size
    if n == 0 or windows["top_mass"].sum() <= 0 or windows["lower_mass"].sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    with np.errstate(all="ignore"):
        draws = np.array([log_ratio(rng.integers(0, n, n)) for _ in range(n_boot)])
    draws = draws[np.isfinite(draws)]
    lo, hi = np.percentile(draws, [2.5, 97.5]) if draws.size else (np.nan, np.nan)
    return float(log_ratio(np.arange(n))), float(lo), float(hi)
