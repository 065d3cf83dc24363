"""The paper's experiments as a plan of training runs, and the one local scheduler that trains it.

* ``plan(profile, seeds)`` lists every run the study's notebooks need (``RunSpec``): the
  instances-versus-augmentation rows (``config.ROWS``) at the plan's category count and the
  category-scaling sweep (OFDB, default augmentation), each pre-trained and then fine-tuned on the
  plan's downstream set, plus "scratch" (fine-tuned from random weights); at ``paper`` also the
  1p-frac perturbation sweep (``StudyPlan.onepfrac_deltas``). A run two experiments share (OFDB
  at the plan's own category count) is listed once; fine-tunings come after the pre-trainings.
* ``run_plan(specs)`` trains the runs that are not finished (resuming interrupted ones), one line of
  progress per run: which run, k of n, images/s and the time left.
* ``pretrain_run`` and ``finetune_run`` train (or reuse) one run; ``analysis.runs`` reads
  finished runs into tables.

Run folders are named by their settings and a hash of their resolved configuration
(``root/pretrain/<data>-<N>-<augment>-s<seed>-<hash>``,
``root/finetune/<dataset>-<init>-s<seed>-<hash>``), so a finished run is found again by any later
call; ``summary.json`` (written last) is the only mark of a finished run.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import CONTROL_POOL, ROWS, TrainConfig, data_kind, get_profile, phase_config
from ..errors import ParamError
from ..train.runinfo import CHECKPOINT, SUMMARY


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study.

    Attributes:
        phase: ``pretrain`` or ``finetune``.
        row: the study row (``config.ROWS``) the run belongs to.
        categories: pre-training categories (None for scratch).
        seed: run seed (the same seed pre-trains and fine-tunes a row: runs are paired by seed).
        cfg: the resolved configuration.
        path: the run folder.
        needs: the pre-training run folder a fine-tuning starts from (None: scratch).
        data3d: ``(categories, render settings)`` of a 3D-OFDB tree to build before pre-training.
    """

    phase: str
    row: str
    categories: int | None
    seed: int
    cfg: TrainConfig
    path: Path
    needs: Path | None = None
    data3d: tuple[int, tuple] | None = None

    @property
    def finished(self) -> bool:
        """Whether the run has finished and is this run (``train.runfolder.run_finished``: its
        config, name, numbers and fine-tuning data are checked); ParamError for a folder that
        holds another or a damaged run."""
        from ..train.runinfo import run_finished

        return run_finished(self.path, self.cfg)

    @property
    def images(self) -> int:
        """Images the run trains on (one process; the global batch is larger under DDP)."""
        return self.cfg.steps * self.cfg.batch_size

    @property
    def label(self) -> str:
        size = f" C{self.categories}" if self.categories else ""
        delta = f" delta {self.cfg.delta:g}" if self.cfg.data == "1pfrac" else ""
        return f"{self.phase} {self.row}{size}{delta} s{self.seed}"

    def summary(self) -> dict:
        """The finished run's summary, checked (``train.runinfo.verify_run``)."""
        from ..train.runinfo import verify_run

        return verify_run(self.path, self.cfg)


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).strip("_")[-40:] or "data"


def _row_name(data: str, augment: str) -> str:
    for name, (d, a) in ROWS.items():
        if (d, a) == (data, augment):
            return name
    return f"{data}+{augment}" if augment != "default" else data


def ofdb3d_settings(profile: str, categories: int, root="runs") -> tuple[Path, dict]:
    """Where a profile's 3D-OFDB tree lives and how it is rendered (``build_ofdb3d`` keywords).

    The views are rendered with the profile's 3D settings (``Profile.kind_settings("ofdb3d")``:
    224 px and 10,000 points at ``paper``, the public generator's; the small render size at
    ``smoke`` and ``mini``), 12 per category with the public camera, into
    ``root/data/ofdb3d-<N>-<size>px-<key>`` (``key`` hashes every render setting).
    """
    from ..fractals import ofdb3d

    kind = get_profile(profile).kind_settings("ofdb3d")
    render = dict(
        size=kind["render_size"],
        points=kind["render_points"],
        jitter=ofdb3d.DEFAULT_JITTER_DEG,
        a_weight=ofdb3d.DEFAULT_A_WEIGHT,
    )
    key = hashlib.sha256(json.dumps(render, sort_keys=True).encode()).hexdigest()[:8]
    return (Path(root) / "data" / f"ofdb3d-{categories}-{render['size']}px-{key}").resolve(), render


def ofdb3d_data(profile: str, categories: int, root="runs") -> str:
    """Build (or reuse) the 3D-OFDB tree a profile pre-trains on; returns ``multiview:PATH``."""
    from ..fractals import ofdb3d

    path, render = ofdb3d_settings(profile, categories, root)
    ofdb3d.build_ofdb3d(path, categories, **render, resume=True, progress=False)
    return f"multiview:{path}"


def pretrain_spec(
    profile: str,
    data: str = "ofdb",
    augment: str = "default",
    categories: int | None = None,
    seed: int = 0,
    root="runs",
    row: str | None = None,
    **overrides,
) -> RunSpec:
    """The pre-training run of ``data`` under a Table-1 ``augment`` at a profile.

    Args:
        profile: a profile name (``config.PROFILES``).
        data: ofdb | fractaldb | 1pfrac | ofdb3d (a 3D tree built before training) | PATH |
            multiview:PATH.
        augment: a Table-1 option (``augment.INSTANCE_AUGMENTS``).
        categories: number of categories (default: the profile's study plan); an ImageFolder
            tree's is the tree's, a 3D-view tree's at most its own (``tree_categories``).
        seed: run seed.
        root: folder of all runs.
        row: the study row the run belongs to (default: the ``config.ROWS`` entry of data and augment).
        **overrides: any TrainConfig setting.
    """
    default = int(get_profile(profile).study.categories)
    tag, data3d = _tag(data), None
    if data == "ofdb3d":
        categories = int(categories or default)
        path, render = ofdb3d_settings(profile, categories, root)
        data3d = (categories, tuple(sorted(render.items())))
        data = f"multiview:{path}"
    elif data_kind(data) in ("folder", "multiview"):  # a tree's count is the tree's
        from ..train.pretrain_data import tree_categories

        categories = tree_categories(data, None if categories is None else int(categories), default)
    else:
        categories = int(categories or default)
    cfg = phase_config(
        profile, "pretrain", data=data, categories=categories, augment=augment, seed=seed, **overrides
    )
    name = f"{tag}-{cfg.categories}-{cfg.augment}-s{seed}-{cfg.digest()[:10]}"
    row = row or _row_name(tag, augment)
    return RunSpec("pretrain", row, categories, seed, cfg, Path(root) / "pretrain" / name, data3d=data3d)


def finetune_spec(
    profile: str,
    init: RunSpec | str | Path = "scratch",
    seed: int = 0,
    root="runs",
    dataset: str | None = None,
    row: str | None = None,
    **overrides,
) -> RunSpec:
    """The fine-tuning run from a pre-training ``RunSpec``, a run folder (or its checkpoint), or scratch."""
    prof = get_profile(profile)
    categories = None
    if isinstance(init, RunSpec):
        needs, row, categories = init.path, row or init.row, init.categories
    elif str(init) == "scratch":
        needs, row = None, row or "scratch"
    else:  # a run folder, its checkpoint.pt, or an export folder (``export``)
        path = Path(init)
        needs = path.parent if path.name == CHECKPOINT else path
        row = row or needs.name
    init_s = "scratch" if needs is None else str(_weights_of(needs))
    overrides.setdefault("train_per_class", prof.finetune.train_per_class)
    cfg = phase_config(
        profile, "finetune", dataset=dataset or prof.study.dataset, init=init_s, seed=seed, **overrides
    )
    init_tag = "scratch" if needs is None else needs.name
    name = f"{_tag(cfg.dataset)}-{_tag(init_tag)}-s{seed}-{cfg.digest()[:10]}"
    return RunSpec("finetune", row, categories, seed, cfg, Path(root) / "finetune" / name, needs=needs)


def _weights_of(folder: Path) -> Path:
    """The weights a fine-tuning reads from ``folder``: a run's checkpoint.pt, else the folder
    itself (an export folder, read by ``models.read_state_dict``)."""
    export = folder / "model.safetensors"
    return folder if export.is_file() and not (folder / CHECKPOINT).is_file() else folder / CHECKPOINT


def study_rows(profile: str, rows: list[str] | None = None) -> list[str]:
    """The instances-vs-augmentation rows a profile runs (its plan's, or ``rows``), checked."""
    chosen = list(rows or get_profile(profile).study.rows)
    for r in chosen:
        if r not in ROWS:
            raise ParamError("rows", f"unknown row {r!r}; choose from {', '.join(ROWS)}")
    return chosen


def scaling_categories(profile: str, categories: list[int] | None = None) -> list[int]:
    """The category-scaling sweep: ``categories`` if given, else the profile's plan."""
    sweep = [int(c) for c in (categories or get_profile(profile).study.scaling_categories)]
    if any(c < 1 for c in sweep):
        raise ParamError("categories", f"must be positive integers, got {sweep}")
    return sweep


def augmentation_specs(
    profile: str, seeds: list[int], root="runs", rows: list[str] | None = None, **finetune_overrides
) -> list[RunSpec]:
    """Pre-training and fine-tuning runs of the instances-vs-augmentation rows, seed by seed."""
    out = []
    study = get_profile(profile).study
    for seed in seeds:
        for r in study_rows(profile, rows):
            pre = row_spec(profile, r, seed, root)
            if pre is not None:
                out.append(pre)
            if study.endpoint == "finetune":
                out.append(finetune_spec(profile, pre or "scratch", seed, root, row=r, **finetune_overrides))
    return out


def row_spec(profile: str, row: str, seed: int, root="runs", categories: int | None = None) -> RunSpec | None:
    """The pre-training of study row ``row`` at a profile (None for ``scratch``): its data and
    Table-1 option (``config.ROWS``) under the row's own settings (``StudyPlan.row_settings``); the
    positive control reads the control pool's tree (``readouts.control_tree_path``)."""
    data, augment = ROWS[row]
    if not data:
        return None
    settings = get_profile(profile).study.settings_of(row)
    if categories is not None:
        settings["categories"] = categories
    if data == CONTROL_POOL:
        from .readouts import control_tree_path

        data = str(control_tree_path(profile, root))
    return pretrain_spec(profile, data, augment, seed=seed, root=root, row=row, **settings)


def scaling_specs(
    profile: str, seeds: list[int], root="runs", categories: list[int] | None = None, **finetune_overrides
) -> list[RunSpec]:
    """Pre-training (and, where the endpoint is a fine-tune, fine-tuning) runs of the plan's
    ``scaling_row`` (OFDB, default augmentation, unless the profile says otherwise) at each count."""
    out = []
    study = get_profile(profile).study
    for seed in seeds:
        for n in scaling_categories(profile, categories):
            pre = row_spec(profile, study.scaling_row, seed, root, categories=n)
            out.append(pre)
            if study.endpoint == "finetune":
                out.append(finetune_spec(profile, pre, seed, root, **finetune_overrides))
    return out


def onepfrac_specs(
    profile: str, deltas: list[float], seeds: list[int], root="runs", **finetune_overrides
) -> list[RunSpec]:
    """1p-frac pre-training at each perturbation strength delta, then fine-tuning."""
    out = []
    for seed in seeds:
        for delta in deltas:
            pre = pretrain_spec(profile, "1pfrac", seed=seed, root=root, row="1p-frac", delta=float(delta))
            out += [pre, finetune_spec(profile, pre, seed, root, **finetune_overrides)]
    return out


def plan(
    profile: str,
    seeds: list[int] | None = None,
    root="runs",
    rows: list[str] | None = None,
    categories: list[int] | None = None,
    **finetune_overrides,
) -> list[RunSpec]:
    """Every run the study needs at ``profile``: pre-trainings first, each run once.

    Args:
        profile: a profile name.
        seeds: run seeds (default: the profile's).
        root: folder of all runs.
        rows: instances-vs-augmentation rows (default: the profile's plan).
        categories: the category-scaling sweep (default: the profile's plan).
        **finetune_overrides: settings for every fine-tuning (e.g. ``data_root``).
    """
    prof = get_profile(profile)
    seeds = [int(s) for s in (seeds if seeds is not None else prof.study.seeds)]
    specs = augmentation_specs(profile, seeds, root, rows, **finetune_overrides)
    specs += scaling_specs(profile, seeds, root, categories, **finetune_overrides)
    specs += onepfrac_specs(profile, list(prof.study.onepfrac_deltas), seeds, root, **finetune_overrides)
    unique: dict[Path, RunSpec] = {}
    for s in specs:
        unique.setdefault(s.path, s)
    return sorted(unique.values(), key=lambda s: s.phase != "pretrain")  # stable: keeps seed order


def _prepare_data(spec: RunSpec) -> None:
    if spec.row == "supervised" and spec.phase == "pretrain":
        from .readouts import control_tree

        control_tree(spec.cfg.profile, spec.path.parent.parent)
        return
    if spec.data3d is None:
        return
    from ..fractals.ofdb3d import build_ofdb3d

    categories, render = spec.data3d
    path = spec.cfg.data.split(":", 1)[1]
    build_ofdb3d(path, categories, **dict(render), resume=True, progress=False)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def train_spec(spec: RunSpec, *, progress: bool = False) -> dict:
    """Train (or resume) one run; returns its summary. A finished run is only read."""
    from ..train.engine import train

    if spec.finished:
        return spec.summary()
    if spec.needs is not None and not (spec.needs / SUMMARY).is_file() and not Path(spec.cfg.init).exists():
        raise ParamError("init", f"{spec.label} starts from {spec.needs}, which has not finished")
    _prepare_data(spec)
    return train(spec.cfg, spec.path, resume=True, progress=progress)


def _ready(spec: RunSpec, done: set[Path]) -> bool:
    return spec.needs is None or spec.needs in done or (spec.needs / SUMMARY).is_file()


def _train_quietly(spec: RunSpec) -> dict:  # a worker process's job: no progress bar
    return train_spec(spec, progress=False)


def check_starts(specs: list[RunSpec], planned: set[Path]) -> None:
    """Raise ParamError for the first of ``specs`` that starts from a pre-training which is neither
    finished nor among the ``planned`` run folders."""
    for s in specs:
        if s.needs is not None and s.needs not in planned and not (s.needs / SUMMARY).is_file():
            raise ParamError(
                "init", f"{s.label} starts from {s.needs}, which is neither finished nor planned"
            )


def run_plan(specs: list[RunSpec], *, log=print, progress: bool = False, workers: int = 1) -> list[RunSpec]:
    """Train every run of ``specs`` that is not finished; returns the runs trained.

    With ``workers`` > 1, that many runs train at once in separate processes (a fine-tuning waits
    for its pre-training); each run's result does not depend on it (its data order and every
    random draw come from its own seed). Logs one line when a run starts and one when it ends:
    k of n, wall time, images/s, the run's top-1, and the time left, estimated from the images/s
    measured so far.

    Raises:
        ParamError: a fine-tuning starts from a pre-training that is neither finished nor planned,
            or ``workers`` is below 1.
    """
    from ..errors import check_positive_int

    workers = check_positive_int("workers", workers)
    todo = [s for s in specs if not s.finished]
    check_starts(todo, {s.path for s in specs})
    total, n = sum(s.images for s in todo), len(todo)
    state = {"images": 0, "started": time.perf_counter(), "k": 0}

    def finished(s: RunSpec, summary: dict, wall: float) -> None:
        state["images"] += s.images
        state["k"] += 1
        elapsed = time.perf_counter() - state["started"]
        left = (total - state["images"]) * elapsed / max(state["images"], 1)
        top1 = summary.get("top1_last")
        acc = f", top-1 {top1:.1f} %" if top1 is not None else ""
        log(
            f"[{state['k']}/{n}] {s.label}: done in {_duration(wall)}, "
            f"{s.images / max(wall, 1e-9):.0f} images/s{acc}; about {_duration(left)} left"
        )

    if workers == 1:
        for k, s in enumerate(todo, 1):
            log(f"[{k}/{n}] {s.label}: {s.cfg.steps} steps -> {s.path}")
            t0 = time.perf_counter()
            finished(s, train_spec(s, progress=progress), time.perf_counter() - t0)
        return todo
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting, running, done = list(todo), {}, set()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        while waiting or running:
            for s in [s for s in waiting if _ready(s, done)][: workers - len(running)]:
                waiting.remove(s)
                log(f"[{n - len(waiting)}/{n}] {s.label}: {s.cfg.steps} steps -> {s.path}")
                running[pool.submit(_train_quietly, s)] = (s, time.perf_counter())
            if not running:
                raise ParamError("init", f"{waiting[0].label} waits for a pre-training that cannot run")
            for future in wait(running, return_when=FIRST_COMPLETED).done:
                s, t0 = running.pop(future)
                finished(s, future.result(), time.perf_counter() - t0)
                done.add(s.path)
    return todo


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
    """Pre-train (or reuse, or resume) one run; returns its folder. See ``pretrain_spec``."""
    spec = pretrain_spec(profile, data, augment, categories, seed, root, **overrides)
    train_spec(spec, progress=progress)
    return spec.path


def finetune_run(
    profile: str,
    init,
    dataset: str | None = None,
    seed: int = 0,
    root="runs",
    progress: bool = True,
    **overrides,
) -> Path:
    """Fine-tune (or reuse, or resume) one run from a pre-training run folder or "scratch".

    Only a run still to train needs the pre-training's checkpoint (unpacked results hold none).
    """
    spec = finetune_spec(profile, init, seed, root, dataset=dataset, **overrides)
    if not spec.finished and spec.needs is not None and not Path(spec.cfg.init).exists():
        raise ParamError("init", f"no checkpoint at {spec.cfg.init}")
    train_spec(spec, progress=progress)
    return spec.path
