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
    mean = -np.sort(-rng.random((n_neurons, k)), axis=1).astype(np.float32)
    return {
        "neurons": np.arange(n_neurons, dtype=np.int32),
        "token_ids": ids.astype(np.int32),
        "tokens": [[f"tok{t}" for t in row] for row in ids],
        "mean_act": mean,
        "max_act": (mean * 2.0).astype(np.float32),
        "counts": rng.integers(20, 500, size=(n_neurons, k)).astype(np.int64),
        "embeddings": matrix,
        "category": category,
    }
