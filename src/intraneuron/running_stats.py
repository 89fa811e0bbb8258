"""Running statistics: exact, mergeable per-(token type, neuron) accumulators, updated batch by
batch on the device (`TokenTypeStats`), and their compact numpy result (`CompactStats`, the
on-disk form, with the exact reduce over corpus chunks). Statistical tests live elsewhere
(`intraneuron.analysis.inference`).

Memory is fixed by token types × neurons, never by corpus size: occurrence count, activation sum
(float64, so means survive long corpora and chunk merges), and the maximum (float32) together with
the corpus position of the first occurrence reaching it (so the report can show the context in
which a token activated a neuron most), packed into one int64 so one indexed max tracks both.

Adding a batch is the only per-token work besides the forward pass, so it runs in row blocks
through preallocated scratch (`Workspace`): no large tensor is allocated per batch, each block's
temporaries stay in cache, and the key is built with three int32 and three int64 elementwise passes.
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
    """Scratch for `TokenTypeStats.add`, allocated once per extraction and shared by its layers.

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


@dataclass(frozen=True)
class Occurrences:
    """The token side of one batch: each token's table row and the low word of its packed key.

    Built once per batch and shared by every layer's accumulator, so positions are checked and
    converted once, not once per layer.
    """

    rows: torch.Tensor  # [M] int64 table rows
    low: torch.Tensor   # [M] int64 low key words (`low_words`)
    ones: torch.Tensor  # [M] int64, what `add` counts with
    origin: int = 0

    @classmethod
    def of(cls, rows: torch.Tensor, positions: torch.Tensor, origin: int = 0) -> Occurrences:
        """Table rows [M] and corpus positions [M] in [origin, origin + 2^32) (checked)."""
        if len(positions) and (int(positions.min()) < origin
                               or int(positions.max()) - origin >= MAX_POSITIONS):
            raise ValueError("corpus positions must lie within 2^32 tokens of the statistics' "
                             "origin: split the corpus into more chunks (extract.chunks)")
        return cls(rows, low_words(positions, origin).to(rows.device), torch.ones_like(rows),
                   origin)


@dataclass
class TokenTypeStats:
    """Running statistics of one layer, per (table row, neuron); a row stands for a token type.

    The protocol: `add` a batch; `merge` an accumulator over the same rows (another corpus
    chunk's or device's); `compact()` for the result, leaving the tables as they are;
    `into_compact()` to hand the tables' memory to the result when an extraction ends (the
    accumulator is unusable afterwards).
    """

    count: torch.Tensor   # [R] int64 occurrences
    sum: torch.Tensor     # [R, N] float64
    key: torch.Tensor     # [R, N] int64 packed (maximum, first position reaching it)
    origin: int = 0       # positions are stored relative to this, so any corpus offset fits

    @classmethod
    def zeros(cls, rows: int, n_neurons: int, device: torch.device | str = "cpu", *,
              origin: int = 0) -> TokenTypeStats:
        return cls(
            torch.zeros(rows, dtype=torch.int64, device=device),
            torch.zeros(rows, n_neurons, dtype=torch.float64, device=device),
            torch.full((rows, n_neurons), _EMPTY_KEY, dtype=torch.int64, device=device),
            origin,
        )

    @staticmethod
    def table_bytes(rows: int, n_neurons: int) -> int:
        return rows * (8 + 16 * n_neurons)

    def add(self, tokens: Occurrences, acts: torch.Tensor,
            workspace: Workspace | None = None) -> None:
        """Fold one batch in: `acts` [M, N] (any float dtype) holds one row per token of `tokens`.

        Sums are accumulated in float64 whatever the compute dtype, so chunked runs merge to the
        same means. Given a `workspace`, nothing is allocated.
        """
        self._live()
        if tokens.origin != self.origin:
            raise ValueError(f"positions are relative to origin {tokens.origin}, the statistics "
                             f"to origin {self.origin}")
        if workspace is None:
            workspace = Workspace(acts.shape[1], self.key.device)
        self.count.index_add_(0, tokens.rows, tokens.ones)
        self._fold(tokens.rows, acts, tokens.low, workspace)

    def _fold(self, rows: torch.Tensor, acts: torch.Tensor, low: torch.Tensor,
              ws: Workspace) -> None:
        """Sum and packed max, block by block through the workspace: each activation is read
        twice (sum, key)."""
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

    def merge(self, other: TokenTypeStats) -> None:
        """Add `other` (same rows and neurons; origins may differ). Counts, maxima and their
        positions are exact whatever the order of merging (a tie keeps the earlier position);
        sums are float64, equal up to rounding."""
        self._live()
        other._live()
        if other.sum.shape != self.sum.shape:
            raise ValueError(f"cannot merge statistics of shape {tuple(other.sum.shape)} into "
                             f"{tuple(self.sum.shape)}")
        origin = min(self.origin, other.origin)
        self.key = self._keys_relative_to(origin)
        self.origin = origin
        self.count += other.count.to(self.count.device)
        self.sum += other.sum.to(self.sum.device)
        torch.maximum(self.key, other._keys_relative_to(origin).to(self.key.device), out=self.key)

    def _keys_relative_to(self, origin: int) -> torch.Tensor:
        """Keys with positions re-expressed relative to an earlier `origin`."""
        shift = self.origin - origin
        if shift == 0:
            return self.key
        empty = self.key == _EMPTY_KEY
        if bool(((self.key & (MAX_POSITIONS - 1)) < shift).logical_and_(~empty).any()):
            raise ValueError("merged statistics span more than 2^32 corpus positions")
        return torch.where(empty, self.key, self.key - shift)

    def observed(self) -> torch.Tensor:
        return torch.nonzero(self.count > 0).flatten()

    def compact(self, token_ids: np.ndarray | None = None) -> CompactStats:
        """Observed rows as numpy arrays; `token_ids[r]` is the token type of row r (default r).
        The tables are left as they are; rows never added to decode as (-inf, NO_POSITION)."""
        self._live()
        rows = self.observed()
        keys = self.key[rows]
        maxima = torch.empty(keys.shape, dtype=torch.float32, device=keys.device)
        positions = torch.empty_like(keys)
        with serial_on_cpu(keys.device):
            for span in self._row_blocks(keys):
                maxima[span], positions[span] = unpack(keys[span], self.origin)
        return self._result(token_ids, rows, self.sum[rows], maxima, positions)

    def into_compact(self, token_ids: np.ndarray | None = None) -> CompactStats:
        """Like `compact()`, but the result takes over the tables' memory: keys are decoded in
        place into positions and, on CPU, the arrays share the tables' memory, so the conversion
        adds only the float32 maxima. Every observed row must have been added to (true of tables
        filled by `add` and `merge`). The accumulator is unusable afterwards."""
        self._live()
        rows = self.observed()
        whole = rows.numel() == self.count.numel()
        sums, keys = (self.sum, self.key) if whole else (self.sum[rows], self.key[rows])
        self.sum = self.key = None
        maxima = torch.empty(keys.shape, dtype=torch.float32, device=keys.device)
        with serial_on_cpu(keys.device):
            for span in self._row_blocks(keys):
                _decode_in_place(keys[span], maxima[span], self.origin)
        return self._result(token_ids, rows, sums, maxima, keys)

    @staticmethod
    def _row_blocks(keys: torch.Tensor) -> list[slice]:
        step = max(1, CPU_BLOCK_ELEMENTS // max(keys.shape[1], 1))
        return [slice(start, start + step) for start in range(0, keys.shape[0], step)]

    def _result(self, token_ids: np.ndarray | None, rows: torch.Tensor, sums: torch.Tensor,
                maxima: torch.Tensor, positions: torch.Tensor) -> CompactStats:
        ids = rows.cpu().numpy()
        ids = (ids if token_ids is None else np.asarray(token_ids)[ids]).astype(np.int32)
        return CompactStats(ids, self.count[rows].cpu().numpy(), sums.cpu().numpy(),
                            maxima.cpu().numpy(), positions.cpu().numpy())

    def _live(self) -> None:
        if self.key is None:
            raise RuntimeError("these statistics were handed over by into_compact()")


def _decode_in_place(keys: torch.Tensor, maxima: torch.Tensor, origin: int) -> None:
    """`unpack` for keys that are all set (rows filled by `add`), without its empty-key masks:
    maxima from the high halves, then positions decoded into `keys` itself."""
    _order(keys.view(torch.int32)[:, _HIGH_WORD::2], maxima.view(torch.int32))
    torch.bitwise_and(keys, MAX_POSITIONS - 1, out=keys)
    keys.neg_().add_(MAX_POSITIONS - 1 + origin)


@dataclass
class CompactStats:
    """Statistics restricted to observed token types, as numpy arrays (the on-disk form)."""

    token_ids: np.ndarray  # [T] int32, ascending
    count: np.ndarray      # [T] int64
    sum: np.ndarray        # [T, N] float64
    max: np.ndarray        # [T, N] float32
    argmax: np.ndarray     # [T, N] int64

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
