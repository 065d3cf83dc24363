"""Training profiles as data: ``smoke`` (tests), ``mini`` (the study on 2 CPU cores), ``paper``,
``paper-21k``; every value with its source.

One code path runs them all; a profile only changes numbers. ``TrainConfig`` holds what a user may
set for one phase (pre-training or fine-tuning); its defaults are the paper's pre-training recipe,
each written beside its source (``ofdb_study.sources``). A profile derives its two phases from
those defaults, citing every value it changes, so every value of every profile has a source
(``Profile.sources``; ``python -m ofdb_study profile show NAME`` prints them). ``resolve`` is the
one place derived values live: the global batch (per-process batch x world size) and the learning
rates scaled by ``global_batch / 512``, written out explicitly so nothing is rescaled silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ParamError
from .fractals.defaults import (
    FRACTALDB_RENDERS,
    OFDB3D_POINTS,
    OFDB3D_SIZE,
    OFDB_A_WEIGHT,
    OFDB_PAD,
    OFDB_POINTS,
    OFDB_SIZE,
    ONEPFRAC_DELTA,
    ONEPFRAC_PAD,
    ONEPFRAC_POINTS,
    ONEPFRAC_SIGMA,
    ONEPFRAC_SIZE,
)
from .sources import (
    COLOR_YAML,
    FINETUNE_SH,
    GEN_2D,
    GEN_3D,
    GRAY_YAML,
    IN1K_FINETUNE_PY,
    IN1K_FINETUNE_SH,
    IN1K_LOADER,
    MAIN_PY,
    MODEL_YAML,
    NO_PUBLIC,
    OFDB_PAPER,
    ONEPFRAC_GEN,
    ONEPFRAC_PAPER,
    ONEPFRAC_SH,
    PRETRAIN_SH,
    README_21K,
    TIMM_DEIT_B,
    TIMM_EVAL,
    Cite,
    differs,
    ours,
    pub,
    resolve_public,
)

PHASES = ("pretrain", "finetune")
#: The rows of the instances-vs-augmentation study: row -> (pre-training data, Table-1 augmentation);
#: ``(None, None)`` fine-tunes from random weights. ``ofdb3d`` is built by the experiments as a
#: multi-view tree (``multiview:PATH``). A profile's ``StudyPlan.rows`` picks among them.
ROWS: dict[str, tuple[str | None, str | None]] = {
    "scratch": (None, None),
    "ofdb": ("ofdb", "default"),
    "ofdb+pattern": ("ofdb", "pattern"),
    "fractaldb": ("fractaldb", "default"),
    "ofdb+fluctuation": ("ofdb", "fluctuation"),
    "ofdb+rotation": ("ofdb", "rotation"),
    "ofdb+texture": ("ofdb", "texture"),
    "ofdb+both": ("ofdb", "both"),
    "ofdb3d": ("ofdb3d", "default"),
    "ofdb3d+pattern": ("ofdb3d", "pattern"),
    "1p-frac": ("1pfrac", "default"),
}
ALL_ROWS = tuple(ROWS)
#: The rows that render 3D views or a second fractal family: opt-in at ``mini`` (time).
OPT_IN_ROWS = ("ofdb3d", "ofdb3d+pattern", "1p-frac")
#: Learning rates in configs are given for this global batch and scaled linearly (DeiT convention).
LR_REFERENCE_BATCH = 512
#: ImageNet-1k's training images (the count the fine-tuning steps are computed from).
IMAGENET_TRAIN_IMAGES = 1_281_167
#: Settings that change speed or bookkeeping but not the trained weights (data order and sample
#: randomness are seeded per sample, so the worker count does not matter): a run may be resumed
#: with other values, and experiments reuse runs across them.
OPERATIONAL = frozenset(
    {
        "num_workers",
        "threads",
        "compile",
        "log_every",
        "checkpoint_every",
        "eval_batch_size",
        "data_root",
        "download",
        "profile",
    }
)

#: Where pre-training batches are made (``train.engine``): ``loader`` (timm's per-image transform in
#: DataLoader workers, the reference), ``batched`` (sources and augmentation on whole batches on the
#: model's device, ``train.batched``), ``auto`` (batched on CUDA, loader elsewhere).
PIPELINES = ("loader", "batched", "auto")

#: Settings only pre-training reads (the fractal source): a fine-tuning run's digest leaves them out.
PRETRAIN_ONLY = frozenset(
    {
        "data",
        "categories",
        "augment",
        "params",
        "render_size",
        "render_points",
        "render_pad",
        "a_weight",
        "eval_per_category",
        "delta",
        "sigma",
        "pipeline",
    }
)
#: Settings only fine-tuning reads (the downstream task and the starting weights): a pre-training
#: run's digest leaves them out.
FINETUNE_ONLY = frozenset(
    {"dataset", "data_root", "download", "train_per_class", "test_per_class", "subset_seed", "init"}
)
#: For each phase, the settings its digest leaves out: operational ones and the other phase's.
NOT_READ_BY = {"pretrain": OPERATIONAL | FINETUNE_ONLY, "finetune": OPERATIONAL | PRETRAIN_ONLY}


def steps_for(epochs: int, images: int, batch: int) -> int:
    """Optimizer steps of ``epochs`` epochs: ``epochs x floor(images / batch)``.

    The public loaders drop the last partial batch (``drop_last=True``), so an epoch is
    ``floor(images / global batch)`` steps.
    """
    return epochs * (images // batch)


def _steps_text(epochs: int, images: int, batch: int, where: str) -> str:
    per = images // batch
    return (
        f"{where}: {epochs:,} epochs x floor({images:,} / {batch:,}) = {epochs:,} x {per:,} "
        f"= {steps_for(epochs, images, batch):,} steps"
    )


def _c(value, cite: Cite):
    """A dataclass field whose default is ``value``, with its source in the metadata."""
    return field(default=value, metadata={"cite": cite})


_OFDB_STEPS = steps_for(80_000, 1000, 256)
_OFDB_WARMUP = steps_for(5, 1000, 256)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (one phase). Units: steps = optimizer steps.

    The defaults are the paper's OFDB-1k pre-training recipe, each with its source in the field's
    metadata (``cite``). ``batch_size`` is per process; the global batch is ``batch_size *
    world_size``. ``base_lr``, ``base_warmup_lr``, ``base_min_lr`` are for a global batch of 512.
    """

    phase: str = _c("pretrain", pub(f"{PRETRAIN_SH}: mode=pretrain"))
    # model
    model: str = _c("vit_tiny_patch16_224", pub(f"{PRETRAIN_SH}: model.arch.model_name"))
    img_size: int = _c(224, pub(f"{GRAY_YAML}: transform.input_size 224"))
    patch_size: int = _c(16, pub("the model name's /16 (timm ViT-Tiny/16, ViT-B/16)"))
    depth: int | None = _c(None, pub("None = the timm model's own (12 blocks for ViT-Tiny and ViT-B)"))
    embed_dim: int | None = _c(None, pub("None = the timm model's own (192 for ViT-Tiny, 768 for ViT-B)"))
    num_heads: int | None = _c(None, pub("None = the timm model's own (3 for ViT-Tiny, 12 for ViT-B)"))
    drop_path: float = _c(0.1, pub(f"{MODEL_YAML}: arch.drop_path_rate 0.1"))
    global_pool: str | None = _c(None, pub("None = the timm ViT's own: the class token"))
    # pre-training data: ofdb | fractaldb | 1pfrac | PATH (ImageFolder) | multiview:PATH (3D views)
    data: str = _c("ofdb", pub(f"{OFDB_PAPER}, Table 1: 2D-OFDB"))
    categories: int = _c(1000, pub(f"{PRETRAIN_SH}: data.baseinfo.num_classes=1000"))
    augment: str = _c("default", pub(f"{OFDB_PAPER}, Table 1: 'default only'"))  # augment.INSTANCE_AUGMENTS
    params: str | None = _c(
        None, pub(f"None = our exact re-run of {GEN_2D} param_search/ifs_search.py (seed 1)")
    )
    render_size: int = _c(OFDB_SIZE, pub(f"{GEN_2D} fractal_renderer/make_2dofdb.py: 362 x 362"))
    render_points: int = _c(OFDB_POINTS, pub(f"{GEN_2D} make_2dofdb.py: 200,000 points"))
    render_pad: int = _c(OFDB_PAD, pub(f"{GEN_2D} make_2dofdb.py: pad 6"))
    a_weight: float = _c(OFDB_A_WEIGHT, pub(f"{GEN_2D} weights/one_ins.csv: first row, a x 0.2"))
    # pre-training's own-task evaluation: held-out renders per category (fresh patch masks; for
    # FractalDB held-out instances), at the end of the run and every ``eval_every`` steps
    eval_per_category: int = _c(10, ours("held-out renders per category for the own-task top-1", NO_PUBLIC))
    delta: float = _c(ONEPFRAC_DELTA, pub(f"{ONEPFRAC_GEN}: --delta 0.1 (1p-frac: perturbation strength)"))
    sigma: float = _c(
        ONEPFRAC_SIGMA,
        pub(f"{ONEPFRAC_PAPER} table and {ONEPFRAC_GEN} default 3.5 ({ONEPFRAC_SH} passes 4.0)"),
    )
    # fine-tuning data
    dataset: str = _c("cifar100", pub(f"{OFDB_PAPER}, Table 1: CIFAR-100"))
    data_root: str | None = _c(None, ours("where the downstream files are", NO_PUBLIC))
    download: bool = _c(False, ours("never download unless asked", NO_PUBLIC))
    train_per_class: int | None = _c(None, pub("None = the whole training set"))
    test_per_class: int | None = _c(None, pub("None = the whole test set"))
    subset_seed: int = _c(0, ours("which K images per class when train_per_class is set", NO_PUBLIC))
    init: str = _c(
        "scratch",
        ours(
            "fine-tuning: a pre-training run folder, its checkpoint.pt, an export folder, or scratch",
            NO_PUBLIC,
        ),
    )
    # transforms (timm.data.create_transform)
    scale: tuple[float, float] = _c((0.08, 1.0), pub(f"{PRETRAIN_SH}: data.transform.scale=[0.08,1.0]"))
    ratio: tuple[float, float] = _c((3 / 4, 4 / 3), pub(f"{PRETRAIN_SH}: data.transform.ratio=[0.75,1.3333]"))
    interpolation: str = _c("bicubic", pub(f"{GRAY_YAML}: transform.interpolation bicubic"))
    hflip: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.transform.hflip=0.5"))
    vflip: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.transform.vflip=0.5"))
    auto_augment: str | None = _c("rand-m9-mstd0.5-inc1", pub(f"{PRETRAIN_SH}: data.transform.auto_augment"))
    color_jitter: float = _c(
        0.4, pub(f"{PRETRAIN_SH}: data.transform.color_jitter=0.4 (inactive while RandAugment is on)")
    )
    mean: tuple[float, float, float] = _c((0.5, 0.5, 0.5), pub(f"{GRAY_YAML}: transform.mean"))
    std: tuple[float, float, float] = _c((0.5, 0.5, 0.5), pub(f"{GRAY_YAML}: transform.std"))
    re_prob: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.transform.re_prob=0.5"))
    re_mode: str = _c("pixel", pub(f"{GRAY_YAML}: transform.re_mode pixel"))
    # evaluation: resize to img_size / crop_pct, centre-crop img_size (timm)
    crop_pct: float = _c(
        0.875, pub(f"{MAIN_PY} evaluates with {TIMM_EVAL} and no crop_pct: timm's 0.875 (256 -> 224)")
    )
    # batch mixing (timm.data.Mixup; built only when mixup or cutmix > 0)
    mixup: float = _c(0.8, pub(f"{PRETRAIN_SH}: data.mixup.mixup_alpha=0.8"))
    cutmix: float = _c(1.0, pub(f"{PRETRAIN_SH}: data.mixup.cutmix_alpha=1.0"))
    mixup_prob: float = _c(1.0, pub(f"{PRETRAIN_SH}: data.mixup.prob=1.0"))
    mixup_switch_prob: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.mixup.switch_prob=0.5"))
    smoothing: float = _c(0.1, pub(f"{GRAY_YAML}: mixup.label_smoothing 0.1"))
    # repeated augmentation: each sampled index k times in a row (0 or 1: off)
    repeated_aug: int = _c(0, pub(f"{MAIN_PY}: a plain DistributedSampler (no repeats)"))
    # optimisation
    opt: str = _c("adamw", pub(f"{MODEL_YAML}: optim.optimizer_name adamw"))
    base_lr: float = _c(
        1e-3, pub(f"{PRETRAIN_SH}: model.optim.learning_rate=0.001, x global batch / 512 in {MAIN_PY}")
    )
    base_warmup_lr: float = _c(
        1e-6, pub(f"{MODEL_YAML}: scheduler warmup_lr 1e-6, x global batch / 512 in {MAIN_PY}")
    )
    base_min_lr: float = _c(
        1e-5, pub(f"{MODEL_YAML}: scheduler min_lr 1e-5, x global batch / 512 in {MAIN_PY}")
    )
    weight_decay: float = _c(0.05, pub(f"{MODEL_YAML}: optim.weight_decay 0.05 (timm: none on 1-D)"))
    momentum: float = _c(0.9, pub("timm create_optimizer_v2 default (unused by AdamW)"))
    batch_size: int = _c(
        256, pub(f"{PRETRAIN_SH}: data.loader.batch_size=32 on 8 GPUs = 256; here per process")
    )
    steps: int = _c(
        _OFDB_STEPS, pub(_steps_text(80_000, 1000, 256, f"{PRETRAIN_SH} epochs=80000, {MAIN_PY}"))
    )
    warmup_steps: int = _c(_OFDB_WARMUP, pub(_steps_text(5, 1000, 256, f"{PRETRAIN_SH} warmup_epochs=5")))
    # bookkeeping
    seed: int = _c(0, ours("run seed; the public runs are unseeded", NO_PUBLIC))
    eval_every: int = _c(0, ours("0 = evaluate at the end only", NO_PUBLIC))
    log_every: int = _c(50, ours("log cadence", NO_PUBLIC))
    checkpoint_every: int = _c(1000, ours("checkpoint cadence", NO_PUBLIC))
    eval_batch_size: int = _c(256, ours("evaluation batch", NO_PUBLIC))
    num_workers: int = _c(8, ours("data-loading processes per GPU", NO_PUBLIC))
    # where pre-training batches are made (PIPELINES); the two draw different samples from the same
    # distributions, so an explicit choice keys the run, while "auto" is left out of the key like
    # the device it follows (result_dict)
    pipeline: str = _c(
        "auto", ours("batches made by loader workers, or batched on the model's device (CUDA)", NO_PUBLIC)
    )
    compile: bool = _c(False, ours("torch.compile is optional (CUDA)", NO_PUBLIC))
    threads: int = _c(0, ours("torch intra-op threads; 0 = torch's default", NO_PUBLIC))
    # provenance: the profile this config was derived from (set by Profile); None for a custom config
    profile: str | None = _c(None, ours("the profile a config was derived from (provenance)", NO_PUBLIC))

    def replace(self, **overrides) -> TrainConfig:
        """A copy with ``overrides``; unknown keys raise ParamError."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in overrides:
            if key not in names:
                raise ParamError(key, f"unknown setting; known: {', '.join(sorted(names))}")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(self, **clean)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, doc: dict) -> TrainConfig:
        return cls().replace(**doc)

    def result_dict(self) -> dict:
        """The settings this phase reads that can change the trained weights: ``OPERATIONAL`` ones
        and the other phase's (``NOT_READ_BY``) are left out.

        A fine-tuning ``init`` counts by the name of its pre-training run folder, not by its full
        path: run folders are named by their own digest, so the same weights give the same key
        wherever the runs live (another ``--root``, a moved or copied folder). A ``multiview:PATH``
        tree counts by its folder name for the same reason (the study names 3D-OFDB trees by their
        settings, ``ofdb3d-<N>-<size>px``), so unpacked results match wherever they land.

        ``pipeline`` counts unless it is ``auto``: auto picks by device, and the device is no part
        of the key either (a CPU and a CUDA run of one config differ in their last bits anyway);
        runs cached before the setting existed keep their keys.
        """
        left_out = NOT_READ_BY.get(self.phase, OPERATIONAL)
        doc = {k: v for k, v in self.to_dict().items() if k not in left_out}
        if doc.get("pipeline") == "auto":
            del doc["pipeline"]
        if doc.get("init", "scratch") != "scratch":
            init = Path(doc["init"])
            doc["init"] = f"{init.parent.name}/{init.name}"
        if str(doc.get("data", "")).startswith("multiview:"):
            doc["data"] = "multiview:" + Path(doc["data"][len("multiview:") :]).name
        return doc

    def digest(self) -> str:
        """sha256 of ``result_dict`` as canonical JSON: the cache key of experiments and of resume."""
        return hashlib.sha256(json.dumps(self.result_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Resolved:
    """Derived values for one run at a given world size."""

    world_size: int
    global_batch: int
    lr: float
    warmup_lr: float
    min_lr: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve(cfg: TrainConfig, world_size: int = 1) -> Resolved:
    """Global batch and learning rates: ``lr = base_lr * global_batch / 512`` (likewise warmup, min)."""
    global_batch = cfg.batch_size * world_size
    scale = global_batch / LR_REFERENCE_BATCH
    return Resolved(
        world_size, global_batch, cfg.base_lr * scale, cfg.base_warmup_lr * scale, cfg.base_min_lr * scale
    )


# ---- a config with the source of each value ---------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """One phase of a profile: the config and, per field, its ``Cite`` (public value resolved)."""

    cfg: TrainConfig
    cites: Mapping[str, Cite]

    @classmethod
    def defaults(cls) -> Recipe:
        """``TrainConfig()`` with the sources written beside its fields."""
        cfg = TrainConfig()
        cites = {
            f.name: resolve_public(f.metadata["cite"], getattr(cfg, f.name), None)
            for f in dataclasses.fields(TrainConfig)
        }
        return cls(cfg, cites)

    def derive(self, **items: tuple) -> Recipe:
        """A copy with ``key=(value, cite)`` items; the others keep their value and source."""
        for key, item in items.items():
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Cite)):
                raise TypeError(f"{key}: expected (value, Cite), got {item!r}")
        cfg = self.cfg.replace(**{k: v for k, (v, _) in items.items()})
        cites = dict(self.cites)
        for key, (_, cite) in items.items():
            cites[key] = resolve_public(cite, getattr(cfg, key), self.cites[key])
        return Recipe(cfg, cites)


@dataclass(frozen=True)
class StudyPlan:
    """Which rows and sizes the notebooks run at a profile (see experiments.py).

    Attributes:
        categories: categories of the instances-vs-augmentation rows.
        scaling_categories: the category-scaling sweep (OFDB-N, pre-trained then fine-tuned).
        seeds: training seeds.
        dataset: the downstream data set every row is fine-tuned on.
        train_per_class: training images per class downstream (None: all).
        rows: rows of the instances-vs-augmentation study (experiments.ROWS).
        onepfrac_deltas: the 1p-frac perturbation sweep (empty: none).
        paper_table: the published table the numbers go beside (``results.table2`` / ``table3``).
        paper_column: that table's column (``C100`` of Table 2; ``vit_b`` of Table 3).
        workers: runs the study trains at once on this machine (``experiments.run_plan``).
    """

    categories: int
    scaling_categories: tuple[int, ...]
    seeds: tuple[int, ...]
    dataset: str
    train_per_class: int | None
    rows: tuple[str, ...]
    onepfrac_deltas: tuple[float, ...] = ()
    paper_table: str = "table2"
    paper_column: str = "C100"
    workers: int = 1


@dataclass(frozen=True)
class DataPlan:
    """What the data notebook builds and times at a profile.

    Attributes:
        search: categories searched (the search is timed per accepted category).
        ofdb: OFDB categories built (one image each) and timed.
        fractaldb: FractalDB categories built and timed.
        fractaldb_renders: patch renders per fluctuation row (10 in the full recipe).
        show: categories shown in the figures.
    """

    search: int
    ofdb: int
    fractaldb: int
    fractaldb_renders: int = FRACTALDB_RENDERS
    show: int = 10


@dataclass(frozen=True)
class Profile:
    """A named profile: both phases with their sources, data-kind settings and the study plan.

    ``data_kinds[kind]`` holds pre-training settings that apply when ``data`` is that kind
    (``1pfrac``; ``ofdb3d``, whose tree ``experiments.ofdb3d_data`` renders), as ``(value, Cite)``.
    """

    name: str
    pretrain_recipe: Recipe
    finetune_recipe: Recipe
    study: StudyPlan
    data: DataPlan
    data_kinds: Mapping[str, Mapping[str, tuple]] = field(default_factory=dict)

    @property
    def pretrain(self) -> TrainConfig:
        return self.pretrain_recipe.cfg

    @property
    def finetune(self) -> TrainConfig:
        return self.finetune_recipe.cfg

    def recipe(self, phase: str) -> Recipe:
        if phase not in PHASES:
            raise ParamError("phase", f"must be one of {', '.join(PHASES)}, got {phase!r}")
        return self.pretrain_recipe if phase == "pretrain" else self.finetune_recipe

    def kind_settings(self, kind: str) -> dict:
        """Pre-training settings of data kind ``kind`` at this profile: its own, else the profile's
        render size, points and padding."""
        base = self.pretrain
        out = {
            "render_size": base.render_size,
            "render_points": base.render_points,
            "render_pad": base.render_pad,
        }
        out.update({k: v for k, (v, _) in self.data_kinds.get(kind, {}).items()})
        return out

    def __post_init__(self):  # stamp the phase configs with their profile (written to config.yaml)
        stamp = (self.name, ours("the profile a config was derived from (provenance)", NO_PUBLIC))
        for attr in ("pretrain_recipe", "finetune_recipe"):
            object.__setattr__(self, attr, getattr(self, attr).derive(profile=stamp))


# ---- paper: the public recipe -------------------------------------------------------------------
_BOOKKEEPING = dict(
    eval_every=(10_000, ours("evaluate every 10,000 steps; not in the recipe", NO_PUBLIC)),
    log_every=(100, ours("log cadence", NO_PUBLIC)),
    checkpoint_every=(2_000, ours("checkpoint cadence", NO_PUBLIC)),
)
_PAPER_PRETRAIN = Recipe.defaults().derive(**_BOOKKEEPING)

_CIFAR_STEPS = steps_for(1000, 50_000, 768)
_PAPER_FINETUNE = _PAPER_PRETRAIN.derive(
    phase=("finetune", pub(f"{FINETUNE_SH}: mode=finetune")),
    img_size=(224, pub(f"{COLOR_YAML}: transform.input_size 224 (32 px CIFAR images resized)")),
    dataset=("cifar100", pub(f"{OFDB_PAPER}, Tables 1-2: CIFAR-100")),
    vflip=(0.0, pub(f"{COLOR_YAML}: transform.vflip 0.0")),
    mean=((0.485, 0.456, 0.406), pub(f"{COLOR_YAML}: transform.mean (ImageNet)")),
    std=((0.229, 0.224, 0.225), pub(f"{COLOR_YAML}: transform.std (ImageNet)")),
    re_prob=(0.25, pub(f"{COLOR_YAML}: transform.re_prob 0.25")),
    re_mode=("pixel", pub(f"{COLOR_YAML}: transform.re_mode pixel")),
    opt=("sgd", pub(f"{FINETUNE_SH}: model.optim.optimizer_name=sgd (timm's sgd: Nesterov)")),
    momentum=(0.9, pub("timm create_optimizer_v2 default momentum 0.9")),
    weight_decay=(1e-4, pub(f"{FINETUNE_SH}: model.optim.weight_decay=1.0e-4")),
    base_lr=(0.01, pub(f"{FINETUNE_SH}: model.optim.learning_rate=0.01, x global batch / 512 in {MAIN_PY}")),
    batch_size=(768, pub(f"{FINETUNE_SH}: data.loader.batch_size=96 on 8 GPUs = 768; here per process")),
    steps=(_CIFAR_STEPS, pub(_steps_text(1000, 50_000, 768, f"{FINETUNE_SH} epochs=1000"))),
    warmup_steps=(
        steps_for(10, 50_000, 768),
        pub(_steps_text(10, 50_000, 768, f"{FINETUNE_SH} warmup_epochs=10")),
    ),
    eval_every=(
        steps_for(10, 50_000, 768),
        ours("every 10 epochs; the public script evaluates every epoch", NO_PUBLIC),
    ),
)
PAPER = Profile(
    name="paper",
    pretrain_recipe=_PAPER_PRETRAIN,
    finetune_recipe=_PAPER_FINETUNE,
    study=StudyPlan(
        categories=1000,
        scaling_categories=(10, 100, 1000),
        seeds=(0,),
        dataset="cifar100",
        train_per_class=None,
        rows=ALL_ROWS,
        onepfrac_deltas=(0.01, 0.05, 0.1, 0.2),
    ),
    data=DataPlan(search=1000, ofdb=1000, fractaldb=1000),
    data_kinds={
        "1pfrac": {
            "render_size": (ONEPFRAC_SIZE, pub(f"{ONEPFRAC_GEN}: --image_size_x/y 512")),
            "render_points": (ONEPFRAC_POINTS, pub(f"{ONEPFRAC_GEN}: --iteration 100000")),
            "render_pad": (ONEPFRAC_PAD, pub(f"{ONEPFRAC_GEN}: --pad_size_x/y 6")),
        },
        "ofdb3d": {
            "render_size": (OFDB3D_SIZE, pub(f"{GEN_3D} image_render/render1view.py: --img_size 224")),
            "render_points": (
                OFDB3D_POINTS,
                pub(f"{GEN_3D} 3dfractal_render/instance.py: --point_num 10000"),
            ),
        },
    },
)

# ---- paper-21k: OFDB-21k pre-training and ImageNet-1k fine-tuning (Table 3) ----------------------
_21K_STEPS = steps_for(15_238, 21_000, 1024)
_PAPER_21K_PRETRAIN = _PAPER_PRETRAIN.derive(
    model=("vit_base_patch16_224", pub(f"{OFDB_PAPER}, Table 3: ViT-B column")),
    categories=(21_000, pub(f"{OFDB_PAPER}, Table 3: 2D-OFDB-21k (the exact search continued to 21,000)")),
    base_lr=(5e-4, pub(f"{README_21K}: lr 5.0e-4, x 1,024 / 512 in {MAIN_PY} = 1e-3 at 1,024")),
    batch_size=(1024, pub(f"{README_21K}: bs1024; {PAPER}, Table 3: batch 1,024; here per process")),
    steps=(_21K_STEPS, pub(_steps_text(15_238, 21_000, 1024, f"{README_21K} epochs15238"))),
    warmup_steps=(
        steps_for(5, 21_000, 1024),
        pub(_steps_text(5, 21_000, 1024, f"{PRETRAIN_SH} warmup_epochs=5")),
    ),
)
_IN1K_STEPS = steps_for(300, IMAGENET_TRAIN_IMAGES, 1024)
_IN1K_EPOCH = steps_for(1, IMAGENET_TRAIN_IMAGES, 1024)
_PAPER_21K_FINETUNE = _PAPER_FINETUNE.derive(
    model=(
        "vit_base_patch16_224",
        pub(f"{IN1K_FINETUNE_SH}: MODEL=base (deit_base_patch16_224, the same ViT-B/16)"),
    ),
    dataset=(
        "imagefolder:imagenet-1k",
        pub(f"{IN1K_FINETUNE_SH}: ImageNet-1k; ours: imagenet-1k/train and val under --data-root"),
    ),
    interpolation=(
        "bicubic",
        differs(
            f"{TIMM_DEIT_B}: bicubic (evaluation); ours for training too", "random (train), bicubic (eval)"
        ),
    ),
    vflip=(0.0, pub(f"{IN1K_FINETUNE_PY}: --vflip 0")),
    mean=((0.485, 0.456, 0.406), pub(f"{TIMM_DEIT_B}: ImageNet mean")),
    std=((0.229, 0.224, 0.225), pub(f"{TIMM_DEIT_B}: ImageNet std")),
    re_prob=(0.25, pub(f"{IN1K_FINETUNE_SH}: --reprob 0.25")),
    re_mode=("const", pub(f"{IN1K_FINETUNE_PY}: --remode const")),
    crop_pct=(0.875, pub(f"{TIMM_DEIT_B}: crop_pct 0.875 (resize 256, centre crop 224)")),
    drop_path=(0.1, pub(f"{IN1K_FINETUNE_SH}: --drop-path 0.1")),
    smoothing=(0.1, pub(f"{IN1K_FINETUNE_SH}: --smoothing 0.1")),
    auto_augment=("rand-m9-mstd0.5-inc1", pub(f"{IN1K_FINETUNE_SH}: --aa rand-m9-mstd0.5-inc1")),
    mixup=(0.8, pub(f"{IN1K_FINETUNE_SH}: --mixup 0.8")),
    cutmix=(1.0, pub(f"{IN1K_FINETUNE_SH}: --cutmix 1.0")),
    repeated_aug=(3, pub(f"{IN1K_FINETUNE_SH}: --repeated-aug; {IN1K_LOADER}: RASampler, 3 repeats")),
    opt=("adamw", pub(f"{IN1K_FINETUNE_SH}: --opt adamw")),
    weight_decay=(0.05, pub(f"{IN1K_FINETUNE_SH}: --weight-decay 0.05")),
    base_lr=(5e-4, pub(f"{IN1K_FINETUNE_SH}: --lr 1.0e-3 at 1,024, used unscaled = 5e-4 per 512")),
    base_warmup_lr=(5e-5, pub(f"{IN1K_FINETUNE_PY}: --warmup-lr 1e-4 at 1,024, unscaled = 5e-5 per 512")),
    base_min_lr=(5e-6, pub(f"{IN1K_FINETUNE_PY}: --min-lr 1e-5 at 1,024, unscaled = 5e-6 per 512")),
    batch_size=(1024, pub(f"{IN1K_FINETUNE_SH}: LOCAL_BS=64 on NGPUS=16 = 1,024; here per process")),
    steps=(_IN1K_STEPS, pub(_steps_text(300, IMAGENET_TRAIN_IMAGES, 1024, f"{IN1K_FINETUNE_SH} EPOCHS=300"))),
    warmup_steps=(
        steps_for(5, IMAGENET_TRAIN_IMAGES, 1024),
        pub(_steps_text(5, IMAGENET_TRAIN_IMAGES, 1024, f"{IN1K_FINETUNE_SH} --warmup-epochs 5")),
    ),
    eval_every=(
        10 * _IN1K_EPOCH,
        ours("every 10 epochs; the public script evaluates every epoch", NO_PUBLIC),
    ),
)
PAPER_21K = Profile(
    name="paper-21k",
    pretrain_recipe=_PAPER_21K_PRETRAIN,
    finetune_recipe=_PAPER_21K_FINETUNE,
    study=StudyPlan(
        categories=21_000,
        scaling_categories=(1000, 21_000),
        seeds=(0,),
        dataset="imagefolder:imagenet-1k",
        train_per_class=None,
        rows=("ofdb", "ofdb3d", "scratch"),
        paper_table="table3",
        paper_column="vit_b",
    ),
    data=DataPlan(search=1000, ofdb=1000, fractaldb=1000),
    data_kinds=PAPER.data_kinds,
)

# ---- mini: the whole study on 2 CPU cores -------------------------------------------------------
# The paper's recipe shrunk to 32 px: a 4-layer, 96-wide ViT with patch 8, fractals rendered at
# 96 px and random-resized-cropped to 32, fine-tuned on Fashion-MNIST with 50 images per class.
# Deviations from the paper, each measured by the pilot to learn something in minutes: no
# RandAugment / RandomErasing / Mixup / CutMix, no random flips and milder crops in pre-training,
# average pooling, higher learning rates, 400 pre-training and 200 fine-tuning steps.
# The model shape is written once and shared by both phases.
_MINI_MODEL = dict(
    img_size=(32, ours("32 px, the downstream images' size")),
    patch_size=(8, ours("16 tokens; patch 4 was 3.6x slower per image for the same budget")),
    depth=(4, ours("a 4-layer ViT that learns in minutes on a CPU")),
    embed_dim=(96, ours("96 wide")),
    num_heads=(3, ours("3 heads of 32")),
    drop_path=(0.0, ours("no drop-path for a 4-layer model")),
    # with the class token one seed of two sat on the uniform-prediction plateau for 200+ of 600
    # steps; pooled, both seeds learn at once
    global_pool=("avg", ours("average-pooled patches: the class token stalled one seed of two")),
)
# The paper's batch augmentations stop parts of the study from learning in the budget; measured on
# pilot seeds 0 and 1, 400 pre-training and 200 fine-tuning steps:
# - pre-training (book/pilot/mini-paper-augment.json against mini.json): with RandAugment,
#   RandomErasing 0.25 and Mixup 0.8 / CutMix 1.0, OFDB-8 + fluctuation reached 17.5 and 25 % on its
#   own task (bar 37.5 %) and FractalDB-8 12-16 %, though OFDB-8 with and without random pattern
#   reached 100 %; without them OFDB + fluctuation reached 78-89 % on four seeds.
# - fine-tuning: with them Fashion-MNIST top-1 was 32-33 % from scratch and 43-48 % from OFDB-8,
#   against 47-48 % and 61-64 % without.
_PILOT_AUG = "with it OFDB + fluctuation stayed below its bar in 400 steps (the pilot, in the book)"
_FT_PILOT_AUG = "with it 200 steps reached 32-33 % from scratch against 47-48 % without (pilot seeds 0, 1)"


def _no_heavy_aug(reason: str) -> dict:
    """The paper's batch augmentations off, each value with ``reason``."""
    return dict(
        auto_augment=(None, ours(f"no RandAugment; {reason}")),
        color_jitter=(0.0, ours("no colour jitter (inactive while RandAugment is on in the paper)")),
        re_prob=(0.0, ours(f"no RandomErasing; {reason}")),
        mixup=(0.0, ours(f"no Mixup; {reason}")),
        cutmix=(0.0, ours(f"no CutMix; {reason}")),
        crop_pct=(1.0, ours("32 px images are resized whole, not centre-cropped")),
    )


# The paper's random flips and wide crops stop the varied rows from learning in the budget.
# Measured by the pilot (book/pilot/mini-flips.json against mini.json; and on pilot seeds 0-3):
# with flips (0.5 each) and crops of 35-100 %, OFDB-8 + fluctuation reached 29 and 33 % on its own
# task after 400 steps (bar 37.5 %); with crops of 80-100 % and flips, 36 and 44 %; with neither
# flips nor wide crops, 78-89 % on four seeds, and OFDB-8 98-99 %.
_PILOT_FLIPS = "with flips and 35-100 % crops OFDB + fluctuation stayed below its bar in 400 steps (the pilot, in the book)"
_MINI_PRETRAIN = _PAPER_PRETRAIN.derive(
    **_MINI_MODEL,
    **_no_heavy_aug(_PILOT_AUG),
    categories=(
        8,
        ours("OFDB-8: its one-image rows learn their own task within the budget (the pilot, in the book)"),
    ),
    render_size=(96, ours("96 px renders, random-resized-cropped to 32: fresh masks average out (pilot)")),
    render_points=(24_000, ours("2.6 points per pixel at 96 px (the public 200,000 at 362 px are 1.5)")),
    render_pad=(3, ours("padding for a 96 px image")),
    hflip=(0.0, ours(f"no random flips; {_PILOT_FLIPS}")),
    vflip=(0.0, ours(f"no random flips; {_PILOT_FLIPS}")),
    scale=((0.8, 1.0), ours(f"crops of 80-100 % of the image; {_PILOT_FLIPS}")),
    batch_size=(64, ours("a CPU batch")),
    base_lr=(8e-3, ours("lr = 8e-3 x 64 / 512 = 1e-3 (2e-3 sat on the uniform plateau: pilot)")),
    steps=(
        400,
        ours("400 steps: the default row past its 50 % bar at 8 categories (the pilot, in the book)"),
    ),
    warmup_steps=(100, ours("a long warmup leaves the uniform plateau sooner (pilot)")),
    eval_every=(50, ours("own-task curve: held-out renders every 50 steps", NO_PUBLIC)),
    eval_per_category=(20, ours("160 held-out images at 8 categories", NO_PUBLIC)),
    log_every=(25, ours("log cadence", NO_PUBLIC)),
    checkpoint_every=(100, ours("checkpoint cadence", NO_PUBLIC)),
    threads=(1, ours("one torch thread: the study's runs use one core each", NO_PUBLIC)),
    num_workers=(
        0,
        ours("samples drawn in the training process: a loader process cost more than it saved", NO_PUBLIC),
    ),
)
_MINI_FINETUNE = _PAPER_FINETUNE.derive(
    **_MINI_MODEL,
    **_no_heavy_aug(_FT_PILOT_AUG),
    dataset=("fashion-mnist", ours("Fashion-MNIST: offline from Debian, 28 px")),
    train_per_class=(50, ours("50 images per class: the few-label regime where pre-training shows")),
    test_per_class=(None, ours("the whole 10,000-image test set, evaluated once at the end")),
    scale=((0.6, 1.0), ours("a milder crop range for 28 px clothes")),
    # the paper's optimizer (SGD, Nesterov) at a 20x higher base lr for a 200-step schedule. A pilot
    # of fine-tuning on the study's second pilot run: at lr 0.05 two of 42 fine-tunings fell far
    # behind (37.7 and 42.6 % against 53-60 %); at 0.025 the same two reached 56.6 and 53.3 % and
    # none fell behind scratch; with AdamW (lr 1e-3) scratch caught up with pre-trained (59.2 %
    # against 58.0-59.7 %), as the paper's SGD does not
    base_lr=(
        0.2,
        ours(
            "lr = 0.2 x 64 / 512 = 0.025 for a 200-step schedule; 0.05 left 2 of 42 fine-tunings far behind (pilot)"
        ),
    ),
    batch_size=(64, ours("a CPU batch")),
    steps=(200, ours("200 steps")),
    warmup_steps=(15, ours("warmup for 200 steps")),
    eval_every=(0, ours("the endpoint: evaluated once, after the last step", NO_PUBLIC)),
    log_every=(25, ours("log cadence", NO_PUBLIC)),
    checkpoint_every=(100, ours("checkpoint cadence", NO_PUBLIC)),
    eval_batch_size=(500, ours("evaluation batch", NO_PUBLIC)),
    num_workers=(0, ours("samples drawn in the training process", NO_PUBLIC)),
    threads=(1, ours("one torch thread", NO_PUBLIC)),
)
MINI = Profile(
    name="mini",
    pretrain_recipe=_MINI_PRETRAIN,
    finetune_recipe=_MINI_FINETUNE,
    study=StudyPlan(
        categories=8,
        scaling_categories=(2, 4, 8),
        # seeds 0-5 served the design's pilots (the fine-tuning rate and the pre-training flips and
        # crops were chosen on them); seeds 6-11 decided the claims of the previous design (random
        # flips, 35-100 % crops), in which OFDB + fluctuation did not learn its own task (and was
        # read, in worker processes that had run the default row, on the default row's renders: an
        # evaluation-cache fault fixed with this design); this design's claims are decided on six
        # fresh seeds
        seeds=(12, 13, 14, 15, 16, 17),
        dataset="fashion-mnist",
        train_per_class=50,
        # the primary claims' rows; texture, both, rotation, 3D and 1p-frac are opt-in (--rows).
        # FractalDB does not learn its own task in this budget (19 % on pilot seeds 0 and 1 against
        # a bar of 37.5 %; with the previous design's flips, 40 % after 1,600 steps on seed 0): its
        # claim is restated as data efficiency at equal small compute
        rows=("scratch", "ofdb", "ofdb+pattern", "fractaldb", "ofdb+fluctuation"),
        # two runs at once: 1.4x the throughput of one on the 2-core machine (two vCPUs that behave
        # like SMT siblings), measured with nothing else running
        workers=2,
    ),
    # OFDB-1k in full, FractalDB on 10 categories
    data=DataPlan(search=1000, ofdb=1000, fractaldb=10),
)

# ---- smoke: seconds, for tests ------------------------------------------------------------------
_SMOKE_MODEL = dict(
    depth=(1, ours("seconds: one block")),
    embed_dim=(32, ours("seconds: 32 wide")),
    num_heads=(2, ours("seconds: 2 heads")),
)
_SMOKE_RUN = dict(
    batch_size=(8, ours("seconds")),
    steps=(2, ours("two steps")),
    warmup_steps=(1, ours("one warmup step")),
    log_every=(1, ours("every step", NO_PUBLIC)),
    checkpoint_every=(1, ours("every step", NO_PUBLIC)),
    num_workers=(0, ours("in-process loading", NO_PUBLIC)),
)
_SMOKE_PRETRAIN = _MINI_PRETRAIN.derive(
    **_SMOKE_MODEL,
    **_SMOKE_RUN,
    categories=(4, ours("four categories")),
    render_size=(32, ours("32 px renders")),
    render_points=(1_500, ours("points for a 32 px image")),
    eval_batch_size=(16, ours("evaluation batch", NO_PUBLIC)),
)
_SMOKE_FINETUNE = _MINI_FINETUNE.derive(
    **_SMOKE_MODEL,
    **_SMOKE_RUN,
    train_per_class=(2, ours("two images per class")),
    test_per_class=(None, ours("the whole (test-sized) set")),
    eval_every=(0, ours("at the end", NO_PUBLIC)),
    eval_batch_size=(64, ours("evaluation batch", NO_PUBLIC)),
)
SMOKE = Profile(
    name="smoke",
    pretrain_recipe=_SMOKE_PRETRAIN,
    finetune_recipe=_SMOKE_FINETUNE,
    study=StudyPlan(
        categories=4,
        scaling_categories=(2, 4),
        seeds=(0,),
        dataset="fashion-mnist",
        train_per_class=2,
        rows=ALL_ROWS,
    ),
    data=DataPlan(search=10, ofdb=10, fractaldb=1, fractaldb_renders=2),
)

PROFILES = {p.name: p for p in (SMOKE, MINI, PAPER, PAPER_21K)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ParamError("profile", f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]


def data_kind(data: str) -> str:
    """The kind of a ``data`` setting: ``ofdb``, ``fractaldb``, ``1pfrac``, ``multiview`` or ``folder``."""
    if data in ("ofdb", "fractaldb", "1pfrac"):
        return data
    return "multiview" if str(data).startswith("multiview:") else "folder"


def phase_config(profile: str, phase: str, **overrides) -> TrainConfig:
    """The profile's config for ``phase`` with ``overrides`` (None values are ignored).

    Pre-training on a data kind with settings of its own at this profile (``Profile.data_kinds``:
    1p-frac renders at 512 px with 100,000 points at ``paper``) takes them unless ``overrides``
    sets them.
    """
    prof = get_profile(profile)
    base = prof.recipe(phase).cfg
    clean = {k: v for k, v in overrides.items() if v is not None}
    if phase == "pretrain":
        kind = data_kind(clean.get("data", base.data))
        if kind in prof.data_kinds:
            clean = {**prof.kind_settings(kind), **clean}
    return base.replace(**clean)
