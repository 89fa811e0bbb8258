"""Workflow runs shared between test modules: each full run of the tiny project costs most of a
minute on 2 cores, so tests that only read a complete run, or dry-run changes against it,
share one (under pytest-xdist, one per worker that runs such a test)."""

from __future__ import annotations

import pytest
from helpers.workflow import copy_workflow, make_tiny_project, run_snakemake


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """One uninterrupted run of the tiny project, through a private copy of the workflow code
    (tests that edit a script edit the copy). Tests that change files of the project restore
    them; tests that run it further work on a copy."""
    project = make_tiny_project(tmp_path_factory.mktemp("reference"))
    snakefile = copy_workflow(project / "wf")
    run_snakemake(project, snakefile=snakefile)
    return project, snakefile
