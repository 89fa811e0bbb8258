"""Every clustering method finds planted sub-categories, and runs through the whole analysis."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from intraneuron.analysis import analyze_shard, resolve_params
from intraneuron.analysis.clustering import choose_clusters
from intraneuron.analysis.similarity import cosine_similarity_matrix
from intraneuron.analysis.synthetic import category_embeddings, synthetic_shard

METHODS = ["hierarchical", "spectral", "hdbscan"]


@pytest.mark.parametrize("method", METHODS)
def test_planted_sub_categories_are_found(method):
    """100 core tokens drawn from 4 tight categories: each method recovers them."""
    vocab, category = category_embeddings(12, 40, 48, 0.5, np.random.default_rng(7))
    rng = np.random.default_rng(8)
    ids = np.concatenate([rng.choice(np.flatnonzero(category == c), 25, replace=False)
                          for c in (1, 4, 6, 9)])
    sim = cosine_similarity_matrix(vocab, ids).astype(np.float64)
    labels, silhouette = choose_clusters(sim, resolve_params({"clustering": method}))
    assert adjusted_rand_score(category[ids], labels) > 0.95, method
    assert silhouette > 0.3


@pytest.mark.parametrize("method", ["spectral", "hdbscan"])
def test_other_methods_run_through_the_analysis(method):
    shard = synthetic_shard(4, planted_top=25, seed=2)
    shard.pop("category")
    params = {"clustering": method, "permutations": 50}
    neurons = analyze_shard(0, params=params, **shard)["neurons"]
    real = neurons[neurons["kind"] == "neuron"]
    assert (real["n_clusters"] >= 2).all() and (real["ami_coarse_p"] < 0.1).all()


def structure_p(ids_per_neuron, vocab, **params):
    n, k = ids_per_neuron.shape
    mean = -np.sort(-np.random.default_rng(0).random((n, k)), axis=1)
    tables = analyze_shard(
        0, neurons=np.arange(n), token_ids=ids_per_neuron, tokens=[["t"] * k] * n,
        mean_act=mean, max_act=mean, counts=np.ones((n, k), dtype=np.int64), embeddings=vocab,
        params={"permutations": 20, "controls": [],
                "structure_null_sets": 200, **params})  # fmt: skip
    return tables["neurons"]["cluster_structure_p"].to_numpy()


def test_core_tokens_without_structure_show_none():
    """Core sets drawn at random from the vocabulary: 'cluster structure' at rate alpha."""
    from scipy import stats

    vocab, _ = category_embeddings(30, 40, 48, 0.6, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    ids = np.stack([rng.choice(vocab.shape[0], 60, replace=False) for _ in range(300)])
    p = structure_p(ids, vocab)
    assert np.sum(p < 0.05) <= stats.binom.ppf(0.999, p.size, 0.05)
    assert np.sum(p < 0.05) >= stats.binom.ppf(0.001, p.size, 0.05)


def test_planted_sub_categories_have_structure():
    vocab, category = category_embeddings(30, 40, 48, 0.6, np.random.default_rng(3))
    rng = np.random.default_rng(5)
    ids = np.stack([np.concatenate([rng.choice(np.flatnonzero(category == c), 15, replace=False)
                                    for c in rng.choice(30, 4, replace=False)])
                    for _ in range(20)])
    assert (structure_p(ids, vocab) < 0.01).all()
