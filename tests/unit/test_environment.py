"""The places that pin dependencies agree, the jobs' environments are usable where Snakemake
deploys them, and the config reference is up to date."""

import re
from pathlib import Path

import pytest
import yaml

from intraneuron.config import schema_markdown

REPO = Path(__file__).resolve().parents[2]
RULE_ENVS = sorted((REPO / "workflow" / "envs").glob("*.yaml"))
# Tools for tests, lint and cluster submission: in requirements.txt, never in a job's environment.
NOT_FOR_JOBS = {"pytest", "ruff", "snakefmt", "selenium", "snakemake-executor-plugin-slurm"}


def pip_pins(lines):
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def conda_pins(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    return pip_pins(pip)


def requirements():
    return pip_pins((REPO / "requirements.txt").read_text().splitlines())


def name(pin):
    return pin.split("==")[0].lower()


def test_pins_agree():
    reqs = requirements()
    assert all("==" in r for r in reqs), "every requirement is pinned"
    assert conda_pins(REPO / "environment.yaml") == reqs
    assert "torch==2.13.0" in reqs


@pytest.mark.parametrize("env", RULE_ENVS, ids=lambda p: p.name)
def test_rule_environments_hold_the_runtime_pins_only(env):
    pins = conda_pins(env)
    # Snakemake deploys a copy of this file under .snakemake/conda/: a relative path to the
    # package (`-e ../..`) would point elsewhere; common.smk provides the package instead.
    assert not [p for p in pins if not re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", p)]
    assert not {name(p) for p in pins} & NOT_FOR_JOBS
    runtime = [r for r in requirements() if name(r) not in NOT_FOR_JOBS]
    assert pins == runtime


def test_every_rule_environment_exists():
    used = {}
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r"conda:\s*\n\s*\"([^\"]+)\"", rules.read_text()):
            used[f"{rules.name}: {env}"] = (rules.parent / env).resolve()
    assert used, "the rules name their conda environments"
    assert {k: v for k, v in used.items() if v not in RULE_ENVS} == {}


def test_config_reference_is_generated_from_schema():
    assert (REPO / "config" / "README.md").read_text() == schema_markdown(), (
        "config/README.md is stale: python -m intraneuron.config --markdown > config/README.md")
