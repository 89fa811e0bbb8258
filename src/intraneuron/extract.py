"""Extraction: one truncated forward pass per batch of windows feeds the statistics of all layers.

Windows of equal length are batched without padding; every token has a global corpus position
(offset of its window plus its index), so chunks extracted by separate jobs merge exactly. The
activations are folded into the statistics straight from the hooked tensors (no copies kept), so
memory does not grow with the number of tokens; on CPU the layers are folded on parallel threads.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .models import LoadedModel
from .stats import MAX_POSITIONS, CompactStats, TokenTypeStats, Workspace, low_words, serial_on_cpu

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


def extract_statistics(
    loaded: LoadedModel,
    layers: list[int],
    windows: list[np.ndarray],
    first_position: np.ndarray,
    *,
    batch_tokens: int,
    batches: list[np.ndarray] | None = None,
    n_neurons: int | None = None,
    emit: Callable[[str], None] = log.info,
) -> tuple[dict[int, CompactStats], int]:
    """Per-layer statistics over `windows` (token id arrays); returns them and the token count.

    `first_position[i]` is the global corpus position of window i's first token. `batches`
    (window indices, from `chunk_batches`) restricts the work to those windows, batched exactly
    so; by default every window, batched by `plan_batches`. Only the first `n_neurons` neurons
    of each layer are kept (all when None). Device memory is the model, one batch's
    activations, fixed scratch, and one table row per token type occurring in the windows run.
    """
    dev = loaded.device
    # MPS has no float64: there the tables live in host memory and activations are copied over.
    table_dev = torch.device("cpu") if dev.type == "mps" else dev
    n = n_neurons or loaded.n_neurons
    vocab = max(len(loaded.tokenizer), loaded.input_embeddings().shape[0])
    lengths = np.array([len(w) for w in windows], dtype=np.int64)
    if batches is None:
        batches = plan_batches(lengths, batch_tokens)
    members = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
    total = int(lengths[members].sum())
    types = occurring_types([windows[i] for i in members], vocab)
    first_position = np.asarray(first_position, dtype=np.int64)
    origin = int(first_position[members].min()) if members.size else 0
    end = int((first_position[members] + lengths[members]).max()) if members.size else 0
    if total and end - origin > MAX_POSITIONS:
        raise ValueError("one extraction job spans more than 2^32 corpus positions: raise "
                         "extract.chunks so each chunk covers fewer tokens")
    # Row r of every table is token type types[r]: tables hold only types that occur.
    lookup = torch.full((vocab,), -1, dtype=torch.int64)
    lookup[torch.from_numpy(types)] = torch.arange(len(types))
    lookup = lookup.to(table_dev)
    progress = Progress(total, emit)
    captured: dict[int, torch.Tensor] = {}
    batch: dict[str, torch.Tensor] = {}  # table rows and low key words of the current batch

    def sink(layer: int, acts: torch.Tensor) -> None:
        captured[layer] = acts.reshape(-1, acts.shape[-1])[:, :n]

    def fold(layer: int, workspace: Workspace) -> None:
        stats[layer].accumulate(batch["rows"], captured[layer].to(table_dev), batch["low"],
                                workspace)

    out: dict[int, CompactStats] = {}

    def finish(layer: int, _workspace: Workspace) -> None:
        out[layer] = stats.pop(layer).to_compact(types, consume=True)

    # Thread counts are process-global state that the statistics threads change; the forward
    # pass always gets this one back, since a matmul's summation order (hence its bits) can
    # depend on how many threads split it.
    forward_threads = torch.get_num_threads()
    with _PerLayer(layers, n, table_dev) as per_layer:
        stats = _allocate(types, n, layers, table_dev, origin, per_layer)
        torch.set_num_threads(forward_threads)
        count = stats[layers[0]].count
        with torch.inference_mode(), loaded.capture(layers, sink):
            for ids, pos in _forward_batches(loaded, windows, lengths, first_position,
                                             batches, batch_tokens, captured, emit):
                with serial_on_cpu(table_dev):
                    batch["rows"] = rows = lookup[ids.reshape(-1).to(table_dev)]
                    count.index_add_(0, rows, torch.ones_like(rows))
                    batch["low"] = low_words(pos.to(table_dev), origin)
                    per_layer.run(fold)
                torch.set_num_threads(forward_threads)
                captured.clear()
                progress.advance(ids.numel())
        progress.advance(0, force=True)
        del lookup
        batch.clear()
        per_layer.run(finish)
    return {layer: out[layer] for layer in layers}, total


def _forward_batches(loaded: LoadedModel, windows: list[np.ndarray], lengths: np.ndarray,
                     first_position: np.ndarray, batches: list[np.ndarray], batch_tokens: int,
                     captured: dict[int, torch.Tensor], emit: Callable[[str], None]):
    """Run the forward pass batch by batch; yields (token ids [B, L], positions [B * L]) once
    `captured` holds the batch's activations.

    On a device out-of-memory error the batch is halved and retried, and later batches stay at
    the reduced size (each retry wastes a forward pass). Statistics are only updated after a
    complete forward pass, so a retry never counts a token twice; but smaller batches change
    float32 round-off, so such a run is no longer bitwise equal to one without back-off (the
    log says when it happens).
    """
    dev = loaded.device
    queue = deque(batches)
    limit = batch_tokens
    while queue:
        group = queue.popleft()
        length = int(lengths[group[0]])
        if len(group) > 1 and len(group) * length > limit:
            per = max(1, limit // length)
            queue.extendleft(reversed([group[i:i + per] for i in range(0, len(group), per)]))
            continue
        ids = torch.from_numpy(np.stack([windows[i] for i in group]).astype(np.int64)).to(dev)
        captured.clear()
        try:
            loaded.forward_until(ids, None)
        except torch.OutOfMemoryError:
            captured.clear()
            if len(group) == 1:
                raise
            half = len(group) // 2
            limit = half * length
            emit(f"out of memory with {len(group)} windows per batch; continuing with {half}")
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            queue.extendleft([group[half:], group[:half]])
            continue
        yield ids, (torch.from_numpy(first_position[group])[:, None]
                    + torch.arange(length)[None, :]).reshape(-1)


class _PerLayer:
    """Runs one call per layer; on CPU the layers are spread over threads.

    Each thread runs its layers' ops on a single intra-op thread: the update is many short ops,
    and torch's own parallel regions end in a barrier that stalls for a scheduler time slice
    whenever a core is busy with another process (measured here: ~10 ms per 2 MB op on a loaded
    2-core machine), while threads over layers need no barrier until the batch is done.
    """

    def __init__(self, layers: list[int], n_neurons: int, device: torch.device):
        # One thread: worker threads that change torch's process-global thread count made
        # extraction results differ between identical runs in CI (about 1e-6 relative), and
        # bitwise reproducibility on CPU matters more than the ~10% the parallel fold gains.
        threads = 1
        self.groups = [layers[i::threads] for i in range(threads)]
        self.workspaces = [Workspace(n_neurons, device) for _ in self.groups]
        self.pool = (ThreadPoolExecutor(threads - 1, initializer=torch.set_num_threads,
                                        initargs=(1,)) if threads > 1 else None)

    def run(self, fn: Callable[[int, Workspace], None]) -> None:
        def group(i: int) -> None:
            for layer in self.groups[i]:
                fn(layer, self.workspaces[i])

        pending = [self.pool.submit(group, i) for i in range(1, len(self.groups))] if self.pool else []
        group(0)
        for job in pending:
            job.result()

    def __enter__(self) -> _PerLayer:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool:
            self.pool.shutdown()


def occurring_types(windows: list[np.ndarray], vocab: int) -> np.ndarray:
    """Sorted token ids present in `windows`, via a presence mask (memory O(vocab), not O(corpus))."""
    seen = np.zeros(vocab, dtype=bool)
    for w in windows:
        if len(w) and (int(w.min()) < 0 or int(w.max()) >= vocab):
            raise ValueError(f"token ids outside the model's vocabulary of {vocab}: the tokens file "
                             "was made with another tokenizer; rerun the corpus rule")
        seen[w] = True
    return np.flatnonzero(seen)


def _allocate(types: np.ndarray, n: int, layers: list[int], dev: torch.device, origin: int,
              per_layer: _PerLayer) -> dict[int, TokenTypeStats]:
    """One table per layer (sharing the count), allocated before the first forward pass so a
    device too small for them fails at once, with a message saying how much was needed. Each
    layer's thread fills its own tables, so page faults are taken in parallel."""
    count = torch.zeros(len(types), dtype=torch.int64, device=dev)
    stats: dict[int, TokenTypeStats] = {}

    def make(layer: int, _workspace: Workspace) -> None:
        stats[layer] = TokenTypeStats.zeros(len(types), n, dev, origin=origin, count=count)

    try:
        per_layer.run(make)
    except torch.OutOfMemoryError as exc:
        need = len(layers) * TokenTypeStats.table_bytes(len(types), n) / 2**30
        raise torch.OutOfMemoryError(
            f"statistics tables for {len(layers)} layers x {len(types):,} token types x {n:,} "
            f"neurons need {need:.1f} GiB on {dev}: extract fewer layers per job, lower n_neurons, "
            "or run on a device with more memory") from exc
    return stats
