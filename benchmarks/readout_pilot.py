"""The readout study's pilot: the design's arms on pilot seeds, read as the study reads them.

Trains (or reuses) every pre-training of a readout profile's plan at its main category count on
the pilot seeds, and FractalDB at several lengths on the first seed; reads every arm and the pixel
baselines (``study.readouts``); and writes one JSON record for the book (``book/pilot/``): each
arm's own-task top-1, every readout per arm and seed, the gate on every readout, and each claim's
paired differences (mean and sd) on every readout, which the pre-registration takes its planning
numbers from. Run folders given with ``--also`` (earlier variants of the design) are recorded with
their own-task top-1 and the settings they differ in.

    python benchmarks/readout_pilot.py --profile mini --seeds 110 111 --root runs-pilot \\
        --fractaldb-steps 400 1600 --out book/pilot/readout-mini.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import command, machine  # noqa: E402

from ofdb_study.analysis import claims, pilots, prereg, readout, runs  # noqa: E402
from ofdb_study.config import get_profile  # noqa: E402
from ofdb_study.files import atomic_write_text  # noqa: E402
from ofdb_study.study import plan, readouts  # noqa: E402


def _differs(cfg, base) -> dict:
    a, b = cfg.result_dict(), base.result_dict()
    skip = {"seed", "steps", "categories", "data", "profile"}
    return {k: a[k] for k in a if k not in skip and a.get(k) != b.get(k)}


def claim_stats(values, readout_name: str) -> dict:
    """Each readout claim's per-seed paired differences: mean, sd, pairs."""
    wide = values.pivot_table(index="seed", columns="arm", values="top1")
    out = {}
    for c in claims.READOUT_CLAIMS:
        if c.test == "trend" or not set(c.rows) <= set(wide.columns):
            continue
        d = wide[c.a] - wide[c.b]
        if c.test == "interaction":
            d = d - (wide[c.c] - wide[c.d])
        d = d.dropna()
        out[c.key] = {
            "mean": round(float(d.mean()), 3),
            "sd": round(float(d.std(ddof=1)), 3) if len(d) > 1 else None,
            "pairs": int(len(d)),
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--seeds", type=int, nargs="+", default=[110, 111])
    ap.add_argument("--root", default="runs-pilot")
    ap.add_argument("--fractaldb-steps", type=int, nargs="*", default=[])
    ap.add_argument(
        "--also", nargs="*", default=[], metavar="RUN", help="earlier pre-training runs to record"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    prof = get_profile(args.profile)
    study = prof.study
    if study.endpoint != "readout":
        raise SystemExit(f"error: profile: {args.profile} is not a readout study")
    specs = [
        s for s in plan.plan(args.profile, args.seeds, args.root) if s.categories in (study.categories, 10)
    ]
    specs = [s for s in specs if s.row in study.rows]
    extra = [
        plan.pretrain_spec(
            args.profile, "fractaldb", "default", seed=args.seeds[0], root=args.root, row="fractaldb", steps=n
        )
        for n in args.fractaldb_steps
    ]
    plan.run_plan(specs + extra, workers=args.workers)
    readouts.compute(specs, args.profile, args.root, workers=args.workers)
    table = readouts.table(specs, args.profile, args.root)
    pre = runs.pretraining(specs + extra)
    names = sorted(table.loc[table["readout"] != "pixels", "readout"].unique())
    per_readout = {}
    for name in names:
        values = readout.at(table, name, study.categories)
        g = readout.gate(values)
        per_readout[name] = {
            "means": {a: round(float(v), 3) for a, v in values.groupby("arm")["top1"].mean().items()},
            "gate": [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in g.to_dict("records")
            ],
            "claims": claim_stats(values, name),
            "draw_sd": round(readout.draws_sd(table, name), 3),
        }
    own = [
        {
            "row": r.row,
            "seed": int(r.seed),
            "categories": int(r.categories),
            "steps": None,
            "own_top1": None if r.own_top1 is None or math.isnan(r.own_top1) else round(float(r.own_top1), 2),
            "bar": round(float(r.bar), 2),
            "final_loss": round(float(r.final_loss), 3),
            "minutes": round(r.wall_seconds / 60, 2),
        }
        for r in pre.itertuples()
    ]
    for row, s in zip(own, [s for s in specs + extra if s.finished]):
        row["steps"] = s.cfg.steps
    also = []
    for path in args.also:
        from ofdb_study.train.runinfo import read_config

        cfg = read_config(Path(path) / "config.yaml")
        summary = json.loads((Path(path) / "summary.json").read_text())
        also.append(
            {
                "run": Path(path).name,
                "seed": cfg.seed,
                "categories": cfg.categories,
                "steps": cfg.steps,
                "own_top1": summary.get("top1_last"),
                "differs_from_profile": {k: str(v) for k, v in _differs(cfg, prof.pretrain).items()},
            }
        )
    primary = study.primary_readout
    best = max(
        names,
        key=lambda n: next((r["mean"] or -1e9) for r in per_readout[n]["gate"] if r["arm"] == "supervised"),
    )
    doc = {
        "profile": args.profile,
        "measured": datetime.date.today().isoformat(),
        "machine": f"{machine()['cpu']}, {machine()['usable_cores']} core(s)",
        "command": command(sys.argv),
        "seeds": args.seeds,
        "profile_settings": pilots.profile_settings(prof),
        "registered_design": prereg.registered_design(args.profile),
        "own_task": own,
        "readouts": per_readout,
        "also": also,
        "primary_readout": primary,
        "best_readout_for_the_control": best,
        "summary": (
            f"on `{best}` the positive control is "
            f"{next(r['mean'] for r in per_readout[best]['gate'] if r['arm'] == 'supervised'):+.2f} points over the "
            f"best free alternative; OFDB with the paper's augmentation "
            f"{next(r['mean'] for r in per_readout[best]['gate'] if r['arm'] == 'ofdb+aug'):+.2f}; own-task top-1: "
            + ", ".join(
                f"{row} {np.mean([o['own_top1'] for o in own if o['row'] == row and o['own_top1'] is not None and o['steps'] == st]):.1f} % "
                f"at {st} steps"
                for row, st in sorted({(o["row"], o["steps"]) for o in own if o["own_top1"] is not None})
            )
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("summary", "best_readout_for_the_control")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
