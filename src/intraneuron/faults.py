"""Fault injection for the interruption tests: SIGKILL the whole run at a named point.

`INTRANEURON_KILL_AT=<point>[:<hits>]` kills the process group (Snakemake and its jobs, as a power
cut or an OOM killer would) the <hits>-th time `<point>` is reached. Unset, it costs one lookup.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def checkpoint(point: str) -> None:
    spec = os.environ.get("INTRANEURON_KILL_AT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(count or 1):
        os.killpg(os.getpgid(0), signal.SIGKILL)
