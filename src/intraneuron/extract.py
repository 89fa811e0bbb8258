"""Extraction: one truncated forward pass per batch of windows feeds the statistics of all layers.

Windows of equal length are batched without padding; every token has a global corpus position
(offset of its window plus its index), so chunks extracted by separate jobs merge exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from .models import LoadedModel
from .stats import CompactStats, TokenTypeStats

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
    `n_neurons` neurons of each layer are kept (all when None).
    """
    dev = loaded.device
    n = n_neurons or loaded.n_neurons
    vocab = max(len(loaded.tokenizer), loaded.input_embeddings().shape[0])
    stats = {layer: TokenTypeStats.zeros(vocab, n, dev) for layer in layers}
    lengths = np.array([len(w) for w in windows], dtype=np.int64)
    total = int(lengths.sum())
    progress = Progress(total, emit)
    captured: dict[int, torch.Tensor] = {}

    def sink(layer: int, acts: torch.Tensor) -> None:
        captured[layer] = acts.reshape(-1, acts.shape[-1])[:, :n]

    queue = plan_batches(lengths, batch_tokens)
    with torch.inference_mode(), loaded.capture(layers, sink):
        while queue:
            batch = queue.pop(0)
            ids = torch.from_numpy(np.stack([windows[i] for i in batch]).astype(np.int64)).to(dev)
            pos = (torch.from_numpy(first_position[batch])[:, None]
                   + torch.arange(ids.shape[1])[None, :]).reshape(-1).to(dev)
            captured.clear()
            try:
                loaded.forward_until(ids, torch.ones_like(ids))
            except torch.OutOfMemoryError:
                # Statistics are only updated after a complete forward pass, so a retry with
                # smaller batches never counts a token twice.
                captured.clear()
                if len(batch) == 1:
                    raise
                half = len(batch) // 2
                emit(f"out of memory with {len(batch)} windows per batch; retrying with {half}")
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                queue[:0] = [batch[:half], batch[half:]]
                continue
            flat_ids = ids.reshape(-1)
            for layer in layers:
                stats[layer].update(flat_ids, captured[layer], pos)
            progress.advance(int(lengths[batch].sum()))
    progress.advance(0, force=True)
    return {layer: CompactStats.from_dense(st) for layer, st in stats.items()}, total
