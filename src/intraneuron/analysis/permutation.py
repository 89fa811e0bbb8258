"""One batch of random rank permutations per neuron, shared by every permutation test.

Null hypothesis: activation rank carries no categorical information, i.e. the assignment of a
neuron's core tokens to rank positions is exchangeable. A permutation pi puts token pi[p, i]
at position i; segment membership, cluster-label order along the ranking and the
segment x cluster contingency table are all recomputed from it. The first rows are observed
orders (the neuron's own ranking, then its shuffled and surrogate controls, which rank the same
tokens), so observed and null values go through the same arithmetic and the controls cost one
row each.

Speed: segment homogeneity for all P permutations and both segment schemes is the sum of S0
(the similarity matrix with a zero diagonal) over each segment's member pairs, one compiled
loop over the pairs (`kernels.segment_within_sums`; a one-hot matrix product over all tokens,
its numpy form, did k times the arithmetic and was 2-3x slower); the segment x cluster tables
of all rows are one bincount. No Python loop runs per permutation. Each neuron draws its
permutations from its own generator seeded by (seed, layer, neuron), so results do not depend
on sharding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .interleaving import count_runs, xlogx_table
from .segments import segment_starts


@dataclass
class PermutationResult:
    """The first rows are observed orders, the last P rows permutations (the null)."""

    within: list[np.ndarray]  # per scheme: (P+1, g) sum of S over ordered member pairs i != j
    runs: np.ndarray  # (P+1,) runs of cluster labels along the ranking
    sum_xlogx: list[np.ndarray]  # per scheme: (P+1,) sum of n log n over segment x cluster cells
    labels: np.ndarray  # (P+1, k) cluster label at each position of the ranking


class PermutationPlan:
    """Index arrays for a given (k, P, segment schemes).

    Every (permutation p, scheme j, segment s) is one cell row: `row_of[p, j, i]` is the row of
    the segment that position i falls in, and row * c + cluster indexes the segment x cluster
    contingency tables of all rows in one bincount. Permutations are processed in chunks of
    `chunk` rows so that the tables stay in cache; the chunk loop has a handful of iterations,
    not one per permutation.
    """

    def __init__(self, k: int, permutations: int, schemes: list[np.ndarray], chunk: int = 256):
        self.k = int(k)
        self.permutations = int(permutations)
        rows = self.chunk = min(int(chunk), self.permutations + 1)
        self.sizes = [int(lab.max()) + 1 for lab in schemes]
        self.starts = [segment_starts(lab) for lab in schemes]
        offsets = np.concatenate([[0], np.cumsum([rows * g for g in self.sizes])]).astype(np.int64)
        self.offsets = [int(off) for off in offsets[:-1]]
        self.row_of = np.stack(
            [
                off + np.arange(rows)[:, None] * g + lab[None, :]
                for lab, g, off in zip(schemes, self.sizes, offsets[:-1], strict=True)
            ],
            axis=1,
        )  # (chunk, n_schemes, k)
        self.bounds = [np.append(starts, self.k).astype(np.int64) for starts in self.starts]
        self.n_rows = int(offsets[-1])
        self.identity = np.tile(np.arange(self.k, dtype=np.int64), (self.permutations, 1))
        self.xlogx = xlogx_table(self.k)
        self._cells: dict[int, np.ndarray] = {}

    def draw(self, rng: np.random.Generator, observed: list[np.ndarray] | None = None) -> np.ndarray:
        """(n_obs + P, k) positions -> token ranks: the observed orders first (default: the
        identity alone), then P random permutations."""
        observed = observed if observed is not None else [np.arange(self.k)]
        pi = np.empty((len(observed) + self.permutations, self.k), dtype=np.int64)
        pi[: len(observed)] = np.stack(observed)
        rng.permuted(self.identity, axis=1, out=pi[len(observed):])  # Fisher-Yates per row
        return pi

    def run(
        self, sim0: np.ndarray, clusters: np.ndarray, n_clusters: int, pi: np.ndarray
    ) -> PermutationResult:
        """All permutation statistics of one neuron. `sim0`: float32 similarity, zero diagonal."""
        c = int(n_clusters)
        if c not in self._cells:
            self._cells[c] = self.row_of * c
        from .kernels import segment_within_sums  # numba: loaded by the jobs that analyse

        sim0 = np.ascontiguousarray(sim0, dtype=np.float32)
        pi = np.ascontiguousarray(pi, dtype=np.int64)
        within = [segment_within_sums(sim0, pi, bounds) for bounds in self.bounds]
        sums: list[list[np.ndarray]] = [[] for _ in self.sizes]
        runs = []
        all_labels = []
        for lo in range(0, pi.shape[0], self.chunk):
            part = pi[lo : lo + self.chunk]
            rows = part.shape[0]
            labels = clusters[part]
            all_labels.append(labels)
            runs.append(count_runs(labels))
            table = np.bincount((self._cells[c][:rows] + labels[:, None, :]).reshape(-1),
                                minlength=self.n_rows * c)  # fmt: skip
            per_row = self.xlogx[table].reshape(self.n_rows, c).sum(axis=1)
            for j, (g, off) in enumerate(zip(self.sizes, self.offsets, strict=True)):
                sums[j].append(per_row[off : off + rows * g].reshape(rows, g).sum(axis=1))
        return PermutationResult(
            within=within,
            runs=np.concatenate(runs),
            sum_xlogx=[np.concatenate(parts) for parts in sums],
            labels=np.concatenate(all_labels),
        )
