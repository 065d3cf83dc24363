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

The estimate counts training steps only (no set-up, evaluation or queueing), on the device the
figure was measured on: GPU-hours for a GPU figure, CPU-hours for a CPU one. Where a loader-bound
figure was measured too, the report gives that bound beside it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

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
    """

    images_per_s: float
    device: str
    source: str
    bound: float | None = None
    bound_source: str = ""


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
        "benchmarks/bench_train.py: the paper ViT-Tiny step, batch 256, bf16, one NVIDIA H200, eager "
        "(benchmarks/bench_train.py --paper-gpu)",
        3300,
        _LOADER,
    ),
    (_PAPER_VIT_TINY, True): Throughput(
        12218,
        "cuda",
        "benchmarks/bench_train.py: the same step compiled (torch.compile) on the H200",
        3300,
        _LOADER,
    ),
    (_MINI_VIT, False): Throughput(
        718, "cpu", "benchmarks/bench_train.py: our training step, mini model, one CPU thread"
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


def _hours(seconds: float) -> str:
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
        text = f"{what}: {_hours(images / rate)} {unit} time at {rate:,.0f} images/s [{source}]"
        if bound:
            text += f"; up to {_hours(images / bound)} where the loader limits at {bound:,.0f} images/s [{bound_source}]"
        lines.append(text)
    return lines


def row_hours(specs, root) -> list[str]:
    """Lines: the hours of each study row's missing runs (pre-training and fine-tuning, every seed),
    at the figure ``estimate`` uses for each run; a row with a run lacking a figure says so."""
    measured = measured_in(root)
    rows: dict[str, dict[str, list]] = {}
    for s in specs:
        if not s.finished:
            rows.setdefault(s.row, {}).setdefault(s.phase, []).append(s)
    lines = []
    for row, phases in rows.items():
        parts, unknown = [], False
        for phase in ("pretrain", "finetune"):
            runs = phases.get(phase, [])
            if not runs:
                continue
            seconds, units = 0.0, set()
            for r in runs:
                t = throughput(r, measured, root)
                if t is None:
                    unknown = True
                    continue
                seconds += r.images / t.images_per_s
                units.add("GPU" if t.device == "cuda" else "CPU")
            parts.append(f"{phase} {len(runs)} x: {_hours(seconds)} {'/'.join(sorted(units)) or ''}".rstrip())
        lines.append(
            f"{row}: {'; '.join(parts)}" + ("; some runs have no measured figure" if unknown else "")
        )
    return lines


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
    return "\n".join([head, *table, counts, *est, *(per_row if len(per_row) > 1 else [])])
