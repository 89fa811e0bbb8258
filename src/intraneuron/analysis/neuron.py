"""One token set (a neuron's core tokens, or a pseudo-neuron's), analysed for every order of it
that is observed: the neuron's own ranking and the controls that re-rank the same tokens.

The steps, each a function below: the similarity matrix and the clusters (top-down, they do not
depend on activation); one batch of permutations shared by all orders (`rowstats`); then, per
observed order, the segment rows (bottom-up), the interleaving and cluster statistics, and the
neuron's scalar metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import inference as inf
from . import rowstats
from .arrays import upper_pairs
from .clustering import centrality, choose_clusters, cluster_names, renumber_by_activation
from .criteria import CRITERIA
from .geometry import geometry_orders
from .interleaving import range_overlap, runs_per_cluster
from .permutation import PermutationPlan
from .segments import segment_composition, segment_labels, segment_starts
from .similarity import block_homogeneity, cosine_similarity_matrix, mean_offdiagonal

SCHEMES = ("coarse", "fine")


@dataclass
class TokenSet:
    """Core tokens of one neuron or pseudo-neuron, highest activation first."""

    token_ids: np.ndarray
    tokens: list[str]


@dataclass
class Order:
    """An observed order of a token set: `order[position]` is a token index of the set, and
    `act[position]` the activation at that position (descending)."""

    kind: str
    order: np.ndarray
    act: np.ndarray


@dataclass
class Result:
    """What one observed order gives: the neuron table's scalars, segment rows per scheme,
    cluster rows (token-set kinds only) and the per-token columns (in the order's ranking)."""

    kind: str
    scalars: dict
    segments: dict[str, dict]
    clusters: dict | None
    token_columns: dict


@dataclass
class Context:
    """What every token set of a shard shares: permutation plans by shape, and the silhouettes
    of random token sets of the eligible vocabulary by set size (the null of
    `cluster_structure_p`; sizes vary per neuron under a selectivity rule)."""

    plans: dict
    silhouette_null: Callable[[int], np.ndarray]


def silhouette_null(embeddings: np.ndarray, eligible: np.ndarray, k: int, params: dict,
                    layer: int) -> np.ndarray:
    """Silhouettes of `structure_null_sets` random k-sets of the eligible vocabulary, clustered
    by the configured rule: how clustered a core set with no category structure looks. Seeded
    by (seed, layer) only, so every shard of a layer draws the same sets."""
    rng = np.random.default_rng([int(params["seed"]), int(layer), 4])
    out = []
    for _ in range(int(params["structure_null_sets"])):
        ids = rng.choice(eligible, size=k, replace=False)
        sim = cosine_similarity_matrix(embeddings, ids).astype(np.float64)
        out.append(choose_clusters(sim, params, ids)[1])
    return np.asarray(out)


@dataclass(frozen=True)
class Rows:
    """Where each block of a permutation batch lies: the observed orders first, then the P
    random permutations (the exists null), then G geometry surrogates of the first observed
    order (the beyond-geometry null)."""

    n_observed: int
    permutations: int
    geometry: int

    @property
    def null(self) -> slice:
        return slice(self.n_observed, self.n_observed + self.permutations)

    @property
    def geo(self) -> slice:
        start = self.n_observed + self.permutations
        return slice(start, start + self.geometry)


@dataclass
class Test:
    """A statistic over all rows of a batch and, per observed row, its permutation p and the
    null's mean, sd and the observed z; for the first observed row, its geometry p; for the
    token set, the realised pass rates at alpha of the permutation and geometry rows."""

    values: np.ndarray
    p: np.ndarray
    geo_p: np.ndarray
    null_rate: float | np.ndarray
    geo_null_rate: float | np.ndarray
    null_mean: np.ndarray | None = None
    null_sd: np.ndarray | None = None
    z: np.ndarray | None = None

    @classmethod
    def of(cls, values: np.ndarray, rows: Rows, alpha: float | None, greater: bool = True,
           summary: bool = False) -> Test:
        """`alpha`: also the realised pass rates (criteria statistics only); `summary`: also
        the null's mean and sd and the observed z (for the tables)."""
        observed, null = values[: rows.n_observed], values[rows.null]
        p = rowstats.permutation_p(observed, null, greater)
        geo = values[rows.geo]
        geo_p = (rowstats.permutation_p(observed[:1], geo, greater) if rows.geometry
                 else np.full(observed[:1].shape, np.nan))  # fmt: skip
        rates = (np.nan, np.nan)
        if alpha is not None:
            first = np.asarray(observed[0], dtype=np.float64)
            rates = (rowstats.null_pass_rate(first, null, alpha, greater),
                     rowstats.null_pass_rate(first, geo, alpha, greater) if rows.geometry
                     else np.nan)
        extra = rowstats.null_summary(observed, null) if summary else ()
        return cls(values, p, geo_p, *rates, *extra)


@dataclass
class _Shared:
    """What every order of a token set shares: similarity, clusters and the permutation rows."""

    k: int
    sim: np.ndarray
    clusters: np.ndarray  # raw cluster label of each token of the set
    n_clusters: int
    silhouette: float
    schemes: list[np.ndarray]
    schemes_rows: list[rowstats.SchemeRows]
    labels: np.ndarray  # (R, k) cluster label at each position, per row
    rows: Rows
    tests: dict[str, Test]  # every statistic with its nulls, by name


MAX_PLANS = 64  # value cuts and selectivity make many shapes; a plan is cheap to rebuild


def _plan(plans: dict, k: int, params: dict, schemes: list[np.ndarray]) -> PermutationPlan:
    key = (k, *(lab.tobytes() for lab in schemes))
    if key not in plans:
        if len(plans) >= MAX_PLANS:
            plans.clear()
        plans[key] = PermutationPlan(k, params["permutations"], schemes)
    return plans[key]


def _schemes(act: np.ndarray, params: dict) -> list[np.ndarray]:
    """Coarse and fine segment labels of the set's own ranking (`act`, descending). Every order
    of the set, and every permutation, is cut into segments of these sizes."""
    cut = params["segment_cut"]
    return [segment_labels(act, params["n_segments"], cut),
            segment_labels(act, params["fine_segments"], cut)]


def _shared(token_set: TokenSet, orders: list[Order], embeddings: np.ndarray, params: dict,
            plans: dict, rng: np.random.Generator) -> _Shared:
    k = token_set.token_ids.size
    sim = cosine_similarity_matrix(embeddings, token_set.token_ids)
    sim64 = sim.astype(np.float64)
    clusters, silhouette = choose_clusters(sim64, params, token_set.token_ids)
    c = int(clusters.max()) + 1
    schemes = _schemes(orders[0].act, params)
    plan = _plan(plans, k, params, schemes)
    rows = Rows(len(orders), plan.permutations, int(params["geometry_surrogates"]))
    pi = plan.draw(rng, [o.order for o in orders])
    if rows.geometry:
        pi = np.vstack([pi, geometry_orders(sim64, orders[0].order, rows.geometry, rng)])
    sim0 = sim.copy()
    np.fill_diagonal(sim0, 0.0)
    perm = plan.run(sim0, clusters, c, pi)
    typical = sim0.sum(axis=1, dtype=np.float64) / (k - 1)
    size = np.bincount(clusters, minlength=c)
    schemes_rows = [
        rowstats.scheme_rows(within, lab, segment_starts(lab), typical, sums, size, pi)
        for lab, within, sums in zip(schemes, perm.within, perm.sum_xlogx, strict=True)
    ]
    pairs = rowstats.ClusterPairs.of(perm.labels, c)
    statistics = {"runs": perm.runs.astype(np.float64), "kw_h": rowstats.kruskal_h(pairs),
                  "distinct_rho": rowstats.distinct_rho(pairs)}
    return _Shared(
        k=k, sim=sim64, clusters=clusters, n_clusters=c, silhouette=silhouette,
        schemes=schemes, schemes_rows=schemes_rows, labels=perm.labels, rows=rows,
        tests=_tests(statistics, schemes_rows, rows, float(params["alpha"])),
    )  # fmt: skip


def _tests(statistics: dict[str, np.ndarray], schemes_rows: list[rowstats.SchemeRows],
           rows: Rows, alpha: float) -> dict[str, Test]:
    """Every tested statistic of a token set, each with its permutation and geometry nulls
    (realised pass rates for the statistics a criterion tests)."""
    tested = {c.statistic for c in CRITERIA}

    def test(name: str, values: np.ndarray, **kwargs) -> Test:
        return Test.of(values, rows, alpha if name in tested else None, **kwargs)

    tests = {"runs": test("runs", statistics["runs"], greater=False, summary=True),
             "kw_h": test("kw_h", statistics["kw_h"]),
             "distinct_rho": test("distinct_rho", statistics["distinct_rho"])}
    for name, scheme in zip(SCHEMES, schemes_rows, strict=True):
        tests[f"ami_{name}"] = test(f"ami_{name}", scheme.ami, summary=True)
        tests[f"{name}_segments"] = test("", scheme.homogeneity, summary=True)
        for stat in ("trend", "top_margin", "top_margin_dc", "top_excess"):
            tests[f"{name}_{stat}"] = test(f"{name}_{stat}", getattr(scheme, stat))
    return tests


def analyze_token_set(token_set: TokenSet, orders: list[Order], embeddings: np.ndarray,
                      params: dict, context: Context, rng: np.random.Generator,
                      with_clusters: bool) -> list[Result]:
    """Results for every observed order of `token_set` (permutations drawn from `rng`).

    `with_clusters`: also the cluster rows of the first order (the set's own ranking).
    """
    shared = _shared(token_set, orders, embeddings, params, context.plans, rng)
    null = context.silhouette_null(shared.k)
    structure_p = (float((1 + np.sum(null >= shared.silhouette - rowstats.TOL)) / (1 + null.size))
                   if null.size else float("nan"))  # fmt: skip
    out = []
    for row, order in enumerate(orders):
        labels = renumbered_labels(shared, order)
        scalars = {**_scalars(shared, row, labels, params), "cluster_structure_p": structure_p}
        segments = {
            name: _segment_rows(shared, j, row, order, labels)
            for j, name in enumerate(SCHEMES)
        }
        clusters = (_cluster_rows(shared, labels, order, token_set, params)
                    if with_clusters and row == 0 else None)  # fmt: skip
        token_columns = {
            "cluster": labels,
            "segment": shared.schemes[0],
            "fine_segment": shared.schemes[1],
            "centrality": centrality(shared.sim, shared.clusters, shared.n_clusters)[order.order],
        }
        out.append(Result(order.kind, scalars, segments, clusters, token_columns))
    return out


def renumbered_labels(shared: _Shared, order: Order) -> np.ndarray:
    """Cluster label at each position, clusters numbered by decreasing mean activation of this
    order (0 = most activating), so ids are comparable across neurons."""
    return renumber_by_activation(shared.clusters[order.order], order.act)


def _scalars(shared: _Shared, row: int, labels: np.ndarray, params: dict) -> dict:
    out: dict = {
        "n_tokens": shared.k,
        "n_clusters": shared.n_clusters,
        "silhouette": shared.silhouette,
        "mean_similarity": mean_offdiagonal(shared.sim),
    }
    out.update(_kruskal_scalars(shared, row, labels, params))
    out.update(_interleaving_scalars(shared, row, labels))
    for name, rows in zip(SCHEMES, shared.schemes_rows, strict=True):
        out.update(_scheme_scalars(name, rows, shared.tests, row))
    rho = shared.tests["distinct_rho"]
    out["distinct_rho"] = float(rho.values[row])
    out["distinct_rho_p"] = float(rho.p[row])
    for criterion in CRITERIA:
        test = shared.tests[criterion.statistic]
        out[f"{criterion.column}_geo_p"] = float(test.geo_p[0]) if row == 0 else float("nan")
        out[f"{criterion.column}_null_rate"] = float(test.null_rate)
        out[f"{criterion.column}_geo_null_rate"] = float(test.geo_null_rate)
    return out


def _kruskal_scalars(shared: _Shared, row: int, labels: np.ndarray, params: dict) -> dict:
    """Does activation (rank) differ between clusters? H with its chi-square and permutation
    p, the effect sizes, and Dunn / one-vs-rest post hoc counts."""
    k, c = shared.k, shared.n_clusters
    alpha = float(params["alpha"])
    kw = inf.kruskal_wallis(-np.arange(k, dtype=np.float64), labels, c)
    _, pair_p = inf.dunn(kw.rank_sum, kw.size, kw.sigma2)
    _, _, rest_p = inf.vs_rest(kw.rank_sum, kw.size, k, kw.tie_term)
    return {
        "kw_h": kw.h, "kw_df": c - 1, "kw_p": kw.p,
        "kw_perm_p": float(shared.tests["kw_h"].p[row]),
        "kw_epsilon2": kw.epsilon2, "kw_eta2": kw.eta2,
        "n_pairs": int(pair_p.size), "n_sig_pairs": int(np.sum(inf.holm(pair_p) < alpha)),
        "n_differ_from_rest": int(np.sum(inf.holm(rest_p) < alpha)),
    }  # fmt: skip


def _interleaving_scalars(shared: _Shared, row: int, labels: np.ndarray) -> dict:
    c = shared.n_clusters
    runs = shared.tests["runs"]
    mean = float(runs.null_mean)
    observed = float(runs.values[row])
    out = {
        "runs": observed, "runs_null_mean": mean, "runs_null_sd": float(runs.null_sd),
        "runs_z": float(runs.z[row]), "runs_p": float(runs.p[row]),
        "interleaving": (observed - c) / (mean - c) if mean > c else float("nan"),
    }  # fmt: skip
    out["range_overlap_frac"], out["range_jaccard"] = range_overlap(labels, c)
    return out


def _scheme_scalars(name: str, rows: rowstats.SchemeRows, tests: dict[str, Test],
                    row: int) -> dict:
    ami = tests[f"ami_{name}"]
    segments = tests[f"{name}_segments"]
    h = rows.homogeneity[row]
    position = (float(np.sum(h[1:] < h[0]) / (h.size - 1)) if np.all(np.isfinite(h))
                else float("nan"))  # fmt: skip
    out = {
        f"ami_{name}": float(ami.values[row]), f"ami_{name}_null_mean": float(ami.null_mean),
        f"ami_{name}_null_sd": float(ami.null_sd), f"ami_{name}_z": float(ami.z[row]),
        f"ami_{name}_p": float(ami.p[row]),
        f"top_{name}_homogeneity": float(h[0]), f"top_{name}_z": float(segments.z[row, 0]),
        f"top_{name}_p": float(segments.p[row, 0]),
        f"top_{name}_homogeneity_dc": float(rows.homogeneity_dc[row, 0]),
        f"{name}_top_position": position,
    }  # fmt: skip
    for stat in ("trend", "top_margin", "top_margin_dc", "top_excess"):
        test = tests[f"{name}_{stat}"]
        out[f"{name}_{stat}"] = float(test.values[row])
        out[f"{name}_{stat}_p"] = float(test.p[row])
    return out


def _segment_rows(shared: _Shared, scheme: int, row: int, order: Order,
                  labels: np.ndarray) -> dict:
    """The segments table's rows of one scheme for one observed order."""
    seg = shared.schemes[scheme]
    test = shared.tests[f"{SCHEMES[scheme]}_segments"]
    g = int(seg.max()) + 1
    starts = segment_starts(seg)
    ends = np.append(starts[1:], seg.size) - 1
    size = np.bincount(seg, minlength=g)
    present, dominant, purity = segment_composition(seg, labels, g, shared.n_clusters)
    return {
        "segment": np.arange(g), "size": size, "rank_min": starts, "rank_max": ends,
        "act_min": order.act[ends], "act_max": order.act[starts],
        "act_mean": np.bincount(seg, weights=order.act, minlength=g) / size,
        "homogeneity": test.values[row],
        "homogeneity_dc": shared.schemes_rows[scheme].homogeneity_dc[row],
        "null_mean": test.null_mean, "null_sd": test.null_sd, "z": test.z[row],
        "p": test.p[row],
        "n_clusters_present": present, "dominant_cluster": dominant, "purity": purity,
    }  # fmt: skip


def _cluster_rows(shared: _Shared, labels: np.ndarray, order: Order, token_set: TokenSet,
                  params: dict) -> dict:
    """The clusters table's rows for the token set's own ranking (positions = ranks)."""
    k, c = shared.k, shared.n_clusters
    alpha = float(params["alpha"])
    act = order.act
    kw = inf.kruskal_wallis(-np.arange(k, dtype=np.float64), labels, c)
    pair_p = inf.dunn(kw.rank_sum, kw.size, kw.sigma2)[1]
    pair_sig = inf.holm(pair_p) < alpha
    pi_, pj_ = upper_pairs(c)
    _, effect, rest_p = inf.vs_rest(kw.rank_sum, kw.size, k, kw.tie_term)
    rest_holm = inf.holm(rest_p)
    ranks = np.arange(k)
    size = np.bincount(labels, minlength=c)
    lo, hi = np.full(c, k), np.full(c, -1)
    np.minimum.at(lo, labels, ranks)
    np.maximum.at(hi, labels, ranks)
    act_lo, act_hi = np.full(c, np.inf), np.full(c, -np.inf)
    np.minimum.at(act_lo, labels, act)
    np.maximum.at(act_hi, labels, act)
    sim = shared.sim[np.ix_(order.order, order.order)]
    central = centrality(sim, labels, c)
    tokens = [token_set.tokens[i] for i in order.order]
    distinct = np.abs(inf.cliffs_delta(-ranks.astype(np.float64), labels, c)).sum(axis=1)
    return {
        "cluster": np.arange(c), "size": size,
        "mean_activation": np.bincount(labels, weights=act, minlength=c) / size,
        "act_min": act_lo, "act_max": act_hi, "rank_min": lo, "rank_max": hi,
        "homogeneity": block_homogeneity(sim, labels, c),
        "name": cluster_names(tokens, labels, central, c, int(params["cluster_name_tokens"])),
        "n_runs": runs_per_cluster(labels, c),
        "vs_rest_effect": effect, "vs_rest_p": rest_p, "vs_rest_p_holm": rest_holm,
        "differs_from_rest": rest_holm < alpha,
        "n_sig_pairs": np.bincount(pi_[pair_sig], minlength=c)
        + np.bincount(pj_[pair_sig], minlength=c),
        "distinctness": distinct / max(c - 1, 1),
        "activation_position": (c - 1 - np.arange(c)) / max(c - 1, 1),
    }  # fmt: skip
