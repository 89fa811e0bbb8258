"""Interruption and determinism (issues 6, 12 and 21): a job or Snakemake itself killed mid-write
reruns to the same outputs; the same config gives the same outputs on one core as on two and
whatever the sharding; settings changes rerun from the settings files alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.workflow import (
    BASE,
    DOWNSTREAM_OF_ANALYSIS,
    DOWNSTREAM_OF_CORE,
    MODEL_RESULTS,
    assert_same_results,
    job_counts,
    make_tiny_project,
    run_snakemake,
    write_config,
)

pytestmark = pytest.mark.workflow

# `reference` (tests/conftest.py): one uninterrupted run of the tiny project, shared.


# ----------------------------------------------------------------------- determinism, invariance

def activation_tables(project: Path) -> dict[str, np.ndarray]:
    out = {}
    for layer in (0, 1):
        with h5py.File(project / MODEL_RESULTS / f"activations/L{layer}.h5") as f:
            for name in ("token_ids", "count", "sum", "max", "argmax"):
                out[f"L{layer}/{name}"] = f[f"L{layer}/{name}"][...]
    return out


def core_sizes(project: Path) -> set[int]:
    tokens = pd.read_parquet(project / BASE / "tables/tokens.parquet")
    return set(tokens.groupby(["layer", "neuron"]).size())


@pytest.mark.slow  # another run of the tiny project and its reruns: about 2 minutes
def test_same_config_gives_the_same_outputs_whatever_the_cores_and_sharding(reference, tmp_path):
    """Same config, same outputs (to relative 1e-6) on one core as on two, and whatever the
    sharding: uneven neuron blocks (30 + 10 per layer) and three corpus chunks against the
    reference's 20 + 20 and one (issue 21, case 9). Then, with Snakemake's .snakemake metadata
    deleted, a changed setting still reruns exactly the jobs it affects, from the settings files
    alone (case 1)."""
    again = make_tiny_project(tmp_path, block_size=30, extract={"batch_tokens": 512, "chunks": 3})
    run_snakemake(again, "--cores", "1")
    assert len(list((again / MODEL_RESULTS / "activations/chunks").glob("*.h5"))) == 3
    assert_same_results(reference[0], again)
    expected = activation_tables(reference[0])
    for name, values in activation_tables(again).items():
        if name.endswith(("sum", "max")):
            np.testing.assert_allclose(values, expected[name], rtol=1e-6, atol=1e-7, err_msg=name)
        else:
            np.testing.assert_array_equal(expected[name], values, err_msg=name)

    shutil.rmtree(again / ".snakemake")
    config = yaml.safe_load((again / "config.yaml").read_text())
    write_config(again, {**config, "analysis": {**config["analysis"], "permutations": 60}})
    recorded = again / MODEL_RESULTS / "settings/variant-base.json"
    before = recorded.read_text(), recorded.stat().st_mtime_ns
    plan = job_counts(run_snakemake(again, "-n").stdout)
    assert set(plan) == DOWNSTREAM_OF_ANALYSIS  # the dry run shows it, and records nothing:
    assert (recorded.read_text(), recorded.stat().st_mtime_ns) == before

    write_config(again, {**config, "core_tokens": {**config["core_tokens"], "k": 10}})
    extracted = (again / MODEL_RESULTS / "activations/L0.h5").stat().st_mtime_ns
    proc = run_snakemake(again)
    assert set(job_counts(proc.stdout + proc.stderr)) == DOWNSTREAM_OF_CORE
    assert core_sizes(again) == {10}
    assert (again / MODEL_RESULTS / "activations/L0.h5").stat().st_mtime_ns == extracted
    shutil.rmtree(again / ".snakemake")
    assert "Nothing to be done" in run_snakemake(again, "-n").stdout

    # Back to k = 12, whose core tokens are still on disk and older than the k = 10 analysis:
    # the variant's settings name the core-token folder, so the analysis is planned again,
    # nothing else (a dry run: the runs above showed that a run does what the plan says).
    shutil.rmtree(again / ".snakemake")
    write_config(again, config)
    assert set(job_counts(run_snakemake(again, "-n").stdout)) == DOWNSTREAM_OF_ANALYSIS


# -------------------------------------------------------------------------------- interruption

# Two faults per project, one after the other: a job killed mid-write in the extraction, then
# Snakemake itself (with all its jobs, as a power cut would) in the rerun's analysis, and the
# other way round. Each rerun finishes the interrupted stage, so each project pays for the
# stages after the extraction once, not once per fault.
CHAINS = [("h5-write:1:job", "analyze-output:2:group"), ("h5-write:1:group", "analyze-output:1:job")]


def run_killed(project: Path, snakefile: Path, fault: str, stage: str, *extra: str) -> None:
    """A run killed at `fault`; afterwards the project is as the kill left it (unlocked)."""
    killed = run_snakemake(project, *extra, check=False, snakefile=snakefile,
                           env={"INTRANEURON_KILL_AT": fault})
    assert killed.returncode != 0
    assert f"rule {stage}:" in killed.stdout + killed.stderr
    assert not (project / "results/report/index.html").exists()
    if fault.startswith("h5-write"):
        # Killed while writing the chunk: nothing under the final name.
        assert not (project / MODEL_RESULTS / "activations/chunks/1-of-1.h5").exists()
    if fault.endswith("group"):
        # Snakemake itself died: its lock stays, as after a power cut; --unlock is its remedy.
        run_snakemake(project, "--unlock", snakefile=snakefile)


@pytest.mark.parametrize("extract_fault, analyze_fault", CHAINS)
def test_sigkill_mid_job_then_rerun_completes_with_same_outputs(reference, tmp_path,
                                                                extract_fault, analyze_fault):
    """A job (or Snakemake with all its jobs) killed mid-write; the next run finishes the job.
    A copy of the shared complete run, without the outputs from the extraction on (removing
    only a stage's own outputs would not do: Snakemake does not remake an intermediate file
    whose consumers are complete), so the corpus and proxy are not paid for again."""
    project = tmp_path / "p"
    shutil.copytree(reference[0], project, symlinks=True)
    for folder in ("activations", "core", "variants"):
        shutil.rmtree(project / MODEL_RESULTS / folder)
    snakefile = reference[1]
    run_killed(project, snakefile, extract_fault, "extract")
    run_killed(project, snakefile, analyze_fault, "analyze", "--rerun-incomplete")
    assert (project / MODEL_RESULTS / "activations/L1.h5").exists()  # the extraction finished
    run_snakemake(project, "--rerun-incomplete", snakefile=snakefile)
    assert_same_results(reference[0], project)
