"""Fault injection for the interruption tests: SIGKILL at a named point of a job.

`INTRANEURON_KILL_AT=<point>[:<hits>[:group]]` kills the job's process the <hits>-th time it
reaches `<point>`; with `group`, the whole process group (Snakemake and all its jobs, as a power
cut or the OOM killer would). Unset, it costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def kill_point(point: str) -> None:
    """Kill this job here if INTRANEURON_KILL_AT names `point` (and its hit count is reached)."""
    spec = os.environ.get("INTRANEURON_KILL_AT")
    if not spec:
        return
    name, count, scope = (spec.split(":") + ["1", "job"])[:3]
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(count or 1):
        if scope == "group":
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
