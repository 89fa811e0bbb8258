"""The real workflow through SLURM: a throwaway single-node cluster, the users' profile plus a few
test-only settings, one job scancel'ed mid-run (issue 5).

Why a real cluster: the profile's option names, the executor plugin's status polling, group jobs
and retries only show their problems against a real slurmctld; a mocked sbatch would accept
anything. The results must equal a plain local run's, bit for bit, scancel included.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers.slurm_cluster import SlurmCluster, require_slurm, slurm_cluster
from helpers.workflow import BASE, REPO, make_tiny_project, run_snakemake, snakemake_cmd

USERS_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
TABLES = [
    "neurons.parquet",
    "layers.parquet",
    "claims.parquet",
    "tables/tokens.parquet",
    "tables/segments.parquet",
    "tables/clusters.parquet",
]
# Rules that must each have run as (at least) one SLURM job; `all` is local by design.
SLURM_RULES = {"prepare_corpus", "extract", "reduce_chunks", "embeddings", "merge", "overview"}
GROUP_PREFIX = "rule_shard"  # the plugin's --comment for a job of the group "shard"
RUN_TIMEOUT_S = 900

# What a throwaway cluster needs beyond the users' profile, and why:
TEST_ONLY = {
    # No slurmdbd here, so sacct cannot answer; squeue works while MinJobAge keeps finished jobs.
    "slurm-status-command": "squeue",
    # The plugin waits 40 s before its first status check by default, then 10 s more after each
    # check that finds nothing finished. This workflow's jobs took 5-10 s each under SLURM here
    # (their log files' times in a CI run); with 10 s the first check finds each stage done,
    # where 5 s made every stage wait for the second check, 20 s after submission.
    "slurm-init-seconds-before-status-checks": 10,
    # Snakemake checks every 10 s by default: each of the run's ten stages then waits up to
    # 10 s after its job ended. A throwaway cluster answers squeue at once.
    "seconds-between-status-checks": 2,
    # Account guessing calls sacct, which fails without accounting.
    "slurm-no-account": True,
    # Keep one log per SLURM job id as evidence (by default only failed jobs' logs stay).
    "slurm-keep-successful-logs": True,
    # Local disk, no NFS delay to wait for.
    "latency-wait": 5,
}
MEM_CAP_MB = 1000  # the users' mem_mb (up to 32 GB) may exceed this machine's RealMemory


def make_test_profile(cpus: int) -> dict:
    """The users' profile, minus the GPU (the node has none), small enough for this node."""
    profile = copy.deepcopy(yaml.safe_load(USERS_PROFILE.read_text()))
    profile.update(TEST_ONLY)
    profile["cores"] = cpus
    profile["default-resources"]["mem_mb"] = min(profile["default-resources"]["mem_mb"], MEM_CAP_MB)
    for resources in profile["set-resources"].values():
        for key in ("gpu", "gpu_model", "gres", "slurm_partition"):
            resources.pop(key, None)
        if "mem_mb" in resources:
            resources["mem_mb"] = min(resources["mem_mb"], MEM_CAP_MB)
    return profile


# ------------------------------------------------------------ the users' profile, no cluster


def test_users_profile_is_for_users_only():
    profile = yaml.safe_load(USERS_PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert not (set(TEST_ONLY) - {"latency-wait"}) & set(profile)
    # the two stages that run the model get a GPU each
    assert profile["set-resources"]["extract"]["gpu"] == profile["set-resources"]["ablate"]["gpu"] == 1
    assert profile["retries"] >= 1
    assert set(profile["set-threads"]) == {"extract", "ablate", "core_tokens", "analyze", "label",
                                          "categorize"}
    assert "shard" in profile["group-components"]


@pytest.mark.workflow
def test_users_profile_is_accepted_by_snakemake(tmp_path):
    """Every key parses and reaches the rules; --workflow-profile keeps profiles/default out."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    project = make_tiny_project(tmp_path)
    out = run_snakemake(project, "-n", "--workflow-profile", str(USERS_PROFILE.parent)).stdout
    assert "profiles/default" not in out
    extract = out[out.index("rule extract:") :]
    assert "gpu=1" in extract[: extract.index("\n\n")]
    assert "Group job shard" in out


# ---------------------------------------------------------------------------- on a cluster


@dataclass
class SlurmRun:
    project: Path
    returncode: int
    log: str
    seconds: float
    cancelled: str | None  # the SLURM job id that the test scancel'ed
    jobs: list[dict[str, str]]  # every SLURM job of the run, last state seen by squeue


@pytest.fixture(scope="module")
def cluster():
    require_slurm()
    with slurm_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def local_run(reference):
    """The same tiny project run locally (tests/conftest.py's shared run)."""
    return reference[0]


@pytest.fixture(scope="module")
def slurm_run(cluster: SlurmCluster, tmp_path_factory) -> SlurmRun:
    """Run the workflow through SLURM; scancel the analysis group job once it is running."""
    project = make_tiny_project(tmp_path_factory.mktemp("slurm"))
    profile_dir = project / "slurm-test-profile"
    profile_dir.mkdir()
    cpus = len(os.sched_getaffinity(0))
    (profile_dir / "config.yaml").write_text(
        yaml.safe_dump(make_test_profile(cpus), sort_keys=False)
    )
    cmd = snakemake_cmd(project, "--workflow-profile", str(profile_dir))
    env = {**cluster.env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_path = project / "snakemake-slurm.log"
    start = time.monotonic()
    cancelled = None
    seen: dict[str, dict[str, str]] = {}  # every job's last known state, polled as we go
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            running_since = None
            while proc.poll() is None:
                if time.monotonic() - start > RUN_TIMEOUT_S:
                    raise TimeoutError(f"snakemake still running after {RUN_TIMEOUT_S}s")
                time.sleep(0.5)
                seen.update((j["id"], j) for j in cluster.jobs())
                group = [
                    j
                    for j in seen.values()
                    if j["state"] == "RUNNING" and j["comment"].startswith(GROUP_PREFIX)
                ]
                if cancelled is not None or not group:
                    continue
                running_since = running_since or time.monotonic()
                # Let the job step get going, so the kill lands in the middle of real work.
                if time.monotonic() - running_since > 2:
                    cancelled = group[0]["id"]
                    cluster.run("scancel", cancelled)
        finally:
            if proc.poll() is None:
                # Snakemake ignores SIGTERM while it polls SLURM; the cluster teardown then
                # cancels whatever it had submitted.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    seen.update((j["id"], j) for j in cluster.jobs())
    return SlurmRun(
        project=project,
        returncode=proc.returncode,
        log=log_path.read_text(),
        seconds=time.monotonic() - start,
        cancelled=cancelled,
        jobs=sorted(seen.values(), key=lambda j: int(j["id"])),
    )


def run_id(log: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", log)
    assert match, "no 'SLURM run ID' in the log: the slurm executor did not run"
    return match.group(1)


@pytest.mark.slurm
def test_workflow_completes_under_slurm(slurm_run):
    assert slurm_run.returncode == 0, slurm_run.log[-6000:]
    print(f"SLURM run took {slurm_run.seconds:.0f} s")


@pytest.mark.slurm
def test_every_rule_ran_as_a_slurm_job(slurm_run):
    mine = [j for j in slurm_run.jobs if j["name"] == run_id(slurm_run.log)]
    # --comment is rule_<rule>[_wildcards_<values>], or rule_<group>_<rules> for a group job.
    rules = {j["comment"].removeprefix("rule_").split("_wildcards_")[0] for j in mine}
    assert rules >= SLURM_RULES, rules
    # All four shards' core_tokens + analyze went out as group jobs, not as 8 single jobs.
    assert not {"core_tokens", "analyze"} & rules
    assert any(r.startswith("shard") for r in rules)
    assert all(j["state"] == "COMPLETED" for j in mine if j["id"] != slurm_run.cancelled), mine
    # Snakemake's own record: one log per SLURM job id, and every id is one squeue knows.
    logs = list((slurm_run.project / ".snakemake/slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} == {j["id"] for j in mine}
    for job in mine:
        assert f"submitted with SLURM jobid {job['id']} " in slurm_run.log


@pytest.mark.slurm
def test_scancelled_job_is_resubmitted(slurm_run):
    assert slurm_run.cancelled is not None, "the group job was never seen RUNNING"
    jobs = {j["id"]: j for j in slurm_run.jobs}
    killed = jobs[slurm_run.cancelled]
    assert killed["state"] == "CANCELLED"
    # Snakemake logs a failed group job as "Error in group shard", without SLURM's status;
    # the job's own SLURM log has slurmstepd's note.
    assert "Error in group shard" in slurm_run.log
    assert "Trying to restart job" in slurm_run.log
    (log,) = (slurm_run.project / ".snakemake/slurm_logs").rglob(f"{slurm_run.cancelled}.log")
    assert f"JOB {slurm_run.cancelled} ON" in log.read_text()
    assert "CANCELLED" in log.read_text()
    later = [
        j
        for j in slurm_run.jobs
        if j["comment"] == killed["comment"] and int(j["id"]) > int(killed["id"])
    ]
    assert later and all(j["state"] == "COMPLETED" for j in later), slurm_run.jobs


@pytest.mark.slurm
def test_results_equal_a_local_run(slurm_run, local_run):
    """Bit-identical tables: where a job runs (and that one was killed and rerun) must not matter."""
    assert slurm_run.returncode == 0
    for name in TABLES:
        got = pd.read_parquet(slurm_run.project / BASE / name)
        want = pd.read_parquet(local_run / BASE / name)
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)
    assert (slurm_run.project / "results/report/index.html").exists()
