"""What every Snakemake script adapter shares: logging to the rule's log, clean error surfacing,
and provenance attributes; and the checks the workflow runs when it starts."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from . import __version__
from .h5io import atomic_path

PACKAGES = ("torch", "transformers", "numpy", "scipy", "pandas", "pyarrow", "h5py", "snakemake")


def package_versions() -> dict[str, str]:
    out = {"intraneuron": __version__, "python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_script(snakemake, main: Callable[[object, logging.Logger], None]) -> None:
    """Run `main(snakemake, log)` with logging to the rule's log file and to stderr.

    A failure is logged with its traceback in the log file and summarised in one line on stderr,
    so Snakemake's own output shows the cause next to the log path it prints.
    """
    log = logging.getLogger("intraneuron")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    if snakemake.log:
        fh = logging.FileHandler(snakemake.log[0], mode="w")
        fh.setFormatter(fmt)
        log.addHandler(fh)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(fmt)
    log.addHandler(err)
    _quiet_libraries()
    start = time.perf_counter()
    try:
        main(snakemake, log)
    except Exception as exc:
        for handler in log.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.stream.write(logging.Formatter().formatException(sys.exc_info()) + "\n")
        log.error("%s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from exc
    log.info("done in %.1f s", time.perf_counter() - start)


def _quiet_libraries() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


# ------------------------------------------------------------------ checks at workflow start

GPU_KEYS = ("gpu", "gpus")


def gpu_request_problem(executor: str | None, resources: dict, device: str) -> str | None:
    """Why a cluster run would extract on CPU nodes by accident, or None.

    `--profile profiles/slurm` alone still loads profiles/default as the workflow profile, whose
    `set-resources` replaces the slurm profile's, so extraction silently loses its GPU request.
    """
    if executor != "slurm" or device == "cpu":
        return None
    if any(resources.get(key) for key in GPU_KEYS):
        return None
    if any("gpu" in str(resources.get(key, "")) for key in ("gres", "slurm_extra")):
        return None
    return (
        "the slurm executor is in use but rule extract requests no GPU, so the forward pass "
        "would run on a CPU node: the workflow profile profiles/default (which Snakemake loads "
        "whenever --workflow-profile is not given) replaced the resources of your --profile. "
        "Run `snakemake --workflow-profile profiles/slurm` (or `--profile profiles/slurm "
        "--workflow-profile none`); to extract on CPU nodes on purpose, set model.device: cpu"
    )


def stale_path(html: Path) -> Path:
    """Where a retired page goes: index.html -> index.STALE.html, next to it."""
    return html.with_name(f"{html.stem}.STALE{html.suffix}")


def retire_report(html: str | os.PathLike) -> Path | None:
    """Move a report that the starting run will recompute aside, marked STALE in its first line.

    A run that then fails leaves no `index.html` that looks current: only the marked copy,
    which says when and why it went stale. Returns the copy's path (None without a report).
    """
    html = Path(html)
    if not html.is_file():
        return None
    stale = stale_path(html)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    banner = (
        '<div id="stale-report" style="background:#b00020;color:#fff;padding:1em;'
        'font:bold 1.2em sans-serif">STALE REPORT: a run started at '
        f"{when} recomputes its inputs (changed config, code or data), so this report describes "
        f"earlier results. The current report will be {html.name} once that run succeeds.</div>"
    )
    text = html.read_text(encoding="utf-8")
    body = re.search(r"<body[^>]*>", text)
    at = body.end() if body else 0
    with atomic_path(stale) as tmp:
        Path(tmp).write_text(text[:at] + banner + text[at:], encoding="utf-8")
    html.unlink()
    return stale


def drop_stale_report(html: str | os.PathLike) -> None:
    """After a successful run that rebuilt the report, its STALE predecessor has no use."""
    html = Path(html)
    if html.is_file():
        stale_path(html).unlink(missing_ok=True)
