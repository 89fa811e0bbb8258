"""What every Snakemake script adapter shares: logging to the rule's log, clean error surfacing,
and provenance attributes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from importlib import metadata

from . import __version__

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
