"""Layer level: FDR across a layer's neurons and one summary row per layer.

Neuron-level permutation and rank tests are corrected with Benjamini-Hochberg across the
neurons of each layer (`add_layer_fdr`, run at merge time when all shards are in).
`summarize_layers` then condenses each layer into medians, FDR-significant fractions and the
across-neuron tests the claims are judged on:

- `<metric>_median` for the main per-neuron metrics, `<name>_frac_p` / `<name>_frac_q`: share of
  neurons with p < alpha / q < alpha for every neuron p-value column `<name>_p`.
- kw_binom_p: one-sided binomial test that more than alpha of neurons have KW p < alpha.
- ami_<scheme>_excess_median: median of AMI minus its permutation null mean (descriptive);
  ami_<scheme>_binom_p: one-sided binomial test that more than alpha of neurons have AMI
  permutation p < alpha. (AMI's null is skewed, so a signed-rank test of the excess would not
  be centred under the null; neuron p-values are.)
- <scheme>_top_position_mean, <scheme>_top_position_p: mean over neurons of the top segment's
  position among the segments by homogeneity (0.5 under the null), Wilcoxon signed-rank of
  position - 0.5, one-sided (greater); <scheme>_top_is_max_frac, <scheme>_top_is_max_p: share
  of neurons whose top segment is the most homogeneous, one-sided binomial test against 1/g.
- <scheme>_trend_wilcoxon_p: per-neuron trend slope > 0, Wilcoxon one-sided.
- <scheme>_page_l, <scheme>_page_l_null, <scheme>_page_p: Page's trend test over neurons of
  segment homogeneity, predicted order top > ... > bottom.
- act_distinct_n, act_distinct_wilcoxon_p: per-neuron Spearman(cluster mean activation,
  distinctness) < 0, Wilcoxon one-sided (less); cluster_act_distinct_rho / _p: the same
  relation pooled over all clusters (activation_position vs distinctness) of neurons with >= 3
  clusters, Spearman, two-sided.
- Segment profiles for the report: <scheme>_homogeneity_<s>, <scheme>_null_mean_<s>,
  <scheme>_z_<s> (means over neurons) and <scheme>_frac_p_<s> (share with p < alpha), for every
  segment s (0 = top) of the coarse and fine schemes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import inference as inf
from .params import resolve_params

P_COLUMNS = [
    "kw_p", "runs_p", "ami_coarse_p", "ami_fine_p", "top_coarse_p", "top_fine_p",
    "coarse_trend_p", "fine_trend_p",
]  # fmt: skip

MEDIAN_COLUMNS = [
    "n_clusters", "silhouette", "mean_similarity", "kw_h", "kw_epsilon2", "n_sig_pairs",
    "act_distinct_rho", "runs", "runs_null_mean", "runs_z", "interleaving",
    "range_overlap_frac", "range_jaccard", "ami_coarse", "ami_coarse_null_mean", "ami_coarse_z",
    "ami_fine", "ami_fine_null_mean", "ami_fine_z", "top_coarse_homogeneity", "top_coarse_z",
    "top_fine_homogeneity", "top_fine_z", "coarse_top_vs_rest", "fine_top_vs_rest",
    "coarse_top_position", "fine_top_position", "coarse_trend", "fine_trend",
]  # fmt: skip


def add_layer_fdr(neurons_df: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """Copy of `neurons_df` with `<name>_q` (BH across the layer's neurons) for each `<name>_p`."""
    resolve_params(params)
    out = neurons_df.copy()
    for col in P_COLUMNS:
        if col not in out:
            continue
        q = np.full(len(out), np.nan)
        p = out[col].to_numpy(dtype=np.float64, na_value=np.nan)
        for _, idx in out.groupby("layer", sort=False).indices.items():
            q[idx] = inf.benjamini_hochberg(p[idx])
        out[col[:-2] + "_q"] = q
    return out


def _values(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype=np.float64, na_value=np.nan)


def _median(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _share(x: np.ndarray, alpha: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.mean(x < alpha)) if x.size else float("nan")


def _segment_profile(segs: pd.DataFrame, scheme: str, alpha: float) -> tuple[dict, np.ndarray]:
    """Mean homogeneity, null mean, z and share significant per segment; and the
    neuron x segment homogeneity table for Page's test."""
    part = segs[segs["scheme"] == scheme]
    row: dict[str, float] = {}
    if part.empty:
        return row, np.empty((0, 0))
    for s, grp in part.groupby("segment", sort=True):
        row[f"{scheme}_homogeneity_{s}"] = float(np.nanmean(_values(grp, "homogeneity")))
        row[f"{scheme}_null_mean_{s}"] = float(np.nanmean(_values(grp, "null_mean")))
        row[f"{scheme}_z_{s}"] = float(np.nanmean(_values(grp, "z")))
        row[f"{scheme}_frac_p_{s}"] = _share(_values(grp, "p"), alpha)
    table = part.pivot(index="neuron", columns="segment", values="homogeneity")
    return row, table.sort_index(axis=1).to_numpy(dtype=np.float64)


def summarize_layers(
    neurons_df: pd.DataFrame,
    segments_df: pd.DataFrame,
    clusters_df: pd.DataFrame,
    params: dict | None = None,
) -> pd.DataFrame:
    """One row per layer (columns in the module docstring)."""
    params = resolve_params(params)
    alpha = float(params["alpha"])
    if not any(col[:-2] + "_q" in neurons_df for col in P_COLUMNS):
        neurons_df = add_layer_fdr(neurons_df, params)
    rows = []
    for layer in sorted(neurons_df["layer"].unique()):
        neu = neurons_df[neurons_df["layer"] == layer]
        row: dict[str, float] = {"layer": int(layer), "n_neurons": len(neu)}
        for col in MEDIAN_COLUMNS:
            row[f"{col}_median"] = _median(_values(neu, col))
        for col in ("n_clusters", "kw_epsilon2", "ami_coarse", "ami_fine", "interleaving"):
            x = _values(neu, col)
            row[f"{col}_mean"] = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
        for col in P_COLUMNS:
            name = col[:-2]
            row[f"{name}_frac_p"] = _share(_values(neu, col), alpha)
            row[f"{name}_frac_q"] = _share(_values(neu, name + "_q"), alpha)
        with np.errstate(invalid="ignore", divide="ignore"):
            row["frac_pairs_sig_mean"] = (
                float(np.nanmean(_values(neu, "n_sig_pairs") / _values(neu, "n_pairs")))
                if len(neu)
                else float("nan")
            )
        kw_p = _values(neu, "kw_p")
        kw_p = kw_p[np.isfinite(kw_p)]
        row["kw_binom_p"] = inf.binomial_greater_p(int(np.sum(kw_p < alpha)), kw_p.size, alpha)
        for scheme in ("coarse", "fine"):
            excess = _values(neu, f"ami_{scheme}") - _values(neu, f"ami_{scheme}_null_mean")
            row[f"ami_{scheme}_excess_median"] = _median(excess)
            ami_p = _values(neu, f"ami_{scheme}_p")
            ami_p = ami_p[np.isfinite(ami_p)]
            row[f"ami_{scheme}_binom_p"] = inf.binomial_greater_p(
                int(np.sum(ami_p < alpha)), ami_p.size, alpha
            )
            position = _values(neu, f"{scheme}_top_position")
            position = position[np.isfinite(position)]
            row[f"{scheme}_top_position_mean"] = (
                float(position.mean()) if position.size else float("nan")
            )
            row[f"{scheme}_top_position_p"] = inf.wilcoxon_p(position - 0.5, "greater")[1]
            n_seg = params["n_segments"] if scheme == "coarse" else params["fine_segments"]
            is_max = int(np.sum(position == 1.0))
            row[f"{scheme}_top_is_max_frac"] = is_max / position.size if position.size else np.nan
            row[f"{scheme}_top_is_max_p"] = inf.binomial_greater_p(
                is_max, position.size, 1.0 / n_seg
            )
            row[f"{scheme}_trend_wilcoxon_p"] = inf.wilcoxon_p(
                _values(neu, f"{scheme}_trend"), "greater"
            )[1]
        rho = _values(neu, "act_distinct_rho")
        row["act_distinct_n"] = int(np.isfinite(rho).sum())
        row["act_distinct_wilcoxon_p"] = inf.wilcoxon_p(rho, "less")[1]
        clu = clusters_df[(clusters_df["layer"] == layer)]
        multi = neu.loc[_values(neu, "n_clusters") >= 3, "neuron"]
        clu = clu[clu["neuron"].isin(multi)]
        rho_c, p_c = inf.spearman_test(
            _values(clu, "activation_position"), _values(clu, "distinctness")
        )
        row["cluster_act_distinct_rho"] = rho_c
        row["cluster_act_distinct_p"] = p_c
        segs = segments_df[(segments_df["layer"] == layer)]
        segs = segs[segs["neuron"].isin(neu["neuron"])]
        for scheme in ("coarse", "fine"):
            profile, table = _segment_profile(segs, scheme, alpha)
            row.update(profile)
            stat, null, p = inf.page_trend(table) if table.size else (np.nan,) * 3
            row[f"{scheme}_page_l"] = stat
            row[f"{scheme}_page_l_null"] = null
            row[f"{scheme}_page_p"] = p
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["layer", "n_neurons"])
    frame["layer"] = frame["layer"].astype(np.int16)
    return frame
