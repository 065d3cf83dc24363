"""The study's plan as units of work for executors: what each job does and what it waits for.

``units_of(specs, root)`` turns a plan (``plan.plan``) into units (``Unit``), in an order where every
unit comes after the units it needs:

* ``search``: the exact category search that the ``ofdb`` and ``fractaldb`` pre-trainings read
  (``fractals.search.searched``, cached once per machine under ``cache_root()``). Searched once,
  before them, for the largest category count any unfinished one needs, so parallel jobs never
  write the cache at the same time.
* ``ofdb3d``: a 3D-OFDB tree (``plan.ofdb3d_settings``), built once before the unfinished
  pre-trainings that read it.
* ``pretrain`` and ``finetune``: one training run each (``plan.train_spec``); a fine-tuning
  needs its pre-training.

A unit is finished when its last file is there: the run's ``summary.json``, the tree's
``manifest.json``, the search state holding enough categories. ``run_unit`` is what a job calls.
A job's folder (logs, submitit's files, ``job.json``, the record of the job that holds the unit)
is ``RUN/<executor>/`` for a run and ``ROOT/jobs/<name>/<executor>/`` for data.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ParamError
from ..files import atomic_write_text
from ..fractals.build import MANIFEST
from ..fractals.defaults import SEARCH_SEED
from ..fractals.kinds import SEARCHED
from ..fractals.search import STATE_FILE, cache_root
from ..train.runinfo import CHECKPOINT
from . import plan

#: The record of the job holding a unit, in the unit's job folder.
JOB_RECORD = "job.json"
#: SLURM job states after which a job does no more work (``GONE``: squeue no longer knows it).
ENDED = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "REVOKED",
        "PREEMPTED",
        "GONE",
    }
)
#: Pre-training data kinds that read the exact category search (``Kind.searched``).
SEARCHED_DATA = SEARCHED


@dataclass(frozen=True)
class Unit:
    """One job's worth of work.

    Attributes:
        kind: ``search``, ``ofdb3d``, ``pretrain`` or ``finetune``.
        key: what the unit makes: the search cache folder, the 3D tree or the run folder.
        label: one line naming it (the run's ``RunSpec.label``).
        needs: keys of the units it waits for.
        spec: the run (for ``ofdb3d``: the first run that reads the tree).
        categories: categories to search (``search`` only).
        jobs_root: where a data unit keeps its job folders (runs keep theirs in the run folder).
    """

    kind: str
    key: Path
    label: str
    needs: tuple[Path, ...] = ()
    spec: plan.RunSpec | None = None
    categories: int = 0
    jobs_root: Path | None = None

    @property
    def is_run(self) -> bool:
        return self.kind in ("pretrain", "finetune")

    @property
    def finished(self) -> bool:
        if self.is_run:
            return self.spec.finished
        if self.kind == "ofdb3d":
            return (self.key / MANIFEST).is_file()
        state = self.key / STATE_FILE
        return state.is_file() and json.loads(state.read_text())["n_categories"] >= self.categories

    def job_dir(self, executor: str) -> Path:
        """The folder of this unit's jobs on ``executor`` (logs, submitit files, ``job.json``)."""
        if self.is_run:
            return self.key / executor
        return Path(self.jobs_root) / f"{self.kind}-{self.key.name}" / executor

    def record(self, executor: str) -> dict | None:
        """The record of the last job submitted for this unit, or None."""
        path = self.job_dir(executor) / JOB_RECORD
        return json.loads(path.read_text()) if path.is_file() else None

    def write_record(self, executor: str, job_id: str, after: list[str]) -> None:
        doc = {
            "executor": executor,
            "job_id": str(job_id),
            "host": socket.gethostname(),
            "after": list(after),
            "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "label": self.label,
        }
        atomic_write_text(self.job_dir(executor) / JOB_RECORD, json.dumps(doc, indent=2) + "\n")


def search_folder() -> Path:
    """The cache folder of the exact search the engine reads (``fractals.search.searched``)."""
    return cache_root() / f"search-seed{SEARCH_SEED}"


def units_of(specs: list[plan.RunSpec], root) -> list[Unit]:
    """The units of a plan, each after what it needs (see the module docstring).

    Raises:
        ParamError: a fine-tuning starts from a pre-training that is neither planned nor finished.
    """
    root = Path(root)
    planned = {s.path for s in specs}
    plan.check_starts(specs, planned)
    data: dict[Path, Unit] = {}
    reads_search = [
        s for s in specs if s.phase == "pretrain" and s.cfg.data in SEARCHED_DATA and not s.cfg.params
    ]
    searched = [s.categories for s in reads_search if not s.finished]  # finished runs read nothing more
    reads_search = {s.path for s in reads_search}
    search = None
    if searched:
        search = Unit("search", search_folder(), "", categories=max(searched), jobs_root=root / "jobs")
        search = replace(search, label=f"search {search.categories} categories")
    runs = []
    for s in specs:
        needs: list[Path] = []
        if s.path in reads_search and not s.finished:
            needs.append(search.key)
        if s.data3d is not None and not s.finished:
            tree = Path(s.cfg.data.split(":", 1)[1])
            label = f"build 3D-OFDB-{s.data3d[0]} ({dict(s.data3d[1])['size']} px)"
            data.setdefault(tree, Unit("ofdb3d", tree, label, spec=s, jobs_root=root / "jobs"))
            needs.append(tree)
        if s.needs in planned:
            needs.append(s.needs)
        runs.append(Unit(s.phase, s.path, s.label, tuple(needs), s))
    first = [search] if search is not None else []
    return first + list(data.values()) + sorted(runs, key=lambda u: u.kind != "pretrain")


def split_batch(spec: plan.RunSpec, processes: int) -> plan.RunSpec:
    """The run as ``processes`` DDP processes that keep its planned global batch (batch / processes each).

    Raises:
        ParamError: the batch does not divide by ``processes``.
    """
    if processes <= 1:
        return spec
    batch = spec.cfg.batch_size
    if batch % processes:
        raise ParamError(
            "gpus-per-run", f"{spec.label}: its batch of {batch} does not divide over {processes} processes"
        )
    return replace(spec, cfg=spec.cfg.replace(batch_size=batch // processes))


def run_unit(unit: Unit, processes: int = 1) -> dict:
    """Do a unit's work in this process (what a job calls); resumes what an earlier job left.

    Returns:
        For a run: its ``weights_sha256`` and ``top1_last``; for data: the folder made.
    """
    if unit.kind == "search":
        import fcntl

        from ..fractals.search import searched

        unit.key.parent.mkdir(parents=True, exist_ok=True)
        with open(unit.key.parent / f"{unit.key.name}.lock", "w") as lock:  # one search per cache
            fcntl.flock(lock, fcntl.LOCK_EX)
            searched(unit.categories)
        return {"made": str(unit.key)}
    if unit.kind == "ofdb3d":
        plan._prepare_data(unit.spec)
        return {"made": str(unit.key)}
    print(f"[job] {unit.label} -> {unit.key} ({processes} process(es))", flush=True)
    checkpoint = unit.key / CHECKPOINT
    if checkpoint.is_file() and not unit.finished:
        import torch

        step = torch.load(checkpoint, map_location="cpu", weights_only=True)["step"]
        print(f"[job] resuming from the checkpoint at step {step} of {unit.spec.cfg.steps}", flush=True)
    summary = plan.train_spec(split_batch(unit.spec, processes))
    print(f"[job] {unit.label}: finished, top-1 {summary.get('top1_last')}", flush=True)
    return {"weights_sha256": summary["weights_sha256"], "top1_last": summary.get("top1_last")}


def squeue_states(job_ids) -> dict[str, str]:
    """SLURM state of each job id (``RUNNING``, ``PENDING``...; ``GONE`` once squeue forgets it).

    Raises:
        RuntimeError: squeue failed for another reason than unknown ids.
    """
    job_ids = [str(j) for j in job_ids]
    if not job_ids:
        return {}
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T", "--jobs=" + ",".join(job_ids)],
        capture_output=True,
        text=True,
    )
    seen = dict(ln.split("|", 1) for ln in out.stdout.split() if "|" in ln)
    if out.returncode != 0 and not seen and "Invalid job id" not in out.stderr:
        raise RuntimeError(f"squeue failed: {out.stderr.strip()}")
    return {j: seen.get(j, "GONE") for j in job_ids}


def live_slurm_jobs(units: list[Unit]) -> dict[Path, tuple[str, str]]:
    """``{unit key: (job id, state)}`` of the units whose recorded SLURM job is queued or running
    (nothing where squeue is not installed)."""
    records = {u.key: u.record("slurm") for u in units if not u.finished}
    records = {k: r for k, r in records.items() if r}
    if not records or shutil.which("squeue") is None:
        return {}
    try:
        states = squeue_states(r["job_id"] for r in records.values())
    except RuntimeError:
        return {}
    return {
        k: (r["job_id"], states[r["job_id"]]) for k, r in records.items() if states[r["job_id"]] not in ENDED
    }
