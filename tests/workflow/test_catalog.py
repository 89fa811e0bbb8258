"""What the Snakemake workflow catalog expects of a repository: a licence, a usage file, and a
`.test` configuration that `snakemake --directory .test` runs as it is."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest
import yaml
from helpers.workflow import REPO, SNAKEMAKE, job_counts

pytestmark = pytest.mark.workflow


def test_catalog_files():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert "config/README.md" in usage["mandatory-flags"]["desc"]


def test_dot_test_config_plans_the_whole_workflow(tmp_path):
    """A dry run from a copy of .test (Snakemake's working directory), as the catalog's CI does
    from the repository root; the corpus glob must match the shipped texts."""
    work = tmp_path / ".test"
    shutil.copytree(REPO / ".test", work, ignore=shutil.ignore_patterns(
        "results", "logs", ".snakemake"))
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    assert len(glob.glob(str(work / config["corpus"]["path"]))) == 3
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work),
                           "--cores", "2", "-n"], capture_output=True, text=True, env=env,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout)
    assert counts["analyze"] == counts["core_tokens"] == 4 and counts["overview"] == 1
