"""Top-down view: hierarchical clustering of a neuron's core tokens into categorical clusters.

Clusters come from agglomerative clustering (scipy) on cosine distance 1 - S; `ward` runs on
the Euclidean distance between L2-normalised vectors, sqrt(2 - 2 S), which is what Ward's
criterion requires. The dendrogram is cut into exactly m clusters by undoing its last m - 1
merges (robust to tied merge heights, unlike a height cut). The number of clusters is fixed,
chosen by the cosine silhouette, or read off a distance threshold. Cluster ids are then
renumbered by decreasing mean activation (cluster 0 = most activating), mirroring
"segment 0 = top", so ids are comparable across neurons.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage


def linkage_matrix(sim: np.ndarray, method: str) -> np.ndarray:
    """scipy linkage matrix Z for the tokens whose similarity matrix is `sim`."""
    k = sim.shape[0]
    s = np.asarray(sim, dtype=np.float64)
    iu = np.triu_indices(k, 1)
    if method == "ward":
        dist = np.sqrt(np.maximum(2.0 - 2.0 * s[iu], 0.0))
    else:
        dist = np.maximum(1.0 - s[iu], 0.0)
    return linkage(dist, method=method)


def cut_labels(z: np.ndarray, n_clusters: int, order: np.ndarray | None = None) -> np.ndarray:
    """Flat labels with exactly `n_clusters` clusters: undo the last n_clusters - 1 merges.

    Every dendrogram node covers a contiguous run of `leaves_list(z)`; walking down from the
    root through the undone merges gives each kept node's start in that order, and the starts
    of the kept nodes are the cluster boundaries. Pass `order` = leaves_list(z) when cutting
    the same tree several times.
    """
    n = z.shape[0] + 1
    m = int(min(max(n_clusters, 1), n))
    if m == 1:
        return np.zeros(n, dtype=np.int64)
    order = leaves_list(z) if order is None else order
    children = z[:, :2].astype(np.int64)
    size = np.concatenate([np.ones(n, dtype=np.int64), z[:, 3].astype(np.int64)])
    start = {2 * n - 2: 0}
    undone = range(n - 2, n - m - 1, -1)  # merge rows whose node is split again
    for t in undone:
        s = start[n + t]
        left, right = int(children[t, 0]), int(children[t, 1])
        start[left] = s
        start[right] = s + int(size[left])
    split_nodes = {n + t for t in undone}
    boundaries = np.sort([s for node, s in start.items() if node not in split_nodes])
    in_order = np.searchsorted(boundaries, np.arange(n), side="right") - 1
    labels = np.empty(n, dtype=np.int64)
    labels[order] = in_order
    return labels


def silhouettes(dist: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """Mean silhouette (precomputed distance) of each candidate labelling, all in one product.

    Matches sklearn.metrics.silhouette_score: s(i) = (b - a) / max(a, b) with a the mean distance
    to the other members of i's cluster, b the smallest mean distance to another cluster, and
    s(i) = 0 for members of singleton clusters.
    """
    k = dist.shape[0]
    sizes = [int(lab.max()) + 1 for lab in candidates]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    onehot = np.zeros((k, offsets[-1]))
    for lab, off in zip(candidates, offsets[:-1], strict=True):
        onehot[np.arange(k), off + lab] = 1.0
    sums = dist @ onehot
    out = np.empty(len(candidates))
    rows = np.arange(k)
    for c, (lab, off, g) in enumerate(zip(candidates, offsets[:-1], sizes, strict=True)):
        block = sums[:, off : off + g]
        count = onehot[:, off : off + g].sum(axis=0)
        own = count[lab]
        a = np.where(own > 1, block[rows, lab] / np.maximum(own - 1, 1), 0.0)
        other = block / count[None, :]
        other[rows, lab] = np.inf
        b = other.min(axis=1)
        denom = np.maximum(a, b)
        s = np.where((own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
        out[c] = s.mean()
    return out


def choose_clusters(sim: np.ndarray, params: dict) -> tuple[np.ndarray, float]:
    """Cluster labels (not yet renumbered) and the cosine silhouette of the chosen labelling."""
    k = sim.shape[0]
    z = linkage_matrix(sim, params["linkage"])
    dist = np.maximum(1.0 - np.asarray(sim, dtype=np.float64), 0.0)
    np.fill_diagonal(dist, 0.0)
    lo = min(int(params["min_clusters"]), k - 1)
    hi = max(min(int(params["max_clusters"]), k - 1), lo)
    if params["n_clusters"] != "auto":
        m = min(int(params["n_clusters"]), k - 1)
        labels = cut_labels(z, m)
        return labels, float(silhouettes(dist, [labels])[0])
    if params["cluster_selection"] == "distance_threshold":
        merged = int(np.count_nonzero(z[:, 2] <= float(params["distance_threshold"])))
        m = int(np.clip(k - merged, lo, hi))
        labels = cut_labels(z, m)
        return labels, float(silhouettes(dist, [labels])[0])
    order = leaves_list(z)
    candidates = [cut_labels(z, m, order) for m in range(lo, hi + 1)]
    scores = silhouettes(dist, candidates)
    best = int(np.argmax(scores))  # first maximum: the fewest clusters among ties
    return candidates[best], float(scores[best])


def renumber_by_activation(labels: np.ndarray, activation: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..c-1 by decreasing mean activation (ties: best-ranked member first)."""
    c = int(labels.max()) + 1
    size = np.bincount(labels, minlength=c)
    mean = np.bincount(labels, weights=activation, minlength=c) / size
    first = np.full(c, labels.size)
    np.minimum.at(first, labels, np.arange(labels.size))
    order = np.lexsort((first, -mean))
    new = np.empty(c, dtype=np.int64)
    new[order] = np.arange(c)
    return new[labels]


def centrality(sim: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Each token's mean similarity to the other members of its cluster (NaN for singletons)."""
    k = labels.size
    s0 = np.asarray(sim, dtype=np.float64).copy()
    np.fill_diagonal(s0, 0.0)
    onehot = np.zeros((k, n_clusters))
    onehot[np.arange(k), labels] = 1.0
    own = (s0 @ onehot)[np.arange(k), labels]
    size = onehot.sum(axis=0)[labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 1, own / (size - 1), np.nan)


def cluster_names(
    tokens: list[str], labels: np.ndarray, central: np.ndarray, n_clusters: int, n_tokens: int
) -> list[str]:
    """Name each cluster by its `n_tokens` most central tokens (ties: higher activation first).

    Surrounding whitespace is stripped for readability; a token that is only whitespace is
    shown by its repr so names never contain invisible items.
    """
    score = np.where(np.isnan(central), -np.inf, central)
    order = np.lexsort((np.arange(labels.size), -score))
    picked: list[list[str]] = [[] for _ in range(n_clusters)]
    for i in order:
        bucket = picked[labels[i]]
        if len(bucket) < n_tokens:
            text = tokens[i].strip()
            bucket.append(text if text else repr(tokens[i]))
    return [" · ".join(names) for names in picked]
