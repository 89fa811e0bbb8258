"""Output files: one atomic-write helper, readable by collaborators, and missing inputs named as
missing (issue 12)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from intraneuron import h5io
from intraneuron.tables import atomic_parquet


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_outputs_are_readable_by_others(tmp_path, umask_022):
    atomic_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet", {"x": 1})
    h5io.write_arrays(tmp_path / "a.h5", {"v": np.arange(3)}, {"x": 1})
    for name in ("t.parquet", "a.h5"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_one_atomic_write_helper():
    from intraneuron import corpus, tables

    assert corpus.atomic_path is tables.atomic_path is h5io.atomic_path
    assert not hasattr(corpus, "tempfile")


def test_missing_hdf5_is_reported_as_missing(tmp_path):
    path = tmp_path / "activations" / "L0.h5"
    with pytest.raises(FileNotFoundError, match=rf"HDF5 file '{path}' is missing") as err:
        h5io.read_attrs_only(path)
    assert "corrupted" not in str(err.value)


def test_truncated_hdf5_is_still_reported_as_corrupted(tmp_path):
    path = tmp_path / "a.h5"
    h5io.write_arrays(path, {"v": np.arange(100)}, {})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(h5io.CorruptFileError, match="truncated or corrupted"):
        h5io.read_attrs_only(path)


# ------------------------------------------------------------------------ a stale report

def test_a_report_about_to_be_recomputed_is_moved_aside_and_marked(tmp_path):
    from intraneuron.runtime import drop_stale_report, retire_report

    html = tmp_path / "report" / "index.html"
    html.parent.mkdir()
    html.write_text("<html><body class='x'><h1>Claims</h1></body></html>")
    stale = retire_report(html)
    assert not html.exists() and stale == tmp_path / "report" / "index.STALE.html"
    text = stale.read_text()
    assert text.startswith("<html><body class='x'><div id=\"stale-report\"")
    assert "STALE REPORT: a run started at" in text and "<h1>Claims</h1>" in text
    assert retire_report(html) is None  # nothing to retire the second time
    drop_stale_report(html)
    assert stale.exists()  # kept while no new report exists
    html.write_text("<html><body>new</body></html>")
    drop_stale_report(html)
    assert not stale.exists()


# ------------------------------------------------------------------ GPU request on SLURM

def test_slurm_without_gpu_request_is_explained():
    from intraneuron.runtime import gpu_request_problem

    message = gpu_request_problem("slurm", {"mem_mb": 8000, "_cores": 2}, "auto")
    assert "rule extract requests no GPU" in message
    assert "--workflow-profile profiles/slurm" in message and "model.device: cpu" in message
    assert gpu_request_problem("slurm", {"gpu": 1}, "auto") is None
    assert gpu_request_problem("slurm", {"slurm_extra": "--gres=gpu:1"}, "auto") is None
    assert gpu_request_problem("slurm", {}, "cpu") is None
    assert gpu_request_problem("local", {}, "auto") is None
