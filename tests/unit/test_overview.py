"""The run's overview page, from small fixture tables: two models (one with random weights) and
two variants, with planted verdicts whose robustness outcomes are known."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from markupsafe import escape

from intraneuron.analysis.robustness import robustness_matrix, robustness_summary
from intraneuron.report.overview import ModelVariant, build_overview, overview_html
from intraneuron.tables import atomic_parquet

SCRIPT = Path(__file__).parents[2] / "workflow" / "scripts" / "overview.py"
S, N, M = "supported", "not supported", "mixed"
MODELS = {"smollm2": {"id": "HuggingFaceTB/SmolLM2-135M", "weights": "pretrained",
                      "layers": [0, 3]},
          "minilm-random": {"id": "all-MiniLM-L6-v2", "weights": "random", "layers": [0, 3]}}
# an override value with markup: it must reach the page escaped
SETTINGS = {"base": {}, "ward": {"analysis": {"linkage": "ward", "note": "<b>x</b>"}}}
# (model, variant) -> {(claim, layer): (exists, beyond geometry)}
VERDICTS = {("smollm2", "base"): {(1, 0): (S, S), (1, 3): (S, N), (2, 0): (S, M), (2, 3): (N, N)},
            ("smollm2", "ward"): {(1, 0): (S, S), (1, 3): (N, N), (2, 0): (S, N), (2, 3): (N, N)},
            ("minilm-random", "base"): {(1, 0): (N, N), (1, 3): (N, N), (2, 0): (M, N),
                                        (2, 3): (N, N)},
            ("minilm-random", "ward"): {(1, 0): (N, N), (1, 3): (N, N), (2, 0): (N, N),
                                        (2, 3): (N, N)}}  # fmt: skip


def claims(verdicts: dict) -> pd.DataFrame:
    return pd.DataFrame([{"claim": c, "claim_text": f"text of claim {c}", "layer": layer,
                          "criteria": ["x"], "n_criteria": 1, "n_exist": 0, "n_beyond": 0,
                          "verdict_exists": e, "verdict_beyond_geometry": b, "rule": "r"}
                         for (c, layer), (e, b) in verdicts.items()])  # fmt: skip


def layers(offset: float) -> pd.DataFrame:
    """layers.parquet rows for two layers, real neurons and random-direction controls."""
    rows = []
    for layer in (0, 3):
        for kind, z in (("neuron", 4.25 + offset), ("random_direction", 0.5)):
            row = {"layer": layer, "kind": kind, "n_neurons": 10, "n_excluded": 0,
                   "cluster_structure_frac": 0.875}
            for metric, value in (("top_coarse_z", z), ("kw_epsilon2", 0.125),
                                  ("ami_coarse", 0.0625)):
                row |= {f"{metric}_median": value, f"{metric}_lo": value - 1,
                        f"{metric}_hi": value + 1}
            rows.append(row)
    return pd.DataFrame(rows)


def ablation() -> pd.DataFrame:
    return pd.DataFrame({"layer": [0, 0], "kind": ["swapped", "neuron"], "n_neurons": [8, 8],
                         "ratio_median": [1.0, 2.5], "ratio_lo": [0.5, 1.5],
                         "ratio_hi": [1.5, 3.5], "verdict": ["calibrated", S],
                         "mde_sd": [1.123, 1.123], "n_swaps": [200, 200],
                         "swap_rate": [0.015, 0.015],
                         "rule": ["ratio above 1 and above the swapped control"] * 2})


def fixture_runs() -> list[ModelVariant]:
    return [ModelVariant(model, variant, claims(v), layers(7.0 if model == "smollm2" else 0.0),
                         SETTINGS[variant]) for (model, variant), v in VERDICTS.items()]


def page(models: dict = MODELS, **kwargs) -> str:
    runs = fixture_runs()
    matrix = robustness_matrix([(r.model, r.variant, r.claims) for r in runs], SETTINGS)
    return overview_html(runs, matrix, robustness_summary(matrix), models,
                         {"report": {"title": "Run <one>"}}, **kwargs)


def rows(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [line for line in body.splitlines() if line.startswith("<tr")]


def test_models_side_by_side_with_the_controls():
    html = page()
    verdicts = rows(html, "models-verdicts")
    assert len(verdicts) == 4  # two layers per model
    assert verdicts[0].count('class="verdict verdict-yes"') == 3  # 1: S, S and 2: S (M)
    effects = html.split('id="models-effects"', 1)[1].split("</table>", 1)[0]
    assert "11.2 <span class=\"ci\">[10.2, 12.2]</span>" in effects  # smollm2's neurons
    assert "random direction" in effects and "87.5%" in effects
    assert 'id="control-minilm-random"' in html
    assert "model.weights: random" in html
    assert 'id="control-smollm2"' not in html


def test_robustness_matrix_marks_the_paper_and_says_where_claims_hold():
    html = page()
    matrix = rows(html, "robustness-smollm2-matrix")
    assert len(matrix) == 4  # claims x layers
    assert all(line.count('<td class="paper">') == 1 for line in matrix)
    head = html.split('id="robustness-smollm2-matrix"', 1)[1].split("</thead>", 1)[0]
    assert re.search(r'<th class="paper">base <span class="paper-mark">paper</span>', head)
    assert "analysis.linkage=ward" in head
    lines = [line for line in html.splitlines() if line.startswith('<li class="holds-line">')]
    assert len(lines) == 4  # two claims per model
    smol = lines[0]
    assert "layer 0: exists holds in <span class=\"verdict verdict-yes\">all</span>" in smol
    assert "layer 3: exists holds in <span class=\"verdict verdict-mixed\">few</span>" in smol
    assert "(1 of 2 testable variants; paper: supported)" in smol
    assert "holds in <span class=\"verdict verdict-no\">none</span>" in lines[2]
    assert "more than half" in html  # the rule is stated


def test_links_to_the_model_pages_are_relative():
    html = page()
    assert '<a href="models/smollm2.html">smollm2</a>' in html
    assert 'href="models/minilm-random.html"' in html
    html = page(html_path="/r/report/index.html", pages={"smollm2": "/r/report/m/smollm2.html"})
    assert 'href="m/smollm2.html"' in html


def test_ablation_section_only_with_ablation_tables():
    assert 'id="ablation"' not in page()
    html = page(ablation={"smollm2": ablation()})
    table = rows(html, "ablation-smollm2-table")
    assert len(table) == 2 and "neuron" in table[0] and "swapped" in table[1]  # neurons first
    assert "2.5 <span class=\"ci\">[1.5, 3.5]</span>" in table[0]
    assert "1.12" in table[0] and "1.5% of 200 swaps called" in table[1]  # MDE; control rate
    assert 'href="#ablation"' in html


def test_values_are_escaped():
    html = page()
    assert "<b>x</b>" not in html and str(escape("<b>x</b>")) in html
    assert "Run &lt;one&gt;" in html


def test_self_contained_and_written_atomically(tmp_path):
    runs = fixture_runs()
    matrix = robustness_matrix([(r.model, r.variant, r.claims) for r in runs], SETTINGS)
    out = tmp_path / "report" / "index.html"
    build_overview(runs, matrix, robustness_summary(matrix), MODELS, str(out), {})
    html = out.read_text()
    assert "<style>" in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.html", "index_files"]


@pytest.mark.usefixtures("restore_logger")
def test_snakemake_script(tmp_path):
    runs = fixture_runs()
    paths = {"claims": [], "layers": []}
    for r in runs:
        for name in paths:
            paths[name].append(str(tmp_path / f"{r.model}-{r.variant}-{name}.parquet"))
            atomic_parquet(getattr(r, name), paths[name][-1], {})
    matrix = robustness_matrix([(r.model, r.variant, r.claims) for r in runs], SETTINGS)
    for name, frame in (("matrix", matrix), ("summary", robustness_summary(matrix))):
        paths[name] = str(tmp_path / f"{name}.parquet")
        atomic_parquet(frame, paths[name], {})
    abl = [str(tmp_path / f"{m}-ablation.parquet") for m in MODELS]
    for path in abl:
        atomic_parquet(ablation(), path, {})
    report = tmp_path / "report"
    smk = SimpleNamespace(
        input=SimpleNamespace(**paths, ablation=abl,
                              pages=[str(report / "models" / f"{m}.html") for m in MODELS]),
        params=SimpleNamespace(runs=[{"model": r.model, "variant": r.variant,
                                      "settings": r.settings} for r in runs],
                               models=MODELS, ablated=list(MODELS),
                               config={"report": {"title": "T"}}),
        output=SimpleNamespace(html=str(report / "index.html")), log=[str(tmp_path / "log")])
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    html = (report / "index.html").read_text()
    assert 'id="ablation-smollm2-table"' in html and 'id="ablation-minilm-random-table"' in html
    assert 'href="models/smollm2.html"' in html
    smk.input.ablation = []  # optional
    smk.params.runs = smk.params.runs[:-1]  # and checked against the inputs
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    assert "same order" in (tmp_path / "log").read_text()


def test_a_verdict_the_random_weights_twin_shares_is_labelled():
    runs = fixture_runs()
    twin = dict(MODELS, minilm={"id": "all-MiniLM-L6-v2", "weights": "pretrained",
                                "layers": [0, 3]})
    # minilm: claim 1 supported at both levels in layer 0, claim 2 supported in layer 0; its
    # random twin supports only claim 2 there (exists), so only that verdict is labelled
    shared = {(1, 0): (S, S), (1, 3): (N, N), (2, 0): (S, N), (2, 3): (N, N)}
    random_base = {**VERDICTS[("minilm-random", "base")], (2, 0): (S, N)}
    runs = [r for r in runs if r.model != "minilm-random"] + [
        ModelVariant("minilm", "base", claims(shared), layers(0.0), {}),
        ModelVariant("minilm-random", "base", claims(random_base), layers(0.0), {})]
    matrix = robustness_matrix([(r.model, r.variant, r.claims) for r in runs], SETTINGS)
    html = overview_html(runs, matrix, robustness_summary(matrix), twin, {"report": {}})
    body = html.split('id="models-verdicts"', 1)[1].split("</table>", 1)[0]
    minilm = body.split('">minilm</a>', 1)[1].split("<tbody>", 1)[0]  # the minilm block
    assert minilm.count("also with random weights") == 1
    assert body.count("also with random weights") == 1  # smollm2 has no twin; the twin no label


def test_an_ablation_verdict_the_random_weights_twin_shares_is_labelled():
    twin = dict(MODELS, minilm={"id": "all-MiniLM-L6-v2", "weights": "pretrained",
                                "layers": [0, 3]})
    both = page(models=twin, ablation={"minilm": ablation(), "minilm-random": ablation()})
    alone = page(models=twin, ablation={"minilm": ablation(),
                                        "minilm-random": ablation().assign(verdict=N)})
    table = 'id="ablation-minilm-table"'
    assert "also with random weights" in both.split(table, 1)[1].split("</table>", 1)[0]
    assert "also with random weights" not in alone.split(table, 1)[1].split("</table>", 1)[0]


def test_findings_are_generated_from_the_verdicts():
    """The findings list says each model's verdicts as the tables have them, grouped by layer,
    and follows a change in a verdict (nothing in it is written by hand)."""
    html = page()
    found = html.split('id="findings"', 1)[1].split("</ul>\n</li>", 1)[0]
    assert ("<em>exists</em>: supported (layers 0, 3); <em>beyond geometry</em>: supported "
            "(layer 0), not supported (layer 3).") in found
    changed = {**VERDICTS, ("smollm2", "base"): {**VERDICTS[("smollm2", "base")],
                                                 (1, 3): (S, "not identifiable with this proxy")}}
    from intraneuron.report.findings import findings

    out = findings({"smollm2": claims(changed[("smollm2", "base")])}, MODELS)
    assert out[0]["lines"][0]["levels"][1] == (
        "beyond geometry", "supported (layer 0), not identifiable with this proxy (layer 3)")


def test_a_verdict_shared_with_the_random_twin_is_marked():
    from intraneuron.report.findings import findings

    models = {"gpt2": {"id": "gpt2", "weights": "pretrained"},
              "gpt2-random": {"id": "gpt2", "weights": "random"}}
    mine = claims({(1, 0): (S, S), (1, 1): (S, N)})
    twin = claims({(1, 0): (S, N), (1, 1): (N, N)})
    out = findings({"gpt2": mine, "gpt2-random": twin}, models)
    real, control = out[0]["lines"]
    assert real["levels"][0][1] == ("supported (layers 0, 1; also with random weights at "
                                    "layer 0)")
    assert real["levels"][1][1] == "supported (layer 0), not supported (layer 1)"
    assert control["control"] and "also with random weights" not in control["levels"][0][1]


def test_overview_files_stamp_and_citation(tmp_path):
    """The overview writes its pass-rate figure (PNG embedded, SVG beside) and CSV tables,
    links them, and states its build date, commit and config hash and how to cite."""
    runs = fixture_runs()
    crit = pd.DataFrame({"criterion": ["1A", "1A", "1B"], "layer": [0, 3, 0],
                         "pass_neuron": [0.5, 0.25, 0.75], "pass_shuffled": [0.05, 0.05, 0.0]})
    runs = [ModelVariant(r.model, r.variant, r.claims, r.layers, r.settings, crit) for r in runs]
    matrix = robustness_matrix([(r.model, r.variant, r.claims) for r in runs], SETTINGS)
    out = tmp_path / "report" / "index.html"
    build_overview(runs, matrix, robustness_summary(matrix), MODELS, str(out), {})
    html = out.read_text()
    files = sorted(p.name for p in (tmp_path / "report" / "index_files").iterdir())
    assert files == ["claims.csv", "pass_rates_by_kind.png", "pass_rates_by_kind.svg",
                     "robustness.csv", "robustness_summary.csv"]
    for name in files:
        if not name.endswith(".png"):
            assert f'href="index_files/{name}"' in html, name
    claims_csv = pd.read_csv(tmp_path / "report" / "index_files" / "claims.csv")
    assert len(claims_csv) == sum(len(r.claims) for r in runs)
    assert 'src="data:image/png;base64,' in html.split('id="fig-pass-rates"')[1]
    assert re.search(r'id="stamp">Built \d{4}-\d\d-\d\d \d\d:\d\d UTC .* commit <code>[^<]+'
                     r'</code> · config hash <code>[0-9a-f]+</code>', html)
    assert 'id="how-to-cite"' in html and "@software{intraneuron," in html
