"""Release habits: one version (intraneuron.__version__, which pyproject reads), recorded by every
file the package writes, a changelog that agrees with it, a citation file and a CI workflow that
a hosted forge runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from packaging.version import Version

import intraneuron
from intraneuron import h5io
from intraneuron.corpus import read_tokens, write_tokens
from intraneuron.running_stats import empty_compact
from intraneuron.tables import atomic_parquet, read_provenance

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ one version


def test_pyproject_reads_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"], "the version is set in src/intraneuron only"
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "intraneuron.__version__"}
    setuptools = pytest.importorskip("setuptools.config.pyprojecttoml")
    resolved = setuptools.read_configuration(REPO / "pyproject.toml", expand=True)
    assert resolved["project"]["version"] == intraneuron.__version__
    assert str(Version(intraneuron.__version__)) == intraneuron.__version__  # PEP 440, normal


MARKED = "9.9.9+marked"


@pytest.fixture
def marked_version(monkeypatch):
    """A version only this test has: what the files record is read from the package."""
    monkeypatch.setattr(intraneuron, "__version__", MARKED)
    return MARKED


def test_every_writer_records_the_package_version(tmp_path, marked_version):
    stale = {"intraneuron_version": "0.0.1", "note": "passed on from an input"}
    atomic_parquet(pd.DataFrame({"x": [1]}), tmp_path / "t.parquet", stale)
    prov = read_provenance(tmp_path / "t.parquet")
    assert prov["intraneuron_version"] == marked_version and prov["note"] == stale["note"]

    h5io.write_arrays(tmp_path / "a.h5", {"x": np.arange(3)}, stale)
    h5io.write_stats(tmp_path / "s.h5", {0: empty_compact(np.arange(4), 2)}, stale)
    for name in ("a.h5", "s.h5"):
        assert h5io.read_attrs_only(tmp_path / name)[h5io.VERSION_KEY] == marked_version

    write_tokens(pa.table({"n_tokens": [2]}), tmp_path / "tokens.parquet", stale)
    assert read_tokens(tmp_path / "tokens.parquet")[1][h5io.VERSION_KEY] == marked_version


# ------------------------------------------------------------------ the changelog

RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def changelog_problem(version: str, text: str) -> str:
    """Why CHANGELOG.md `text` does not fit package version `version` ('' when it does): an
    Unreleased section on top, dated releases newest first, and the version either the newest
    release or, as a development version, ahead of it."""
    if not re.search(r"^## \[Unreleased\]$", text, re.M):
        return "no '## [Unreleased]' section"
    releases = [Version(v) for v, _ in RELEASE.findall(text)]
    if not releases:
        return "no release section '## [X.Y.Z] - YYYY-MM-DD'"
    if releases != sorted(releases, reverse=True):
        return "releases are not newest first"
    if text.index("## [Unreleased]") > RELEASE.search(text).start():
        return "Unreleased is not above the releases"
    current = Version(version)
    if current.is_devrelease or current.is_prerelease:
        return "" if Version(current.base_version) > releases[0] else \
            f"development version {version} is not ahead of release {releases[0]}"
    return "" if current == releases[0] else f"version {version} has no section of its own"


def test_the_changelog_agrees_with_the_version():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog_problem(intraneuron.__version__, text) == ""


@pytest.mark.parametrize("version, text, problem", [
    ("0.2.0", "## [Unreleased]\n## [0.1.0] - 2026-11-29\n", "no section of its own"),
    ("0.1.0.dev0", "## [Unreleased]\n## [0.1.0] - 2026-11-29\n", "not ahead of release"),
    ("0.1.0", "## [0.1.0] - 2026-11-29\n", "no '## [Unreleased]'"),
    ("0.2.0", "## [Unreleased]\n## [0.1.0] - 2026-11-29\n## [0.2.0] - 2026-12-01\n",
     "newest first"),
])
def test_the_changelog_check_rejects_what_does_not_fit(version, text, problem):
    assert problem in changelog_problem(version, text)


# ------------------------------------------------------------------ citation and CI


def citation_problems(cff: dict) -> list[str]:
    """The Citation File Format 1.2.0 rules this file relies on, in short: the required keys,
    authors as persons or entities, references with type, title and authors, DOIs and URLs in
    their formats."""
    problems = [f"missing {key}" for key in ("cff-version", "message", "title", "authors")
                if not cff.get(key)]
    if cff.get("cff-version") != "1.2.0":
        problems.append("cff-version is not 1.2.0")
    works = [cff, *cff.get("references", [])]
    for work in works:
        for author in work.get("authors") or []:
            if not (author.get("name") or author.get("family-names")):
                problems.append(f"an author of {work.get('title')!r} has no name")
        for ident in work.get("identifiers", []):
            if ident.get("type") == "doi" and not re.fullmatch(r"10\.\d{4,9}/\S+",
                                                                str(ident.get("value"))):
                problems.append(f"malformed DOI {ident.get('value')!r}")
        if "url" in work and not re.match(r"https?://", work["url"]):
            problems.append(f"malformed url {work['url']!r}")
    for ref in cff.get("references", []):
        problems += [f"a reference lacks {key}" for key in ("type", "title", "authors")
                     if not ref.get(key)]
    return problems


def test_citation_file_names_the_project_and_the_paper():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation_problems(cff) == []
    paper = next(r for r in cff["references"] if "2503.12992" in r.get("url", ""))
    assert paper["authors"][0]["family-names"] == "Pichat" and paper["year"] == 2025
    assert {"type": "doi", "value": "10.48550/arXiv.2503.12992"}.items() <= \
        paper["identifiers"][0].items()


@pytest.mark.parametrize("broken, problem", [
    ({"cff-version": "1.2.0", "message": "m", "title": "t"}, "missing authors"),
    ({"cff-version": "1.1.0", "message": "m", "title": "t", "authors": [{"name": "a"}]},
     "not 1.2.0"),
    ({"cff-version": "1.2.0", "message": "m", "title": "t", "authors": [{"name": "a"}],
      "references": [{"type": "article", "title": "p", "authors": [{"given-names": "x"}],
                      "identifiers": [{"type": "doi", "value": "arXiv.2503.12992"}]}]},
     "has no name"),
])
def test_the_citation_check_rejects_a_broken_file(broken, problem):
    assert any(problem in p for p in citation_problems(broken))


def test_ci_workflow_runs_the_ci_entry_point_on_ubuntu():
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    triggers = ci.get("on", ci.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    (job,) = ci["jobs"].values()
    assert job["runs-on"].startswith("ubuntu") and job["timeout-minutes"] == 90
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]
    assert (REPO / ".ci" / "run").is_file()
