"""The study's runs as jobs, on a SLURM cluster or on this machine, through submitit.

``execute(specs, root, "slurm", ClusterOptions(...))`` runs every unit of a plan that has not
finished (``units.units_of``: the category search, 3D-OFDB trees, pre-trainings, fine-tunings),
one job per unit, and returns a ``Report`` naming the failures:

* **slurm** (``SlurmBackend``): a unit is submitted with sbatch through submitit as soon as each
  unit it needs has finished or has a live job; it then waits for that job in SLURM
  (``--dependency=afterok:ID``), so fine-tunings queue behind their pre-trainings. Logs, the
  batch script and submitit's files are in the unit's job folder (``RUN/slurm/``), with
  ``job.json`` naming the job. The job is a ``submitit.helpers.Checkpointable``: on the time-limit
  or pre-emption signal (USR2, 90 s before the end) it requeues itself with the same call, and the
  run resumes from its last checkpoint (``engine.train(resume=True)``: exact continuation). A run
  with ``gpus_per_run`` N > 1 is one job of N processes, one per GPU (torch.distributed's
  variables from ``submitit.helpers.TorchDistributedEnvironment``); it keeps its planned global
  batch, each process taking batch / N, and its folder records the per-process batch and world size.
* **local** (``LocalBackend``): the same units as local jobs (submitit's ``LocalExecutor``), a unit
  starting once what it needs has finished: as many at once as there are GPUs (N per run, chosen
  with ``CUDA_VISIBLE_DEVICES``), or ``max_parallel`` on the CPU (default 1).

Nothing is lost and nothing runs twice: a finished unit is never submitted again, a unit whose
recorded job is still queued or running is followed rather than resubmitted, and a failed unit's
dependants are cancelled and named. Only ``summary.json`` (written last) marks a finished run.
"""

from __future__ import annotations

import pickle
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from submitit.core.utils import JobPaths

from ..errors import ParamError
from .backends import EXECUTORS, ClusterOptions, backend, visible_gpus
from .units import ENDED, Unit, split_batch, units_of

__all__ = ["EXECUTORS", "ClusterOptions", "Failure", "ProgressLine", "Report", "execute", "visible_gpus"]

#: Ended states that may be followed by a requeue or by a late view of the summary on a shared
#: file system: a unit is failed only after ``ClusterOptions.settle_s`` in one of them.
UNSETTLED = frozenset({"PREEMPTED", "COMPLETED"})
RUNNING = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"})


# ----------------------------------------------------------------------------------------------
# The loop.


@dataclass
class Failure:
    unit: Unit
    reason: str
    log: Path | None

    def line(self) -> str:
        where = f"; log: {self.log}" if self.log else ""
        return f"{self.unit.label}: {self.reason}{where}"


@dataclass
class Report:
    """What ``execute`` did: units finished before, units finished now, failures, job ids."""

    executor: str
    finished_before: list[Unit] = field(default_factory=list)
    done: list[Unit] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    jobs: dict[Path, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Track:
    unit: Unit
    job_id: str
    job: object | None
    ended_since: float | None = None
    state: str = "PENDING"


def _job_error(unit: Unit, executor: str, job_id: str) -> str | None:
    """The last line of the exception a job raised (from submitit's result file), if any."""
    path = JobPaths(unit.job_dir(executor), job_id, 0).result_pickle
    if not path.is_file():
        return None
    try:
        outcome, value = pickle.loads(path.read_bytes())
    except Exception:  # half-written by a job being killed: not a verdict
        return None
    if outcome != "error":
        return None
    lines = [ln for ln in str(value).strip().splitlines() if ln.strip()]
    # "ofdb_study.errors.ParamError: data: ..." -> "ParamError: data: ..."
    return re.sub(r"^(?:\w+\.)+(\w+:)", r"\1", lines[-1]) if lines else "the job raised"


def _log(unit: Unit, executor: str, job_id: str) -> Path:
    return JobPaths(unit.job_dir(executor), job_id, 0).stderr


def counts_line(report: Report, waiting: int, tracks: dict[Path, _Track]) -> str:
    running = sum(t.state in RUNNING for t in tracks.values())
    queued = len(tracks) - running
    return (
        f"[study run] {report.executor}: {waiting} waiting, {queued} queued, {running} running, "
        f"{len(report.done)} done, {len(report.failed)} failed"
    )


def execute(
    specs,
    root,
    executor: str = "local",
    options: ClusterOptions | None = None,
    *,
    log=print,
    status=None,
    on_submit=None,
) -> Report:
    """Run every unfinished unit of the plan ``specs`` as jobs on ``executor``; wait for them all.

    Args:
        specs: the plan (``experiments.plan``), its runs under ``root``.
        root: the run root (data units keep their job folders in ``root/jobs``).
        executor: ``slurm`` or ``local``.
        options: resources and pacing (``ClusterOptions``).
        log: called with one line per event (submitted, followed, failed).
        status: called with the counts line whenever it changes (default: ``log``).
        on_submit: called with ``(unit, job_id)`` after each submission (tests use it).

    Returns:
        A ``Report``; ``report.failed`` names each failed unit with the reason and its log.

    Raises:
        ParamError: bad options, a batch that does not divide over the processes, or a run whose
            recorded local job is still running in another process.
    """
    options = (options or ClusterOptions()).check()
    all_units = units_of(list(specs), root)
    for u in all_units:
        if u.is_run:
            split_batch(u.spec, options.world)  # refuse a batch that does not divide, before submitting
    be = backend(executor, options)
    status = status or log
    report = Report(be.name)
    report.finished_before = [u for u in all_units if u.finished]
    waiting = [u for u in all_units if not u.finished]
    tracks: dict[Path, _Track] = {}
    for u in list(waiting):  # follow jobs that an earlier call left queued or running
        rec = u.record(be.name)
        if rec and be.alive(rec):
            if be.name == "local":
                raise ParamError(
                    "run", f"{u.label} is being trained by local job {rec['job_id']}; wait for it"
                )
            tracks[u.key] = _Track(u, rec["job_id"], None)
            report.jobs[u.key] = rec["job_id"]
            waiting.remove(u)
            log(f"[study run] following job {rec['job_id']}: {u.label}")
    failed_keys: set[Path] = set()
    last = None
    try:
        while waiting or tracks:
            _submit_ready(be, waiting, tracks, failed_keys, report, log, on_submit)
            _look(be, tracks, failed_keys, report, options, log)
            line = counts_line(report, len(waiting), tracks)
            if line != last:
                status(line)
                last = line
            if tracks:
                time.sleep(options.poll_s)
    except KeyboardInterrupt:
        if be.name == "local":
            be.cancel({t.job_id: t.job for t in tracks.values()})
        raise
    return report


def _submit_ready(be, waiting, tracks, failed_keys, report, log, on_submit) -> None:
    for u in list(waiting):
        blocked = [n for n in u.needs if n in failed_keys]
        if blocked:
            waiting.remove(u)
            _fail(u, f"not run: {_label_of(blocked[0], report)} failed", None, failed_keys, report)
            continue
        if be.capacity is not None and len(tracks) >= be.capacity:
            continue
        after, ready = [], True
        for n in u.needs:
            t = tracks.get(n)
            if t is not None and be.dependencies:
                after.append(t.job_id)
            elif t is not None or not _finished_key(n, report):
                ready = False
        if not ready:
            continue
        try:
            job_id, job = be.submit(u, after)
        except Exception as exc:  # sbatch refused it (a partition, an account, a limit): say why
            waiting.remove(u)
            message = " ".join(str(exc).split())[-300:]
            _fail(u, f"not submitted: {type(exc).__name__}: {message}", None, failed_keys, report)
            log(f"[study run] {report.failed[-1].line()}")
            continue
        u.write_record(be.name, job_id, after)
        tracks[u.key] = _Track(u, job_id, job)
        report.jobs[u.key] = job_id
        waiting.remove(u)
        dep = f" after {', '.join(after)}" if after else ""
        log(f"[study run] submitted job {job_id}{dep}: {u.label}")
        if on_submit is not None:
            on_submit(u, job_id)


def _look(be, tracks, failed_keys, report, options, log) -> None:
    states = be.states({t.job_id: t.job for t in tracks.values()})
    now = time.monotonic()
    for key, t in list(tracks.items()):
        t.state = states.get(t.job_id, "GONE")
        if t.unit.finished:  # done once its job has ended too (the slot is free again)
            if t.state not in ENDED:
                continue
            del tracks[key]
            be.release(t.job_id)
            report.done.append(t.unit)
            continue
        error = _job_error(t.unit, be.name, t.job_id)
        if t.state in ENDED:
            t.ended_since = t.ended_since or now
        else:
            t.ended_since = None
        settled = t.ended_since is not None and (
            t.state not in UNSETTLED or now - t.ended_since >= options.settle_s
        )
        if error is None and not settled:
            continue
        del tracks[key]
        be.release(t.job_id)
        reason = f"job {t.job_id} {'failed' if error else t.state}" + (f": {error}" if error else "")
        _fail(t.unit, reason, _log(t.unit, be.name, t.job_id), failed_keys, report)
        log(f"[study run] {report.failed[-1].line()}")
    # dependants of a failure still queued in SLURM would wait for ever: cancel and name them
    for key, t in list(tracks.items()):
        blocked = [n for n in t.unit.needs if n in failed_keys]
        if blocked:
            be.cancel({t.job_id: t.job})
            del tracks[key]
            be.release(t.job_id)
            _fail(t.unit, f"cancelled: {_label_of(blocked[0], report)} failed", None, failed_keys, report)


def _fail(unit, reason, log_path, failed_keys, report) -> None:
    failed_keys.add(unit.key)
    report.failed.append(Failure(unit, reason, log_path))


def _label_of(key: Path, report: Report) -> str:
    for f in report.failed:
        if f.unit.key == key:
            return f.unit.label
    return str(key)


def _finished_key(key: Path, report: Report) -> bool:
    return any(u.key == key for u in report.finished_before + report.done)


class ProgressLine:
    """Show the counts line in place on a terminal (one line per change elsewhere)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.open = False

    def __call__(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def log(self, line: str) -> None:
        """An event line, above the counts line."""
        if self.open:
            self.stream.write("\r\033[K")
            self.open = False
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.open = False
