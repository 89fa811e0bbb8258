"""A throwaway single-node SLURM cluster (munged + slurmctld + slurmd) for tests.

Why: the SLURM profile and the executor plugin can only be trusted once they have submitted the
real workflow to a real scheduler. Everything lives under one temp dir, the daemons run in the
foreground as children of the test process, and they are stopped by PID, never by name, so a
test can neither touch nor be confused by any other SLURM on the machine.

Usage::

    with slurm_cluster() as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env)

Needs root (slurmd runs jobs as the submitting user and the daemons run as SlurmUser=root)
and the Debian packages ``slurm-wlm`` and ``munge`` (installed by ``bash setup.sh test``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
# Client commands that get a wrapper exporting SLURM_CONF: the slurm jobstep plugin strips every
# SLURM_* variable before its nested srun, so the variable alone does not reach job steps.
CLIENTS = ("srun", "sbatch", "squeue", "scancel", "sinfo", "scontrol", "sacct")
PARTITION = "debug"
# The plugin only honours --slurm-status-command squeue when MinJobAge >= 3x its initial status
# wait (else it silently falls back to sacct, which fails without accounting and hangs the run).
# Generous, so that a test can still list a long run's first jobs at its end.
MIN_JOB_AGE_S = 1800


def _find(cmd: str) -> str | None:
    """Locate a binary, also in the sbin dirs that a non-login PATH may lack."""
    extra = os.pathsep.join(("/usr/sbin", "/sbin", "/usr/local/sbin"))
    return shutil.which(cmd, path=os.environ.get("PATH", "") + os.pathsep + extra)


def missing_requirements() -> str | None:
    """Return why a cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "a real SLURM cluster needs root (daemons run as SlurmUser=root)"
    missing = [c for c in (*DAEMONS, "munge", *CLIENTS) if _find(c) is None]
    if missing:
        return "SLURM/munge binaries not found: " + ", ".join(missing)
    return None


def require_slurm() -> None:
    """Skip the calling test when SLURM cannot run here; fail instead under CI=true.

    CI installs SLURM (bash setup.sh test), so a missing install there is a broken CI image,
    not a reason to silently skip the only test of the cluster path.
    """
    import pytest

    reason = missing_requirements()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but SLURM is unusable: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class SlurmCluster:
    """A running cluster: its state dir, config and the environment to talk to it."""

    root: Path
    conf: Path
    bindir: Path
    env: dict[str, str]
    partition: str = PARTITION
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        """Run a SLURM client command against this cluster and return its stdout."""
        res = subprocess.run(
            list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
        return res.stdout

    def jobs(self, states: str = "all") -> list[dict[str, str]]:
        """Jobs that slurmctld still remembers (finished ones for MinJobAge seconds)."""
        out = self.run(
            "squeue", "--noheader", f"--states={states}", "--format=%i|%j|%T|%k", check=False
        )
        rows = []
        for line in out.splitlines():
            parts = line.strip().split("|", 3)
            if len(parts) == 4:
                rows.append(dict(zip(("id", "name", "state", "comment"), parts, strict=True)))
        return rows

    def node_state(self) -> str:
        return self.run("sinfo", "--noheader", "--format=%T", check=False).strip()

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of every daemon log, for error messages."""
        chunks = []
        for log in sorted((self.root / "log").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            chunks.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(chunks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("MemTotal missing from /proc/meminfo")


def _slurm_conf(root: Path, munge_socket: Path, host: str, cpus: int, mem_mb: int) -> str:
    """slurm.conf for one node that is both controller and compute node.

    Ports are picked free so that two clusters (or a stale one) never collide. No accounting
    daemon: sacct does not work, status checks go through squeue. KillWait is short so a
    scancel'ed job is gone in seconds. CR_Core: memory is not a consumable, so a job without
    --mem does not grab the whole node.
    """
    return f"""\
ClusterName=itest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmdSpoolDir={root}/spool/slurmd
StateSaveLocation={root}/spool/slurmctld
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge={MIN_JOB_AGE_S}
KillWait=5
InactiveLimit=0
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _write_wrappers(bindir: Path, conf: Path) -> None:
    bindir.mkdir(parents=True)
    for cmd in CLIENTS:
        real = _find(cmd)
        if real is None:
            continue
        script = bindir / cmd
        script.write_text(f"#!/bin/sh\nexport SLURM_CONF='{conf}'\nexec '{real}' \"$@\"\n")
        script.chmod(0o755)


def _wait(what: str, ok, timeout: float, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [n for n, p in cluster.procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(
                f"{', '.join(dead)} exited while waiting for {what}\n" + cluster.log_tail()
            )
        if ok():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n" + cluster.log_tail())


def _start_munge(cluster: SlurmCluster) -> Path:
    mdir = cluster.root / "munge"
    mdir.mkdir()
    mdir.chmod(0o755)  # munged refuses a socket dir that others cannot traverse
    key = mdir / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    sock = mdir / "munge.socket.2"
    log = (cluster.root / "log" / "munged.log").open("ab")
    cluster.procs["munged"] = subprocess.Popen(
        [
            _find("munged"),
            "--foreground",
            f"--key-file={key}",
            f"--socket={sock}",
            f"--pid-file={mdir}/munged.pid",
            f"--log-file={mdir}/munged-internal.log",
            f"--seed-file={mdir}/munged.seed",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()

    def munge_works() -> bool:
        if not sock.exists():
            return False
        cred = subprocess.run([_find("munge"), "-S", str(sock), "-n"], capture_output=True)
        if cred.returncode != 0:
            return False
        back = subprocess.run(
            [_find("unmunge"), "-S", str(sock)], input=cred.stdout, capture_output=True
        )
        return back.returncode == 0

    _wait("munged", munge_works, 20, cluster)
    return sock


def _start_slurm(cluster: SlurmCluster, timeout: float) -> None:
    for name in ("slurmctld", "slurmd"):
        log = (cluster.root / "log" / f"{name}-stdout.log").open("ab")
        cluster.procs[name] = subprocess.Popen(
            [_find(name), "-D", "-f", str(cluster.conf)],
            env=cluster.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
    _wait("the node to become idle", lambda: cluster.node_state() == "idle", timeout, cluster)


def _stop(cluster: SlurmCluster) -> None:
    """Cancel leftover jobs, then stop the daemons we started, by PID, in reverse order."""
    if "slurmctld" in cluster.procs and cluster.procs["slurmctld"].poll() is None:
        with contextlib.suppress(Exception):
            cluster.run("scancel", "--user=root", check=False, timeout=10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and cluster.jobs("PENDING,RUNNING,COMPLETING"):
                time.sleep(0.5)
    for name in reversed(list(cluster.procs)):
        proc = cluster.procs[name]
        if proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def slurm_cluster(timeout: float = 60, keep: bool = False) -> Iterator[SlurmCluster]:
    """Bring up a cluster, yield it once the node is idle, always tear it down.

    The state dir is created directly under /tmp (not pytest's deep tmp_path) because the munge
    socket path must fit in a sockaddr_un. ``keep=True`` leaves the dir for post-mortems.
    """
    reason = missing_requirements()
    if reason is not None:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp" if os.path.isdir("/tmp") else None))
    root.chmod(0o755)
    for sub in ("log", "run", "spool/slurmd", "spool/slurmctld"):
        (root / sub).mkdir(parents=True)
    conf = root / "slurm.conf"
    bindir = root / "bin"
    env = dict(os.environ)
    env["SLURM_CONF"] = str(conf)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    cluster = SlurmCluster(root=root, conf=conf, bindir=bindir, env=env)
    try:
        sock = _start_munge(cluster)
        conf.write_text(
            _slurm_conf(
                root,
                sock,
                socket.gethostname(),
                len(os.sched_getaffinity(0)),
                max(_mem_mb() - 2048, 512),
            )
        )
        _write_wrappers(bindir, conf)
        _start_slurm(cluster, timeout)
        yield cluster
    finally:
        _stop(cluster)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
