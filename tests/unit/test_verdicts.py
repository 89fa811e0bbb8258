"""Verdicts that can fail: every criterion is calibrated on noise, geometry alone never reaches
"beyond geometry", a category no read-out reproduces does, and ties decide nothing."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intraneuron.analysis import (
    add_layer_fdr,
    analyze_shard,
    evaluate_claims,
    evaluate_criteria,
)
from intraneuron.analysis.claims import _criterion_row
from intraneuron.analysis.criteria import CRITERIA, Criterion
from intraneuron.analysis.synthetic import (
    category_embeddings,
    readout_shard,
    shell_embeddings,
    shell_shard,
    synthetic_shard,
)

ALPHA = 0.05
PARAMS = {"permutations": 200, "cluster_permutations": 100, "random_direction_every": 1}
CONJUNCTIONS = {"1B", "3A"}  # related (1A) and a bound: pass at most as often as 1A


def analyze(shard, layer=0, **params):
    shard = dict(shard)
    shard.pop("category")
    return analyze_shard(layer, params={**PARAMS, **params}, **shard)


def upper_bound(n, rate=ALPHA):
    return stats.binom.ppf(0.999, n, rate)


@pytest.fixture(scope="module")
def noise():
    """A layer of neurons whose activation ignores category: every criterion is noise."""
    vocab = category_embeddings(40, 60, 64, 0.6, np.random.default_rng(100))
    neurons = analyze(synthetic_shard(300, planted_top=0, seed=8, embeddings=vocab))["neurons"]
    return neurons, evaluate_criteria(add_layer_fdr(neurons), PARAMS)


@pytest.mark.parametrize("criterion", [c.id for c in CRITERIA])
def test_every_criterion_is_calibrated_on_noise(noise, criterion):
    """Neurons whose activation ignores category, and the shuffled controls of any neuron,
    pass each criterion at rate alpha up to binomial error."""
    neurons, table = noise
    row = table.set_index("criterion").loc[criterion]
    for kind in ("neuron", "shuffled"):
        n, rate = row[f"n_{kind}"], row[f"pass_{kind}"]
        assert n > 100, (criterion, kind)
        passed = round(rate * n)
        lo = 0 if criterion in CONJUNCTIONS else stats.binom.ppf(0.001, n, ALPHA)
        assert lo <= passed <= upper_bound(n), (criterion, kind, passed, n)
    assert row["noise_excess_p"] > 0.001
    assert not row["beyond_geometry"]


def test_noise_layer_supports_no_claim(noise):
    _, table = noise
    claims = evaluate_claims(table, PARAMS)
    assert set(claims["verdict_beyond_geometry"]) <= {"not supported", "mixed"}
    assert (claims["n_exist"] <= 1).all()


def test_a_criterion_that_passes_on_noise_is_flagged(noise):
    """The old claim-3A rule (median interleaving at least 0.5, no null) held on pure noise:
    the calibration columns catch such a criterion."""
    neurons, _ = noise
    lax = Criterion("3A-old", 3, "interleaved without a null", "interleaving >= 0.5",
                    lambda f, p: (f["interleaving"] >= 0.5).to_numpy())
    row = _criterion_row(lax, neurons, 0, {**PARAMS, "alpha": ALPHA, "seed": 0,
                                           "bootstrap": 200, "weak_ami_max": 0.1,
                                           "interleaving_min": 0.5}, np.random.default_rng(0))
    assert row["pass_shuffled"] > 0.9 and row["noise_excess_p"] < 1e-10


def test_random_readouts_never_reach_beyond_geometry():
    """Pseudo-neurons that are exact linear read-outs of the embeddings: their relations
    exist, but no criterion reaches beyond geometry more often than alpha allows."""
    vocab = category_embeddings(40, 60, 64, 0.6, np.random.default_rng(3))
    frames = [analyze(readout_shard(60, vocab, seed=s), layer=s)["neurons"] for s in range(4)]
    table = evaluate_criteria(add_layer_fdr(pd.concat(frames)), PARAMS)
    assert table["exists"].sum() >= 8  # geometry alone gives real, existing relations
    judged = len(table)
    assert table["beyond_geometry"].sum() <= upper_bound(judged), table[
        ["criterion", "layer", "beyond_geometry"]]


@pytest.fixture(scope="module")
def shell_tables():
    vocab = shell_embeddings(rng=np.random.default_rng(5))
    planted = analyze(shell_shard(60, vocab, seed=1), layer=0)["neurons"]
    linear = analyze(readout_shard(60, vocab, seed=2), layer=1)["neurons"]
    table = evaluate_criteria(add_layer_fdr(pd.concat([planted, linear])), PARAMS)
    return table.set_index(["criterion", "layer"]), evaluate_claims(table, PARAMS).set_index(
        ["claim", "layer"])


def test_category_no_readout_reproduces_reaches_beyond_geometry(shell_tables):
    """Top segment = a category enclosed by the others in embedding space: no linear read-out
    puts it on top, so neurons beat both geometry controls."""
    criteria, claims = shell_tables
    for criterion in ("2A", "2B"):
        row = criteria.loc[(criterion, 0)]
        assert row["exists"] and row["beyond_geometry"], criterion
        assert row["pass_surrogate"] < 0.2 < 0.9 < row["pass_neuron"]
    assert claims.loc[(2, 0), "verdict_beyond_geometry"] in ("supported", "mixed")


def test_planted_linear_readout_reaches_exists_only(shell_tables):
    criteria, claims = shell_tables
    layer1 = criteria.xs(1, level="layer")
    assert layer1["exists"].any() and not layer1["beyond_geometry"].any()
    assert claims.loc[(2, 1), "verdict_exists"] == "supported"
    assert claims.loc[(2, 1), "verdict_beyond_geometry"] == "not supported"


def tied_shard():
    vocab = category_embeddings(20, 30, 32, 0.6, np.random.default_rng(1))
    shard = synthetic_shard(6, planted_top=25, seed=2, embeddings=vocab)
    shard["mean_act"] = shard["mean_act"].astype(np.float64)
    shard["mean_act"][0] = 0.0  # a dead neuron: every core token at exactly 0
    shard["mean_act"][1, 10:60] = shard["mean_act"][1, 10]  # half of its tokens tied
    return shard


def test_tied_neurons_are_excluded_and_counted():
    tables = analyze(tied_shard())
    neu = tables["neurons"]
    real = neu[neu["kind"] == "neuron"].set_index("neuron")
    assert real.loc[0, "excluded"] and real.loc[1, "excluded"]
    assert real.loc[0, "tied_share"] == 1.0 and "ties" in real.loc[0, "exclusion_reason"]
    assert not real.loc[2:, "excluded"].any()
    # controls of an excluded neuron are excluded with it
    assert neu[(neu["neuron"] == 0) & (neu["kind"] != "random_direction")]["excluded"].all()
    table = evaluate_criteria(add_layer_fdr(neu), PARAMS)
    assert (table["n_neuron"] <= 4).all()


def test_ties_are_broken_at_random_not_by_token_id():
    shard = tied_shard()
    orders = []
    for seed in (0, 1):
        tok = analyze(shard, seed=seed)["tokens"]
        orders.append(tok[tok["neuron"] == 0]["token_id"].to_numpy())
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], np.sort(orders[0]))


def test_boundary_ties_count_towards_exclusion():
    """A last core token that ties with types left outside the core set was chosen by the tie
    rule: it counts as tied."""
    shard = tied_shard()
    shard.pop("category")
    params = {**PARAMS, "max_tied_share": 0.005}
    ties = np.zeros(6, dtype=np.int64)

    def row(boundary):
        neu = analyze_shard(0, params=params, boundary_ties=boundary, **shard)["neurons"]
        return neu[(neu["kind"] == "neuron") & (neu["neuron"] == 3)].iloc[0]

    assert row(ties)["tied_share"] == 0.0 and not row(ties)["excluded"]
    ties[3] = 15
    assert row(ties)["tied_share"] == pytest.approx(0.01) and row(ties)["excluded"]
