"""Settings files: the config subset a stage depends on, as a file its jobs take as input.

Snakemake's params trigger lives in its `.snakemake` metadata; a researcher who deletes that
folder, moves the repository or starts from another working directory loses it, and a changed
setting then reruns nothing. So every stage's settings are also written to a small JSON file that
its jobs declare as an input, rewritten only when its content changes: a changed setting makes
the file newer than the outputs it explains, and Snakemake reruns exactly those jobs from the
files alone. Besides the settings proper, a file names the choices that select a job's input
paths (the core-token folder, the proxy file, the corpus files, the number of chunks), because a
job whose input switches back to an older existing file would otherwise look up to date.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def settings_text(content: Any) -> str:
    """The file's text: sorted keys, so the order a user writes keys in changes nothing."""
    return json.dumps(content, sort_keys=True, indent=1, default=str) + "\n"


PENDING = ".pending"  # suffix of the copy a dry run writes of settings a run would change


def record_settings(path: str | os.PathLike, content: Any, write_changes: bool = True) -> str:
    """Write `content` to `path` if the file is missing or holds other settings.

    Returns "same" (nothing to write), "written", or "pending": the file holds other settings
    and `write_changes` is false (a dry run, `--report`, `--lint`), which must not make outputs
    that a run with the recorded settings made look stale, so the file is left as it is.
    """
    path = Path(path)
    text = settings_text(content)
    try:
        old = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        old = None
    if old == text:
        return "same"
    if old is not None and not write_changes:
        return "pending"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plain open would not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return "written"


def write_pending(path: str | os.PathLike, content: Any) -> None:
    """Write a dry run's copy of changed settings, newer than every output: the jobs that take
    the settings as input are then planned, and the recorded file stays as it was."""
    record_settings(path, content)
    os.utime(path)
