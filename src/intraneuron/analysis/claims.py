"""The paper's three claims, judged per layer by stated, deterministic rules.

Each claim is split into criteria read from the layer summary (`summarize_layers`); a criterion
based on a test holds when its p-value is below alpha (the tests are one-sided in the claimed
direction, so significance implies the direction); a NaN p-value (too little data) never
holds. The verdict combines the criteria as stated in the row's `rule` column.

claims table columns: claim (1, 2, 3), claim_text, layer, statistic (what `value` is), value,
null_value (its value under the null), p (of the claim's primary test), verdict ("supported",
"mixed", "not supported"), rule, criteria (each criterion with its numbers and whether it held),
n_criteria_held, n_criteria.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .params import resolve_params

COLUMNS = ["claim", "claim_text", "layer", "statistic", "value", "null_value", "p", "verdict",
           "rule", "criteria", "n_criteria_held", "n_criteria"]  # fmt: skip

CLAIM_TEXT = {
    1: "Activation segments and categorical clusters are related systematically but weakly, "
    "mainly at the very highest activations.",
    2: "Categorical homogeneity rises with activation: the top activation segment is the most "
    "homogeneous.",
    3: "Activation segments interleave across categorical clusters (no one-to-one mapping); "
    "activation differs between clusters, particularly for clusters with lower mean activation.",
}


def _sig(p: float, alpha: float) -> bool:
    return bool(np.isfinite(p) and p < alpha)


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.4g}"


def _criterion(label: str, held: bool, text: str) -> tuple[str, bool]:
    return f"{label} [{'holds' if held else 'fails'}] {text}", held


def _claim1(r: pd.Series, p: dict) -> dict:
    a, w = p["alpha"], p["weak_ami_max"]
    crit = [
        _criterion("A systematic:", _sig(r["ami_coarse_binom_p"], a),
                   f"share of neurons with AMI above its permutation null (p < {a}) = "
                   f"{_fmt(r['ami_coarse_frac_p'])} (FDR: {_fmt(r['ami_coarse_frac_q'])}), "
                   f"binomial p = {_fmt(r['ami_coarse_binom_p'])}"),
        _criterion("B weak:", bool(np.isfinite(r["ami_coarse_median"])
                                   and r["ami_coarse_median"] < w),
                   f"median AMI = {_fmt(r['ami_coarse_median'])} (null "
                   f"{_fmt(r['ami_coarse_null_mean_median'])}; weak if < {w})"),
        _criterion("C highest activations:", _sig(r["fine_top_position_p"], a),
                   f"mean position of the top fine segment among fine segments by homogeneity "
                   f"= {_fmt(r['fine_top_position_mean'])} (null 0.5), Wilcoxon p = "
                   f"{_fmt(r['fine_top_position_p'])}; top fine segment most homogeneous in "
                   f"{_fmt(r['fine_top_is_max_frac'])} of neurons"),
    ]  # fmt: skip
    held = [h for _, h in crit]
    verdict = "not supported" if not held[0] else ("supported" if all(held) else "mixed")
    return {
        "statistic": f"share of neurons with AMI(coarse segments, clusters) permutation p < {a}",
        "value": r["ami_coarse_frac_p"],
        "null_value": a,
        "p": r["ami_coarse_binom_p"],
        "verdict": verdict,
        "rule": (
            f"A: one-sided binomial test that more than {a} of neurons have AMI permutation "
            f"p < {a}, p < {a}; B: median AMI < {w}; C: Wilcoxon signed-rank (one-sided) over "
            f"neurons of the top fine segment's position among fine segments by homogeneity "
            f"minus 0.5, p < {a}. not supported if A fails; supported if A, B and C hold; "
            "otherwise mixed."
        ),
        "criteria": crit,
    }


def _claim2(r: pd.Series, p: dict) -> dict:
    a = p["alpha"]
    g = p["n_segments"]
    crit = [
        _criterion("A rising trend:", _sig(r["coarse_page_p"], a),
                   f"Page L = {_fmt(r['coarse_page_l'])} (null {_fmt(r['coarse_page_l_null'])}), "
                   f"p = {_fmt(r['coarse_page_p'])}"),
        _criterion("B top most homogeneous:", _sig(r["coarse_top_is_max_p"], a),
                   f"share of neurons whose top coarse segment is the most homogeneous = "
                   f"{_fmt(r['coarse_top_is_max_frac'])} (null {_fmt(1 / g)}), binomial p = "
                   f"{_fmt(r['coarse_top_is_max_p'])}"),
    ]  # fmt: skip
    n_held = sum(h for _, h in crit)
    verdict = {2: "supported", 1: "mixed", 0: "not supported"}[n_held]
    return {
        "statistic": "Page L (coarse segment homogeneity, predicted top > ... > bottom)",
        "value": r["coarse_page_l"],
        "null_value": r["coarse_page_l_null"],
        "p": r["coarse_page_p"],
        "verdict": verdict,
        "rule": (
            f"A: Page's trend test over neurons of coarse-segment homogeneity, predicted to "
            f"decrease from the top segment, p < {a}; B: one-sided binomial test that the top "
            f"coarse segment is the most homogeneous in more than 1/{g} of neurons, p < {a}. "
            "supported if A and B hold; mixed if one holds; not supported if neither."
        ),
        "criteria": crit,
    }


def _claim3(r: pd.Series, p: dict) -> dict:
    a, m = p["alpha"], p["interleaving_min"]
    crit = [
        _criterion("A interleaved:", bool(np.isfinite(r["interleaving_median"])
                                          and r["interleaving_median"] >= m),
                   f"median interleaving index = {_fmt(r['interleaving_median'])} (>= {m}); "
                   f"median share of cluster pairs with overlapping activation ranges = "
                   f"{_fmt(r['range_overlap_frac_median'])}"),
        _criterion("B clusters differ:", _sig(r["kw_binom_p"], a),
                   f"share of neurons with Kruskal-Wallis p < {a} = {_fmt(r['kw_frac_p'])} "
                   f"(after FDR {_fmt(r['kw_frac_q'])}), binomial p = {_fmt(r['kw_binom_p'])}"),
        _criterion("C low-activation clusters most distinct:",
                   _sig(r["act_distinct_wilcoxon_p"], a),
                   f"median Spearman(cluster mean activation, distinctness) = "
                   f"{_fmt(r['act_distinct_rho_median'])} over {int(r['act_distinct_n'])} "
                   f"neurons, Wilcoxon p = {_fmt(r['act_distinct_wilcoxon_p'])}"),
    ]  # fmt: skip
    n_held = sum(h for _, h in crit)
    verdict = "supported" if n_held == 3 else ("not supported" if n_held == 0 else "mixed")
    return {
        "statistic": f"share of neurons with Kruskal-Wallis p < {a} (activation across clusters)",
        "value": r["kw_frac_p"],
        "null_value": a,
        "p": r["kw_binom_p"],
        "verdict": verdict,
        "rule": (
            f"A: median interleaving index (runs - c) / (null runs - c) >= {m}; B: one-sided "
            f"binomial test that more than {a} of neurons have Kruskal-Wallis p < {a}, p < {a}; "
            f"C: Wilcoxon signed-rank (one-sided, < 0) of per-neuron Spearman between cluster "
            f"mean activation and distinctness, p < {a}. supported if A, B and C hold; "
            "not supported if none holds; otherwise mixed."
        ),
        "criteria": crit,
    }


def evaluate_claims(layers_df: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """One row per (claim, layer) with the primary statistic and a rule-based verdict."""
    params = resolve_params(params)
    if layers_df.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    judges = {1: _claim1, 2: _claim2, 3: _claim3}
    for claim, judge in judges.items():
        for _, r in layers_df.sort_values("layer").iterrows():
            res = judge(r, params)
            crit = res.pop("criteria")
            rows.append({
                "claim": claim,
                "claim_text": CLAIM_TEXT[claim],
                "layer": int(r["layer"]),
                **res,
                "criteria": "; ".join(text for text, _ in crit),
                "n_criteria_held": sum(h for _, h in crit),
                "n_criteria": len(crit),
            })  # fmt: skip
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["claim"] = frame["claim"].astype(np.int16)
    frame["layer"] = frame["layer"].astype(np.int16)
    for col in ("value", "null_value", "p"):
        frame[col] = frame[col].astype(np.float64)
    return frame
