"""Pseudo-neurons over a real vocabulary and proxy, for the planted benchmark that picks and
checks the geometry null (`benchmarks/bench_geometry_null.py`, table in docs/geometry-null.md).

Every pseudo-neuron assigns a mean activation to every eligible token type and, like a real
neuron, takes its k highest as core tokens, so selection shapes it as it shapes neurons.

Null kinds (no category beyond geometry; the beyond-geometry level must hold them at alpha):
- noise: i.i.d. normal activations.
- noise_of_means: noise / sqrt(count), as a mean over count occurrences is: selects rare types.
- linear: a random linear read-out of the proxy embeddings.
- gelu_noise: GELU of a random read-out plus noise of means, a neuron-like smooth map.
Planted kinds (the top segment is a category; the test must find it), each at a strength
0 < s <= 1:
- category_top: a round(s * top) share of the top `top` ranks taken by one category's types
  (categories from `categories`, e.g. WordNet supersenses), the rest the base map's own.
- cluster_step: the same for a proxy neighbourhood (a random type and its nearest neighbours),
  a category the proxy itself draws.
- graded_category: every type of one category raised by s * 3 sd of the base map: a graded
  effect that moves the category up without placing it exactly.
The base map of the planted kinds is gelu_noise, so a planted neuron is a smooth neuron with
a category added.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NULL_KINDS = ("noise", "noise_of_means", "linear", "gelu_noise")
PLANTED_KINDS = ("category_top", "cluster_step", "graded_category")
STRENGTHS = (1 / 3, 2 / 3, 1.0)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


class Vocabulary:
    """The eligible token types of a model: their proxy vectors, corpus counts and (optional)
    category labels (-1 = none)."""

    def __init__(self, embeddings: np.ndarray, eligible: np.ndarray, counts: np.ndarray,
                 categories: np.ndarray | None = None):
        self.eligible = np.asarray(eligible, dtype=np.int64)
        self.vectors = np.asarray(embeddings, dtype=np.float64)[self.eligible]
        self.counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
        self.categories = (np.full(self.eligible.size, -1) if categories is None
                           else np.asarray(categories))  # fmt: skip
        norms = np.linalg.norm(self.vectors, axis=1)
        self.unit = self.vectors / np.where(norms > 0, norms, 1.0)[:, None]

    def readout(self, rng: np.random.Generator) -> np.ndarray:
        return _unit(self.vectors @ rng.standard_normal(self.vectors.shape[1]))

    def noise_of_means(self, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(self.eligible.size) * np.sqrt(np.median(self.counts)
                                                                 / self.counts)

    def base(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        """Activations of a null kind over the eligible types."""
        if kind == "noise":
            return rng.standard_normal(self.eligible.size)
        if kind == "noise_of_means":
            return self.noise_of_means(rng)
        if kind == "linear":
            return self.readout(rng)
        if kind == "gelu_noise":
            return _gelu(2.0 * self.readout(rng)) + 0.3 * self.noise_of_means(rng)
        raise ValueError(f"unknown null kind {kind!r}; choose from {NULL_KINDS}")

    def category_members(self, rng: np.random.Generator, at_least: int) -> np.ndarray:
        """Positions (in `eligible`) of a random category with at least `at_least` types."""
        labels, sizes = np.unique(self.categories[self.categories >= 0], return_counts=True)
        big = labels[sizes >= at_least]
        if big.size == 0:
            raise ValueError(f"no category has {at_least} eligible types")
        return np.flatnonzero(self.categories == rng.choice(big))

    def neighbourhood(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A random type and its size - 1 nearest neighbours by proxy cosine."""
        seed = int(rng.integers(self.eligible.size))
        return np.argsort(-(self.unit @ self.unit[seed]), kind="stable")[:size]


def planted_activations(vocab: Vocabulary, kind: str, strength: float, k: int, top: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Activations over the eligible types of one planted pseudo-neuron, and the positions of
    the planted category's types (those placed on top first)."""
    act = vocab.base("gelu_noise", rng)
    if kind == "graded_category":
        members = vocab.category_members(rng, top)
        act[members] += strength * 3.0 * act.std()
        return act, members
    if kind == "category_top":
        members = rng.permutation(vocab.category_members(rng, top))
    elif kind == "cluster_step":
        members = vocab.neighbourhood(rng, top)
    else:
        raise ValueError(f"unknown planted kind {kind!r}; choose from {PLANTED_KINDS}")
    n_top = int(round(strength * top))
    ceiling = np.sort(act)[-1] + act.std()
    act[members] = np.minimum(act[members], np.sort(act)[-k])  # members leave the top
    act[members[:n_top]] = ceiling + rng.random(n_top) * act.std()
    return act, members


def pseudo_shard(vocab: Vocabulary, kind: str, n: int, k: int, seed: int | list[int],
                 strength: float = 1.0, top: int = 25) -> dict:
    """Keyword arguments of `analyze_shard` (minus layer and params): n pseudo-neurons of one
    kind, each its k highest types, highest first."""
    rng = np.random.default_rng(seed)
    ids, means = [], []
    for _ in range(n):
        act = (vocab.base(kind, rng) if kind in NULL_KINDS
               else planted_activations(vocab, kind, strength, k, top, rng)[0])  # fmt: skip
        core = np.argsort(-act, kind="stable")[:k]
        ids.append(vocab.eligible[core])
        means.append(act[core])
    mean = np.asarray(means)
    return {"neurons": np.arange(n, dtype=np.int32), "token_ids": np.asarray(ids),
            "tokens": [[f"#{t}" for t in row] for row in ids], "mean_act": mean,
            "max_act": mean.astype(np.float32), "counts": np.ones_like(mean, dtype=np.int64),
            "eligible": vocab.eligible}  # fmt: skip


POWER_KIND = "cluster_step"  # the proxy's own category: the easiest planted case to find


def power_table(vocab: Vocabulary, embeddings: np.ndarray, params: dict, k: int) -> pd.DataFrame:
    """Per criterion: the share of `analysis.power_blocks` blocks of `power_block_size`
    pseudo-neurons with k core tokens and a proxy neighbourhood planted on top (strength 1) in
    which it holds beyond geometry, each block judged like a layer with one linear read-out per
    pseudo-neuron; and the same share for blocks of linear read-outs (which must stay near 0).
    A criterion that cannot find even this category beyond geometry is not identifiable with
    this proxy (`claims`)."""
    from .claims import evaluate_criteria
    from .shard import analyze_shard

    settings = {**params, "random_direction_every": 1}
    blocks, size = int(params["power_blocks"]), int(params["power_block_size"])
    rows = []
    for kind in (POWER_KIND, "linear"):
        frames = []
        for block in range(blocks):
            shard = pseudo_shard(vocab, kind, size, k,
                                 seed=[int(params["seed"]), len(kind), block])  # fmt: skip
            eligible = shard.pop("eligible")
            frames.append(analyze_shard(block, params=settings, embeddings=embeddings,
                                        eligible=eligible,
                                        eligible_tokens=[f"#{t}" for t in eligible],
                                        **shard)["neurons"])  # fmt: skip
        criteria = evaluate_criteria(pd.concat(frames), settings)
        tests = criteria[criteria["role"] == "test"]
        rows.append(tests.groupby("criterion", sort=False)["beyond_geometry"].mean()
                    .rename("planted" if kind == POWER_KIND else "smooth"))
    table = pd.concat(rows, axis=1).reset_index()
    return table.assign(n_blocks=blocks, block_size=size)
