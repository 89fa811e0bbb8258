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

