"""Report figures as PNG files (matplotlib's Agg canvas, no pyplot state, 150 dpi).

Every figure overlays or juxtaposes the layers so they can be compared at a glance, carries its
units on the axes and a legend, and is sized to stay readable when printed at page width.
Colours: one fixed colour per layer; clusters use `CLUSTER_PALETTE`, which the neuron browser
shares, so cluster 0 (the most activating) has the same colour everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .data import ReportData

DPI = 150
CLUSTER_PALETTE = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac",
]  # fmt: skip
LAYER_PALETTE = ["#1f4e79", "#d1603d", "#2e8540", "#7b3f9e", "#8a6d00", "#008b8b"]
STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "none",
}


def layer_color(layers: list[int], layer: int) -> str:
    return LAYER_PALETTE[layers.index(layer) % len(LAYER_PALETTE)]


def cluster_color(cluster: int) -> str:
    return "#999999" if cluster < 0 else CLUSTER_PALETTE[cluster % len(CLUSTER_PALETTE)]


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, directory: Path, name: str) -> Path:
    """The figure as PNG (embedded in the page) and as SVG beside it (for papers); the PNG's
    path is returned."""
    path = directory / f"{name}.png"
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    fig.savefig(path.with_suffix(".svg"), metadata={"Date": None, "Creator": None})
    return path


def _values(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame:
        return np.array([])
    x = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return x[np.isfinite(x)]


def _mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its normal-approximation 95% confidence interval."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else 0.0
    return float(x.mean()), float(half)


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


# --- homogeneity by activation segment ----------------------------------------------------


def segment_profile(data: ReportData, layer: int, scheme: str) -> pd.DataFrame:
    """Per segment: mean ± CI over analysed neurons of homogeneity and z, mean null."""
    seg = data.segments
    if seg.empty:
        return pd.DataFrame()
    ok = set(data.analyzed(layer)["neuron"].astype(int))
    part = seg[(seg["layer"] == layer) & (seg["scheme"] == scheme) & seg["neuron"].isin(ok)]
    rows = []
    for s, grp in part.groupby("segment", sort=True):
        h, h_ci = _mean_ci(_values(grp, "homogeneity"))
        z, z_ci = _mean_ci(_values(grp, "z"))
        rows.append({"segment": int(s), "homogeneity": h, "homogeneity_ci": h_ci,
                     "null": float(np.mean(_values(grp, "null_mean"))) if len(grp) else np.nan,
                     "z": z, "z_ci": z_ci, "n": len(grp)})
    return pd.DataFrame(rows)


def homogeneity_by_segment(data: ReportData, out: Path) -> Path:
    layers = data.layer_ids
    schemes = [("coarse", int(_param(data, "n_segments"))),
               ("fine", int(_param(data, "fine_segments")))]
    with mpl.rc_context(STYLE):
        fig = _new(10, 6.6)
        axes = fig.subplots(2, 2, sharex="col")
        for col, (scheme, g) in enumerate(schemes):
            top, bottom = axes[0, col], axes[1, col]
            drawn = False
            for layer in layers:
                prof = segment_profile(data, layer, scheme)
                if prof.empty:
                    continue
                drawn = True
                c = layer_color(layers, layer)
                x = prof["segment"].to_numpy()
                n = int(prof["n"].max())
                top.plot(x, prof["homogeneity"], "o-", color=c, label=f"layer {layer} (n = {n})")
                top.fill_between(x, prof["homogeneity"] - prof["homogeneity_ci"],
                                 prof["homogeneity"] + prof["homogeneity_ci"], color=c, alpha=0.18,
                                 linewidth=0)
                top.plot(x, prof["null"], "--", color=c, alpha=0.8, linewidth=1.2,
                         label=f"layer {layer}: permutation null")
                bottom.plot(x, prof["z"], "o-", color=c, label=f"layer {layer}")
                bottom.fill_between(x, prof["z"] - prof["z_ci"], prof["z"] + prof["z_ci"],
                                    color=c, alpha=0.18, linewidth=0)
            if not drawn:
                _empty(top)
                _empty(bottom)
                continue
            name = "quartiles" if g == 4 else ("deciles" if g == 10 else f"{g} blocks")
            top.set_title(f"{scheme.capitalize()} segments ({name} of the activation ranking)")
            top.set_ylabel("homogeneity\n(mean pairwise cosine similarity)")
            top.legend(loc="best")
            bottom.axhline(0, color="#444", linewidth=0.8)
            bottom.set_ylabel("homogeneity z vs permutation null\n(mean over neurons ± 95% CI)")
            bottom.set_xlabel("activation segment (0 = highest mean activation)")
            bottom.set_xticks(range(g))
            bottom.legend(loc="best")
        return _save(fig, out, "homogeneity_by_segment")


def _param(data: ReportData, key: str):
    """An analysis setting (`data.config` has the schema's defaults filled in)."""
    return data.config["analysis"][key]


# --- per-neuron metric distributions -----------------------------------------------------

METRIC_PANELS = [
    ("top_coarse_z", "top coarse segment homogeneity z", 0.0),
    ("top_fine_z", "top fine segment homogeneity z", 0.0),
    ("ami_coarse", "AMI(coarse segments, clusters)", None),
    ("ami_coarse_z", "AMI z vs permutation null", 0.0),
    ("kw_epsilon2", "Kruskal-Wallis ε² (activation across clusters)", None),
    ("n_clusters", "number of clusters", None),
]


def _hist(ax, data: ReportData, col: str, label: str, ref: float | None) -> None:
    layers = data.layer_ids
    series = {layer: _values(data.analyzed(layer), col) for layer in layers}
    everything = np.concatenate([v for v in series.values() if v.size] or [np.array([])])
    if everything.size == 0:
        _empty(ax, f"no {label}")
        ax.set_title(label)
        return
    integer = col == "n_clusters"
    if integer:
        values = np.arange(int(everything.min()), int(everything.max()) + 1)
        width = 0.8 / len(layers)
        for i, layer in enumerate(layers):
            v = series[layer]
            share = [100.0 * np.mean(v == k) if v.size else 0.0 for k in values]
            ax.bar(values + (i - (len(layers) - 1) / 2) * width, share, width=width,
                   color=layer_color(layers, layer), label=f"layer {layer}")
        ax.set_xticks(values)
    else:
        lo, hi = np.percentile(everything, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        n_bins = int(np.clip(2 * math.sqrt(everything.size / len(layers)), 8, 40))
        bins = np.linspace(lo, hi, n_bins + 1)
        for layer in layers:
            v = np.clip(series[layer], lo, hi)
            if v.size == 0:
                continue
            weights = np.full(v.size, 100.0 / v.size)
            c = layer_color(layers, layer)
            ax.hist(v, bins=bins, weights=weights, histtype="stepfilled", alpha=0.25, color=c)
            ax.hist(v, bins=bins, weights=weights, histtype="step", linewidth=1.4, color=c,
                    label=f"layer {layer}: median {np.median(series[layer]):.3g}")
        if ref is not None:
            ax.axvline(ref, color="#444", linewidth=0.8, linestyle=":")
    ax.set_xlabel(label)
    ax.set_ylabel("% of analysed neurons")
    ax.legend(loc="best")


def neuron_metrics(data: ReportData, out: Path) -> Path:
    with mpl.rc_context(STYLE):
        fig = _new(11, 6.4)
        axes = fig.subplots(2, 3)
        for ax, (col, label, ref) in zip(axes.ravel(), METRIC_PANELS, strict=True):
            _hist(ax, data, col, label, ref)
        weak = _param(data, "weak_ami_max")
        if weak is not None:
            ax = axes[0, 2]
            ax.axvline(float(weak), color="#b00", linewidth=1, linestyle="--",
                       label=f"claim 1 'weak' threshold ({weak})")
            ax.legend(loc="best")
        fig.suptitle("Per-neuron metrics, one distribution per layer "
                     "(dotted line: no effect)", fontsize=11)
        return _save(fig, out, "neuron_metrics")


# --- interleaving --------------------------------------------------------------------------


def interleaving(data: ReportData, out: Path) -> Path:
    with mpl.rc_context(STYLE):
        fig = _new(11, 3.8)
        axes = fig.subplots(1, 3)
        _hist(axes[0], data, "runs_z", "runs z (< 0: clusters more contiguous than chance)", 0.0)
        _hist(axes[1], data, "interleaving", "interleaving index (0 contiguous, 1 random)", 1.0)
        thr = _param(data, "interleaving_min")
        if thr is not None:
            axes[1].axvline(float(thr), color="#b00", linewidth=1, linestyle="--",
                            label=f"claim 3 threshold {thr}")
            axes[1].legend(loc="best")
        _hist(axes[2], data, "range_overlap_frac",
              "share of cluster pairs with\noverlapping rank ranges", None)
        fig.suptitle("Do activation segments interleave across categorical clusters?",
                     fontsize=11)
        return _save(fig, out, "interleaving")


# --- cluster activation vs distinctness -----------------------------------------------------


def cluster_distinctness(data: ReportData, out: Path) -> Path:
    layers = data.layer_ids
    clusters = data.clusters
    with mpl.rc_context(STYLE):
        fig = _new(4.0 * (len(layers) + 1), 3.9)
        axes = np.atleast_1d(fig.subplots(1, len(layers) + 1, sharey=False))
        rng = np.random.default_rng(0)
        for ax, layer in zip(axes[:-1], layers, strict=True):
            neu = data.analyzed(layer)
            if clusters.empty or "n_clusters" not in neu:
                _empty(ax)
                continue
            multi = set(neu.loc[pd.to_numeric(neu["n_clusters"], errors="coerce") >= 3,
                                "neuron"].astype(int))
            part = clusters[(clusters["layer"] == layer) & clusters["neuron"].isin(multi)]
            x = pd.to_numeric(part["activation_position"], errors="coerce").to_numpy(float)
            y = pd.to_numeric(part["distinctness"], errors="coerce").to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            if x.size == 0:
                _empty(ax, "no neuron with ≥ 3 clusters")
                ax.set_title(f"Layer {layer}")
                continue
            c = layer_color(layers, layer)
            ax.scatter(x + rng.uniform(-0.02, 0.02, x.size), y, s=6, alpha=0.3, color=c,
                       linewidths=0, label="one cluster")
            edges = np.linspace(0, 1, 6)
            centre, mean, half = [], [], []
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                sel = (x >= lo) & ((x < hi) | (hi == 1.0))
                if sel.any():
                    m, h = _mean_ci(y[sel])
                    centre.append((lo + hi) / 2)
                    mean.append(m)
                    half.append(h)
            ax.errorbar(centre, mean, yerr=half, color="black", marker="s", markersize=4,
                        capsize=3, linewidth=1.3, label="binned mean ± 95% CI")
            ax.set_title(f"Layer {layer}")
            ax.set_xlabel("cluster's activation position in its neuron\n"
                          "(0 = lowest mean activation, 1 = highest)")
            ax.set_ylabel("distinctness (mean |Cliff's δ| vs other clusters)")
            ax.set_xlim(-0.06, 1.06)
            ax.legend(loc="best")
        _hist(axes[-1], data, "distinct_rho",
              "per-neuron ρ(cluster mean rank, distinctness z)", 0.0)
        shuffled = data.controls[data.controls["kind"] == "shuffled"] if len(data.controls) \
            else data.controls
        if len(shuffled):
            rho = pd.to_numeric(shuffled["distinct_rho"], errors="coerce").dropna()
            axes[-1].hist(rho, bins=30, histtype="step", color="#555", linestyle="--",
                          density=True, label="shuffled controls")
            axes[-1].legend(loc="best")
        axes[-1].set_title("> 0: low-activation clusters most distinct")
        fig.suptitle("Cluster mean activation vs how distinct its activations are "
                     "(neurons with ≥ 3 clusters)", fontsize=11)
        return _save(fig, out, "cluster_distinctness")


# --- example neurons ----------------------------------------------------------------------


def openai_overlap(frame: pd.DataFrame, layers: list[int], out: Path) -> Path:
    """Distribution of overlap_frac per layer, over the neurons that have an OpenAI file."""
    found = frame[frame["found"].astype(bool)]
    layers = sorted(set(layers) | {int(x) for x in frame["layer"]})
    bins = np.linspace(0.0, 1.0, 21)
    with mpl.rc_context(STYLE):
        fig = _new(6.4, 3.4)
        ax = fig.subplots()
        drawn = False
        for layer in layers:
            v = pd.to_numeric(found.loc[found["layer"] == layer, "overlap_frac"],
                              errors="coerce").dropna().to_numpy(dtype=float)
            if v.size == 0:
                continue
            drawn = True
            c = layer_color(layers, layer)
            weights = np.full(v.size, 100.0 / v.size)
            ax.hist(v, bins=bins, weights=weights, histtype="stepfilled", alpha=0.25, color=c)
            ax.hist(v, bins=bins, weights=weights, histtype="step", linewidth=1.4, color=c,
                    label=f"layer {layer} (n = {v.size:,}): median {np.median(v):.2f}")
        if drawn:
            ax.set_xlim(0, 1)
            ax.set_xlabel("overlap with OpenAI's top tokens (share of the top tokens)")
            ax.set_ylabel("% of neurons with a file")
            ax.legend(loc="best")
        else:
            _empty(ax, "no neuron has an OpenAI file")
        return _save(fig, out, "openai_overlap")


def example_neuron(tokens: pd.DataFrame, clusters: pd.DataFrame, layer: int, neuron: int,
                   subtitle: str, out: Path) -> Path:
    """Core tokens in activation order as bars coloured by cluster, segment boundaries marked."""
    tk = tokens.sort_values("rank")
    act = pd.to_numeric(tk["mean_activation"], errors="coerce").to_numpy(float)
    cl = tk["cluster"].to_numpy(int) if "cluster" in tk else np.zeros(len(tk), int)
    k = len(tk)
    with mpl.rc_context(STYLE):
        fig = _new(max(8.0, 0.105 * k + 2.4), 3.9)
        ax = fig.subplots()
        ax.grid(False)
        x = np.arange(k)
        ax.bar(x, act, width=0.85, color=[cluster_color(int(c)) for c in cl])
        ax.set_xlim(-0.7, k - 0.3)
        labels = [str(t).strip() or repr(str(t)) for t in tk["token"]]
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=90, fontsize=6.5 if k > 40 else 8)
        ax.set_ylabel("mean activation")
        ax.set_xlabel("core tokens, ordered by mean activation (highest left)")
        lo = min(0.0, float(np.nanmin(act))) if k else 0.0
        hi = float(np.nanmax(act)) if k else 1.0
        ax.set_ylim(lo, hi * 1.16 if hi > 0 else 1.0)
        for col, style in (("fine_segment", dict(color="#888", linestyle=":", linewidth=0.8)),
                           ("segment", dict(color="#222", linestyle="-", linewidth=1.2))):
            if col not in tk:
                continue
            seg = tk[col].to_numpy(int)
            for b in np.flatnonzero(seg[1:] != seg[:-1]) + 1:
                ax.axvline(b - 0.5, **style)
        if "segment" in tk:
            seg = tk["segment"].to_numpy(int)
            for s in np.unique(seg[seg >= 0]):
                where = np.flatnonzero(seg == s)
                ax.text(where.mean(), hi * 1.1 if hi > 0 else 0.9, f"segment {s}",
                        ha="center", va="center", fontsize=8, color="#222")
        names = {}
        if not clusters.empty:
            names = dict(zip(clusters["cluster"].astype(int), clusters["name"].astype(str),
                             strict=True))
        handles = [Patch(color=cluster_color(c), label=f"{c}: {names.get(c, '')}"[:48])
                   for c in sorted(set(int(c) for c in cl))]
        handles += [Line2D([], [], color="#222", linewidth=1.2,
                                     label="segment boundary"),
                    Line2D([], [], color="#888", linestyle=":", linewidth=0.8,
                                     label="fine segment boundary")]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0),
                  fontsize=7.5, title="cluster (most central tokens)", title_fontsize=8)
        ax.set_title(f"Layer {layer}, neuron {neuron}: {subtitle}", loc="left")
        return _save(fig, out, f"example_L{layer}_N{neuron}")


KIND_PASS = [("pass_neuron", "neurons", "#1f4e79"), ("pass_shuffled", "shuffled", "#bab0ac"),
             ("pass_surrogate", "linear surrogate", "#f28e2b"),
             ("pass_random_direction", "random direction", "#59a14f")]


def pass_rates_by_kind(criteria: dict[str, pd.DataFrame], out: Path) -> Path:
    """One panel per model: each criterion's pass rate (mean over layers) on real neurons beside
    each control kind, so a criterion that controls pass as often as neurons shows at a glance."""
    shown = {name: frame for name, frame in criteria.items() if frame is not None and len(frame)}
    with mpl.rc_context(STYLE):
        fig = _new(9.6, 1.2 + 2.1 * max(len(shown), 1))
        axes = fig.subplots(max(len(shown), 1), 1, squeeze=False)[:, 0]
        if not shown:
            _empty(axes[0], "no criteria table")
            return _save(fig, out, "pass_rates_by_kind")
        for ax, (name, frame) in zip(axes, shown.items(), strict=True):
            means = frame.groupby("criterion", sort=True).mean(numeric_only=True)
            kinds = [(c, label, colour) for c, label, colour in KIND_PASS if c in means]
            width = 0.8 / max(len(kinds), 1)
            x = np.arange(len(means))
            for j, (col, label, colour) in enumerate(kinds):
                ax.bar(x + (j - (len(kinds) - 1) / 2) * width, means[col].to_numpy(float), width,
                       color=colour, label=label)
            ax.set_xticks(x, list(means.index))
            ax.set_ylim(0, 1)
            ax.set_ylabel("share passing")
            ax.set_title(name, loc="left", fontsize=10)
        axes[0].legend(loc="upper right", ncols=len(KIND_PASS), fontsize=8)
        return _save(fig, out, "pass_rates_by_kind")
