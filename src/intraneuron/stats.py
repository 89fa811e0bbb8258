"""Exact, mergeable per-(token type, neuron) statistics, updated batch by batch on the device.

Memory is fixed by vocabulary × neurons, never by corpus size: occurrence count, activation sum
(float64, so means survive long corpora and chunk merges), and the maximum (float32) together with
the corpus position of the first occurrence reaching it (so the report can show the context in
which a token activated a neuron most), packed into one int64 so one scatter-max tracks both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NO_POSITION = np.iinfo(np.int64).max
MAX_POSITIONS = 1 << 32
_EMPTY_KEY = torch.iinfo(torch.int64).min


def pack(acts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered like (activation, -position): high 32 bits hold the float32 bits made
    order-preserving as signed integers, low 32 bits hold 2^32 - 1 - position. One integer max
    then yields both the maximum and the earliest position reaching it."""
    bits = acts.float().contiguous().view(torch.int32)
    bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    key = bits.long()
    key <<= 32
    key |= (MAX_POSITIONS - 1 - positions)[:, None]
    return key


def unpack(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack`: (float32 maxima, int64 positions); empty keys give (-inf, NO_POSITION)."""
    empty = key == _EMPTY_KEY
    bits = (key >> 32).to(torch.int32)
    bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    values = torch.where(empty, -torch.inf, bits.view(torch.float32))
    positions = torch.where(empty, NO_POSITION, MAX_POSITIONS - 1 - (key & (MAX_POSITIONS - 1)))
    return values, positions


@dataclass
class TokenTypeStats:
    count: torch.Tensor   # [V] int64, shared by all neurons
    sum: torch.Tensor     # [V, N] float64
    key: torch.Tensor     # [V, N] int64 packed (maximum, first position reaching it)

    @classmethod
    def zeros(cls, vocab_size: int, n_neurons: int, device: torch.device | str = "cpu"):
        return cls(
            torch.zeros(vocab_size, dtype=torch.int64, device=device),
            torch.zeros(vocab_size, n_neurons, dtype=torch.float64, device=device),
            torch.full((vocab_size, n_neurons), _EMPTY_KEY, dtype=torch.int64, device=device),
        )

    def update(self, token_ids: torch.Tensor, acts: torch.Tensor, positions: torch.Tensor) -> None:
        """Fold one batch in: token_ids [M], acts [M, N] (any float dtype), positions [M].

        Sums are accumulated in float64 whatever the compute dtype, so chunked runs merge to
        the same means; positions must be below 2^32 (4.29 billion corpus tokens).
        """
        if int(positions.max()) >= MAX_POSITIONS:
            raise ValueError("corpus positions beyond 2^32 tokens are not supported: lower "
                             "corpus.max_tokens")
        n = acts.shape[1]
        self.count.index_add_(0, token_ids, torch.ones_like(token_ids))
        self.sum.index_add_(0, token_ids, acts.double())
        self.key.scatter_reduce_(0, token_ids[:, None].expand(-1, n), pack(acts, positions), "amax")

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
        values, positions = unpack(stats.key[rows])
        return cls(
            rows.cpu().numpy().astype(np.int32),
            count[rows].cpu().numpy(),
            stats.sum[rows].cpu().numpy(),
            values.cpu().numpy(),
            positions.cpu().numpy(),
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
