"""Layer level: FDR across a layer's neurons and one summary row per (layer, kind).

Summaries are effect sizes with intervals, not p-values: for every metric in SUMMARY the median
over the layer's judged rows (excluded neurons left out) with a bootstrap 95% interval
(resampling neurons), plus the mean segment profiles the report draws. Real neurons and each
control kind get the same row, so every number exists for the controls too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .claims import judged
from .columns import FDR_COLUMNS
from .params import resolve_params

SUMMARY = [
    "n_clusters", "silhouette", "mean_similarity", "proxy_coverage", "surrogate_r2", "kw_epsilon2", "ami_coarse",
    "ami_fine", "interleaving", "range_overlap_frac", "top_coarse_homogeneity", "top_coarse_z",
    "top_coarse_homogeneity_dc", "coarse_trend", "coarse_top_margin", "coarse_top_margin_dc",
    "fine_top_excess", "distinct_rho", "coarse_top_position", "fine_top_position",
]  # fmt: skip
PROFILE = ("homogeneity", "homogeneity_dc", "null_mean")


def add_layer_fdr(neurons: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """Copy with `<name>_q` (Benjamini-Hochberg over a layer's rows of one kind) for each
    `<name>_p` in FDR_COLUMNS; NaN p-values are left out and stay NaN."""
    resolve_params(params)
    out = neurons.copy()
    for col in FDR_COLUMNS:
        q = np.full(len(out), np.nan)
        p = out[col].to_numpy(dtype=np.float64, na_value=np.nan)
        for _, idx in out.groupby(["layer", "kind"], sort=False).indices.items():
            ok = idx[np.isfinite(p[idx])]
            if ok.size:
                q[ok] = stats.false_discovery_control(p[ok], method="bh")
        out[col[:-2] + "_q"] = q
    return out


def _median_intervals(frame: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> dict:
    """Median and bootstrap 95% interval of every SUMMARY metric, one resampling for all."""
    row: dict = {}
    n = len(frame)
    index = rng.integers(0, n, size=(n_boot, n)) if n else None
    for col in SUMMARY:
        x = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
        if not n or not np.isfinite(x).any():
            row[f"{col}_median"] = row[f"{col}_lo"] = row[f"{col}_hi"] = np.nan
            continue
        row[f"{col}_median"] = float(np.nanmedian(x))
        with warnings.catch_warnings():  # a resample of only NaN gives NaN, dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(x[index], axis=1)
        medians = medians[np.isfinite(medians)]
        row[f"{col}_lo"], row[f"{col}_hi"] = (np.percentile(medians, [2.5, 97.5])
                                              if medians.size else (np.nan, np.nan))  # fmt: skip
    return row


def _structure_share(rows: pd.DataFrame, alpha: float) -> dict:
    """Share of rows whose core tokens have cluster structure (cluster_structure_p < alpha)."""
    p = rows["cluster_structure_p"].to_numpy(dtype=np.float64)
    p = p[np.isfinite(p)]
    return {"n_structure": int(p.size),
            "cluster_structure_frac": float(np.mean(p < alpha)) if p.size else np.nan}


def _segment_profile(segments: pd.DataFrame, alpha: float) -> dict:
    """Mean homogeneity (raw and double-centred), null mean and share with p < alpha, per
    scheme and segment (0 = top)."""
    row: dict = {}
    for (scheme, s), grp in segments.groupby(["scheme", "segment"], sort=True):
        for stat in PROFILE:
            row[f"{scheme}_{stat}_{s}"] = float(np.nanmean(grp[stat].to_numpy(dtype=float)))
        p = grp["p"].to_numpy(dtype=float)
        p = p[np.isfinite(p)]
        row[f"{scheme}_frac_p_{s}"] = float(np.mean(p < alpha)) if p.size else np.nan
    return row


def summarize_layers(neurons: pd.DataFrame, segments: pd.DataFrame,
                     params: dict | None = None) -> pd.DataFrame:
    """One row per (layer, kind): counts, medians with intervals, segment profiles."""
    params = resolve_params(params)
    rows = []
    for layer in sorted(int(x) for x in neurons["layer"].unique()):
        for index, kind in enumerate(sorted(neurons["kind"].unique())):
            all_rows = neurons[(neurons["layer"] == layer) & (neurons["kind"] == kind)]
            rows_ = judged(neurons, layer, kind)
            rng = np.random.default_rng([int(params["seed"]), layer, index, 5])
            segs = segments[(segments["layer"] == layer) & (segments["kind"] == kind)
                            & segments["neuron"].isin(rows_["neuron"])]  # fmt: skip
            rows.append({
                "layer": layer, "kind": kind, "n_neurons": len(all_rows),
                "n_excluded": int(all_rows["excluded"].astype(bool).sum()),
                **_median_intervals(rows_, rng, int(params["bootstrap"])),
                **{f"{s}_top_is_max_frac": float(np.mean(rows_[f"{s}_top_position"] == 1.0))
                   if len(rows_) else np.nan for s in ("coarse", "fine")},
                **_structure_share(rows_, float(params["alpha"])),
                **_segment_profile(segs, float(params["alpha"])),
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["layer", "kind", "n_neurons", "n_excluded"])
    frame["layer"] = frame["layer"].astype(np.int16)
    return frame
