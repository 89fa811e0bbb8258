"""Per-neuron analysis of a shard of neurons into the four per-shard tables.

Each neuron is analysed on its own (its similarity matrix, clusters and permutations depend only
on its own core tokens and on (seed, layer, neuron)), so any split of neurons into shards gives
identical rows. Inputs are rank-sorted: rank 0 = the core token with the highest mean
activation; unsorted rows, token ids outside the embedding matrix, non-finite activations or
k < max(3, n_segments, fine_segments) raise ValueError. Segments of a single token (k close to
the number of segments) have NaN homogeneity, z, p and trend.

Table columns (see docs/tables.md for the shared contract)
-----------------------------------------------------------
tokens: layer, neuron, rank, token_id, token, mean_activation, max_activation, count,
  cluster (0 = cluster with the highest mean activation), segment (coarse, 0 = top),
  fine_segment (0 = top), centrality (mean cosine to the other members of its cluster).

neurons: layer, neuron, n_tokens, n_clusters, silhouette (cosine, chosen labelling),
  mean_similarity (mean off-diagonal cosine of all core tokens = expected homogeneity of a
  random segment),
  kw_h, kw_df, kw_p, kw_epsilon2 (Kruskal-Wallis of mean activation across clusters),
  n_pairs, n_sig_pairs (Dunn pairs with Holm p < alpha), n_differ_from_rest (clusters whose
  Holm-corrected Mann-Whitney vs the rest is < alpha),
  act_distinct_rho (Spearman over clusters between mean activation and distinctness; < 0 means
  low-activation clusters are the most distinct; NaN with fewer than 3 clusters),
  runs, runs_null_mean, runs_null_sd, runs_z, runs_p (one-sided: fewer runs than chance, i.e.
  clusters more contiguous in the ranking than chance), interleaving ((runs - c) /
  (runs_null_mean - c): 0 contiguous clusters, ~1 random order),
  range_overlap_frac, range_jaccard (cluster pairs with intersecting rank ranges; mean Jaccard),
  ami_coarse, ami_coarse_null_mean, ami_coarse_null_sd, ami_coarse_z, ami_coarse_p and the same
  for ami_fine (AMI of segment vs cluster labels; p one-sided: more than chance),
  top_coarse_homogeneity, top_coarse_z, top_coarse_p, top_fine_homogeneity, top_fine_z,
  top_fine_p (the top segment's rows of the segments table),
  coarse_top_vs_rest, fine_top_vs_rest (z of segment 0 minus mean z of the other segments;
  descriptive: its null distribution is skewed, so layer tests use the position below),
  coarse_top_position, fine_top_position (share of the other segments that are less homogeneous
  than the top one: 1 = top segment most homogeneous; uniform on {0, 1/(g-1), ..., 1} under
  the null, whatever the similarity structure),
  coarse_trend, coarse_trend_p, fine_trend, fine_trend_p (least-squares slope of segment
  homogeneity on segment height, top segment highest, in homogeneity per segment step; > 0:
  homogeneity rises with activation; p: permutation, one-sided. A slope rather than a rank
  correlation: with 4 segments a rank correlation cannot reach p < 1/24, and the slope keeps
  the size of the effect).
  `add_layer_fdr` adds a `<name>_q` column for every `<name>_p` above.

segments: layer, neuron, scheme ("coarse" | "fine"), segment, size, rank_min, rank_max,
  act_min, act_max, act_mean (mean activation), homogeneity (mean pairwise cosine, off-diagonal),
  null_mean, null_sd (ddof = 1), z = (homogeneity - null_mean) / null_sd, p (permutation:
  same-size random segments of the neuron's own core tokens; one-sided,
  (1 + #{null >= observed - 1e-6}) / (1 + P), the 1e-6 absorbing float32 round-off),
  n_clusters_present, dominant_cluster, purity (share of the dominant cluster).

All null values of a neuron come from one batch of P random permutations of its ranks
(permutation.py), shared by the segment, trend, runs and AMI tests; z-scores of skewed
statistics (AMI, runs) are descriptive, the permutation p-values are the tests.

clusters: layer, neuron, cluster, size, mean_activation, act_min, act_max, rank_min, rank_max,
  homogeneity, name (the cluster_name_tokens most central tokens joined by ' · '), n_runs
  (contiguous rank blocks it occupies), vs_rest_effect (rank-biserial of its activations vs the
  other core tokens; > 0 higher), vs_rest_p, vs_rest_p_holm, differs_from_rest,
  n_sig_pairs (Dunn pairs involving it with Holm p < alpha), distinctness (mean |Cliff's delta|
  of its activations against each other cluster), activation_position (0 = lowest mean
  activation of the neuron's clusters, 1 = highest).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd

from . import inference as inf
from .arrays import upper_pairs
from .clustering import centrality, choose_clusters, cluster_names, renumber_by_activation
from .interleaving import AMIScale, range_overlap, runs_per_cluster
from .params import resolve_params
from .permutation import PermutationPlan
from .segments import rank_segments, segment_composition, segment_starts
from .similarity import block_homogeneity, cosine_similarity_matrix, mean_offdiagonal

try:  # optional: keeps BLAS single-threaded inside the neuron loop (see analyze_shard)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - then set OPENBLAS_NUM_THREADS=1 in the environment
    threadpool_limits = None

SCHEMES = ("coarse", "fine")
TOL = 1e-6  # float32 round-off allowance when comparing observed and permuted homogeneity

NEURON_COLUMNS = [
    "n_tokens",
    "n_clusters", "silhouette", "mean_similarity", "kw_h", "kw_df", "kw_p", "kw_epsilon2",
    "n_pairs", "n_sig_pairs", "n_differ_from_rest", "act_distinct_rho", "runs",
    "runs_null_mean", "runs_null_sd", "runs_z", "runs_p", "interleaving", "range_overlap_frac",
    "range_jaccard",
    "ami_coarse", "ami_coarse_null_mean", "ami_coarse_null_sd", "ami_coarse_z", "ami_coarse_p",
    "ami_fine", "ami_fine_null_mean", "ami_fine_null_sd", "ami_fine_z", "ami_fine_p",
    "top_coarse_homogeneity", "top_coarse_z", "top_coarse_p",
    "top_fine_homogeneity", "top_fine_z", "top_fine_p",
    "coarse_top_vs_rest", "fine_top_vs_rest", "coarse_top_position", "fine_top_position",
    "coarse_trend", "coarse_trend_p", "fine_trend", "fine_trend_p",
]  # fmt: skip


def _segment_stats(scheme_labels, within, act, sim, clusters, n_clusters):
    """Segment rows of one scheme plus its top-segment and trend summaries."""
    g = int(scheme_labels.max()) + 1
    size = np.bincount(scheme_labels, minlength=g)
    pairs = (size * (size - 1)).astype(np.float64)
    observed = block_homogeneity(sim, scheme_labels, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        null = within[1:] / pairs
    null_mean = null.mean(axis=0)
    null_sd = null.std(axis=0, ddof=1) if null.shape[0] > 1 else np.full(g, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(null_sd > 0, (observed - null_mean) / null_sd, np.nan)
    hits = np.count_nonzero(null >= observed[None, :] - TOL, axis=0)
    p = np.where(np.isfinite(observed), (1.0 + hits) / (1.0 + null.shape[0]), np.nan)
    # trend: least-squares slope of homogeneity on segment height (top = g - 1), observed row
    # and null rows; a linear contrast, so a very homogeneous top segment counts in full
    height = (g - 1 - np.arange(g)).astype(np.float64)
    height -= height.mean()
    table = np.vstack([observed, null])
    slope = (table @ height) / (height @ height)
    trend = float(slope[0])
    trend_p = inf.empirical_p(trend, slope[1:], greater=True, tol=1e-9)
    starts = segment_starts(scheme_labels)
    ends = np.append(starts[1:], scheme_labels.size) - 1
    present, dominant, purity = segment_composition(scheme_labels, clusters, g, n_clusters)
    rows = {
        "segment": np.arange(g),
        "size": size,
        "rank_min": starts,
        "rank_max": ends,
        "act_min": act[ends],
        "act_max": act[starts],
        "act_mean": np.bincount(scheme_labels, weights=act, minlength=g) / size,
        "homogeneity": observed,
        "null_mean": null_mean,
        "null_sd": null_sd,
        "z": z,
        "p": p,
        "n_clusters_present": present,
        "dominant_cluster": dominant,
        "purity": purity,
    }
    rest = z[1:]
    top_vs_rest = float(z[0] - np.nanmean(rest)) if np.any(np.isfinite(rest)) else float("nan")
    if np.all(np.isfinite(observed)):
        position = float(np.sum(observed[1:] < observed[0]) / (g - 1))
    else:
        position = float("nan")
    summary = {
        "homogeneity": float(observed[0]),
        "z": float(z[0]),
        "p": float(p[0]),
        "top_vs_rest": top_vs_rest,
        "top_position": position,
        "trend": trend,
        "trend_p": trend_p,
    }
    return rows, summary


def analyze_neuron(
    layer: int,
    neuron: int,
    token_ids: np.ndarray,
    tokens: list[str],
    act: np.ndarray,
    embeddings: np.ndarray,
    params: dict,
    plans: dict,
) -> tuple[dict, dict, dict, dict]:
    """Metrics of one neuron: (neuron scalars, segment columns by scheme, cluster columns,
    token columns cluster/segment/fine_segment/centrality)."""
    k = token_ids.size
    alpha = float(params["alpha"])
    sim = cosine_similarity_matrix(embeddings, token_ids)
    sim64 = sim.astype(np.float64)
    raw, silhouette = choose_clusters(sim64, params)
    clusters = renumber_by_activation(raw, act)
    c = int(clusters.max()) + 1
    schemes = [rank_segments(k, params["n_segments"]), rank_segments(k, params["fine_segments"])]
    key = (k, int(params["n_segments"]), int(params["fine_segments"]))
    if key not in plans:
        plans[key] = PermutationPlan(k, params["permutations"], schemes)
    plan = plans[key]
    rng = np.random.default_rng([int(params["seed"]), int(layer), int(neuron)])
    sim0 = sim.copy()
    np.fill_diagonal(sim0, 0.0)
    perm = plan.run(sim0, clusters, c, plan.draw(rng))

    out: dict[str, Any] = {
        "n_tokens": k,
        "n_clusters": c,
        "silhouette": silhouette,
        "mean_similarity": mean_offdiagonal(sim64),
    }
    segment_rows = {}
    for name, labels, within in zip(SCHEMES, schemes, perm.within, strict=True):
        rows, summary = _segment_stats(labels, within, act, sim64, clusters, c)
        segment_rows[name] = rows
        out[f"top_{name}_homogeneity"] = summary["homogeneity"]
        out[f"top_{name}_z"] = summary["z"]
        out[f"top_{name}_p"] = summary["p"]
        out[f"{name}_top_vs_rest"] = summary["top_vs_rest"]
        out[f"{name}_top_position"] = summary["top_position"]
        out[f"{name}_trend"] = summary["trend"]
        out[f"{name}_trend_p"] = summary["trend_p"]

    # interleaving: runs along the ranking, range overlap, AMI vs permutation null
    cluster_size = np.bincount(clusters, minlength=c)
    runs_obs = float(perm.runs[0])
    runs_null = perm.runs[1:].astype(np.float64)
    mean, sd, z = inf.null_z(runs_obs, runs_null)
    out.update(runs=runs_obs, runs_null_mean=mean, runs_null_sd=sd, runs_z=z)
    out["runs_p"] = inf.empirical_p(runs_obs, runs_null, greater=False)
    out["interleaving"] = (runs_obs - c) / (mean - c) if mean > c else float("nan")
    out["range_overlap_frac"], out["range_jaccard"] = range_overlap(clusters, c)
    for name, labels, sums in zip(SCHEMES, schemes, perm.sum_xlogx, strict=True):
        scale = AMIScale(np.bincount(labels), cluster_size)
        ami = scale.ami(sums)
        mean, sd, z = inf.null_z(float(ami[0]), ami[1:])
        out[f"ami_{name}"] = float(ami[0])
        out[f"ami_{name}_null_mean"] = mean
        out[f"ami_{name}_null_sd"] = sd
        out[f"ami_{name}_z"] = z
        out[f"ami_{name}_p"] = inf.empirical_p(float(ami[0]), ami[1:], greater=True, tol=1e-12)

    # activation differences between clusters
    kw = inf.kruskal_wallis(act, clusters, c)
    out.update(kw_h=kw.h, kw_df=c - 1, kw_p=kw.p, kw_epsilon2=kw.epsilon2)
    _, pair_p = inf.dunn(kw.rank_sum, kw.size, kw.sigma2)
    pair_sig = inf.holm(pair_p) < alpha
    pi_, pj_ = upper_pairs(c)
    sig_per_cluster = np.bincount(pi_[pair_sig], minlength=c) + np.bincount(
        pj_[pair_sig], minlength=c
    )
    out["n_pairs"] = int(pair_p.size)
    out["n_sig_pairs"] = int(pair_sig.sum())
    _, effect, rest_p = inf.vs_rest(kw.rank_sum, kw.size, k, kw.tie_term)
    rest_holm = inf.holm(rest_p)
    out["n_differ_from_rest"] = int(np.sum(rest_holm < alpha))
    delta = inf.cliffs_delta(act, clusters, c)
    distinct = np.abs(delta).sum(axis=1) / (c - 1)
    cluster_mean = np.bincount(clusters, weights=act, minlength=c) / cluster_size
    out["act_distinct_rho"] = inf.spearman(cluster_mean, distinct) if c >= 3 else float("nan")

    central = centrality(sim64, clusters, c)
    ranks = np.arange(k)
    lo = np.full(c, k)
    hi = np.full(c, -1)
    np.minimum.at(lo, clusters, ranks)
    np.maximum.at(hi, clusters, ranks)
    act_lo = np.full(c, np.inf)
    act_hi = np.full(c, -np.inf)
    np.minimum.at(act_lo, clusters, act)
    np.maximum.at(act_hi, clusters, act)
    cluster_rows = {
        "cluster": np.arange(c),
        "size": cluster_size,
        "mean_activation": cluster_mean,
        "act_min": act_lo,
        "act_max": act_hi,
        "rank_min": lo,
        "rank_max": hi,
        "homogeneity": block_homogeneity(sim64, clusters, c),
        "name": cluster_names(tokens, clusters, central, c, int(params["cluster_name_tokens"])),
        "n_runs": runs_per_cluster(clusters, c),
        "vs_rest_effect": effect,
        "vs_rest_p": rest_p,
        "vs_rest_p_holm": rest_holm,
        "differs_from_rest": rest_holm < alpha,
        "n_sig_pairs": sig_per_cluster,
        "distinctness": distinct,
        "activation_position": (c - 1 - np.arange(c)) / (c - 1),
    }
    token_cols = {
        "cluster": clusters,
        "segment": schemes[0],
        "fine_segment": schemes[1],
        "centrality": central,
    }
    return out, segment_rows, cluster_rows, token_cols


def analyze_shard(
    layer: int,
    neurons: np.ndarray,
    token_ids: np.ndarray,
    tokens: list[list[str]],
    mean_act: np.ndarray,
    max_act: np.ndarray,
    counts: np.ndarray,
    embeddings: np.ndarray,
    params: dict | None = None,
) -> dict[str, pd.DataFrame]:
    """Analyse every neuron of one layer's shard; returns tables tokens, neurons, segments,
    clusters (columns in the module docstring). Rows of the (n, k) inputs are neurons, columns
    ranks (descending mean activation); the tokens table keeps that neuron-major order.

    BLAS is limited to one thread for the duration (when threadpoolctl is installed): the
    per-neuron products are small, so extra BLAS threads gain little when the machine is idle
    and, when other jobs occupy the cores, spin-waiting threads made the loop 3x slower in
    measurements. Parallelism comes from running shards side by side.
    """
    params = resolve_params(params)
    neurons = np.asarray(neurons)
    token_ids = np.asarray(token_ids)
    mean_act = np.asarray(mean_act)
    max_act = np.asarray(max_act)
    counts = np.asarray(counts)
    _check_inputs(neurons, token_ids, tokens, mean_act, max_act, counts, embeddings, params)
    limit = threadpool_limits(limits=1, user_api="blas") if threadpool_limits else nullcontext()
    with limit:
        return _analyze_rows(
            layer, neurons, token_ids, tokens, mean_act, max_act, counts, embeddings, params
        )


def _analyze_rows(layer, neurons, token_ids, tokens, mean_act, max_act, counts, embeddings, params):
    """The neuron loop of analyze_shard (inputs already checked)."""
    n = neurons.size
    plans: dict = {}
    neu = defaultdict(list)
    seg = defaultdict(list)
    clu = defaultdict(list)
    tok = defaultdict(list)
    for row in range(n):
        nid = int(neurons[row])
        words = [str(t) for t in tokens[row]]
        stats_, seg_rows, clu_rows, tok_cols = analyze_neuron(
            layer, nid, token_ids[row].astype(np.int64), words,
            mean_act[row].astype(np.float64), embeddings, params, plans,
        )  # fmt: skip
        neu["neuron"].append(nid)
        for col in NEURON_COLUMNS:
            neu[col].append(stats_[col])
        for scheme, rows in seg_rows.items():
            g = rows["segment"].size
            seg["neuron"].append(np.full(g, nid))
            seg["scheme"].append(np.full(g, scheme, dtype=object))
            for col, values in rows.items():
                seg[col].append(np.asarray(values))
        c = clu_rows["cluster"].size
        clu["neuron"].append(np.full(c, nid))
        for col, values in clu_rows.items():
            clu[col].append(np.asarray(values, dtype=object if col == "name" else None))
        tok["token"].append(np.asarray(words, dtype=object))
        for col, values in tok_cols.items():
            tok[col].append(values)
    k = token_ids.shape[1]
    tok_columns = {
        "rank": np.tile(np.arange(k), n),
        "token_id": token_ids.reshape(-1),
        "token": _cat(tok["token"], object),
        "mean_activation": mean_act.reshape(-1),
        "max_activation": max_act.reshape(-1),
        "count": counts.reshape(-1),
        **{
            col: _cat(tok[col], None)
            for col in ("cluster", "segment", "fine_segment", "centrality")
        },
    }
    return {
        "tokens": _tokens_frame(layer, np.repeat(neurons, k), tok_columns),
        "neurons": _neurons_frame(layer, neu),
        "segments": _segments_frame(layer, seg),
        "clusters": _clusters_frame(layer, clu),
    }


def _check_inputs(neurons, token_ids, tokens, mean_act, max_act, counts, embeddings, params):
    """Fail loudly on contract violations instead of producing misaligned tables."""
    n = neurons.size
    if token_ids.ndim != 2 or token_ids.shape[0] != n or len(tokens) != n:
        raise ValueError("token_ids and tokens must have one row per neuron")
    if not (token_ids.shape == mean_act.shape == max_act.shape == counts.shape):
        raise ValueError("token_ids, mean_act, max_act and counts must all be (n_neurons, k)")
    if any(len(row) != token_ids.shape[1] for row in tokens):
        raise ValueError("every row of tokens must hold k decoded strings")
    k = token_ids.shape[1]
    need = max(3, params["n_segments"], params["fine_segments"])
    if n and k < need:
        raise ValueError(f"k = {k} core tokens; the analysis needs at least {need}")
    if n and (token_ids.min() < 0 or token_ids.max() >= embeddings.shape[0]):
        raise ValueError("token ids outside the embedding matrix")
    if not np.all(np.isfinite(mean_act)):
        raise ValueError("mean activations must be finite")
    if np.any(np.diff(mean_act, axis=1) > 0):
        raise ValueError("mean activations must be sorted in descending order along each row")


def _cat(parts: list, dtype) -> np.ndarray:
    if not parts:
        return np.array([], dtype=dtype if dtype is not None else np.float64)
    return np.concatenate(parts).astype(dtype, copy=False) if dtype else np.concatenate(parts)


def _with_keys(layer: int, neuron: np.ndarray, columns: dict) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame.insert(0, "neuron", np.asarray(neuron).astype(np.int32))
    frame.insert(0, "layer", np.full(len(frame), layer, dtype=np.int16))
    return frame


def _tokens_frame(layer: int, neuron: np.ndarray, cols: dict) -> pd.DataFrame:
    types = {
        "rank": np.int16, "token_id": np.int32, "token": object, "mean_activation": np.float32,
        "max_activation": np.float32, "count": np.int64, "cluster": np.int16,
        "segment": np.int16, "fine_segment": np.int16, "centrality": np.float32,
    }  # fmt: skip
    return _with_keys(layer, neuron, {c: np.asarray(v).astype(types[c]) for c, v in cols.items()})


def _neurons_frame(layer: int, neu: dict) -> pd.DataFrame:
    ints = {"n_tokens", "n_clusters", "kw_df", "n_pairs", "n_sig_pairs", "n_differ_from_rest"}
    columns = {
        col: np.asarray(neu[col], dtype=np.int32 if col in ints else np.float64)
        for col in NEURON_COLUMNS
    }
    return _with_keys(layer, np.asarray(neu["neuron"], dtype=np.int32), columns)


def _segments_frame(layer: int, seg: dict) -> pd.DataFrame:
    columns = {
        "scheme": _cat(seg["scheme"], object),
        "segment": _cat(seg["segment"], np.int16),
        "size": _cat(seg["size"], np.int32),
        "rank_min": _cat(seg["rank_min"], np.int16),
        "rank_max": _cat(seg["rank_max"], np.int16),
    }
    for col in ("act_min", "act_max", "act_mean", "homogeneity", "null_mean", "null_sd", "z", "p"):
        columns[col] = _cat(seg[col], np.float64)
    columns["n_clusters_present"] = _cat(seg["n_clusters_present"], np.int16)
    columns["dominant_cluster"] = _cat(seg["dominant_cluster"], np.int16)
    columns["purity"] = _cat(seg["purity"], np.float64)
    return _with_keys(layer, _cat(seg["neuron"], np.int32), columns)


def _clusters_frame(layer: int, clu: dict) -> pd.DataFrame:
    columns = {
        "cluster": _cat(clu["cluster"], np.int16),
        "size": _cat(clu["size"], np.int32),
    }
    for col in ("mean_activation", "act_min", "act_max"):
        columns[col] = _cat(clu[col], np.float64)
    columns["rank_min"] = _cat(clu["rank_min"], np.int16)
    columns["rank_max"] = _cat(clu["rank_max"], np.int16)
    columns["homogeneity"] = _cat(clu["homogeneity"], np.float64)
    columns["name"] = _cat(clu["name"], object)
    columns["n_runs"] = _cat(clu["n_runs"], np.int16)
    for col in ("vs_rest_effect", "vs_rest_p", "vs_rest_p_holm"):
        columns[col] = _cat(clu[col], np.float64)
    columns["differs_from_rest"] = _cat(clu["differs_from_rest"], bool)
    columns["n_sig_pairs"] = _cat(clu["n_sig_pairs"], np.int16)
    columns["distinctness"] = _cat(clu["distinctness"], np.float64)
    columns["activation_position"] = _cat(clu["activation_position"], np.float64)
    return _with_keys(layer, _cat(clu["neuron"], np.int32), columns)
