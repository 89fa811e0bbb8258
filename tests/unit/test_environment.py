"""The three places that pin dependencies agree, and the config reference is up to date."""

from pathlib import Path

import yaml

from intraneuron.config import schema_markdown

REPO = Path(__file__).resolve().parents[2]


def pip_pins(lines):
    return sorted(line.strip() for line in lines
                  if line.strip() and not line.startswith("#") and not line.strip().startswith("-e"))


def conda_pins(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    return pip_pins(pip)


def test_pins_agree():
    reqs = pip_pins((REPO / "requirements.txt").read_text().splitlines())
    assert all("==" in r for r in reqs), "every requirement is pinned"
    assert conda_pins(REPO / "environment.yaml") == reqs
    assert conda_pins(REPO / "workflow" / "envs" / "intraneuron.yaml") == reqs
    assert "torch==2.13.0" in reqs


def test_config_reference_is_generated_from_schema():
    assert (REPO / "config" / "README.md").read_text() == schema_markdown(), (
        "config/README.md is stale: python -m intraneuron.config --markdown > config/README.md")
