"""Read-only readers of finished runs: own-task and downstream tables, learning curves.

``pretraining``, ``downstream``, ``instances_vs_augmentation``, ``category_scaling`` and
``onepfrac_sweep`` read the finished runs of a plan (``study.plan``) into tables; a run that is not
finished is left out and named in ``df.attrs["missing"]``. Nothing here trains: the study's runner
(``study.runner.train_plan``, or ``study.plan.run_plan``) trains first.

Every run is verified before it is read (``train.runinfo.verify_run``, through ``RunSpec.finished``
and ``RunSpec.summary``): a folder whose config is not the planned one or does not digest to the key
in its name, whose summary or metrics are truncated or out of range, or a fine-tuning made on other
data than the data there now, is refused with a ParamError naming the file, never read as the
planned run. Baseline and probe files have their numbers checked (``runinfo.check_numbers``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import ParamError
from ..study.baselines import probe_path, raw_pixels_path
from ..study.plan import RunSpec, _tag, augmentation_specs, onepfrac_specs, scaling_specs
from ..train.runinfo import METRICS, check_numbers, read_metrics, verify_run


def _read(specs: list[RunSpec]) -> tuple[list[RunSpec], list[str]]:
    """``(finished runs, labels of the others)``; a finished run is verified first
    (``RunSpec.finished``: ParamError for one that is not the planned run or is damaged)."""
    done = {s.path for s in specs if s.finished}
    return [s for s in specs if s.path in done], [s.label for s in specs if s.path not in done]


def _json(path: Path) -> dict:
    """A baseline's or probe's JSON, its numbers checked (``runinfo.check_numbers``)."""
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParamError("run", f"{path} is not valid JSON (truncated or corrupt)") from None
    return check_numbers(doc, str(path))


PRETRAIN_COLUMNS = (
    "row",
    "pretrain",
    "augment",
    "categories",
    "seed",
    "own_top1",
    "bar",
    "learned",
    "final_loss",
    "wall_seconds",
    "eval_seconds",
    "images_per_s",
    "run",
)


def pretraining(specs: list[RunSpec]):
    """Own-task results of the pre-training runs among ``specs``.

    Returns:
        DataFrame with ``PRETRAIN_COLUMNS``: own_top1 is the top-1 in percent on the run's held-out
        renders (``pretrain_data.HeldOutRenders``), bar the row's learning bar
        (``claims.learning_bar``). ``df.attrs["missing"]`` names the runs that are not finished.
    """
    import pandas as pd

    from .claims import learning_bar

    done, missing = _read([s for s in specs if s.phase == "pretrain"])
    out = []
    for s in done:
        sm = s.summary()
        bar = learning_bar(s.row, s.categories)
        own = sm.get("top1_last")
        out.append(
            (
                s.row,
                _tag(s.cfg.data) if not s.cfg.data.startswith("multiview:") else "ofdb3d",
                s.cfg.augment,
                s.categories,
                s.seed,
                own,
                bar,
                own is not None and own >= bar,
                sm.get("final_loss"),
                sm["wall_seconds"],
                sm.get("eval_seconds", 0.0),
                sm.get("images_per_s"),
                str(s.path),
            )
        )
    df = pd.DataFrame(out, columns=list(PRETRAIN_COLUMNS))
    df.attrs["missing"] = missing
    return df


DOWNSTREAM_COLUMNS = (
    "row",
    "pretrain",
    "augment",
    "categories",
    "delta",
    "seed",
    "top1_last",
    "top1_best",
    "pretrain_run",
    "finetune_run",
    "pretrain_seconds",
    "finetune_seconds",
    "eval_seconds",
    "final_loss",
    "probe_top1",
)


def _probe(spec: RunSpec) -> float:
    """The linear probe of a fine-tuning's starting point (``study.baselines``), NaN if not made."""
    path = probe_path(spec.cfg, spec.path.parent.parent)
    if not path.is_file():
        return math.nan
    doc = _json(path)
    if not isinstance(doc.get("probe_top1"), (int, float)):
        raise ParamError("run", f"{path} holds no probe_top1")
    return doc["probe_top1"]


def downstream(specs: list[RunSpec]):
    """Fine-tuning results among ``specs`` (and the pre-trainings they start from): one row per run.

    Returns:
        DataFrame with ``DOWNSTREAM_COLUMNS``; top1_last is the endpoint (the last step, on the
        whole test set), top1_best the best of the evaluations (optimistic; shown, not tested),
        final_loss the last logged training loss, probe_top1 the linear probe of the run's starting
        weights on the same training images (NaN where not made). ``df.attrs["missing"]`` names
        the runs that are not finished.
    """
    import pandas as pd

    runs = [s for s in specs if s.phase == "finetune"]
    needed = {s.needs for s in runs if s.needs is not None}
    pre = {s.path: s for s in specs if s.phase == "pretrain" and s.path in needed}
    done, missing = _read(list(pre.values()) + runs)
    finished = {s.path for s in done}
    out = []
    for s in runs:
        if s.path not in finished:
            continue
        fs = s.summary()
        p = pre.get(s.needs)
        pre_seconds = 0.0
        if s.needs is not None and (s.needs / "summary.json").is_file():
            pre_seconds = (p.summary() if p is not None else verify_run(s.needs))["wall_seconds"]
        data = "scratch" if p is None and s.needs is None else (p.cfg.data if p else "?")
        out.append(
            (
                s.row,
                "ofdb3d" if str(data).startswith("multiview:") else data,
                p.cfg.augment if p else None,
                s.categories,
                p.cfg.delta if p is not None and p.cfg.data == "1pfrac" else None,
                s.seed,
                fs["top1_last"],
                fs["top1_best"],
                str(s.needs) if s.needs else None,
                str(s.path),
                pre_seconds,
                fs["wall_seconds"],
                fs.get("eval_seconds", 0.0),
                fs.get("final_loss"),
                _probe(s),
            )
        )
    df = pd.DataFrame(out, columns=list(DOWNSTREAM_COLUMNS))
    df.attrs["missing"] = missing
    return df


def instances_vs_augmentation(
    profile: str,
    seeds: list[int],
    root="runs",
    rows: list[str] | None = None,
    **finetune_overrides,
):
    """FractalDB against OFDB under each Table-1 augmentation against scratch, fine-tuned downstream.

    Returns:
        ``downstream`` of the rows' runs (one row per (row, seed)).
    """
    specs = augmentation_specs(profile, seeds, root, rows, **finetune_overrides)
    return downstream(specs)


def category_scaling(
    profile: str,
    categories: list[int] | None,
    seeds: list[int],
    root="runs",
    **finetune_overrides,
):
    """OFDB-N (default augmentation) for each N of the sweep, fine-tuned downstream.

    Returns:
        ``downstream`` of the sweep's runs (the ``categories`` column holds N).
    """
    specs = scaling_specs(profile, seeds, root, categories, **finetune_overrides)
    return downstream(specs)


def onepfrac_sweep(
    profile: str,
    deltas: list[float],
    seeds: list[int],
    root="runs",
    **finetune_overrides,
):
    """1p-frac at each perturbation strength delta, fine-tuned downstream.

    The published sweep (``results.onepfrac_table``) is CIFAR-100 after ViT-Tiny pre-training at
    ``paper``; ``StudyPlan.onepfrac_deltas`` holds each profile's deltas.

    Returns:
        ``downstream`` of the sweep's runs (the ``delta`` column holds delta).
    """
    specs = onepfrac_specs(profile, deltas, seeds, root, **finetune_overrides)
    return downstream(specs)


def learning_curves(run_dirs):
    """metrics.jsonl of runs as one table: columns run, step, loss, lr, top1 (NaN between evals)."""
    import pandas as pd

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    frames = []
    for run in run_dirs:
        if not (Path(run) / METRICS).is_file():
            raise ParamError("run", f"no metrics.jsonl in {run}")
        if (Path(run) / "summary.json").is_file():
            verify_run(run)
        recs = read_metrics(run)
        df = pd.DataFrame(recs, columns=["step", "loss", "lr", "top1"])
        df.insert(0, "run", Path(run).name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["run", "step", "loss", "lr", "top1"])
    return pd.concat(frames, ignore_index=True)


BASELINE_COLUMNS = ("seed", "dataset", "train_images", "test_images", "softmax", "1-nn")


def baselines(specs: list[RunSpec]):
    """The raw-pixel baselines of the fine-tunings' training images, one row per seed's subset.

    Returns:
        DataFrame with ``BASELINE_COLUMNS`` (top-1 in percent on the whole test set);
        ``df.attrs["missing"]`` names the subsets whose baselines were not made.
    """
    import pandas as pd

    out, missing, seen = [], [], set()
    for s in specs:
        if s.phase != "finetune":
            continue
        path = raw_pixels_path(s.cfg, s.path.parent.parent)
        if path in seen:
            continue
        seen.add(path)
        if not path.is_file():
            missing.append(f"baselines s{s.seed}")
            continue
        b = _json(path)
        out.append((s.seed, b["dataset"], b["train_images"], b["test_images"], b["softmax"], b["1-nn"]))
    df = pd.DataFrame(out, columns=list(BASELINE_COLUMNS)).sort_values("seed", ignore_index=True)
    df.attrs["missing"] = missing
    return df
