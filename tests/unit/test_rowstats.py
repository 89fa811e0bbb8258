"""The vectorised per-row statistics and the controls against brute force and the libraries."""

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.metrics import adjusted_mutual_info_score

from intraneuron.analysis import rowstats
from intraneuron.analysis.controls import (
    RIDGE_GRID,
    descending_order,
    loo_ridge,
    random_direction_neurons,
    tied_share,
)
from intraneuron.analysis.permutation import PermutationPlan
from intraneuron.analysis.segments import rank_segments, segment_starts
from intraneuron.analysis.similarity import cosine_similarity_matrix, homogeneity


@pytest.fixture(scope="module", params=[0, 1, 2])
def batch(request):
    """A random neuron (k tokens, c clusters) and 30 permutation rows after 2 observed ones."""
    rng = np.random.default_rng(request.param)
    k, c = 40, 4 + request.param
    emb = rng.standard_normal((200, 16)).astype(np.float32)
    ids = rng.choice(200, size=k, replace=False)
    sim = cosine_similarity_matrix(emb, ids)
    clusters = rng.integers(0, c, size=k)
    clusters[:c] = np.arange(c)
    schemes = [rank_segments(k, 4), rank_segments(k, 10)]
    plan = PermutationPlan(k, 30, schemes, chunk=7)
    pi = plan.draw(rng, [np.arange(k), rng.permutation(k)])
    sim0 = sim.copy()
    np.fill_diagonal(sim0, 0.0)
    perm = plan.run(sim0, clusters, c, pi)
    return {"sim": sim.astype(np.float64), "sim0": sim0, "clusters": clusters, "c": c,
            "schemes": schemes, "pi": pi, "perm": perm, "k": k}


def brute_scheme(b, j, row):
    """Every statistic of scheme j for one row, from explicit member lists."""
    labels = b["schemes"][j]
    g = labels.max() + 1
    members = [b["pi"][row][labels == s] for s in range(g)]
    h = np.array([homogeneity(b["sim"], m) for m in members])
    r = b["sim0"].sum(axis=1) / (b["k"] - 1)
    dc = b["sim"] - r[:, None] - r[None, :] + r.mean()
    h_dc = np.array([homogeneity(dc, m) for m in members])
    slope = np.polyfit(g - 1 - np.arange(g), h, 1)[0]
    line = np.polyfit(np.arange(1, g), h[1:], 1)
    seg_of_token = np.empty(b["k"], dtype=int)
    for s, m in enumerate(members):
        seg_of_token[m] = s
    ami = adjusted_mutual_info_score(seg_of_token, b["clusters"])
    return {"homogeneity": h, "homogeneity_dc": h_dc, "trend": slope,
            "top_margin": h[0] - h[1:].max(), "top_margin_dc": h_dc[0] - h_dc[1:].max(),
            "top_excess": h[0] - np.polyval(line, 0), "ami": ami}


def test_scheme_rows_equal_brute_force(batch):
    b = batch
    r = b["sim0"].sum(axis=1, dtype=np.float64) / (b["k"] - 1)
    size = np.bincount(b["clusters"], minlength=b["c"])
    for j, labels in enumerate(b["schemes"]):
        rows = rowstats.scheme_rows(b["perm"].within[j], labels, segment_starts(labels), r,
                                    b["perm"].sum_xlogx[j], size, b["pi"])
        for row in (0, 1, 5, 31):
            want = brute_scheme(b, j, row)
            for name, value in want.items():
                got = getattr(rows, name)[row]
                np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_kruskal_h_equals_scipy(batch):
    b = batch
    h = rowstats.kruskal_h(rowstats.ClusterPairs.of(b["perm"].labels, b["c"]))
    for row in (0, 1, 17):
        labels = b["perm"].labels[row]
        groups = [np.flatnonzero(labels == g) for g in range(b["c"])]
        assert h[row] == pytest.approx(stats.kruskal(*groups).statistic, rel=1e-10)


def test_distinctness_and_rho_equal_brute_force(batch):
    b = batch
    labels = b["perm"].labels
    c = b["c"]
    pairs = rowstats.ClusterPairs.of(labels, c)
    distinct, position = rowstats.cluster_distinctness(pairs)
    for row in (0, 3):
        pos = {g: np.flatnonzero(labels[row] == g) for g in range(c)}
        for a in range(c):
            deltas = [np.mean(np.sign(pos[x][None, :] - pos[a][:, None]))
                      for x in range(c) if x != a]  # a above x when its position is lower
            assert distinct[row, a] == pytest.approx(np.mean(np.abs(deltas)), abs=1e-6)
            assert position[row, a] == pytest.approx(pos[a].mean(), abs=1e-5)
    rho = rowstats.distinct_rho(pairs)
    mean, sd = rowstats.distinctness_reference(tuple(np.bincount(labels[0], minlength=c)))
    z = (distinct - mean) / sd
    for row in (0, 1, 9):
        assert rho[row] == pytest.approx(stats.spearmanr(position[row], z[row]).statistic)


def test_cluster_pair_counts_count_every_pair():
    labels = np.random.default_rng(5).integers(0, 4, size=(11, 17))
    before = rowstats.ClusterPairs.of(labels, 4).above
    for row in range(labels.shape[0]):
        lab = labels[row]
        for a in range(4):
            for b in range(4):
                expected = sum(1 for i in range(17) for j in range(i + 1, 17)
                               if lab[i] == a and lab[j] == b)  # fmt: skip
                assert before[row, b, a] == expected


def test_distinct_rho_needs_three_clusters():
    labels = np.tile(np.array([0, 1] * 10), (5, 1))
    assert np.isnan(rowstats.distinct_rho(rowstats.ClusterPairs.of(labels, 2))).all()


def test_permutation_p_counts_ties_and_ignores_nan():
    values = np.array([2.0, 0.0, 1.0, 2.0, 3.0, np.nan, 0.5])
    p = rowstats.permutation_p(values[:2], values[2:])
    assert p[0] == pytest.approx((1 + 2) / (1 + 4))  # 2.0 and 3.0 at least as large
    assert p[1] == pytest.approx((1 + 4) / (1 + 4))
    assert rowstats.permutation_p(values[:2], values[2:], greater=False)[1] == pytest.approx(1 / 5)


@pytest.mark.parametrize("greater", [True, False])
def test_null_pass_rate_judges_each_null_row_as_the_observed_one(greater):
    """Each null row judged like the observed row, against the rest of the exchangeable set
    (the other null rows and the observed one): its share passing is the test's realised
    false-positive rate, equal to the observed row's pass probability under the null, below
    alpha where ties make the statistic discrete."""
    rng = np.random.default_rng(3)
    continuous = rng.standard_normal(200)
    discrete = rng.integers(0, 4, 200).astype(float)
    discrete[5] = np.nan
    for values in (continuous, discrete):
        observed, null = values[:1], values[1:]
        want = []
        for j in np.flatnonzero(np.isfinite(null)):
            rest = np.append(np.delete(null, j), observed)
            want.append(rowstats.permutation_p(null[j:j + 1, None], rest[:, None],
                                               greater)[0, 0] < 0.05)
        got = rowstats.null_pass_rate(observed, null, 0.05, greater)
        assert got == pytest.approx(np.mean(want))
    # continuous: the rate of an exact permutation test, floor(alpha (P + 1) - ...) / (P + 1)
    p_count = continuous.size
    assert rowstats.null_pass_rate(continuous[:1], continuous[1:], 0.05) == pytest.approx(
        np.ceil(0.05 * p_count - 1) / (p_count - 1), abs=1.5 / p_count)
    assert rowstats.null_pass_rate(discrete[:1], discrete[1:], 0.05) == 0.0  # four values


def test_realised_rate_matches_the_observed_rows_pass_rate_on_a_discrete_statistic():
    """Over many null token sets, the observed row passes 3C's discrete statistic at the mean
    realised rate (a rate from the null rows alone, P instead of P + 1, would sit below it and
    make 'exists' too lenient)."""
    rng = np.random.default_rng(0)
    passed, rates = [], []
    for _ in range(1500):
        c = int(rng.integers(3, 6))
        clusters = np.repeat(np.arange(c), 100 // c + 1)[:100]
        pi = np.stack([rng.permutation(100) for _ in range(201)])
        rho = rowstats.distinct_rho(rowstats.ClusterPairs.of(clusters[pi], c))
        passed.append(rowstats.permutation_p(rho[:1], rho[1:])[0] < 0.05)
        rates.append(rowstats.null_pass_rate(rho[:1], rho[1:], 0.05))
    n = len(passed)
    sd = np.sqrt(np.mean(rates) * (1 - np.mean(rates)) / n)
    assert abs(np.mean(passed) - np.mean(rates)) < 3.3 * sd


def test_loo_ridge_equals_sklearn_leave_one_out():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 50))
    y = x @ rng.standard_normal(50) * 0.3 + rng.standard_normal(30)
    pred, r2 = loo_ridge(x, y)
    xc, yc = x - x.mean(0), y - y.mean()
    scale = np.linalg.eigvalsh(xc @ xc.T).clip(0).mean()
    best = None
    for lam in scale * RIDGE_GRID:
        loo = np.empty(30)
        for i in range(30):  # refit, intercept included, without token i
            keep = np.arange(30) != i
            loo[i] = Ridge(alpha=lam).fit(x[keep], y[keep]).predict(x[i:i + 1])[0]
        err = np.sum((y - loo) ** 2)
        if best is None or err < best[0]:
            best = (err, loo)
    np.testing.assert_allclose(pred, best[1], rtol=1e-4, atol=1e-6)  # float32 Gram
    assert r2 == pytest.approx(1 - best[0] / np.sum(yc**2), rel=1e-4)


def test_loo_ridge_is_not_fitted_to_noise():
    """More dimensions than tokens: an in-sample fit is perfect, leave-one-out is not."""
    rng = np.random.default_rng(5)
    _, r2 = loo_ridge(rng.standard_normal((100, 400)), rng.standard_normal(100))
    assert r2 < 0.05


def test_random_directions_do_not_depend_on_batching():
    rng = np.random.default_rng(6)
    emb = rng.standard_normal((500, 12)).astype(np.float32)
    eligible = np.sort(rng.choice(500, size=300, replace=False))
    seeds = [[0, 1, n, 1] for n in range(5)]
    ids, scores = random_direction_neurons(emb, eligible, 20, seeds)
    for i, seed in enumerate(seeds):
        one_ids, one_scores = random_direction_neurons(emb, eligible, 20, [seed])
        np.testing.assert_array_equal(one_ids[0], ids[i])
        u = np.random.default_rng(seed).standard_normal(12)
        proj = emb[eligible].astype(np.float64) @ u
        np.testing.assert_array_equal(ids[i], eligible[np.argsort(-proj)[:20]])
        np.testing.assert_allclose(scores[i], np.sort(proj)[::-1][:20])
    assert np.isin(ids, eligible).all()


def test_descending_order_breaks_ties_at_random():
    values = np.array([3.0, 1.0, 1.0, 1.0, 2.0, 1.0])
    orders = {tuple(descending_order(values, np.random.default_rng(s))) for s in range(20)}
    assert all(o[:2] == (0, 4) for o in orders) and len(orders) > 5
    assert tied_share(values) == pytest.approx(4 / 6)
    assert tied_share(np.array([3.0, 2.0, 1.0]), boundary_ties=2) == pytest.approx(1 / 3)
