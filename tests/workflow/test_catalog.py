"""What the Snakemake workflow catalog expects of a repository: a licence, a usage file, a
Snakefile where its generator looks, and a `.test` configuration that `snakemake --directory .test`
runs as it is, from either entry point."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.workflow import REPO, SNAKEMAKE, job_counts

pytestmark = pytest.mark.workflow

ENTRY_POINTS = ["Snakefile", "workflow/Snakefile"]


def catalog_listing(root: Path) -> tuple[Path | None, str]:
    """The catalog generator's discovery rule, restated: a README naming Snakemake workflows; when
    a `workflow/` folder exists the Snakefile and rules are looked for inside it (a top-level
    Snakefile is then not seen), otherwise at the top; a rules folder must hold `.smk` files.
    Returns (the Snakefile the catalog would format-check, '') or (None, why it skips the repo)."""
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8").lower() if readme.is_file() else ""
    if not ("snakemake" in text and "workflow" in text):
        return None, "README.md does not mention a snakemake workflow"
    base = root / "workflow" if (root / "workflow").exists() else root
    if not (base / "Snakefile").is_file():
        return None, f"missing Snakefile ({(base / 'Snakefile').relative_to(root)})"
    rules = base / "rules"
    if rules.is_dir() and not any(p.suffix == ".smk" for p in rules.iterdir()):
        return None, f"{rules.relative_to(root)} holds no .smk file"
    return base / "Snakefile", ""


def layout(root: Path, files: list[str]) -> Path:
    (root / "README.md").write_text("A Snakemake workflow.\n")
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# planted\n")
    return root


@pytest.mark.parametrize("files, why", [
    # the layout before workflow/Snakefile existed: the catalog skipped it
    (["Snakefile", "workflow/rules/common.smk"], "missing Snakefile (workflow/Snakefile)"),
    (["workflow/Snakefile", "workflow/rules/common.py"], "holds no .smk file"),
    ([], "missing Snakefile (Snakefile)"),
])
def test_catalog_rule_skips_what_the_catalog_skips(tmp_path, files, why):
    snakefile, reason = catalog_listing(layout(tmp_path, files))
    assert snakefile is None and why in reason


def test_catalog_rule_lists_a_standard_layout(tmp_path):
    root = layout(tmp_path, ["workflow/Snakefile", "workflow/rules/common.smk"])
    assert catalog_listing(root) == (root / "workflow" / "Snakefile", "")


def test_catalog_finds_this_workflow_and_its_format_check_passes():
    snakefile, reason = catalog_listing(REPO)
    assert snakefile == REPO / "workflow" / "Snakefile", reason
    # what the catalog then formats: that Snakefile and the rule files next to it
    files = [snakefile, *sorted((snakefile.parent / "rules").glob("*.smk"))]
    snakefmt = str(Path(sys.executable).with_name("snakefmt"))
    proc = subprocess.run([snakefmt, "--check", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_catalog_files():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert "config/README.md" in usage["mandatory-flags"]["desc"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_dot_test_config_plans_the_whole_workflow(tmp_path, entry):
    """A dry run from a copy of .test (Snakemake's working directory), as the catalog's CI does
    from the repository root, through either entry point; the corpus glob must match the shipped
    texts."""
    work = tmp_path / ".test"
    shutil.copytree(REPO / ".test", work, ignore=shutil.ignore_patterns(
        "results", "logs", ".snakemake"))
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    assert len(glob.glob(str(work / config["corpus"]["path"]))) == 3
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / entry), "--directory", str(work),
                           "--cores", "2", "-n"], capture_output=True, text=True, env=env,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout)
    assert counts["analyze"] == counts["core_tokens"] == 4 and counts["overview"] == 1


MARK = "intraneuron-copy-imported"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_parse_time_imports_the_package_next_to_the_rules(tmp_path, entry):
    """A copy of the workflow and its package, run where another package may be installed (this
    checkout's, here): Snakemake's parse time imports the copy's package, as its jobs do, so the
    config is checked against the schema the jobs will use."""
    ignore = shutil.ignore_patterns("__pycache__")
    copy = tmp_path / "copy"
    for folder in ("workflow", "src/intraneuron", ".test"):
        shutil.copytree(REPO / folder, copy / folder, ignore=ignore, symlinks=True)
    shutil.copy(REPO / "Snakefile", copy / "Snakefile")
    init = copy / "src" / "intraneuron" / "__init__.py"
    init.write_text(init.read_text() + f"import sys\nprint('{MARK}', file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([SNAKEMAKE, "-s", str(copy / entry), "--directory",
                           str(copy / ".test"), "--cores", "2", "-n"], capture_output=True,
                          text=True, env=env, cwd=copy)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert MARK in proc.stderr
