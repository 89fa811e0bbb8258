"""Controls that run through the same analysis as real neurons, as rows of another `kind`.

- shuffled: the neuron's core tokens in a random order (its activation values kept in place).
  Pure noise: every per-neuron criterion must pass on these at its realised null rate (the
  calibration check).
- surrogate: the neuron's core tokens ranked by a linear read-out of their proxy embeddings,
  fitted to the neuron's own activations and predicted leave-one-out. Descriptive only: fitted
  to the neuron, it is the smoothest version of it, a ceiling rather than a null.
- random_direction: the top-k eligible token types along a random direction of the proxy
  embedding space (a pseudo-neuron with no learned categories at all), with their projections
  as activations: linear read-outs put through the geometry test, which beyond-geometry
  verdicts must beat.

Ties in activation are broken by a seeded random order, never by token id: an order decided
by token ids is vocabulary order, which carries its own categorical structure (punctuation,
digits, sub-words).
"""

from __future__ import annotations

import numpy as np

# Ridge penalties tried, relative to the mean eigenvalue of the centred Gram matrix.
RIDGE_GRID = 10.0 ** np.arange(-3.0, 4.0)


def descending_order(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices that sort `values` (float64) from highest to lowest, ties in random order."""
    values = np.asarray(values, dtype=np.float64)
    return np.lexsort((rng.random(values.size), -values))


def tied_share(values: np.ndarray, boundary_ties: int = 0) -> float:
    """Share of the core tokens whose mean activation equals another candidate's.

    A candidate is another core token or, for the last value, an eligible type left outside the
    core set (`boundary_ties` of them): either way the ranking there is decided by the tie rule.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    tied = counts[inverse] > 1
    if boundary_ties > 0:
        tied |= values == values.min()
    return float(tied.mean())


def loo_ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Leave-one-out predictions of `y` from the rows of `x` by ridge regression with an
    unpenalised intercept, and their R^2.

    Kernel form (k tokens, any width): one eigendecomposition of the centred Gram matrix gives
    the hat matrix H = 11'/k + X_c (X_c'X_c + lambda I)^-1 X_c' for every penalty, and the
    exact leave-one-out residuals are (y - Hy) / (1 - H_ii). The penalty is the one of
    RIDGE_GRID (relative to the mean eigenvalue) with the smallest leave-one-out error.
    """
    y = np.asarray(y, dtype=np.float64)
    k = y.size
    xc = np.asarray(x, dtype=np.float32)  # the Gram in float32: the widest product here
    xc = xc - xc.mean(axis=0)
    yc = y - y.mean()
    eig, vec = np.linalg.eigh((xc @ xc.T).astype(np.float64))
    eig = np.maximum(eig, 0.0)
    scale = float(eig.mean()) if eig.mean() > 0 else 1.0
    shrink = eig[None, :] / (eig[None, :] + scale * RIDGE_GRID[:, None])  # (L, k)
    fitted = (shrink * (vec.T @ yc)[None, :]) @ vec.T
    leverage = np.minimum(1.0 / k + shrink @ (vec**2).T, 1.0 - 1e-12)
    residual = (yc[None, :] - fitted) / (1.0 - leverage)
    errors = np.sum(residual**2, axis=1)
    best = int(np.argmin(errors))
    total = float(yc @ yc)
    r2 = 1.0 - float(errors[best]) / total if total > 0 else float("nan")
    return y - residual[best], r2


def direction_seed(seed: int, layer: int, neuron: int) -> list[int]:
    """Generator seed of the random-direction pseudo-neuron paired with (layer, neuron)."""
    return [int(seed), int(layer), int(neuron), 1]


def random_direction_neurons(
    embeddings: np.ndarray, eligible: np.ndarray, k: int, seeds: list[list[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (n, k) and projections (n, k), highest first, of one pseudo-neuron per seed.

    Each direction is a standard normal vector from its own generator, so a pseudo-neuron does
    not depend on which others share its shard. One matrix product scores all of them.
    """
    eligible = np.asarray(eligible, dtype=np.int64)
    if not seeds:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k))
    dim = embeddings.shape[1]
    directions = np.stack([np.random.default_rng(s).standard_normal(dim) for s in seeds], axis=1)
    # float32 product over the whole vocabulary, then the eligible rows: indexing first would
    # copy a (V_e, dim) matrix per shard; the top k are rescored in float64 below
    scores = (np.asarray(embeddings) @ directions.astype(np.float32))[eligible]  # (V_e, n)
    top = np.argpartition(-scores, k - 1, axis=0)[:k].T  # (n, k), unordered
    ids = eligible[top]
    exact = np.einsum("nkd,dn->nk", np.asarray(embeddings[ids], dtype=np.float64), directions)
    order = np.argsort(-exact, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(exact, order, axis=1)
