"""Training profiles as data: ``smoke`` (tests), ``mini`` (the whole study on 2 CPU cores), ``paper``.

One code path runs them all; a profile only changes numbers. ``TrainConfig`` holds what a user may
set for one phase (pre-training or fine-tuning); ``resolve`` is the one place derived values live:
the global batch (per-process batch x world size) and the learning rates scaled by
``global_batch / 512``, written out explicitly so nothing is rescaled silently.

Sources of the ``paper`` values (see reference/ofdb-facts.md sections 6-7): "facts 6" is the
pre-training table of the public OFDB/FractalDB training scripts (timm/DeiT based), "facts 7" the
fine-tuning recipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ParamError

PHASES = ("pretrain", "finetune")
#: Every row of the instances-vs-augmentation study (experiments.ROWS). The mini profile leaves
#: ofdb3d out by default to stay within 45 minutes; pass rows=[..., "ofdb3d"] to add it.
ALL_ROWS = (
    "fractaldb",
    "ofdb",
    "ofdb+fluctuation",
    "ofdb+rotation",
    "ofdb+pattern",
    "ofdb+texture",
    "ofdb+both",
    "ofdb3d",
    "scratch",
)
#: Learning rates in configs are given for this global batch and scaled linearly (DeiT convention).
LR_REFERENCE_BATCH = 512
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


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (one phase). Units: steps = optimizer steps.

    ``batch_size`` is per process; the global batch is ``batch_size * world_size``.
    ``base_lr``, ``base_warmup_lr``, ``base_min_lr`` are for a global batch of 512.
    """

    phase: str = "pretrain"
    # model
    model: str = "vit_tiny_patch16_224"
    img_size: int = 224
    patch_size: int = 16
    depth: int | None = None  # None: the timm model's own value
    embed_dim: int | None = None
    num_heads: int | None = None
    drop_path: float = 0.1
    global_pool: str | None = None  # None: the model's own ("token" for ViT); "avg" pools the patches
    # pre-training data
    data: str = "ofdb"  # ofdb | fractaldb | PATH (ImageFolder) | multiview:PATH (3D-OFDB views)
    categories: int = 1000
    augment: str = "default"  # augment.INSTANCE_AUGMENTS
    params: str | None = None  # folder of NNNNN.csv categories; None: exact search, cached
    render_size: int = 362
    render_points: int = 200_000
    render_pad: int = 6
    a_weight: float = 0.2
    # fine-tuning data
    dataset: str = "cifar100"
    data_root: str | None = None
    download: bool = False
    train_per_class: int | None = None
    test_per_class: int | None = None  # evaluate on a fixed draw of this many test images per class
    subset_seed: int = 0  # which K images per class: fixed across run seeds, so seeds vary training only
    init: str = "scratch"  # fine-tuning: a pre-training run folder or its checkpoint.pt
    # transforms (timm.data.create_transform)
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    interpolation: str = "bicubic"
    hflip: float = 0.5
    vflip: float = 0.5
    auto_augment: str | None = "rand-m9-mstd0.5-inc1"
    color_jitter: float = 0.4
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    re_prob: float = 0.5
    re_mode: str = "pixel"
    # batch mixing (timm.data.Mixup; built only when mixup or cutmix > 0)
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    smoothing: float = 0.1
    # optimisation
    opt: str = "adamw"
    base_lr: float = 1e-3
    base_warmup_lr: float = 1e-6
    base_min_lr: float = 1e-5
    weight_decay: float = 0.05
    momentum: float = 0.9
    batch_size: int = 256
    steps: int = 240_000
    warmup_steps: int = 15
    # bookkeeping
    seed: int = 0
    eval_every: int = 0  # 0: only at the end
    log_every: int = 50
    checkpoint_every: int = 1000
    eval_batch_size: int = 256
    num_workers: int = 8
    # PIPELINES; the two draw different samples from the same distributions, so an explicit choice
    # keys the run, while "auto" is left out of the key like the device it follows (result_dict)
    pipeline: str = "auto"
    compile: bool = False
    threads: int = 0  # torch intra-op threads; 0: torch's default (all cores)

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
        wherever the runs live (another ``--root``, a moved or copied folder).

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


@dataclass(frozen=True)
class StudyPlan:
    """Which rows and sizes the notebooks run at a profile (see experiments.py)."""

    categories: int  # categories of the instances-vs-augmentation rows
    scaling_categories: tuple[int, ...]  # the category-scaling sweep
    seeds: tuple[int, ...]
    dataset: str
    train_per_class: int | None
    # rows of the instances-vs-augmentation study (experiments.ROWS); None: all but ofdb3d
    rows: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    pretrain: TrainConfig
    finetune: TrainConfig
    study: StudyPlan


# ---- paper: every value from the public recipe --------------------------------------------------
_PAPER_PRETRAIN = TrainConfig(
    phase="pretrain",
    model="vit_tiny_patch16_224",  # facts 6: ViT-Tiny/16 at 224 (ViT-Base/16 for 21k)
    img_size=224,  # facts 6
    patch_size=16,  # facts 6: ViT-Tiny/16 at 224
    drop_path=0.1,  # facts 6
    data="ofdb",  # facts 2: 2D-OFDB
    categories=1000,  # OFDB-1k (facts 2)
    render_size=362,  # facts 2: 362 px
    render_points=200_000,  # facts 2: 200,000 points
    render_pad=6,  # facts 2: pad 6
    a_weight=0.2,  # facts 2: every map's a x 0.2 (public generator)
    scale=(0.08, 1.0),  # facts 6: RandomResizedCrop scale
    ratio=(3 / 4, 4 / 3),  # facts 6: RandomResizedCrop ratio
    interpolation="bicubic",  # facts 6: bicubic
    hflip=0.5,  # facts 6
    vflip=0.5,  # facts 6: vertical flip 0.5
    auto_augment="rand-m9-mstd0.5-inc1",  # facts 6: RandAugment
    color_jitter=0.4,  # facts 6: set, but inactive while RandAugment is on
    mean=(0.5, 0.5, 0.5),  # facts 6
    std=(0.5, 0.5, 0.5),  # facts 6: normalise mean = std = 0.5
    re_prob=0.5,  # facts 6: RandomErasing p 0.5
    re_mode="pixel",  # facts 6: RandomErasing pixel mode
    mixup=0.8,  # facts 6: Mixup 0.8
    cutmix=1.0,  # facts 6: CutMix 1.0
    mixup_prob=1.0,  # facts 6: prob 1.0
    mixup_switch_prob=0.5,  # facts 6: switch 0.5
    smoothing=0.1,  # facts 6: label smoothing 0.1
    opt="adamw",  # facts 6: AdamW
    weight_decay=0.05,  # facts 6 (no decay on 1-D params: timm's default)
    base_lr=1e-3,  # facts 6: base lr 1e-3 per 512 (5e-4 at 256)
    base_warmup_lr=1e-6,  # facts 6: warmup from 1e-6 (scaled by batch/512)
    base_min_lr=1e-5,  # facts 6: min lr 1e-5 (scaled by batch/512)
    # facts 6: global batch 256 (8 GPUs x 32). Here per process: one device reproduces 256;
    # under torchrun on 8 GPUs pass batch_size=32.
    batch_size=256,
    # facts 6: 80,000 epochs of 1,000 images, 3 steps per epoch (8 x floor(125 / 32)), = 240k;
    # warmup 5 epochs = 15 steps.
    steps=240_000,
    warmup_steps=15,
    eval_every=10_000,  # ours: not in the recipe
    log_every=100,  # ours
    checkpoint_every=2_000,  # ours
    num_workers=8,  # ours: data-loading processes per GPU
)
_PAPER_FINETUNE = _PAPER_PRETRAIN.replace(
    phase="finetune",
    dataset="cifar100",  # Table 1 (facts 8)
    drop_path=0.1,  # facts 6 (the fine-tuning script keeps the model's drop-path)
    vflip=0.0,  # facts 7: vertical flip 0
    mean=(0.485, 0.456, 0.406),  # facts 7: ImageNet mean
    std=(0.229, 0.224, 0.225),  # facts 7: ImageNet std
    re_prob=0.25,  # facts 7: RandomErasing 0.25
    opt="sgd",  # facts 7: SGD
    momentum=0.9,  # facts 7: momentum 0.9
    weight_decay=1e-4,  # facts 7 (timm's "sgd" is Nesterov)
    base_lr=0.01,  # facts 7: 0.01 x batch / 512
    base_warmup_lr=1e-6,  # facts 6-7: warmup lr (scaled)
    base_min_lr=1e-5,  # facts 6-7: min lr (scaled)
    batch_size=768,  # facts 7: lr 0.015 at 768
    # facts 7: 1000 epochs of CIFAR's 50,000 images at 768 = 65,104 steps; warmup 10 epochs = 651.
    steps=65_104,
    warmup_steps=651,
    eval_every=651,  # ours: every 10 epochs
)
PAPER = Profile(
    name="paper",
    pretrain=_PAPER_PRETRAIN,
    finetune=_PAPER_FINETUNE,
    study=StudyPlan(
        categories=1000,
        scaling_categories=(10, 100, 1000),
        seeds=(0,),
        dataset="cifar100",
        train_per_class=None,
        rows=ALL_ROWS,
    ),
    # measured (benchmarks/bench_train.py --paper-gpu): one H200 runs the ViT-Tiny step at about
    # 8,400 images/s (12,200 compiled): 2.0 h (1.4 h) for 240k steps at 256, if the data keeps up;
    # the augmentation runs at 250-410 images/s per CPU worker, so that needs 20-35 workers.
)

# ---- paper-21k: the 21k-category pre-training (Table 3) -------------------------------------------
_PAPER_21K_PRETRAIN = _PAPER_PRETRAIN.replace(
    model="vit_base_patch16_224",  # facts 6: ViT-Base/16 for 21k
    categories=21_000,  # facts 1: OFDB-21k, the same search continued to 21,000
    # facts 6: 15,238 epochs of 21,000 images at global batch 1,024 = about 300k iterations; per
    # process on one device 1,024 (under torchrun on 8 GPUs pass batch_size=128)
    batch_size=1024,
    steps=300_000,
    warmup_steps=103,  # facts 6: warmup 5 epochs = 5 x 21,000 / 1,024 steps
)
PAPER_21K = Profile(
    name="paper-21k",
    pretrain=_PAPER_21K_PRETRAIN,
    # facts 7's recipe; Table 3 fine-tunes on ImageNet-1k: pass --dataset imagefolder:PATH
    finetune=_PAPER_FINETUNE.replace(model="vit_base_patch16_224"),
    study=StudyPlan(
        categories=21_000,
        scaling_categories=(1000, 21_000),
        seeds=(0,),
        dataset="cifar100",
        train_per_class=None,
    ),
)

# ---- mini: the whole study on 2 CPU cores -------------------------------------------------------
# The paper's recipe shrunk to 32 px: a 4-layer, 96-wide ViT with patch 8 (16 tokens; patch 4 was
# 3.6x slower per image for the same budget), fractals rendered at 48 px and random-resized-cropped
# to 32, fine-tuned on Fashion-MNIST with 50 images per class. Deviations from the paper, each to
# learn something in minutes: no RandAugment / RandomErasing / Mixup, average pooling, higher
# learning rates, a fixed 3,000-image test draw (300 per class).
#
# Measured at 600 pre-training steps (2 seeds, OFDB-100 default): fine-tuned top-1 54.3 / 54.8 % vs 50.5 / 49.1 %
# from scratch: gap +4.8 points, seed spread 0.5 (pre-trained) and 1.4 (scratch).
# Whole study (2 seeds; instances-vs-augmentation: 7 pre-trainings and 8 fine-tunings per seed;
# category scaling at 10 and 30 adds 2 + 2 per seed, the 100-category run is shared): MINI below.
_MINI_PRETRAIN = _PAPER_PRETRAIN.replace(
    img_size=32,
    patch_size=8,
    depth=4,
    embed_dim=96,
    num_heads=3,
    drop_path=0.0,
    # average-pooled patches instead of the class token: with the class token one seed of two sat
    # on the uniform-prediction plateau for 200+ of 600 steps; pooled, both seeds learn at once
    global_pool="avg",
    categories=100,
    render_size=48,
    render_points=6_000,
    render_pad=2,
    scale=(0.35, 1.0),
    auto_augment=None,
    color_jitter=0.0,
    re_prob=0.0,
    mixup=0.0,
    cutmix=0.0,
    smoothing=0.1,
    batch_size=64,
    base_lr=8e-3,  # lr = 8e-3 x 64 / 512 = 1e-3 (2e-3 stalled one seed)
    # 450 steps: 600 (where the gap below was measured) made the whole study about 55 minutes here
    steps=450,
    warmup_steps=50,
    eval_every=0,
    log_every=25,
    checkpoint_every=200,
    eval_batch_size=256,
    # one torch thread plus one loading process fill 2 cores; two OpenMP threads spinning against
    # other work ran 5x slower than one in our measurement on a shared machine
    threads=1,
    num_workers=1,
)
_MINI_FINETUNE = _PAPER_FINETUNE.replace(
    img_size=32,
    patch_size=8,
    depth=4,
    embed_dim=96,
    num_heads=3,
    drop_path=0.0,
    global_pool="avg",
    dataset="fashion-mnist",
    train_per_class=50,
    test_per_class=300,
    scale=(0.6, 1.0),
    hflip=0.5,
    auto_augment=None,
    color_jitter=0.0,
    re_prob=0.0,
    mixup=0.0,
    cutmix=0.0,
    smoothing=0.1,
    # the paper's optimizer (SGD, Nesterov) at a 40x higher base lr for a 200-step schedule:
    # lr = 0.4 x 64 / 512 = 0.05. With AdamW (lr 1e-3) scratch caught up with pre-trained.
    opt="sgd",
    base_lr=0.4,
    weight_decay=1e-4,
    batch_size=64,
    steps=200,
    warmup_steps=15,
    eval_every=100,
    log_every=25,
    checkpoint_every=100,
    eval_batch_size=500,
    num_workers=1,
    threads=1,
)
MINI = Profile(
    name="mini",
    pretrain=_MINI_PRETRAIN,
    finetune=_MINI_FINETUNE,
    study=StudyPlan(
        categories=100,
        scaling_categories=(10, 30, 100),
        seeds=(0, 1),
        dataset="fashion-mnist",
        train_per_class=50,
    ),
    # 2 seeds x (9 pre-trainings of 28,800 images + 10 fine-tunings of 12,800 images + 2 evals of
    # 3,000). Measured with `make study` on the 2-core development machine (2026-11-26): 33 min in
    # all (pre-training 61-76 s, fine-tuning about 31 s per run); fine-tuned top-1 from OFDB-100
    # 54.0 % (2 seeds, spread 2.0) against 49.8 % from scratch (spread 1.4): gap 4.2 points.
    # (With 600 pre-training steps the study took about 55 minutes.)
)

# ---- smoke: seconds, for tests ------------------------------------------------------------------
_SMOKE_PRETRAIN = _MINI_PRETRAIN.replace(
    depth=1,
    embed_dim=32,
    num_heads=2,
    categories=4,
    render_size=32,
    render_points=1_500,
    batch_size=8,
    steps=2,
    warmup_steps=1,
    log_every=1,
    checkpoint_every=1,
    eval_batch_size=16,
    num_workers=0,
)
_SMOKE_FINETUNE = _MINI_FINETUNE.replace(
    depth=1,
    embed_dim=32,
    num_heads=2,
    train_per_class=2,
    test_per_class=None,
    batch_size=8,
    steps=2,
    warmup_steps=1,
    eval_every=0,
    log_every=1,
    checkpoint_every=1,
    eval_batch_size=64,
    num_workers=0,
)
SMOKE = Profile(
    name="smoke",
    pretrain=_SMOKE_PRETRAIN,
    finetune=_SMOKE_FINETUNE,
    study=StudyPlan(
        categories=4,
        scaling_categories=(2, 4),
        seeds=(0,),
        dataset="fashion-mnist",
        train_per_class=2,
        rows=ALL_ROWS,
    ),
)

PROFILES = {p.name: p for p in (SMOKE, MINI, PAPER, PAPER_21K)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ParamError("profile", f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]


def phase_config(profile: str, phase: str, **overrides) -> TrainConfig:
    """The profile's config for ``phase`` with ``overrides`` (None values are ignored)."""
    if phase not in PHASES:
        raise ParamError("phase", f"must be one of {', '.join(PHASES)}, got {phase!r}")
    prof = get_profile(profile)
    base = prof.pretrain if phase == "pretrain" else prof.finetune
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})
