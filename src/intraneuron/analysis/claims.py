"""Verdicts: every criterion judged per layer on neurons and controls, then every claim at two
levels (rules in `criteria.LEVEL_RULE` and `criteria.CLAIM_RULE`).

`evaluate_criteria` gives the criteria table (pass rates per kind, the calibration and the two
levels), `evaluate_claims` the claims table, `layer_contrasts` each criterion's difference
between layers with its interval. Columns: `columns.TABLES`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .columns import TABLES, conform
from .criteria import CLAIM_RULE, CLAIM_TEXT, CRITERIA, EFFECTS, LEVEL_RULE, Criterion, Effect
from .params import resolve_params

CONTROLS = ("shuffled", "surrogate", "random_direction")


def judged(neurons: pd.DataFrame, layer: int, kind: str) -> pd.DataFrame:
    """Rows of one layer and kind that count for the claims (excluded neurons left out)."""
    rows = neurons[(neurons["layer"] == layer) & (neurons["kind"] == kind)]
    return rows[~rows["excluded"].astype(bool)]


def _binomial_greater(successes: int, trials: int, rate: float) -> float:
    """One-sided binomial p of at least `successes` in `trials` at `rate`. Against the mean of
    per-neuron null rates this is conservative: a sum of Bernoullis with unequal rates is more
    concentrated than the binomial with their mean rate (Hoeffding 1956)."""
    if trials == 0 or not np.isfinite(rate):
        return float("nan")
    return float(stats.binomtest(successes, trials, min(max(rate, 0.0), 1.0),
                                 alternative="greater").pvalue)


def _interval(draws: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


MISCALIBRATION_P = 0.001  # a calibration failure this unlikely under a correct test is a bug


def _passes(criterion: Criterion, rows: pd.DataFrame, params: dict,
            level: str = "exists") -> pd.Series:
    return pd.Series(criterion.passes(rows, params, level), index=rows.index).dropna()


def _exists_level(criterion: Criterion, kinds: dict[str, pd.DataFrame], params: dict,
                  rng: np.random.Generator) -> dict:
    """Pass rates per kind, the realised null rate and its calibration, and level exists."""
    alpha = float(params["alpha"])
    row: dict = {}
    passed = {kind: _passes(criterion, rows, params) for kind, rows in kinds.items()}
    for kind, s in passed.items():
        row[f"n_{kind}"] = len(s)
        row[f"pass_{kind}"] = float(s.mean()) if len(s) else np.nan
    real, n = passed["neuron"], len(passed["neuron"])
    draws = rng.binomial(n, real.mean(), size=int(params["bootstrap"])) / n if n else [np.nan]
    row["pass_neuron_lo"], row["pass_neuron_hi"] = _interval(np.asarray(draws, dtype=float))
    null_rate = criterion.null_rate(kinds["neuron"].loc[real.index])
    row["null_rate"] = float(np.nanmean(null_rate)) if n else np.nan
    shuffled = passed["shuffled"]
    shuffled_rate = criterion.null_rate(kinds["shuffled"].loc[shuffled.index])
    row["calibration_p"] = (float(stats.binomtest(int(shuffled.sum()), len(shuffled),
                                                  float(np.nanmean(shuffled_rate))).pvalue)
                            if len(shuffled) and np.isfinite(shuffled_rate).any() else np.nan)
    row["miscalibrated"] = bool(np.isfinite(row["calibration_p"])
                                and row["calibration_p"] < MISCALIBRATION_P)
    row["exists_p"] = _binomial_greater(int(real.sum()), n, row["null_rate"])
    row["exists"] = bool(np.isfinite(row["exists_p"]) and row["exists_p"] < alpha
                         and not row["miscalibrated"])
    return row


def _fisher_greater(a: int, n_a: int, b: int, n_b: int) -> float:
    """One-sided Fisher p that a / n_a exceeds b / n_b."""
    if not (n_a and n_b):
        return float("nan")
    table = [[a, n_a - a], [b, n_b - b]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def _geometry_level(criterion: Criterion, kinds: dict[str, pd.DataFrame], params: dict,
                    exists: bool, power: float) -> dict:
    """Neurons against the geometry null, and against linear read-outs (random-direction
    pseudo-neurons) put through the same geometry test in the same run: the null keeps each
    map's smoothness but not perfectly, so the rate at which it still passes smooth maps is
    measured, and neurons must beat it."""
    alpha = float(params["alpha"])
    real = _passes(criterion, kinds["neuron"], params, "geometry")
    smooth = _passes(criterion, kinds["random_direction"], params, "geometry")
    rate = criterion.null_rate(kinds["neuron"].loc[real.index], "geometry")
    n, n_smooth = len(real), len(smooth)
    row = {"n_geometry": n, "pass_geometry": float(real.mean()) if n else np.nan,
           "geometry_null_rate": float(np.nanmean(rate)) if n else np.nan,
           "smooth_pass": float(smooth.mean()) if n_smooth else np.nan}  # fmt: skip
    row["geometry_p"] = _binomial_greater(int(real.sum()), n, row["geometry_null_rate"])
    row["smooth_p"] = _fisher_greater(int(real.sum()), n, int(smooth.sum()), n_smooth)
    # could a layer whose neurons all pass beat the linear read-outs at all, and does the
    # power check find a planted category with this proxy?
    row["power"] = power
    row["identifiable"] = bool(_fisher_greater(n, n, int(smooth.sum()), n_smooth) < alpha
                               and not power < float(params["min_power"]))
    row["beyond_geometry"] = bool(exists and row["identifiable"]
                                  and max(row["geometry_p"], row["smooth_p"]) < alpha)
    return row


def _criterion_row(criterion: Criterion, neurons: pd.DataFrame, layer: int, params: dict,
                   rng: np.random.Generator, power: float = np.nan) -> dict:
    kinds = {kind: judged(neurons, layer, kind) for kind in ("neuron", *CONTROLS)}
    row: dict = {"claim": criterion.claim, "criterion": criterion.id, "name": criterion.name,
                 "layer": layer, "role": "test", "rule": criterion.rule_text(params)}  # fmt: skip
    row.update(_exists_level(criterion, kinds, params, rng))
    analysed = len(kinds["neuron"])
    row["defined_share"] = row["n_neuron"] / analysed if analysed else np.nan
    row.update(_geometry_level(criterion, kinds, params, row["exists"], power))
    row.update(effect=np.nan, effect_lo=np.nan, effect_hi=np.nan, effect_holds=False)
    row["reason"] = _untestable_reason(row, analysed, params)
    row["testable"] = not row["reason"]
    if not row["testable"]:
        row["exists"] = row["beyond_geometry"] = False
    return row


def _untestable_reason(row: dict, analysed: int, params: dict) -> str:
    if not analysed or not row["n_neuron"]:
        return ("no real neuron has this statistic defined (too few segments or clusters for "
                "the test, or every neuron excluded)")
    share = float(params["min_defined_share"])
    if row["defined_share"] < share:
        return (f"defined for {row['n_neuron']} of {analysed} analysed neurons "
                f"({row['defined_share']:.0%}), below analysis.min_defined_share = {share}")
    if row["miscalibrated"]:
        return (f"miscalibrated: shuffled controls pass at {row['pass_shuffled']:.1%} against "
                f"a realised null rate of {row['null_rate']:.1%} "
                f"(two-sided binomial p = {row['calibration_p']:.2g})")
    return ""


def _effect_row(effect: Effect, neurons: pd.DataFrame, layer: int, params: dict,
                rng: np.random.Generator) -> dict:
    """Median of the effect's statistic over the neurons passing its `among` criterion, with
    a bootstrap interval, against its bound."""
    rows = judged(neurons, layer, "neuron")
    among = next(c for c in CRITERIA if c.id == effect.among)
    selected = rows[criterion_pass(among, rows, params)]
    x = selected[effect.column].to_numpy(dtype=np.float64)
    x = x[np.isfinite(x)]
    bound = float(params[effect.bound])
    row = {"claim": effect.claim, "criterion": effect.id, "name": effect.name, "layer": layer,
           "role": "effect", "rule": effect.rule.format(bound=bound), "n_neuron": x.size,
           "defined_share": x.size / len(rows) if len(rows) else np.nan}  # fmt: skip
    if x.size:
        medians = np.median(x[rng.integers(0, x.size, (int(params["bootstrap"]), x.size))],
                            axis=1)
        lo, hi = _interval(medians)
        holds = hi < bound if effect.below else lo >= bound
        row.update(effect=float(np.median(x)), effect_lo=lo, effect_hi=hi,
                   effect_holds=bool(holds), reason="")
    else:
        row.update(effect=np.nan, effect_lo=np.nan, effect_hi=np.nan, effect_holds=False,
                   reason=f"no neuron passes {effect.among}")
    row["testable"] = bool(x.size)
    row.update({f"n_{kind}": 0 for kind in CONTROLS}, n_geometry=0, power=np.nan)
    row.update(exists=False, beyond_geometry=False, miscalibrated=False, identifiable=False)
    return row


def criterion_pass(criterion: Criterion, rows: pd.DataFrame, params: dict) -> np.ndarray:
    """Boolean mask of the rows passing `criterion` at level exists."""
    return np.nan_to_num(criterion.passes(rows, params), nan=0.0).astype(bool)


def evaluate_criteria(neurons: pd.DataFrame, params: dict | None = None,
                      power: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (criterion or effect, layer): pass rates per kind, calibration, both
    levels; the effect statements' medians and intervals. `power`: the power check's table
    (`planted.power_table`); without it, identifiability rests on the linear read-outs alone."""
    params = resolve_params(params)
    planted = ({} if power is None
               else dict(zip(power["criterion"], power["planted"], strict=True)))  # fmt: skip
    rows = []
    for layer in sorted(int(x) for x in neurons["layer"].unique()):
        for index, criterion in enumerate(CRITERIA):
            rng = np.random.default_rng([int(params["seed"]), layer, index, 7])
            rows.append(_criterion_row(criterion, neurons, layer, params, rng,
                                       planted.get(criterion.id, np.nan)))
        for index, effect in enumerate(EFFECTS):
            rng = np.random.default_rng([int(params["seed"]), layer, index, 8])
            rows.append(_effect_row(effect, neurons, layer, params, rng))
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(
        columns=[c.name for c in TABLES["criteria"]])
    frame = frame.sort_values(["layer", "claim", "criterion"], kind="stable")
    return conform(frame.reset_index(drop=True), "criteria")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def claim_verdict(p: np.ndarray, alpha: float) -> tuple[str, float]:
    """The claim rule (`criteria.CLAIM_RULE`) on its counting criteria's level p-values: not
    supported unless one holds after Holm's correction; then supported when all hold at
    alpha, mixed otherwise. Under the global null it says anything but 'not supported' at most
    alpha of the time, as Holm's first step does."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return "not testable", float("nan")
    p = np.where(np.isfinite(p), p, 1.0)
    smallest = float(holm(p).min())
    if smallest >= alpha:
        return "not supported", smallest
    return ("supported" if np.all(p < alpha) else "mixed"), smallest


def _level_p(group: pd.DataFrame, level: str) -> np.ndarray:
    """Each counting criterion's p at `level`; a criterion that does not hold (e.g. beyond
    geometry without existing) enters with p = 1."""
    if level == "exists":
        return np.where(group["exists"], group["exists_p"], 1.0)
    return np.where(group["beyond_geometry"],
                    np.maximum(group["geometry_p"], group["smooth_p"]), 1.0)


def _effects_text(effects: pd.DataFrame) -> str:
    parts = []
    for _, e in effects.iterrows():
        if not e["testable"]:
            parts.append(f"{e['criterion']} {e['name']}: not measurable ({e['reason']})")
            continue
        parts.append(f"{e['criterion']} {e['name']}: median {e['effect']:.3g} "
                     f"[{e['effect_lo']:.3g}, {e['effect_hi']:.3g}], "
                     f"{'holds' if e['effect_holds'] else 'does not hold'}")
    return "; ".join(parts)


def evaluate_claims(criteria: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """One row per (claim, layer): the verdict at each level from its counting criteria."""
    params = resolve_params(params)
    alpha = float(params["alpha"])
    rows = []
    for (claim, layer), group in criteria.groupby(["claim", "layer"], sort=True):
        tests = group[group["role"] == "test"]
        counting = tests[tests["testable"]]
        identifiable = counting[counting["identifiable"]]
        verdict_exists, exists_holm = claim_verdict(_level_p(counting, "exists"), alpha)
        verdict_beyond, beyond_holm = claim_verdict(_level_p(identifiable, "beyond"), alpha)
        if len(counting) and not len(identifiable):
            verdict_beyond = "not identifiable with this proxy"
        rows.append({
            "claim": claim, "claim_text": CLAIM_TEXT[int(claim)], "layer": layer,
            "criteria": list(tests["criterion"]), "n_criteria": len(tests),
            "n_exist": int(counting["exists"].sum()),
            "n_beyond": int(counting["beyond_geometry"].sum()),
            "exists_holm": exists_holm, "beyond_holm": beyond_holm,
            "verdict_exists": verdict_exists, "verdict_beyond_geometry": verdict_beyond,
            "effects": _effects_text(group[group["role"] == "effect"]),
            "rule": LEVEL_RULE + " " + CLAIM_RULE,
        })  # fmt: skip
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(
        columns=[c.name for c in TABLES["claims"]])
    return conform(frame, "claims")


def layer_contrasts(criteria: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
    """Each criterion's pass rate in every later layer minus the first layer, with a bootstrap
    interval (independent binomial resamples per layer)."""
    params = resolve_params(params)
    rows = []
    tests = criteria[criteria["role"] == "test"]
    for index, (crit, group) in enumerate(tests.groupby("criterion", sort=True)):
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
