"""The geometry null: surrogate activation maps over a neuron's own core tokens that keep the
map's autocorrelation in the proxy space and destroy everything else.

A map that varies smoothly with the embedding makes its top segment homogeneous in that
embedding whatever it encodes, so "beyond geometry" must be judged against maps that are just as
smooth. Moran spectral randomization (MSR; Wagner & Dray 2015, the null brain mapping uses for
spatially autocorrelated maps) does that: the doubly centred weight matrix W of the tokens
(positive cosine similarity, zero diagonal) has eigenvectors (Moran eigenvector maps) ordered
from the smoothest to the roughest pattern over the tokens; a map's coefficients on them say how
much of each pattern it holds. Flipping the sign of every coefficient at random ("singleton"
procedure) keeps each pattern's share, hence Moran's I and the whole spatial spectrum, exactly,
while the map itself is scrambled.

Every statistic of the analysis depends on the activation *order* only, so the map randomized is
the order itself as normal scores (rank i of k -> the standard normal quantile of 1 - (i + 1/2)/k)
rather than the raw, right-skewed activations of a selected top tail; a surrogate's order is the
descending order of its values. The surrogate orders are extra rows of the neuron's permutation
batch, so every statistic and every criterion gets a geometry p-value from the same arithmetic.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

EIGEN_TOL = 1e-8  # eigenvalues below this share of the largest |eigenvalue| count as zero


def normal_scores(k: int) -> np.ndarray:
    """The map of a descending order of k tokens: rank i -> Phi^-1(1 - (i + 1/2) / k)."""
    return stats.norm.isf((np.arange(k) + 0.5) / k)


def moran_weights(sim: np.ndarray) -> np.ndarray:
    """Symmetric weights max(S, 0) with a zero diagonal, doubly centred."""
    w = np.maximum(np.asarray(sim, dtype=np.float64), 0.0)
    w = (w + w.T) / 2.0
    np.fill_diagonal(w, 0.0)
    return w - w.mean(axis=0)[None, :] - w.mean(axis=1)[:, None] + w.mean()


def moran_eigenvectors(sim: np.ndarray) -> np.ndarray:
    """Moran eigenvector maps (k, m) of the doubly centred weights, zero eigenvalues dropped
    (the constant map among them), smoothest (largest eigenvalue) first."""
    values, vectors = np.linalg.eigh(moran_weights(sim))
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    keep = np.abs(values) > EIGEN_TOL * scale if scale > 0 else np.zeros(values.size, bool)
    order = np.argsort(-values[keep], kind="stable")
    return vectors[:, keep][:, order]


def msr_maps(y: np.ndarray, vectors: np.ndarray, n: int,
             rng: np.random.Generator) -> np.ndarray:
    """(n, k) Moran spectral randomizations of the map `y` (singleton: random coefficient
    signs). Each keeps y's mean and its coefficient on every eigenvector up to sign, so its
    Moran's I equals y's; the part of y outside the eigenvectors' span (the constant) is kept."""
    y = np.asarray(y, dtype=np.float64)
    coef = vectors.T @ y
    rest = y - vectors @ coef
    signs = rng.integers(0, 2, size=(n, coef.size)) * 2.0 - 1.0
    return (signs * coef) @ vectors.T + rest


def geometry_orders(sim: np.ndarray, order: np.ndarray, n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n, k) surrogate orders of a token set: `order[position]` is the token index at each
    rank of the observed order (descending); row r of the result is the same for surrogate r.

    The observed order's normal scores are randomized by MSR over the tokens' similarity `sim`
    (token-index space), and each surrogate is read back as the descending order of its values
    (exact ties, which continuous maps make improbable, are broken deterministically; a
    stable sort cost three times as much).
    """
    k = sim.shape[0]
    y = np.empty(k)
    y[np.asarray(order)] = normal_scores(k)  # token index -> its score
    maps = msr_maps(y, moran_eigenvectors(sim), n, rng)
    return np.argsort(-maps, axis=1)
