"""The ablation's layer verdict: the exact sign test against brute force, its power and minimal
detectable effect against simulation, the three-way rule on planted positive, negative and null
layers, and the paper config's sample size."""

from math import comb
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from intraneuron import signtest
from intraneuron.ablation_stage import verdict_of

ROOT = Path(__file__).resolve().parents[2]
ALPHA = 0.05
P = {"alpha": ALPHA, "bootstrap": 200}


def bounds(rate: float, trials: int, tail: float = 1e-4) -> tuple[float, float]:
    """Share of `trials` a binomial count at `rate` stays within, except with prob. 2 * tail."""
    return (stats.binom.ppf(tail, trials, rate) / trials,
            stats.binom.isf(tail, trials, rate) / trials)


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_critical_count_and_minimum_match_brute_force(alpha):
    for n in range(1, 41):
        tail = [sum(comb(n, j) for j in range(k, n + 1)) / 2 ** n for k in range(n + 2)]
        want = next((k for k in range(n + 1) if tail[k] < alpha / 2), n + 1)
        assert signtest.critical_count(n, alpha) == want, n
    smallest = next(n for n in range(1, 50) if 2 * 0.5 ** n < alpha)
    assert signtest.minimum_n(alpha) == smallest
    assert signtest.critical_count(smallest - 1, alpha) == smallest  # cannot reject
    assert signtest.minimal_detectable_effect(smallest - 1, alpha) == np.inf
    assert np.isfinite(signtest.minimal_detectable_effect(smallest, alpha))


def test_two_sided_p_is_exact():
    assert signtest.two_sided_p(10, 2) == pytest.approx(
        stats.binomtest(10, 12, 0.5, "two-sided").pvalue)
    assert signtest.two_sided_p(2, 10) == signtest.two_sided_p(10, 2)
    assert signtest.two_sided_p(6, 6) == 1.0 and signtest.two_sided_p(0, 0) == 1.0
    assert signtest.counts(np.array([1.0, -2.0, 0.0, np.nan, 3.0])) == (2, 1)


@pytest.mark.parametrize("n", [12, 24, 60])
def test_minimal_detectable_effect_has_the_stated_power_in_simulation(n):
    """At the MDE, normal log ratios are found (positives >= the critical count) in 80% of
    simulated layers, within binomial error; 0.1 sd less is found clearly less often."""
    mde = signtest.minimal_detectable_effect(n, ALPHA)
    assert signtest.power(mde, n, ALPHA) == pytest.approx(0.8, abs=1e-9)
    rng = np.random.default_rng(n)
    trials = 20_000
    c = signtest.critical_count(n, ALPHA)
    for delta, want in ((mde, 0.8), (mde - 0.1, float(signtest.power(mde - 0.1, n, ALPHA)))):
        found = ((rng.normal(delta, 1.0, (trials, n)) > 0).sum(1) >= c).mean()
        lo, hi = bounds(want, trials)
        assert lo <= found <= hi, (delta, found, want)
    assert signtest.power(mde - 0.1, n, ALPHA) < 0.75


def test_the_full_rule_detects_the_mde_as_often_as_the_sign_test_says():
    """The rule's interval condition barely costs power: "supported" at the MDE in 80% of
    simulated layers (bootstrap included), within binomial error."""
    n, trials = 12, 600
    mde = signtest.minimal_detectable_effect(n, ALPHA)
    rng = np.random.default_rng(7)
    verdicts = [verdict_of(rng.normal(mde, 1.0, n), P, rng)["verdict"] for _ in range(trials)]
    lo, hi = bounds(0.8, trials)
    assert lo <= verdicts.count("supported") / trials <= hi


def simulated(shift: float, n: int, layers: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [verdict_of(rng.normal(shift, 1.0, n), P, rng)["verdict"] for _ in range(layers)]


def test_three_way_verdict_on_planted_positive_negative_and_null_layers():
    """Planted +1.5 sd: supported; -1.5 sd: opposite (the old rule said "not supported", the
    same as no evidence); null: inconclusive in at least 1 - alpha of layers, within binomial
    error."""
    n, layers = 24, 300
    power = float(signtest.power(1.5, n, ALPHA))
    for shift, word in ((1.5, "supported"), (-1.5, "opposite")):
        got = simulated(shift, n, layers, seed=int(10 * shift) + 100)
        assert got.count(word) / layers >= bounds(power, layers)[0]
        assert set(got) <= {word, "inconclusive"}
    null = simulated(0.0, n, 1000, seed=3)
    calls = null.count("supported") + null.count("opposite")
    assert calls <= stats.binom.isf(1e-4, 1000, ALPHA)
    assert null.count("inconclusive") == 1000 - calls
    assert null.count("supported") > 0 and null.count("opposite") > 0  # both tails reachable


def test_classify_states_the_rule_once():
    a = ALPHA
    assert signtest.classify(12, 10, 2, 0.1, 0.5, a) == "supported"
    assert signtest.classify(12, 10, 2, -0.1, 0.5, a) == "inconclusive"  # interval reaches 0
    assert signtest.classify(12, 9, 3, 0.1, 0.5, a) == "inconclusive"  # 9 of 12: p = 0.073
    assert signtest.classify(12, 2, 10, -0.5, -0.1, a) == "opposite"
    assert signtest.classify(12, 2, 10, -0.5, 0.1, a) == "inconclusive"
    assert signtest.classify(5, 5, 0, 0.1, 0.5, a) == "not testable"
    assert str(signtest.minimum_n(a)) in signtest.rule_text(a)


def test_paper_config_ablates_enough_neurons_for_80_percent_power_at_0_3_sd():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    alpha = config["ablation"].get("alpha", ALPHA)
    n = config["ablation"]["neurons"]
    assert n == signtest.required_n(0.3, alpha)
    assert signtest.minimal_detectable_effect(n, alpha) <= 0.3
    assert signtest.minimal_detectable_effect(n - 1, alpha) > 0.3
    assert signtest.power(0.3, n, alpha) >= 0.8


def test_binomial_interval_covers_the_rate():
    lo, hi = signtest.binomial_interval(10, 200)
    assert 0 < lo < 0.05 < hi
    assert signtest.binomial_interval(0, 200)[0] == 0.0
    assert np.isnan(signtest.binomial_interval(0, 0)[0])
