"""Bad input, interruption, determinism, shard invariance and minimal reruns (issue 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.workflow import (
    copy_workflow,
    job_counts,
    make_tiny_project,
    run_snakemake,
    tiny_config,
    write_config,
)

pytestmark = pytest.mark.workflow

TABLES = ["neurons.parquet", "layers.parquet", "claims.parquet", "tables/tokens.parquet",
          "tables/segments.parquet", "tables/clusters.parquet"]


def assert_same_results(a: Path, b: Path, exact: bool = True) -> None:
    for name in TABLES:
        x = pd.read_parquet(a / "results" / name)
        y = pd.read_parquet(b / "results" / name)
        if exact:
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        else:
            pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-6, atol=1e-9)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run, run through a private copy of the workflow code."""
    project = make_tiny_project(tmp_path_factory.mktemp("reference"))
    snakefile = copy_workflow(project / "wf")
    run_snakemake(project, snakefile=snakefile)
    return project, snakefile


# ---------------------------------------------------------------- minimal reruns (dry-run plan)

def planned(project: Path, snakefile: Path, **overrides) -> dict[str, int]:
    config = yaml.safe_load((project / "config.yaml").read_text())
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            config[section] = {**config[section], sub: value}
        else:
            config[key] = value
    (project / "changed.yaml").write_text(yaml.safe_dump(config))
    out = run_snakemake(project, "-n", configfile="changed.yaml", snakefile=snakefile).stdout
    return job_counts(out)


DOWNSTREAM_OF_ANALYSIS = {"analyze", "merge", "report"}
DOWNSTREAM_OF_CORE = DOWNSTREAM_OF_ANALYSIS | {"core_tokens"}


@pytest.mark.parametrize("change, expected", [
    ({}, set()),
    ({"analysis__seed": 7}, DOWNSTREAM_OF_ANALYSIS),
    ({"analysis__n_segments": 2}, DOWNSTREAM_OF_ANALYSIS),
    ({"analysis__permutations": 60}, DOWNSTREAM_OF_ANALYSIS),
    ({"analysis__linkage": "complete"}, DOWNSTREAM_OF_ANALYSIS),
    ({"core_tokens__k": 10}, DOWNSTREAM_OF_CORE),
    ({"core_tokens__min_count": 4}, DOWNSTREAM_OF_CORE),
    ({"block_size": 13}, DOWNSTREAM_OF_CORE),
    ({"report__example_neurons": 1}, {"report"}),
])
def test_config_change_reruns_exactly_what_it_affects(reference, change, expected):
    project, snakefile = reference
    assert set(planned(project, snakefile, **change)) == expected


def test_adding_a_layer_reruns_extraction_and_everything_downstream(reference):
    project, snakefile = reference
    plan = planned(project, snakefile, layers=[0, 1, 2])
    assert plan["extract"] == 1 and plan["reduce_chunks"] == 3 and plan["analyze"] == 6
    assert "prepare_corpus" not in plan


def test_changing_the_corpus_or_model_reruns_everything(reference):
    project, snakefile = reference
    corpus = project / "config.yaml"
    config = yaml.safe_load(corpus.read_text())
    plan = planned(project, snakefile, corpus={**config["corpus"], "max_tokens": 5000})
    assert plan["prepare_corpus"] == 1 and plan["extract"] == 1 and plan["analyze"] == 4
    model2 = project / "model-copy"
    if not model2.exists():
        shutil.copytree(project / "model", model2)
    plan = planned(project, snakefile, model={**config["model"], "id": str(model2)})
    assert plan["prepare_corpus"] == 1 and plan["extract"] == 1 and plan["embeddings"] == 1


def test_editing_a_script_reruns_the_rules_that_use_it(reference):
    project, snakefile = reference
    script = snakefile.parent / "workflow/scripts/merge.py"
    original = script.read_text()
    try:
        script.write_text(original + "\n# edited\n")
        assert set(planned(project, snakefile)) == {"merge", "report"}
    finally:
        script.write_text(original)


# ----------------------------------------------------------------------- determinism, invariance

def test_same_config_gives_identical_outputs(reference, tmp_path):
    again = make_tiny_project(tmp_path)
    run_snakemake(again)
    assert_same_results(reference[0], again, exact=True)
    for layer in (0, 1):
        with h5py.File(reference[0] / f"results/activations/L{layer}.h5") as a, \
                h5py.File(again / f"results/activations/L{layer}.h5") as b:
            for name in ("token_ids", "count", "sum", "max", "argmax"):
                np.testing.assert_array_equal(a[f"L{layer}/{name}"][...], b[f"L{layer}/{name}"][...])


def test_results_do_not_depend_on_sharding(reference, tmp_path):
    other = make_tiny_project(tmp_path, block_size=13, extract={"batch_tokens": 512, "chunks": 3})
    run_snakemake(other, "--cores", "2")
    assert len(list((other / "results/activations/chunks").glob("*.h5"))) == 3
    assert_same_results(reference[0], other, exact=False)


# -------------------------------------------------------------------------------- interruption

@pytest.mark.parametrize("fault", ["h5-write:1:job", "analyze-output:1:job",
                                   "h5-write:1:group", "analyze-output:2:group"])
def test_sigkill_mid_job_then_rerun_completes_with_same_outputs(reference, tmp_path, fault):
    """A job (or Snakemake with all its jobs) killed mid-write; the next run finishes the job."""
    project = make_tiny_project(tmp_path)
    killed = run_snakemake(project, check=False, env={"INTRANEURON_KILL_AT": fault})
    assert killed.returncode != 0
    assert not (project / "results/report/index.html").exists()
    if fault.startswith("h5-write"):
        # Killed while writing the chunk: nothing under the final name.
        assert not (project / "results/activations/chunks/1-of-1.h5").exists()
    if fault.endswith("group"):
        # Snakemake itself died: its lock stays, as after a power cut; --unlock is its remedy.
        run_snakemake(project, "--unlock")
    run_snakemake(project, "--rerun-incomplete")
    assert_same_results(reference[0], project, exact=True)


# ------------------------------------------------------------------------------------ bad input

def fails(project: Path, *extra: str, **overrides) -> str:
    write_config(project, tiny_config(project, **overrides))
    proc = run_snakemake(project, *extra, check=False)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


@pytest.fixture()
def project(tmp_path):
    return make_tiny_project(tmp_path)


@pytest.mark.parametrize("overrides, message", [
    ({"corpus": {"source": "text", "path": "x", "colour": 1}},
     "unknown config key 'colour' in corpus"),
    ({"block_size": "big"}, "config key 'block_size': 'big' is not of type 'integer'"),
    ({"block_size": 0}, "config key 'block_size': 0 is less than the minimum of 1"),
    ({"layers": [0, 5]}, "layers [5] do not exist in"),
    ({"analysis": {"max_clusters": 1}}, "analysis.max_clusters"),
])
def test_bad_config_stops_before_any_job(project, overrides, message):
    out = fails(project, "-n", **overrides)
    assert message in out
    assert not (project / "results").exists()


def test_k_larger_than_eligible_types_says_how_many_passed(project):
    out = fails(project, core_tokens={"k": 500, "min_count": 3})
    assert "token types pass min_count=3" in out and "fewer than core_tokens.k=500" in out
    assert not list((project / "results/shards").rglob("core_tokens.h5"))


@pytest.mark.parametrize("content, message", [
    (None, "matches no file"),
    (b"", "is empty or only whitespace"),
    (b"  \n\t\n", "is empty or only whitespace"),
    (b"caf\xe9 au lait", "is not UTF-8: invalid byte 0xe9 at byte offset 3"),
])
def test_bad_corpus_is_named_with_the_fix(tmp_path, content, message):
    project = make_tiny_project(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    if content is not None:
        (bad / "doc.txt").write_bytes(content)
    out = fails(project, corpus={"source": "text", "path": str(bad / "*.txt")})
    assert message in out
    assert not (project / "results/corpus/tokens.parquet").exists()


def test_model_missing_from_cache_while_offline(project, tmp_path):
    write_config(project, tiny_config(project, model={"id": "gpt2-xl"}, n_neurons=6400))
    proc = run_snakemake(project, check=False, env={"HF_HOME": str(tmp_path / "hf")})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "model 'gpt2-xl' is not in the Hugging Face cache" in out
    assert str(tmp_path / "hf") in out and "config/demo.yaml" in out


def test_local_model_path_without_weights(project):
    empty = project / "no-weights"
    empty.mkdir()
    shutil.copy(project / "model/config.json", empty / "config.json")
    out = fails(project, "-n", model={"id": str(empty)})
    assert f"model directory '{empty}' has no weights" in out


def test_truncated_hdf5_from_an_earlier_run_is_detected(reference, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    stats = project / "results/activations/L0.h5"
    data = stats.read_bytes()
    stats.write_bytes(data[: len(data) // 2])
    proc = run_snakemake(project, check=False, snakefile=reference[1])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"HDF5 file '{Path('results/activations/L0.h5')}'" in out or "L0.h5" in out
    assert "truncated or corrupted" in out and "delete" in out


def test_corrupted_hdf5_chunk_is_detected_by_checksum(reference, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    stats = project / "results/activations/L1.h5"
    with h5py.File(stats) as fh:
        offset = fh["L1/sum"].id.get_offset() if fh["L1/sum"].chunks is None else \
            fh["L1/sum"].id.get_chunk_info(0).byte_offset
    data = bytearray(stats.read_bytes())
    for i in range(offset + 16, offset + 64):
        data[i] ^= 0xFF
    stats.write_bytes(bytes(data))
    proc = run_snakemake(project, check=False, snakefile=reference[1])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "L1.h5" in out and "corrupted" in out
