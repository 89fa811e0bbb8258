"""Every per-neuron statistic, computed for every row of a permutation batch at once.

A row is an order of the neuron's core tokens along the activation ranking: the first rows are
observed (the neuron, its shuffled and surrogate controls), the others random permutations.
Each statistic below is a function of the order alone, so its permutation p-value,
(1 + #{null rows at least as extreme}) / (1 + P), is exact for any observed row that is
exchangeable with the permutations: on shuffled controls every test passes at rate alpha, by
construction and whatever the similarity structure (the calibration table checks it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from .interleaving import AMIScale

TOL = 1e-9  # float round-off allowance when comparing observed and permuted statistics


@dataclass
class SchemeRows:
    """Per-row statistics of one segment scheme (g segments)."""

    homogeneity: np.ndarray  # (R, g) mean pairwise cosine within each segment
    homogeneity_dc: np.ndarray  # (R, g) the same on the double-centred similarity
    trend: np.ndarray  # (R,) least-squares slope of homogeneity on segment height
    top_margin: np.ndarray  # (R,) top segment minus the most homogeneous other segment
    top_margin_dc: np.ndarray  # (R,) the same after double-centring
    top_excess: np.ndarray  # (R,) top segment above the line fitted to the other segments
    ami: np.ndarray  # (R,) adjusted mutual information of segment and cluster labels


def _segment_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts, axis=1, dtype=np.float64)


def scheme_rows(
    within: np.ndarray,
    labels: np.ndarray,
    starts: np.ndarray,
    prototypicality: np.ndarray,
    sum_xlogx: np.ndarray,
    cluster_size: np.ndarray,
    pi: np.ndarray,
) -> SchemeRows:
    """Statistics of one scheme for all rows.

    `prototypicality[i]` is token i's mean similarity to the other core tokens (r_i).
    Double-centring S'_ij = S_ij - r_i - r_j + mean(r) removes how typical a token is of the
    whole core set; a segment's mean of S' is then its homogeneity - 2 mean_segment(r) + mean(r),
    one gather per row instead of a second similarity product.
    """
    g = int(labels.max()) + 1
    size = np.bincount(labels, minlength=g).astype(np.float64)
    pairs = size * (size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        homogeneity = np.where(pairs > 0, within / np.where(pairs > 0, pairs, 1.0), np.nan)
    member_r = _segment_sums(prototypicality[pi], starts) / size
    homogeneity_dc = homogeneity - 2.0 * member_r + float(prototypicality.mean())
    trend, top_margin, top_excess = _shape_statistics(homogeneity, pairs > 0)
    defined_rest = np.flatnonzero(pairs[1:] > 0) + 1
    return SchemeRows(
        homogeneity=homogeneity,
        homogeneity_dc=homogeneity_dc,
        trend=trend,
        top_margin=top_margin,
        top_margin_dc=_margin(homogeneity_dc, defined_rest),
        top_excess=top_excess,
        ami=AMIScale(size, cluster_size).ami(sum_xlogx),
    )


def _margin(values: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Top segment minus the highest of the `rest` segments (NaN without any)."""
    if rest.size == 0:
        return np.full(values.shape[0], np.nan)
    return values[:, 0] - np.max(values[:, rest], axis=1)


def _shape_statistics(homogeneity: np.ndarray,
                      defined: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trend, top margin and top excess over the segments with a homogeneity (`defined`: two
    tokens or more), placed at their own heights. One-token segments (value cuts, or more fine
    segments than half the tokens) have none; the same ones lack it in every permutation row,
    since all rows share the segment sizes. Too few defined segments give NaN."""
    rows, g = homogeneity.shape
    keep = np.flatnonzero(defined)
    nan = np.full(rows, np.nan)
    trend = nan
    if keep.size >= 2:
        height = (g - 1 - keep).astype(np.float64)
        height -= height.mean()
        trend = (homogeneity[:, keep] @ height) / (height @ height)
    rest = keep[keep > 0]
    excess = nan
    if defined[0] and rest.size >= 2:
        design = np.column_stack([np.ones(rest.size), rest.astype(np.float64)])
        excess = homogeneity[:, 0] - (np.linalg.pinv(design) @ homogeneity[:, rest].T)[0]
    return trend, _margin(homogeneity, rest), excess


@dataclass
class ClusterPairs:
    """How the clusters lie along every row's order, counted once per batch: Kruskal-Wallis H
    (rank sums) and the clusters' distinctness (pairwise Cliff's deltas) both follow from it."""

    above: np.ndarray  # (R, c, c) float32: [r, b, a] = token pairs with a above b
    size: np.ndarray  # (R, c) float32: tokens per cluster

    @classmethod
    def of(cls, labels: np.ndarray, n_clusters: int) -> ClusterPairs:
        rows = labels.shape[0]
        cells = (np.arange(rows)[:, None] * n_clusters + labels).reshape(-1)
        size = np.bincount(cells, minlength=rows * n_clusters).reshape(rows, n_clusters)
        from .kernels import cluster_pair_counts  # numba: loaded by the jobs that count

        above = cluster_pair_counts(np.ascontiguousarray(labels, dtype=np.int64), int(n_clusters))
        return cls(above, size.astype(np.float32))

    @property
    def n_clusters(self) -> int:
        return self.above.shape[1]

    @cached_property
    def position_sum(self) -> np.ndarray:
        """(R, c): summed positions (0 = top); a token's position is the tokens above it."""
        return self.above.sum(axis=2)


def kruskal_h(pairs: ClusterPairs) -> np.ndarray:
    """Kruskal-Wallis H of position (rank 1 = top) across clusters, per row (no ties)."""
    size = pairs.size.astype(np.float64)
    k = float(size[0].sum())
    rank_sum = pairs.position_sum.astype(np.float64) + size
    return (12.0 / (k * (k + 1)) * np.sum(rank_sum**2 / np.maximum(size, 1.0), axis=1)
            - 3.0 * (k + 1))  # fmt: skip


def cluster_distinctness(pairs: ClusterPairs) -> tuple[np.ndarray, np.ndarray]:
    """Per row and cluster: mean absolute Cliff's delta against the other clusters, and the
    cluster's mean position (0 = top), from pair counts along the ranking."""
    c, size, before = pairs.n_clusters, pairs.size, pairs.above
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = (before.transpose(0, 2, 1) - before) / (size[:, :, None] * size[:, None, :])
    np.nan_to_num(delta, copy=False)  # [r, a, b]: a above b
    distinct = np.abs(delta).sum(axis=2) / max(c - 1, 1)
    return distinct, pairs.position_sum / np.maximum(size, 1)


def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Ranks along axis 1 (no ties expected; ties get arbitrary distinct ranks)."""
    return np.argsort(np.argsort(x, axis=1, kind="stable"), axis=1).astype(np.float64)


REFERENCE_ROWS = 200  # random orders behind distinctness's standardisation


@lru_cache(maxsize=4096)
def distinctness_reference(size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of each cluster's distinctness over REFERENCE_ROWS random orders of a set
    with these cluster sizes, drawn from a stream seeded by the sizes alone: the same for
    every neuron, seed and shard, so the standardised statistic is a fixed function of the
    order and its p-value carries only the Monte Carlo error of its own permutations."""
    labels = np.repeat(np.arange(len(size)), size)
    rng = np.random.default_rng([len(size), *size])
    orders = rng.permuted(np.tile(labels, (REFERENCE_ROWS, 1)), axis=1)
    distinct, _ = cluster_distinctness(ClusterPairs.of(orders, len(size)))
    return distinct.mean(axis=0), distinct.std(axis=0, ddof=1)


def distinct_rho(pairs: ClusterPairs) -> np.ndarray:
    """Per row: Spearman over clusters between mean position (higher = lower activation) and
    distinctness standardised against random orders of the same cluster sizes
    (`distinctness_reference`).

    Standardising per cluster removes what cluster size alone does to |Cliff's delta| (small
    clusters are noisier, hence more "distinct"); ranking by mean position rather than mean
    activation removes what skewed activations do to small clusters' means. NaN below 3
    clusters.
    """
    if pairs.n_clusters < 3:
        return np.full(pairs.size.shape[0], np.nan)
    mean, sd = distinctness_reference(tuple(int(n) for n in pairs.size[0]))
    distinct, position = cluster_distinctness(pairs)
    z = (distinct - mean) / np.where(sd > 0, sd, 1.0)
    a = _rank_rows(position)
    b = _rank_rows(z)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denom = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    return np.sum(a * b, axis=1) / np.where(denom > 0, denom, np.nan)


def permutation_p(observed: np.ndarray, null: np.ndarray, greater: bool = True) -> np.ndarray:
    """One-sided permutation p of each observed row against the `null` rows, per column of a
    2-D array; NaN null values are left out, NaN observed values give NaN."""
    finite = np.isfinite(null)
    if greater:
        hits = np.sum((null[None] >= observed[:, None] - TOL) & finite[None], axis=1)
    else:
        hits = np.sum((null[None] <= observed[:, None] + TOL) & finite[None], axis=1)
    p = (1.0 + hits) / (1.0 + finite.sum(axis=0))
    return np.where(np.isfinite(observed), p, np.nan)


def null_pass_rate(observed: np.ndarray, null: np.ndarray, alpha: float,
                   greater: bool = True) -> np.ndarray:
    """Per column: the share of null rows that would pass at `alpha` if each were the observed
    one, judged exactly as the observed row is, against the other rows of the exchangeable set
    (the other null rows and the observed one): (1 + #{others at least as extreme}) / (1 + P).

    This is the realised false-positive rate of the test for this token set: just under alpha
    for a continuous statistic, less where ties make the permutation distribution discrete
    (AMI of a few clusters, say). NaN for a column without two finite values."""
    null = np.asarray(null, dtype=np.float64)
    if null.ndim == 1:
        return null_pass_rate(np.atleast_1d(observed), null[:, None], alpha, greater)[0]
    sign = 1.0 if greater else -1.0
    out = np.full(null.shape[1], np.nan)
    for j in range(null.shape[1]):
        v = sign * null[np.isfinite(null[:, j]), j]
        everything = np.append(v, sign * observed[j]) if np.isfinite(observed[j]) else v
        if everything.size < 2:
            continue
        ordered = np.sort(everything)
        at_least = everything.size - np.searchsorted(ordered, v - TOL, side="left")
        out[j] = float(np.mean(at_least / everything.size < alpha))
    return out


def null_summary(observed: np.ndarray,
                 null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Null mean, null sd (ddof 1) and z of each observed row, per column of a 2-D array
    (NaN where the sd is 0 or undefined; NaN null values are left out)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as wanted
        if np.isfinite(null).all():
            mean = null.mean(axis=0)
            sd = null.std(axis=0, ddof=1) if null.shape[0] > 1 else np.full(mean.shape, np.nan)
        else:
            mean = np.nanmean(null, axis=0)
            sd = np.nanstd(null, axis=0, ddof=1)
        z = np.where(sd > 0, (observed - mean) / np.where(sd > 0, sd, 1.0), np.nan)
    return mean, sd, z
