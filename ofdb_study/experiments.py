"""The experiments of the paper as functions; the notebooks call only these.

Runs are cached: a run folder is named by its settings and a hash of its resolved config
(``root/pretrain/<data>-<N>-<augment>-s<seed>-<hash>``), so calling an experiment again reuses
finished runs and resumes unfinished ones; re-plotting never retrains.

What a profile runs (``config.StudyPlan``):

* ``instances_vs_augmentation`` (Table 1 plus FractalDB and scratch): rows ``ROWS`` at the plan's
  category count (mini: 100 categories; paper: 1,000), each pre-trained then fine-tuned on the
  plan's dataset (mini: Fashion-MNIST with 50 images per class; paper: CIFAR-100).
* ``category_scaling``: OFDB with the default augmentation at each category count
  (mini: 10, 30, 100; paper: 10, 100, 1,000), fine-tuned likewise. The run at the plan's own
  category count is the ``ofdb`` row of the first experiment, reused from the cache.

The notebooks take seeds, rows and category lists as parameters; ``get_profile(p).study`` holds
each profile's defaults (mini: seeds 0 and 1).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .config import get_profile, phase_config
from .errors import ParamError

#: Row name -> (pre-training data, instance augmentation); None = from scratch.
ROWS = {
    "fractaldb": ("fractaldb", "default"),
    "ofdb": ("ofdb", "default"),
    "ofdb+fluctuation": ("ofdb", "fluctuation"),
    "ofdb+rotation": ("ofdb", "rotation"),
    "ofdb+pattern": ("ofdb", "pattern"),
    "ofdb+texture": ("ofdb", "texture"),
    "ofdb+both": ("ofdb", "both"),
    "ofdb3d": ("ofdb3d", "default"),
    "ofdb3d+pattern": ("ofdb3d", "pattern"),
    "1p-frac": ("1pfrac", "default"),
    "scratch": (None, None),
}


def ofdb3d_data(profile: str, categories: int, root="runs") -> str:
    """Build (or reuse) the 3D-OFDB tree a profile pre-trains on; returns ``multiview:PATH``.

    The views are rendered with the profile's 3D settings (``Profile.kind_settings("ofdb3d")``:
    224 px and 10,000 points at ``paper``, the public generator's; the small render size at
    ``smoke`` and ``mini``), 12 per category with the public camera, into
    ``root/data/ofdb3d-<N>-<size>px-<key>`` (``key`` hashes every render setting); training draws
    one random view per category per sample.
    """
    import hashlib
    import json

    from .fractals import ofdb3d

    kind = get_profile(profile).kind_settings("ofdb3d")
    render = dict(
        size=kind["render_size"],
        points=kind["render_points"],
        jitter=ofdb3d.DEFAULT_JITTER_DEG,
        a_weight=ofdb3d.DEFAULT_A_WEIGHT,
    )
    key = hashlib.sha256(json.dumps(render, sort_keys=True).encode()).hexdigest()[:8]
    path = (Path(root) / "data" / f"ofdb3d-{categories}-{render['size']}px-{key}").resolve()
    ofdb3d.build_ofdb3d(path, categories, **render, resume=True, progress=False)
    return f"multiview:{path}"


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).strip("_")[-40:] or "data"


def _summary(run: Path) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


def _run(cfg, run: Path, progress: bool) -> Path:
    from .train.engine import train

    if not (run / "summary.json").is_file():
        train(cfg, run, resume=True, progress=progress)
    return run


def pretrain_run(
    profile: str,
    data: str = "ofdb",
    categories: int | None = None,
    augment: str = "default",
    seed: int = 0,
    root="runs",
    progress: bool = True,
    **overrides,
) -> Path:
    """Pre-train (or reuse / resume) one run.

    Args:
        profile: smoke | mini | paper | paper-21k.
        data: ofdb | fractaldb | 1pfrac | ofdb3d (built here, see ``ofdb3d_data``) | PATH |
            multiview:PATH.
        categories: number of categories (default: the profile's study plan).
        augment: a Table-1 option (augment.INSTANCE_AUGMENTS).
        seed: run seed.
        root: folder of all runs.
        **overrides: any TrainConfig setting.

    Returns:
        The run folder (holding summary.json and checkpoint.pt).
    """
    categories = categories or get_profile(profile).study.categories
    tag = _tag(data)
    if data == "ofdb3d":
        data = ofdb3d_data(profile, categories, root)
    cfg = phase_config(
        profile, "pretrain", data=data, categories=categories, augment=augment, seed=seed, **overrides
    )
    name = f"{tag}-{cfg.categories}-{cfg.augment}-s{seed}-{cfg.digest()[:10]}"
    return _run(cfg, Path(root) / "pretrain" / name, progress)


def finetune_run(
    profile: str,
    init,
    dataset: str | None = None,
    seed: int = 0,
    root="runs",
    progress: bool = True,
    **overrides,
) -> Path:
    """Fine-tune (or reuse / resume) one run from a pre-training run folder or "scratch".

    Args:
        profile: smoke | mini | paper | paper-21k.
        init: a pre-training run folder, its checkpoint.pt, or "scratch".
        dataset: downstream dataset (default: the profile's study plan).
        seed: run seed.
        root: folder of all runs.
        **overrides: any TrainConfig setting (e.g. train_per_class, data_root).

    Returns:
        The run folder.
    """
    prof = get_profile(profile)
    if str(init) == "scratch":
        init_s, init_tag = "scratch", "scratch"
    else:
        path = Path(init)
        ckpt = path / "checkpoint.pt" if path.is_dir() else path
        init_s, init_tag = str(ckpt), (path if path.is_dir() else path.parent).name
    overrides.setdefault("train_per_class", prof.finetune.train_per_class)
    cfg = phase_config(
        profile, "finetune", dataset=dataset or prof.study.dataset, init=init_s, seed=seed, **overrides
    )
    name = f"{_tag(cfg.dataset)}-{_tag(init_tag)}-s{seed}-{cfg.digest()[:10]}"
    run = Path(root) / "finetune" / name
    # only a run still to train needs the checkpoint (unpacked results hold none: results pack)
    if init_s != "scratch" and not Path(init_s).is_file() and not (run / "summary.json").is_file():
        raise ParamError("init", f"no checkpoint at {init_s}")
    return _run(cfg, run, progress)


def instances_vs_augmentation(
    profile: str, seeds: list[int], root="runs", rows: list[str] | None = None, data_root: str | None = None
):
    """FractalDB vs OFDB under each Table-1 augmentation vs scratch, fine-tuned downstream.

    ``data_root`` is passed to fine-tuning (where the downstream dataset lives).

    Returns:
        DataFrame, one row per (row, seed): row, pretrain, augment, seed, pretrain_run, finetune_run,
        top1_best, top1_last, pretrain_seconds, finetune_seconds.
    """
    import pandas as pd

    rows = list(rows or get_profile(profile).study.rows)
    for r in rows:
        if r not in ROWS:
            raise ParamError("rows", f"unknown row {r!r}; choose from {', '.join(ROWS)}")
    out = []
    for seed in seeds:
        for r in rows:
            data, aug = ROWS[r]
            pre = pretrain_run(profile, data, augment=aug, seed=seed, root=root) if data else None
            fine = finetune_run(profile, pre or "scratch", seed=seed, root=root, data_root=data_root)
            fs = _summary(fine)
            out.append(
                {
                    "row": r,
                    "pretrain": data or "scratch",
                    "augment": aug,
                    "seed": seed,
                    "pretrain_run": str(pre) if pre else None,
                    "finetune_run": str(fine),
                    "top1_best": fs["top1_best"],
                    "top1_last": fs["top1_last"],
                    "pretrain_seconds": _summary(pre)["wall_seconds"] if pre else 0.0,
                    "finetune_seconds": fs["wall_seconds"],
                }
            )
    return pd.DataFrame(out)


def category_scaling(
    profile: str, categories: list[int], seeds: list[int], root="runs", data_root: str | None = None
):
    """OFDB-N (default augmentation) for each N, fine-tuned downstream.

    Returns:
        DataFrame: categories, seed, pretrain_run, finetune_run, top1_best, top1_last, pretrain_seconds.
    """
    import pandas as pd

    out = []
    for seed in seeds:
        for n in categories:
            pre = pretrain_run(profile, "ofdb", categories=n, seed=seed, root=root)
            fine = finetune_run(profile, pre, seed=seed, root=root, data_root=data_root)
            fs = _summary(fine)
            out.append(
                {
                    "categories": n,
                    "seed": seed,
                    "pretrain_run": str(pre),
                    "finetune_run": str(fine),
                    "top1_best": fs["top1_best"],
                    "top1_last": fs["top1_last"],
                    "pretrain_seconds": _summary(pre)["wall_seconds"],
                }
            )
    return pd.DataFrame(out)


def onepfrac_sweep(
    profile: str, deltas: list[float], seeds: list[int], root="runs", data_root: str | None = None
):
    """1p-frac pre-training at each perturbation strength delta, fine-tuned downstream.

    The published sweep (``results.onepfrac_table``) is CIFAR-100 after ViT-Tiny pre-training at
    ``paper``; ``StudyPlan.onepfrac_deltas`` holds each profile's deltas.

    Returns:
        DataFrame: delta, seed, pretrain_run, finetune_run, top1_best, top1_last, pretrain_seconds.
    """
    import pandas as pd

    out = []
    for seed in seeds:
        for delta in deltas:
            pre = pretrain_run(profile, "1pfrac", seed=seed, root=root, delta=float(delta))
            fine = finetune_run(profile, pre, seed=seed, root=root, data_root=data_root)
            fs = _summary(fine)
            out.append(
                {
                    "delta": float(delta),
                    "seed": seed,
                    "pretrain_run": str(pre),
                    "finetune_run": str(fine),
                    "top1_best": fs["top1_best"],
                    "top1_last": fs["top1_last"],
                    "pretrain_seconds": _summary(pre)["wall_seconds"],
                }
            )
    return pd.DataFrame(out)


def learning_curves(run_dirs):
    """metrics.jsonl of runs as one table: columns run, step, loss, lr, top1 (NaN between evals)."""
    import pandas as pd

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    frames = []
    for run in run_dirs:
        path = Path(run) / "metrics.jsonl"
        if not path.is_file():
            raise ParamError("run", f"no metrics.jsonl in {run}")
        recs = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        df = pd.DataFrame(recs, columns=["step", "loss", "lr", "top1"])
        df.insert(0, "run", Path(run).name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["run", "step", "loss", "lr", "top1"])
    return pd.concat(frames, ignore_index=True)
