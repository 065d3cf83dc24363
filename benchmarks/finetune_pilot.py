"""The fine-tuning length pilot: at which length has the downstream endpoint plateaued?

    python benchmarks/finetune_pilot.py --profile mini --seeds 100 101 --steps 200 400 800 1600 \\
        --out book/pilot/mini-finetune.json

For every pilot seed it pre-trains OFDB once (the profile's pre-training, its study categories) and
fine-tunes scratch and OFDB at each length (each a full schedule: warmup the profile's fraction of
the steps, cosine to the end), then records the endpoint (top-1 on the whole test set after the
last step) and the final training loss of every run. The record keeps the profile's settings of
both phases as they were (``profile_settings``) and the ones the command changed, so that the book
can say what each record ran differently from the profile as it is now; and the pre-registration
in force when it ran (``registered_design``, None when the profile's design was not registered), so
that the book can tell the pilots that chose a design from those measured after it was fixed.
Scratch's endpoint and loss flattening out between the study's length and the next is the plateau
the study fine-tunes to. The pilot seeds are kept apart from the study's seeds. Runs go to a
temporary folder (removed); two run at once.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _record  # noqa: E402

from ofdb_study.analysis import pilots, prereg  # noqa: E402
from ofdb_study.config import get_profile  # noqa: E402
from ofdb_study.files import usable_cpus  # noqa: E402
from ofdb_study.study import plan  # noqa: E402
from ofdb_study.study.runner import machine  # noqa: E402


def _finetune(job: tuple) -> dict:
    profile, arm, init, seed, steps, warmup, root, overrides = job
    spec = plan.finetune_spec(profile, init, seed, root, steps=steps, warmup_steps=warmup, **overrides)
    wall = time.perf_counter()
    summary = plan.train_spec(spec)
    return {
        "arm": arm,
        "seed": seed,
        "steps": steps,
        "top1": summary["top1_last"],
        "final_loss": round(summary["final_loss"], 4),
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini")
    p.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    p.add_argument("--steps", type=int, nargs="+", default=[200, 400, 800, 1600])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a fine-tuning setting (YAML)"
    )
    p.add_argument(
        "--pretrain-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pre-training setting (YAML), e.g. a model shape given to both phases",
    )
    p.add_argument("--out", default=None, help="write the table as JSON here")
    args = p.parse_args(argv)
    import yaml

    def parse(items: list[str]) -> dict:
        return {k.strip(): yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}

    overrides, pre_overrides = parse(args.set), parse(args.pretrain_set)
    prof = get_profile(args.profile)
    study_seeds = set(prof.study.seeds)
    if study_seeds & set(args.seeds):
        p.error(f"--seeds: pilot seeds must differ from the study's {sorted(study_seeds)}")
    fraction = prof.finetune.warmup_steps / prof.finetune.steps
    root = Path(tempfile.mkdtemp(prefix="ofdb-ft-pilot-"))
    started = time.perf_counter()
    try:
        pre = [
            plan.pretrain_spec(args.profile, "ofdb", "default", None, s, root, **pre_overrides)
            for s in args.seeds
        ]
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(plan.train_spec, pre))
            jobs = [
                (args.profile, arm, init, spec.seed, n, max(1, round(fraction * n)), root, overrides)
                for n in sorted(args.steps, reverse=True)
                for spec in pre
                for arm, init in (("scratch", "scratch"), ("ofdb", spec))
            ]
            results = []
            for r in pool.map(_finetune, jobs):
                results.append(r)
                print(
                    f"{r['arm']:8s} seed {r['seed']:3d} {r['steps']:5d} steps: top-1 {r['top1']:5.2f} %, "
                    f"final loss {r['final_loss']:.3f}, {r['wall_seconds']:.0f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    doc = {
        "profile": args.profile,
        "seeds": args.seeds,
        "machine": machine(),
        "cpus": usable_cpus(),
        "python": platform.python_version(),
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": _record.command([__file__, *(argv if argv is not None else sys.argv[1:])]),
        "profile_settings": pilots.profile_settings(prof),
        "registered_design": prereg.registered_design(args.profile),
        "overrides": overrides,
        "pretrain_overrides": pre_overrides,
        "warmup_fraction": fraction,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "finetune": sorted(results, key=lambda r: (r["arm"], r["seed"], r["steps"])),
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
