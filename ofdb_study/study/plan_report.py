"""``study plan``: every unit of a profile's study, which are done, and the hours the rest will take.

``plan_report(specs, root)`` lists the plan's units (``units.units_of``: data first, then the runs,
pre-trainings before fine-tunings), each with its state: ``done`` (its last file is there),
``queued`` / ``running`` (a recorded SLURM job squeue still knows), ``started`` (a run folder
with logged steps but no summary: the next job resumes it) or ``missing``.

The hours of the missing runs are their training images (steps x global batch) divided by a
throughput per device (images/s), taken from, in this order:

1. finished runs of the same model shape (model, image size, patch, depth, width, heads) under
   the root: the median of their summaries' ``images_per_s`` per process, same phase first;
2. ``MEASURED``: step rates measured with ``benchmarks/bench_train.py`` (and one real run), each
   with the machine it was measured on.

The estimate counts training steps only (no set-up, evaluation or queueing, no data jobs), on the
device the figure was measured on: GPU-hours for a GPU figure, CPU-hours for a CPU one. Where a
loader-bound figure was measured too, the report gives that bound beside it: for every run as an
upper bound (``estimate``), and for the runs the loader feeds (``run_hours``: every fine-tuning,
and a pre-training whose pipeline is the loader on the figure's device).

``plan_hours`` puts the runs' hours together as wall times: one device running them one after
another; ``gpus`` devices under ``torchrun`` splitting each run's steps, at linear scaling (each
keeps the measured images/s at its share of the batch and the gradient all-reduce costs nothing:
a lower bound); and the runs as jobs, one device each (``study run``, SLURM), a fine-tuning
starting when its pre-training has finished: the critical path (as many devices as runs at once)
and the plan spread over ``gpus`` devices (``spread``: each free device takes the next run of the
plan whose pre-training is done). The book's reproduce page renders the same figures for the GPU
profiles while it builds (``book/_ext/plan_hours.py``).
"""

from __future__ import annotations

import heapq
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParamError
from ..train.runinfo import CONFIG, SUMMARY, read_metrics, read_run
from . import plan
from .units import Unit, live_slurm_jobs, units_of


@dataclass(frozen=True)
class Throughput:
    """Training images/s of one device, and where the figure comes from.

    Attributes:
        images_per_s: the step rate (images/s per device).
        device: ``cuda`` or ``cpu``.
        source: where the figure was measured.
        bound: images/s of a real run where the data loader was the limit (None: not measured).
        bound_source: where that was measured.
        card: the device it was measured on, by name (empty: not recorded).
        precision: the forward pass's precision it was measured at (``bf16``, ``fp32``; empty: not
            recorded).
    """

    images_per_s: float
    device: str
    source: str
    bound: float | None = None
    bound_source: str = ""
    card: str = ""
    precision: str = ""


_PAPER_VIT_TINY = ("vit_tiny_patch16_224", 224, 16, None, None, None)
_MINI_VIT = ("vit_tiny_patch16_224", 32, 8, 4, 96, 3)
_LOADER = (
    "a real --profile paper run with 15 loader workers on the H200 machine, 3,300-3,900 "
    "images/s (the CPU augmentation, 239 images/s per worker, is the limit)"
)
#: Measured throughput by ``(model shape, compiled)``, each figure with where it was measured.
MEASURED = {
    (_PAPER_VIT_TINY, False): Throughput(
        8448,
        "cuda",
        "benchmarks/bench_train.py at the paper recipe: the ViT-Tiny/16 step at 224 px, batch 256, "
        "bf16 autocast, eager, on one NVIDIA H200",
        3300,
        _LOADER,
        card="NVIDIA H200",
        precision="bf16",
    ),
    (_PAPER_VIT_TINY, True): Throughput(
        12218,
        "cuda",
        "benchmarks/bench_train.py: the same step compiled (torch.compile) on the H200",
        3300,
        _LOADER,
        card="NVIDIA H200",
        precision="bf16",
    ),
    (_MINI_VIT, False): Throughput(
        718,
        "cpu",
        "benchmarks/bench_train.py: our training step, mini model, one CPU thread",
        precision="fp32",
    ),
}


def model_shape(cfg) -> tuple:
    """What sets a run's cost per image: model, image size, patch, depth, width, heads."""
    return (cfg.model, cfg.img_size, cfg.patch_size, cfg.depth, cfg.embed_dim, cfg.num_heads)


def measured_in(root) -> dict[tuple, list[tuple[str, float, str]]]:
    """Finished runs under ``root`` by model shape: ``[(phase, images/s per process, device), ...]``."""
    out: dict[tuple, list] = {}
    for summary in sorted(Path(root).glob(f"*/*/{SUMMARY}")):
        if not summary.with_name(CONFIG).is_file():
            continue
        info = read_run(summary.parent)
        s, cfg = info.summary, info.config
        rate = s.get("images_per_s") or 0.0
        if rate <= 0:
            continue
        device = str(s.get("device", "cpu")).split(":")[0]
        out.setdefault(model_shape(cfg), []).append(
            (cfg.phase, rate / max(s.get("world_size", 1), 1), device)
        )
    return out


def throughput(spec: plan.RunSpec, measured: dict, root) -> Throughput | None:
    """The images/s figure for a run (see the module docstring), or None where nothing was measured."""
    runs = measured.get(model_shape(spec.cfg), [])
    same = [r for r in runs if r[0] == spec.phase] or runs
    if same:
        device = statistics.mode(r[2] for r in same)
        rates = [r[1] for r in same if r[2] == device]
        where = (
            f"{len(rates)} finished {'run' if len(rates) == 1 else 'runs'} of this model in {root} ({device})"
        )
        return Throughput(statistics.median(rates), device, f"measured: median of {where}")
    return MEASURED.get((model_shape(spec.cfg), bool(spec.cfg.compile)))


@dataclass
class Line:
    """One unit of the plan as ``study plan`` shows it."""

    index: int
    unit: Unit
    state: str
    needs: tuple[int, ...]


def _state(unit: Unit, live: dict) -> str:
    if unit.finished:
        return "done"
    if unit.key in live:
        job, state = live[unit.key]
        return f"{'running' if state == 'RUNNING' else 'queued'} (job {job})"
    records = read_metrics(unit.key) if unit.is_run else []
    if records:
        return f"started (step {records[-1]['step']} of {unit.spec.cfg.steps})"
    return "missing"


def plan_lines(specs, root) -> list[Line]:
    units = units_of(list(specs), root)
    index = {u.key: k for k, u in enumerate(units, 1)}
    live = live_slurm_jobs(units)
    return [Line(index[u.key], u, _state(u, live), tuple(index[n] for n in u.needs)) for u in units]


def duration(seconds: float) -> str:
    """``seconds`` as ``study plan`` writes them: hours from 6 minutes on (``1.2 h``), else minutes
    or seconds (``3.5 min``, ``12.0 s``)."""
    if seconds >= 360:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def estimate(specs, root) -> list[str]:
    """Lines: the hours of the plan's missing runs, grouped by the figure each estimate uses."""
    measured = measured_in(root)
    groups: dict[tuple, list] = {}
    for s in specs:
        if s.finished:
            continue
        t = throughput(s, measured, root)
        key = (t.source, t.device, t.images_per_s, t.bound, t.bound_source) if t else ("", "", 0, None, "")
        groups.setdefault(key, []).append(s)
    if not groups:
        return ["nothing to run: every run has finished"]
    lines = []
    for (source, device, rate, bound, bound_source), runs in groups.items():
        images = sum(r.images for r in runs)
        what = f"{len(runs)} {'run' if len(runs) == 1 else 'runs'} ({images:,} training images)"
        if not source:
            shapes = sorted({f"{r.cfg.model} at {r.cfg.img_size} px" for r in runs})
            lines.append(f"{what}: no measured figure for {', '.join(shapes)}; run one and plan again")
            continue
        unit = "GPU" if device == "cuda" else "CPU"
        text = f"{what}: {duration(images / rate)} {unit} time at {rate:,.0f} images/s [{source}]"
        if bound:
            text += f"; up to {duration(images / bound)} where the loader limits at {bound:,.0f} images/s [{bound_source}]"
        lines.append(text)
    return lines


@dataclass(frozen=True)
class RunHours:
    """The projected training time of one run (training steps only).

    Attributes:
        spec: the run.
        throughput: the figure it is projected at (``throughput``); None where nothing was measured.
        seconds: its training images at that figure's step rate (None without a figure).
        loader_seconds: the same where the loader limits the runs it feeds (``Throughput.bound``):
            a fine-tuning, or a pre-training whose pipeline is the loader on the figure's device;
            ``seconds`` for the other runs and where no bound was measured.
    """

    spec: plan.RunSpec
    throughput: Throughput | None
    seconds: float | None
    loader_seconds: float | None

    @property
    def unit(self) -> str:
        """``GPU`` or ``CPU``: the device of the figure (empty without one)."""
        if self.throughput is None:
            return ""
        return "GPU" if self.throughput.device == "cuda" else "CPU"


def run_hours(specs, root) -> list[RunHours]:
    """The projected hours of each missing run of ``specs``, in plan order (see the module docstring)."""
    measured = measured_in(root)
    out = []
    for s in specs:
        if s.finished:
            continue
        t = throughput(s, measured, root)
        if t is None:
            out.append(RunHours(s, None, None, None))
            continue
        seconds = s.images / t.images_per_s
        fed = s.cfg.pipeline_on(t.device) == "loader"
        limit = s.images / min(t.bound, t.images_per_s) if fed and t.bound else seconds
        out.append(RunHours(s, t, seconds, limit))
    return out


def critical_path(runs: list[RunHours]) -> float:
    """Seconds of the longest chain of ``runs`` (a pre-training, then the fine-tunings that start
    from it) at their step rates: the wall time of the runs as jobs with as many devices as runs at
    once. Runs not in ``runs`` (finished) count as done."""
    length = _lengths(runs)
    done: dict[Path, float] = {}
    for r in runs:  # plan order: a pre-training before the fine-tunings that need it
        done[r.spec.path] = done.get(r.spec.needs, 0.0) + length[r.spec.path]
    return max(done.values(), default=0.0)


def spread(runs: list[RunHours], gpus: int) -> float:
    """Seconds until ``runs`` are done at their step rates as jobs on ``gpus`` devices, one run
    each: whenever a device is free it takes the first run of the plan whose pre-training has
    finished, and waits only while there is none (list scheduling; no queueing or set-up time).
    Runs not in ``runs`` (finished) count as done."""
    if gpus < 1:
        raise ParamError("gpus", f"must be at least 1, got {gpus}")
    length = _lengths(runs)
    planned = set(length)
    ends: dict[Path, float] = {}
    waiting = list(runs)  # plan order: a pre-training before the fine-tunings that need it
    free = [0.0] * gpus  # when each device is next free (a heap)
    while waiting:
        now = heapq.heappop(free)
        # when each waiting run could start: its pre-training's end (None: not started yet)
        ready = []
        for r in waiting:
            needs = r.spec.needs
            at = 0.0 if needs is None or needs not in planned else ends.get(needs)
            if at is not None:
                ready.append((at, r))
        start = max(now, min(at for at, _ in ready))
        run = next(r for at, r in ready if at <= start)
        waiting.remove(run)
        ends[run.spec.path] = start + length[run.spec.path]
        heapq.heappush(free, ends[run.spec.path])
    return max(ends.values(), default=0.0)


def _lengths(runs: list[RunHours]) -> dict[Path, float]:
    """Each run's seconds by its folder (every run must have a figure)."""
    missing = [r.spec.label for r in runs if r.seconds is None]
    if missing:
        raise ValueError(f"no measured figure for {missing[0]}")
    return {r.spec.path: r.seconds for r in runs}


@dataclass(frozen=True)
class PlanHours:
    """The wall times of a plan's missing runs (training steps only; see the module docstring).

    Attributes:
        runs: each missing run's ``RunHours``, in plan order.
        gpus: the device count of ``torchrun`` and ``cluster``.
        one_gpu: seconds on one device, one run after another (None: a run has no figure).
        one_gpu_loader: the same where the loader limits the runs it feeds.
        torchrun: seconds on ``gpus`` devices, each run's steps split across them (linear scaling).
        critical_path: seconds as jobs, one device each, as many at once as the plan has runs.
        cluster: seconds as jobs spread over ``gpus`` devices (``spread``).
    """

    runs: tuple[RunHours, ...]
    gpus: int
    one_gpu: float | None
    one_gpu_loader: float | None
    torchrun: float | None
    critical_path: float | None
    cluster: float | None

    @property
    def unmeasured(self) -> list[str]:
        """The model shapes of the runs without a figure (``model at N px``), sorted."""
        return sorted(
            {f"{r.spec.cfg.model} at {r.spec.cfg.img_size} px" for r in self.runs if r.seconds is None}
        )

    @property
    def sources(self) -> list[Throughput]:
        """The figures the runs are projected at, each once, in order of first use."""
        seen: dict[tuple, Throughput] = {}
        for r in self.runs:
            if r.throughput is not None:
                t = r.throughput
                seen.setdefault((t.source, t.images_per_s, t.bound, t.bound_source), t)
        return list(seen.values())


def plan_hours(specs, root, gpus: int = 8) -> PlanHours:
    """The wall times of the missing runs of ``specs`` on one device, on ``gpus`` under torchrun,
    and as jobs (critical path, spread over ``gpus``); None where a run has no measured figure."""
    if gpus < 1:
        raise ParamError("gpus", f"must be at least 1, got {gpus}")
    runs = run_hours(specs, root)
    if any(r.seconds is None for r in runs):
        return PlanHours(tuple(runs), gpus, None, None, None, None, None)
    one = sum(r.seconds for r in runs)
    return PlanHours(
        tuple(runs),
        gpus,
        one,
        sum(r.loader_seconds for r in runs),
        one / gpus,
        critical_path(runs),
        spread(runs, gpus),
    )


def profile_hours(profile: str, gpus: int = 8) -> PlanHours:
    """``plan_hours`` of a profile's whole plan (its seeds), as ``study plan`` gives it for a run
    root where nothing has run: every run at the figures of ``MEASURED``."""
    with tempfile.TemporaryDirectory() as root:
        return plan_hours(plan.plan(profile, root=root), root, gpus)


def row_hours(specs, root) -> list[str]:
    """Lines: the hours of each study row's missing runs (pre-training and fine-tuning, every seed),
    at the figure ``estimate`` uses for each run, and where the loader limits them if that is more;
    a phase whose runs have no measured figure says so."""
    rows: dict[str, dict[str, list[RunHours]]] = {}
    for r in run_hours(specs, root):
        rows.setdefault(r.spec.row, {}).setdefault(r.spec.phase, []).append(r)
    lines = []
    for row, phases in rows.items():
        parts, unknown = [], False
        for phase in ("pretrain", "finetune"):
            runs = phases.get(phase, [])
            if not runs:
                continue
            known = [r for r in runs if r.seconds is not None]
            unknown = unknown or 0 < len(known) < len(runs)
            if not known:
                parts.append(f"{phase} {len(runs)} x: no measured figure")
                continue
            seconds = sum(r.seconds for r in known)
            limited = sum(r.loader_seconds for r in known)
            units = "/".join(sorted({r.unit for r in known}))
            text = f"{phase} {len(runs)} x: {duration(seconds)} {units}"
            if limited > seconds:
                text += f" ({duration(limited)} where the loader limits)"
            parts.append(text)
        lines.append(
            f"{row}: {'; '.join(parts)}" + ("; some runs have no measured figure" if unknown else "")
        )
    return lines


def wall_lines(hours: PlanHours) -> list[str]:
    """Lines: ``plan_hours`` in words (see the module docstring for what each figure assumes)."""
    if not hours.runs:
        return []
    if hours.one_gpu is None:
        return [f"no wall time: no measured figure for {', '.join(hours.unmeasured)}"]
    unit = "/".join(sorted({r.unit for r in hours.runs}))
    n = hours.gpus
    one = f"one {unit}: {duration(hours.one_gpu)}"
    if hours.one_gpu_loader > hours.one_gpu:
        one += f" ({duration(hours.one_gpu_loader)} where the loader limits the runs it feeds)"
    return [
        one,
        f"{n} {unit}s under torchrun, each run's steps split across them: {duration(hours.torchrun)} "
        "(linear scaling, a lower bound)",
        f"as jobs, one {unit} each: {duration(hours.critical_path)} along the critical path (a "
        f"pre-training, then its fine-tuning), {duration(hours.cluster)} spread over {n} {unit}s",
    ]


def plan_report(specs, root, *, profile: str = "", seeds=None) -> str:
    """The text ``study plan`` prints: one line per unit, the counts, the estimate."""
    lines = plan_lines(specs, root)
    rows = [("#", "unit", "state", "needs", "folder")]
    for ln in lines:
        u = ln.unit
        folder = u.key.relative_to(Path(root)) if u.key.is_relative_to(Path(root)) else u.key
        needs = ",".join(f"#{k}" for k in ln.needs) or "-"
        rows.append((str(ln.index), u.label, ln.state, needs, str(folder)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    runs = [ln for ln in lines if ln.unit.is_run]
    done = sum(ln.state == "done" for ln in runs)
    head = f"study plan: profile {profile}, seeds {list(seeds) if seeds else '-'}, root {root}"
    counts = f"{len(runs)} runs: {done} done, {len(runs) - done} to run"
    data = [ln for ln in lines if not ln.unit.is_run]
    if data:
        counts += f"; {len(data)} data {'job' if len(data) == 1 else 'jobs'} ({sum(ln.state != 'done' for ln in data)} to run)"
    est = ["estimate (training steps only, one device per figure):"] + [
        f"  {t}" for t in estimate(specs, root)
    ]
    per_row = ["per row (missing runs, every seed):"] + [f"  {t}" for t in row_hours(specs, root)]
    wall = ["wall time of the missing runs (training steps only):"] + [
        f"  {t}" for t in wall_lines(plan_hours(specs, root))
    ]
    return "\n".join(
        [head, *table, counts, *est, *(per_row if len(per_row) > 1 else []), *(wall if len(wall) > 1 else [])]
    )
