"""Compiled loops for the two permutation statistics that numpy can only reach through much
larger detours: the within-segment similarity sums of every row (numpy: a one-hot matrix
product, k times more arithmetic than the pairs involved) and the cluster pair counts along
every row (numpy: per-position cumulative sums and a stacked product). Each is tested equal to
its definition (the permutation engine against brute force in test_analysis_statistics.py,
the pair counts in test_rowstats.py); compiled once and cached beside this file.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def segment_within_sums(sim0: np.ndarray, orders: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(rows, g) float64: for each row's order and each segment [bounds[s], bounds[s + 1]) of
    positions, the sum of sim0 over its ordered member pairs i != j (sim0 symmetric, zero
    diagonal; orders[r, i] is the token at position i)."""
    rows = orders.shape[0]
    g = bounds.size - 1
    out = np.zeros((rows, g), dtype=np.float64)
    for r in range(rows):
        order = orders[r]
        for s in range(g):
            total = 0.0
            for i in range(bounds[s], bounds[s + 1]):
                row = sim0[order[i]]
                for j in range(i + 1, bounds[s + 1]):
                    total += row[order[j]]
            out[r, s] = 2.0 * total
    return out


@numba.njit(cache=True, nogil=True)
def cluster_pair_counts(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """(rows, c, c) float32: [r, b, a] = token pairs with a cluster-a token above (earlier in
    row r than) a cluster-b token."""
    rows, k = labels.shape
    out = np.zeros((rows, n_clusters, n_clusters), dtype=np.float32)
    seen = np.zeros(n_clusters, dtype=np.float32)
    for r in range(rows):
        seen[:] = 0.0
        for j in range(k):
            b = labels[r, j]
            for a in range(n_clusters):
                out[r, b, a] += seen[a]
            seen[b] += 1.0
    return out
