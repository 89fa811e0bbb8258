"""Exact, mergeable per-(token type, neuron) statistics, updated batch by batch on the device.

Memory is fixed by token types × neurons, never by corpus size: occurrence count, activation sum
(float64, so means survive long corpora and chunk merges), and the maximum (float32) together with
the corpus position of the first occurrence reaching it (so the report can show the context in
which a token activated a neuron most), packed into one int64 so one indexed max tracks both.

The update is the only per-token work besides the forward pass, so it runs in row blocks through
preallocated scratch (`Workspace`): no tensor is allocated per batch, each block's temporaries stay
in cache, and the key is built with three int32 and three int64 elementwise passes.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

# index_reduce_ (the CPU fast path) warns once per process that it is "beta"; its signature has
# not changed since torch 1.12. Spend that one warning here, silenced, instead of in job logs.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.zeros(1).index_reduce_(0, torch.zeros(1, dtype=torch.int64), torch.zeros(1), "amax")

NO_POSITION = np.iinfo(np.int64).max
MAX_POSITIONS = 1 << 32
_EMPTY_KEY = torch.iinfo(torch.int64).min
_MAGNITUDE = 0x7FFFFFFF
_HIGH_WORD = 1 if sys.byteorder == "little" else 0  # int32 index of a key's high half
# Elements per update block: on CPU 1 MB of float64, near cache size (measured ~10% ahead of
# 2 MB blocks and of 256 KB ones); on accelerators large enough that launches do not matter.
CPU_BLOCK_ELEMENTS = 1 << 17
DEVICE_BLOCK_ELEMENTS = 1 << 24


def _order(bits: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """float32 bit patterns -> int32 with the same order as the floats (an involution)."""
    torch.bitwise_right_shift(bits, 31, out=out)
    out.bitwise_and_(_MAGNITUDE)
    return out.bitwise_xor_(bits)


def low_words(positions: torch.Tensor, origin: int = 0) -> torch.Tensor:
    """Low key words, larger for earlier positions: 2^32 - 1 - (position - origin)."""
    return (MAX_POSITIONS - 1 + origin) - positions


def _keys(bits: torch.Tensor, low: torch.Tensor, ordered: torch.Tensor,
          out: torch.Tensor) -> torch.Tensor:
    """Packed keys of float32 `bits` [B, N] and low words `low` [B] into `out` (int64), using
    `ordered` (int32) as scratch. Widen, shift and or: cheaper than one type-promoting add."""
    out.copy_(_order(bits, ordered))
    out.bitwise_left_shift_(32)
    return out.bitwise_or_(low[:, None])


def pack(acts: torch.Tensor, positions: torch.Tensor, origin: int = 0) -> torch.Tensor:
    """int64 keys ordered like (activation, -position): high 32 bits hold the float32 bits made
    order-preserving as signed integers, low 32 bits hold 2^32 - 1 - (position - origin). One
    integer max then yields both the maximum and the earliest position reaching it."""
    bits = acts.float().contiguous().view(torch.int32)
    return _keys(bits, low_words(positions, origin), torch.empty_like(bits),
                 torch.empty(bits.shape, dtype=torch.int64, device=bits.device))


def unpack(key: torch.Tensor, origin: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack`: (float32 maxima, int64 positions); empty keys give (-inf, NO_POSITION)."""
    empty = key == _EMPTY_KEY
    bits = (key >> 32).to(torch.int32)
    values = _order(bits, torch.empty_like(bits)).view(torch.float32)
    values = torch.where(empty, -torch.inf, values)
    positions = (MAX_POSITIONS - 1 + origin) - (key & (MAX_POSITIONS - 1))
    return values, torch.where(empty, NO_POSITION, positions)


@contextmanager
def serial_on_cpu(device: torch.device | str) -> Iterator[None]:
    """Run CPU tensor ops on one thread inside the block.

    The update is many short ops; each parallel region waits for every worker thread, which on
    shared cores means a scheduler time slice (measured ~10 ms per 2 MB op on a loaded 2-core
    machine, where the op itself takes ~0.3 ms on one thread).
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Workspace:
    """Scratch for `TokenTypeStats.accumulate`, allocated once per extraction.

    Fresh multi-megabyte temporaries per batch cost page faults on CPU and allocator traffic on
    GPUs; fixed row blocks also bound the scratch memory whatever the batch size.
    """

    def __init__(self, n_neurons: int, device: torch.device | str = "cpu",
                 block_elements: int | None = None):
        dev = torch.device(device)
        if block_elements is None:
            block_elements = CPU_BLOCK_ELEMENTS if dev.type == "cpu" else DEVICE_BLOCK_ELEMENTS
        self.rows = max(1, block_elements // max(n_neurons, 1))
        size = self.rows * n_neurons
        self.wide = torch.empty(size, dtype=torch.float64, device=dev)  # float64, then int64 keys
        self.ordered = torch.empty(size, dtype=torch.int32, device=dev)
        self.floats = torch.empty(size, dtype=torch.float32, device=dev)  # non-float32 activations


@dataclass
class TokenTypeStats:
    count: torch.Tensor   # [R] int64, shared by all neurons (and by all layers of one extraction)
    sum: torch.Tensor     # [R, N] float64
    key: torch.Tensor     # [R, N] int64 packed (maximum, first position reaching it)
    origin: int = 0       # positions are stored relative to this, so any corpus offset fits

    @classmethod
    def zeros(cls, rows: int, n_neurons: int, device: torch.device | str = "cpu", *,
              origin: int = 0, count: torch.Tensor | None = None) -> TokenTypeStats:
        return cls(
            torch.zeros(rows, dtype=torch.int64, device=device) if count is None else count,
            torch.zeros(rows, n_neurons, dtype=torch.float64, device=device),
            torch.full((rows, n_neurons), _EMPTY_KEY, dtype=torch.int64, device=device),
            origin,
        )

    @staticmethod
    def table_bytes(rows: int, n_neurons: int) -> int:
        return rows * (8 + 16 * n_neurons)

    def update(self, token_ids: torch.Tensor, acts: torch.Tensor, positions: torch.Tensor) -> None:
        """Fold one batch in: token_ids [M] (row indices), acts [M, N] (any float dtype),
        positions [M].

        Sums are accumulated in float64 whatever the compute dtype, so chunked runs merge to
        the same means; positions must lie in [origin, origin + 2^32).
        """
        rel = positions - self.origin
        if len(rel) and (int(rel.min()) < 0 or int(rel.max()) >= MAX_POSITIONS):
            raise ValueError("corpus positions must lie within 2^32 tokens of the statistics' "
                             "origin: split the corpus into more chunks (extract.chunks)")
        with serial_on_cpu(acts.device):
            self.count.index_add_(0, token_ids, torch.ones_like(token_ids))
            self.accumulate(token_ids, acts, low_words(positions, self.origin),
                            Workspace(acts.shape[1], acts.device))

    def accumulate(self, rows: torch.Tensor, acts: torch.Tensor, low: torch.Tensor,
                   ws: Workspace) -> None:
        """Sum and packed max only (the caller counts): rows [M], acts [M, N], low [M] from
        `low_words`. Reads each activation twice (sum, key) and allocates nothing."""
        m, n = acts.shape
        on_cpu = self.key.device.type == "cpu"
        # On CPU index_add_ is the fastest serial sum, but with more than one intra-op thread it
        # becomes a scatter_add several times slower; index_put_ always accumulates serially.
        add_rows = not on_cpu or torch.get_num_threads() == 1
        for start in range(0, m, ws.rows):
            stop = min(start + ws.rows, m)
            a, r, size = acts[start:stop], rows[start:stop], (stop - start) * n
            wide = ws.wide[:size].view(-1, n)
            wide.copy_(a)
            if add_rows:
                self.sum.index_add_(0, r, wide)
            else:
                self.sum.index_put_((r,), wide, accumulate=True)
            if a.dtype == torch.float32 and a.stride(-1) == 1:
                bits = a.view(torch.int32)
            else:
                bits = ws.floats[:size].view(-1, n).copy_(a).view(torch.int32)
            keys = _keys(bits, low[start:stop], ws.ordered[:size].view(-1, n),
                         wide.view(torch.int64))
            if on_cpu:
                # One index per row instead of per element: about twice as fast as scatter on CPU.
                self.key.index_reduce_(0, r, keys, "amax")
            else:
                self.key.scatter_reduce_(0, r[:, None].expand(-1, n), keys, "amax")

    def observed(self) -> torch.Tensor:
        return torch.nonzero(self.count > 0).flatten()

    def to_compact(self, token_ids: np.ndarray | None = None, *,
                   consume: bool = False) -> CompactStats:
        """Observed rows as numpy arrays; `token_ids[r]` is the token type of row r (default r).

        With consume=True (for tables filled only through `update`/`accumulate`, whose observed
        rows have every key set) the key table is decoded in place into positions and, on CPU,
        the arrays share the tables' memory: the conversion adds only the float32 maxima.
        """
        rows = self.observed()
        ids = rows.cpu().numpy()
        ids = (ids if token_ids is None else np.asarray(token_ids)[ids]).astype(np.int32)
        whole = rows.numel() == self.count.numel()
        sums, keys = (self.sum, self.key) if whole else (self.sum[rows], self.key[rows])
        maxima = torch.empty(keys.shape, dtype=torch.float32, device=keys.device)
        positions = keys if consume or not whole else torch.empty_like(keys)
        step = max(1, CPU_BLOCK_ELEMENTS // max(keys.shape[1], 1))
        with serial_on_cpu(keys.device):
            for start in range(0, keys.shape[0], step):
                block, span = keys[start:start + step], slice(start, start + step)
                if consume:
                    # `unpack` without its empty-key masks: maxima from the high halves, then
                    # positions decoded in place.
                    _order(block.view(torch.int32)[:, _HIGH_WORD::2], maxima[span].view(torch.int32))
                    pos = torch.bitwise_and(block, MAX_POSITIONS - 1, out=positions[span])
                    pos.neg_().add_(MAX_POSITIONS - 1 + self.origin)
                else:
                    maxima[span], positions[span] = unpack(block, self.origin)
        return CompactStats(ids, self.count[rows].cpu().numpy(), sums.cpu().numpy(),
                            maxima.cpu().numpy(), positions.cpu().numpy())


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
        """Rows of a table indexed by token id, non-destructively."""
        if count is not None:
            stats = TokenTypeStats(count, stats.sum, stats.key, stats.origin)
        return stats.to_compact()

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
