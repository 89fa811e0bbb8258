"""Verdicts: every criterion judged per layer on neurons and controls, then every claim at two
levels (rules in `criteria.LEVEL_RULE`).

`evaluate_criteria` gives the criteria table (pass rates per kind, the calibration and the two
levels), `evaluate_claims` the claims table, `layer_contrasts` each criterion's difference
between layers with its interval. Columns: `columns.TABLES`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .columns import TABLES, conform
from .criteria import CLAIM_TEXT, CRITERIA, LEVEL_RULE, Criterion
from .params import resolve_params

CONTROLS = ("shuffled", "surrogate", "random_direction")


def judged(neurons: pd.DataFrame, layer: int, kind: str) -> pd.DataFrame:
    """Rows of one layer and kind that count for the claims (excluded neurons left out)."""
    rows = neurons[(neurons["layer"] == layer) & (neurons["kind"] == kind)]
    return rows[~rows["excluded"].astype(bool)]


def _binomial_greater(successes: int, trials: int, rate: float) -> float:
    if trials == 0:
        return float("nan")
    return float(stats.binomtest(successes, trials, rate, alternative="greater").pvalue)


def _interval(draws: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def _paired(neuron: pd.Series, surrogate: pd.Series, rng: np.random.Generator,
            n_boot: int) -> dict:
    """Neurons against their own surrogates: difference in pass rate with a paired bootstrap
    interval (multinomial over the four pass/fail cells) and the exact one-sided test on
    discordant pairs."""
    both = pd.concat([neuron, surrogate], axis=1, keys=["n", "s"]).dropna()
    if both.empty:
        return {"vs_surrogate": np.nan, "vs_surrogate_lo": np.nan, "vs_surrogate_hi": np.nan,
                "vs_surrogate_p": np.nan}  # fmt: skip
    a, b = both["n"].to_numpy(), both["s"].to_numpy()
    cells = np.array([np.sum((a == 1) & (b == 0)), np.sum((a == 0) & (b == 1)),
                      np.sum(a == b)])  # fmt: skip
    n = int(cells.sum())
    draws = rng.multinomial(n, cells / n, size=n_boot)
    diff = (draws[:, 0] - draws[:, 1]) / n
    lo, hi = _interval(diff)
    discordant = int(cells[0] + cells[1])
    return {"vs_surrogate": float(a.mean() - b.mean()), "vs_surrogate_lo": lo,
            "vs_surrogate_hi": hi,
            "vs_surrogate_p": _binomial_greater(int(cells[0]), discordant, 0.5)
            if discordant else 1.0}  # fmt: skip


def _criterion_row(criterion: Criterion, neurons: pd.DataFrame, layer: int, params: dict,
                   rng: np.random.Generator) -> dict:
    alpha = float(params["alpha"])
    passed = {kind: pd.Series(criterion.passes(rows, params), index=rows["neuron"].to_numpy())
              for kind in ("neuron", *CONTROLS)
              for rows in [judged(neurons, layer, kind)]}  # fmt: skip
    finite = {kind: s.dropna() for kind, s in passed.items()}
    row: dict = {"claim": criterion.claim, "criterion": criterion.id, "name": criterion.name,
                 "layer": layer, "rule": criterion.rule_text(params)}  # fmt: skip
    for kind, s in finite.items():
        row[f"n_{kind}"] = len(s)
        row[f"pass_{kind}"] = float(s.mean()) if len(s) else np.nan
    real = finite["neuron"]
    n = len(real)
    successes = int(real.sum())
    draws = rng.binomial(n, successes / n, size=int(params["bootstrap"])) / n if n else [np.nan]
    row["pass_neuron_lo"], row["pass_neuron_hi"] = _interval(np.asarray(draws, dtype=float))
    shuffled = finite["shuffled"]
    row["noise_excess_p"] = _binomial_greater(int(shuffled.sum()), len(shuffled), alpha)
    row["exists_p"] = _binomial_greater(successes, n, alpha)
    row["exists"] = bool(np.isfinite(row["exists_p"]) and row["exists_p"] < alpha)
    row.update(_paired(passed["neuron"], passed["surrogate"], rng, int(params["bootstrap"])))
    rand = finite["random_direction"]
    if n and len(rand):
        table = [[successes, n - successes], [int(rand.sum()), len(rand) - int(rand.sum())]]
        row["vs_random_p"] = float(stats.fisher_exact(table, alternative="greater").pvalue)
    else:
        row["vs_random_p"] = np.nan
    geometry = [row["vs_surrogate_p"], row["vs_random_p"]]
    row["beyond_geometry"] = row["exists"] and all(np.isfinite(p) and p < alpha for p in geometry)
    row["testable"] = n > 0
    row["reason"] = "" if n else (
        "no real neuron has this statistic defined (too few segments or clusters for the test, "
        "or every neuron excluded)")
    return row


def evaluate_criteria(neurons: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """One row per (criterion, layer): pass rates per kind, calibration and both levels."""
    params = resolve_params(params)
    rows = []
    for layer in sorted(int(x) for x in neurons["layer"].unique()):
        for index, criterion in enumerate(CRITERIA):
            rng = np.random.default_rng([int(params["seed"]), layer, index, 7])
            rows.append(_criterion_row(criterion, neurons, layer, params, rng))
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(
        columns=[c.name for c in TABLES["criteria"]])
    return conform(frame, "criteria")


def _verdict(held: list[bool]) -> str:
    if not held:
        return "not testable"
    if all(held):
        return "supported"
    return "not supported" if not any(held) else "mixed"


def evaluate_claims(criteria: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """One row per (claim, layer): the verdict at each level from its testable criteria."""
    resolve_params(params)
    rows = []
    for (claim, layer), group in criteria.groupby(["claim", "layer"], sort=True):
        testable = group[group["testable"]]
        geometry_judged = testable[np.isfinite(testable["vs_surrogate_p"])
                                   & np.isfinite(testable["vs_random_p"])]  # fmt: skip
        rows.append({
            "claim": claim, "claim_text": CLAIM_TEXT[int(claim)], "layer": layer,
            "criteria": list(group["criterion"]), "n_criteria": len(group),
            "n_exist": int(testable["exists"].sum()),
            "n_beyond": int(testable["beyond_geometry"].sum()),
            "verdict_exists": _verdict(list(testable["exists"])),
            "verdict_beyond_geometry": _verdict(list(geometry_judged["beyond_geometry"])),
            "rule": LEVEL_RULE,
        })  # fmt: skip
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(
        columns=[c.name for c in TABLES["claims"]])
    return conform(frame, "claims")


def layer_contrasts(criteria: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """Each criterion's pass rate in every later layer minus the first layer, with a bootstrap
    interval (independent binomial resamples per layer)."""
    params = resolve_params(params)
    rows = []
    for index, (crit, group) in enumerate(criteria.groupby("criterion", sort=True)):
        group = group.sort_values("layer")
        if len(group) < 2:
            continue
        first = group.iloc[0]
        rng = np.random.default_rng([int(params["seed"]), index, 11])
        for _, other in group.iloc[1:].iterrows():
            if not (first["n_neuron"] and other["n_neuron"]):
                continue
            a = rng.binomial(first["n_neuron"], first["pass_neuron"], params["bootstrap"])
            b = rng.binomial(other["n_neuron"], other["pass_neuron"], params["bootstrap"])
            diff = b / other["n_neuron"] - a / first["n_neuron"]
            lo, hi = _interval(diff)
            rows.append({"criterion": crit, "name": first["name"],
                         "layer_a": int(first["layer"]), "layer_b": int(other["layer"]),
                         "difference": float(other["pass_neuron"] - first["pass_neuron"]),
                         "lo": lo, "hi": hi})  # fmt: skip
    return conform(pd.DataFrame(rows, columns=[c.name for c in TABLES["contrasts"]]),
                   "contrasts")
