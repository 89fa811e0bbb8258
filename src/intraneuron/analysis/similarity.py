"""Categorical proximity of core tokens: cosine similarity of their embedding vectors.

The embedding matrix is only a proxy for "category": two tokens are categorically close when
their vectors point the same way. Everything downstream (clusters, homogeneity) reads the
k x k similarity matrix built here, one neuron at a time, so a neuron's result never depends on
which other neurons share its shard.
"""

from __future__ import annotations

import numpy as np


def cosine_similarity_matrix(embeddings: np.ndarray, token_ids: np.ndarray) -> np.ndarray:
    """k x k cosine similarities (float32) of the embedding rows `token_ids`.

    The diagonal is exactly 1 (0 for an all-zero vector, whose similarities are all 0) and
    values are clipped to [-1, 1] so that 1 - S is a valid distance.
    """
    vectors = np.asarray(embeddings[np.asarray(token_ids)], dtype=np.float32)
    gram = vectors @ vectors.T
    norms = np.sqrt(np.maximum(np.diagonal(gram).astype(np.float64), 0.0))
    inv = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
    sim = gram * inv[:, None] * inv[None, :]
    np.clip(sim, -1.0, 1.0, out=sim)
    np.fill_diagonal(sim, np.where(norms > 0, 1.0, 0.0))
    return sim


def homogeneity(sim: np.ndarray, members: np.ndarray) -> float:
    """Mean pairwise similarity among `members` (off-diagonal); NaN for fewer than 2 members."""
    idx = np.asarray(members)
    m = idx.size
    if m < 2:
        return float("nan")
    block = np.asarray(sim, dtype=np.float64)[np.ix_(idx, idx)]
    return float((block.sum() - np.trace(block)) / (m * (m - 1)))


def block_homogeneity(sim: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Homogeneity of every group of `labels` (0..n_groups-1) at once, float64, NaN if size < 2.

    Uses one-hot membership C: within-group sums are diag(C^T S C) minus the group's diagonal
    entries, so the cost is one small matrix product instead of a loop over groups. Pass a
    float64 `sim` to avoid a conversion per call.
    """
    s = np.asarray(sim, dtype=np.float64)
    onehot = np.zeros((labels.size, n_groups))
    onehot[np.arange(labels.size), labels] = 1.0
    within = np.einsum("ig,ig->g", onehot, s @ onehot)
    within -= np.bincount(labels, weights=np.diagonal(s), minlength=n_groups)
    size = onehot.sum(axis=0)
    pairs = size * (size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, within / np.where(pairs > 0, pairs, 1.0), np.nan)


def mean_offdiagonal(sim: np.ndarray) -> float:
    """Mean similarity over all ordered pairs i != j: expected homogeneity of a random subset."""
    k = sim.shape[0]
    s = np.asarray(sim, dtype=np.float64)
    return float((s.sum() - np.trace(s)) / (k * (k - 1)))
