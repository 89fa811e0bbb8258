"""Rank-based tests for one neuron's clusters, written for speed on 100-token neurons.

Kruskal-Wallis (does activation differ between clusters?) with effect sizes
epsilon^2 = H / (n - 1) and eta^2_H = (H - g + 1) / (n - g); Dunn's pairwise z with Holm
correction; Mann-Whitney of each cluster against the rest (normal approximation, tie and
continuity corrected, as scipy's asymptotic method); Cliff's delta between every pair of
clusters. Distribution tails come from scipy.special to avoid the per-call overhead of
scipy.stats objects inside the neuron loop. Each is tested against scipy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

from .arrays import run_starts, upper_pairs


def rank_average(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties averaged, and the sizes of the tie groups."""
    x = np.asarray(x)
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = run_starts(xs)
    starts = np.flatnonzero(new)
    ties = np.diff(starts, append=n)
    average = starts + (ties + 1) / 2.0
    ranks = np.empty(n)
    ranks[order] = average[np.cumsum(new) - 1]
    return ranks, ties


class KruskalResult(NamedTuple):
    """Kruskal-Wallis result plus the rank summaries the post hoc tests reuse."""

    h: float  # tie-corrected H
    p: float  # chi-square tail, df = occupied groups - 1
    epsilon2: float  # H / (n - 1)
    eta2: float  # (H - g + 1) / (n - g)
    rank_sum: np.ndarray  # per group
    size: np.ndarray  # per group (float)
    tie_term: float  # sum over tie groups of t^3 - t
    sigma2: float  # tie-corrected rank variance N(N+1)/12 - tie_term / (12 (N - 1))


def kruskal_wallis(values: np.ndarray, groups: np.ndarray, n_groups: int) -> KruskalResult:
    """Kruskal-Wallis H test of `values` across `groups` (0..n_groups-1)."""
    ranks, ties = rank_average(values)
    n = ranks.size
    size = np.bincount(groups, minlength=n_groups).astype(np.float64)
    rsum = np.bincount(groups, weights=ranks, minlength=n_groups)
    tie_term = float(np.sum(ties.astype(np.float64) ** 3 - ties))
    occupied = size > 0
    g = int(occupied.sum())
    h = 12.0 / (n * (n + 1)) * np.sum(rsum[occupied] ** 2 / size[occupied]) - 3.0 * (n + 1)
    correction = 1.0 - tie_term / (n**3 - n)
    h = h / correction if correction > 0 else float("nan")
    p = float(special.chdtrc(g - 1, h)) if g > 1 and np.isfinite(h) else float("nan")
    eta2 = (h - g + 1) / (n - g) if n > g else float("nan")
    eps2 = h / (n - 1) if n > 1 else float("nan")
    sigma2 = n * (n + 1) / 12.0 - tie_term / (12.0 * (n - 1))
    return KruskalResult(float(h), p, float(eps2), float(eta2), rsum, size, tie_term,
                         float(sigma2))


def two_sided_normal_p(z: np.ndarray) -> np.ndarray:
    """2 * P(Z > |z|), capped at 1."""
    return np.minimum(2.0 * special.ndtr(-np.abs(z)), 1.0)


def dunn(rsum: np.ndarray, size: np.ndarray, sigma2: float) -> tuple[np.ndarray, np.ndarray]:
    """Dunn's z for all cluster pairs i < j (row-major) and their two-sided p-values."""
    i, j = upper_pairs(rsum.size)
    mean = rsum / size
    se = np.sqrt(sigma2 * (1.0 / size[i] + 1.0 / size[j]))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (mean[i] - mean[j]) / se
    return z, two_sided_normal_p(z)


def vs_rest(
    rsum: np.ndarray, size: np.ndarray, n: int, tie_term: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann-Whitney of each cluster against all other tokens: U, rank-biserial r = 2U/(n1 n2)-1
    (> 0: the cluster activates more than the rest) and the two-sided asymptotic p-value."""
    n1 = size
    n2 = n - size
    u = rsum - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.abs(u - mu) - 0.5) / np.sqrt(var)
        effect = 2.0 * u / (n1 * n2) - 1.0
    p = np.clip(2.0 * special.ndtr(-z), 0.0, 1.0)
    return u, effect, p


def cliffs_delta(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """delta[i, j] = P(x_i > x_j) - P(x_i < x_j) for a random member of cluster i and of j."""
    sign = np.sign(values[:, None] - values[None, :])
    onehot = np.zeros((values.size, n_groups))
    onehot[np.arange(values.size), groups] = 1.0
    size = onehot.sum(axis=0)
    return (onehot.T @ sign @ onehot) / np.outer(size, size)


def _adjust(p: np.ndarray, step) -> np.ndarray:
    """Apply `step(sorted finite p) -> adjusted` and put results back; NaN entries stay NaN."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="mergesort")]
        out[order] = np.minimum(step(p[order]), 1.0)
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN entries are left out and stay NaN)."""
    return _adjust(p, lambda s: np.maximum.accumulate((s.size - np.arange(s.size)) * s))
