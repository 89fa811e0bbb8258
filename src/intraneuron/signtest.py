"""The ablation's layer verdict: an exact sign test over neurons, its power, and the three-way rule.

Why a sign test: the per-neuron log ratios of one layer come from very different neurons (their
spread is not known in advance and is heavy-tailed in practice), and the null "top and lower
segments are exchangeable" makes each ratio's sign a fair coin whatever its size. The verdict
must tell "no evidence" from "evidence in the opposite direction", so the test is two-sided
(each direction at alpha / 2): under that null, "supported" and "opposite" together come out at
most alpha of the time.

The rule, stated once (`classify`, in words in `RULE`): *supported* when more neurons are
positive than chance allows (one-sided exact sign test p < alpha / 2) and the bootstrap
(1 - alpha) interval of the median log ratio lies above 0; *opposite* when more are negative
(p < alpha / 2) and the interval lies below 0; *inconclusive* otherwise; *not testable* when the
sample is too small for the sign test ever to reach its level.

What the verdict could have seen: the minimal detectable effect, the shift of a normal
distribution of log ratios (in units of its sd) that the sign test finds with 80% power at the
sample size used. Under that model a neuron is positive with probability Phi(delta), so the
power is a binomial tail, and its inverse is exact (a regularised incomplete beta inverse).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

RULE = ("supported when more sampled neurons have log(top / lower effect per unit removed) > 0 "
        "than chance allows (exact sign test, two-sided at {alpha}: one-sided p < {half}) and "
        "the bootstrap {level}% interval of their median lies above 0; opposite when more have "
        "it < 0 (one-sided p < {half}) and the interval lies below 0; inconclusive otherwise; "
        "not testable when fewer than {minimum} neurons have a ratio (the sign test cannot "
        "reach its level)")


def rule_text(alpha: float) -> str:
    """`RULE` at a given alpha."""
    return RULE.format(alpha=f"{alpha:g}", half=f"{alpha / 2:g}",
                       level=f"{100 * (1 - alpha):g}", minimum=minimum_n(alpha))


def counts(x: np.ndarray) -> tuple[int, int]:
    """(positive, negative) values among the finite ones; zeros count for neither side."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return int((x > 0).sum()), int((x < 0).sum())


def one_sided_p(k, n):
    """P(Binomial(n, 1/2) >= k): the exact p of k or more of n signs on one side."""
    return stats.binom.sf(np.asarray(k) - 1, n, 0.5)


def two_sided_p(positive: int, negative: int) -> float:
    """Exact two-sided sign test p (twice the smaller tail, at most 1; 1 without values)."""
    n = positive + negative
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * one_sided_p(max(positive, negative), n)))


def critical_count(n: int, alpha: float) -> int:
    """Fewest of n signs on one side for p < alpha / 2; n + 1 when even n of n is not enough."""
    if n <= 0:
        return 1
    k = np.arange(n + 1)
    ok = np.flatnonzero(one_sided_p(k, n) < alpha / 2)
    return int(ok[0]) if ok.size else n + 1


def minimum_n(alpha: float) -> int:
    """Fewest neurons with which the two-sided sign test can reach its level at all."""
    return int(np.floor(np.log2(2 / alpha))) + 1  # 2 * 0.5 ** n < alpha


def power(delta, n: int, alpha: float):
    """Probability that the sign test finds a positive effect ("supported"'s sign test half)
    when the n log ratios are normal with mean `delta` sd: P(Binomial(n, Phi(delta)) >= c)."""
    c = critical_count(n, alpha)
    if c > n:
        return np.zeros_like(np.asarray(delta, dtype=np.float64))
    return stats.binom.sf(c - 1, n, stats.norm.cdf(delta))


def minimal_detectable_effect(n: int, alpha: float, target: float = 0.8) -> float:
    """Smallest normal shift (sd units) the two-sided sign test on n neurons finds with
    probability `target`; inf when n is too small for it ever to reject. Exact: the binomial
    tail P(Bin(n, q) >= c) is the regularised incomplete beta I_q(c, n - c + 1), inverted."""
    c = critical_count(n, alpha)
    if c > n:
        return float("inf")
    q = special.betaincinv(c, n - c + 1, target)
    return float(stats.norm.ppf(q))


def required_n(effect: float, alpha: float, target: float = 0.8, limit: int = 100_000) -> int:
    """Fewest neurons whose minimal detectable effect is at most `effect` sd (the sample size
    rule of config/config.yaml's ablation.neurons)."""
    for n in range(minimum_n(alpha), limit + 1):
        if minimal_detectable_effect(n, alpha, target) <= effect:
            return n
    raise ValueError(f"no sample of at most {limit} neurons detects {effect} sd")


def classify(n: int, positive: int, negative: int, lo: float, hi: float, alpha: float) -> str:
    """The three-way verdict (plus not testable); see the module docstring and `RULE`."""
    if n < minimum_n(alpha):
        return "not testable"
    if one_sided_p(positive, positive + negative) < alpha / 2 and lo > 0:
        return "supported"
    if one_sided_p(negative, positive + negative) < alpha / 2 and hi < 0:
        return "opposite"
    return "inconclusive"


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a rate of k in n (NaN without trials)."""
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(level, "exact")
    return float(ci.low), float(ci.high)
