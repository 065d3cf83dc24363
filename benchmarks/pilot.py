"""The pilot behind a profile: does each pre-training row learn its own task, and at what cost?

    python benchmarks/pilot.py --profile mini                       # the profile as it is
    python benchmarks/pilot.py --profile mini --categories 8 16 --steps 300 600 --rows ofdb fractaldb
    python benchmarks/pilot.py --profile mini --out book/pilot/mini.json   # the table the book shows
    python benchmarks/pilot.py --profile paper-short --steps 500 --no-finetune   # one GPU, minutes

For every (row, categories, steps) it pre-trains one run (seed 0 unless ``--seed``) with the
profile's settings, evaluates the row's own task on held-out renders along the way (the study's
``HeldOutRenders``: fresh patch masks; held-out instances for FractalDB and IFS fluctuation), and
fine-tunes one scratch run on the profile's downstream set (``--no-finetune``: not, e.g. where the
downstream data are not on the machine), so that a user sizing a profile sees what the study's runs
will reach and cost before committing to seeds. It prints a table and, with ``--out``, writes it as
JSON (each row's curve, final own-task top-1 against its bar, CPU and wall seconds, the step rate
in images/s and the pipeline that made the batches), with the profile's settings as they were
(``profile_settings``) beside the ones the command changed. The runs live in a temporary folder and are
removed.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _record  # noqa: E402

from ofdb_study.analysis import pilots  # noqa: E402
from ofdb_study.analysis.claims import learning_bar  # noqa: E402
from ofdb_study.config import ROWS, get_profile  # noqa: E402
from ofdb_study.files import usable_cpus  # noqa: E402
from ofdb_study.study import plan as experiments  # noqa: E402
from ofdb_study.study.runner import machine  # noqa: E402
from ofdb_study.train.runinfo import read_metrics  # noqa: E402


def _curve(run: Path) -> list[tuple[int, float, float | None]]:
    return [(r["step"], round(r["loss"], 4), r.get("top1")) for r in read_metrics(run) if "top1" in r]


def pilot_row(
    profile: str, row: str, categories: int, steps: int, seed: int, root: Path, eval_every: int, **overrides
):
    data, augment = ROWS[row]
    spec = experiments.pretrain_spec(
        profile,
        data,
        augment,
        categories,
        seed,
        root,
        row=row,
        steps=steps,
        eval_every=eval_every,
        **overrides,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    summary = experiments.train_spec(spec)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    bar = learning_bar(row, categories)
    return {
        "row": row,
        "categories": categories,
        "steps": steps,
        "own_top1": summary["top1_last"],
        "bar": bar,
        "learned": summary["top1_last"] >= bar,
        "final_loss": summary.get("final_loss"),
        "cpu_seconds": round(cpu, 1),
        "wall_seconds": round(wall, 1),
        "images_per_s": round(summary.get("images_per_s") or 0.0, 1),
        "pipeline": summary.get("pipeline"),
        "device": summary.get("device"),
        "curve": _curve(spec.path),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini")
    p.add_argument(
        "--rows", nargs="+", default=None, help="study rows (default: the profile's, scratch left out)"
    )
    p.add_argument("--categories", type=int, nargs="+", default=None, help="default: the profile's")
    p.add_argument("--steps", type=int, nargs="+", default=None, help="default: the profile's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=None, help="own-task evaluations (default: steps / 6)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any pre-training setting (YAML value)",
    )
    p.add_argument("--out", default=None, help="write the table as JSON here")
    p.add_argument(
        "--no-finetune", action="store_true", help="skip the scratch fine-tuning (no downstream data here)"
    )
    args = p.parse_args(argv)
    import yaml

    overrides = {k.strip(): yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    prof = get_profile(args.profile)
    rows = [r for r in (args.rows or prof.study.rows) if ROWS[r][0] is not None]
    sizes = args.categories or [prof.study.categories]
    lengths = args.steps or [prof.pretrain.steps]
    root = Path(tempfile.mkdtemp(prefix="ofdb-pilot-"))
    results = []
    try:
        for steps in lengths:
            every = args.eval_every or max(1, steps // 6)
            for n in sizes:
                for row in rows:
                    r = pilot_row(args.profile, row, n, steps, args.seed, root, every, **overrides)
                    results.append(r)
                    print(
                        f"{row:18s} C{n:<4d} {steps:5d} steps: own task {r['own_top1']:5.1f} % "
                        f"(bar {r['bar']:.1f}, {'learned' if r['learned'] else 'NOT learned'}), "
                        f"loss {r['final_loss']:.3f}, {r['cpu_seconds']:.0f} s CPU, {r['wall_seconds']:.0f} s wall, "
                        f"{r['images_per_s']:,.0f} images/s ({r['pipeline']} on {r['device']})",
                        flush=True,
                    )
        finetune = None
        if not args.no_finetune:
            scratch = experiments.finetune_spec(args.profile, "scratch", args.seed, root)
            cpu, wall = time.process_time(), time.perf_counter()
            ft = experiments.train_spec(scratch)
            ft_cpu, ft_wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"fine-tuning (scratch): top-1 {ft['top1_last']:.1f} %, {ft_cpu:.0f} s CPU, {ft_wall:.0f} s wall",
                flush=True,
            )
            finetune = {
                "top1": ft["top1_last"],
                "cpu_seconds": round(ft_cpu, 1),
                "wall_seconds": round(ft_wall, 1),
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    doc = {
        "profile": args.profile,
        "seed": args.seed,
        "machine": machine(),
        "cpus": usable_cpus(),
        "python": platform.python_version(),
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": _record.command([__file__, *(argv if argv is not None else sys.argv[1:])]),
        "profile_settings": pilots.profile_settings(prof),
        "overrides": overrides,
        "pretraining": results,
        "finetune": finetune,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
