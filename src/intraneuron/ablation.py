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

    def next_layer(self, cache: BatchCache, neuron: int, delta: torch.Tensor) -> torch.Tensor:
        """Layer l + 1's neurons [B, T, N'] when neuron `neuron` of layer l changes by `delta`
        [B, T] (zero-ablation: delta = -acts; mean-ablation: delta = mean - acts, at the chosen
        positions and 0 elsewhere)."""
        change = delta[..., None].to(self.write.dtype) * self.write[neuron]
        if self.norm is not None:
            hidden = self.norm(cache.pre_norm_sum + change)
        else:
            hidden = cache.block_args[0] + change
        out: dict = {}
        arch = self.loaded.arch
        handle = _neuron_hook(_get(self.next_block, arch.neuron_module), arch.capture,
                              lambda a: _stop(out, "acts", a))
        try:
            with torch.inference_mode():
                self.next_block(hidden, *cache.block_args[1:], **cache.block_kwargs)
        except _Captured:
            pass
        finally:
            handle.remove()
        return out["acts"]


def _stop(store: dict, key: str, value: torch.Tensor) -> None:
    store[key] = value
    raise _Captured


def _neuron_hook(module: nn.Module, capture: str, deliver):
    if capture == "output":
        return module.register_forward_hook(lambda _m, _i, out: deliver(out))
    return module.register_forward_pre_hook(lambda _m, inp: deliver(inp[0]))
