"""The geometry null (Moran spectral randomization of a neuron's order over its core tokens):
its defining properties, and that it keeps what a smooth map has and breaks what a category
adds.

BrainSpace's MoranRandomization, the reference implementation, imports VTK at import time, so
these tests check the properties MSR is defined by (Wagner & Dray 2015) instead: surrogates lie
in the span of the Moran eigenvector maps, keep every coefficient up to sign, hence the map's
Moran's I, its mean and its norm, exactly."""

import numpy as np
import pytest

from intraneuron.analysis.geometry import (
    geometry_orders,
    moran_eigenvectors,
    moran_weights,
    msr_maps,
    normal_scores,
)
from intraneuron.analysis.similarity import cosine_similarity_matrix
from intraneuron.analysis.synthetic import category_embeddings


def morans_i(y: np.ndarray, sim: np.ndarray) -> float:
    """Moran's I of the map `y` over weights max(S, 0) with a zero diagonal (the definition)."""
    w = np.maximum(np.asarray(sim, dtype=np.float64), 0.0)
    w = (w + w.T) / 2.0
    np.fill_diagonal(w, 0.0)
    z = np.asarray(y, dtype=np.float64) - np.mean(y)
    return float(y.size / w.sum() * (z @ w @ z) / (z @ z))


@pytest.fixture(scope="module")
def tokens():
    vectors, category = category_embeddings(5, 20, 32, 0.8, np.random.default_rng(0))
    sim = cosine_similarity_matrix(vectors, np.arange(100)).astype(np.float64)
    return vectors, category, sim


def test_moran_eigenvectors_are_orthonormal_and_drop_the_constant(tokens):
    _, _, sim = tokens
    vectors = moran_eigenvectors(sim)
    assert vectors.shape[0] == 100 and vectors.shape[1] <= 99
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(vectors.shape[1]), atol=1e-8)
    np.testing.assert_allclose(vectors.T @ np.ones(100), 0.0, atol=1e-8)
    values = np.diag(vectors.T @ moran_weights(sim) @ vectors)
    assert np.all(np.diff(values) <= 1e-10)  # smoothest first


def test_msr_keeps_morans_i_mean_and_norm_exactly(tokens):
    vectors_, category, sim = tokens
    rng = np.random.default_rng(1)
    y = category * 1.0 + rng.standard_normal(100)  # a smooth map, plus noise
    maps = msr_maps(y, moran_eigenvectors(sim), 50, rng)
    assert maps.shape == (50, 100)
    observed = morans_i(y, sim)
    for m in maps:
        assert morans_i(m, sim) == pytest.approx(observed, rel=1e-9)
        assert m.mean() == pytest.approx(y.mean(), abs=1e-9)
        assert np.linalg.norm(m - m.mean()) == pytest.approx(np.linalg.norm(y - y.mean()))
    assert len({tuple(np.round(m, 6)) for m in maps}) == 50  # 50 different surrogates
    # a map with no autocorrelation keeps none, a smooth one keeps its large I
    assert observed > 0.3 > 10 * abs(morans_i(rng.standard_normal(100), sim))


def test_geometry_orders_are_permutations_seeded_and_smooth_like_the_observed_one(tokens):
    _, category, sim = tokens
    order = np.argsort(-(category + 0.3 * np.random.default_rng(2).standard_normal(100)))
    rows = geometry_orders(sim, order, 200, np.random.default_rng(3))
    assert rows.shape == (200, 100)
    assert (np.sort(rows, axis=1) == np.arange(100)).all()
    again = geometry_orders(sim, order, 200, np.random.default_rng(3))
    np.testing.assert_array_equal(rows, again)
    scores = normal_scores(100)

    def moran_of(o):
        y = np.empty(100)
        y[o] = scores
        return morans_i(y, sim)

    observed = moran_of(order)
    surrogate = np.array([moran_of(r) for r in rows])
    shuffled = np.array([moran_of(np.random.default_rng(s).permutation(100))
                         for s in range(200)])  # fmt: skip
    # surrogate orders stay about as smooth as the observed order; shuffled ones are not
    assert np.median(surrogate) > 0.6 * observed
    assert np.median(np.abs(shuffled)) < 0.1 * observed
