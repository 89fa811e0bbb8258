"""Each statistic of intraneuron.analysis against an independent reference on random inputs."""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.cluster.hierarchy import cut_tree, fcluster, linkage
from sklearn.metrics import adjusted_mutual_info_score, silhouette_score

from intraneuron.analysis import controls, rowstats
from intraneuron.analysis import inference as inf
from intraneuron.analysis.clustering import (
    choose_clusters,
    cut_labels,
    linkage_matrix,
    renumber_by_activation,
    silhouettes,
)
from intraneuron.analysis.interleaving import (
    AMIScale,
    adjusted_mutual_information,
    count_runs,
    range_overlap,
    runs_per_cluster,
    xlogx_table,
)
from intraneuron.analysis.params import resolve_params
from intraneuron.analysis.permutation import PermutationPlan
from intraneuron.analysis.segments import rank_segments
from intraneuron.analysis.similarity import (
    block_homogeneity,
    cosine_similarity_matrix,
    homogeneity,
    mean_offdiagonal,
)


def random_sim(k, d=12, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((k + 5, d)).astype(np.float32)
    return cosine_similarity_matrix(emb, np.arange(k)), emb[:k].astype(np.float64)


def brute_homogeneity(vectors, members):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    total, pairs = 0.0, 0
    for a in members:
        for b in members:
            if a != b:
                total += float(unit[a] @ unit[b])
                pairs += 1
    return total / pairs


def same_partition(a, b):
    pairs_a = a[:, None] == a[None, :]
    pairs_b = b[:, None] == b[None, :]
    return bool(np.all(pairs_a == pairs_b))


def test_similarity_and_homogeneity_match_double_loop():
    sim, vec = random_sim(30, seed=1)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    np.testing.assert_allclose(sim, unit @ unit.T, atol=1e-5)
    labels = np.random.default_rng(2).integers(0, 4, 30)
    got = block_homogeneity(sim, labels, 4)
    for g in range(4):
        members = np.flatnonzero(labels == g)
        ref = brute_homogeneity(vec, members)
        assert got[g] == pytest.approx(ref, abs=1e-5)
        assert homogeneity(sim, members) == pytest.approx(ref, abs=1e-5)
    assert np.isnan(homogeneity(sim, np.array([3])))
    ref_all = brute_homogeneity(vec, range(30))
    assert mean_offdiagonal(sim) == pytest.approx(ref_all, abs=1e-5)


def test_zero_vector_has_zero_similarity():
    emb = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    sim = cosine_similarity_matrix(emb, np.array([0, 1, 2]))
    assert np.all(sim[1] == 0) and np.all(sim[:, 1] == 0)
    assert sim[0, 2] == pytest.approx(np.sqrt(0.5))


def test_rank_average_matches_scipy():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 8, 40).astype(float)
    ranks, ties = inf.rank_average(x)
    np.testing.assert_allclose(ranks, stats.rankdata(x))
    assert ties.sum() == 40
    np.testing.assert_array_equal(np.sort(ties), np.sort(np.unique(x, return_counts=True)[1]))


@pytest.mark.parametrize("seed", range(5))
def test_kruskal_wallis_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=60), 1)  # rounding makes ties
    groups = rng.integers(0, 4, 60)
    res = inf.kruskal_wallis(values, groups, 4)
    ref = stats.kruskal(*[values[groups == g] for g in range(4)])
    assert res.h == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-8)
    assert res.epsilon2 == pytest.approx(ref.statistic / (60 - 1), rel=1e-10)
    assert res.eta2 == pytest.approx((ref.statistic - 4 + 1) / (60 - 4), rel=1e-10)


def test_kruskal_wallis_counts_only_occupied_groups():
    rng = np.random.default_rng(21)
    values = rng.normal(size=30)
    groups = rng.integers(0, 3, 30)  # group 3 of 4 is empty
    res = inf.kruskal_wallis(values, groups, 4)
    ref = stats.kruskal(*[values[groups == g] for g in range(3)])
    assert res.h == pytest.approx(ref.statistic) and res.p == pytest.approx(ref.pvalue)
    assert res.eta2 == pytest.approx((ref.statistic - 3 + 1) / (30 - 3))
    assert res.epsilon2 == pytest.approx(ref.statistic / 29)
    single = inf.kruskal_wallis(values, np.zeros(30, dtype=int), 1)
    assert np.isnan(single.p)


def test_dunn_matches_plain_formula_and_kw_for_two_groups():
    rng = np.random.default_rng(4)
    values = np.round(rng.normal(size=50), 1)
    groups = rng.integers(0, 3, 50)
    res = inf.kruskal_wallis(values, groups, 3)
    z, p = inf.dunn(res.rank_sum, res.size, res.sigma2)
    ranks = stats.rankdata(values)
    n = 50
    _, counts = np.unique(values, return_counts=True)
    sigma2 = n * (n + 1) / 12 - np.sum(counts**3 - counts) / (12 * (n - 1))
    for idx, (a, b) in enumerate(itertools.combinations(range(3), 2)):
        ra, rb = ranks[groups == a], ranks[groups == b]
        ref = (ra.mean() - rb.mean()) / np.sqrt(sigma2 * (1 / ra.size + 1 / rb.size))
        assert z[idx] == pytest.approx(ref)
        assert p[idx] == pytest.approx(2 * stats.norm.sf(abs(ref)))
    two = (groups > 0).astype(int)
    res2 = inf.kruskal_wallis(values, two, 2)
    z2, _ = inf.dunn(res2.rank_sum, res2.size, res2.sigma2)
    assert z2[0] ** 2 == pytest.approx(res2.h)


def test_vs_rest_matches_scipy_mannwhitneyu():
    rng = np.random.default_rng(5)
    values = np.round(rng.normal(size=70), 1)
    groups = rng.integers(0, 4, 70)
    groups[:5] = 3
    values[groups == 3] += 1.5
    res = inf.kruskal_wallis(values, groups, 4)
    u, effect, p = inf.vs_rest(res.rank_sum, res.size, 70, res.tie_term)
    for g in range(4):
        inside, rest = values[groups == g], values[groups != g]
        ref = stats.mannwhitneyu(inside, rest, method="asymptotic", use_continuity=True)
        assert u[g] == pytest.approx(ref.statistic)
        assert p[g] == pytest.approx(ref.pvalue, rel=1e-9)
        assert effect[g] == pytest.approx(2 * ref.statistic / (inside.size * rest.size) - 1)
    assert effect[3] > 0.5


def test_cliffs_delta_matches_double_loop():
    rng = np.random.default_rng(6)
    values = np.round(rng.normal(size=25), 1)
    groups = rng.integers(0, 3, 25)
    delta = inf.cliffs_delta(values, groups, 3)
    for a, b in itertools.product(range(3), repeat=2):
        xa, xb = values[groups == a], values[groups == b]
        ref = np.mean([np.sign(x - y) for x in xa for y in xb])
        assert delta[a, b] == pytest.approx(ref)


def test_holm_matches_definition():
    rng = np.random.default_rng(7)
    p = rng.random(12) ** 3
    p[4] = np.nan
    got = inf.holm(p)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    m = ok.size
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        assert got[idx] == pytest.approx(running)
    assert np.isnan(got[4])


@pytest.mark.parametrize("seed", range(6))
def test_ami_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    u = rng.integers(0, int(rng.integers(2, 8)), n)
    v = np.where(rng.random(n) < 0.5, u, rng.integers(0, 5, n))
    assert adjusted_mutual_information(u, v) == pytest.approx(
        adjusted_mutual_info_score(u, v), abs=1e-10
    )
    assert adjusted_mutual_information(u, u) == pytest.approx(1.0)


def test_ami_edge_cases_match_sklearn():
    ones = np.zeros(10, dtype=int)
    pairs = [(ones, ones), (np.arange(10), np.arange(10)), (np.arange(10), ones)]
    for u, v in pairs:
        assert adjusted_mutual_information(u, v) == pytest.approx(
            adjusted_mutual_info_score(u, v), abs=1e-10
        )


def test_runs_and_overlap_match_plain_loops():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 4, 50)
    runs = 1
    for a, b in itertools.pairwise(labels):
        runs += a != b
    assert count_runs(labels) == runs
    per = runs_per_cluster(labels, 4)
    assert per.sum() == runs
    for c in range(4):
        blocks = sum(1 for i in range(50) if labels[i] == c and (i == 0 or labels[i - 1] != c))
        assert per[c] == blocks
    contiguous = np.repeat([0, 1, 2], [5, 5, 5])
    assert range_overlap(contiguous, 3) == (0.0, 0.0)
    frac, jac = range_overlap(np.array([0, 1, 0, 1]), 2)
    assert frac == 1.0 and jac == pytest.approx(2 / 4)  # [0, 2] vs [1, 3]


def test_permutation_engine_matches_brute_force():
    k, perms = 24, 40
    sim, vec = random_sim(k, seed=11)
    coarse, fine = rank_segments(k, 3), rank_segments(k, 4)
    plan = PermutationPlan(k, perms, [coarse, fine], chunk=16)  # several chunks, last partial
    clusters = np.random.default_rng(12).integers(0, 3, k)
    pi = plan.draw(np.random.default_rng(13))
    assert np.all(pi[0] == np.arange(k))
    assert all(sorted(row) == list(range(k)) for row in pi)
    s0 = sim.copy()
    np.fill_diagonal(s0, 0)
    res = plan.run(s0, clusters, 3, pi)
    for row in (0, 1, 17, perms):
        for scheme, labels in enumerate((coarse, fine)):
            for s in range(labels.max() + 1):
                members = pi[row][labels == s]
                ref = brute_homogeneity(vec, members) * members.size * (members.size - 1)
                assert res.within[scheme][row, s] == pytest.approx(ref, abs=1e-4)
            table = np.zeros((labels.max() + 1, 3), dtype=int)
            np.add.at(table, (labels, clusters[pi[row]]), 1)
            ami = AMIScale(table.sum(1), table.sum(0)).ami(res.sum_xlogx[scheme][row])
            ref = adjusted_mutual_info_score(labels, clusters[pi[row]])
            assert float(ami) == pytest.approx(ref, abs=1e-10)
        assert res.runs[row] == count_runs(clusters[pi[row]])
    # the reused buffer carries nothing over from one neuron to the next
    plan.run(s0, clusters, 3, plan.draw(np.random.default_rng(99)))
    again = plan.run(s0, clusters, 3, pi)
    for a, b in zip(res.within, again.within, strict=True):
        np.testing.assert_array_equal(a, b)
    table = xlogx_table(5)
    assert table[0] == 0 and table[3] == pytest.approx(3 * np.log(3))


def test_cut_labels_matches_scipy_cut_tree():
    rng = np.random.default_rng(14)
    for method in ("average", "complete", "single", "ward"):
        sim, _ = random_sim(40, seed=int(rng.integers(1000)))
        z = linkage_matrix(sim, method)
        for m in (1, 2, 3, 7, 12, 40):
            ref = cut_tree(z, n_clusters=m).ravel()
            got = cut_labels(z, m)
            assert got.max() + 1 == m
            assert same_partition(got, ref)


def test_ward_on_unit_vectors_matches_scipy():
    sim, vec = random_sim(30, seed=15)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    np.testing.assert_allclose(
        linkage_matrix(sim, "ward")[:, 2], linkage(unit, "ward")[:, 2], atol=1e-5
    )
    np.testing.assert_allclose(
        linkage_matrix(sim, "average")[:, 2],
        linkage(unit, "average", metric="cosine")[:, 2],
        atol=1e-5,
    )


def test_silhouette_matches_sklearn_cosine():
    sim, vec = random_sim(50, seed=16)
    z = linkage_matrix(sim, "average")
    candidates = [cut_labels(z, m) for m in range(2, 9)]
    dist = np.maximum(1 - sim.astype(float), 0)
    np.fill_diagonal(dist, 0)
    got = silhouettes(dist, candidates)
    for lab, score in zip(candidates, got, strict=True):
        assert score == pytest.approx(silhouette_score(vec, lab, metric="cosine"), abs=1e-5)


def test_choose_clusters_rules():
    sim, vec = random_sim(40, seed=17)
    params = resolve_params({"max_clusters": 6})
    labels, score = choose_clusters(sim, params)
    z = linkage_matrix(sim, "average")
    best = max(range(2, 7), key=lambda m: silhouette_score(vec, cut_labels(z, m), metric="cosine"))
    assert labels.max() + 1 == best
    fixed, _ = choose_clusters(sim, resolve_params({"n_clusters": 5}))
    assert fixed.max() + 1 == 5
    thr = float(np.median(z[:, 2][-10:]))
    p = resolve_params({"cluster_selection": "distance_threshold", "distance_threshold": thr,
                        "max_clusters": 40})  # fmt: skip
    by_threshold, _ = choose_clusters(sim, p)
    ref = fcluster(z, t=thr, criterion="distance")
    assert same_partition(by_threshold, ref)


def test_renumber_by_activation():
    labels = np.array([2, 2, 0, 1, 0, 1])
    act = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    new = renumber_by_activation(labels, act)
    assert list(new) == [0, 0, 1, 2, 1, 2]


# --- rowstats and controls (the brute-force checks of each are in test_rowstats.py) ----------


def test_permutation_p_and_null_summary():
    values = np.concatenate([[7.0, 100.0, np.nan], np.arange(10.0)])  # 3 observed, 10 null

    def p(x, n, greater=True):
        return rowstats.permutation_p(x[:n], x[n:], greater)

    np.testing.assert_allclose(p(values, 3)[:2], [4 / 11, 1 / 11])
    assert np.isnan(p(values, 3)[2])
    assert p(values, 3, greater=False)[0] == pytest.approx(9 / 11)
    # float round-off never turns a tie into a win
    tie = np.array([3.0 + 1e-12, 3.0, 1.0])
    assert p(tie, 1)[0] == pytest.approx(2 / 3)
    # non-finite null rows are left out of the count
    with_nan = np.array([5.0, np.nan, 6.0, 1.0])
    assert p(with_nan, 1)[0] == pytest.approx(2 / 3)
    mean, sd, z = rowstats.null_summary(values[:3], values[3:])
    null = np.arange(10.0)
    assert (mean, sd) == (pytest.approx(4.5), pytest.approx(np.std(null, ddof=1)))
    np.testing.assert_allclose(z[:2], (np.array([7.0, 100.0]) - 4.5) / np.std(null, ddof=1))
    assert np.isnan(rowstats.null_summary(np.array([1.0]), np.array([2.0, 2.0, 2.0]))[2][0])


def test_tied_share():
    assert controls.tied_share(np.array([3.0, 2.0, 1.0])) == 0.0
    assert controls.tied_share(np.array([3.0, 2.0, 2.0, 1.0])) == pytest.approx(0.5)
    # the last value ties with types left outside the core set
    assert controls.tied_share(np.array([3.0, 2.0, 2.0, 1.0]), boundary_ties=2) == 0.75
    assert controls.tied_share(np.array([3.0, 1.0, 1.0]), boundary_ties=1) == pytest.approx(2 / 3)
    assert np.isnan(controls.tied_share(np.array([])))
