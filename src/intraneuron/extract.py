"""Extraction: one truncated forward pass per batch of windows feeds the statistics of all layers.

Windows of equal length are batched without padding; every token has a global corpus position
(offset of its window plus its index), so chunks extracted by separate jobs merge exactly. The
activations are folded into the statistics straight from the hooked tensors (no copies kept), so
memory does not grow with the number of tokens. `Extraction` holds a job's state in plain sight:
its batches, the table row of each token type, one `TokenTypeStats` per layer, and progress.

`skip_first` (`extract.skip_first_positions`) leaves the first positions of every window out of
the statistics (count, sum, max and its position); they still run through the model, as context
for the later positions. Windows are cut from running text, so a causal model sees nothing before
a window's first token: its activations there are those of a context-free start, which the paper
(whose windowing is not public) may or may not have had. For an encoder the first positions are
its special tokens ([CLS]) and the first words, which see the whole window anyway.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .models import LoadedModel
from .running_stats import (
    MAX_POSITIONS,
    CompactStats,
    Occurrences,
    TokenTypeStats,
    Workspace,
    serial_on_cpu,
)

log = logging.getLogger(__name__)


def window_offsets(lengths: np.ndarray) -> np.ndarray:
    """Global position of each window's first token."""
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)[:-1]])


def plan_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Groups of window indices of equal length, at most `batch_tokens` tokens each, in order."""
    batches: list[np.ndarray] = []
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        per = max(1, batch_tokens // int(length))
        batches.extend(idx[i:i + per] for i in range(0, len(idx), per))
    return sorted(batches, key=lambda b: int(b[0]))


def chunk_batches(lengths: np.ndarray, batch_tokens: int, chunks: int,
                  index: int) -> list[np.ndarray]:
    """The batches (window indices) that chunk `index` (0-based) of `chunks` runs.

    The corpus-wide batch plan is cut into `chunks` runs of whole batches with near-equal token
    counts. A window's batch therefore never depends on how the corpus is chunked: float32
    matrix products depend on the batch's shape, so this is what makes a chunked extraction
    bitwise equal to a whole one (maxima, positions, counts; sums up to float64 rounding).
    """
    if not 0 <= index < chunks:
        raise ValueError(f"chunk index {index} outside 0..{chunks - 1}")
    batches = plan_batches(np.asarray(lengths), batch_tokens)
    ends = np.cumsum([int(np.asarray(lengths)[b].sum()) for b in batches])
    total = int(ends[-1]) if len(ends) else 0
    # chunk i takes the batches whose last token falls in (i, i + 1] * total / chunks
    edges = np.searchsorted(ends, np.arange(chunks + 1) * total / chunks, side="left")
    edges[0], edges[-1] = 0, len(batches)
    return batches[int(edges[index]):int(edges[index + 1])]


class Progress:
    """A text progress bar for logs: rate, percentage and time left, at most every few seconds."""

    def __init__(self, total: int, emit: Callable[[str], None], every_s: float = 5.0):
        self.total, self.emit, self.every_s = total, emit, every_s
        self.done = self.shown = 0
        self.start = self.last = time.perf_counter()

    def advance(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.perf_counter()
        if self.shown == self.done and self.done > 0:
            return
        if not force and now - self.last < self.every_s and self.done < self.total:
            return
        self.last, self.shown = now, self.done
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        frac = self.done / max(self.total, 1)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        self.emit(f"[{bar}] {100 * frac:5.1f}% {self.done:,}/{self.total:,} tokens "
                  f"{rate:,.0f} tok/s elapsed {elapsed:,.1f}s left {left:,.1f}s")


class Extraction:
    """One extraction job: its batches, the table row of every token type, one accumulator per
    layer, and progress.

    `first_position[i]` is the global corpus position of window i's first token. `batches`
    (window indices, from `chunk_batches`) restricts the work to those windows, batched exactly
    so; by default every window, batched by `plan_batches`. Only the first `n_neurons` neurons
    of each layer are kept (all when None). Device memory is the model, one batch's
    activations, fixed scratch, and one table row per token type occurring in the windows run.
    The accumulators are allocated here, before any forward pass, so a device too small for
    them fails at once. The first `skip_first` positions of every window are run but not counted.
    """

    def __init__(self, loaded: LoadedModel, layers: list[int], windows: list[np.ndarray],
                 first_position: np.ndarray, *, batch_tokens: int,
                 batches: list[np.ndarray] | None = None, n_neurons: int | None = None,
                 skip_first: int = 0, emit: Callable[[str], None] = log.info):
        self.loaded, self.layers, self.windows = loaded, list(layers), windows
        self.batch_tokens, self.emit = batch_tokens, emit
        self.skip_first = checked_skip(skip_first, [len(w) for w in windows])
        self.n_neurons = n_neurons or loaded.n_neurons
        # MPS has no float64: there the tables live in host memory and activations are copied.
        self.table_device = torch.device("cpu") if loaded.device.type == "mps" else loaded.device
        self.lengths = np.array([len(w) for w in windows], dtype=np.int64)
        self.batches = plan_batches(self.lengths, batch_tokens) if batches is None else batches
        self.first_position = np.asarray(first_position, dtype=np.int64)
        members = np.concatenate(self.batches) if self.batches else np.empty(0, dtype=np.int64)
        self.total_tokens = int(self.lengths[members].sum())
        self.origin = _span_origin(self.first_position[members], self.lengths[members])
        vocab = max(len(loaded.tokenizer), loaded.input_embeddings().shape[0])
        # Row r of every table is token type token_types[r]: tables hold only types that occur.
        self.token_types = occurring_types([windows[i][self.skip_first:] for i in members],
                                           vocab)
        self.row_of_type = _row_lookup(self.token_types, vocab).to(self.table_device)
        self.stats = self._allocate()
        self.workspace = Workspace(self.n_neurons, self.table_device)
        self.progress = Progress(self.total_tokens, emit)
        self._captured: dict[int, torch.Tensor] = {}

    def run(self) -> dict[int, CompactStats]:
        """Run every batch, then hand each layer's tables over to its compact result (once:
        afterwards `stats` is empty)."""
        with torch.inference_mode(), self.loaded.capture(self.layers, self._capture):
            for ids, positions in self._forward_batches():
                self._add(ids, positions)
                self.progress.advance(ids.numel())
        self.progress.advance(0, force=True)
        return {layer: self.stats.pop(layer).into_compact(self.token_types)
                for layer in self.layers}

    def _capture(self, layer: int, acts: torch.Tensor) -> None:
        self._captured[layer] = acts.reshape(-1, acts.shape[-1])[:, :self.n_neurons]

    def _add(self, ids: torch.Tensor, positions: torch.Tensor) -> None:
        """Fold the captured batch into every layer, on one thread: `serial_on_cpu` gives the
        forward pass its thread count back, since a matmul's bits can depend on how many
        threads split it."""
        with serial_on_cpu(self.table_device):
            if self.skip_first:
                self._add_skipping(ids, positions)
            else:
                self._fold(ids.reshape(-1), positions, self._captured)
        self._captured.clear()

    def _add_skipping(self, ids: torch.Tensor, positions: torch.Tensor) -> None:
        """Fold each window's positions from `skip_first` on: a window's rows of the captured
        [B * L, N] activations are contiguous, so its kept part is a view (no batch copy)."""
        length, keep = ids.shape[1], slice(self.skip_first, None)
        for w in range(ids.shape[0]):
            rows = slice(w * length, (w + 1) * length)
            self._fold(ids[w, keep], positions[rows][keep],
                       {layer: acts[rows][keep] for layer, acts in self._captured.items()})

    def _fold(self, ids: torch.Tensor, positions: torch.Tensor,
              acts: dict[int, torch.Tensor]) -> None:
        rows = self.row_of_type[ids.to(self.table_device)]
        tokens = Occurrences.of(rows, positions, self.origin)
        for layer in self.layers:
            self.stats[layer].add(tokens, acts[layer].to(self.table_device), self.workspace)

    def _forward_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Run the forward pass batch by batch; yields (token ids [B, L], positions [B * L])
        once the batch's activations are captured.

        On a device out-of-memory error the batch is halved and retried, and later batches stay
        at the reduced size (each retry wastes a forward pass). Statistics are only updated
        after a complete forward pass, so a retry never counts a token twice; but smaller
        batches change float32 round-off, so such a run is no longer bitwise equal to one
        without back-off (the log says when it happens).
        """
        queue = deque(self.batches)
        limit = self.batch_tokens
        while queue:
            group = queue.popleft()
            length = int(self.lengths[group[0]])
            if len(group) > 1 and len(group) * length > limit:
                per = max(1, limit // length)
                queue.extendleft(reversed([group[i:i + per] for i in range(0, len(group), per)]))
                continue
            ids = torch.from_numpy(np.stack([self.windows[i] for i in group]).astype(np.int64))
            if not self._forward(ids.to(self.loaded.device)):
                half = len(group) // 2
                limit = half * length
                self.emit(f"out of memory with {len(group)} windows per batch; "
                          f"continuing with {half}")
                queue.extendleft([group[half:], group[:half]])
                continue
            yield ids, (torch.from_numpy(self.first_position[group])[:, None]
                        + torch.arange(length)[None, :]).reshape(-1)

    def _forward(self, ids: torch.Tensor) -> bool:
        """One forward pass; False if the device ran out of memory on a batch worth halving."""
        self._captured.clear()
        try:
            self.loaded.forward_until(ids, None)
        except torch.OutOfMemoryError:
            self._captured.clear()
            if ids.shape[0] == 1:
                raise
            if self.loaded.device.type == "cuda":
                torch.cuda.empty_cache()
            return False
        return True

    def _allocate(self) -> dict[int, TokenTypeStats]:
        rows, n, dev = len(self.token_types), self.n_neurons, self.table_device
        try:
            return {layer: TokenTypeStats.zeros(rows, n, dev, origin=self.origin)
                    for layer in self.layers}
        except torch.OutOfMemoryError as exc:
            need = len(self.layers) * TokenTypeStats.table_bytes(rows, n) / 2**30
            raise torch.OutOfMemoryError(
                f"statistics tables for {len(self.layers)} layers x {rows:,} token types x {n:,} "
                f"neurons need {need:.1f} GiB on {dev}: extract fewer layers per job, lower "
                "n_neurons, or run on a device with more memory") from exc


def extract_statistics(
    loaded: LoadedModel,
    layers: list[int],
    windows: list[np.ndarray],
    first_position: np.ndarray,
    *,
    batch_tokens: int,
    batches: list[np.ndarray] | None = None,
    n_neurons: int | None = None,
    skip_first: int = 0,
    emit: Callable[[str], None] = log.info,
) -> tuple[dict[int, CompactStats], int]:
    """Per-layer statistics over `windows` (token id arrays) and the count of tokens run through
    the model, from one `Extraction` (which documents the arguments)."""
    extraction = Extraction(loaded, layers, windows, first_position, batch_tokens=batch_tokens,
                            batches=batches, n_neurons=n_neurons, skip_first=skip_first,
                            emit=emit)
    return extraction.run(), extraction.total_tokens


def checked_skip(skip_first: int, lengths: list[int]) -> int:
    """`extract.skip_first_positions`, checked: not negative, and shorter than the longest
    window (otherwise no position would be counted)."""
    skip = int(skip_first)
    if skip < 0:
        raise ValueError(f"extract.skip_first_positions is {skip}: it must be 0 or more")
    if skip and lengths and skip >= max(lengths):
        raise ValueError(f"extract.skip_first_positions is {skip} but no window is longer than "
                         f"{max(lengths)} positions, so nothing would be counted: lower it or "
                         "raise corpus.window_tokens")
    return skip


def _row_lookup(token_types: np.ndarray, vocab: int) -> torch.Tensor:
    """[vocab] table row of each token id (-1 for ids that do not occur)."""
    lookup = torch.full((vocab,), -1, dtype=torch.int64)
    lookup[torch.from_numpy(token_types)] = torch.arange(len(token_types))
    return lookup


def _span_origin(starts: np.ndarray, lengths: np.ndarray) -> int:
    """First corpus position of the windows run; their span must fit the packed keys."""
    if not starts.size:
        return 0
    origin, end = int(starts.min()), int((starts + lengths).max())
    if lengths.sum() and end - origin > MAX_POSITIONS:
        raise ValueError("one extraction job spans more than 2^32 corpus positions: raise "
                         "extract.chunks so each chunk covers fewer tokens")
    return origin


def occurring_types(windows: list[np.ndarray], vocab: int) -> np.ndarray:
    """Sorted token ids present in `windows`, via a presence mask (memory O(vocab), not O(corpus))."""
    seen = np.zeros(vocab, dtype=bool)
    for w in windows:
        if len(w) and (int(w.min()) < 0 or int(w.max()) >= vocab):
            raise ValueError(f"token ids outside the model's vocabulary of {vocab}: the tokens file "
                             "was made with another tokenizer; rerun the corpus rule")
        seen[w] = True
    return np.flatnonzero(seen)
