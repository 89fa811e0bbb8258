"""How clusters interleave along the activation ranking, and how much segments tell about clusters.

- Runs: the number of maximal blocks of equal cluster labels when tokens are read from the
  highest to the lowest activation. A one-to-one segment/cluster mapping gives the minimum (one
  run per cluster); random order gives about k (1 - sum p_c^2) + 1. The interleaving index
  (runs - c) / (E_null[runs] - c) puts that on a 0 (contiguous) to 1 (random) scale.
- Activation-range overlap: for each pair of clusters, whether their rank intervals
  [first rank, last rank] intersect, and the Jaccard overlap of those intervals.
- Adjusted mutual information between segment and cluster labels (arithmetic normalisation,
  natural log, as sklearn's default). The expected MI under fixed margins (Vinh et al. 2010)
  depends only on the segment and cluster sizes, which permutations of ranks keep, so the AMI of
  every permutation is an affine function of its sum of n_ij log n_ij: one bincount per batch.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .arrays import run_starts, upper_pairs


def count_runs(labels: np.ndarray) -> np.ndarray:
    """Number of runs of equal labels along the last axis."""
    labels = np.asarray(labels)
    return 1 + np.count_nonzero(labels[..., 1:] != labels[..., :-1], axis=-1)


def runs_per_cluster(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """For each cluster, the number of contiguous rank blocks it occupies."""
    starts = run_starts(labels)
    return np.bincount(labels[starts], minlength=n_clusters)


def range_overlap(labels: np.ndarray, n_clusters: int) -> tuple[float, float]:
    """Fraction of cluster pairs whose rank ranges intersect, and their mean Jaccard overlap."""
    if n_clusters < 2:
        return float("nan"), float("nan")
    ranks = np.arange(labels.size)
    lo = np.full(n_clusters, labels.size)
    hi = np.full(n_clusters, -1)
    np.minimum.at(lo, labels, ranks)
    np.maximum.at(hi, labels, ranks)
    i, j = upper_pairs(n_clusters)
    inter = np.minimum(hi[i], hi[j]) - np.maximum(lo[i], lo[j]) + 1
    union = np.maximum(hi[i], hi[j]) - np.minimum(lo[i], lo[j]) + 1
    return float(np.mean(inter > 0)), float(np.mean(np.maximum(inter, 0) / union))


def xlogx_table(n: int) -> np.ndarray:
    """t log t for t = 0..n (0 log 0 = 0): looked up, not recomputed, in the permutation loop."""
    t = np.arange(n + 1, dtype=np.float64)
    out = np.zeros(n + 1)
    out[1:] = t[1:] * np.log(t[1:])
    return out


def entropy_from_counts(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of a labelling given its class sizes."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    n = c.sum()
    return float(np.log(n) - np.sum(c * np.log(c)) / n)


def expected_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """E[MI] between two random labellings with class sizes `a` and `b` (hypergeometric model)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    a = a[a > 0]
    b = b[b > 0]
    n = int(a.sum())
    top = int(min(a.max(), b.max()))
    lf = gammaln(np.arange(n + 2, dtype=np.float64))  # lf[t] = log((t - 1)!)
    nij = np.arange(1, top + 1)[None, None, :]
    ai = a[:, None, None]
    bj = b[None, :, None]
    valid = (nij >= ai + bj - n) & (nij <= np.minimum(ai, bj))
    x = np.where(valid, nij, 1)
    log_p = (
        lf[ai + 1]
        + lf[bj + 1]
        + lf[n - ai + 1]
        + lf[n - bj + 1]
        - lf[n + 1]
        - lf[x + 1]
        - lf[np.where(valid, ai - x, 0) + 1]
        - lf[np.where(valid, bj - x, 0) + 1]
        - lf[np.where(valid, n - ai - bj + x, 0) + 1]
    )
    term = (x / n) * (np.log(n * x) - np.log(ai * bj)) * np.exp(log_p)
    return float(np.sum(np.where(valid, term, 0.0)))


class AMIScale:
    """Turns sum(n_ij log n_ij) of a contingency table into MI and AMI for fixed margins."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        self.n = float(a.sum())
        xlx = lambda c: float(np.sum(c[c > 0] * np.log(c[c > 0])))  # noqa: E731
        self.offset = self.n * np.log(self.n) - xlx(a) - xlx(b)
        self.emi = expected_mutual_information(a, b)
        normalizer = 0.5 * (entropy_from_counts(a) + entropy_from_counts(b))
        denom = normalizer - self.emi
        eps = np.finfo(np.float64).eps
        self.denom = min(denom, -eps) if denom < 0 else max(denom, eps)

    def mutual_information(self, sum_xlogx: np.ndarray) -> np.ndarray:
        return np.maximum((sum_xlogx + self.offset) / self.n, 0.0)

    def ami(self, sum_xlogx: np.ndarray) -> np.ndarray:
        return (self.mutual_information(sum_xlogx) - self.emi) / self.denom


def adjusted_mutual_information(u: np.ndarray, v: np.ndarray) -> float:
    """AMI of two labellings of the same items (a plain entry point, used by tests and docs)."""
    u = np.unique(np.asarray(u), return_inverse=True)[1]
    v = np.unique(np.asarray(v), return_inverse=True)[1]
    a = np.bincount(u)
    b = np.bincount(v)
    if a.size == b.size == 1:  # neither labelling splits the items: a perfect match
        return 1.0
    table = np.bincount(u * b.size + v, minlength=a.size * b.size)
    return float(AMIScale(a, b).ami(np.sum(xlogx_table(u.size)[table]))[()])
