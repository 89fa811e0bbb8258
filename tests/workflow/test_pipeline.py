"""The real workflow, end to end, on a tiny random GPT-2 and a tiny corpus in a temp dir."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from helpers.workflow import (
    BASE,
    MODEL_RESULTS,
    REPO,
    SNAKEMAKE,
    job_counts,
    run_snakemake,
)

from intraneuron import h5io
from intraneuron.core_tokens import select_core_tokens
from intraneuron.tables import read_provenance

pytestmark = pytest.mark.workflow

N_NEURONS = 40  # tiny GPT-2 MLP width (n_inner)


@pytest.fixture(scope="module")
def baseline(reference):
    """The shared complete run of the tiny project (tests/conftest.py)."""
    return reference[0]


def test_outputs_cover_every_neuron_once(baseline):
    everything = pd.read_parquet(baseline / BASE / "neurons.parquet")
    neurons = everything[everything["kind"] == "neuron"]
    assert len(neurons) == 2 * N_NEURONS
    assert sorted(neurons.groupby("layer").size().to_dict().items()) == [(0, 40), (1, 40)]
    assert not everything.duplicated(["layer", "kind", "neuron"]).any()
    assert neurons["n_clusters"].between(2, 4).all()
    kinds = everything.groupby("kind").size().to_dict()
    # every neuron has its shuffled and surrogate controls; every 8th a random direction
    assert kinds == {"neuron": 80, "shuffled": 80, "surrogate": 80, "random_direction": 10}
    layers = pd.read_parquet(baseline / BASE / "layers.parquet")
    assert sorted(set(layers["layer"])) == [0, 1] and len(layers) == 8
    criteria = pd.read_parquet(baseline / BASE / "criteria.parquet")
    tests = criteria[criteria["role"] == "test"]
    assert len(criteria) == 2 * 9 and len(tests) == 2 * 7 and tests["n_neuron"].gt(0).all()
    claims = pd.read_parquet(baseline / BASE / "claims.parquet")
    assert sorted(set(claims["claim"])) == [1, 2, 3]
    verdicts = {"supported", "not supported", "mixed", "not testable",
                "not identifiable with this proxy"}
    assert set(claims["verdict_exists"]) | set(claims["verdict_beyond_geometry"]) <= verdicts


def test_core_tokens_are_the_top_means_of_the_extracted_statistics(baseline):
    tokens = pd.read_parquet(baseline / BASE / "tables/tokens.parquet")
    for layer in (0, 1):
        stats, _ = h5io.read_stats(baseline / MODEL_RESULTS / f"activations/L{layer}.h5", layer)
        # Independent of the pipeline's selection: a plain sort of sum / count per neuron.
        special = {0}  # <|endoftext|>, the only special token of the tiny tokenizer
        for neuron in (0, 17, 39):
            eligible = [i for i in range(len(stats.token_ids))
                        if stats.count[i] >= 3 and stats.token_ids[i] not in special]
            eligible.sort(key=lambda i: (-stats.sum[i, neuron] / stats.count[i],
                                         stats.token_ids[i]))
            want = stats.token_ids[eligible[:12]]
            got = tokens.query("layer == @layer and neuron == @neuron").sort_values("rank")
            # the same set, in the same order up to exact ties (broken at random, not by id)
            assert set(got["token_id"]) == set(want)
            assert got["mean_activation"].is_monotonic_decreasing
            means = dict(zip(got["token_id"], got["mean_activation"], strict=True))
            np.testing.assert_array_equal(got["mean_activation"], [means[t] for t in want])
        assert select_core_tokens(stats, 12, 3, [0]).n_eligible == len(eligible)


def test_statistics_count_every_corpus_token(baseline):
    attrs = h5io.read_attrs_only(baseline / MODEL_RESULTS / "activations/L0.h5")
    stats, _ = h5io.read_stats(baseline / MODEL_RESULTS / "activations/L0.h5", 0)
    assert int(stats.count.sum()) == attrs["token_count"]
    assert attrs["model_id"].endswith("model") and attrs["weights"].startswith("sha256:")
    assert len(attrs["corpus_hash"]) == 64


def test_provenance_recorded_in_every_table(baseline):
    for name in ("neurons", "layers", "claims", "criteria", "tables/tokens"):
        prov = read_provenance(baseline / BASE / f"{name}.parquet")
        assert prov["config_hash"] and prov["corpus_hash"] and prov["weights"]
    assert "torch" in read_provenance(baseline / BASE / "neurons.parquet")["versions"]


def test_report_and_logs(baseline):
    page = (baseline / "results/report/models/model.html").read_text()
    assert "<img" in page or "data:image/png;base64" in page
    overview = (baseline / "results/report/index.html").read_text()
    assert 'href="models/model.html"' in overview
    for html in (page, overview):
        assert "http://" not in html.replace("http://www.w3.org", "")
    assert list((baseline / "results/report/models/model_figures").glob("*.png"))
    # every neuron's browser data and the tables as CSV, declared outputs of the page's rule
    data = baseline / "results/report/models/model_data"
    assert list(data.glob("L*_N*.js")) and list(data.glob("L*_index.js"))
    assert (data / "claims.csv").exists() and 'href="model_data/claims.csv"' in page
    assert list((baseline / "results/report/index_files").glob("*.csv"))
    assert "Run time per stage" in page and '<td>analyze</td>' in page
    for log in ("model/prepare_corpus", "model/base/merge", "model/report", "overview"):
        assert (baseline / f"results/logs/{log}.log").exists()
    assert (baseline / "results/benchmarks/model/extract/1-of-1.tsv").exists()


def test_nothing_to_do_after_a_complete_run(reference):
    out = run_snakemake(reference[0], "-n", snakefile=reference[1]).stdout
    assert "Nothing to be done" in out


def test_dry_run_of_the_paper_config_plans_16_shards_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    proc = subprocess.run([SNAKEMAKE, "-n", "-d", str(tmp_path), "-s", str(REPO / "Snakefile"),
                           "--configfile", str(REPO / "config/config.yaml")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    stats = job_counts(out)
    assert stats["analyze"] == 2 * 8 and stats["core_tokens"] == 16
    assert stats["extract"] == 1 and stats["reduce_chunks"] == 2
    assert "Loading weights" not in out


def test_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint", "-s", str(REPO / "Snakefile")], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations" in proc.stdout + proc.stderr


def test_snakemake_report_has_captions(reference):
    baseline, snakefile = reference
    run_snakemake(baseline, "--report", "snakemake-report.zip", snakefile=snakefile)
    import zipfile

    with zipfile.ZipFile(baseline / "snakemake-report.zip") as zf:
        names = zf.namelist()
        assert any(n.endswith("index.html") for n in names)
        text = "".join(zf.read(n).decode("utf-8", "replace") for n in names
                       if n.endswith((".html", ".js")))
    assert "claims" in text.lower() and "Kruskal" in text
