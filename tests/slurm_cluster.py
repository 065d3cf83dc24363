"""A real one-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd.

``slurm_cluster`` (session-scoped) writes a ``slurm.conf`` in a temporary folder (the node with
this machine's CPUs and memory from ``slurmd -C``, ``proctrack/linuxproc``, ``task/none``,
``select/cons_tres`` with ``CR_CPU``, a 2 s ``KillWait``, state, spool and logs under the
folder, free ports), starts
munged with a generated key, then slurmctld and slurmd in the foreground as child processes,
waits until ``sinfo`` shows the node idle, and points ``SLURM_CONF`` at the file so that sbatch,
squeue and scancel (submitit's and the tests') talk to it. At the end it cancels what is still
queued and stops the three daemons by their process ids.

Debian ships the daemons (``apt-get install slurmctld slurmd slurm-client munge``; ``make test``
installs them where apt-get is usable as root). Without them, or without root, the tests that
need the cluster skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
PARTITION = "debug"


def unavailable() -> str | None:
    """Why this machine cannot start the test cluster, or None."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} missing): "
            "apt-get install slurmctld slurmd slurm-client munge, as root"
        )
    if os.geteuid() != 0:
        return "the test SLURM cluster starts munged, slurmctld and slurmd as root"
    return None


@dataclass
class Cluster:
    folder: Path
    conf: Path
    partition: str
    cpus: int

    def run(self, *cmd: str) -> str:
        """A SLURM command against this cluster; its stdout."""
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def job(self, job_id) -> dict:
        """``scontrol show job`` as a dict (JobState, StartTime, EndTime, Dependency, ...)."""
        out = self.run("scontrol", "show", "job", "--oneliner", str(job_id))
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line() -> tuple[str, int]:
    """The node as ``slurmd -C`` finds it (name, CPUs, sockets, cores, threads, memory)."""
    out = subprocess.run(["slurmd", "-C"], check=True, capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("NodeName="))
    cpus = int(dict(kv.split("=", 1) for kv in line.split())["CPUs"])
    return line.strip(), cpus


def write_conf(folder: Path) -> tuple[Path, int]:
    node, cpus = _node_line()
    d = {k: folder / k for k in ("state", "spool", "log", "munge")}
    for p in d.values():
        p.mkdir(parents=True, exist_ok=True)
    text = f"""\
ClusterName=ofdbtest
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={d["munge"] / "munge.socket"}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d["state"]}
SlurmdSpoolDir={d["spool"]}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={d["log"] / "slurmctld.log"}
SlurmdLogFile={d["log"] / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=2
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    conf = folder / "slurm.conf"
    conf.write_text(text)
    return conf, cpus


def _wait(predicate, seconds: float, what: str, logs: Path) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    tails = "".join(
        f"\n--- {p.name}\n" + p.read_text()[-2000:] for p in sorted(logs.glob("*")) if p.is_file()
    )
    raise RuntimeError(f"the test SLURM cluster: {what} within {seconds:.0f} s{tails}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session", name="slurm_cluster")
def slurm_cluster_fixture(tmp_path_factory):
    """A started one-node SLURM cluster (``Cluster``); ``SLURM_CONF`` points at it meanwhile."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    conf, cpus = write_conf(folder)
    logs = folder / "log"
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = folder / "munge" / "munge.socket"
    env = {**os.environ, "SLURM_CONF": str(conf)}
    procs: list[subprocess.Popen] = []
    saved = os.environ.get("SLURM_CONF")

    def start(name: str, *cmd: str) -> None:
        out = open(logs / f"{name}.out", "w")
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env))
        out.close()

    try:
        start(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={folder / 'munge' / 'munged.pid'}",
            f"--log-file={logs / 'munged.log'}",
            f"--seed-file={folder / 'munge' / 'munged.seed'}",
        )
        _wait(socket_path.exists, 20, "munged did not create its socket", logs)
        start("slurmctld", "slurmctld", "-D", "-f", str(conf))
        start("slurmd", "slurmd", "-D", "-f", str(conf))

        def idle() -> bool:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(
                    "a SLURM daemon exited: "
                    + "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(logs.glob("*.out")))
                )
            out = subprocess.run(
                ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, env=env
            )
            return out.stdout.strip() == "idle"

        _wait(idle, 60, "the node did not become idle", logs)
        os.environ["SLURM_CONF"] = str(conf)
        yield Cluster(folder, conf, PARTITION, cpus)
    finally:
        if procs and all(p.poll() is None for p in procs[1:]):
            subprocess.run(["scancel", "--partition", PARTITION], env=env, capture_output=True)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                out = subprocess.run(
                    ["squeue", "--noheader", "--format=%i"], capture_output=True, text=True, env=env
                )
                if not out.stdout.strip():
                    break
                time.sleep(0.5)
        for proc in reversed(procs):  # slurmd, slurmctld, munged: each by its own process id
            _stop(proc)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
