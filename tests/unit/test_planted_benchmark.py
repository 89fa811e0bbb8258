"""The planted benchmark's pseudo-neurons, and the rules on them: null kinds (noise, noise of
means, linear read-outs, GELU + noise) never reach beyond geometry more often than alpha allows,
at the criterion and at the claim level, and a strongly planted category does."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intraneuron.analysis import analyze_shard, evaluate_claims, evaluate_criteria
from intraneuron.analysis.criteria import CRITERIA
from intraneuron.analysis.params import resolve_params
from intraneuron.analysis.planted import (
    NULL_KINDS,
    PLANTED_KINDS,
    Vocabulary,
    planted_activations,
    power_table,
    pseudo_shard,
)
from intraneuron.analysis.synthetic import category_embeddings

PARAMS = {"permutations": 100, "geometry_surrogates": 100, "random_direction_every": 1,
          "bootstrap": 200}  # fmt: skip
ALPHA = 0.05
NOT_REACHED = ["not supported", "not identifiable with this proxy"]


@pytest.fixture(scope="module")
def vocab():
    rng = np.random.default_rng(7)
    vectors, category = category_embeddings(30, 40, 48, 0.7, rng)
    counts = rng.integers(20, 2000, size=category.size)
    return Vocabulary(vectors, np.arange(category.size), counts, category), vectors


def blocks_neurons(vocab, kind, block, strength=1.0, n=24):
    """The neurons table of one block of pseudo-neurons, analysed as layer `block`."""
    voc, vectors = vocab
    shard = pseudo_shard(voc, kind, n, 100, seed=[len(kind), block], strength=strength)
    eligible = shard.pop("eligible")
    return analyze_shard(block, params=PARAMS, embeddings=vectors, eligible=eligible,
                         eligible_tokens=[str(t) for t in eligible], **shard)["neurons"]


def blocks(vocab, kind, n_blocks, strength=1.0, n=24):
    frames = [blocks_neurons(vocab, kind, b, strength, n) for b in range(n_blocks)]
    criteria = evaluate_criteria(pd.concat(frames), PARAMS)
    return criteria[criteria["role"] == "test"], evaluate_claims(criteria, PARAMS)


def test_pseudo_neurons_are_their_top_k_highest_first(vocab):
    voc, _ = vocab
    for kind in (*NULL_KINDS, *PLANTED_KINDS):
        shard = pseudo_shard(voc, kind, 3, 100, seed=1)
        assert shard["token_ids"].shape == (3, 100)
        assert np.all(np.diff(shard["mean_act"], axis=1) <= 0), kind
        assert all(len(set(row)) == 100 for row in shard["token_ids"])


def test_planted_strength_is_the_share_of_the_top_taken_by_the_category(vocab):
    voc, _ = vocab
    for strength in (1 / 3, 1.0):
        act, members = planted_activations(voc, "category_top", strength, 100, 24,
                                           np.random.default_rng(3))  # fmt: skip
        top = np.argsort(-act)[:24]
        assert np.isin(top, members).sum() == round(strength * 24)
        assert np.all(act[members][:round(strength * 24)] > np.sort(act)[-25])


def test_noise_of_means_selects_rare_types(vocab):
    voc, _ = vocab
    shard = pseudo_shard(voc, "noise_of_means", 20, 100, seed=2)
    chosen = voc.counts[np.searchsorted(voc.eligible, shard["token_ids"].ravel())]
    assert np.median(chosen) < 0.5 * np.median(voc.counts)


@pytest.mark.parametrize("kind", NULL_KINDS)
def test_null_kinds_never_reach_beyond_geometry_more_than_alpha(vocab, kind):
    """Each criterion of each block, and each claim of each block, is a test at alpha: on
    pseudo-neurons without a category beyond geometry they hold at most that often."""
    criteria, claims = blocks(vocab, kind, 5)
    assert criteria["beyond_geometry"].sum() <= stats.binom.ppf(0.999, len(criteria), ALPHA)
    reached = (~claims["verdict_beyond_geometry"].isin(NOT_REACHED)).sum()
    assert reached <= stats.binom.ppf(0.999, len(claims), ALPHA)
    if kind == "noise":  # and without geometry, nothing exists either
        assert criteria["exists"].sum() <= stats.binom.ppf(0.999, len(criteria), ALPHA)


def test_a_strongly_planted_category_reaches_beyond_geometry(vocab):
    criteria, claims = blocks(vocab, "category_top", 3)
    by = criteria.set_index("criterion")
    assert by.loc["2C", "beyond_geometry"].all() and by.loc["1A", "beyond_geometry"].all()
    assert claims.set_index("claim").loc[2, "verdict_beyond_geometry"].isin(
        ["supported", "mixed"]).all()


def test_power_check_finds_a_planted_neighbourhood_and_no_smooth_one(vocab):
    """The workflow's power check: blocks with a proxy neighbourhood planted on top are found
    beyond geometry by the relation criteria; blocks of linear read-outs are not."""
    voc, vectors = vocab
    params = resolve_params({**PARAMS, "power_blocks": 2, "power_block_size": 24})
    table = power_table(voc, vectors, params, 100).set_index("criterion")
    assert list(table.index) == [c.id for c in CRITERIA]
    assert (table.loc[["1A", "2C"], "planted"] == 1.0).all()
    assert table["smooth"].max() <= 0.5 and table["smooth"].mean() < 0.1
    assert (table["n_blocks"] == 2).all() and (table["block_size"] == 24).all()


def test_a_criterion_the_power_check_cannot_find_is_not_identifiable(vocab):
    """Where the power check finds no planted category, the beyond-geometry level says 'not
    identifiable with this proxy', never 'not supported'; with power it is judged."""
    neurons = pd.concat([blocks_neurons(vocab, "category_top", b) for b in range(2)])
    found = pd.DataFrame({"criterion": [c.id for c in CRITERIA], "planted": 1.0})
    lost = found.assign(planted=np.where(found["criterion"].str.startswith("3"), 0.0, 1.0))
    with_power = evaluate_claims(evaluate_criteria(neurons, PARAMS, found), PARAMS)
    without = evaluate_claims(evaluate_criteria(neurons, PARAMS, lost), PARAMS)
    claim3 = without[without["claim"] == 3]
    assert claim3["verdict_beyond_geometry"].eq("not identifiable with this proxy").all()
    assert with_power[with_power["claim"] == 3]["verdict_beyond_geometry"].isin(
        ["supported", "mixed"]).all()
    pd.testing.assert_series_equal(with_power["verdict_exists"], without["verdict_exists"])
