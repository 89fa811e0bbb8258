"""Planted structure is found, its absence is not: synthetic neurons with known ground truth."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intraneuron.analysis import (
    add_layer_fdr,
    analyze_shard,
    evaluate_claims,
    evaluate_criteria,
    summarize_layers,
)
from intraneuron.analysis.columns import FDR_COLUMNS
from intraneuron.analysis.synthetic import category_embeddings, synthetic_shard


def run(shard, layer=0, **params):
    shard = dict(shard)
    shard.pop("category")
    tables = analyze_shard(layer, params={**params}, **shard)
    return tables


def real(frame):
    return frame[frame["kind"] == "neuron"]


@pytest.fixture(scope="module")
def vocab():
    return category_embeddings(40, 60, 64, 0.6, np.random.default_rng(100))


@pytest.fixture(scope="module")
def null_tables(vocab):
    # a null layer; any fixed seed gives a false positive layer-level criterion with
    # probability about alpha per criterion: this one happens to give none
    shard = synthetic_shard(400, planted_top=0, seed=8, embeddings=vocab)
    return run(shard, permutations=400)


def test_planted_top_category_is_detected(vocab):
    shard = synthetic_shard(6, planted_top=25, seed=1, embeddings=vocab)
    tables = run(shard, permutations=500)
    neu = real(tables["neurons"])
    assert (neu["top_coarse_z"] > 8).all()
    assert (neu["top_coarse_p"] == 1 / 501).all()
    assert (neu["coarse_trend"] > 0).all() and (neu["coarse_trend_p"] < 0.01).all()
    assert (neu["ami_coarse_p"] < 0.01).all() and (neu["kw_p"] < 1e-4).all()
    assert (neu["coarse_top_margin_p"] < 0.01).all()
    segs = real(tables["segments"])
    coarse = segs[segs["scheme"] == "coarse"]
    lower = coarse[coarse["segment"] > 0]
    assert (lower["z"] < 4).all()
    # the top segment is one cluster: pure, and that cluster is the most activating
    top = coarse[coarse["segment"] == 0]
    assert (top["purity"] == 1).all() and (top["dominant_cluster"] == 0).all()
    tok = tables["tokens"]
    top_tokens = tok[tok["rank"] < 25]
    category = shard["category"][top_tokens["token_id"].to_numpy()]
    per_neuron = top_tokens.assign(cat=category).groupby("neuron")["cat"].nunique()
    assert (per_neuron == 1).all()


def test_independent_activation_is_not_detected(null_tables):
    neu = real(null_tables["neurons"]).head(40)
    assert neu["top_coarse_z"].abs().median() < 1.5
    assert neu["coarse_trend_p"].median() > 0.2


@pytest.mark.parametrize("column", FDR_COLUMNS)
def test_null_rejection_rate_within_binomial_bounds(null_tables, column):
    p = real(null_tables["neurons"])[column].to_numpy()
    lo, hi = stats.binom.interval(0.999, p.size, 0.05)
    assert lo <= np.sum(p < 0.05) <= hi, f"{column}: {np.sum(p < 0.05)} of {p.size}"


def test_null_segment_p_values_within_binomial_bounds(null_tables):
    segs = real(null_tables["segments"])
    for (scheme, segment), grp in segs.groupby(["scheme", "segment"]):
        p = grp["p"].to_numpy()
        lo, hi = stats.binom.interval(0.999, p.size, 0.05)
        assert lo <= np.sum(p < 0.05) <= hi, (scheme, segment)


def test_null_mean_matches_analytic_expectation(null_tables):
    """E[homogeneity of a random segment] = mean off-diagonal similarity of the neuron."""
    neu = real(null_tables["neurons"]).set_index("neuron")
    segs = real(null_tables["segments"])
    expected = neu.loc[segs["neuron"], "mean_similarity"].to_numpy()
    # standard error of the null mean over 400 permutations is null_sd / 20
    tol = 5 * segs["null_sd"].to_numpy() / np.sqrt(400)
    assert np.all(np.abs(segs["null_mean"].to_numpy() - expected) < tol)


def test_layer_claims_on_planted_and_null_layers(vocab, null_tables):
    # paper-like layer: only the very top (first decile) is categorical, the rest mixed
    planted = run(synthetic_shard(60, planted_top=10, seed=3, embeddings=vocab), layer=1,
                  permutations=200)  # fmt: skip
    strong = run(synthetic_shard(30, planted_top=25, seed=4, embeddings=vocab), layer=2,
                 permutations=200)  # fmt: skip
    frames = {
        name: pd.concat([null_tables[name], planted[name], strong[name]], ignore_index=True)
        for name in ("neurons", "segments")
    }
    neurons = add_layer_fdr(frames["neurons"])
    layers = summarize_layers(neurons, frames["segments"])
    criteria = evaluate_criteria(neurons, {"weak_ami_max": 0.15})
    claims = evaluate_claims(criteria).set_index(["claim", "layer"])
    # null layer: nothing exists
    for claim in (1, 2, 3):
        assert claims.loc[(claim, 0), "verdict_exists"] == "not supported"
    # top-decile layer: a relation concentrated at the top
    crit = criteria.set_index(["criterion", "layer"])
    assert crit.loc[("1A", 1), "exists"] and crit.loc[("1C", 1), "exists"]
    # top-quartile layer: homogeneity rises with activation; strong, so not "weak"
    assert claims.loc[(2, 2), "verdict_exists"] == "supported"
    assert crit.loc[("1B", 2), "role"] == "effect" and not crit.loc[("1B", 2), "effect_holds"]
    assert crit.loc[("1B", 2), "effect_lo"] > 0.15
    assert "1B weak" in claims.loc[(1, 2), "effects"] and "does not hold" in claims.loc[
        (1, 2), "effects"]
    row = layers[(layers["layer"] == 2) & (layers["kind"] == "neuron")].iloc[0]
    assert row["coarse_homogeneity_0"] > row["coarse_homogeneity_1"]
    assert crit.loc[("3B", 2), "pass_neuron"] == 1.0
