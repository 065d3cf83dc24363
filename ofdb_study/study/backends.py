"""What runs the study's jobs: their resources, the call a job makes, and the two backends.

* ``ClusterOptions``: the resources of each job (GPUs, CPUs, nodes, time limit, partition, extra
  sbatch options) and how often the executor looks at its jobs.
* ``UnitJob``: the call a job makes (``units.run_unit``), a ``submitit.helpers.Checkpointable``:
  on SLURM's time-limit or pre-emption signal (USR2, 90 s before the end) submitit calls its
  ``checkpoint``, which returns the same call, and requeues the job; the run resumes from its last
  checkpoint (``engine.train(resume=True)``: on the CPU the weights of an uninterrupted run bit for
  bit; on CUDA the same data order and draws, with weights that differ from an uninterrupted run's
  as two CUDA runs of one config do, since its attention backward is not deterministic). With N > 1
  processes it first sets torch.distributed's variables (``TorchDistributedEnvironment``).
* ``SlurmBackend`` (sbatch through submitit, squeue, scancel) and ``LocalBackend`` (submitit's
  ``LocalExecutor``: processes on this machine, one GPU group each via ``CUDA_VISIBLE_DEVICES``):
  ``submit(unit, after)``, ``states(jobs)``, ``alive(record)``, ``cancel(jobs)``, ``release(job)``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import submitit

from ..errors import ParamError
from .units import ENDED, Unit, run_unit, squeue_states

EXECUTORS = ("local", "slurm")
#: sbatch options the executor sets itself or has its own option for; ``--slurm`` may not set them.
RESERVED = frozenset(
    {
        "dependency",
        "output",
        "error",
        "array",
        "job_name",
        "open_mode",
        "signal",
        "nodes",
        "ntasks",
        "ntasks_per_node",
        "gpus",
        "gpus_per_node",
        "gres",
        "cpus_per_task",
        "partition",
        "time",
    }
)


@dataclass(frozen=True)
class ClusterOptions:
    """Resources of each job and how the executor paces itself.

    Attributes:
        gpus_per_run: GPUs of one run (0: a CPU job); N > 1 runs N DDP processes.
        cpus_per_gpu: CPUs of each process (with ``gpus_per_run`` 0: of the job's process).
        time_min: the time limit of one job in minutes; a job reaching it requeues and resumes.
        partition: SLURM partition (None: the cluster's default).
        nodes_per_run: nodes of one run (its GPUs spread evenly over them; SLURM only).
        max_parallel: most units with a job at once (None: SLURM takes them all; local: one
            per GPU group, else 1).
        slurm: extra sbatch options, ``(key, value)`` pairs (``--slurm account=abc``).
        processes: processes per run (default ``max(1, gpus_per_run)``; > 1 without GPUs: DDP on gloo).
        poll_s: seconds between looks at the jobs.
        settle_s: seconds a job may look ended before a run without its summary counts as failed.
    """

    gpus_per_run: int = 1
    cpus_per_gpu: int = 8
    time_min: int = 24 * 60
    partition: str | None = None
    nodes_per_run: int = 1
    max_parallel: int | None = None
    slurm: tuple[tuple[str, object], ...] = ()
    processes: int | None = None
    poll_s: float = 5.0
    settle_s: float = 30.0

    @property
    def world(self) -> int:
        return int(self.processes or max(1, self.gpus_per_run))

    def check(self) -> ClusterOptions:
        for name in ("cpus_per_gpu", "time_min", "nodes_per_run"):
            if int(getattr(self, name)) < 1:
                raise ParamError(
                    name.replace("_", "-"), f"must be a positive integer, got {getattr(self, name)}"
                )
        if self.gpus_per_run < 0:
            raise ParamError("gpus-per-run", f"must be >= 0, got {self.gpus_per_run}")
        if self.processes is not None and self.processes < 1:
            raise ParamError("processes", f"must be a positive integer, got {self.processes}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ParamError("max-parallel", f"must be a positive integer, got {self.max_parallel}")
        if self.world % self.nodes_per_run:
            raise ParamError(
                "nodes-per-run",
                f"{self.world} processes do not spread evenly over {self.nodes_per_run} nodes",
            )
        for key, _ in self.slurm:
            if key.replace("-", "_") in RESERVED:
                raise ParamError(
                    "slurm",
                    f"{key} is set by the executor or its own option; allowed: any other sbatch option",
                )
        return self


class UnitJob(submitit.helpers.Checkpointable):
    """What a job runs: one unit; requeued with the same call on a time limit or pre-emption."""

    def __init__(self, unit: Unit, processes: int = 1):
        self.unit, self.processes = unit, processes

    def __call__(self) -> dict:
        if self.processes > 1:  # RANK, WORLD_SIZE, MASTER_*: what engine.train's init_distributed reads
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return run_unit(self.unit, self.processes if self.unit.is_run else 1)

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        # the run folder holds the checkpoint: the same call resumes from it
        return submitit.helpers.DelayedSubmission(UnitJob(self.unit, self.processes))


# ----------------------------------------------------------------------------------------------
# Backends: submit a unit, look at jobs, cancel them.


class SlurmBackend:
    """Jobs on SLURM (sbatch, squeue, scancel; ``SLURM_CONF`` from the environment)."""

    name = "slurm"
    dependencies = True

    def __init__(self, options: ClusterOptions):
        if shutil.which("sbatch") is None:
            raise ParamError("executor", "slurm: sbatch is not on PATH; run where SLURM's commands are")
        self.options = options
        self.capacity = options.max_parallel
        self._check_cluster()

    def _check_cluster(self) -> None:
        """Before anything is submitted: a controller answers, and GPU jobs go to a partition that
        has GPUs (otherwise every job would fail at sbatch with a gres error)."""
        o = self.options
        cmd = ["sinfo", "--noheader", "--format=%G"] + (["--partition", o.partition] if o.partition else [])
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ParamError(
                "executor", f"slurm: sinfo did not answer ({exc}); is slurmctld reachable?"
            ) from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ParamError("executor", f"slurm: no controller answers (sinfo: {why})")
        gres = [g.strip() for g in done.stdout.splitlines() if g.strip()]
        if not gres and o.partition:
            return  # an unknown partition: sbatch names it, per unit
        if o.gpus_per_run and not any("gpu" in g for g in gres):
            where = f"partition {o.partition}" if o.partition else "the default partition"
            raise ParamError(
                "gpus-per-run",
                f"{where} has no GPUs (sinfo reports gres {', '.join(sorted(set(gres))) or 'none'}); "
                "pass --gpus-per-run 0 for CPU jobs or --partition with GPUs",
            )

    def submit(self, unit: Unit, after: list[str]) -> tuple[str, object]:
        o = self.options
        procs = o.world if unit.is_run else 1
        ex = submitit.SlurmExecutor(folder=unit.job_dir(self.name))
        params = dict(
            job_name=f"ofdb-{unit.kind}-{unit.key.name}"[:120],
            time=int(o.time_min),
            nodes=o.nodes_per_run if unit.is_run else 1,
            ntasks_per_node=procs // (o.nodes_per_run if unit.is_run else 1),
            cpus_per_task=o.cpus_per_gpu,
        )
        if o.gpus_per_run and unit.is_run:
            params["gpus_per_node"] = o.gpus_per_run // o.nodes_per_run
        if o.partition:
            params["partition"] = o.partition
        if after:
            params["dependency"] = "afterok:" + ":".join(after)
        if o.slurm:
            params["additional_parameters"] = dict(o.slurm)
        ex.update_parameters(**params)
        job = ex.submit(UnitJob(unit, procs))
        return str(job.job_id), job

    def states(self, jobs: dict[str, object]) -> dict[str, str]:
        """SLURM state of each job id (``GONE`` when squeue no longer knows it)."""
        return squeue_states(jobs)

    def alive(self, record: dict) -> bool:
        return squeue_states([record["job_id"]])[record["job_id"]] not in ENDED

    def cancel(self, jobs: dict[str, object]) -> None:
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True)

    def release(self, job_id: str) -> None:
        pass


def visible_gpus() -> list[int]:
    """GPU indices this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else every CUDA device."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [x.strip() for x in env.split(",") if x.strip()]
        if all(x.isdigit() for x in ids):
            return [int(x) for x in ids]
    import torch

    return list(range(torch.cuda.device_count()))


class LocalBackend:
    """Jobs on this machine (submitit's LocalExecutor): one GPU group each, or ``max_parallel`` on the CPU."""

    name = "local"
    dependencies = False

    def __init__(self, options: ClusterOptions, gpus: list[int] | None = None):
        self.options = options
        n = options.gpus_per_run
        gpus = (visible_gpus() if gpus is None else gpus) if n else []
        if options.nodes_per_run != 1:
            raise ParamError("nodes-per-run", "the local executor runs on this one machine")
        if n and len(gpus) < n:
            raise ParamError("gpus-per-run", f"{n} GPUs per run, but this machine shows {len(gpus)}")
        self.free = [tuple(gpus[i * n : (i + 1) * n]) for i in range(len(gpus) // n)] if n else []
        slots = len(self.free) if n else 1
        self.capacity = min(options.max_parallel or slots, slots) if n else (options.max_parallel or 1)
        self.held: dict[str, tuple[int, ...]] = {}

    def submit(self, unit: Unit, after: list[str]) -> tuple[str, object]:
        procs = self.options.world if unit.is_run else 1
        gpus = self.free.pop(0) if self.free and unit.is_run else ()  # data jobs need no GPU
        ex = submitit.LocalExecutor(folder=unit.job_dir(self.name))
        ex.update_parameters(
            timeout_min=int(self.options.time_min),
            tasks_per_node=procs,
            gpus_per_node=len(gpus),
            visible_gpus=gpus,
        )
        job = ex.submit(UnitJob(unit, procs))
        self.held[str(job.job_id)] = gpus
        return str(job.job_id), job

    def states(self, jobs: dict[str, object]) -> dict[str, str]:
        """RUNNING while the job's process runs; CANCELLED if a signal ended it, else COMPLETED."""
        local = {"RUNNING": "RUNNING", "INTERRUPTED": "CANCELLED"}
        return {jid: local.get(job.get_info()["jobState"], "COMPLETED") for jid, job in jobs.items()}

    def alive(self, record: dict) -> bool:
        """Whether a recorded local job (its controller's process id) still runs on this machine."""
        if record.get("host") != socket.gethostname():
            return False
        try:
            pid = int(record["job_id"])
        except (KeyError, TypeError, ValueError):
            return False
        if Path("/proc/self").is_dir():  # Linux: the process must still be submitit's
            try:
                return b"submitit" in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return False
        try:  # elsewhere (macOS): only whether the process exists
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OSError:
            return False
        return True

    def cancel(self, jobs: dict[str, object]) -> None:
        for job in jobs.values():
            if job is not None:
                job.cancel()

    def release(self, job_id: str) -> None:
        gpus = self.held.pop(job_id, ())
        if gpus:
            self.free.append(gpus)


def backend(executor: str, options: ClusterOptions):
    if executor not in EXECUTORS:
        raise ParamError("executor", f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    return (SlurmBackend if executor == "slurm" else LocalBackend)(options.check())
