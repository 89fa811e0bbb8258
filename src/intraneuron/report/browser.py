"""The neuron browser's data: which neurons are embedded, and their compact JSON payload.

The HTML must stay openable from disk, so the budget `report.browser_neurons` bounds how many
neurons per layer are embedded: the strongest-effect half plus a sample seeded by
`analysis.seed` (example neurons always included). Strings (tokens and contexts) are interned
in one table because the same token and, at early layers, the same maximally activating
context recur across neurons; floats are rounded to 4 significant digits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import EFFECT, ReportData, strongest

# Per-neuron metrics shown next to a neuron, with the label the page uses.
METRICS = [
    ("n_clusters", "clusters"),
    ("silhouette", "silhouette (cosine)"),
    ("top_coarse_homogeneity", "top segment homogeneity"),
    ("top_coarse_z", "top segment homogeneity z"),
    ("top_coarse_q", "top segment q (FDR)"),
    ("top_fine_z", "top fine segment homogeneity z"),
    ("coarse_trend", "homogeneity slope (coarse)"),
    ("top_coarse_homogeneity_dc", "top segment homogeneity, typicality removed"),
    ("surrogate_r2", "linear read-out R² (leave-one-out)"),
    ("ami_coarse", "AMI(segments, clusters)"),
    ("ami_coarse_z", "AMI z"),
    ("runs", "runs along the ranking"),
    ("runs_z", "runs z"),
    ("interleaving", "interleaving index"),
    ("kw_epsilon2", "Kruskal-Wallis ε²"),
    ("kw_perm_q", "Kruskal-Wallis q (FDR)"),
    ("distinct_rho", "ρ(cluster mean rank, distinctness z)"),
    ("tied_share", "share of tied core tokens"),
]

CONTEXT_CHARS = 60  # characters kept on each side of a token's context (bounds the page size)


@dataclass
class Selection:
    """Embedded neurons of one layer, in display order, and why each is there."""

    layer: int
    total: int
    neurons: list[tuple[int, str]]  # (neuron, "example" | "strongest" | "sample" | "all")


def select(data: ReportData, examples: dict[int, list[int]]) -> list[Selection]:
    budget = data.config["report"]["browser_neurons"]
    seed = int(data.config["analysis"]["seed"])
    out = []
    for layer in data.layer_ids:
        every = data.neurons[data.neurons["layer"] == layer] if len(data.neurons) else (
            pd.DataFrame(columns=["neuron"]))
        ids = sorted(int(x) for x in every["neuron"])
        if budget is None or budget >= len(ids):
            out.append(Selection(layer, len(ids), [(x, "all") for x in ids]))
            continue
        chosen: list[tuple[int, str]] = [(x, "example") for x in examples.get(layer, [])]
        chosen = chosen[: int(budget)]
        taken = {x for x, _ in chosen}
        n_strong = max(int(budget) // 2 - len(chosen), 0)
        for x in strongest(data.analyzed(layer), n_strong, exclude=taken):
            chosen.append((x, "strongest"))
            taken.add(x)
        rest = np.array([x for x in ids if x not in taken], dtype=np.int64)
        n_sample = min(max(int(budget) - len(chosen), 0), rest.size)
        rng = np.random.default_rng([seed, int(layer)])
        sample = np.sort(rng.choice(rest, size=n_sample, replace=False)) if n_sample else []
        chosen += [(int(x), "sample") for x in sample]
        out.append(Selection(layer, len(ids), chosen))
    return out


def _num(x) -> float | int | None:
    """JSON-safe number: None for NaN/missing, 4 significant digits for floats."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return float(f"{f:.4g}")


def _text(x) -> str:
    return "" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else str(x)


def _clip_left(x) -> str:
    text = _text(x)
    return text if len(text) <= CONTEXT_CHARS else "…" + text[-CONTEXT_CHARS:]


def _clip_right(x) -> str:
    text = _text(x)
    return text if len(text) <= CONTEXT_CHARS else text[:CONTEXT_CHARS] + "…"


class _Strings:
    def __init__(self):
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, text) -> int:
        text = _text(text)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.items)
            self.items.append(text)
        return i


def payload(data: ReportData, selections: list[Selection], palette: list[str]) -> dict:
    keys = {(s.layer, n) for s in selections for n, _ in s.neurons}
    tokens = data.tokens_for(keys)
    by_neuron = {k: g for k, g in tokens.groupby(["layer", "neuron"], sort=False)}
    neurons = data.neurons.set_index(["layer", "neuron"]) if len(data.neurons) else None
    clusters = {k: g for k, g in data.clusters.groupby(["layer", "neuron"], sort=False)} if len(
        data.clusters) else {}
    strings = _Strings()
    metrics = [(c, label) for c, label in METRICS if neurons is not None and c in neurons]
    out_neurons = []
    for sel in selections:
        for neuron, why in sel.neurons:
            key = (sel.layer, neuron)
            entry: dict = {"layer": sel.layer, "neuron": neuron, "why": why}
            row = neurons.loc[key] if neurons is not None and key in neurons.index else None
            entry["excluded"] = str(row["exclusion_reason"]) if row is not None else ""
            entry["m"] = [_num(row[c]) if row is not None else None for c, _ in metrics]
            cl = clusters.get(key)
            entry["clusters"] = [] if cl is None else [
                [int(r.cluster), str(r.name), int(r.size), _num(r.mean_activation)]
                for r in cl.sort_values("cluster").itertuples(index=False)
            ]
            tk = by_neuron.get(key)
            if tk is None:
                tk = pd.DataFrame(columns=["token"])
            left = tk["context_left"] if "context_left" in tk else [""] * len(tk)
            right = tk["context_right"] if "context_right" in tk else [""] * len(tk)
            entry["tok"] = [strings(t) for t in tk["token"]]
            entry["act"] = [_num(x) for x in tk.get("mean_activation", [])]
            entry["cnt"] = [_num(x) for x in tk.get("count", [])]
            entry["cl"] = [_num(x) for x in tk.get("cluster", [])]
            entry["seg"] = [_num(x) for x in tk.get("segment", [])]
            entry["fine"] = [_num(x) for x in tk.get("fine_segment", [])]
            entry["ctx"] = [[strings(_clip_left(a)), strings(_clip_right(b))]
                            for a, b in zip(left, right, strict=True)]
            out_neurons.append(entry)
    return {
        "version": 1,
        "layers": [s.layer for s in selections],
        "included": {str(s.layer): {"embedded": len(s.neurons), "total": s.total,
                                    "why": _count_reasons(s)} for s in selections},
        "effect": EFFECT,
        "metrics": [[c, label] for c, label in metrics],
        "palette": palette,
        "strings": strings.items,
        "neurons": out_neurons,
    }


def _count_reasons(sel: Selection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, why in sel.neurons:
        counts[why] = counts.get(why, 0) + 1
    return counts


def script_json(obj: dict) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>' or '&' literally,
    so no token text (e.g. '</script>') can close the tag; NaN never appears (see _num)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
