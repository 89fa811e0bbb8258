"""Bad input and minimal reruns (issues 6 and 12); interruption and determinism are in
test_recovery.py."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml
from helpers.workflow import (
    ABLATION,
    DOWNSTREAM_OF_ANALYSIS,
    DOWNSTREAM_OF_CORE,
    MODEL_RESULTS,
    REPORTS,
    SNAKEMAKE,
    copy_workflow,
    job_counts,
    make_tiny_project,
    run_snakemake,
    tiny_config,
    write_config,
)

pytestmark = pytest.mark.workflow

# `reference` (tests/conftest.py): one uninterrupted run of the tiny project, shared.


# ---------------------------------------------------------------- minimal reruns (dry-run plan)

def dry_run(project: Path, snakefile: Path, *extra: str, **overrides) -> str:
    """The dry run's output with the project's config changed (`section__key=value`)."""
    config = yaml.safe_load((project / "config.yaml").read_text())
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            config[section] = {**config[section], sub: value}
        else:
            config[key] = value
    (project / "changed.yaml").write_text(yaml.safe_dump(config))
    return run_snakemake(project, "-n", *extra, configfile="changed.yaml",
                         snakefile=snakefile).stdout


def planned(project: Path, snakefile: Path, **overrides) -> dict[str, int]:
    return job_counts(dry_run(project, snakefile, **overrides))


def forced_plan(project: Path, snakefile: Path, **overrides) -> list[dict]:
    """Every job of a forced dry run on 2 cores: its rule and threads (Snakemake prints a job's
    threads when above 1)."""
    jobs: list[dict] = []
    for line in dry_run(project, snakefile, "--forceall", **overrides).splitlines():
        if match := re.match(r"\s*(?:local)?rule (\w+):$", line):
            jobs.append({"rule": match[1], "threads": 1})
        elif jobs and (match := re.match(r"\s+threads: (\d+)$", line)):
            jobs[-1]["threads"] = int(match[1])
    return jobs


@contextmanager
def restored(*paths: Path):
    """Undo edits (content and mtime) of files of the shared reference project, and remove files
    created in the block, so later tests see it unchanged."""
    saved = {p: (p.read_bytes(), os.stat(p)) for p in paths if p.exists()}
    try:
        yield
    finally:
        for p in paths:
            if p in saved:
                data, st = saved[p]
                p.write_bytes(data)
                os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                p.unlink(missing_ok=True)


@pytest.mark.parametrize("change, expected", [
    ({}, set()),
    ({"analysis__seed": 7}, DOWNSTREAM_OF_ANALYSIS),
    ({"analysis__n_segments": 4}, DOWNSTREAM_OF_ANALYSIS),
    ({"analysis__permutations": 60}, DOWNSTREAM_OF_ANALYSIS),
    ({"analysis__linkage": "complete"}, DOWNSTREAM_OF_ANALYSIS),
    ({"core_tokens__k": 10}, DOWNSTREAM_OF_CORE),
    ({"core_tokens__min_count": 4}, DOWNSTREAM_OF_CORE),
    ({"block_size": 13}, DOWNSTREAM_OF_CORE),
    ({"report__example_neurons": 1}, {"report_model", "overview"}),
    # the verdict's level and the control's swaps: the layer summary, not the forward passes
    ({"ablation": {"swaps": 50}}, {"merge_ablation", "report_model", "overview"}),
    ({"extract__skip_first_positions": 1}, {"extract", "reduce_chunks"} | DOWNSTREAM_OF_CORE),
])
def test_config_change_reruns_exactly_what_it_affects(reference, change, expected):
    project, snakefile = reference
    assert set(planned(project, snakefile, **change)) == expected


MODEL_JOBS = ("extract", "ablate", "label", "categorize")  # the jobs that run a model


def test_model_threads_sets_the_model_jobs_threads_and_reruns_only_the_reports(reference):
    project, snakefile = reference
    every_core = forced_plan(project, snakefile)
    one = forced_plan(project, snakefile, model__threads=1)
    assert {job["rule"] for job in every_core if job["threads"] == 2} == {"extract", "ablate"}
    assert all(job["threads"] == 1 for job in every_core if job["rule"] not in MODEL_JOBS)
    assert all(job["threads"] == 1 for job in one) and len(one) == len(every_core)
    # execution only: no result changes, the reports show the config they were made with
    assert set(planned(project, snakefile, model__threads=1)) == {"report_model", "overview"}


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


# ---------------------------------------------------------------- models and variants

WARD = {"analysis": {"linkage": "ward"}}


def test_adding_a_variant_plans_only_its_analysis(reference):
    project, snakefile = reference
    plan = planned(project, snakefile, variants={"ward": WARD})
    # the same core_tokens keys: its core tokens are shared; only its 4 shards are analysed
    # (and its power check, which depends on its analysis settings)
    assert plan == {"analyze": 4, "check_power": 1, "merge": 1, "robustness": 1, "overview": 1}


def test_a_variant_with_other_core_token_keys_gets_its_own_core_tokens(reference):
    project, snakefile = reference
    plan = planned(project, snakefile, variants={"k10": {"core_tokens": {"k": 10}}})
    assert plan["core_tokens"] == 4 and plan["analyze"] == 4
    assert "extract" not in plan and "prepare_corpus" not in plan


def test_changing_or_removing_a_variant_plans_only_what_it_affects(reference, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    snakefile = reference[1]
    config = yaml.safe_load((project / "config.yaml").read_text())
    write_config(project, {**config, "variants": {"ward": WARD}})
    run_snakemake(project, snakefile=snakefile)
    changed = {"ward": {"analysis": {"linkage": "complete"}}}
    assert planned(project, snakefile, variants=changed) == {
        "analyze": 4, "check_power": 1, "merge": 1, "robustness": 1, "overview": 1}
    # removed: only the run's summary and overview are redone; the base variant stays
    assert set(planned(project, snakefile, variants={})) == {"robustness", "overview"}
    matrix = pd.read_parquet(project / "results/robustness.parquet")
    assert set(matrix["variant"]) == {"base", "ward"}


def test_prompt_based_categories_are_a_proxy_variant_shown_with_their_validity(
        reference, smollm2_instruct, tmp_path):
    """analysis.proxy: llm (issue 22): the labeller sorts every eligible token, the variant
    analyses its neurons with the categories as the proxy (every core token has one), and the
    model page shows the labeller's agreement with WordNet and the re-judged claims. A rerun
    plans nothing; another labeller sorts again and reruns only what depends on the sorting."""
    from intraneuron.labels.categories import validity

    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    snakefile = reference[1]
    config = yaml.safe_load((project / "config.yaml").read_text())
    labels = {"model": str(smollm2_instruct), "cache": str(tmp_path / "answers.sqlite")}
    write_config(project, {**config, "labels": labels,
                           "variants": {"llm": {"analysis": {"proxy": "llm"}}}})
    run_snakemake(project, snakefile=snakefile)
    (path,) = (project / MODEL_RESULTS / "categories").glob("*.parquet")
    categories = pd.read_parquet(path)
    with h5py.File(next((project / MODEL_RESULTS / "core").glob("*/L0/B0/core_tokens.h5"))) as f:
        eligible = set(f["eligible"][:].tolist())
    assert set(categories["token_id"]) == eligible
    neurons = pd.read_parquet(project / MODEL_RESULTS / "variants/llm/neurons.parquet")
    assert len(neurons) and (neurons["proxy_coverage"] == 1).all()
    page = (project / "results/report/models/model.html").read_text()
    check = validity(categories)
    assert f"AMI {check['ami_wordnet']:.3f}</strong>" in page
    assert f"the {check['n_wordnet']} tokens both" in page and "<code>llm</code>" in page
    assert planned(project, snakefile) == {}
    other = tmp_path / "labeller"
    other.symlink_to(smollm2_instruct, target_is_directory=True)
    assert planned(project, snakefile, labels={**labels, "model": str(other)}) == {
        "categorize": 1, "embeddings": 1, "analyze": 4, "check_power": 1, "merge": 1,
        "robustness": 1, "report_model": 1, "overview": 1}


def test_adding_a_model_plans_only_that_models_jobs(reference):
    project, snakefile = reference
    other = project / "model-copy"
    if not other.exists():
        shutil.copytree(project / "model", other)
    plan = planned(project, snakefile, models={"model": {}, "copy": {"model": {"id": str(other)}}})
    # every stage once for the new model; the old model's jobs are not planned
    assert plan["prepare_corpus"] == 1 and plan["extract"] == 1 and plan["analyze"] == 4
    assert plan["merge"] == 1 and plan["check_power"] == 1
    # every model page links the run's other pages: the old model's page is rebuilt, only it
    assert plan["report_model"] == 2


def test_a_variant_naming_an_unknown_model_is_refused(reference):
    project, snakefile = reference
    config = yaml.safe_load((project / "config.yaml").read_text())
    (project / "bad.yaml").write_text(yaml.safe_dump(
        {**config, "variants": {"ward": {**WARD, "models": ["nope"]}}}))
    proc = run_snakemake(project, "-n", configfile="bad.yaml", snakefile=snakefile, check=False)
    assert proc.returncode != 0
    assert "variants.ward.models" in proc.stderr and "nope" in proc.stderr


def test_editing_a_script_reruns_the_rules_that_use_it(reference):
    project, snakefile = reference
    script = snakefile.parent / "workflow/scripts/merge.py"
    with restored(script):  # content and mtime: a newer script alone makes Snakemake rerun
        script.write_text(script.read_text() + "\n# edited\n")
        assert set(planned(project, snakefile)) == {"merge"} | ABLATION | REPORTS


DOWNSTREAM_OF_CORPUS = DOWNSTREAM_OF_CORE | {"prepare_corpus", "extract", "reduce_chunks"}


def test_editing_or_adding_a_corpus_file_reruns_the_corpus_and_what_follows(reference):
    project, snakefile = reference
    doc, extra = project / "corpus/doc0.txt", project / "corpus/doc9.txt"
    with restored(doc):
        doc.write_text(doc.read_text() + " The red cat sleeps.\n")
        assert set(planned(project, snakefile)) == DOWNSTREAM_OF_CORPUS
    with restored(extra):
        extra.write_text("The blue dog runs in the park.\n")
        assert set(planned(project, snakefile)) == DOWNSTREAM_OF_CORPUS
    assert set(planned(project, snakefile)) == set()


def test_local_model_weights_changed_in_place_rerun_everything(reference):
    project, snakefile = reference
    weights = project / "model/model.safetensors"
    with restored(weights):
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0x01  # new weights in place: same file name, other bytes
        weights.write_bytes(bytes(data))
        assert set(planned(project, snakefile)) == DOWNSTREAM_OF_CORPUS | {"embeddings"}


def test_tokens_provenance_lists_the_files_read(reference):
    from intraneuron.corpus import read_tokens

    project, _ = reference
    _, meta = read_tokens(project / MODEL_RESULTS / "corpus/tokens.parquet")
    files = sorted((project / "corpus").glob("*.txt"))
    assert meta["files"] == [{"path": str(f), "bytes": f.stat().st_size,
                              "sha256": hashlib.sha256(f.read_bytes()).hexdigest()} for f in files]
    assert meta["n_types"] > 20 and meta["unknown_share"] == 0.0


def test_results_with_a_trailing_slash_is_the_same_folder(reference):
    project, snakefile = reference
    assert set(planned(project, snakefile, results="results/")) == set()


def test_nested_config_overrides_are_accepted(reference):
    project, snakefile = reference
    proc = run_snakemake(project, "-n", "--config", "layers=[0, 1]", "core_tokens={k: 12}",
                         snakefile=snakefile)
    assert "is not of type" not in proc.stdout + proc.stderr
    assert job_counts(proc.stdout) == {}


def test_logs_live_under_results(reference):
    project, _ = reference
    assert (project / "results/logs/model/prepare_corpus.log").exists()
    assert (project / "results/logs/model/base/analyze/L0_B0.log").exists()
    assert not (project / "logs").exists()


# ------------------------------------------------------------------------------- a stale report

def test_a_failed_rerun_leaves_no_report_that_looks_current(reference, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["analysis"]["seed"] = 7
    write_config(project, config)
    proc = run_snakemake(project, check=False, snakefile=reference[1],
                         env={"INTRANEURON_KILL_AT": "analyze-output:1:job"})
    assert proc.returncode != 0
    assert not (project / "results/report/index.html").exists()
    stale = (project / "results/report/index.STALE.html").read_text()
    assert "STALE REPORT: a run started at" in stale
    assert "results/report/index.html moved to" in proc.stderr
    run_snakemake(project, snakefile=reference[1])
    assert (project / "results/report/index.html").exists()
    assert not (project / "results/report/index.STALE.html").exists()


# ----------------------------------------------------------------------------- SLURM profile

@pytest.mark.skipif(shutil.which("sbatch") is None, reason="the slurm executor needs sbatch")
def test_profile_instead_of_workflow_profile_is_caught_before_any_job(tmp_path):
    project = make_tiny_project(tmp_path, model={"device": "auto"})  # cpu would need no GPU
    snakefile = copy_workflow(project / "wf")
    proc = run_snakemake(project, "--profile", str(project / "wf/profiles/slurm"), check=False,
                         snakefile=snakefile, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "the slurm executor is in use but rule extract requests no GPU" in out
    assert "--workflow-profile profiles/slurm" in out
    # Only settings files (written while the DAG is built, before the check): no job ran.
    files = [p for p in project.glob("results/**/*") if p.is_file()]
    assert all(p.parent.name == "settings" and p.suffix == ".json" for p in files), files
    assert "Submitted" not in out


# ------------------------------------------------------------------------------ config files

@pytest.mark.parametrize("text, message", [
    ("model:\n  id: gpt2\nlayers: [0, 1\n", "config file 'config/config.yaml', line 4: not valid YAML"),
    ("- model\n", "config file 'config/config.yaml' holds a list, not a mapping"),
])
def test_broken_default_config_file_is_named(tmp_path, text, message):
    snakefile = copy_workflow(tmp_path)
    (tmp_path / "config/config.yaml").write_text(text)
    proc = subprocess.run([SNAKEMAKE, "-s", str(snakefile), "-d", str(tmp_path), "-n"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


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
    ({"layers": [5]}, "layers [5] do not exist in"),
    ({"analysis": {"max_clusters": 1}}, "analysis.max_clusters"),
    ({"analysis": {"n_segments": 2}}, "'analysis.n_segments' is 2: the trend test across "
                                      "activation segments needs at least 3 segments"),
    ({"analysis": {"n_clusters": 50}}, "'analysis.n_clusters' (50) must be below "
                                       "'core_tokens.k' (12)"),
    ({"core_tokens": {"k": 3}}, "'core_tokens.k' is 3, below the 4 core tokens the analysis needs"),
    ({"model": {"device": "gpu"}}, "config key 'model.device' is 'gpu'"),
    ({"results": ""}, "config key 'results' is '', which puts every output at the root"),
    ({"results": "config.yaml"}, "config key 'results' ('config.yaml') is an existing file"),
])
def test_bad_config_stops_before_any_job(project, overrides, message):
    out = fails(project, "-n", **overrides)
    assert message in out
    assert not (project / "results").exists() and not (project / "config.yaml").is_dir()


def test_k_larger_than_eligible_types_says_how_many_passed(project):
    out = fails(project, core_tokens={"k": 500, "min_count": 3})
    assert "token types pass min_count=3" in out and "fewer than core_tokens.k=500" in out
    assert not (project / MODEL_RESULTS / "activations").exists()  # known before the forward pass


@pytest.mark.parametrize("content, message", [
    (None, "matches no file"),
    (b"", "is empty or only whitespace"),
    (b"  \n\t\n", "is empty or only whitespace"),
    (b"caf\xe9 au lait", "is not UTF-8: invalid byte 0xe9 at byte offset 3"),
    (b"ustar archive\x00\x00 text", "looks binary (NUL byte at byte offset 13)"),
    (b"cat " * 300, "fewer than core_tokens.k=12, in a corpus of 301 tokens with 3 distinct types"),
])
def test_bad_corpus_is_named_with_the_fix(tmp_path, content, message):
    project = make_tiny_project(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    if content is not None:
        (bad / "doc.txt").write_bytes(content)
    out = fails(project, corpus={"source": "text", "path": str(bad / "*.txt")})
    assert message in out
    assert not (project / MODEL_RESULTS / "corpus/tokens.parquet").exists()


def test_cuda_without_cuda_stops_the_extract_job_naming_the_key(project):
    out = fails(project, model={"device": "cuda:0"})
    assert "model.device is 'cuda:0' but torch sees no CUDA device" in out
    assert "set model.device: auto (or cpu)" in out
    assert not list((project / MODEL_RESULTS / "activations").rglob("*.h5"))


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
    stats = project / MODEL_RESULTS / "activations/L0.h5"
    data = stats.read_bytes()
    stats.write_bytes(data[: len(data) // 2])
    proc = run_snakemake(project, check=False, snakefile=reference[1])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"HDF5 file '{Path('results/models/model/activations/L0.h5')}'" in out or "L0.h5" in out
    assert "truncated or corrupted" in out and "delete" in out


def test_corrupted_hdf5_chunk_is_detected_by_checksum(reference, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    stats = project / MODEL_RESULTS / "activations/L1.h5"
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


def test_a_changed_gguf_file_is_converted_again(tmp_path):
    """Issue 21, case 2: convert_gguf takes the GGUF file as input, so a replaced file (or an
    upgraded package shipping it) is converted again, and what reads the model reruns."""
    project = make_tiny_project(tmp_path)
    gguf = project / "m.Q8_0.gguf"
    gguf.write_bytes(b"GGUF stand-in: planning reads the converted checkpoint")
    checkpoint = project / "resources/models/m.Q8_0"
    shutil.copytree(project / "model", checkpoint)
    (checkpoint / "intraneuron_conversion.json").write_text("{}")
    write_config(project, tiny_config(project, model={"id": f"gguf:{gguf}", "device": "cpu"}))
    run_snakemake(project, "-n")  # records the conversion's settings file
    past = (checkpoint.stat().st_mtime - 3600,) * 2
    for path in (gguf, project / "resources/settings/convert_gguf/m.Q8_0.json"):
        os.utime(path, past)
    assert "convert_gguf" not in job_counts(run_snakemake(project, "-n").stdout)
    gguf.write_bytes(b"GGUF stand-in, replaced")
    plan = job_counts(run_snakemake(project, "-n").stdout)
    assert plan["convert_gguf"] == 1 and plan["extract"] == 1 and plan["prepare_corpus"] == 1
