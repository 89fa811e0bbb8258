"""The ablation stage: do a neuron's top-segment activations matter more to the next layer than
its lower ones, per unit of activation removed?

For a stratified, seeded sample of layer l's analysed neurons, three conditions remove the
neuron's activation (zero- or mean-ablation) in the same corpus windows: at occurrences of its
top coarse segment's core tokens (top), of its other segments' core tokens (lower), and at
random positions holding neither (random). In every window used, the three conditions remove
exactly the same activation mass: positions are taken in a random order until the window's
budget (the smallest mass any condition could remove there) is reached, the last one only
partly. Only windows where all three can remove something count, so each comparison is paired
within a window's context. The change of every layer l + 1 neuron comes from
`intraneuron.ablation` (exact patching of block l + 1 on a cached batch).

Per layer, the neurons' log ratios get a three-way verdict (supported, opposite, inconclusive;
the rule and its power in `intraneuron.signtest`), the minimal detectable effect at the sample
size used, and the swapped control: the same rule's call rate over many random swaps of each
neuron's top and lower conditions.

Only layers below the last requested one are ablated: the last has no next layer loaded.
Every random draw of a neuron is seeded by (seed, layer, neuron) and every neuron sees the same
batches in corpus order, so rows do not depend on how neurons are split into parts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import signtest
from .ablation import CONDITIONS, NextLayerAblation, effect_ratio
from .models import LoadedModel
from .plan import ablated_layers  # noqa: F401  (part of this stage's interface)

log = logging.getLogger("intraneuron")



def settings(ablation: dict) -> dict:
    """The `ablation` config section with the schema's defaults filled in (written only there)."""
    from .config import with_defaults

    return with_defaults({"ablation": dict(ablation)})["ablation"]


# ------------------------------------------------------------------------------ which neurons

def sample_neurons(neurons: pd.DataFrame, layer: int, n: int, seed: int) -> np.ndarray:
    """`n` analysed neurons of `layer`, one drawn at random from each of `n` equal strata of the
    ordering by top-segment homogeneity z (undefined z last), so weak and strong neurons are
    both represented. Sorted ids; deterministic in (seed, layer)."""
    rows = neurons[(neurons["layer"] == layer) & (neurons["kind"] == "neuron")
                   & ~neurons["excluded"].astype(bool)]
    z = pd.to_numeric(rows["top_coarse_z"], errors="coerce").to_numpy(dtype=float)
    ids = rows["neuron"].to_numpy(dtype=np.int64)
    order = np.lexsort((ids, np.nan_to_num(z, nan=np.inf), np.isnan(z)))
    if n >= ids.size:
        return np.sort(ids)
    rng = np.random.default_rng([seed, layer])
    picks = [stratum[rng.integers(stratum.size)] for stratum in np.array_split(order, n)]
    return np.sort(ids[picks])


def part_neurons(sample: np.ndarray, parts: int, part: int) -> np.ndarray:
    """The neurons of one part: every `parts`-th of the sample, starting at `part`."""
    if not 0 <= part < parts:
        raise ValueError(f"ablation part {part} outside 0..{parts - 1}")
    return np.asarray(sample)[part::parts]


@dataclass(frozen=True)
class Target:
    """One neuron to ablate and its core tokens: top coarse segment, and the other segments."""

    neuron: int
    top: np.ndarray
    lower: np.ndarray


def targets(core: pd.DataFrame, layer: int, neurons: Iterable[int]) -> list[Target]:
    """Targets from the merged tokens table (segment 0 = top, every other segment = lower)."""
    rows = core[core["layer"] == layer]
    by = dict(list(rows.groupby("neuron", sort=False)))
    out = []
    for n in neurons:
        tk = by.get(int(n), rows.iloc[0:0])
        seg = tk["segment"].to_numpy()
        ids = tk["token_id"].to_numpy(dtype=np.int64)
        out.append(Target(int(n), np.sort(ids[seg == 0]), np.sort(ids[seg > 0])))
    return out


# ------------------------------------------------------------------- conditions matched in mass

def candidate_masks(ids: np.ndarray, removable: np.ndarray,
                    target: Target) -> dict[str, np.ndarray]:
    """[B, T] positions each condition may ablate: those of its tokens (random: of neither) where
    ablation removes something."""
    top, lower = np.isin(ids, target.top), np.isin(ids, target.lower)
    live = removable > 0
    return {"top": top & live, "lower": lower & live, "random": ~(top | lower) & live}


def matched_deltas(full: np.ndarray, masks: dict[str, np.ndarray], budget: np.ndarray,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """[B, T] activation changes per condition removing exactly `budget[b]` mass in window b:
    candidates in a random order until the budget is reached, the last one scaled down."""
    removable = np.abs(full)
    out = {name: np.zeros_like(full) for name in masks}
    for b in np.flatnonzero(budget > 0):
        for name, mask in masks.items():
            pos = rng.permutation(np.flatnonzero(mask[b]))
            cum = np.cumsum(removable[b, pos], dtype=np.float64)
            k = min(int(np.searchsorted(cum, budget[b])), pos.size - 1)
            out[name][b, pos[:k + 1]] = full[b, pos[:k + 1]]
            before = cum[k - 1] if k > 0 else 0.0
            out[name][b, pos[k]] *= min(1.0, (budget[b] - before) / removable[b, pos[k]])
    return out


def window_budget(removable: np.ndarray, masks: dict[str, np.ndarray], quota: int) -> np.ndarray:
    """Per window, the mass every condition can remove (0 where one cannot, and past the first
    `quota` usable windows)."""
    budget = np.min([(removable * m).sum(1) for m in masks.values()], axis=0)
    usable = np.flatnonzero(budget > 0)
    budget[usable[quota:]] = 0.0
    return budget


# ------------------------------------------------------------------------------ measurement

@dataclass
class Measured:
    """One neuron's per-window masses, counts and effects, and per-next-neuron changes."""

    target: Target
    rng: np.random.Generator
    windows: dict[str, list] = field(default_factory=dict)
    next_change: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def n_windows(self) -> int:
        return sum(a.size for a in self.windows.get("top_mass", []))

    def arrays(self) -> dict[str, np.ndarray]:
        keys = [f"{c}_{s}" for c in CONDITIONS for s in ("mass", "count", "effect")]
        return {k: np.concatenate(self.windows[k]) if self.windows.get(k) else np.zeros(0)
                for k in keys}


def neuron_rng(seed: int, layer: int, neuron: int) -> np.random.Generator:
    return np.random.default_rng([seed, layer, neuron])


def neuron_means(ablation: NextLayerAblation, batches: Iterable[np.ndarray],
                 neurons: list[int], max_windows: int) -> np.ndarray:
    """Mean activation of each neuron over the first `max_windows` windows (mean-ablation)."""
    total, count, seen = np.zeros(len(neurons)), 0, 0
    for ids in batches:
        ids = ids[:max_windows - seen]
        acts = ablation.cache(torch.from_numpy(ids).to(ablation.loaded.device)).acts
        total += acts[..., neurons].double().sum((0, 1)).cpu().numpy()
        count, seen = count + ids.size, seen + ids.shape[0]
        if seen >= max_windows:
            break
    return total / max(count, 1)


def measure(loaded: LoadedModel, batches: Iterable[np.ndarray], layer: int,
            targets: list[Target], params: dict) -> list[Measured]:
    """Stream `batches` ([B, T] token ids, corpus order) until every target has `max_windows`
    usable windows or the corpus ends. `batches` is iterated twice for mean-ablation."""
    p = settings(params)
    ablation = NextLayerAblation(loaded, layer)
    ids_of = [t.neuron for t in targets]
    means = (neuron_means(ablation, batches, ids_of, p["max_windows"])
             if p["method"] == "mean" else np.zeros(len(targets)))
    measured = [Measured(t, neuron_rng(p["seed"], layer, t.neuron)) for t in targets]
    for ids in batches:
        pending = [i for i, m in enumerate(measured) if m.n_windows < p["max_windows"]]
        if not pending:
            break
        cache = ablation.cache(torch.from_numpy(ids).to(loaded.device))
        acts = cache.acts[..., [ids_of[i] for i in pending]].float().cpu().numpy()
        baselines: dict[bytes, torch.Tensor] = {}  # the last unpatched rerun, by its windows
        for j, i in enumerate(pending):
            _measure_batch(ablation, cache, ids, acts[..., j], means[i], measured[i],
                           p["max_windows"], baselines)
    return measured


def _measure_batch(ablation, cache, ids: np.ndarray, acts: np.ndarray, mean: float,
                   m: Measured, max_windows: int, baselines: dict) -> None:
    full = mean - acts  # the change ablation makes at every position
    masks = candidate_masks(ids, np.abs(full), m.target)
    budget = window_budget(np.abs(full), masks, max_windows - m.n_windows)
    used = budget > 0
    if not used.any():
        return
    deltas = matched_deltas(full, masks, budget, m.rng)
    # Only the windows used are rerun, each condition against an unpatched rerun of the same
    # windows (same batch shape, so no rounding difference is taken for an effect).
    device = cache.acts.device
    rows = torch.from_numpy(np.flatnonzero(used)).to(device)
    neuron = m.target.neuron
    key = used.tobytes()  # a zero change is the same for every neuron: reused for the same
    if key not in baselines:  # windows; one kept at a time, so memory stays one batch's
        baselines.clear()
        zero = torch.zeros(len(rows), ids.shape[1], device=device)
        baselines[key] = ablation.next_layer(cache, neuron, zero, rows)
    base = baselines[key]
    for name in CONDITIONS:
        delta = torch.from_numpy(deltas[name][used]).to(device)
        change = (ablation.next_layer(cache, neuron, delta, rows) - base).abs().double()
        m.next_change[name] = m.next_change.get(name, 0) + change.sum((0, 1))
        for key, value in (("mass", np.abs(deltas[name][used]).sum(1, dtype=np.float64)),
                           ("count", (deltas[name][used] != 0).sum(1)),
                           ("effect", change.sum((1, 2)).cpu().numpy())):
            m.windows.setdefault(f"{name}_{key}", []).append(value)


# ---------------------------------------------------------------------------- per-neuron rows

def unit_mean(embeddings: np.ndarray, ids: np.ndarray, chunk: int = 4096) -> np.ndarray | None:
    """Mean of the unit proxy vectors of `ids` (those with a vector; repeats count), so that a
    dot product of two such means is the mean pairwise cosine of the two sets. Summed over the
    distinct ids in chunks: all next-layer core tokens of GPT-2 XL are 640,000 ids, whose
    vectors at once would take gigabytes."""
    unique, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
    total, n = np.zeros(embeddings.shape[1]), 0
    for start in range(0, len(unique), chunk):
        v = np.asarray(embeddings[unique[start:start + chunk]], dtype=np.float64)
        norms = np.linalg.norm(v, axis=1)
        keep = norms > 0
        weights = counts[start:start + chunk][keep]
        total += (v[keep] / norms[keep, None] * weights[:, None]).sum(0)
        n += int(weights.sum())
    return total / n if n else None


def closeness(embeddings: np.ndarray | None, target: Target, affected: list[np.ndarray],
              everyone: np.ndarray | None) -> tuple[float, float]:
    """(mean cosine of the affected next-layer neurons' core tokens to the top segment minus to
    the lower segments, the same for all next-layer neurons' core tokens as a baseline)."""
    if embeddings is None or not affected:
        return np.nan, np.nan
    top, low = unit_mean(embeddings, target.top), unit_mean(embeddings, target.lower)
    aff = unit_mean(embeddings, np.concatenate(affected))
    if top is None or low is None or aff is None:
        return np.nan, np.nan
    base = np.nan if everyone is None else float(everyone @ (top - low))
    return float(aff @ (top - low)), base


def per_unit(windows: dict[str, np.ndarray], name: str) -> float:
    mass = windows[f"{name}_mass"].sum()
    return float(windows[f"{name}_effect"].sum() / mass) if mass > 0 else np.nan


def neuron_rows(measured: list[Measured], layer: int, params: dict,
                next_tokens: dict[int, np.ndarray], embeddings: np.ndarray | None
                ) -> pd.DataFrame:
    """One `ablation` row per measured neuron (`next_tokens`: core token ids of the next
    layer's analysed neurons; the proximity columns are NaN without them)."""
    from .analysis.columns import conform

    p = settings(params)
    everyone = (unit_mean(embeddings, np.concatenate(list(next_tokens.values())))
                if embeddings is not None and next_tokens else None)
    rows = [_row(m, layer, p, next_tokens, embeddings, everyone) for m in measured]
    return conform(pd.DataFrame(rows, columns=[c.name for c in _columns()]), "ablation")


def _columns():
    from .analysis.columns import TABLES

    return TABLES["ablation"]


def _row(m: Measured, layer: int, p: dict, next_tokens: dict, embeddings, everyone) -> dict:
    w = m.arrays()
    ratio, lo, hi = effect_ratio(w, m.rng, p["bootstrap"])
    unit = {name: per_unit(w, name) for name in CONDITIONS}
    vec = m.next_change.get("top")
    top_next, top_next_effect = [], []
    if vec is not None and w["top_mass"].sum() > 0:
        per = (vec / w["top_mass"].sum()).cpu().numpy()
        top_next = [int(x) for x in np.argsort(-per, kind="stable")[:p["top_next"]]]
        top_next_effect = [float(per[x]) for x in top_next]
    affected = [next_tokens[x] for x in top_next if x in next_tokens]
    close, base = closeness(embeddings, m.target, affected, everyone)
    with np.errstate(all="ignore"):
        vs_random = float(np.log(unit["top"] / unit["random"]))
    row = {"layer": layer, "neuron": m.target.neuron, "method": p["method"],
           "n_top_tokens": m.target.top.size, "n_lower_tokens": m.target.lower.size,
           "n_windows": m.n_windows, "ratio": ratio, "ratio_lo": lo, "ratio_hi": hi,
           "top_vs_random": vs_random, "top_next": top_next, "top_next_effect": top_next_effect,
           "n_next_with_tokens": len(affected), "closeness": close, "closeness_baseline": base,
           "closeness_excess": close - base}
    for name in CONDITIONS:
        row.update({f"{name}_count": int(w[f"{name}_count"].sum()),
                    f"{name}_mass": float(w[f"{name}_mass"].sum()),
                    f"{name}_effect": unit[name]})
    return row


# ------------------------------------------------------------------------------ per layer

def median_interval(x: np.ndarray, rng: np.random.Generator, n_boot: int,
                    alpha: float = 0.05) -> tuple[float, float, float]:
    """Median and its bootstrap (1 - alpha) percentile interval (resampling neurons); NaN
    below two values."""
    if x.size < 2:
        return (float(np.median(x)) if x.size else np.nan), np.nan, np.nan
    medians = np.median(x[rng.integers(0, x.size, (n_boot, x.size))], axis=1)
    lo, hi = np.percentile(medians, [50 * alpha, 100 - 50 * alpha])
    return float(np.median(x)), float(lo), float(hi)


def verdict_of(x: np.ndarray, p: dict, rng: np.random.Generator,
               interval: bool = True) -> dict:
    """The layer verdict on log ratios `x` (`signtest.classify`), with the median, its interval
    and the sign counts. `interval=False` skips the bootstrap where the sign test alone already
    makes the verdict inconclusive (for the many swaps of the control): same verdict, less time."""
    finite = x[np.isfinite(x)]
    positive, negative = signtest.counts(finite)
    significant = signtest.two_sided_p(positive, negative) < p["alpha"]
    if interval or significant:
        median, lo, hi = median_interval(finite, rng, p["bootstrap"], p["alpha"])
    else:
        median, lo, hi = (float(np.median(finite)) if finite.size else np.nan), np.nan, np.nan
    return {"n": finite.size, "median": median, "lo": lo, "hi": hi, "positive": positive,
            "negative": negative, "sign_p": signtest.two_sided_p(positive, negative),
            "verdict": signtest.classify(finite.size, positive, negative, lo, hi, p["alpha"])}


def detectable(ratio: np.ndarray, alpha: float) -> tuple[float, float]:
    """(minimal detectable effect in sd units at 80% power for the ratios' sample size, the
    same in log-ratio units using their sd; NaN below two values)."""
    finite = ratio[np.isfinite(ratio)]
    n = int((finite != 0).sum())
    mde = signtest.minimal_detectable_effect(n, alpha)
    sd = float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan
    return mde, mde * sd


def swap_control(ratio: np.ndarray, excess: np.ndarray, p: dict,
                 rng: np.random.Generator) -> dict:
    """The swapped control: `p["swaps"]` times, each neuron's top and lower conditions are
    exchanged at random (log ratio and proximity sign flipped) and the layer rule applied. Its
    rate of supported-or-opposite calls must be at most alpha; the medians over swaps give the
    band a layer median falls in by chance."""
    flips = rng.choice([-1.0, 1.0], (p["swaps"], ratio.size))
    verdicts = [verdict_of(ratio * f, p, rng, interval=False)["verdict"] for f in flips]
    supported, opposite = verdicts.count("supported"), verdicts.count("opposite")
    calls = supported + opposite
    lo, hi = signtest.binomial_interval(calls, len(verdicts), 1 - p["alpha"])
    return {"n_swaps": len(verdicts), "swap_supported": supported, "swap_opposite": opposite,
            "swap_rate": calls / len(verdicts) if verdicts else np.nan, "swap_rate_lo": lo,
            "swap_rate_hi": hi, "ratio_band": _band(ratio * flips, p["alpha"]),
            "excess_band": _band(excess * flips, p["alpha"])}


def _band(values: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Median over swaps of each swap's median, and the central (1 - alpha) range."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(values[0]) if values.size else np.zeros(0, bool)
        medians = np.median(values[:, finite], axis=1) if finite.any() else np.zeros(0)
    if medians.size == 0:
        return np.nan, np.nan, np.nan
    lo, hi = np.percentile(medians, [50 * alpha, 100 - 50 * alpha])
    return float(np.median(medians)), float(lo), float(hi)


def layer_rows(layer: int, ratio: np.ndarray, excess: np.ndarray, vs_random: np.ndarray,
               p: dict) -> list[dict]:
    """The layer's two `ablation_layers` rows: its neurons' verdict, and the swapped control as
    a rate over many swaps (its swap columns repeated on the neuron row)."""
    real = verdict_of(ratio, p, np.random.default_rng([p["seed"], layer, 1]))
    ex = median_interval(excess[np.isfinite(excess)], np.random.default_rng([p["seed"], layer, 3]),
                         p["bootstrap"], p["alpha"])
    control = swap_control(ratio, excess, p, np.random.default_rng([p["seed"], layer, 2]))
    mde, mde_ratio = detectable(ratio, p["alpha"])
    vr = vs_random[np.isfinite(vs_random)]
    swaps = {k: v for k, v in control.items() if not k.endswith("_band")}
    common = {"layer": layer, "n_sampled": ratio.size, "n_neurons": real["n"], "mde_sd": mde,
              "mde_log_ratio": mde_ratio, **swaps}
    calibrated = not control["swap_rate_lo"] > p["alpha"]
    return [
        {**common, "kind": "neuron", "ratio_median": real["median"], "ratio_lo": real["lo"],
         "ratio_hi": real["hi"], "n_positive": real["positive"],
         "n_negative": real["negative"], "sign_p": real["sign_p"],
         "top_vs_random_median": float(np.median(vr)) if vr.size else np.nan,
         "closeness_excess_median": ex[0], "closeness_excess_lo": ex[1],
         "closeness_excess_hi": ex[2], "verdict": real["verdict"],
         "rule": signtest.rule_text(p["alpha"])},
        {**common, "kind": "swapped", **dict(zip(("ratio_median", "ratio_lo", "ratio_hi"),
                                                 control["ratio_band"], strict=True)),
         **dict(zip(("closeness_excess_median", "closeness_excess_lo", "closeness_excess_hi"),
                    control["excess_band"], strict=True)),
         "n_positive": np.nan, "n_negative": np.nan, "sign_p": np.nan,
         "top_vs_random_median": np.nan,
         "verdict": "calibrated" if calibrated else "not calibrated",
         "rule": CONTROL_RULE.format(alpha=f"{p['alpha']:g}",
                                     level=f"{100 * (1 - p['alpha']):g}")},
    ]


CONTROL_RULE = ("calibrated when the share of random swaps of top and lower per neuron that the "
                "layer rule calls supported or opposite has a {level}% Clopper-Pearson interval "
                "reaching {alpha} or below")


def summarise_layers(per_neuron: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Per layer: the real neurons' row (three-way verdict, minimal detectable effect) and the
    control row `swapped` (the same rule's call rate over `ablation.swaps` random swaps of
    each neuron's top and lower conditions)."""
    from .analysis.columns import TABLES, conform

    p = settings(params)
    rows = []
    for layer, grp in per_neuron.groupby("layer", sort=True):
        rows += layer_rows(int(layer), grp["ratio"].to_numpy(dtype=float),
                           grp["closeness_excess"].to_numpy(dtype=float),
                           grp["top_vs_random"].to_numpy(dtype=float), p)
    frame = pd.DataFrame(rows, columns=[c.name for c in TABLES["ablation_layers"]])
    return conform(frame, "ablation_layers")


# ------------------------------------------------------------------------------ corpus batches

class CorpusBatches:
    """[B, T] token id batches of consecutive equal-length windows from a corpus tokens parquet,
    at most `batch_tokens` tokens each, read a record batch at a time (memory flat in corpus
    size). Iterable more than once; batches never depend on which neurons are measured."""

    def __init__(self, tokens_path: str, batch_tokens: int, read_rows: int = 1024):
        self.path, self.batch_tokens, self.read_rows = tokens_path, batch_tokens, read_rows

    def __iter__(self) -> Iterator[np.ndarray]:
        import pyarrow.parquet as pq

        group: list[np.ndarray] = []
        for record in pq.ParquetFile(self.path).iter_batches(self.read_rows,
                                                             columns=["input_ids"]):
            for window in record.column(0).to_numpy(zero_copy_only=False):
                window = np.asarray(window, dtype=np.int64)
                if group and (window.size != group[0].size
                              or (len(group) + 1) * window.size > self.batch_tokens):
                    yield np.stack(group)
                    group = []
                group.append(window)
        if group:
            yield np.stack(group)


# ------------------------------------------------------------------------------ workflow stage

def read_core(core_path: str, layers: list[int]) -> pd.DataFrame:
    """The merged tokens table's rows of `layers` only (it holds every analysed neuron)."""
    return pd.read_parquet(core_path, columns=["layer", "neuron", "token_id", "segment"],
                           filters=[("layer", "in", list(layers))])


def next_layer_tokens(core: pd.DataFrame, layer: int) -> dict[int, np.ndarray]:
    rows = core[core["layer"] == layer]
    return {int(n): g["token_id"].to_numpy(dtype=np.int64)
            for n, g in rows.groupby("neuron", sort=True)}


def ablate_part(inputs: dict[str, str], out_path: str, *, model: dict, dtype: str, device: str,
                batch_tokens: int, ablation: dict, layer: int, part: int) -> pd.DataFrame:
    """One part of one layer's sample: load blocks 0..layer + 1, stream the corpus, write the
    part's `ablation` rows. `inputs`: tokens (corpus), core (merged tokens table), neurons
    (merged neurons table), embeddings (proxy HDF5)."""
    from . import h5io
    from .models import load_model
    from .runtime import package_versions
    from .tables import atomic_parquet, read_provenance

    p = settings(ablation)
    neurons = pd.read_parquet(inputs["neurons"], columns=["layer", "neuron", "kind", "excluded",
                                                          "top_coarse_z"])
    sample = sample_neurons(neurons, layer, p["neurons"], p["seed"])
    mine = part_neurons(sample, p["parts"], part)
    core = read_core(inputs["core"], [layer, layer + 1])
    loaded = load_model({**model, "dtype": dtype}, [layer, layer + 1], device=device)
    log.info("ablating %d of %d sampled neurons of layer %d (%s-ablation, up to %d windows "
             "each); layer %d is measured", len(mine), len(sample), layer, p["method"],
             p["max_windows"], layer + 1)
    measured = measure(loaded, CorpusBatches(inputs["tokens"], batch_tokens), layer,
                       targets(core, layer, mine), p)
    emb, _ = h5io.read_arrays(inputs["embeddings"])
    frame = neuron_rows(measured, layer, p, next_layer_tokens(core, layer + 1),
                        emb["embeddings"])
    short = frame.loc[frame["n_windows"] < p["max_windows"], "neuron"].tolist()
    if short:
        log.warning("layer %d: neurons %s found fewer than %d usable windows in the corpus",
                    layer, short, p["max_windows"])
    meta = {**read_provenance(inputs["neurons"]), "ablation": p, "layer": layer, "part": part,
            "versions": package_versions()}
    atomic_parquet(frame, out_path, meta)
    return frame


def merge_ablation(parts: list[str], ablation_path: str, layers_path: str,
                   ablation: dict) -> None:
    """All parts into the `ablation` table (sorted by layer, neuron) and `ablation_layers`."""
    from .analysis.columns import conform
    from .tables import atomic_parquet, read_provenance

    frames = [pd.read_parquet(path) for path in parts]
    per_neuron = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[c.name for c in _columns()])
    per_neuron = conform(per_neuron.sort_values(["layer", "neuron"], kind="stable")
                         .reset_index(drop=True), "ablation")
    meta = read_provenance(parts[0]) if parts else {}
    meta = {**{k: v for k, v in meta.items() if k != "part"}, "ablation": settings(ablation)}
    atomic_parquet(per_neuron, ablation_path, meta)
    atomic_parquet(summarise_layers(per_neuron, ablation), layers_path, meta)
