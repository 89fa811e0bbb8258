"""Small array helpers shared by the analysis modules, written to avoid per-call overhead
(np.r_ and np.triu_indices cost tens of microseconds each, which adds up over 12,800 neurons)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def run_starts(values: np.ndarray) -> np.ndarray:
    """Boolean mask of positions where a run of equal values starts (position 0 always does)."""
    out = np.empty(values.shape[0], dtype=bool)
    if out.size:
        out[0] = True
        np.not_equal(values[1:], values[:-1], out=out[1:])
    return out


@lru_cache(maxsize=64)
def upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the strict upper triangle of an n x n matrix (read-only)."""
    i, j = np.triu_indices(n, 1)
    i.setflags(write=False)
    j.setflags(write=False)
    return i, j
