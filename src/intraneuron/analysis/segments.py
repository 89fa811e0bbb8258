"""Bottom-up view: cutting the activation ranking into segments.

By rank (`analysis.segment_cut: rank`), segment s of g holds ranks r with floor(r * g / k) == s:
sizes differ by at most one. By value (`value`), the neuron's core-token activation range is cut
into g equal-width bands, so a skewed neuron's top segment holds only its few top tokens; bands
no token falls in are dropped (fewer segments, renumbered from 0), and a one-token band has no
homogeneity. Either way segment 0 is the top of the ranking and every segment is a contiguous
block of ranks (the permutation engine relies on that contiguity).
"""

from __future__ import annotations

import numpy as np

from .arrays import run_starts


def rank_segments(k: int, n_segments: int) -> np.ndarray:
    """Segment label of each rank 0..k-1 (0 = highest activations)."""
    g = min(int(n_segments), int(k))
    return (np.arange(k) * g // k).astype(np.int64)


def value_segments(act: np.ndarray, n_segments: int) -> np.ndarray:
    """Segment label of each rank for activations `act` (descending): band s of g equal-width
    bands of [act.min(), act.max()] holds top - (s + 1) w < a <= top - s w (the last band also
    the minimum); empty bands are dropped. Equal activations leave no range to cut: rank cuts."""
    act = np.asarray(act, dtype=np.float64)
    g = int(n_segments)
    top, span = act[0], act[0] - act[-1]
    if not span > 0:
        return rank_segments(act.size, g)
    band = np.clip(np.floor((top - act) * g / span), 0, g - 1).astype(np.int64)
    return np.cumsum(run_starts(band)) - 1


def segment_labels(act: np.ndarray, n_segments: int, cut: str) -> np.ndarray:
    """Segment label of each rank by the `analysis.segment_cut` rule."""
    if cut == "value":
        return value_segments(act, n_segments)
    return rank_segments(len(act), n_segments)


def segment_starts(labels: np.ndarray) -> np.ndarray:
    """First rank of each segment (labels are non-decreasing)."""
    return np.flatnonzero(run_starts(labels))


def segment_composition(
    segment: np.ndarray, cluster: np.ndarray, n_segments: int, n_clusters: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment: number of distinct clusters present, dominant cluster, its share (purity)."""
    table = np.bincount(segment * n_clusters + cluster, minlength=n_segments * n_clusters)
    table = table.reshape(n_segments, n_clusters)
    present = np.count_nonzero(table, axis=1)
    dominant = table.argmax(axis=1)
    purity = table.max(axis=1) / np.maximum(table.sum(axis=1), 1)
    return present, dominant, purity
