"""Synthetic neurons with known structure, for tests and the benchmark.

A toy vocabulary is made of categories: each category's token vectors scatter tightly around
its own random direction, so cosine similarity recovers the category. A neuron is a ranked list
of k core tokens drawn from a few categories; its activation either follows category (the
planted case: the top `planted_top` ranks all come from one category) or ignores it (the null
case: ranks are a random order of the drawn tokens).
"""

from __future__ import annotations

import numpy as np


def category_embeddings(
    n_categories: int, per_category: int, dim: int, spread: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(V, dim) float32 vectors and each token's category; V = n_categories * per_category."""
    centers = rng.standard_normal((n_categories, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    category = np.repeat(np.arange(n_categories), per_category)
    noise = rng.standard_normal((category.size, dim)) * spread / np.sqrt(dim)
    return (centers[category] + noise).astype(np.float32), category


def neuron_tokens(
    category: np.ndarray,
    k: int,
    n_mixed: int,
    planted_top: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """k distinct token ids in rank order.

    The top `planted_top` ranks come from one category (0 for a null neuron); the remaining
    ranks are a random order of tokens from `n_mixed` other categories.
    """
    cats = rng.choice(category.max() + 1, size=n_mixed + 1, replace=False)
    top = rng.choice(np.flatnonzero(category == cats[0]), size=planted_top, replace=False)
    pool = np.flatnonzero(np.isin(category, cats[1:]))
    rest = rng.choice(pool, size=k - planted_top, replace=False)
    return np.concatenate([top, rest])


def synthetic_shard(
    n_neurons: int,
    k: int = 100,
    planted_top: int = 0,
    n_mixed: int = 4,
    n_categories: int = 40,
    per_category: int = 60,
    dim: int = 64,
    spread: float = 0.6,
    seed: int = 0,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Keyword arguments for `analyze_shard` (minus layer and params) plus `category` (V,).

    Activations are sorted uniform draws, so rank order is the only thing that carries signal.
    Pass `embeddings` = (matrix, category) to reuse a vocabulary.
    """
    rng = np.random.default_rng(seed)
    if embeddings is None:
        embeddings = category_embeddings(n_categories, per_category, dim, spread, rng)
    matrix, category = embeddings
    ids = np.stack(
        [neuron_tokens(category, k, n_mixed, planted_top, rng) for _ in range(n_neurons)]
    )
    return _shard_from_ids(ids, matrix, category, rng)


def shell_embeddings(dim: int = 32, shell_axes: int = 4, per_category: int = 40,
                     offset: float = 0.8, spread: float = 0.15,
                     rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A category that no linear read-out can put on top: category 0 sits at direction e_0,
    categories 1..2*shell_axes at e_0 +- offset * e_j around it (j = 1..shell_axes).

    Any direction u scores some shell category at least as high as category 0 (the shell is
    symmetric around it, and shell vectors are longer), yet by cosine category 0 is a tight,
    separate category. Returns (V, dim) float32 vectors and each token's category.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    base = np.zeros(dim)
    base[0] = 1.0
    centres = [base]
    for j in range(1, shell_axes + 1):
        for sign in (1.0, -1.0):
            centre = base.copy()
            centre[j] = sign * offset
            centres.append(centre)
    centres = np.asarray(centres)
    category = np.repeat(np.arange(len(centres)), per_category)
    noise = rng.standard_normal((category.size, dim)) * spread / np.sqrt(dim)
    return (centres[category] + noise).astype(np.float32), category


def shell_shard(n_neurons: int, embeddings: tuple[np.ndarray, np.ndarray], top: int = 20,
                seed: int = 0) -> dict:
    """Neurons whose top `top` core tokens are category 0 of `shell_embeddings` and whose other
    core tokens are drawn evenly from the shell categories, in random order: a categorical
    top segment that is not a linear read-out of the embedding space."""
    rng = np.random.default_rng(seed)
    matrix, category = embeddings
    n_shell = int(category.max())
    rest_each = (100 - top) // n_shell
    rows = []
    for _ in range(n_neurons):
        ids = [rng.choice(np.flatnonzero(category == 0), size=top, replace=False)]
        rest = np.concatenate([rng.choice(np.flatnonzero(category == c), size=rest_each,
                                          replace=False) for c in range(1, n_shell + 1)])
        rows.append(np.concatenate([*ids, rng.permutation(rest)]))
    return _shard_from_ids(np.stack(rows), matrix, category, rng)


def readout_shard(n_neurons: int, embeddings: tuple[np.ndarray, np.ndarray], k: int = 100,
                  seed: int = 0) -> dict:
    """Neurons that are exactly linear read-outs of the embeddings along random directions:
    their core tokens are the top k types by projection, their activations the projections."""
    from .controls import random_direction_neurons

    matrix, category = embeddings
    ids, scores = random_direction_neurons(matrix, np.arange(matrix.shape[0]), k,
                                           [[seed, 99, i] for i in range(n_neurons)])
    shard = _shard_from_ids(ids, matrix, category, np.random.default_rng(seed))
    shard["mean_act"] = scores
    return shard


def _shard_from_ids(ids: np.ndarray, matrix: np.ndarray, category: np.ndarray,
                    rng: np.random.Generator) -> dict:
    n, k = ids.shape
    mean = -np.sort(-rng.random((n, k)), axis=1)
    return {
        "neurons": np.arange(n, dtype=np.int32),
        "token_ids": ids.astype(np.int32),
        "tokens": [[f"tok{t}" for t in row] for row in ids],
        "mean_act": mean,
        "max_act": (mean * 2.0).astype(np.float32),
        "counts": rng.integers(20, 500, size=(n, k)).astype(np.int64),
        "embeddings": matrix,
        "category": category,
    }
