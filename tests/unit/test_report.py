"""The HTML report, built from small tables made by the real analysis code.

`synthetic_inputs` is shared with the browser test: two layers of neurons whose core tokens
come from five word categories, with embeddings that cluster by category, so clusters,
segments, controls, criteria and claims all have real content. One neuron of layer 1 has tied
activations, so it is excluded from the claims.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape  # the templates' autoescape

from intraneuron import h5io
from intraneuron.analysis import (
    DEFAULT_PARAMS,
    add_layer_fdr,
    analyze_shard,
    evaluate_claims,
    evaluate_criteria,
    layer_contrasts,
    summarize_layers,
)
from intraneuron.analysis.criteria import CRITERIA, EFFECTS
from intraneuron.report import build_report
from intraneuron.report.browser import round4, script_json
from intraneuron.report.render import KIND_LABELS, pct, verdict_class
from intraneuron.tables import atomic_parquet

CATEGORIES = {
    "animals": ["cat", "dog", "horse", "bird", "fish", "mouse", "lion", "sheep", "goat", "wolf"],
    "colours": ["red", "green", "blue", "yellow", "black", "white", "brown", "grey", "pink",
                "teal"],
    "verbs": ["runs", "sleeps", "eats", "jumps", "sings", "walks", "swims", "reads", "hides",
              "flies"],
    "places": ["park", "river", "house", "garden", "forest", "city", "school", "road", "lake",
               "hill"],
    "numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
}
WORDS = [w for words in CATEGORIES.values() for w in words]
ANALYSIS = {"permutations": 100, "geometry_surrogates": 50, "bootstrap": 200, "n_segments": 4,
            "fine_segments": 8, "max_clusters": 6, "seed": 0}
K = 24


def _embeddings(rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(len(CATEGORIES), 16))
    rows = [centres[i] + 0.45 * rng.normal(size=16)
            for i, words in enumerate(CATEGORIES.values()) for _ in words]
    return np.asarray(rows, dtype=np.float32)


def _layer_tables(layer: int, n_neurons: int, emb: np.ndarray, rng: np.random.Generator):
    """Core tokens whose top ranks favour one category per neuron (stronger in layer 0)."""
    ids = np.zeros((n_neurons, K), dtype=np.int64)
    for n in range(n_neurons):
        favoured = rng.integers(len(CATEGORIES))
        weight = np.ones(len(WORDS))
        weight[favoured * 10:(favoured + 1) * 10] = 6.0 if layer == 0 else 2.0
        chosen = rng.choice(len(WORDS), size=K, replace=False, p=weight / weight.sum())
        bonus = np.where(chosen // 10 == favoured, 1.0, 0.0)
        order = np.argsort(-(bonus + rng.normal(scale=0.7, size=K)))
        ids[n] = chosen[order]
    mean = np.sort(rng.gamma(2.0, 1.0, size=(n_neurons, K)), axis=1)[:, ::-1] + 0.1
    if layer == 1:
        mean[0] = np.round(mean[0])  # a handful of levels: its ranking is decided by ties
    tables = analyze_shard(
        layer=layer, neurons=np.arange(n_neurons), token_ids=ids,
        tokens=[[" " + WORDS[i] for i in row] for row in ids], mean_act=mean.astype(np.float32),
        max_act=(mean * 3).astype(np.float32), counts=rng.integers(5, 500, size=ids.shape),
        embeddings=emb, params=ANALYSIS)
    tok = tables["tokens"]
    tok["context_left"] = ["the <b>" + w.strip() + "</b> & a" for w in tok["token"]]
    tok["context_right"] = [" saw a </script> in the " + w.strip() for w in tok["token"]]
    return tables


def synthetic_inputs(directory: Path, n_neurons: int = 16, seed: int = 1) -> tuple[dict, dict]:
    """Parquet tables + provenance HDF5 as the merge rule writes them, and a matching config."""
    rng = np.random.default_rng(seed)
    emb = _embeddings(rng)
    parts = [_layer_tables(layer, n_neurons, emb, rng) for layer in (0, 1)]
    frames = {name: pd.concat([p[name] for p in parts], ignore_index=True)
              for name in ("neurons", "tokens", "segments", "clusters")}
    neurons = add_layer_fdr(frames["neurons"], ANALYSIS)
    criteria = evaluate_criteria(neurons, ANALYSIS)
    tables = {"neurons": neurons,
              "layers": summarize_layers(neurons, frames["segments"], ANALYSIS),
              "criteria": criteria, "claims": evaluate_claims(criteria, ANALYSIS),
              "contrasts": layer_contrasts(criteria, ANALYSIS), "tokens": frames["tokens"],
              "segments": frames["segments"], "clusters": frames["clusters"]}
    meta = {"config_hash": "feedc0ffee", "corpus_hash": "c0ffee", "weights": "abc123",
            "model_id": "tiny/synthetic"}
    directory = Path(directory)
    paths = {}
    for name, frame in tables.items():
        paths[name] = str(directory / f"{name}.parquet")
        atomic_parquet(frame, paths[name], meta)
    paths["provenance"] = str(directory / "L0.h5")
    h5io.write_arrays(paths["provenance"], {"marker": np.zeros(1)}, {
        "model_id": "tiny/synthetic", "weights": "abc123", "architecture": "gpt2",
        "tokenizer": "GPT2TokenizerFast:tiny", "corpus_hash": "c0ffee", "token_count": 123456,
        "versions": {"numpy": np.__version__, "pandas": pd.__version__},
        "compute_dtype": "float32", "device": "cpu"})
    config = {
        "results": str(directory / "results"),
        "model": {"id": "tiny/synthetic", "revision": None, "architecture": "auto",
                  "dtype": "auto"},
        "layers": [0, 1],
        "corpus": {"source": "text", "path": "corpus/*.txt", "max_tokens": 6000,
                   "window_tokens": 48},
        "core_tokens": {"k": K, "min_count": 3, "context_tokens": 4},
        "analysis": {"proxy": "input_embeddings", "linkage": "average", **ANALYSIS,
                     "alpha": 0.05},
        "report": {"title": "Synthetic report", "example_neurons": 2, "browser_neurons": 10},
    }
    bench = Path(config["results"]) / "benchmarks"
    (bench / "analyze").mkdir(parents=True)
    (bench / "analyze" / "L0_B0.tsv").write_text("s\th:m:s\tmax_rss\n1.5\t0:00:01\t100.0\n")
    (bench / "analyze" / "L1_B0.tsv").write_text("s\th:m:s\tmax_rss\n2.5\t0:00:02\t120.0\n")
    (bench / "merge.tsv").write_text("s\th:m:s\tmax_rss\n0.5\t0:00:00\t-\n")
    (bench / "stray.tsv").write_text("s\th:m:s\tmax_rss\n99\t0:01:39\t1.0\n")  # not declared
    paths["benchmarks"] = [str(bench / "analyze" / "L0_B0.tsv"),
                           str(bench / "analyze" / "L1_B0.tsv"), str(bench / "merge.tsv")]
    return paths, config


def browser_data(html_path: Path) -> dict:
    """The page's browser manifest, with "neurons": every neuron of every data file it names
    (strings resolved), read as the page reads them."""
    html = Path(html_path).read_text(encoding="utf-8")
    m = re.search(r'<script id="browser-data" type="application/json">(.*?)</script>', html,
                  re.S)
    assert m, "browser data tag missing"
    data = json.loads(m.group(1))
    data["neurons"] = []
    for layer in data["layers"]:
        for first, last, href in data["blocks"][str(layer)]:
            text = (Path(html_path).parent / href).read_text(encoding="utf-8")
            assert text.startswith("intraneuronBlock(") and text.rstrip().endswith(");")
            block = json.loads(text[len("intraneuronBlock("):text.rindex(")")])
            strings = block["strings"]
            for n in block["neurons"]:
                assert first <= n["neuron"] <= last
                data["neurons"].append({**n, "tok": [strings[t] for t in n["tok"]],
                                        "ctx": [[strings[a], strings[b]] for a, b in n["ctx"]]})
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    inputs, config = synthetic_inputs(directory)
    html_path = directory / "report" / "index.html"
    figures_dir = directory / "report" / "figures"
    build_report(inputs, str(html_path), str(figures_dir), config, "cfg0123")
    return {"html": html_path.read_text(encoding="utf-8"), "path": html_path,
            "figures": figures_dir,
            "inputs": inputs, "config": config, "dir": directory}


def _section(html: str, marker: str, end: str = "</table>") -> str:
    assert marker in html, marker
    return html.split(marker)[1].split(end)[0]


def test_headline_gives_both_verdict_levels(built):
    summary = _section(built["html"], 'id="summary"', "</section>")
    claims = pd.read_parquet(built["inputs"]["claims"])
    assert summary.count('class="layer-verdict"') == len(claims)
    for _, r in claims.iterrows():
        exists, beyond = r["verdict_exists"], r["verdict_beyond_geometry"]
        assert (f'layer {r["layer"]}: exists <span class="verdict {verdict_class(exists)}">'
                f'{exists}</span> beyond geometry <span class="verdict '
                f'{verdict_class(beyond)}">{beyond}</span>') in summary
    for claim in claims["claim"].unique():
        assert (f'<li id="claim-{claim}"><a class="claim-id" href="#claim-{claim}">Claim '
                f'{claim}</a>') in summary  # a per-claim anchor
    assert "layer 0 (16 neurons), layer 1 (16 neurons)" in summary
    assert "<em>exists</em>" in summary and "<em>beyond geometry</em>" in summary


def test_claims_table_lists_every_criterion(built):
    html = built["html"]
    claims = pd.read_parquet(built["inputs"]["claims"])
    criteria = pd.read_parquet(built["inputs"]["criteria"])
    assert len(criteria) == 2 * (len(CRITERIA) + len(EFFECTS))
    table = _section(html, 'id="claims-table"')
    assert table.count('class="layer-row"') == len(criteria)  # one row per (criterion, layer)
    assert table.count('class="claim-row"') == claims["claim"].nunique()
    for claim in claims["claim"].unique():
        assert f"Claim {claim}" in table
    for _, r in claims.iterrows():
        for col, label in (("verdict_exists", "exists"),
                           ("verdict_beyond_geometry", "beyond geometry")):
            assert f'{label}: <span class="verdict {verdict_class(r[col])}">{r[col]}</span>' \
                in table
    for _, c in criteria.iterrows():
        assert f"<strong>{c['criterion']}</strong> {c['name']}" in table
        assert escape(c["rule"]) in table
    tests = criteria[(criteria["role"] == "test") & criteria["testable"]]
    marks = table.count('class="held-yes"') + table.count('class="held-no"')
    assert marks == len(tests) + tests["identifiable"].sum()
    assert table.count('class="held-yes"') == tests["exists"].sum() + tests[
        "beyond_geometry"].sum()
    assert table.count("effect statement, does not vote") == (criteria["role"] == "effect").sum()
    assert "Rule:" in html.split('id="claims-table"')[0].rsplit("<h3>", 1)[1]


def _per_layer_tables(html: str, cls: str) -> dict[int, str]:
    """The per-layer tables of one kind (class `cls`), by layer."""
    found = re.findall(rf'<table class="layers {cls}" id="[^"]+" data-layer="(\d+)">(.*?)</table>',
                       html, re.S)
    return {int(layer): body for layer, body in found}


def test_calibration_table(built):
    """One table per layer; every criterion row with its pass rates on neurons and controls."""
    criteria = pd.read_parquet(built["inputs"]["criteria"])
    criteria = criteria[criteria["role"] == "test"]  # effect statements have no pass rates
    tables = _per_layer_tables(built["html"], "calibration")
    assert sorted(tables) == sorted(criteria["layer"].astype(int).unique())
    for layer, table in tables.items():
        mine = criteria[criteria["layer"] == layer]
        rows = re.findall(r"<tr><td><strong>(\w+)</strong>.*?</tr>", table.split("<tbody>")[1])
        assert sorted(rows) == sorted(mine["criterion"])
        for head in ("Realised null rate", "Shuffled pass", "Surrogate pass",
                     "Random direction pass", "Neurons pass geometry test",
                     "Linear read-outs pass it"):
            assert head in table
        body = table.split("<tbody>")[1]
        for _, c in mine.iterrows():
            start = f"<tr><td><strong>{c['criterion']}</strong> {c['name']}"
            (row,) = [r for r in re.findall(r"<tr>.*?</tr>", body) if r.startswith(start)]
            for cell in (f'<span class="n">n = {c["n_neuron"]}</span>',
                         f'<td class="num">{pct(c["pass_shuffled"])}',
                         f'<td class="num">{pct(c["pass_surrogate"])}</td>'
                         f'<td class="num">{pct(c["pass_random_direction"])}</td>'):
                assert cell in row, (c["criterion"], cell)
    note = built["html"].split('id="calibration-table"')[0].rsplit('<p class="note">', 1)[1]
    assert "alpha = 0.05" in note and "realised null rate" in note


def test_calibration_shows_new_criteria_columns_generically():
    """A p-value or control pass-rate column the criteria table gains is shown, not dropped."""
    from intraneuron.report.render import calibration_columns

    crit = pd.DataFrame(columns=["pass_neuron", "pass_neuron_lo", "pass_neuron_hi",
                                 "pass_shuffled", "pass_smooth_null", "planted_pass",
                                 "variogram_null_p", "calibration_p"])
    cols = calibration_columns(crit)
    assert [c[0] for c in cols] == ["pass_neuron", "pass_shuffled", "pass_smooth_null",
                                    "planted_pass", "variogram_null_p"]
    assert cols[-1][1] == "p (variogram null)" and cols[-2][1] == "planted pass"


def test_contrasts_and_layers_tables(built):
    contrasts = pd.read_parquet(built["inputs"]["contrasts"])
    assert len(contrasts) == len(CRITERIA)
    table = _section(built["html"], 'id="contrasts-table"')
    assert table.count("layer 1 − layer 0") == len(contrasts)
    for _, r in contrasts.iterrows():
        assert f"<strong>{r['criterion']}</strong> {r['name']}" in table
        assert (f'{pct(r["difference"])} <span class="ci">[{pct(r["lo"])}, {pct(r["hi"])}]'
                "</span>") in table
    layers = pd.read_parquet(built["inputs"]["layers"])
    assert set(layers["kind"]) == set(KIND_LABELS)
    tables = _per_layer_tables(built["html"], "effects")
    assert sorted(tables) == [0, 1]  # one table per layer, so each fits the page
    for table in tables.values():
        for label in KIND_LABELS.values():
            assert f'<th class="num">{label}</th>' in table
        assert table.count("<th scope=row>") >= 2
    row = layers[(layers["layer"] == 1) & (layers["kind"] == "neuron")].iloc[0]
    assert f'{row["n_neurons"]} ({row["n_excluded"]})' in tables[1]


def test_excluded_neurons_are_named_and_left_out(built):
    neurons = pd.read_parquet(built["inputs"]["neurons"])
    real = neurons[neurons["kind"] == "neuron"]
    out = real[real["excluded"]]
    assert list(zip(out["layer"], out["neuron"], strict=True)) == [(1, 0)]
    note = _section(built["html"], 'id="excluded-note"', "</p>")
    assert "layer 1: 1" in note and "ranking decided by ties (1)" in note
    criteria = pd.read_parquet(built["inputs"]["criteria"])
    assert set(criteria.loc[criteria["layer"] == 1, "n_neuron"]) <= set(range(16))
    assert (criteria.loc[criteria["layer"] == 0, "n_neuron"] <= 16).all()
    data = browser_data(built["path"])
    entry = next((n for n in data["neurons"] if (n["layer"], n["neuron"]) == (1, 0)), None)
    if entry is not None:  # excluded neurons stay browsable, with their reason
        assert entry["excluded"].startswith("ranking decided by ties")


def test_figures_written_and_embedded(built):
    pngs = sorted(p.name for p in built["figures"].glob("*.png"))
    for name in ("homogeneity_by_segment", "neuron_metrics", "interleaving",
                 "cluster_distinctness"):
        assert f"{name}.png" in pngs
    examples = [p for p in pngs if p.startswith("example_L")]
    assert len(examples) == 2 * built["config"]["report"]["example_neurons"]
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', built["html"])
    assert len(images) == len(pngs)
    assert all(img.startswith("iVBORw0KGgo") for img in images)  # PNG signature


def test_page_is_self_contained(built):
    html = built["html"]
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script src" not in html and '<link rel="stylesheet"' not in html
    assert not list(built["dir"].joinpath("report").glob(".*tmp*"))


def test_browser_data_files_hold_every_neuron(built):
    """Every neuron of every layer is in exactly one data file, with its own tokens in rank
    order, contexts and clusters; the suggested neurons start with the strongest effect."""
    data = browser_data(built["path"])
    neurons = pd.read_parquet(built["inputs"]["neurons"])
    neurons = neurons[neurons["kind"] == "neuron"]  # the browser shows real neurons only
    tokens = pd.read_parquet(built["inputs"]["tokens"])
    assert data["layers"] == [0, 1]
    for layer in (0, 1):
        mine = sorted(n["neuron"] for n in data["neurons"] if n["layer"] == layer)
        assert mine == data["ids"][str(layer)] == sorted(
            neurons.loc[neurons["layer"] == layer, "neuron"])
        part = neurons[(neurons["layer"] == layer) & ~neurons["excluded"]].sort_values(
            ["top_coarse_z", "neuron"], ascending=[False, True])
        assert int(part["neuron"].iloc[0]) in {p[0] for p in data["picks"][str(layer)]}
    n = data["neurons"][-1]
    expected = tokens[(tokens["layer"] == n["layer"]) & (tokens["neuron"] == n["neuron"])]
    expected = expected.sort_values("rank")
    assert n["tok"] == list(expected["token"])
    assert n["cl"] == [int(x) for x in expected["cluster"]]
    assert n["seg"] == [int(x) for x in expected["segment"]]
    left, right = n["ctx"][0]
    assert left == expected["context_left"].iloc[0]
    assert "</script>" in right  # survived escaping inside the script file
    assert len(n["clusters"]) == int(neurons.set_index(["layer", "neuron"]).loc[
        (n["layer"], n["neuron"]), "n_clusters"])
    assert "all 16" in built["html"].replace("<strong>", "").replace("</strong>", "")


def test_browser_numbers_keep_four_significant_digits():
    """The data files' numbers equal Python's own 4-significant-digit formatting across 17
    orders of magnitude, whole numbers are written as integers, anything else as null."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20_000) * 10.0 ** rng.integers(-8, 9, 20_000)
    assert round4(x) == [float(f"{v:.4g}") for v in x]
    assert round4([0, -0.0, 12345.0, 2.5, 1e20, np.nan, np.inf, None, pd.NA, "x"]) == [
        0, 0, 12340, 2.5, 10**20, None, None, None, None, None]
    assert all(type(v) is int for v in round4([3.0, 12345.0]))


def test_data_files_are_split_in_blocks(tmp_path, monkeypatch):
    """A layer larger than one file is split into blocks that tile its neurons; a rebuild
    leaves no stale file of an earlier split."""
    from intraneuron.report import browser

    inputs, config = synthetic_inputs(tmp_path, n_neurons=10)
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    monkeypatch.setattr(browser, "NEURONS_PER_FILE", 4)
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    data = browser_data(html_path)
    assert [b[:2] for b in data["blocks"]["0"]] == [[0, 3], [4, 7], [8, 9]]
    assert len(data["neurons"]) == 20
    files = sorted(p.name for p in (tmp_path / "index_data").glob("*.js"))
    assert len(files) == 2 * 3 + 2  # three blocks and one token index per layer


def test_methods_come_from_the_config(built):
    methods = built["html"].split('id="methods"')[1].split("</section>")[0]
    for text in ("tiny/synthetic", "<code>24</code>", "<code>3</code>", "<code>100</code>",
                 "<code>50</code>", "<code>200</code>", "<code>average</code>", "<code>8</code>",
                 "6,000", "<code>0.05</code>", "silhouette", "<code>0.1</code>",
                 f"<code>{DEFAULT_PARAMS['random_direction_every']}</code>th neuron",
                 "<code>shuffled, surrogate, random_direction</code>",
                 "<em>beyond geometry</em>"):
        assert text in methods, text


def test_provenance_section(built):
    prov = built["html"].split('id="provenance"')[1].split("</section>")[0]
    for text in ("abc123", "c0ffee", "123,456", "cfg0123", "GPT2TokenizerFast", "numpy",
                 "analyze", "merge", "max_tokens: 6000"):
        assert text in prov, text
    assert "stray" not in prov  # only the benchmark files the report declares as inputs


def test_no_budget_no_benchmarks_no_provenance(tmp_path):
    """browser_neurons: null embeds every neuron; missing run metadata never fails the build."""
    inputs, config = synthetic_inputs(tmp_path, n_neurons=8)
    config["report"]["browser_neurons"] = None
    config["results"] = str(tmp_path / "elsewhere")
    inputs["provenance"] = str(tmp_path / "missing.h5")
    del inputs["benchmarks"]
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    html = html_path.read_text(encoding="utf-8")
    data = browser_data(html_path)
    assert len(data["neurons"]) == 16
    assert "No benchmark files were found" in html


def test_degenerate_tables_still_build(tmp_path):
    """Empty segment/cluster/layer/criteria/claims/contrasts tables, a layer with only NaN
    metrics, and no control rows at all."""
    inputs, config = synthetic_inputs(tmp_path, n_neurons=6)
    for name in ("segments", "clusters", "claims", "layers", "criteria", "contrasts"):
        atomic_parquet(pd.read_parquet(inputs[name]).iloc[0:0], inputs[name], {})
    neurons = pd.read_parquet(inputs["neurons"])
    neurons = neurons[neurons["kind"] == "neuron"].reset_index(drop=True)
    metrics = [c for c in neurons.columns if neurons[c].dtype.kind == "f"]
    neurons.loc[neurons["layer"] == 1, metrics] = np.nan
    atomic_parquet(neurons, inputs["neurons"], {})
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    html = html_path.read_text(encoding="utf-8")
    for text in ("No claims were evaluated.", "The claims table is empty.",
                 "The criteria table is empty.", "Only one layer: no layer contrasts.",
                 "The layer summary is empty."):
        assert text in html, text
    assert "calibration-table" not in html and "contrasts-table" not in html
    assert len(list((tmp_path / "figs").glob("example_L1_*.png"))) == 2
    assert len(browser_data(html_path)["neurons"]) == 12


def test_report_data_splits_neurons_from_controls(built):
    from intraneuron.report.data import load
    from intraneuron.report.render import excluded_note

    data = load(built["inputs"], built["config"], "x")
    for frame in (data.neurons, data.segments, data.clusters):
        assert set(frame["kind"]) == {"neuron"}
    assert set(data.controls["kind"]) == {"shuffled", "surrogate", "random_direction"}
    assert set(data.control_segments["kind"]) == set(data.controls["kind"])
    assert len(data.neurons) == 32 and len(data.excluded()) == 1
    assert len(data.analyzed(1)) == 15 and len(data.analyzed()) == 31
    assert not data.criteria.empty and not data.contrasts.empty
    data.neurons["excluded"] = False
    assert "No neuron was excluded." in excluded_note(data)


def test_script_json_cannot_close_its_tag():
    text = script_json({"s": "</script><!-- & x", "n": None})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"s": "</script><!-- & x", "n": None}


@pytest.mark.parametrize("verdict,cls", [("supported", "verdict-yes"),
                                         ("not supported", "verdict-no"),
                                         ("mixed", "verdict-mixed")])
def test_verdict_colours(verdict, cls):
    assert verdict_class(verdict) == cls


def test_openai_comparison_section(tmp_path, built):
    """With an `openai` input: a per-layer table and a histogram; without: no trace of it."""
    from intraneuron.openai_compare import compare_with_openai

    inputs, config = synthetic_inputs(tmp_path, n_neurons=6)
    tokens = pd.read_parquet(inputs["tokens"])
    release = tmp_path / "related-tokens" / "activation-based"
    for (layer, neuron), grp in tokens.groupby(["layer", "neuron"]):
        if layer == 1 and neuron >= 4:
            continue  # two neurons of layer 1 have no file
        ours = list(grp.sort_values("rank")["token"])
        theirs = ours[: 6 + neuron] + [" zebra", " quartz"]
        (release / str(layer)).mkdir(parents=True, exist_ok=True)
        (release / str(layer) / f"{neuron}.json").write_text(json.dumps(
            {"tokens": theirs, "average_activations": list(range(len(theirs), 0, -1))}))
    frame = compare_with_openai(tokens, tmp_path, top_n=10)
    inputs["openai"] = str(tmp_path / "openai_overlap.parquet")
    atomic_parquet(frame, inputs["openai"], {"openai_directory": str(release)})
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    html = html_path.read_text(encoding="utf-8")
    table = html.split('id="openai-table"')[1].split("</table>")[0]
    cells = re.findall(r"<tr><th scope=row>([^<]*)</th>(.*?)</tr>", table)
    values = {label: re.findall(r'<td class="num">([^<]*)</td>', row) for label, row in cells}
    assert values["neurons compared"] == ["6", "6"]
    assert values["neurons with an OpenAI file"] == ["6", "4"]
    found = frame[frame["found"]]
    want = found.groupby("layer")["overlap_frac"].agg(["mean", "median"])
    assert values["mean overlap (share of the top tokens shared)"] == [
        f"{100 * v:.1f}%" for v in want["mean"]]
    assert values["median overlap"] == [f"{100 * v:.1f}%" for v in want["median"]]
    assert str(release) in html and "top 10" in html
    assert (tmp_path / "figs" / "openai_overlap.png").exists()
    assert 'id="fig-openai-overlap"' in html
    assert "openai-table" not in built["html"] and "OpenAI" not in built["html"]
    assert not (built["figures"] / "openai_overlap.png").exists()


def test_values_are_escaped_by_the_templates(tmp_path):
    """Autoescape: markup in a token, an exclusion reason or a config string comes out as text;
    the browser data keeps it intact inside its script tag."""
    evil = "<script>alert(1)</script>"
    inputs, config = synthetic_inputs(tmp_path, n_neurons=6)
    config["report"]["title"] = f"Title {evil}"
    config["corpus"]["path"] = f"corpus/{evil}.txt"
    neurons = pd.read_parquet(inputs["neurons"])
    neurons.loc[neurons["excluded"], "exclusion_reason"] = f"{evil}: why"
    atomic_parquet(neurons, inputs["neurons"], {})
    tokens = pd.read_parquet(inputs["tokens"])
    tokens.loc[tokens["rank"] == 0, "token"] = evil
    atomic_parquet(tokens, inputs["tokens"], {})
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, f"hash{evil}")
    html = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in html
    escaped = escape(evil)
    assert f"<title>Title {escaped} — index (tiny/synthetic)</title>" in html
    assert f"<h1>Title {escaped}: index" in html
    assert f"<code>hash{escaped}</code>" in html  # config hash in the header and provenance
    assert f"{escaped} (1)" in _section(html, 'id="excluded-note"', "</p>")
    assert f"corpus/{escaped}.txt" in html.split('id="methods"')[1].split("</section>")[0]
    assert f"title: Title {escaped}" in html.split("<pre class=config>")[1]
    data = browser_data(html_path)
    assert {n["tok"][0] for n in data["neurons"]} == {evil}


def test_missing_optional_sections_take_the_schema_defaults(tmp_path):
    """A config with only the required keys: every default comes from the schema."""
    from intraneuron.config import with_defaults

    inputs, config = synthetic_inputs(tmp_path, n_neurons=6)
    for key in ("report", "analysis", "core_tokens", "corpus"):
        del config[key]
    defaults = with_defaults({})
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    html = html_path.read_text(encoding="utf-8")
    assert f"<h1>{defaults['report']['title']}: index" in html
    per_layer = min(defaults["report"]["example_neurons"], 6)
    assert len(list((tmp_path / "figs").glob("example_L*.png"))) == 2 * per_layer
    assert defaults["report"]["browser_neurons"] >= 6
    assert len(browser_data(html_path)["neurons"]) == 12
    alpha = defaults["analysis"]["alpha"]
    assert f"alpha = {alpha}" in html and "realised null rate" in html
    assert f"The {defaults['core_tokens']['k']} core tokens" in html


def test_cluster_structure_is_said_in_words_per_layer(built):
    layers = pd.read_parquet(built["inputs"]["layers"])
    items = _section(built["html"], 'id="cluster-structure"', "</ul>")
    for layer in (0, 1):
        row = layers[(layers["layer"] == layer) & (layers["kind"] == "neuron")].iloc[0]
        assert (f"Layer {layer}: the core tokens of <strong>{pct(row['cluster_structure_frac'])}"
                f"</strong> of {row['n_structure']}") in items


def test_methods_name_the_variant_choices_and_random_weights():
    from intraneuron.report.methods import methods_html

    base = {"model": {"id": "m"}, "corpus": {"source": "text", "path": "x"}}
    plain = methods_html(base)
    assert "random weights" not in plain and "hierarchical clustering" in plain
    assert "of equal size by rank" in plain and "selectivity" not in plain
    varied = methods_html({**base, "model": {"id": "m", "weights": "random", "init_seed": 3},
                           "analysis": {"clustering": "spectral", "proxy": "wordnet",
                                        "selectivity": "positive", "segment_cut": "value"}})
    for text in ("random weights", "seed <code>3</code>", "spectral clustering", "supersenses",
                 "above zero", "equal-width bands"):
        assert text in varied, text


def test_a_random_weights_page_says_it_is_a_control(tmp_path):
    """model.weights: random puts 'random weights: control' in the title, the header and the
    summary, and links the trained twin and the overview; a trained model's page has no banner
    and links its control."""
    inputs, config = synthetic_inputs(tmp_path, n_neurons=6)
    models = {"tiny": {"id": "tiny/synthetic", "weights": "pretrained"},
              "tiny-random": {"id": "tiny/synthetic", "weights": "random"}}
    site = {"models": models, "overview": str(tmp_path / "report" / "index.html")}
    pages = {}
    for name, weights in (("tiny", "pretrained"), ("tiny-random", "random")):
        cfg = {**config, "model": {**config["model"], "weights": weights, "init_seed": 7}}
        path = tmp_path / "report" / "models" / f"{name}.html"
        build_report(inputs, str(path), str(path.with_name(f"{name}_figures")), cfg, "x",
                     site=site)
        pages[name] = path.read_text(encoding="utf-8")
    control = pages["tiny-random"]
    title = control.split("<title>")[1].split("</title>")[0]
    assert "random weights: control" in title and "tiny-random" in title
    header = control.split('<header class="top control">')[1].split("</header>")[0]
    assert 'class="control-tag">random weights: control' in header
    assert "Random weights: control." in header and 'href="tiny.html"' in header
    assert 'href="../index.html"' in header
    assert "Random weights: control." in _section(control, 'id="summary"', "</section>")
    trained = pages["tiny"]
    assert "random weights: control" not in trained.split("</header>")[0].split("<title>")[1]
    assert "Random weights: control." not in trained
    assert 'href="tiny-random.html"' in trained.split("</header>")[0]


def test_stage_times_name_the_rule_whatever_the_wildcards(tmp_path):
    """The models x variants layout: benchmarks/<model>/[<variant>/]<rule>[/<wildcards>].tsv;
    wildcard folders (variant, core-token setting, proxy) are never taken for rules."""
    from intraneuron.report.data import stage_times

    root = tmp_path / "benchmarks" / "smollm2"
    files = {"prepare_corpus.tsv": 1, "extract/0.tsv": 2, "extract/1.tsv": 3,
             "embeddings/minilm.tsv": 4, "core_tokens/k100-589089a7/L0_B0.tsv": 5,
             "base/analyze/L0_B0.tsv": 6, "base/analyze/L0_B1.tsv": 7, "base/merge.tsv": 8}
    for rel, seconds in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:0{seconds}\t{2000 * seconds}\n")
    rules = {"prepare_corpus", "extract", "embeddings", "core_tokens", "analyze", "merge",
             "report"}
    times = stage_times([str(root / r) for r in files], rules).set_index("rule")
    assert set(times.index) == {"prepare_corpus", "extract", "embeddings", "core_tokens",
                                "analyze", "merge"}
    assert times.loc["analyze", "jobs"] == 2 and times.loc["analyze", "wall_s"] == 13
    assert times.loc["extract", "max_rss_mb"] == 6000
    # without the rule names, the old guess takes wildcard folders for rules
    guessed = set(stage_times([str(root / r) for r in files])["rule"])
    assert {"base", "k100-589089a7"} <= guessed


def test_numbers_are_shown_truly():
    from intraneuron.report.render import RESOLUTION, fmt, memory

    assert fmt(5.67e-16) == "0" and fmt(-RESOLUTION / 2) == "0"
    assert fmt(RESOLUTION * 10) != "0" and fmt(0.0123) == "0.0123"
    assert memory(1570.0) == "1.53 GB" and memory(512.4) == "512 MB" and memory(None) == "–"


def test_configuration_as_used():
    """Settings of options the run did not use are left out; local paths are shortened."""
    from intraneuron.config import with_defaults
    from intraneuron.report.settings import as_used

    config = with_defaults({"results": "/work/main/results/demo",
                            "corpus": {"source": "wordnet", "path": "/usr/share/wordnet"},
                            "analysis": {"clustering": "hdbscan"}})
    shown = as_used(config)
    assert "dataset" not in shown["corpus"] and "split" not in shown["corpus"]
    assert shown["corpus"]["path"] == "…/wordnet" and shown["results"] == "…/demo"
    assert "linkage" not in shown["analysis"] and "min_clusters" not in shown["analysis"]
    assert shown["analysis"]["hdbscan_min_cluster_size"] == config["analysis"][
        "hdbscan_min_cluster_size"]
    assert "init_seed" not in shown["model"] and "models" not in shown
    hf = as_used(with_defaults({"corpus": {"source": "huggingface", "dataset": "x/y"}}))
    assert hf["corpus"]["dataset"] == "x/y" and "path" not in hf["corpus"]
    assert "linkage" in hf["analysis"]  # hierarchical clustering is the default


def test_citation_is_read_from_citation_cff(tmp_path):
    from intraneuron.report.meta import FALLBACK, citation

    cff = tmp_path / "CITATION.cff"
    cff.write_text("cff-version: 1.2.0\ntitle: intraneuron\nversion: 9.9.9\n"
                   "date-released: 2026-12-01\nrepository-code: https://example.org/x\n"
                   "authors:\n  - family-names: Doe\n    given-names: Ada\n", encoding="utf-8")
    cite = citation(cff)
    assert cite["text"] == "Ada Doe (2026). intraneuron (version 9.9.9). https://example.org/x"
    assert "author = {Ada Doe}" in cite["bibtex"] and cite["source"] == "CITATION.cff"
    missing = citation(tmp_path / "absent.cff")
    assert missing["source"].startswith("built in") and FALLBACK["title"] in missing["text"]


def test_downloads_beside_the_page(built):
    """Every key table as CSV and every figure as SVG, linked from the page."""
    html, folder = built["html"], built["path"].with_name("index_data")
    for name in ("claims", "criteria", "contrasts", "layers", "neurons", "stage_times"):
        assert (folder / f"{name}.csv").exists(), name
        assert f'href="index_data/{name}.csv"' in html, name
    criteria = pd.read_csv(folder / "criteria.csv")
    assert len(criteria) == len(pd.read_parquet(built["inputs"]["criteria"]))
    for png in built["figures"].glob("*.png"):
        assert png.with_suffix(".svg").exists(), png.name
        assert f'href="figures/{png.stem}.svg"' in html, png.name
    assert re.search(r'id="stamp">Built .* commit <code>[^<]+</code> · config hash '
                     r'<code>cfg0123</code>', html)


def test_category_labels_section_and_browser(tmp_path, built):
    """With the labelling stage's tables: the distinct share per layer in the results and every
    cluster's and segment's label in the browser data; without: no trace of them."""
    from intraneuron.analysis.columns import conform
    from intraneuron.labels import distinct_layers, distinctness
    from intraneuron.labels.stage import token_sets

    inputs, config = synthetic_inputs(tmp_path, n_neurons=6)
    sets = token_sets(pd.read_parquet(inputs["tokens"]), 10)
    sets = sets[sets["neuron"] < 4]
    # layer 0: neurons 0 and 1 give every cluster the same name; layer 1: all distinct
    same = (sets["layer"] == 0) & (sets["neuron"] < 2)
    labels = sets.assign(label=[f"{'thing' if s else 'kind'} {u} {i if not s else ''}".strip()
                                for s, u, i in zip(same, sets["unit"], sets["index"],
                                                   strict=True)])
    neurons = distinctness(labels)
    layers = distinct_layers(neurons)
    for name, frame, table in (("labels", labels, "labels"),
                               ("label_neurons", neurons, "label_neurons"),
                               ("label_layers", layers, "label_layers")):
        inputs[name] = str(tmp_path / f"{name}.parquet")
        atomic_parquet(conform(frame, table), inputs[name],
                       {"labeller": "local:SmolLM2", "prompts": "v1-abc"})
    html_path = tmp_path / "index.html"
    build_report(inputs, str(html_path), str(tmp_path / "figs"), config, "x")
    html = html_path.read_text(encoding="utf-8")
    table = html.split('id="labels-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><th scope=row>(\d+)</th>(.*?)</tr>", table, re.S)
    cells = {int(layer): re.findall(r'<td class="num">([^<]*)</td>', row) for layer, row in rows}
    judged = neurons[neurons["defined"]].groupby("layer").size()
    assert cells[0][1] == str(judged[0]) and cells[0][2] == str(judged[0] - 2)
    assert cells[1][2] == cells[1][1] and cells[1][3] == "100.0%"
    assert "local:SmolLM2" in html and "v1-abc" in html
    shown = {(n["layer"], n["neuron"]): n.get("labels") for n in browser_data(html_path)["neurons"]}
    assert shown[(0, 0)]["cl"]["0"] == "thing cluster"
    assert shown[(1, 2)]["seg"]["1"] == "kind segment 1"
    assert shown[(1, 5)] is None  # not labelled
    assert "labels-table" not in built["html"]
