"""One batch of random rank permutations per neuron, shared by every permutation test.

Null hypothesis: activation rank carries no categorical information, i.e. the assignment of a
neuron's core tokens to rank positions is exchangeable. A permutation pi puts token pi[p, i]
at position i; segment membership, cluster-label order along the ranking and the
segment x cluster contingency table are all recomputed from it. Row 0 is the identity (the
observed data), so observed and null values go through the same arithmetic.

Speed: segment homogeneity for all P permutations and both segment schemes is one matrix
product M^T S0, where S0 is the similarity matrix with a zero diagonal and M (k x (P+1)·g) is
the one-hot membership of tokens in (permutation, segment) columns; the within-segment sum of
column j is then the sum over its members r of (M^T S0)[j, r], gathered and summed per
contiguous block of positions. No Python loop runs per permutation. Each neuron draws its permutations
from its own generator seeded by (seed, layer, neuron), so results do not depend on sharding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .interleaving import count_runs, xlogx_table
from .segments import segment_starts


@dataclass
class PermutationResult:
    """Row 0 = observed, rows 1..P = permutations."""

    within: list[np.ndarray]  # per scheme: (P+1, g) sum of S over ordered member pairs i != j
    runs: np.ndarray  # (P+1,) runs of cluster labels along the ranking
    sum_xlogx: list[np.ndarray]  # per scheme: (P+1,) sum of n log n over segment x cluster cells


class PermutationPlan:
    """Index arrays and the reusable one-hot buffer for a given (k, P, segment schemes).

    The membership matrix is stored transposed, M^T of shape ((P+1)·g_total, k): row
    (p, segment) is one-hot over tokens, so M^T @ S0 has one contiguous row per (p, segment) and
    the within-segment sums gather from a single row each (cache friendly). Flat positions in
    M^T are row * k + token; the row part depends only on (p, position) and is precomputed.
    """

    def __init__(self, k: int, permutations: int, schemes: list[np.ndarray]):
        self.k = int(k)
        self.permutations = int(permutations)
        rows = self.permutations + 1
        self.sizes = [int(lab.max()) + 1 for lab in schemes]
        self.starts = [segment_starts(lab) for lab in schemes]
        self.cells = [
            np.arange(rows)[:, None] * g + lab[None, :]
            for lab, g in zip(schemes, self.sizes, strict=True)
        ]
        offsets = np.concatenate([[0], np.cumsum([rows * g for g in self.sizes])])
        self.row_base = [
            (cell + off) * self.k for cell, off in zip(self.cells, offsets[:-1], strict=True)
        ]
        self.onehot_t = np.zeros((int(offsets[-1]), self.k), dtype=np.float32)
        self.identity = np.tile(np.arange(self.k, dtype=np.int64), (self.permutations, 1))
        self.xlogx = xlogx_table(self.k)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """(P+1, k) positions -> token ranks; row 0 is the identity."""
        pi = np.empty((self.permutations + 1, self.k), dtype=np.int64)
        pi[0] = np.arange(self.k)
        pi[1:] = rng.permuted(self.identity, axis=1)
        return pi

    def run(
        self, sim0: np.ndarray, clusters: np.ndarray, n_clusters: int, pi: np.ndarray
    ) -> PermutationResult:
        """All permutation statistics of one neuron. `sim0`: float32 similarity, zero diagonal."""
        index = [base + pi for base in self.row_base]
        buf = self.onehot_t.reshape(-1)
        for idx in index:
            buf[idx] = 1.0
        try:
            product = (self.onehot_t @ sim0).reshape(-1)
        finally:
            for idx in index:
                buf[idx] = 0.0
        within = [
            np.add.reduceat(product[idx], starts, axis=1, dtype=np.float64)
            for idx, starts in zip(index, self.starts, strict=True)
        ]
        labels = clusters[pi]
        runs = count_runs(labels)
        rows = pi.shape[0]
        sums = []
        for cell, g in zip(self.cells, self.sizes, strict=True):
            table = np.bincount(
                (cell * n_clusters + labels).ravel(), minlength=rows * g * n_clusters
            )
            sums.append(self.xlogx[table].reshape(rows, g * n_clusters).sum(axis=1))
        return PermutationResult(within=within, runs=runs, sum_xlogx=sums)
