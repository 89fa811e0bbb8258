"""Robustness of the verdicts across analysis variants: does a claim survive other reasonable
choices (linkage, clustering method, selectivity, proxy) or only the paper's setting?

`robustness_matrix` stacks the claims tables of every (model, variant) into one long table;
`robustness_summary` counts, per (model, layer, claim, level), in how many testable variants the
claim is supported and names the outcome by `HOLDS_RULE`. Columns: `columns.TABLES`.

A variant is evidence for a claim only where it computes something else than base: a variant
that changes the clustering leaves every criterion that does not read clusters untouched, and a
selectivity rule that keeps every token changes nothing at all. `same_as_base` finds, per
(model, layer, claim), the variants whose inputs to the claim's verdict are identical to base's
(`SAME_RULE`); the summary leaves them out of its counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .columns import TABLES, conform
from .criteria import CRITERIA

PAPER = "base"  # the variant with the paper's setting
UNJUDGED = ("not testable", "not identifiable with this proxy")  # verdicts that judge nothing
LEVELS = {"exists": "verdict_exists", "beyond geometry": "verdict_beyond_geometry"}
SAME_RULE = (
    "A variant is 'same as base' for a claim in a layer when, for every criterion of the claim, "
    "its criteria-table row equals base's in every column (rule, pass rates and tests of every "
    "kind) and the per-neuron statistics the criterion reads are equal on every row (neurons "
    "and controls) of that layer: the variant then repeats base's computation for that claim."
)
HOLDS_RULE = (
    "Variants that are 'same as base' for the claim are left out (they repeat base's "
    "computation). A variant counts as testable for a claim when its verdict at that level is "
    "neither 'not testable' nor 'not identifiable with this proxy', and as supporting it when the verdict is 'supported' (mixed counts "
    "against). "
    "The claim holds in all variants when every testable one supports it, in most when more "
    "than half do, in few when at least one but at most half do, in none when none does; it is "
    "not testable when no variant is."
)


def settings_words(overrides: Mapping | None) -> str:
    """A variant's overrides as 'section.key=value' pairs, so a reader sees what changed."""
    pairs = list(_flatten(overrides or {}))
    return ", ".join(f"{k}={v}" for k, v in pairs) if pairs else "no overrides"


def _flatten(tree: Mapping, prefix: str = "") -> Iterable[tuple[str, object]]:
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def robustness_matrix(runs: Iterable[tuple[str, str, pd.DataFrame]],
                      settings: Mapping[str, Mapping] | None = None,
                      same: Mapping[tuple, bool] | None = None) -> pd.DataFrame:
    """One row per (model, layer, claim, variant): both verdicts, the paper mark, the
    variant's settings in words (`settings` maps a variant to its overrides) and whether it
    repeats base for that claim (`same`: (model, variant, layer, claim) -> bool, from
    `same_as_base`; missing keys count as different)."""
    settings, same = settings or {}, same or {}
    frames = []
    for model, variant, claims in runs:
        frame = claims[["claim", "claim_text", "layer", "verdict_exists",
                        "verdict_beyond_geometry"]].copy()  # fmt: skip
        frame.insert(0, "model", model)
        frame["variant"] = variant
        frame["paper"] = variant == PAPER
        frame["settings"] = settings_words(settings.get(variant))
        frame["same_as_base"] = [bool(same.get((model, variant, int(layer), int(claim))))
                                 for layer, claim in zip(frame["layer"], frame["claim"],
                                                         strict=True)]  # fmt: skip
        frames.append(frame)
    names = [c.name for c in TABLES["robustness"]]
    if not frames:
        return conform(pd.DataFrame(columns=names), "robustness")
    return conform(pd.concat(frames, ignore_index=True)[names], "robustness")


def holds_in(n_testable: int, n_supported: int) -> str:
    """The outcome named by HOLDS_RULE."""
    if n_testable == 0:
        return "not testable"
    if n_supported == n_testable:
        return "all"
    if 2 * n_supported > n_testable:
        return "most"
    return "few" if n_supported else "none"


def _summary_row(keys: tuple, group: pd.DataFrame, level: str, column: str) -> dict:
    verdicts = group.loc[~group["same_as_base"], column]
    testable = int((~verdicts.isin(UNJUDGED)).sum())
    supported = int((verdicts == "supported").sum())
    paper = group.loc[group["paper"], column]
    model, layer, claim = keys
    return {"model": model, "layer": layer, "claim": claim,
            "claim_text": group["claim_text"].iloc[0], "level": level,
            "n_variants": len(group), "n_same_as_base": int(group["same_as_base"].sum()),
            "n_testable": testable, "n_supported": supported,
            "holds_in": holds_in(testable, supported),
            "paper_verdict": paper.iloc[0] if len(paper) else "", "rule": HOLDS_RULE}


def robustness_summary(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per (model, layer, claim, level): testable and supporting variants and `holds_in`."""
    rows = [_summary_row(keys, group, level, column)
            for keys, group in matrix.groupby(["model", "layer", "claim"], sort=False)
            for level, column in LEVELS.items()]  # fmt: skip
    frame = pd.DataFrame(rows, columns=[c.name for c in TABLES["robustness_summary"]])
    return conform(frame, "robustness_summary")


def criterion_columns(criterion, frame: pd.DataFrame, params: Mapping) -> list[str] | None:
    """The columns of `frame` that `criterion`'s per-neuron test reads, found by running it on
    a frame that records what is read; None when that cannot be told (then every column is
    compared, so a variant is never called a repeat on a guess)."""
    read: list[str] = []

    class Recorder(pd.DataFrame):
        def __getitem__(self, key):
            read.extend([key] if isinstance(key, str) else list(key))
            return pd.DataFrame.__getitem__(self, key)

    try:
        criterion.passes(Recorder(frame.iloc[:2]), dict(params))
    except Exception:  # noqa: BLE001 - an unknown test shape: compare everything
        return None
    return sorted(set(read)) or None


def _equal_frames(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Equal shape, columns and values (NaN equals NaN, lists and strings compared as such)."""
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return False
    for name in a.columns:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        if x.dtype.kind in "fc" and y.dtype.kind in "fc":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not all(_same_value(u, v) for u, v in zip(x, y, strict=True)):
            return False
    return True


def _same_value(u, v) -> bool:
    if isinstance(u, float) and isinstance(v, float) and np.isnan(u) and np.isnan(v):
        return True
    return bool(np.all(np.asarray(u) == np.asarray(v))) and np.shape(u) == np.shape(v)


ROW_KEYS = ["layer", "neuron", "kind"]


def _rows(neurons: pd.DataFrame, layer: int, columns: list[str] | None) -> pd.DataFrame:
    mine = neurons[neurons["layer"] == layer]
    mine = mine.sort_values(ROW_KEYS, kind="stable").reset_index(drop=True)
    keep = ROW_KEYS + [c for c in (columns or mine.columns) if c not in ROW_KEYS]
    return mine[keep]


def same_as_base(claims: pd.DataFrame, base: Mapping[str, pd.DataFrame],
                 variant: Mapping[str, pd.DataFrame], params: Mapping) -> dict[tuple, bool]:
    """(layer, claim) -> whether `variant` repeats base's computation for it (`SAME_RULE`).

    `base` and `variant` hold each run's merged `criteria` and `neurons` tables; `claims` is
    the variant's claims table (its `criteria` column names each claim's criteria); `params`
    are analysis parameters used only to find the columns a criterion reads.
    """
    by_id = {c.id: c for c in CRITERIA}
    out = {}
    for layer, claim, ids in zip(claims["layer"], claims["claim"], claims["criteria"],
                                 strict=True):  # fmt: skip
        same = True
        for cid in ids:
            crit = [f[(f["layer"] == layer) & (f["criterion"] == cid)].reset_index(drop=True)
                    for f in (base["criteria"], variant["criteria"])]
            cols = (criterion_columns(by_id[cid], base["neurons"], params)
                    if cid in by_id else None)  # fmt: skip
            same = (same and _equal_frames(*crit) and len(crit[0]) > 0
                    and _equal_frames(_rows(base["neurons"], layer, cols),
                                      _rows(variant["neurons"], layer, cols)))  # fmt: skip
            if not same:
                break
        out[(int(layer), int(claim))] = same
    return out
