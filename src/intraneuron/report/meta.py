"""What every page states about itself: when it was built, from which commit and config, and
how to cite the software.

The citation is read from the repository's `CITATION.cff` at build time (the file is the one
place it is written); a package installed without the repository falls back to `FALLBACK`,
built from the package's own name and version.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import yaml

from .. import __version__

REPO = Path(__file__).resolve().parents[3]  # src/intraneuron/report/meta.py -> repository
FALLBACK = {"title": "intraneuron", "version": __version__,
            "authors": [{"name": "the intraneuron contributors"}]}


def git_commit(where: Path = REPO) -> str:
    """The checkout's commit (short), '+ local changes' when tracked files differ from it, or
    'unknown' outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(where), "diff", "--quiet", "HEAD", "--"],
                               capture_output=True, timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" + local changes" if dirty else "")


def stamp(config_hash: str, now: datetime | None = None) -> dict:
    """The line under every page's header: build date (UTC), commit and config hash."""
    now = now or datetime.now(UTC)
    return {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
            "config_hash": config_hash, "version": __version__}


def _author(a: dict) -> str:
    if a.get("name"):
        return str(a["name"])
    return " ".join(str(a[k]) for k in ("given-names", "family-names") if a.get(k))


def citation(path: Path = REPO / "CITATION.cff") -> dict:
    """How to cite this software: one line of text, a BibTeX entry and where it came from."""
    cff, source = FALLBACK, "built in (no CITATION.cff found)"
    if path.is_file():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(loaded, dict) and loaded.get("title"):
            cff, source = loaded, "CITATION.cff"
    authors = [_author(a) for a in cff.get("authors") or [] if isinstance(a, dict)]
    year = str(cff.get("date-released", ""))[:4]
    url = cff.get("repository-code") or cff.get("url") or ""
    version = cff.get("version") or __version__
    text = (f"{', '.join(authors) or 'Anonymous'}{f' ({year})' if year else ''}. "
            f"{cff['title']} (version {version}).{f' {url}' if url else ''}")
    bib = "\n".join([
        "@software{intraneuron,", f"  title = {{{cff['title']}}},",
        f"  author = {{{' and '.join(authors) or 'Anonymous'}}},", f"  version = {{{version}}},",
        *([f"  year = {{{year}}},"] if year else []), *([f"  url = {{{url}}},"] if url else []),
        "}"])
    return {"text": text, "bibtex": bib, "source": source,
            "cff_url": f"{url.rstrip('/')}/blob/main/CITATION.cff" if url else None}
