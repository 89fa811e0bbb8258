"""Robustness of the verdicts across analysis variants: does a claim survive other reasonable
choices (linkage, clustering method, selectivity, proxy) or only the paper's setting?

`robustness_matrix` stacks the claims tables of every (model, variant) into one long table;
`robustness_summary` counts, per (model, layer, claim, level), in how many testable variants the
claim is supported and names the outcome by `HOLDS_RULE`. Columns: `columns.TABLES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .columns import TABLES, conform

PAPER = "base"  # the variant with the paper's setting
LEVELS = {"exists": "verdict_exists", "beyond geometry": "verdict_beyond_geometry"}
HOLDS_RULE = (
    "A variant counts as testable for a claim when its verdict at that level is not 'not "
    "testable', and as supporting it when the verdict is 'supported' (mixed counts against). "
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
                      settings: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """One row per (model, layer, claim, variant): both verdicts, the paper mark and the
    variant's settings in words (`settings` maps a variant to its overrides)."""
    settings = settings or {}
    frames = []
    for model, variant, claims in runs:
        frame = claims[["claim", "claim_text", "layer", "verdict_exists",
                        "verdict_beyond_geometry"]].copy()  # fmt: skip
        frame.insert(0, "model", model)
        frame["variant"] = variant
        frame["paper"] = variant == PAPER
        frame["settings"] = settings_words(settings.get(variant))
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
    verdicts = group[column]
    testable = int((verdicts != "not testable").sum())
    supported = int((verdicts == "supported").sum())
    paper = group.loc[group["paper"], column]
    model, layer, claim = keys
    return {"model": model, "layer": layer, "claim": claim,
            "claim_text": group["claim_text"].iloc[0], "level": level,
            "n_variants": len(group), "n_testable": testable, "n_supported": supported,
            "holds_in": holds_in(testable, supported),
            "paper_verdict": paper.iloc[0] if len(paper) else "", "rule": HOLDS_RULE}


def robustness_summary(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per (model, layer, claim, level): testable and supporting variants and `holds_in`."""
    rows = [_summary_row(keys, group, level, column)
            for keys, group in matrix.groupby(["model", "layer", "claim"], sort=False)
            for level, column in LEVELS.items()]  # fmt: skip
    frame = pd.DataFrame(rows, columns=[c.name for c in TABLES["robustness_summary"]])
    return conform(frame, "robustness_summary")
