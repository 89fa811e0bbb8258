"""Robustness across variants: the long matrix and the holds-in rule, on planted verdict sets
chosen so that every outcome of the rule occurs and each boundary is crossed."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from intraneuron.analysis.columns import TABLES
from intraneuron.analysis.robustness import (
    holds_in,
    robustness_matrix,
    robustness_summary,
    settings_words,
)
from intraneuron.tables import atomic_parquet, read_provenance

SCRIPT = Path(__file__).parents[2] / "workflow" / "scripts" / "robustness.py"

S, M, N, T = "supported", "mixed", "not supported", "not testable"


def claims(verdicts: dict[tuple[int, int], tuple[str, str]]) -> pd.DataFrame:
    """A claims table with (claim, layer) -> (verdict exists, verdict beyond geometry)."""
    rows = [{"claim": c, "claim_text": f"claim {c}", "layer": layer, "criteria": ["x"],
             "n_criteria": 1, "n_exist": 0, "n_beyond": 0, "verdict_exists": e,
             "verdict_beyond_geometry": b, "rule": "r"}
            for (c, layer), (e, b) in verdicts.items()]
    return pd.DataFrame(rows)


def planted(exists: list[str], beyond: list[str] | None = None) -> list:
    """One model, one claim and layer, one variant per verdict (the first is base)."""
    beyond = beyond or exists
    names = ["base"] + [f"v{i}" for i in range(1, len(exists))]
    return [("m", v, claims({(1, 0): (e, b)})) for v, e, b in zip(names, exists, beyond, strict=True)]


def outcome(exists: list[str]) -> str:
    summary = robustness_summary(robustness_matrix(planted(exists)))
    return summary.loc[summary["level"] == "exists", "holds_in"].item()


def test_settings_in_words():
    assert settings_words({"analysis": {"linkage": "ward"}}) == "analysis.linkage=ward"
    assert settings_words({"analysis": {"proxy": "wordnet", "selectivity": "positive"},
                           "core_tokens": {"k": 50}}) == (
        "analysis.proxy=wordnet, analysis.selectivity=positive, core_tokens.k=50")
    assert settings_words({}) == settings_words(None) == "no overrides"


def test_matrix_has_one_row_per_model_layer_claim_variant():
    runs = [(model, variant, claims({(1, 0): (S, N), (1, 3): (M, T), (2, 0): (S, S)}))
            for model in ("a", "b") for variant in ("base", "ward")]
    matrix = robustness_matrix(runs, {"base": {}, "ward": {"analysis": {"linkage": "ward"}}})
    assert list(matrix.columns) == [c.name for c in TABLES["robustness"]]
    assert len(matrix) == 12
    assert not matrix.duplicated(["model", "layer", "claim", "variant"]).any()
    assert matrix.groupby("variant")["paper"].all().to_dict() == {"base": True, "ward": False}
    assert set(matrix.loc[matrix["variant"] == "ward", "settings"]) == {"analysis.linkage=ward"}
    row = matrix[(matrix["model"] == "b") & (matrix["layer"] == 3)].iloc[0]
    assert (row["verdict_exists"], row["verdict_beyond_geometry"]) == (M, T)


@pytest.mark.parametrize(("verdicts", "expected"), [
    ([S, S, S, S], "all"),
    ([S, S, S, M], "most"),  # 3 of 4: one short of all
    ([S, S, N, M], "few"),  # exactly half is not most
    ([N, S, N, T], "few"),  # 1 of 3 testable; the untestable variant does not count
    ([N, M, N, N], "none"),  # mixed is not support
    ([T, T, T, T], "not testable"),
    ([T, S, T, T], "all"),  # the one testable variant supports it
])  # fmt: skip
def test_holds_in_each_outcome_from_planted_verdicts(verdicts, expected):
    assert outcome(verdicts) == expected


def test_holds_in_boundaries():
    assert [holds_in(4, k) for k in range(5)] == ["none", "few", "few", "most", "all"]
    assert [holds_in(3, k) for k in range(4)] == ["none", "few", "most", "all"]
    assert holds_in(1, 1) == "all" and holds_in(1, 0) == "none"
    assert holds_in(0, 0) == "not testable"


def test_summary_levels_are_judged_separately_with_the_paper_verdict():
    summary = robustness_summary(robustness_matrix(planted([N, S, S], [S, N, N])))
    assert list(summary.columns) == [c.name for c in TABLES["robustness_summary"]]
    by_level = summary.set_index("level")
    assert by_level.loc["exists", "holds_in"] == "most"
    assert by_level.loc["exists", "paper_verdict"] == N  # robust elsewhere, not in the paper's
    assert by_level.loc["beyond geometry", "holds_in"] == "few"
    assert by_level.loc["beyond geometry", "paper_verdict"] == S
    assert by_level["n_variants"].tolist() == [3, 3]
    assert summary["rule"].str.contains("more than half").all()


def test_summary_without_the_paper_variant_has_no_paper_verdict():
    runs = [("m", "ward", claims({(1, 0): (S, S)}))]
    summary = robustness_summary(robustness_matrix(runs))
    assert summary["paper_verdict"].tolist() == ["", ""]


def test_empty_runs_give_empty_tables():
    matrix = robustness_matrix([])
    assert matrix.empty and list(matrix.columns) == [c.name for c in TABLES["robustness"]]
    assert robustness_summary(matrix).empty


@pytest.mark.usefixtures("restore_logger")
def test_snakemake_script_pairs_claims_with_runs_in_order(tmp_path):
    runs = [{"model": "a", "variant": "base", "settings": {}},
            {"model": "a", "variant": "ward", "settings": {"analysis": {"linkage": "ward"}}}]
    paths = []
    for run, verdict in zip(runs, (S, N), strict=True):
        paths.append(str(tmp_path / f"{run['variant']}.parquet"))
        atomic_parquet(claims({(1, 0): (verdict, verdict)}), paths[-1], {})
    out = {name: str(tmp_path / f"{name}.parquet") for name in ("matrix", "summary")}
    smk = SimpleNamespace(input=SimpleNamespace(claims=paths), output=SimpleNamespace(**out),
                          params=SimpleNamespace(runs=runs), log=[str(tmp_path / "log")])
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    matrix = pd.read_parquet(out["matrix"]).set_index("variant")
    assert matrix.loc["ward", "verdict_exists"] == N
    assert matrix.loc["ward", "settings"] == "analysis.linkage=ward"
    assert set(pd.read_parquet(out["summary"])["holds_in"]) == {"few"}
    assert read_provenance(out["summary"])["runs"] == runs
    smk.params.runs = [runs[0], {**runs[1], "model": "b"}, {**runs[1], "settings": {}}]
    smk.input.claims = [*paths, paths[1]]
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    assert "different settings" in (tmp_path / "log").read_text()
    smk.input.claims = paths
    smk.params.runs = runs[:1]
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    assert "same order" in (tmp_path / "log").read_text()
