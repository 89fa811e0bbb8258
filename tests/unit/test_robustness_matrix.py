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
    ([S, "not identifiable with this proxy", N], "few"),  # an unjudged level does not count
    (["not identifiable with this proxy"] * 2, "not testable"),
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
    paths, tables = [], {"criteria": [], "neurons": []}
    for i, (run, verdict) in enumerate(zip(runs, (S, N), strict=True)):
        paths.append(str(tmp_path / f"{run['variant']}.parquet"))
        atomic_parquet(claims({(1, 0): (verdict, verdict)}), paths[-1], {})
        frames = {"criteria": pd.DataFrame({"layer": [0], "criterion": ["x"], "pass": [0.5]}),
                  "neurons": pd.DataFrame({"layer": [0], "neuron": [0], "kind": ["neuron"],
                                           "x_p": [0.01 * (i + 1)]})}
        for name, frame in frames.items():
            tables[name].append(str(tmp_path / f"{run['variant']}-{name}.parquet"))
            atomic_parquet(frame, tables[name][-1], {})
    out = {name: str(tmp_path / f"{name}.parquet") for name in ("matrix", "summary")}
    smk = SimpleNamespace(input=SimpleNamespace(claims=paths, **tables),
                          output=SimpleNamespace(**out),
                          params=SimpleNamespace(runs=runs), log=[str(tmp_path / "log")])
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    matrix = pd.read_parquet(out["matrix"]).set_index("variant")
    assert matrix.loc["ward", "verdict_exists"] == N
    assert matrix.loc["ward", "settings"] == "analysis.linkage=ward"
    assert not matrix.loc["ward", "same_as_base"]  # its neurons' statistic differs from base's
    assert set(pd.read_parquet(out["summary"])["holds_in"]) == {"few"}
    assert read_provenance(out["summary"])["runs"] == runs
    smk.params.runs = [runs[0], {**runs[1], "model": "b"}, {**runs[1], "settings": {}}]
    smk.input = SimpleNamespace(**{k: [*v, v[1]] for k, v in vars(smk.input).items()})
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    assert "different settings" in (tmp_path / "log").read_text()
    smk.input = SimpleNamespace(claims=paths, **tables)
    smk.params.runs = runs[:1]
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    assert "same order" in (tmp_path / "log").read_text()


# --- variants that repeat base are not counted (issue 20, item 3) ---------------------------


def run_tables(**params) -> dict[str, pd.DataFrame]:
    """Merged neurons, criteria and claims tables of one synthetic run (planted neurons)."""
    from intraneuron.analysis import (
        add_layer_fdr,
        analyze_shard,
        evaluate_claims,
        evaluate_criteria,
        resolve_params,
    )
    from intraneuron.analysis.synthetic import synthetic_shard

    shard = synthetic_shard(24, planted_top=20, seed=11)
    shard.pop("category")
    analysis = resolve_params({"permutations": 200,
                               "structure_null_sets": 10, **params})
    neurons = add_layer_fdr(analyze_shard(0, params=analysis, **shard)["neurons"], analysis)
    criteria = evaluate_criteria(neurons, analysis)
    return {"neurons": neurons, "criteria": criteria,
            "claims": evaluate_claims(criteria, analysis)}


@pytest.fixture(scope="module")
def three_runs():
    return {"base": run_tables(), "again": run_tables(), "complete": run_tables(linkage="complete")}


def test_a_repeat_of_base_is_same_as_base_and_not_counted(three_runs):
    """A variant whose computation is base's (here: base run again) is marked for every claim,
    and the summary counts base alone. bb25b9d counted it as a second supporting variant."""
    from intraneuron.analysis import resolve_params
    from intraneuron.analysis.robustness import same_as_base

    base, again = three_runs["base"], three_runs["again"]
    marks = same_as_base(again["claims"], base, again, resolve_params(None))
    assert marks and all(marks.values())
    same = {("m", "again", layer, claim): v for (layer, claim), v in marks.items()}
    matrix = robustness_matrix([("m", "base", base["claims"]), ("m", "again", again["claims"])],
                               same=same)
    summary = robustness_summary(matrix)
    assert (summary["n_variants"] == 2).all() and (summary["n_same_as_base"] == 1).all()
    testable = summary["paper_verdict"] != T
    assert (summary.loc[testable, "n_testable"] == 1).all()


def test_a_variant_that_changes_a_claims_inputs_is_counted(three_runs):
    """complete linkage changes the clusters: claims 1 and 3 read them and count; claim 2's
    criteria read no cluster and stay 'same as base'. A changed p-value of one neuron in a
    column a claim-2 criterion reads makes claim 2 count too."""
    from intraneuron.analysis import resolve_params
    from intraneuron.analysis.robustness import same_as_base

    base, complete = three_runs["base"], three_runs["complete"]
    params = resolve_params(None)
    marks = same_as_base(complete["claims"], base, complete, params)
    assert marks == {(0, 1): False, (0, 2): True, (0, 3): False}
    touched = {**base, "neurons": base["neurons"].copy()}
    touched["neurons"].loc[touched["neurons"].index[0], "coarse_trend_p"] += 1e-9
    assert same_as_base(base["claims"], base, touched, params)[(0, 2)] is False
    assert same_as_base(base["claims"], base, touched, params)[(0, 1)] is True
    other_rule = {**base, "criteria": base["criteria"].assign(rule="p < 0.01")}
    assert not any(same_as_base(base["claims"], base, other_rule, params).values())
