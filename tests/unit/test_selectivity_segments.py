"""Issue 14: a selectivity rule on the stored core tokens, and segments cut by activation value.

Both keep contiguous prefixes / blocks of each neuron's ranking, so the permutation engine
still applies: value-cut p-values stay calibrated on noise, and a neuron's controls are
analysed on the same token subset as the neuron."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from intraneuron.analysis import analyze_shard
from intraneuron.analysis.segments import value_segments
from intraneuron.analysis.shard import selected_count
from intraneuron.analysis.synthetic import category_embeddings, synthetic_shard

ALPHA = 0.05
PARAMS = {"permutations": 200, "random_direction_every": 1,
          "structure_null_sets": 10}


@pytest.fixture(scope="module")
def vocab():
    return category_embeddings(40, 60, 64, 0.6, np.random.default_rng(100))


def analyze(shard, **params):
    shard = dict(shard)
    shard.pop("category")
    return analyze_shard(0, params={**PARAMS, **params}, **shard)


def with_means(shard, means):
    """The shard with its (n, k) mean activations replaced (rows descending)."""
    return {**shard, "mean_act": -np.sort(-np.asarray(means, dtype=np.float64), axis=1)}


# ------------------------------------------------------------------------ value segments

def brute_value_segments(act, g):
    top, bottom = act[0], act[-1]
    edges = [top - (top - bottom) * s / g for s in range(g + 1)]
    band = []
    for a in act:
        inside = [s for s in range(g) if edges[s + 1] < a <= edges[s]]
        band.append(inside[0] if inside else g - 1)  # the minimum closes the last band
    kept = sorted(set(band))
    return np.array([kept.index(b) for b in band])


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("g", [2, 4, 10])
def test_value_cuts_equal_brute_force(seed, g):
    rng = np.random.default_rng(seed)
    act = -np.sort(-rng.exponential(size=rng.integers(11, 60)) ** 2)
    labels = value_segments(act, g)
    np.testing.assert_array_equal(labels, brute_value_segments(act, g))
    assert labels[0] == 0 and np.all(np.diff(labels) >= 0) and np.all(np.diff(labels) <= 1)


def test_value_cuts_drop_empty_bands_and_fall_back_on_no_range():
    act = np.array([10.0, 1.0, 0.9, 0.5, 0.2, 0.0])  # bands 1 and 2 of 4 are empty
    np.testing.assert_array_equal(value_segments(act, 4), [0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(value_segments(np.ones(8), 4), [0, 0, 1, 1, 2, 2, 3, 3])


def test_value_cut_segments_table_follows_the_bands(vocab):
    shard = synthetic_shard(4, planted_top=0, seed=3, embeddings=vocab)
    rng = np.random.default_rng(0)
    shard = with_means(shard, rng.exponential(size=(4, 100)) ** 3)
    tables = analyze(shard, segment_cut="value", controls=["shuffled"])
    segs = tables["segments"]
    for (_kind, neuron), frame in segs[segs["scheme"] == "coarse"].groupby(["kind", "neuron"]):
        act = shard["mean_act"][neuron]
        expected = np.bincount(value_segments(act, 4))
        np.testing.assert_array_equal(frame["size"], expected)  # same sizes for the control
        assert frame["size"].sum() == 100
    neu = tables["neurons"]
    assert neu["top_coarse_p"].notna().any()


def test_value_cut_p_values_are_calibrated_on_noise(vocab):
    """Null neurons with skewed activations (small top bands, empty and one-token bands): every
    segment test rejects at rate alpha up to binomial error."""
    n = 300
    shard = synthetic_shard(n, planted_top=0, seed=8, embeddings=vocab)
    shard = with_means(shard, np.random.default_rng(1).lognormal(0, 1.0, size=(n, 100)))
    tables = analyze(shard, segment_cut="value", controls=["shuffled"])
    neu = tables["neurons"]
    sizes = tables["segments"].query("scheme == 'coarse' and segment == 0")["size"]
    assert sizes.median() < 25  # the value cut makes the top segment smaller than a quartile
    for kind in ("neuron", "shuffled"):
        rows = neu[neu["kind"] == kind]
        for col in ("top_coarse_p", "coarse_trend_p", "coarse_top_margin_p", "ami_coarse_p",
                    "fine_trend_p", "ami_fine_p"):
            p = rows[col].dropna()  # NaN: one-token top band, fixed by the values alone
            assert len(p) > n / 3, (kind, col, len(p))
            passed = int((p < ALPHA).sum())
            lo, hi = stats.binom.ppf([0.001, 0.999], len(p), ALPHA)
            assert lo <= passed <= hi, (kind, col, passed, len(p))


# ------------------------------------------------------------------------ selectivity

def test_selected_count_rules():
    act = np.array([4.0, 3.0, 2.1, 1.9, 0.5, 0.0, -1.0])
    params = {"selectivity": "none", "selectivity_fraction": 0.5}
    assert selected_count(act, params) == 7
    assert selected_count(act, {**params, "selectivity": "positive"}) == 5
    assert selected_count(act, {**params, "selectivity": "fraction"}) == 3
    assert selected_count(-act[::-1] - 5, {**params, "selectivity": "fraction"}) == 0


@pytest.fixture(scope="module")
def selective(vocab):
    """Neuron i has 100 - 12 i positive core-token means (100, 88, ..., 4)."""
    n = 9
    shard = synthetic_shard(n, planted_top=0, seed=5, embeddings=vocab)
    rng = np.random.default_rng(2)
    means = np.stack([np.concatenate([rng.uniform(1, 2, 100 - 12 * i),
                                      rng.uniform(-2, -1, 12 * i)]) for i in range(n)])
    shard = with_means(shard, means)
    return shard, analyze(shard, selectivity="positive", min_tokens=20)


def test_neurons_with_few_positive_means_analyse_fewer_tokens(selective):
    shard, tables = selective
    neu = tables["neurons"].set_index(["kind", "neuron"])
    for i in range(9):
        positive = 100 - 12 * i
        row = neu.loc[("neuron", i)]
        assert row["n_selected"] == positive
        assert row["n_tokens"] == max(positive, 20)
        assert row["excluded"] == (positive < 20)
        tokens = tables["tokens"].query("neuron == @i")
        assert len(tokens) == max(positive, 20)
        assert (tokens["mean_activation"] > 0).all() or positive < 20


def test_too_few_selective_tokens_is_the_exclusion_reason(selective):
    _, tables = selective
    neu = tables["neurons"]
    excluded = neu[neu["kind"] == "neuron"].query("excluded")
    assert list(excluded["neuron"]) == [7, 8]
    for reason in excluded["exclusion_reason"]:
        assert reason.startswith("too few selective core tokens")
        assert "analysis.selectivity = positive" in reason and "analysis.min_tokens = 20" in reason


def test_controls_are_built_on_the_same_selected_tokens(selective):
    shard, tables = selective
    neu = tables["neurons"].set_index(["kind", "neuron"])
    segs = tables["segments"]
    for i in range(9):
        n = neu.loc[("neuron", i), "n_tokens"]
        for kind in ("shuffled", "surrogate", "random_direction"):
            assert neu.loc[(kind, i), "n_tokens"] == n, (kind, i)
            assert neu.loc[(kind, i), "excluded"] == neu.loc[("neuron", i), "excluded"]
            assert segs.query("kind == @kind and neuron == @i and scheme == 'coarse'")[
                "size"].sum() == n
    # the tokens table lists exactly the neuron's 64 positive core tokens (the set that its
    # shuffled and surrogate controls re-rank)
    kept = set(tables["tokens"].query("neuron == 3")["token_id"])
    order = np.argsort(-shard["mean_act"][3], kind="stable")[:64]
    assert kept == set(shard["token_ids"][3][order])


def test_selectivity_none_changes_nothing(vocab):
    shard = synthetic_shard(5, planted_top=20, seed=4, embeddings=vocab)
    base = analyze(shard)["neurons"]
    same = analyze(shard, selectivity="none", min_tokens=50)["neurons"]
    assert (base["n_selected"] == 100).all()
    cols = [c for c in base.columns if base[c].dtype.kind == "f"]
    np.testing.assert_array_equal(base[cols].to_numpy(), same[cols].to_numpy())


def test_min_tokens_below_what_the_analysis_needs_is_refused(vocab):
    shard = synthetic_shard(2, planted_top=0, seed=4, embeddings=vocab)
    with pytest.raises(ValueError, match="min_tokens"):
        analyze(shard, selectivity="positive", min_tokens=5)
