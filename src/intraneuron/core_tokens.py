"""Core tokens: per neuron, the k token types with the highest mean activation.

Eligible types occur at least `min_count` times and are not special tokens. Ties in the mean are
broken by the lower token id, so the selection is a pure function of the statistics; how many
eligible types tie with the k-th mean but were left out is recorded (`boundary_ties`), and the
analysis breaks ties inside the core set by a seeded random order and excludes neurons whose
ranking the tie rule decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the analysis jobs import this module and need no torch
    from .running_stats import CompactStats


class CoreTokenError(ValueError):
    """The statistics cannot supply k core tokens; the message says how many were eligible."""


@dataclass
class CoreTokens:
    token_ids: np.ndarray   # [n, k] int32, rank 0 = highest mean activation
    mean: np.ndarray        # [n, k] float64
    max: np.ndarray         # [n, k] float32
    count: np.ndarray       # [n, k] int64
    argmax: np.ndarray      # [n, k] int64 global corpus position of the maximum
    boundary_ties: np.ndarray  # [n] eligible types outside the core set tied with the k-th mean
    eligible: np.ndarray    # [V_e] token ids of the eligible types
    n_eligible: int


def eligible_rows(stats: CompactStats, min_count: int,
                  excluded_ids: list[int] | np.ndarray = ()) -> np.ndarray:
    """Which rows of `stats` may be core tokens: seen `min_count` times, not special tokens."""
    return (stats.count >= min_count) & ~np.isin(stats.token_ids, np.asarray(excluded_ids))


def select_core_tokens(stats: CompactStats, k: int, min_count: int,
                       excluded_ids: list[int] | np.ndarray = ()) -> CoreTokens:
    """Top-k token types per neuron column of `stats` (rows ascending in token id)."""
    eligible = eligible_rows(stats, min_count, excluded_ids)
    n_eligible = int(eligible.sum())
    if n_eligible < k:
        raise CoreTokenError(
            f"only {n_eligible} token types pass min_count={min_count} (and the special-token "
            f"filter), fewer than core_tokens.k={k}: lower core_tokens.k or core_tokens.min_count, "
            "or use a larger corpus (corpus.max_tokens)"
        )
    rows = np.flatnonzero(eligible)
    mean = stats.sum[rows] / stats.count[rows, None]
    # A stable sort of the negated means keeps ascending token id among equal means.
    order = np.argsort(-mean, axis=0, kind="stable")[:k].T   # [n, k] indices into rows
    sel = rows[order]
    cols = np.arange(mean.shape[1])[:, None]
    kth = mean[order[:, -1], cols[:, 0]]
    tied_everywhere = np.count_nonzero(mean == kth[None, :], axis=0)
    tied_inside = np.count_nonzero(mean[order, cols] == kth[:, None], axis=1)
    return CoreTokens(
        token_ids=stats.token_ids[sel].astype(np.int32),
        mean=mean[order, cols],
        max=stats.max[sel, cols],
        count=stats.count[sel],
        argmax=stats.argmax[sel, cols],
        boundary_ties=(tied_everywhere - tied_inside).astype(np.int64),
        eligible=stats.token_ids[rows].astype(np.int32),
        n_eligible=n_eligible,
    )


def document_spans(doc_ids: np.ndarray, window_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every corpus position, the [start, stop) of its run of one document inside one window."""
    n = len(doc_ids)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = doc_ids[1:] != doc_ids[:-1]
    new_run[window_start[window_start < n]] = True
    starts = np.flatnonzero(new_run)
    stops = np.append(starts[1:], n)
    run = np.cumsum(new_run) - 1
    return starts[run], stops[run]


def contexts(positions: np.ndarray, flat_ids: np.ndarray, span_start: np.ndarray,
             span_stop: np.ndarray, radius: int, decode) -> tuple[np.ndarray, np.ndarray]:
    """Decoded text before and after each global position, never leaving its document.

    Returns two object arrays shaped like `positions`: the left context (ending just before the
    token) and the right context (starting just after it).
    """
    flat_pos = positions.ravel()
    lo = np.maximum(span_start[flat_pos], flat_pos - radius)
    hi = np.minimum(span_stop[flat_pos], flat_pos + radius + 1)
    cache: dict[tuple[int, ...], str] = {}

    def text(ids: np.ndarray) -> str:
        key = tuple(int(i) for i in ids)
        if key not in cache:
            cache[key] = decode(list(key))
        return cache[key]

    left = np.array([text(flat_ids[a:p]) for a, p in zip(lo, flat_pos, strict=True)], dtype=object)
    right = np.array([text(flat_ids[p + 1:b]) for p, b in zip(flat_pos, hi, strict=True)], dtype=object)
    return left.reshape(positions.shape), right.reshape(positions.shape)
