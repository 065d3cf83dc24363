"""Training profiles as data: ``smoke`` (tests), ``mini`` (the study on 2 CPU cores), ``paper``,
``paper-21k``; every value with its source.

One code path runs them all; a profile only changes numbers. ``TrainConfig`` holds what a user may
set for one phase (pre-training or fine-tuning); its defaults are the paper's pre-training recipe,
each written beside its source (``config.sources``). A profile derives its two phases from
those defaults, citing every value it changes, so every value of every profile has a source
(``Profile.sources``; ``python -m ofdb_study profile show NAME`` prints them). ``resolve`` is the
one place derived values live: the global batch (per-process batch x world size) and the learning
rates scaled by ``global_batch / 512``, written out explicitly so nothing is rescaled silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ParamError
from ..fractals.defaults import (
    FRACTALDB_RENDERS,
    OFDB_A_WEIGHT,
    OFDB_PAD,
    OFDB_POINTS,
    OFDB_SIZE,
    ONEPFRAC_DELTA,
    ONEPFRAC_SIGMA,
)
from .sources import (
    GEN_2D,
    GRAY_YAML,
    MAIN_PY,
    MODEL_YAML,
    NO_PUBLIC,
    OFDB_PAPER,
    ONEPFRAC_GEN,
    ONEPFRAC_PAPER,
    ONEPFRAC_SH,
    PRETRAIN_SH,
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
#: multi-view tree (``multiview:PATH``). A row may set recipe values of its own at a profile
#: (``StudyPlan.row_settings``: ``ofdb+aug`` and ``ofdb+fluctuation+aug`` take the paper's augmentation
#: where the profile's recipe leaves it off). A profile's ``StudyPlan.rows`` picks among them.
#: The data of the positive control row: the downstream set's control pool, written as an ImageFolder
#: tree by the study (``study.readouts.control_tree``).
CONTROL_POOL = "control-pool"
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
    "ofdb+aug": ("ofdb", "default"),
    "ofdb+fluctuation+aug": ("ofdb", "fluctuation"),
    "supervised": (CONTROL_POOL, "default"),
}
#: The rows only a readout study runs (``StudyPlan.endpoint == "readout"``): the augmented arms of
#: its 2x2 and the positive control.
READOUT_ROWS = ("ofdb+aug", "ofdb+fluctuation+aug", "supervised")
#: Every row of the fine-tuning study (``paper`` and ``smoke`` run them all).
ALL_ROWS = tuple(r for r in ROWS if r not in READOUT_ROWS)
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

#: Where training batches are made (``train.engine``): ``loader`` (timm's per-image transform in
#: DataLoader workers, the reference), ``batched`` (sources and augmentation on whole batches on the
#: model's device, ``train.batched``), ``auto`` (batched for pre-training on CUDA, the loader
#: otherwise: ``TrainConfig.pipeline_on``). A run records the one that made its batches
#: (``TrainConfig.ran_with``), and its key follows (``result_dict``).
PIPELINES = ("loader", "batched", "auto")

#: Autocast dtypes of the forward pass on CUDA (``TrainConfig.precision``; the CPU runs fp32).
PRECISIONS = ("bf16", "fp16", "fp32")
#: Settings added after runs were cached: a run's key holds them only where they differ from this
#: default (``TrainConfig.result_dict``), so the keys of configs that keep the default stay.
KEYED_UNLESS_DEFAULT = {"decay_embed_tokens": False, "precision": "bf16"}

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


# ---- one check per setting ----------------------------------------------------------------------
# Each TrainConfig field names its check beside its default (``_c(..., check=...)``); ``TrainConfig``
# applies them on construction and ``replace``, so a ``--set`` value, a flag, a profile and a
# config.yaml read back all pass the same one. The bounds are sanity limits far above any recipe
# (the paper's longest schedule is 375,300 steps at a global batch of 1,024):
#: Pixels of an image side, a patch, a render or its padding.
MAX_PIXELS = 16_384
#: Transformer blocks, width and heads of a ViT.
MAX_DEPTH, MAX_WIDTH, MAX_HEADS = 1_000, 65_536, 1_024
#: Categories (five-digit names, ``fractals.defaults.MAX_CATEGORIES``).
MAX_CATEGORIES = 100_000
#: Points of one fractal render.
MAX_POINTS = 10**9
#: Held-out renders per category of pre-training's own-task evaluation.
MAX_EVAL_PER_CATEGORY = 10_000
#: Images per class of a downstream subset.
MAX_IMAGES = 10**8
#: Optimizer steps (and the step cadences): 100 million, over 250 times the paper's longest run.
MAX_STEPS = 10**8
#: Images in one batch per process (what fits is checked against memory by ``train.engine``).
MAX_BATCH = 10**9
#: Seeds: non-negative signed 64-bit integers (``seeds.mix_seed`` reads them so).
MAX_SEED = 2**63 - 1
#: Data-loading processes and torch threads of one process.
MAX_WORKERS = 1_024
#: Repeats of a sampled index (repeated augmentation).
MAX_REPEATS = 64
#: Unbounded non-negative factors (Mixup and CutMix alphas, weight decay, colour jitter, crop aspect
#: ratios, normalisation std, 1p-frac's delta and sigma, the OFDB weight on ``a``).
MAX_FACTOR = 1_000.0
#: Learning rates for a global batch of 512.
MAX_LR = 100.0
#: timm's resize interpolations and random-erasing modes.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos", "random")
RE_MODES = ("const", "rand", "pixel")
#: Text settings (names, paths) longer than this are refused.
MAX_TEXT = 4_096


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bounds(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _inside(v, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def _int(lo: int, hi: int, *, optional: bool = False):
    """An integer in [lo, hi] (None too where ``optional``)."""

    def check(name, v):
        if v is None and optional:
            return
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            null = " (or null)" if optional else ""
            raise ParamError(name, f"must be an integer >= {lo} and at most {hi:,}{null}, got {v!r}")

    return check


def _real(lo, hi, *, lo_open: bool = False, hi_open: bool = False):
    """A finite number in the interval."""

    def check(name, v):
        if not _is_real(v) or not _inside(v, lo, hi, lo_open, hi_open):
            raise ParamError(
                name, f"must be a finite number in {_bounds(lo, hi, lo_open, hi_open)}, got {v!r}"
            )

    return check


def _numbers(n: int, lo, hi, *, lo_open: bool = False):
    """``n`` finite numbers, each in the interval."""

    def check(name, v):
        if (
            not isinstance(v, (tuple, list))
            or len(v) != n
            or not all(_is_real(x) and _inside(x, lo, hi, lo_open, False) for x in v)
        ):
            raise ParamError(name, f"must be {n} finite numbers in {_bounds(lo, hi, lo_open)}, got {v!r}")

    return check


def _ordered(lo, hi, *, lo_open: bool = False):
    """Two finite numbers ``[low, high]`` in the interval, low <= high."""
    two = _numbers(2, lo, hi, lo_open=lo_open)

    def check(name, v):
        two(name, v)
        if v[0] > v[1]:
            raise ParamError(name, f"must be [low, high] with low <= high, got {list(v)!r}")

    return check


def _choice(options: tuple[str, ...]):
    def check(name, v):
        if v not in options:
            raise ParamError(name, f"must be one of {', '.join(options)}, got {v!r}")

    return check


def _text(*, optional: bool = False, empty: bool = False):
    """Text of at most ``MAX_TEXT`` characters (not empty unless ``empty``; None where ``optional``)."""

    def check(name, v):
        if v is None and optional:
            return
        if not isinstance(v, str) or len(v) > MAX_TEXT or (not v and not empty) or "\0" in v:
            raise ParamError(name, f"must be text of 1 to {MAX_TEXT:,} characters, got {str(v)[:60]!r}")

    return check


def _bool():
    def check(name, v):
        if not isinstance(v, bool):
            raise ParamError(name, f"must be true or false, got {v!r}")

    return check


def _c(value, cite: Cite, check=None):
    """A dataclass field whose default is ``value``, with its source and its check (a
    ``check(name, value)`` that raises ParamError for a value the setting does not take) in the
    metadata."""
    return field(default=value, metadata={"cite": cite, "check": check})


_OFDB_STEPS = steps_for(80_000, 1000, 256)
_OFDB_WARMUP = steps_for(5, 1000, 256)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (one phase). Units: steps = optimizer steps.

    The defaults are the paper's OFDB-1k pre-training recipe, each with its source in the field's
    metadata (``cite``). ``batch_size`` is per process; the global batch is ``batch_size *
    world_size``. ``base_lr``, ``base_warmup_lr``, ``base_min_lr`` are for a global batch of 512.

    Each field names its check beside its default (``check=``: the range, finiteness, length and
    order of its values, with the sanity limits ``MAX_*`` above), applied on construction and by
    ``replace``: ParamError naming the field for a value it does not take.
    """

    phase: str = _c("pretrain", pub(f"{PRETRAIN_SH}: mode=pretrain"), check=_choice(PHASES))
    # model
    model: str = _c("vit_tiny_patch16_224", pub(f"{PRETRAIN_SH}: model.arch.model_name"), check=_text())
    img_size: int = _c(224, pub(f"{GRAY_YAML}: transform.input_size 224"), check=_int(1, MAX_PIXELS))
    patch_size: int = _c(
        16, pub("the model name's /16 (timm ViT-Tiny/16, ViT-B/16)"), check=_int(1, MAX_PIXELS)
    )
    depth: int | None = _c(
        None,
        pub("None = the timm model's own (12 blocks for ViT-Tiny and ViT-B)"),
        check=_int(1, MAX_DEPTH, optional=True),
    )
    embed_dim: int | None = _c(
        None,
        pub("None = the timm model's own (192 for ViT-Tiny, 768 for ViT-B)"),
        check=_int(1, MAX_WIDTH, optional=True),
    )
    num_heads: int | None = _c(
        None,
        pub("None = the timm model's own (3 for ViT-Tiny, 12 for ViT-B)"),
        check=_int(1, MAX_HEADS, optional=True),
    )
    drop_path: float = _c(0.1, pub(f"{MODEL_YAML}: arch.drop_path_rate 0.1"), check=_real(0, 1, hi_open=True))
    global_pool: str | None = _c(
        None, pub("None = the timm ViT's own: the class token"), check=_text(optional=True, empty=True)
    )
    # pre-training data: ofdb | fractaldb | 1pfrac | PATH (ImageFolder) | multiview:PATH (3D views)
    data: str = _c("ofdb", pub(f"{OFDB_PAPER}, Table 1: 2D-OFDB"), check=_text())
    categories: int = _c(
        1000, pub(f"{PRETRAIN_SH}: data.baseinfo.num_classes=1000"), check=_int(1, MAX_CATEGORIES)
    )
    augment: str = _c(
        "default", pub(f"{OFDB_PAPER}, Table 1: 'default only'"), check=_text()
    )  # augment.INSTANCE_AUGMENTS
    params: str | None = _c(
        None,
        pub(f"None = our exact re-run of {GEN_2D} param_search/ifs_search.py (seed 1)"),
        check=_text(optional=True, empty=True),
    )
    render_size: int = _c(
        OFDB_SIZE, pub(f"{GEN_2D} fractal_renderer/make_2dofdb.py: 362 x 362"), check=_int(1, MAX_PIXELS)
    )
    render_points: int = _c(
        OFDB_POINTS, pub(f"{GEN_2D} make_2dofdb.py: 200,000 points"), check=_int(1, MAX_POINTS)
    )
    render_pad: int = _c(OFDB_PAD, pub(f"{GEN_2D} make_2dofdb.py: pad 6"), check=_int(0, MAX_PIXELS))
    a_weight: float = _c(
        OFDB_A_WEIGHT,
        pub(
            f"{GEN_2D}: default --weight_csv weights/weights_0.4.csv, its first row, a x 0.2 (one_ins.csv is all ones)"
        ),
        check=_real(0, MAX_FACTOR),
    )
    # pre-training's own-task evaluation: held-out renders per category (fresh patch masks; for
    # FractalDB held-out instances), at the end of the run and every ``eval_every`` steps
    eval_per_category: int = _c(
        10,
        ours("held-out renders per category for the own-task top-1", NO_PUBLIC),
        check=_int(1, MAX_EVAL_PER_CATEGORY),
    )
    delta: float = _c(
        ONEPFRAC_DELTA,
        pub(f"{ONEPFRAC_GEN}: --delta 0.1 (1p-frac: perturbation strength)"),
        check=_real(0, MAX_FACTOR),
    )
    sigma: float = _c(
        ONEPFRAC_SIGMA,
        pub(f"{ONEPFRAC_PAPER} table and {ONEPFRAC_GEN} default 3.5 ({ONEPFRAC_SH} passes 4.0)"),
        check=_real(0, MAX_FACTOR, lo_open=True),
    )
    # fine-tuning data
    dataset: str = _c("cifar100", pub(f"{OFDB_PAPER}, Table 1: CIFAR-100"), check=_text())
    data_root: str | None = _c(
        None, ours("where the downstream files are", NO_PUBLIC), check=_text(optional=True, empty=True)
    )
    download: bool = _c(False, ours("never download unless asked", NO_PUBLIC), check=_bool())
    train_per_class: int | None = _c(
        None, pub("None = the whole training set"), check=_int(1, MAX_IMAGES, optional=True)
    )
    test_per_class: int | None = _c(
        None, pub("None = the whole test set"), check=_int(1, MAX_IMAGES, optional=True)
    )
    subset_seed: int | None = _c(
        None,
        ours(
            "which K images per class when train_per_class is set; None: drawn from the run's seed, so "
            "the arms of one seed share a subset and the seeds sample subsets",
            NO_PUBLIC,
        ),
        check=_int(0, MAX_SEED, optional=True),
    )
    init: str = _c(
        "scratch",
        ours(
            "fine-tuning: a pre-training run folder, its checkpoint.pt, an export folder, or scratch",
            NO_PUBLIC,
        ),
        check=_text(optional=True, empty=True),
    )
    # transforms (timm.data.create_transform)
    scale: tuple[float, float] = _c(
        (0.08, 1.0),
        pub(f"{PRETRAIN_SH}: data.transform.scale=[0.08,1.0]"),
        check=_ordered(0, 1, lo_open=True),
    )
    ratio: tuple[float, float] = _c(
        (3 / 4, 4 / 3),
        pub(f"{PRETRAIN_SH}: data.transform.ratio=[0.75,1.3333]"),
        check=_ordered(0, MAX_FACTOR, lo_open=True),
    )
    interpolation: str = _c(
        "bicubic", pub(f"{GRAY_YAML}: transform.interpolation bicubic"), check=_choice(INTERPOLATIONS)
    )
    hflip: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.transform.hflip=0.5"), check=_real(0, 1))
    vflip: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.transform.vflip=0.5"), check=_real(0, 1))
    auto_augment: str | None = _c(
        "rand-m9-mstd0.5-inc1",
        pub(f"{PRETRAIN_SH}: data.transform.auto_augment"),
        check=_text(optional=True, empty=True),
    )
    color_jitter: float = _c(
        0.4,
        pub(f"{PRETRAIN_SH}: data.transform.color_jitter=0.4 (inactive while RandAugment is on)"),
        check=_real(0, MAX_FACTOR),
    )
    mean: tuple[float, float, float] = _c(
        (0.5, 0.5, 0.5), pub(f"{GRAY_YAML}: transform.mean"), check=_numbers(3, 0, 1)
    )
    std: tuple[float, float, float] = _c(
        (0.5, 0.5, 0.5), pub(f"{GRAY_YAML}: transform.std"), check=_numbers(3, 0, MAX_FACTOR, lo_open=True)
    )
    re_prob: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.transform.re_prob=0.5"), check=_real(0, 1))
    re_mode: str = _c("pixel", pub(f"{GRAY_YAML}: transform.re_mode pixel"), check=_choice(RE_MODES))
    # evaluation: resize to img_size / crop_pct, centre-crop img_size (timm)
    crop_pct: float = _c(
        0.875,
        pub(f"{MAIN_PY} evaluates with {TIMM_EVAL} and no crop_pct: timm's 0.875 (256 -> 224)"),
        check=_real(0, 1, lo_open=True),
    )
    # batch mixing (timm.data.Mixup; built only when mixup or cutmix > 0)
    mixup: float = _c(0.8, pub(f"{PRETRAIN_SH}: data.mixup.mixup_alpha=0.8"), check=_real(0, MAX_FACTOR))
    cutmix: float = _c(1.0, pub(f"{PRETRAIN_SH}: data.mixup.cutmix_alpha=1.0"), check=_real(0, MAX_FACTOR))
    mixup_prob: float = _c(1.0, pub(f"{PRETRAIN_SH}: data.mixup.prob=1.0"), check=_real(0, 1))
    mixup_switch_prob: float = _c(0.5, pub(f"{PRETRAIN_SH}: data.mixup.switch_prob=0.5"), check=_real(0, 1))
    smoothing: float = _c(
        0.1, pub(f"{GRAY_YAML}: mixup.label_smoothing 0.1"), check=_real(0, 1, hi_open=True)
    )
    # repeated augmentation: each sampled index k times in a row (0 or 1: off)
    repeated_aug: int = _c(
        0, pub(f"{MAIN_PY}: a plain DistributedSampler (no repeats)"), check=_int(0, MAX_REPEATS)
    )
    # optimisation
    opt: str = _c("adamw", pub(f"{MODEL_YAML}: optim.optimizer_name adamw"), check=_text())
    base_lr: float = _c(
        1e-3,
        pub(f"{PRETRAIN_SH}: model.optim.learning_rate=0.001, x global batch / 512 in {MAIN_PY}"),
        check=_real(0, MAX_LR, lo_open=True),
    )
    base_warmup_lr: float = _c(
        1e-6,
        pub(f"{MODEL_YAML}: scheduler warmup_lr 1e-6, x global batch / 512 in {MAIN_PY}"),
        check=_real(0, MAX_LR),
    )
    base_min_lr: float = _c(
        1e-5,
        pub(f"{MODEL_YAML}: scheduler min_lr 1e-5, x global batch / 512 in {MAIN_PY}"),
        check=_real(0, MAX_LR),
    )
    weight_decay: float = _c(
        0.05, pub(f"{MODEL_YAML}: optim.weight_decay 0.05 (timm: none on 1-D)"), check=_real(0, MAX_FACTOR)
    )
    # timm's ViT lists pos_embed and cls_token in ``no_weight_decay()``; an optimizer built on a
    # DDP-wrapped model does not see that list and decays them (their 1-D biases and norms stay
    # undecayed either way). True: decay them as the public pre-training does; False: honour the list
    decay_embed_tokens: bool = _c(
        False,
        differs(
            "ours: timm's no_weight_decay() honoured (pos_embed and cls_token not decayed); the profiles "
            f"that follow {MAIN_PY} set True",
            True,
        ),
        check=_bool(),
    )
    momentum: float = _c(0.9, pub("timm create_optimizer_v2 default (unused by AdamW)"), check=_real(0, 1))
    batch_size: int = _c(
        256,
        pub(f"{PRETRAIN_SH}: data.loader.batch_size=32 on 8 GPUs = 256; here per process"),
        check=_int(1, MAX_BATCH),
    )
    steps: int = _c(
        _OFDB_STEPS,
        pub(_steps_text(80_000, 1000, 256, f"{PRETRAIN_SH} epochs=80000, {MAIN_PY}")),
        check=_int(1, MAX_STEPS),
    )
    warmup_steps: int = _c(
        _OFDB_WARMUP,
        pub(_steps_text(5, 1000, 256, f"{PRETRAIN_SH} warmup_epochs=5")),
        check=_int(0, MAX_STEPS),
    )
    # bookkeeping
    seed: int = _c(0, ours("run seed; the public runs are unseeded", NO_PUBLIC), check=_int(0, MAX_SEED))
    eval_every: int = _c(0, ours("0 = evaluate at the end only", NO_PUBLIC), check=_int(0, MAX_STEPS))
    log_every: int = _c(50, ours("log cadence", NO_PUBLIC), check=_int(1, MAX_STEPS))
    checkpoint_every: int = _c(1000, ours("checkpoint cadence", NO_PUBLIC), check=_int(1, MAX_STEPS))
    eval_batch_size: int = _c(256, ours("evaluation batch", NO_PUBLIC), check=_int(1, MAX_BATCH))
    num_workers: int = _c(8, ours("data-loading processes per GPU", NO_PUBLIC), check=_int(0, MAX_WORKERS))
    # where training batches are made (PIPELINES); the two draw different samples from the same
    # distributions, so the pipeline that made a run's batches is in its key; "auto" is left out,
    # and a run records an "auto" that chose the batched pipeline as "batched" (ran_with)
    pipeline: str = _c(
        "auto",
        ours("batches made by loader workers, or batched on the model's device (CUDA)", NO_PUBLIC),
        check=_choice(PIPELINES),
    )
    # autocast dtype of the forward pass on CUDA (PRECISIONS); the CPU always runs fp32. fp16 scales
    # the loss (torch.amp.GradScaler), bf16 and fp32 need no scaler
    precision: str = _c(
        "bf16",
        differs(
            f"ours: bf16 autocast on CUDA, no gradient scaler; {MAIN_PY} runs fp16 autocast with "
            "timm's NativeScaler (the profiles that follow it set fp16)",
            "fp16",
        ),
        check=_choice(PRECISIONS),
    )
    compile: bool = _c(False, ours("torch.compile is optional (CUDA)", NO_PUBLIC), check=_bool())
    threads: int = _c(
        0, ours("torch intra-op threads; 0 = torch's default", NO_PUBLIC), check=_int(0, MAX_WORKERS)
    )
    # provenance: the profile this config was derived from (set by Profile); None for a custom config
    profile: str | None = _c(
        None,
        ours("the profile a config was derived from (provenance)", NO_PUBLIC),
        check=_text(optional=True),
    )

    def __post_init__(self):
        """Every field's check (``_c(..., check=...)``): a config holds only values it can run."""
        for f in dataclasses.fields(self):
            if f.metadata.get("check") is not None:
                f.metadata["check"](f.name, getattr(self, f.name))

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

        ``pipeline`` counts as the pipeline that makes the batches, so two runs whose samples
        differ never share a key: ``loader`` and ``batched`` are keyed; ``auto`` is left out, and
        stands for the loader it picks on the CPU (runs cached before the setting existed keep
        their keys). Where ``auto`` picks the batched pipeline (pre-training on CUDA) the engine
        trains and records the config as ``batched`` (``ran_with``): the run's ``config.yaml``, its
        resume check and its key say ``batched``, and its manifest names the pipeline that ran and
        the one asked for. The device is no part of the key otherwise: a CPU and a CUDA run of one
        config are two runs of one recipe, with the same data order and random draws but not the
        same weights (CUDA runs the config's precision, its own kernels and a backward pass that is
        not bit-reproducible; see the developing guide). The study names its run folders by the key of the
        config it plans, before ``auto`` is resolved (``study.plan``); the profiles meant for GPUs
        (``paper``, ``paper-short``, ``paper-21k``) pin ``batched`` in pre-training, so that their
        keys, and the study's run folders, are the same on every machine that plans, trains or
        reads them.

        Settings added after runs were cached count only where they differ from their default
        (``KEYED_UNLESS_DEFAULT``: ``decay_embed_tokens`` unless False, ``precision`` unless bf16),
        so the configs that keep the default (``mini``, ``smoke``) keep their keys and the
        pre-registered design digest.
        """
        left_out = NOT_READ_BY.get(self.phase, OPERATIONAL)
        doc = {k: v for k, v in self.to_dict().items() if k not in left_out}
        if doc.get("pipeline") == "auto":
            del doc["pipeline"]
        for key, default in KEYED_UNLESS_DEFAULT.items():
            if key in doc and doc[key] == default:
                del doc[key]
        if doc.get("init", "scratch") != "scratch":
            init = Path(doc["init"])
            doc["init"] = f"{init.parent.name}/{init.name}"
        if str(doc.get("data", "")).startswith("multiview:"):
            doc["data"] = "multiview:" + Path(doc["data"][len("multiview:") :]).name
        return doc

    def pipeline_on(self, device_type: str) -> str:
        """``loader`` or ``batched``: the pipeline this config asks for on a device of type
        ``device_type`` (``cuda``, ``cpu``, ...): an explicit ``loader`` or ``batched`` is itself on
        every device and in both phases; ``auto`` is batched for pre-training on CUDA and the
        loader otherwise (fine-tuning's ``auto`` is the loader everywhere, so fine-tuning keys do
        not depend on the device). Under ``auto`` the engine may still fall back to the loader
        where the batched pipeline cannot be built (``train.batched.choose_pipeline``)."""
        if self.pipeline == "auto":
            return "batched" if self.phase == "pretrain" and device_type == "cuda" else "loader"
        return self.pipeline

    def ran_with(self, pipeline: str) -> TrainConfig:
        """This config as a run records it once ``pipeline`` (``loader`` or ``batched``) made its
        pre-training batches: an ``auto`` that chose the batched pipeline becomes ``batched``, so
        that the run's key says so (``result_dict``); any other config is returned unchanged (an
        ``auto`` that chose the loader keeps the loader's key)."""
        if self.phase == "pretrain" and self.pipeline == "auto" and pipeline == "batched":
            return self.replace(pipeline="batched")
        return self

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
    """Which rows and sizes the notebooks run at a profile (``study.plan``).

    Attributes:
        categories: categories of the instances-vs-augmentation rows.
        scaling_categories: the category-scaling sweep (OFDB-N, pre-trained then fine-tuned).
        seeds: training seeds.
        dataset: the downstream data set every row is fine-tuned on.
        train_per_class: training images per class downstream (None: all).
        rows: rows of the instances-vs-augmentation study (``ROWS``).
        onepfrac_deltas: the 1p-frac perturbation sweep (empty: none).
        paper_table: the published table the numbers go beside (``analysis.paper.table2`` / ``table3``).
        paper_column: that table's column (``C100`` of Table 2; ``vit_b`` of Table 3).
        workers: runs the study trains at once on this machine (``study.plan.run_plan``).
        endpoint: ``finetune`` (each pre-training is fine-tuned; the endpoint is the fine-tune's
            top-1) or ``readout`` (no fine-tuning: the frozen features of every arm are read on
            few labels, ``study.readouts``).
        controls: the readout study's calibration arms: free initialisations (``random``,
            ``mimetic``) and the positive control (``supervised``: supervised pre-training on the
            downstream set's control pool).
        readout_per_class: labelled images per class of each readout subset.
        readout_draws: labelled subsets drawn per seed (an arm's value is their mean).
        control_pool_per_class: training images per class held out of every subset for the
            positive control's pre-training.
        row_settings: per-row settings over the profile's pre-training recipe, as
            ``(row, ((setting, value), ...))`` pairs (the paper's augmentation on one row of a 2x2).
        scaling_row: the row the category sweep pre-trains at each count (with its settings).
        primary_readout: the readout a readout study's gate and claims read (``feature-reader``,
            ``study.readouts``), chosen on the pilot's seeds before the registration.
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
    endpoint: str = "finetune"
    controls: tuple[str, ...] = ()
    readout_per_class: int = 10
    readout_draws: int = 5
    control_pool_per_class: int = 0
    row_settings: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    scaling_row: str = "ofdb"
    primary_readout: str = "tokens-probe"

    def settings_of(self, row: str) -> dict:
        """The settings ``row`` sets over the pre-training recipe (``row_settings``), as a dict."""
        return {k: v for r, pairs in self.row_settings if r == row for k, v in pairs}


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
    (``1pfrac``; ``ofdb3d``, whose tree ``study.plan.ofdb3d_data`` renders), as ``(value, Cite)``.
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
