"""A tiny but complete project (random GPT-2, BPE tokenizer, English-like corpus, config) in a temp
dir, and the command that runs the real workflow on it."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from .tiny_checkpoints import tiny_gpt2

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# Where a tiny project's results go: its one model is named after model.id's folder, "model".
MODEL_RESULTS = "results/models/model"
BASE = f"{MODEL_RESULTS}/variants/base"

WORDS = {
    "animals": ["cat", "dog", "horse", "bird", "fish", "mouse", "lion", "sheep"],
    "colours": ["red", "green", "blue", "yellow", "black", "white", "brown", "grey"],
    "verbs": ["runs", "sleeps", "eats", "jumps", "sings", "walks", "swims", "reads"],
    "places": ["park", "river", "house", "garden", "forest", "city", "school", "road"],
    "numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight"],
}


def tiny_corpus(directory: Path, n_files: int = 3, sentences: int = 120, seed: int = 0) -> None:
    """Short English-like sentences over a small vocabulary, so every word recurs often."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        lines = []
        for _ in range(sentences):
            w = {k: rng.choice(v) for k, v in WORDS.items()}
            lines.append(f"The {w['colours']} {w['animals']} {w['verbs']} in the {w['places']} "
                         f"with {w['numbers']} friends.")
        (directory / f"doc{f}.txt").write_text(" ".join(lines) + "\n", encoding="utf-8")


def tiny_config(project: Path, **overrides) -> dict:
    config = {
        "model": {"id": str(project / "model"), "device": "cpu"},
        "layers": [0, 1],
        "block_size": 20,
        "corpus": {"source": "text", "path": str(project / "corpus" / "*.txt"),
                   "max_tokens": 6000, "window_tokens": 48},
        "extract": {"batch_tokens": 512, "chunks": 1},
        "core_tokens": {"k": 12, "min_count": 3, "context_tokens": 4},
        # The nulls' sizes set only the p-values' resolution and the power check's precision,
        # not the code path: small ones keep each of the suite's many tiny runs short.
        "analysis": {"permutations": 50, "geometry_surrogates": 50, "power_blocks": 1,
                     "power_block_size": 16, "n_segments": 3, "fine_segments": 4,
                     "max_clusters": 4},
        "report": {"example_neurons": 2, "browser_neurons": 20},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def make_tiny_project(tmp_path: Path, **overrides) -> Path:
    """A project dir with model/, corpus/ and config.yaml; n_inner 40 neurons per layer."""
    project = Path(tmp_path)
    if not (project / "model" / "config.json").exists():
        tiny_corpus(project / "corpus")
        text = [p.read_text() for p in sorted((project / "corpus").glob("*.txt"))]
        tiny_gpt2(project / "model", n_layer=3, n_inner=40, sentences=text)
    write_config(project, tiny_config(project, **overrides))
    return project


def write_config(project: Path, config: dict) -> Path:
    path = project / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def copy_workflow(destination: Path) -> Path:
    """A private copy of the Snakefile, rules, scripts and profile (for tests that edit code)."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", destination / "Snakefile")
    for folder in ("workflow", "profiles", "config"):
        shutil.copytree(REPO / folder, destination / folder, dirs_exist_ok=True)
    return destination / "Snakefile"


def snakemake_cmd(project: Path, *extra: str, configfile: str = "config.yaml",
                  snakefile: Path | None = None) -> list[str]:
    return [SNAKEMAKE, "-s", str(snakefile or REPO / "Snakefile"), "-d", str(project),
            "--configfile", str(project / configfile), "--cores", "2", *extra]


def run_snakemake(project: Path, *extra: str, check: bool = True, env: dict | None = None,
                  timeout: float | None = None, **kwargs) -> subprocess.CompletedProcess:
    # This checkout's package, also for private copies of the workflow (which have no src/ next
    # to their Snakefile) and whichever checkout the environment has installed.
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": path, **(env or {})}
    proc = subprocess.run(snakemake_cmd(project, *extra, **kwargs), capture_output=True,
                          text=True, env=env, cwd=project, start_new_session=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-8000:]}")
    return proc


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table of a dry run into {rule: count}."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    except StopIteration:
        return counts
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        if parts[0] != "all":  # the target rule, listed whenever anything runs
            counts[parts[0]] = int(parts[1])
    return counts


REPORTS = {"report_model", "robustness", "overview"}
# the base variant's tables choose the ablated neurons and their segments
ABLATION = {"ablate", "merge_ablation"}
DOWNSTREAM_OF_ANALYSIS = {"analyze", "check_power", "merge"} | ABLATION | REPORTS
DOWNSTREAM_OF_CORE = DOWNSTREAM_OF_ANALYSIS | {"core_tokens"}

TABLES = ["neurons.parquet", "layers.parquet", "claims.parquet", "tables/tokens.parquet",
          "tables/segments.parquet", "tables/clusters.parquet"]


def assert_same_results(a: Path, b: Path) -> None:
    """Every table equal: integers and strings exactly, floats to relative 1e-6 (absolute 1e-6
    near 0). A forward pass on the CPU is not bitwise reproducible from run to run (the BLAS may
    take another code path; a fresh-clone CI run saw mean activations differ by ~1e-7), so
    bitwise equality would make these tests flaky."""
    for name in TABLES:
        x = pd.read_parquet(a / BASE / name)
        y = pd.read_parquet(b / BASE / name)
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-6, atol=1e-6)
