"""Exact, mergeable per-(token type, neuron) statistics, updated batch by batch on the device.

Memory is fixed by vocabulary × neurons, never by corpus size: occurrence count, activation sum
(float64, so means survive long corpora and chunk merges), maximum (float32) and the corpus
position of the first occurrence reaching that maximum (so the report can show the context in
which a token activated a neuron most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NO_POSITION = torch.iinfo(torch.int64).max


@dataclass
class TokenTypeStats:
    count: torch.Tensor   # [V] int64, shared by all neurons
    sum: torch.Tensor     # [V, N] float64
    max: torch.Tensor     # [V, N] float32, -inf where unseen
    argmax: torch.Tensor  # [V, N] int64 global token position of the first maximum

    @classmethod
    def zeros(cls, vocab_size: int, n_neurons: int, device: torch.device | str = "cpu"):
        return cls(
            torch.zeros(vocab_size, dtype=torch.int64, device=device),
            torch.zeros(vocab_size, n_neurons, dtype=torch.float64, device=device),
            torch.full((vocab_size, n_neurons), -torch.inf, dtype=torch.float32, device=device),
            torch.full((vocab_size, n_neurons), NO_POSITION, dtype=torch.int64, device=device),
        )

    def update(self, token_ids: torch.Tensor, acts: torch.Tensor, positions: torch.Tensor) -> None:
        """Fold one batch in: token_ids [M], acts [M, N] (any float dtype), positions [M].

        Positions must increase with corpus order across calls so ties keep the earliest
        occurrence.
        """
        types, inverse = torch.unique(token_ids, return_inverse=True)
        n = acts.shape[1]
        acts32 = acts.float()
        self.count.index_add_(0, token_ids, torch.ones_like(token_ids))
        batch_sum = torch.zeros(len(types), n, dtype=torch.float64, device=acts.device)
        batch_sum.index_add_(0, inverse, acts32.double())
        self.sum[types] += batch_sum

        idx = inverse[:, None].expand(-1, n)
        batch_max = torch.full((len(types), n), -torch.inf, device=acts.device)
        batch_max.scatter_reduce_(0, idx, acts32, "amax")
        at_max = acts32 == batch_max[inverse]
        cand = torch.where(at_max, positions[:, None], NO_POSITION)
        batch_arg = torch.full((len(types), n), NO_POSITION, dtype=torch.int64, device=acts.device)
        batch_arg.scatter_reduce_(0, idx, cand, "amin")
        better = batch_max > self.max[types]
        self.max[types] = torch.where(better, batch_max, self.max[types])
        self.argmax[types] = torch.where(better, batch_arg, self.argmax[types])

    def observed(self) -> torch.Tensor:
        return torch.nonzero(self.count > 0).flatten()


@dataclass
class CompactStats:
    """Statistics restricted to observed token types, as numpy arrays (the on-disk form)."""

    token_ids: np.ndarray  # [T] int32, ascending
    count: np.ndarray      # [T] int64
    sum: np.ndarray        # [T, N] float64
    max: np.ndarray        # [T, N] float32
    argmax: np.ndarray     # [T, N] int64

    @classmethod
    def from_dense(cls, stats: TokenTypeStats, count: torch.Tensor | None = None) -> CompactStats:
        count = stats.count if count is None else count
        rows = torch.nonzero(count > 0).flatten()
        return cls(
            rows.cpu().numpy().astype(np.int32),
            count[rows].cpu().numpy(),
            stats.sum[rows].cpu().numpy(),
            stats.max[rows].cpu().numpy(),
            stats.argmax[rows].cpu().numpy(),
        )

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.count[:, None]


def empty_compact(token_ids: np.ndarray, n_neurons: int) -> CompactStats:
    t = len(token_ids)
    return CompactStats(
        np.asarray(token_ids, np.int32),
        np.zeros(t, np.int64),
        np.zeros((t, n_neurons), np.float64),
        np.full((t, n_neurons), -np.inf, np.float32),
        np.full((t, n_neurons), np.iinfo(np.int64).max, np.int64),
    )


def fold_into(out: CompactStats, part: CompactStats) -> None:
    """Add one chunk's statistics into `out`; chunks must come in corpus order (ties keep the
    earlier chunk's position), and `out.token_ids` must contain `part.token_ids`."""
    rows = np.searchsorted(out.token_ids, part.token_ids)
    out.count[rows] += part.count
    out.sum[rows] += part.sum
    better = part.max > out.max[rows]
    out.max[rows] = np.where(better, part.max, out.max[rows])
    out.argmax[rows] = np.where(better, part.argmax, out.argmax[rows])


def merge_compact(parts: list[CompactStats]) -> CompactStats:
    """Exact reduce of chunk statistics given in corpus order."""
    out = empty_compact(np.unique(np.concatenate([p.token_ids for p in parts])), parts[0].sum.shape[1])
    for p in parts:
        fold_into(out, p)
    return out
