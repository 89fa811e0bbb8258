"""Shared pytest setup: make `helpers` importable and keep every test offline."""

import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`), tests that share an expensive module- or
    session-scoped fixture of this suite (a workflow run, a SLURM cluster, a browser) go to one
    worker, so the fixture is built once; every other test is spread over the workers."""
    for item in items:
        shared = [defs[-1].baseid for defs in item._fixtureinfo.name2fixturedefs.values()
                  if defs and defs[-1].scope != "function" and defs[-1].baseid]
        if shared:
            item.add_marker(pytest.mark.xdist_group(min(shared, key=len)))
