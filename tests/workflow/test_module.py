"""The workflow as a Snakemake module of another workflow: `module` + `use rule * from`, with its
config nested in the outer one, its rules' scripts found next to its own rule files, and its
jobs importing the package next to those rules (no PYTHONPATH, whatever is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.workflow import (
    BASE,
    REPO,
    SNAKEMAKE,
    job_counts,
    make_tiny_project,
    tiny_config,
)

from intraneuron.tables import read_provenance

pytestmark = pytest.mark.workflow

MARKED_VERSION = "0.1.0+module-copy"

OUTER_SNAKEFILE = """\
configfile: "config.yaml"


# The outer workflow's own report text: a module's global caption would be rendered with this
# workflow's config, which holds the module's settings only under `intraneuron`.
report: "outer.rst"


module intraneuron:
    snakefile:
        "{module}/Snakefile"
    config:
        config["intraneuron"]


use rule * from intraneuron as intraneuron_*


rule all:
    input:
        rules.intraneuron_all.input,
    default_target: True
"""


def module_copy(destination: Path) -> Path:
    """The workflow and its package somewhere else, with a version only this copy has."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy(REPO / "Snakefile", destination / "Snakefile")
    shutil.copytree(REPO / "workflow", destination / "workflow", ignore=ignore)
    shutil.copytree(REPO / "src" / "intraneuron", destination / "src" / "intraneuron",
                    ignore=ignore)
    init = destination / "src" / "intraneuron" / "__init__.py"
    init.write_text(init.read_text() + f'__version__ = "{MARKED_VERSION}"\n')
    return destination


@pytest.fixture(scope="module")
def outer(tmp_path_factory):
    module = module_copy(tmp_path_factory.mktemp("intraneuron-module"))
    project = make_tiny_project(tmp_path_factory.mktemp("outer"))
    config = tiny_config(project, layers=[1], block_size=40)
    (project / "config.yaml").write_text(yaml.safe_dump({"intraneuron": config}))
    (project / "Snakefile").write_text(OUTER_SNAKEFILE.format(module=module))
    (project / "outer.rst").write_text("An outer workflow that runs intraneuron as a module.\n")
    return project


def snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake in the outer project, with no PYTHONPATH pointing at any package."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=project, env=env,
                          capture_output=True, text=True, start_new_session=True)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return proc


def test_dry_run_plans_every_rule_under_the_module_prefix(outer):
    counts = job_counts(snakemake(outer, "-n").stdout)
    # one layer: no ablation (the last analysed layer has no next layer)
    assert counts == {"intraneuron_prepare_corpus": 1, "intraneuron_extract": 1,
                      "intraneuron_reduce_chunks": 1, "intraneuron_embeddings": 1,
                      "intraneuron_core_tokens": 1, "intraneuron_analyze": 1,
                      "intraneuron_check_power": 1, "intraneuron_merge": 1,
                      "intraneuron_report_model": 1,
                      "intraneuron_robustness": 1, "intraneuron_overview": 1}


def test_run_and_report_through_the_module(outer):
    snakemake(outer)
    versions = read_provenance(outer / BASE / "neurons.parquet")["versions"]
    assert versions["intraneuron"] == MARKED_VERSION  # the jobs ran the module's own package
    assert (outer / "results/report/index.html").stat().st_size > 0
    snakemake(outer, "--report", "report.html")
    assert (outer / "report.html").stat().st_size > 0
