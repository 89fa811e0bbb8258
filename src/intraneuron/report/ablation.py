"""The report's ablation section: per layer, do a neuron's top-segment activations matter more
to the next layer than its lower ones, per unit of activation removed?

Shown only when the run made the ablation tables (optional inputs `ablation` and
`ablation_layers`): a figure of the per-neuron log ratios with each layer's interval and the
swapped control's band, the three-way verdict (supported, opposite, inconclusive) with its rule,
the minimal detectable effect at the sample size used and the swapped control's call rate, and a
few example neurons with the next-layer neurons they move most and those neurons' core tokens.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd

from .data import ReportData
from .figures import STYLE, _empty, _new, _save, layer_color

EXAMPLES = 3  # example neurons per layer
NEXT_SHOWN = 5  # most affected next-layer neurons shown per example
TOKENS_SHOWN = 8  # core tokens shown per next-layer neuron


def ratio_figure(per_neuron: pd.DataFrame, layers: pd.DataFrame, out: Path) -> Path:
    """Per layer: each neuron's log ratio with its window-bootstrap interval, and the median
    over neurons with its interval (black), beside the band the median of the swapped control
    falls in over its random swaps (grey)."""
    ids = sorted(int(x) for x in per_neuron["layer"].unique()) if len(per_neuron) else []
    with mpl.rc_context(STYLE):
        fig = _new(max(4.8, 1.6 * len(ids) + 2.4), 3.6)
        ax = fig.subplots()
        if not ids:
            _empty(ax, "no neuron was ablated")
            return _save(fig, out, "ablation_ratios")
        for x, layer in enumerate(ids):
            _layer_points(ax, x, per_neuron[per_neuron["layer"] == layer],
                          layer_color(ids, layer))
            for kind, dx, colour in (("neuron", 0.28, "black"), ("swapped", 0.4, "#999999")):
                row = layers[(layers["layer"] == layer) & (layers["kind"] == kind)]
                if len(row):
                    _interval(ax, x + dx, row.iloc[0], colour)
        ax.axhline(0, color="#555", linewidth=0.8)
        ax.set_xticks(range(len(ids)), [f"layer {layer} → {layer + 1}" for layer in ids])
        ax.set_ylabel("log(top / lower effect per unit removed)")
        ax.plot([], [], "o", color="#777", label="neuron (95% CI over windows)")
        ax.plot([], [], "s", color="black", label="median over neurons (95% CI)")
        ax.plot([], [], "s", color="#999999", label="swapped control (range over swaps)")
        ax.legend(loc="best")
        return _save(fig, out, "ablation_ratios")


def _layer_points(ax, x: float, frame: pd.DataFrame, colour: str) -> None:
    ratio = pd.to_numeric(frame["ratio"], errors="coerce").to_numpy(float)
    ok = np.isfinite(ratio)
    if not ok.any():
        return
    offsets = np.linspace(-0.25, 0.15, ok.sum()) if ok.sum() > 1 else np.zeros(1)
    lo = frame["ratio_lo"].to_numpy(float)[ok]
    hi = frame["ratio_hi"].to_numpy(float)[ok]
    yerr = np.nan_to_num(np.vstack([ratio[ok] - lo, hi - ratio[ok]]), nan=0.0).clip(0)
    ax.errorbar(x + offsets, ratio[ok], yerr=yerr, fmt="o", color=colour, markersize=4,
                elinewidth=0.8, alpha=0.8)


def _interval(ax, x: float, row: pd.Series, colour: str) -> None:
    median, lo, hi = (float(row[c]) for c in ("ratio_median", "ratio_lo", "ratio_hi"))
    if not np.isfinite(median):
        return
    err = [[max(median - lo, 0.0)], [max(hi - median, 0.0)]] if np.isfinite(lo) else None
    ax.errorbar([x], [median], yerr=err, fmt="s", color=colour, markersize=6, elinewidth=2,
                capsize=4)


def verdict_lines(layers: pd.DataFrame) -> list[dict]:
    """Per layer: the real neurons' verdict, interval, sign counts and minimal detectable
    effect, and the swapped control's call rate over its swaps."""
    lines = []
    for layer, grp in layers.groupby("layer", sort=True):
        real = grp[grp["kind"] == "neuron"]
        if real.empty:
            continue
        row = real.iloc[0].to_dict()
        control = grp[grp["kind"] == "swapped"]
        lines.append({**row, "layer": int(layer), "detectable": np.isfinite(row["mde_sd"]),
                      "control": control.iloc[0].to_dict() if len(control) else None})
    return lines


def examples(data: ReportData, per_neuron: pd.DataFrame) -> list[dict]:
    """Per layer, the neurons with the largest, median and smallest finite log ratio, with the
    next-layer neurons they move most and those neurons' first core tokens."""
    picked = []
    for layer, grp in per_neuron.groupby("layer", sort=True):
        grp = grp[np.isfinite(grp["ratio"].astype(float))].sort_values("ratio", kind="stable")
        if grp.empty:
            continue
        rows = grp.iloc[sorted({len(grp) - 1, len(grp) // 2, 0})][::-1].head(EXAMPLES)
        picked += [(int(layer), r) for _, r in rows.iterrows()]
    keys = {(layer + 1, int(n)) for layer, r in picked for n in list(r["top_next"])[:NEXT_SHOWN]}
    keys |= {(layer, int(r["neuron"])) for layer, r in picked}
    tokens = data.tokens_for(keys)
    words = {key: list(g["token"].head(TOKENS_SHOWN))
             for key, g in tokens.groupby(["layer", "neuron"], sort=False)} if len(tokens) else {}
    return [_example(layer, r, words) for layer, r in picked]


def _example(layer: int, row: pd.Series, words: dict) -> dict:
    nxt = [{"neuron": int(n), "effect": float(e), "tokens": words.get((layer + 1, int(n)), [])}
           for n, e in zip(list(row["top_next"])[:NEXT_SHOWN],
                           list(row["top_next_effect"])[:NEXT_SHOWN], strict=False)]
    return {"layer": layer, "neuron": int(row["neuron"]), "ratio": row["ratio"],
            "ratio_lo": row["ratio_lo"], "ratio_hi": row["ratio_hi"],
            "n_windows": int(row["n_windows"]), "mass": row["top_mass"],
            "closeness_excess": row["closeness_excess"],
            "tokens": words.get((layer, int(row["neuron"])), []), "next": nxt}


def section(data: ReportData, out: Path) -> dict | None:
    """What `ablation.html` needs (its figure as a path: the caller embeds it), or None when
    the run has no ablation tables."""
    per_neuron, layers = data.ablation, data.ablation_layers
    if per_neuron is None or layers is None:
        return None
    first = layers.loc[layers["kind"] == "neuron", "rule"]
    control = layers.loc[layers["kind"] == "swapped", "rule"]
    method = per_neuron["method"].iloc[0] if len(per_neuron) else ""
    return {"figure": ratio_figure(per_neuron, layers, out), "lines": verdict_lines(layers),
            "rule": first.iloc[0] if len(first) else "",
            "control_rule": control.iloc[0] if len(control) else "", "method": method,
            "examples": examples(data, per_neuron), "n_neurons": len(per_neuron)}
