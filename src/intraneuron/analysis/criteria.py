"""The paper's claims as data: each claim is a list of criteria, each criterion a per-neuron
permutation test with a stated pass rule, judged per layer on real neurons and on every control
kind; and effect statements, layer-level medians with intervals, that describe a claim without
voting in its verdict.

Each criterion tests one statistic of the neuron's order of its core tokens twice in the same
batch: against random permutations (does it exist?) and against geometry surrogates that keep
the order's autocorrelation in the proxy space (is it beyond geometry? `geometry`). Rules of
the two levels and of the claims: `LEVEL_RULE`, `CLAIM_RULE`.
"""
from __future__ import annotations

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
    rule: str  # per-neuron pass rule; {alpha} is filled from params
    statistic: str  # the statistic's name in the analysis (`neuron.Test`s of a token set)
    column: str  # base of its columns in the neurons table: <column>_p, _geo_p, _null_rate, ...

    def rule_text(self, params: dict) -> str:
        return self.rule.format(alpha=params["alpha"])

    def passes(self, frame: pd.DataFrame, params: dict, level: str = "exists") -> np.ndarray:
        """1.0 / 0.0 per row, NaN where the statistic is undefined; `level` exists (its
        permutation p) or geometry (its geometry-surrogate p)."""
        suffix = "_p" if level == "exists" else "_geo_p"
        p = frame[self.column + suffix].to_numpy(dtype=np.float64)
        return np.where(np.isfinite(p), p < params["alpha"], np.nan)

    def null_rate(self, frame: pd.DataFrame, level: str = "exists") -> np.ndarray:
        """Per row: the realised pass rate of the test's own null rows (see rowstats)."""
        suffix = "_null_rate" if level == "exists" else "_geo_null_rate"
        return frame[self.column + suffix].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class Effect:
    """A statement about a claim measured as a layer-level effect size: the median of `column`
    over the neurons passing criterion `among` (with a bootstrap interval), compared with the
    bound `bound` (a parameter); it holds when the whole interval lies on the stated side."""

    id: str
    claim: int
    name: str
    rule: str
    column: str
    among: str
    bound: str
    below: bool


CRITERIA = [
    Criterion("1A", 1, "systematic",
              "AMI of coarse segments and clusters above its null, p < {alpha}",
              "ami_coarse", "ami_coarse"),
    Criterion("1C", 1, "concentrated at the top",
              "top fine segment more homogeneous than the line through the other fine "
              "segments predicts, p < {alpha}", "fine_top_excess", "fine_top_excess"),
    Criterion("2A", 2, "rising trend",
              "slope of coarse-segment homogeneity on activation above its null, p < {alpha}",
              "coarse_trend", "coarse_trend"),
    Criterion("2B", 2, "top most homogeneous",
              "top coarse segment's margin over the most homogeneous other segment above its "
              "null, p < {alpha}", "coarse_top_margin", "coarse_top_margin"),
    Criterion("2C", 2, "top most homogeneous, typicality removed",
              "the same margin on the double-centred similarity (each token's typicality of "
              "the core set removed), p < {alpha}", "coarse_top_margin_dc",
              "coarse_top_margin_dc"),
    Criterion("3B", 3, "clusters differ",
              "Kruskal-Wallis H of activation rank across clusters above its null, p < {alpha}",
              "kw_h", "kw_perm"),
    Criterion("3C", 3, "lower-activation clusters most distinct",
              "Spearman between cluster mean rank and size-standardised distinctness above its "
              "null, p < {alpha} (needs 3 clusters)", "distinct_rho", "distinct_rho"),
]  # fmt: skip

EFFECTS = [
    Effect("1B", 1, "weak", "median AMI of the neurons passing 1A, 95% interval below "
           "{bound}", "ami_coarse", "1A", "weak_ami_max", below=True),
    Effect("3A", 3, "interleaved", "median interleaving index of the neurons passing 1A, 95% "
           "interval at least {bound} (0 = clusters contiguous along the ranking, 1 = as mixed "
           "as chance)", "interleaving", "1A", "interleaving_min", below=False),
]  # fmt: skip

LEVEL_RULE = (
    "Per neuron, each criterion's statistic is tested against random permutations of the "
    "neuron's order (exists) and against geometry surrogates, Moran spectral randomizations of "
    "the order that keep its autocorrelation in the proxy space (beyond geometry). A criterion "
    "holds at a level when the layer's neurons pass that test more often than its realised "
    "null rate (the pass rate of the null rows themselves, averaged over the neurons; one-sided "
    "binomial test, p < alpha), beyond geometry only where it also exists. A criterion whose "
    "shuffled controls pass at a rate the realised null rate does not explain (two-sided "
    "binomial, p < 0.001) is miscalibrated and does not count. The geometry null keeps a map's "
    "smoothness only approximately, so linear read-outs of the proxy space (random-direction "
    "pseudo-neurons) go through the same geometry test in the same run: beyond geometry "
    "also needs neurons to pass it more often than they do (one-sided Fisher, p < alpha), and "
    "a criterion is not identifiable with this proxy when even a layer whose neurons all "
    "passed could not beat them, or when the power check (blocks of pseudo-neurons over the "
    "same vocabulary and proxy with a proxy neighbourhood planted on top) finds it beyond "
    "geometry in fewer than analysis.min_power of its blocks."
)
CLAIM_RULE = (
    "At each level a claim is judged on its counting criteria with Holm's correction across "
    "them: not supported unless at least one holds at Holm-adjusted p < alpha; then supported "
    "when every one holds at p < alpha, mixed otherwise. Not testable when none of its "
    "criteria can be judged; not identifiable with this proxy (beyond geometry) when none of "
    "its criteria is. Effect statements (1B, 3A) are reported beside the claim and do not vote."
)
