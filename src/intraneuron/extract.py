"""Extraction: one truncated forward pass per batch of windows feeds the statistics of all layers.

Windows of equal length are batched without padding; every token has a global corpus position
(offset of its window plus its index), so chunks extracted by separate jobs merge exactly. The
activations are folded into the statistics straight from the hooked tensors (no copies kept), so
memory does not grow with the number of tokens.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import torch

from .models import LoadedModel
from .stats import MAX_POSITIONS, CompactStats, TokenTypeStats, Workspace, low_words, serial_on_cpu

log = logging.getLogger(__name__)


def chunk_bounds(n_windows: int, chunks: int, index: int) -> tuple[int, int]:
    """Windows [start, stop) of chunk `index` (0-based) out of `chunks` near-equal chunks."""
    if not 0 <= index < chunks:
        raise ValueError(f"chunk index {index} outside 0..{chunks - 1}")
    edges = np.linspace(0, n_windows, chunks + 1).round().astype(int)
    return int(edges[index]), int(edges[index + 1])


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


def extract_statistics(
    loaded: LoadedModel,
    layers: list[int],
    windows: list[np.ndarray],
    first_position: np.ndarray,
    *,
    batch_tokens: int,
    n_neurons: int | None = None,
    emit: Callable[[str], None] = log.info,
) -> tuple[dict[int, CompactStats], int]:
    """Per-layer statistics over `windows` (token id arrays); returns them and the token count.

    `first_position[i]` is the global corpus position of window i's first token. Only the first
    `n_neurons` neurons of each layer are kept (all when None). Device memory is the model, one
    batch's activations, fixed scratch, and one row per token type occurring in `windows`.
    """
    dev = loaded.device
    # MPS has no float64: there the tables live in host memory and activations are copied over.
    table_dev = torch.device("cpu") if dev.type == "mps" else dev
    n = n_neurons or loaded.n_neurons
    vocab = max(len(loaded.tokenizer), loaded.input_embeddings().shape[0])
    lengths = np.array([len(w) for w in windows], dtype=np.int64)
    total = int(lengths.sum())
    types = occurring_types(windows, vocab)
    first_position = np.asarray(first_position, dtype=np.int64)
    origin = int(first_position.min()) if len(windows) else 0
    if total and int((first_position + lengths).max()) - origin > MAX_POSITIONS:
        raise ValueError("one extraction job spans more than 2^32 corpus positions: raise "
                         "extract.chunks so each chunk covers fewer tokens")
    # Row r of every table is token type types[r]: tables hold only types that occur.
    lookup = torch.full((vocab,), -1, dtype=torch.int64)
    lookup[torch.from_numpy(types)] = torch.arange(len(types))
    lookup = lookup.to(table_dev)
    stats = _allocate(types, n, layers, table_dev, origin)
    workspace = Workspace(n, table_dev)
    progress = Progress(total, emit)
    captured: dict[int, torch.Tensor] = {}

    def sink(layer: int, acts: torch.Tensor) -> None:
        captured[layer] = acts.reshape(-1, acts.shape[-1])[:, :n]

    queue = deque(plan_batches(lengths, batch_tokens))
    limit = batch_tokens  # lowered for good after an out-of-memory error
    count = next(iter(stats.values())).count if stats else None
    with torch.inference_mode(), loaded.capture(layers, sink):
        while queue:
            batch = queue.popleft()
            length = int(lengths[batch[0]])
            if len(batch) > 1 and len(batch) * length > limit:
                per = max(1, limit // length)
                queue.extendleft(reversed([batch[i:i + per] for i in range(0, len(batch), per)]))
                continue
            ids = torch.from_numpy(np.stack([windows[i] for i in batch]).astype(np.int64)).to(dev)
            captured.clear()
            try:
                loaded.forward_until(ids, None)
            except torch.OutOfMemoryError:
                # Statistics are only updated after a complete forward pass, so a retry with
                # smaller batches never counts a token twice.
                captured.clear()
                if len(batch) == 1:
                    raise
                half = len(batch) // 2
                limit = half * length
                emit(f"out of memory with {len(batch)} windows per batch; continuing with {half}")
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                queue.extendleft([batch[half:], batch[:half]])
                continue
            pos = (torch.from_numpy(first_position[batch])[:, None]
                   + torch.arange(length)[None, :]).reshape(-1).to(table_dev)
            with serial_on_cpu(table_dev):
                rows = lookup[ids.reshape(-1).to(table_dev)]
                count.index_add_(0, rows, torch.ones_like(rows))
                low = low_words(pos, origin)
                for layer in layers:
                    stats[layer].accumulate(rows, captured[layer].to(table_dev), low, workspace)
            captured.clear()
            progress.advance(int(lengths[batch].sum()))
    progress.advance(0, force=True)
    del workspace, lookup
    return {layer: stats.pop(layer).to_compact(types, consume=True) for layer in layers}, total


def occurring_types(windows: list[np.ndarray], vocab: int) -> np.ndarray:
    """Sorted token ids present in `windows`, via a presence mask (memory O(vocab), not O(corpus))."""
    seen = np.zeros(vocab, dtype=bool)
    for w in windows:
        if len(w) and (int(w.min()) < 0 or int(w.max()) >= vocab):
            raise ValueError(f"token ids outside the model's vocabulary of {vocab}: the tokens file "
                             "was made with another tokenizer; rerun the corpus rule")
        seen[w] = True
    return np.flatnonzero(seen)


def _allocate(types: np.ndarray, n: int, layers: list[int], dev: torch.device,
              origin: int) -> dict[int, TokenTypeStats]:
    """One table per layer (sharing the count), allocated before the first forward pass so a
    device too small for them fails at once, with a message saying how much was needed."""
    try:
        count = torch.zeros(len(types), dtype=torch.int64, device=dev)
        return {layer: TokenTypeStats.zeros(len(types), n, dev, origin=origin, count=count)
                for layer in layers}
    except torch.OutOfMemoryError as exc:
        need = len(layers) * TokenTypeStats.table_bytes(len(types), n) / 2**30
        raise torch.OutOfMemoryError(
            f"statistics tables for {len(layers)} layers x {len(types):,} token types x {n:,} "
            f"neurons need {need:.1f} GiB on {dev}: extract fewer layers per job, lower n_neurons, "
            "or run on a device with more memory") from exc
