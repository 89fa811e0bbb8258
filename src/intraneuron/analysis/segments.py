"""Bottom-up view: cutting the activation ranking into segments.

Segment s of g holds ranks r with floor(r * g / k) == s, so segment 0 is the top of the ranking,
sizes differ by at most one, and every segment is a contiguous block of ranks (the permutation
engine relies on that contiguity).
"""

from __future__ import annotations

import numpy as np

from .arrays import run_starts


def rank_segments(k: int, n_segments: int) -> np.ndarray:
    """Segment label of each rank 0..k-1 (0 = highest activations)."""
    g = min(int(n_segments), int(k))
    return (np.arange(k) * g // k).astype(np.int64)


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
