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
