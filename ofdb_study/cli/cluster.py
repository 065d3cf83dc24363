"""``study plan`` and ``study run``: the study's runs listed, then run as jobs (SLURM or local).

``python -m ofdb_study study plan --profile P`` lists every unit of the plan, which are done and
the hours the rest will take; ``python -m ofdb_study study run --profile P --executor slurm|local``
runs what is missing as jobs and, with ``--book``, then executes the notebooks and builds the
book. ``study --profile P`` with neither word keeps running everything in the notebooks' kernel.
Registering imports nothing heavy: submitit and the plan load inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ParamError

ACTIONS = ("plan", "run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``plan`` / ``run`` word and the executor options, on the ``study`` parser."""
    p.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        help="plan: list the runs, which are done, the hours left; run: run the missing ones as "
        "jobs (--executor); neither: run the notebooks, training in their kernel",
    )
    g = p.add_argument_group("study run (jobs through submitit)")
    g.add_argument("--executor", choices=("local", "slurm"), help="where the jobs run (study run)")
    g.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    g.add_argument(
        "--gpus-per-run",
        type=int,
        metavar="N",
        help="GPUs of one run; N > 1: a DDP job of N processes keeping the planned global batch; "
        "0: CPU jobs (default 1 on SLURM; local: 1 where a GPU is visible, else 0)",
    )
    g.add_argument(
        "--cpus-per-gpu",
        type=int,
        metavar="N",
        help="CPUs per process (per job with --gpus-per-run 0); default: the runs' loader workers + 1",
    )
    g.add_argument(
        "--nodes-per-run", type=int, default=1, metavar="M", help="nodes of one run (SLURM; default 1)"
    )
    g.add_argument(
        "--time", type=int, default=24 * 60, metavar="MIN", help="time limit of one job (default 1440)"
    )
    g.add_argument("--max-parallel", type=int, metavar="K", help="most jobs at once (local CPU default 1)")
    g.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra sbatch option, e.g. --slurm account=abc --slurm qos=high; repeatable",
    )


def dispatch(args: argparse.Namespace, notebooks) -> int | None:
    """Run ``plan`` or ``run`` if the word was given (``notebooks(args)``: the plain ``study``
    command, called after ``run --book``); None when neither was given."""
    if args.action is None:
        if args.executor is not None:
            raise ParamError("executor", "only with 'study run'")
        return None
    check_numbers(args)
    if args.action == "plan":
        return _plan(args)
    return _run(args, notebooks)


#: The executor's numeric flags: ``(flag's parameter, lowest, highest)``; None (unset) is allowed
#: where the flag has no default. The highest are sanity limits: GPUs, CPUs and nodes of one run,
#: a job's minutes (a year), jobs at once.
LIMITS = (
    ("gpus_per_run", 0, 1_024),
    ("cpus_per_gpu", 1, 1_024),
    ("nodes_per_run", 1, 10_000),
    ("time", 1, 525_600),
    ("max_parallel", 1, 100_000),
)


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse an executor flag outside its range (``LIMITS``), for ``plan`` as for ``run``."""
    for name, lo, hi in LIMITS:
        value = getattr(args, name, None)
        if value is not None and not lo <= value <= hi:
            flag = "--" + name.replace("_", "-")
            raise ParamError(name, f"{flag} must be an integer >= {lo} and at most {hi:,}, got {value}")


def _specs(args: argparse.Namespace, root):
    from ..study.runner import plan_of, resolve_parameters

    if Path(root).exists() and not Path(root).is_dir():
        raise ParamError("root", f"{root} is not a folder of runs")
    downstream = getattr(args, "downstream_root", None)
    params = resolve_parameters(args.profile, args.seeds, args.data_root, str(root), downstream)
    return plan_of(params), params["seeds"]


def _plan(args: argparse.Namespace) -> int:
    from ..study.plan_report import plan_report

    specs, seeds = _specs(args, args.run_root)
    print(plan_report(specs, args.run_root, profile=args.profile, seeds=seeds))
    return 0


def _slurm_pairs(items: list[str]) -> tuple:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not key.strip():
            raise ParamError("slurm", f"expected KEY=VALUE (an sbatch option), got {item!r}")
        pairs.append((key.strip(), value if sep else True))
    return tuple(pairs)


def options_from(args: argparse.Namespace, specs):
    """``ClusterOptions`` from the command line, with the defaults that depend on the plan."""
    from ..study.cluster import ClusterOptions, visible_gpus

    gpus = args.gpus_per_run
    if gpus is None:
        gpus = 1 if args.executor == "slurm" or visible_gpus() else 0
    cpus = args.cpus_per_gpu or max([s.cfg.num_workers for s in specs] + [0]) + 1
    return ClusterOptions(
        gpus_per_run=gpus,
        cpus_per_gpu=cpus,
        time_min=args.time,
        partition=args.partition,
        nodes_per_run=args.nodes_per_run,
        max_parallel=args.max_parallel,
        slurm=_slurm_pairs(args.slurm),
        poll_s=5.0 if args.executor == "slurm" else 1.0,
    )


def _run(args: argparse.Namespace, notebooks) -> int:
    if args.executor is None:
        raise ParamError("executor", "study run needs --executor local or --executor slurm")
    from ..study.cluster import ProgressLine, execute
    from ..study.runner import check_downstream

    root = Path(args.run_root).resolve()
    specs, _ = _specs(args, root)
    options = options_from(args, specs)
    check_downstream(specs)  # a --downstream-root without the data is refused before any job
    line = ProgressLine()
    todo = sum(not s.finished for s in specs)
    line.log(
        f"[study run] {args.profile}: {len(specs)} runs, {len(specs) - todo} finished, {todo} to run on {args.executor}"
    )
    try:
        report = execute(specs, root, args.executor, options, log=line.log, status=line)
    except KeyboardInterrupt:
        line.close()
        where = "stay in the SLURM queue" if args.executor == "slurm" else "were stopped"
        print(
            f"interrupted: the submitted jobs {where}; run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    line.close()
    if not report.ok:
        print(f"error: {len(report.failed)} job(s) failed or could not run:", file=sys.stderr)
        for f in report.failed:
            print(f"  {f.line()}", file=sys.stderr)
        print("finished runs are kept; run the same command again to retry the rest", file=sys.stderr)
        return 1
    print(f"[study run] every run of the plan has finished ({len(report.done)} jobs now, under {root})")
    if args.book:
        return notebooks(args)
    print(
        f"[study run] next: python -m ofdb_study study --profile {args.profile} --run-root {args.run_root} --book"
    )
    return 0
