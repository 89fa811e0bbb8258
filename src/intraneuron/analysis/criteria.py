"""The paper's claims as data: each claim is a list of criteria, each criterion a per-neuron
test with a stated pass rule, judged per layer on real neurons and on every control kind.

A criterion holds at level **exists** when real neurons pass it more often than alpha (the
rate at which a calibrated per-neuron test passes on noise), and **beyond geometry** when, in
addition, real neurons pass it more often than their own linear surrogates and than
random-direction pseudo-neurons. Every per-neuron test is a permutation test over the same
rank permutations, so its pass rate on shuffled controls is alpha up to binomial error: the
calibration columns of the criteria table measure that in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

CLAIM_TEXT = {
    1: "Activation segments and categorical clusters are related systematically but weakly, "
    "mainly at the very highest activations.",
    2: "Categorical homogeneity rises with activation: the top activation segment is the most "
    "homogeneous.",
    3: "Activation segments interleave across categorical clusters (no one-to-one mapping); "
    "activation differs between clusters, particularly for clusters with lower mean activation.",
}


@dataclass(frozen=True)
class Criterion:
    id: str
    claim: int
    name: str
    rule: str  # per-neuron pass rule; {alpha}, {weak}, {interleaving} are filled from params
    test: Callable[[pd.DataFrame, dict], np.ndarray]  # -> bool, or NaN when undefined

    def rule_text(self, params: dict) -> str:
        return self.rule.format(alpha=params["alpha"], weak=params["weak_ami_max"],
                                interleaving=params["interleaving_min"])

    def passes(self, frame: pd.DataFrame, params: dict) -> np.ndarray:
        """1.0 / 0.0 per row, NaN where the statistic is undefined."""
        return np.asarray(self.test(frame, params), dtype=np.float64)


def _p_below(column: str) -> Callable[[pd.DataFrame, dict], np.ndarray]:
    def test(frame: pd.DataFrame, params: dict) -> np.ndarray:
        p = frame[column].to_numpy(dtype=np.float64)
        return np.where(np.isfinite(p), p < params["alpha"], np.nan)

    return test


def _related_and(column: str, key: str, below: bool) -> Callable[[pd.DataFrame, dict], np.ndarray]:
    """Related (AMI above chance) and the effect `column` below / at least params[key]."""

    def test(frame: pd.DataFrame, params: dict) -> np.ndarray:
        p = frame["ami_coarse_p"].to_numpy(dtype=np.float64)
        x = frame[column].to_numpy(dtype=np.float64)
        bound = params[key]
        side = x < bound if below else x >= bound
        return np.where(np.isfinite(p) & np.isfinite(x), (p < params["alpha"]) & side, np.nan)

    return test


CRITERIA = [
    Criterion("1A", 1, "systematic",
              "AMI of coarse segments and clusters above its permutation null, p < {alpha}",
              _p_below("ami_coarse_p")),
    Criterion("1B", 1, "weak",
              "related (1A) and AMI below {weak}",
              _related_and("ami_coarse", "weak_ami_max", below=True)),
    Criterion("1C", 1, "concentrated at the top",
              "top fine segment more homogeneous than the line through the other fine "
              "segments predicts, permutation p < {alpha}",
              _p_below("fine_top_excess_p")),
    Criterion("2A", 2, "rising trend",
              "slope of coarse-segment homogeneity on activation above its permutation null, "
              "p < {alpha}", _p_below("coarse_trend_p")),
    Criterion("2B", 2, "top most homogeneous",
              "top coarse segment's margin over the most homogeneous other segment above its "
              "permutation null, p < {alpha}", _p_below("coarse_top_margin_p")),
    Criterion("2C", 2, "top most homogeneous, typicality removed",
              "the same margin on the double-centred similarity (each token's typicality of "
              "the core set removed), p < {alpha}", _p_below("coarse_top_margin_dc_p")),
    Criterion("3A", 3, "interleaved",
              "related (1A) and interleaving index at least {interleaving} (clusters share "
              "activation ranges rather than mapping one-to-one onto segments)",
              _related_and("interleaving", "interleaving_min", below=False)),
    Criterion("3B", 3, "clusters differ",
              "Kruskal-Wallis of activation rank across clusters, permutation p < {alpha}",
              _p_below("kw_perm_p")),
    Criterion("3C", 3, "lower-activation clusters most distinct",
              "Spearman between cluster mean rank and size-standardised distinctness above its "
              "permutation null, p < {alpha} (needs 3 clusters)", _p_below("distinct_rho_p")),
]  # fmt: skip

LEVEL_RULE = (
    "A criterion holds at level exists when real neurons pass it more often than alpha "
    "(one-sided binomial test, p < alpha), and beyond geometry when, in addition, they pass it "
    "more often than their own linear surrogates (exact one-sided test on discordant pairs) "
    "and than random-direction pseudo-neurons (one-sided Fisher test), both p < alpha. At each "
    "level a claim is supported when all its testable criteria hold, not supported when none "
    "does, mixed otherwise, and not testable when none of its criteria can be judged."
)
