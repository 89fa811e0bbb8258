"""analysis.min_cluster_size: the silhouette rule may not choose a cut that splits off slivers.

Planted: two categories of 48 tokens each, plus 4 outliers, each far from everything and from
one another. At min_cluster_size = 1 (today's default, bb25b9d's only behaviour) the rule keeps
a cluster of fewer than 5 tokens (every dendrogram cut has the outliers on their own); with a
minimum of 5 it chooses the two categories, the outliers joining one of them.
"""

import numpy as np
import pytest

from intraneuron.analysis import resolve_params
from intraneuron.analysis.clustering import absorb_small, best_cut, choose_clusters
from intraneuron.analysis.similarity import cosine_similarity_matrix


def planted_vectors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of 2 x 48 category tokens and 4 outliers; each one's group (outliers: 2..5)."""
    dim = 64
    axes = np.eye(dim)
    groups = np.r_[np.zeros(48, int), np.ones(48, int), np.arange(2, 6)]
    vectors = axes[groups] + 0.25 * rng.standard_normal((groups.size, dim)) / np.sqrt(dim)
    return vectors.astype(np.float32), groups


@pytest.mark.parametrize("method", ["hierarchical", "spectral"])
def test_slivers_win_without_a_minimum_and_lose_with_one(method):
    vectors, groups = planted_vectors(np.random.default_rng(0))
    sim = cosine_similarity_matrix(vectors, np.arange(groups.size)).astype(np.float64)
    free, _ = choose_clusters(sim, resolve_params({"clustering": method, "max_clusters": 8}))
    assert np.bincount(free).min() < 5  # the old rule: outliers are clusters of their own
    params = resolve_params({"clustering": method, "max_clusters": 8, "min_cluster_size": 5})
    labels, _ = choose_clusters(sim, params)
    assert np.bincount(labels).min() >= 5 and labels.max() + 1 == 2
    category = groups < 2
    assert all(np.unique(labels[category & (groups == g)]).size == 1 for g in (0, 1))
    assert labels[groups == 0][0] != labels[groups == 1][0]


def test_without_a_sizable_cut_the_plain_rule_decides():
    dist = 1.0 - np.eye(6)
    cuts = {2: np.array([0, 0, 0, 0, 0, 1]), 3: np.array([0, 0, 1, 1, 2, 2])}
    plain, score = best_cut(dist, cuts, 2, 3, min_size=1)
    labels, _ = best_cut(dist, cuts, 2, 3, min_size=4)  # no cut has 2 clusters of 4
    assert np.array_equal(labels, plain)


def test_small_clusters_join_the_nearest_sizable_one():
    dist = np.array([[0, 0.1, 0.9, 0.2], [0.1, 0, 0.9, 0.3], [0.9, 0.9, 0, 0.8],
                     [0.2, 0.3, 0.8, 0]])
    assert np.array_equal(absorb_small(np.array([0, 0, 1, 2]), dist, 2), [0, 0, 0, 0])
    assert absorb_small(np.array([0, 1, 2, 3]), dist, 2) is None


def test_the_default_keeps_todays_choice():
    rng = np.random.default_rng(1)
    sim = cosine_similarity_matrix(rng.standard_normal((60, 16)).astype(np.float32),
                                   np.arange(60)).astype(np.float64)
    default, _ = choose_clusters(sim, resolve_params(None))
    explicit, _ = choose_clusters(sim, resolve_params({"min_cluster_size": 1}))
    assert np.array_equal(default, explicit)
    with pytest.raises(ValueError, match="min_cluster_size"):
        resolve_params({"min_cluster_size": 0})
