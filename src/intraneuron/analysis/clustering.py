"""Top-down view: clustering a neuron's core tokens into categorical clusters.

`analysis.clustering` chooses the method. hierarchical (default): agglomerative clustering
(scipy) on cosine distance 1 - S; `ward` runs on the Euclidean distance between L2-normalised
vectors, sqrt(2 - 2 S), which is what Ward's criterion requires. spectral: scikit-learn's
spectral clustering on the affinity (1 + S) / 2, the number of clusters chosen by the same rule
(fixed or best silhouette). hdbscan: scikit-learn's HDBSCAN on cosine distance with
`hdbscan_min_cluster_size`; it chooses the number of clusters itself, and tokens it leaves
unclustered form one more group of their own (so every token has a cluster).
For hierarchical clustering, the dendrogram is cut into exactly m clusters by undoing its last m - 1
merges (robust to tied merge heights, unlike a height cut). The number of clusters is fixed,
chosen by the cosine silhouette (counting only clusters of at least `min_cluster_size` tokens,
see `best_cut`), or read off a distance threshold. Cluster ids are then
renumbered by decreasing mean activation (cluster 0 = most activating), mirroring
"segment 0 = top", so ids are comparable across neurons.

Order invariance: the core tokens arrive ranked by activation, and a clustering whose ties are
broken by input position would carry that ranking into the clusters (a WordNet proxy's cosines
are all 0 or 1, so nearly every merge is a tie). `choose_clusters` therefore clusters the tokens
in a canonical order that does not depend on activation (`canonical_order`) and maps the labels
back: the same tokens in any order give the same partition.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.cluster.hierarchy import linkage

from .arrays import upper_pairs


def linkage_matrix(sim: np.ndarray, method: str) -> np.ndarray:
    """scipy linkage matrix Z for the tokens whose similarity matrix is `sim`."""
    k = sim.shape[0]
    s = np.asarray(sim, dtype=np.float64)
    iu = upper_pairs(k)
    if method == "ward":
        dist = np.sqrt(np.maximum(2.0 - 2.0 * s[iu], 0.0))
    else:
        dist = np.maximum(1.0 - s[iu], 0.0)
    return linkage(dist, method=method)


def cut_all(z: np.ndarray, counts: list[int]) -> dict[int, np.ndarray]:
    """Flat labels with exactly m clusters for every m in `counts`: undo the last m - 1 merges.

    Every dendrogram node covers a contiguous run of leaves in dendrogram order (left child
    first). One walk down from the root gives each node's start in that order; the m clusters
    are the nodes left when the last m - 1 merges are undone, and their starts are the cluster
    boundaries. Robust to tied merge heights, unlike a height cut.
    """
    n = z.shape[0] + 1
    children = z[:, :2].astype(np.int64).tolist()
    size = [1] * n + z[:, 3].astype(np.int64).tolist()
    start = [0] * (2 * n - 1)
    for t in range(n - 2, -1, -1):  # parents before children
        left, right = children[t]
        start[left] = start[n + t]
        start[right] = start[n + t] + size[left]
    leaf_position = np.asarray(start[:n])
    out: dict[int, np.ndarray] = {}
    kept = {2 * n - 2}
    wanted = sorted({int(min(max(m, 1), n)) for m in counts})
    m = 1
    for target in wanted:
        while m < target:  # undo merge n - 1 - m: its node gives way to its two children
            t = n - 1 - m
            kept.discard(n + t)
            kept.update(children[t])
            m += 1
        boundaries = np.sort([start[node] for node in kept])
        out[target] = np.searchsorted(boundaries, leaf_position, side="right") - 1
    return {m: out[int(min(max(m, 1), n))] for m in counts}


def cut_labels(z: np.ndarray, n_clusters: int) -> np.ndarray:
    """Flat labels with exactly `n_clusters` clusters (see `cut_all`)."""
    return cut_all(z, [n_clusters])[n_clusters]


def silhouettes(dist: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """Mean silhouette (precomputed distance) of each candidate labelling, all in one product.

    Matches sklearn.metrics.silhouette_score: s(i) = (b - a) / max(a, b) with a the mean distance
    to the other members of i's cluster, b the smallest mean distance to another cluster, and
    s(i) = 0 for members of singleton clusters. Candidates are padded to the largest number of
    clusters (padding = +inf mean distance) so that all are scored at once.
    """
    k = dist.shape[0]
    n_cand = len(candidates)
    labels = np.stack(candidates)  # (n_cand, k)
    width = int(labels.max()) + 1
    column = labels + width * np.arange(n_cand)[:, None]
    onehot = np.zeros((k, n_cand * width))
    onehot[np.arange(k)[None, :], column] = 1.0
    sums = (dist @ onehot).reshape(k, n_cand, width).transpose(1, 0, 2)  # (cand, token, cluster)
    count = onehot.sum(axis=0).reshape(n_cand, width)
    own = np.take_along_axis(count, labels, axis=1)  # (cand, token)
    own_sum = np.take_along_axis(sums, labels[:, :, None], axis=2)[:, :, 0]
    a = np.where(own > 1, own_sum / np.maximum(own - 1, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / count[:, None, :]
    mean[count[:, None, :].repeat(k, axis=1) == 0] = np.inf
    np.put_along_axis(mean, labels[:, :, None], np.inf, axis=2)
    b = mean.min(axis=2)
    denom = np.maximum(a, b)
    ok = (own > 1) & (denom > 0) & np.isfinite(b)
    s = np.where(ok, (b - a) / np.where(ok, denom, 1.0), 0.0)
    return s.mean(axis=1)


def choose_clusters(sim: np.ndarray, params: dict,
                    keys: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Cluster labels (not yet renumbered) and the cosine silhouette of the chosen labelling.

    The tokens are clustered in `canonical_order(sim, keys, seed)`, so the partition does not
    depend on the order of the input: pass the token ids as `keys` and it is exactly the same
    for any order; without keys it is for tokens whose similarity rows differ, and tokens that
    the similarity cannot tell apart are ordered by a draw that ignores their positions.
    """
    s = np.asarray(sim, dtype=np.float64)
    order = canonical_order(s, keys, int(params["seed"]))
    labels, score = _choose_in_order(s[np.ix_(order, order)], params)
    out = np.empty_like(labels)
    out[order] = labels
    return out, score


def canonical_order(sim: np.ndarray, keys: np.ndarray | None, seed: int) -> np.ndarray:
    """A token order that does not depend on the input's order (and so not on activation).

    With `keys` (token ids): ascending by a seeded hash of the key, which keeps the order
    unrelated to the id itself (BPE ids follow frequency, and frequency may follow
    activation). Without: by each row's sorted similarities (a description that permuting the
    input leaves unchanged); rows that are equal there (exact ties, e.g. tokens of one WordNet
    supersense) are ordered by random draws seeded by the seed and the sorted matrix, which
    also ignore the input's order.
    """
    k = sim.shape[0]
    if keys is not None:
        ids = np.asarray(keys).astype(np.uint64)
        if ids.shape != (k,) or np.unique(ids).size != k:
            raise ValueError(f"choose_clusters: keys must be {k} distinct token ids, one per "
                             "row of the similarity matrix")
        return np.lexsort((ids, mix64(ids, seed)))
    digest = hashlib.blake2b(np.sort(sim, axis=None).tobytes(), digest_size=8).digest()
    draw = np.random.default_rng([seed, int.from_bytes(digest, "little")]).random(k)
    signature = np.sort(sim, axis=1)
    return np.lexsort((draw, *signature.T[::-1]))


def mix64(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of `values` offset by `seed`: a fixed pseudo-random uint64 per value."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _choose_in_order(sim: np.ndarray, params: dict) -> tuple[np.ndarray, float]:
    """`choose_clusters` on a similarity matrix already in canonical order."""
    dist = np.maximum(1.0 - sim, 0.0)
    np.fill_diagonal(dist, 0.0)
    method = params["clustering"]
    if method == "hdbscan":
        labels = hdbscan_labels(dist, int(params["hdbscan_min_cluster_size"]))
        return labels, float(silhouettes(dist, [labels])[0])
    if method == "spectral":
        counts = _cluster_counts(sim.shape[0], params)
        cuts = dict(zip(counts, spectral_candidates(sim, counts, int(params["seed"])),
                        strict=True))  # fmt: skip
        return best_cut(dist, cuts, min(counts), max(counts), int(params["min_cluster_size"]))
    return _hierarchical(sim, dist, params)


def best_cut(dist: np.ndarray, cuts: dict[int, np.ndarray], lo: int, hi: int,
             min_size: int) -> tuple[np.ndarray, float]:
    """The silhouette rule over `cuts` (number of clusters -> labels): the labelling with the
    highest silhouette among those with lo..hi clusters (first maximum: the fewest clusters).

    With `min_size` > 1, a cluster of fewer tokens is not a cluster: its tokens join the
    sizable cluster they are closest to on average (`absorb_small`), and a cut counts by its
    sizable clusters. A far outlier is its own best cluster by the silhouette and the last
    token a dendrogram merges, so without this every cut of such a neuron has a one-token
    cluster; with it, the outliers ride along with a category. When no cut has lo..hi sizable
    clusters the rule falls back to the plain cuts, so every token set gets a clustering.
    """
    plain = [cuts[m] for m in sorted(cuts) if lo <= m <= hi]
    candidates = _sized(dist, cuts, lo, hi, min_size) if min_size > 1 else []
    candidates = candidates or plain
    scores = silhouettes(dist, candidates)
    best = int(np.argmax(scores))
    return candidates[best], float(scores[best])


def _sized(dist: np.ndarray, cuts: dict[int, np.ndarray], lo: int, hi: int,
           min_size: int) -> list[np.ndarray]:
    """Distinct labellings with lo..hi sizable clusters, small ones absorbed, fewest cuts first.

    Deeper cuts only fragment clusters, so the tokens in small clusters never decrease with m;
    the walk stops at the first cut where they are more than half the tokens (what is left is
    more absorbed than clustered)."""
    out, seen = [], set()
    for m in sorted(cuts):
        size = np.bincount(cuts[m])
        if 2 * size[size < min_size].sum() > size.sum():
            break
        labels = absorb_small(cuts[m], dist, min_size)
        if labels is None or not lo <= labels.max() + 1 <= hi or labels.tobytes() in seen:
            continue
        seen.add(labels.tobytes())
        out.append(labels)
    return out


def absorb_small(labels: np.ndarray, dist: np.ndarray, min_size: int) -> np.ndarray | None:
    """Labels 0..c-1 with every cluster under `min_size` dissolved into the sizable cluster of
    least mean distance (per token); None when no cluster is sizable."""
    size = np.bincount(labels)
    big = np.flatnonzero(size >= min_size)
    if big.size == 0:
        return None
    if big.size < size.size:
        member = (labels[:, None] == big[None, :]).astype(np.float64)
        nearest = big[np.argmin(dist @ member / size[big], axis=1)]
        labels = np.where(size[labels] >= min_size, labels, nearest)
    return np.unique(labels, return_inverse=True)[1]


def _cluster_counts(k: int, params: dict) -> list[int]:
    """The numbers of clusters a rule may choose from: the fixed one, or min..max."""
    if params["n_clusters"] != "auto":
        return [min(int(params["n_clusters"]), k - 1)]
    lo = min(int(params["min_clusters"]), k - 1)
    hi = max(min(int(params["max_clusters"]), k - 1), lo)
    return list(range(lo, hi + 1))


def spectral_candidates(sim: np.ndarray, counts: list[int], seed: int) -> list[np.ndarray]:
    """Spectral clustering of the affinity (1 + S) / 2 into each number of clusters."""
    from sklearn.cluster import SpectralClustering

    affinity = (1.0 + np.asarray(sim, dtype=np.float64)) / 2.0
    return [SpectralClustering(n_clusters=m, affinity="precomputed", random_state=seed,
                               assign_labels="cluster_qr").fit_predict(affinity)
            for m in counts]  # fmt: skip


def hdbscan_labels(dist: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN on a precomputed distance; unclustered tokens (-1) become one more group."""
    from sklearn.cluster import HDBSCAN

    symmetric = (dist + dist.T) / 2.0  # float32 similarities are symmetric only to round-off
    labels = HDBSCAN(min_cluster_size=min_cluster_size, metric="precomputed",
                     copy=True).fit_predict(symmetric)  # fmt: skip
    labels = np.where(labels < 0, labels.max() + 1, labels)
    return np.unique(labels, return_inverse=True)[1]


def _hierarchical(sim: np.ndarray, dist: np.ndarray, params: dict) -> tuple[np.ndarray, float]:
    k = sim.shape[0]
    z = linkage_matrix(sim, params["linkage"])
    lo = min(int(params["min_clusters"]), k - 1)
    hi = max(min(int(params["max_clusters"]), k - 1), lo)
    if params["n_clusters"] != "auto":
        m = min(int(params["n_clusters"]), k - 1)
    elif params["cluster_selection"] == "distance_threshold":
        merged = int(np.count_nonzero(z[:, 2] <= float(params["distance_threshold"])))
        m = int(np.clip(k - merged, lo, hi))
    else:
        min_size = int(params["min_cluster_size"])
        deepest = k - 1 if min_size > 1 else hi  # absorbed slivers: deeper cuts may qualify
        cuts = cut_all(z, list(range(lo, deepest + 1)))
        return best_cut(dist, cuts, lo, hi, min_size)
    labels = cut_labels(z, m)
    return labels, float(silhouettes(dist, [labels])[0])


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
    s = np.asarray(sim, dtype=np.float64)
    onehot = np.zeros((k, n_clusters))
    onehot[np.arange(k), labels] = 1.0
    own = (s @ onehot)[np.arange(k), labels] - np.diagonal(s)
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
