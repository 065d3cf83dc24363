"""One training loop for pre-training and fine-tuning, counted in optimizer steps, any device.

Reproducibility by construction rather than by saved iterator state:

* The data order is a function of (seed, position in the sample stream): position p is sample
  ``perm_e[p mod n]`` of epoch ``e = p // n``, ``perm_e`` a seeded permutation. Step s of a run
  with global batch G takes positions ``s*G .. s*G+G-1``; rank r of W takes its contiguous share.
* Every sample seeds ``random``, NumPy and torch from (seed, position) before it is loaded, and
  every step re-seeds them from (seed, step, rank) before Mixup, dropout and drop-path draw.
* The learning rate is the scheduler's value at the step number.

So a resumed run needs only the checkpointed step, model and optimizer to continue exactly; the
checkpoint still holds the scheduler and RNG states for inspection. On the CPU the final weights
of a run killed (even by SIGKILL) and resumed are bit-identical to an uninterrupted run.

Two pipelines make the training batches (``cfg.pipeline``, ``batched.choose_pipeline``): ``loader``
runs timm's per-image transform in DataLoader workers (``Keyed`` datasets over ``StreamBatches``);
``batched`` takes the same sample keys and makes whole batches on the model's device
(``batched.DeviceBatches``: device-resident sources, ``batched.transforms``), seeded per (seed, step, rank).
``auto`` is batched for pre-training on CUDA and the loader elsewhere (fine-tuning's ``auto`` is the
loader on every device; an explicit ``batched`` fine-tuning draws from its training images held on
the device), and falls back to the loader when the data do not fit or the recipe has a part the
batched pipeline lacks (one line on stderr). The pipeline a run used is in its manifest and
summary, and in its key: an ``auto`` that chose the batched pipeline is recorded as ``batched``
(``TrainConfig.ran_with``), so it never shares a key with a loader run of the same config; a resume
must use the same pipeline.

On CUDA the forward pass runs under the config's ``precision`` (bf16, fp16 with a
``torch.amp.GradScaler``, or fp32); the CPU always runs fp32. Where a scaler is in use its state
(the loss scale and its growth count) is saved with the optimizer's in the checkpoint and restored
on resume (``ScaledOptimizer``); a checkpoint without it (a bf16 or fp32 run) loads as it is.

A non-finite loss stops the run with a ``TrainingError`` naming the first such step; no checkpoint
or metrics record is written after it, and no summary.json. The run folder's files are written by
``runfolder.RunFolder``; device, processes, seeding and the sample stream are in ``runtime``.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..config import PIPELINES, PRECISIONS, TrainConfig, resolve
from ..errors import ParamError, TrainingError, check_positive_int
from ..files import check_fits
from ..fractals.ifs import check_categories
from ..seeds import SALT_INIT, SALT_STEP
from . import augment, batched, downstream, memory, models, pretrain_data
from .runfolder import MANIFEST, Progress, RunFolder, manifest, weights_sha256
from .runtime import (
    Dist,
    Keyed,
    StreamBatches,
    init_distributed,
    mix_seed,
    resolve_device,
    seed_all,
    upload,
)


# ---- building blocks --------------------------------------------------------------------------
def check_config(cfg: TrainConfig) -> None:
    """ParamErrors for settings that cannot run; called before anything is written."""
    models.check_model_args(cfg)
    for key in ("batch_size", "steps", "eval_batch_size", "log_every", "checkpoint_every"):
        check_positive_int(key, getattr(cfg, key))
    check_positive_int("eval_every", cfg.eval_every, minimum=0)
    check_positive_int("warmup_steps", cfg.warmup_steps, minimum=0)
    check_positive_int("num_workers", cfg.num_workers, minimum=0)
    check_positive_int("threads", cfg.threads, minimum=0)
    check_positive_int("seed", cfg.seed, minimum=0)
    check_positive_int("repeated_aug", cfg.repeated_aug, minimum=0)
    if not isinstance(cfg.crop_pct, (int, float)) or not 0.0 < cfg.crop_pct <= 1.0:
        raise ParamError("crop_pct", f"must be a number in (0, 1], got {cfg.crop_pct!r}")
    if cfg.phase == "finetune":
        downstream.check_dataset(cfg.dataset)
        for key in ("train_per_class", "test_per_class"):
            if getattr(cfg, key) is not None:
                check_positive_int(key, getattr(cfg, key))
    else:
        check_categories(cfg.categories)
        pretrain_data.tree_categories(cfg.data, cfg.categories, cfg.categories)  # a tree's own count
        augment.check_augment(cfg.augment)
        if cfg.init not in (None, "", "scratch"):
            raise ParamError("init", "only fine-tuning starts from a checkpoint")
    if cfg.pipeline not in PIPELINES:
        raise ParamError("pipeline", f"must be one of {', '.join(PIPELINES)}, got {cfg.pipeline!r}")
    if cfg.precision not in PRECISIONS:
        raise ParamError("precision", f"must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if not isinstance(cfg.decay_embed_tokens, bool):
        raise ParamError("decay_embed_tokens", f"must be true or false, got {cfg.decay_embed_tokens!r}")
    check_positive_int("img_size", cfg.img_size)
    for key in ("batch_size", "eval_batch_size"):
        n = getattr(cfg, key)
        check_fits(key, n * 3 * cfg.img_size**2 * 4, f"one batch of {n:,} images at {cfg.img_size} px")
    if augment.mixup_active(cfg) and cfg.batch_size % 2:
        raise ParamError("batch_size", f"must be even while Mixup/CutMix is on, got {cfg.batch_size}")


def subset_seed(cfg: TrainConfig) -> int:
    """The seed that draws the K training images per class: ``subset_seed``, else the run's seed."""
    return cfg.seed if cfg.subset_seed is None else cfg.subset_seed


def build_data(cfg: TrainConfig):
    """(train dataset, eval dataset or None, classes, data hash) for the config's phase."""
    ttf, etf = augment.train_transform(cfg), augment.eval_transform(cfg)
    if cfg.phase == "pretrain":
        return pretrain_data.pretrain_datasets(cfg, ttf, etf)
    return downstream.load_downstream(
        cfg.dataset,
        ttf,
        etf,
        data_root=cfg.data_root,
        download=cfg.download,
        train_per_class=cfg.train_per_class,
        seed=subset_seed(cfg),
        test_per_class=cfg.test_per_class,
    )


_EVAL_CACHE: dict = {}
#: The largest evaluation set (bytes of its uint8 images) a process keeps after its run.
EVAL_CACHE_BYTES = 4 * 2**30


class EvalImages(torch.utils.data.Dataset):
    """An evaluation set held as uint8 images (N, 3, S, S) and labels (N,), normalised per batch.

    timm's eval transform ends in ``ToTensor`` (k / 255 in float32) and ``Normalize``; this set keeps
    the k and applies the same float32 operations in the same order (``normalize``), so a batch is
    bit for bit the transform's output, at a quarter of the memory (paper-21k's 210,000 held-out
    images: 29.4 GiB instead of 118 GiB) and a quarter of the host-to-device bytes.

    Args:
        images: uint8 (N, 3, S, S).
        labels: int64 (N,).
        mean, std: the ``Normalize`` of the transform.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        self.images, self.labels = images, labels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self._on: dict = {}  # device -> (mean, std) there, copied once

    def __len__(self) -> int:
        return len(self.labels)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, S, S) on any device -> the transform's float32 tensors there."""
        if x.device not in self._on:
            self._on[x.device] = self.mean.to(x.device), self.std.to(x.device)
        mean, std = self._on[x.device]
        return x.to(torch.float32).div(255).sub(mean).div(std)

    def __getitem__(self, i):
        return self.normalize(self.images[i : i + 1])[0], int(self.labels[i])

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(float32 images as the transform gives them, labels): the whole set, for checks."""
        return self.normalize(self.images), self.labels


def eval_bytes(n: int, img_size: int) -> int:
    """The bytes of an evaluation set of ``n`` uint8 images of ``img_size`` px (``EvalImages``)."""
    return n * 3 * img_size * img_size


def eval_tensors(dataset, key, mean=None, std=None, param: str = "eval_per_category"):
    """The evaluation set as ``EvalImages`` (uint8), cached per process under ``key``.

    The eval transform is deterministic, so a study that evaluates the same test set many times
    (every fine-tuning run, every eval step) transforms it once. ``key`` must determine the items:
    ``train`` uses ``eval_set_name``, ``augment.eval_settings`` (what the transform is built from)
    and the shard. The images are written one by one into one uint8 tensor (never a list stacked);
    a set over ``EVAL_CACHE_BYTES`` is not kept after the run. ``mean`` and ``std`` are the
    transform's ``Normalize`` (default: read off the transform; the first item's round trip is
    checked).

    Raises:
        ParamError: the set's uint8 images need more than half the available memory (naming
            ``param``, the setting that sizes the set).
    """
    if key in _EVAL_CACHE:
        return _EVAL_CACHE[key]
    n = len(dataset)
    first = dataset[0]
    x0 = first[0]
    check_fits(param, eval_bytes(n, x0.shape[-1]), f"the evaluation set of {n:,} images")
    if mean is None or std is None:
        mean, std = _normalize_of(dataset)
    images = torch.empty((n, *x0.shape), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    out = EvalImages(images, labels, mean, std)
    for i in range(n):
        x, labels[i] = dataset[i] if i else first
        u8 = out.mean[0] + x * out.std[0]
        images[i] = u8.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
        if i == 0 and not torch.equal(out.normalize(images[:1])[0], x):
            raise TrainingError("the evaluation transform does not end in ToTensor and Normalize")
    if eval_bytes(n, x0.shape[-1]) <= EVAL_CACHE_BYTES:
        if len(_EVAL_CACHE) >= 2:
            _EVAL_CACHE.pop(next(iter(_EVAL_CACHE)))
        _EVAL_CACHE[key] = out
    return out


def _normalize_of(dataset) -> tuple[tuple, tuple]:
    """The mean and std of the ``Normalize`` in an evaluation set's transform."""
    from torchvision.transforms import Normalize

    base = dataset
    while hasattr(base, "dataset") and not hasattr(base, "transform"):
        base = base.dataset  # a Subset (a rank's shard)
    for t in getattr(getattr(base, "transform", None), "transforms", []):
        if isinstance(t, Normalize):
            return tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)
    raise TrainingError("the evaluation set's transform has no Normalize; pass mean and std")


def eval_cache_key(cfg: TrainConfig, eval_name: str, dd: Dist) -> tuple:
    """The ``eval_tensors`` key of a run: the evaluation set's name (``eval_set_name``), the eval
    transform settings and this rank's shard."""
    settings = augment.eval_settings(cfg)
    return (eval_name, tuple(sorted(settings.items())), dd.rank, dd.world_size)


def eval_set_name(eval_ds, data_hash: str) -> str:
    """What names a run's evaluation set: pre-training's held-out renders carry their own digest
    (data, task and size: the default and fluctuation tasks share a source); the downstream data
    hash covers the test set and its draw."""
    return eval_ds.digest if isinstance(eval_ds, pretrain_data.HeldOutRenders) else data_hash


@torch.no_grad()
def evaluate(
    model,
    dataset,
    batch_size: int,
    device: torch.device,
    dd: Dist | None = None,
    precision: str = "bf16",
) -> float:
    """Top-1 accuracy in percent of ``model`` on ``dataset`` (items (tensor (3, S, S), label)),
    the forward pass under ``precision``'s autocast on CUDA (``_autocast``).

    Under DDP every rank passes its own shard (``eval_shard``) and the counts of correct and of all
    items are summed over the ranks, so the result is the whole set's accuracy on every rank.
    """
    if isinstance(dataset, EvalImages):  # uint8 to the device, normalised there
        loader = (
            (dataset.images[i : i + batch_size], dataset.labels[i : i + batch_size])
            for i in range(0, len(dataset), batch_size)
        )
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    for x, y in loader:
        if isinstance(dataset, EvalImages):
            x = dataset.normalize(upload(x, device))
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = _to_device(x, device)
        y = y.to(device, non_blocking=True)
        with _autocast(device, precision):
            logits = model(x)
        correct += (logits.argmax(-1) == y).sum()
        total += int(y.numel())
    correct = int(correct)
    model.train(was_training)
    if dd is not None and dd.world_size > 1:
        counts = torch.tensor([correct, total], dtype=torch.int64, device=device)
        dist.all_reduce(counts)
        correct, total = int(counts[0]), int(counts[1])
    return 100.0 * correct / max(total, 1)


def eval_shard(dataset, dd: Dist):
    """The items ``rank, rank + world, ...`` of ``dataset``: this rank's share of an evaluation."""
    if dd.world_size == 1:
        return dataset
    return torch.utils.data.Subset(dataset, range(dd.rank, len(dataset), dd.world_size))


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    return x.to(device)


#: The autocast dtype of each ``TrainConfig.precision`` on CUDA (None: float32, autocast off).
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def _autocast(device: torch.device, precision: str = "bf16"):
    """The forward pass's autocast: ``precision``'s dtype on CUDA; off (float32) elsewhere."""
    dtype = AUTOCAST_DTYPES[precision]
    if device.type == "cuda" and dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


def build_scaler(cfg: TrainConfig, device: torch.device):
    """A ``torch.amp.GradScaler`` where the loss needs scaling (fp16 on CUDA), else None: bf16 and
    fp32 step the optimizer directly."""
    if cfg.precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


#: The key under a checkpoint's ``optimizer`` entry that holds the gradient scaler's state.
SCALER_KEY = "grad_scaler"


class ScaledOptimizer:
    """An optimizer and its gradient scaler (or None) as the one state a checkpoint saves.

    ``RunFolder.save_checkpoint`` and ``load_checkpoint`` call ``state_dict`` and
    ``load_state_dict`` on what they are given as the optimizer; this object answers with the
    optimizer's state plus, under ``SCALER_KEY``, the scaler's (plain numbers, readable with
    ``weights_only=True``). Loading restores the scaler where both the checkpoint and this run
    have one; a checkpoint without the key leaves the scaler as built, and a run without a
    scaler ignores the key.

    Args:
        optimizer: a torch optimizer.
        scaler: a ``torch.amp.GradScaler`` (``build_scaler``), or None.
    """

    def __init__(self, optimizer, scaler=None):
        self.optimizer, self.scaler = optimizer, scaler

    def state_dict(self) -> dict:
        doc = self.optimizer.state_dict()
        if self.scaler is not None:
            doc = {**doc, SCALER_KEY: self.scaler.state_dict()}
        return doc

    def load_state_dict(self, doc: dict) -> None:
        doc = dict(doc)
        scaler_state = doc.pop(SCALER_KEY, None)
        self.optimizer.load_state_dict(doc)
        if self.scaler is not None and scaler_state is not None:
            self.scaler.load_state_dict(scaler_state)


class Due(NamedTuple):
    """What happens after a step: log a metrics record, evaluate, save a checkpoint."""

    log: bool
    evaluate: bool
    checkpoint: bool


def due_at(step: int, cfg: TrainConfig, has_eval: bool) -> Due:
    """The cadence after 1-based ``step``: every ``log_every`` / ``eval_every`` (0: never) /
    ``checkpoint_every`` steps and at the last step; every evaluation is also logged."""

    def every(n: int) -> bool:
        return n > 0 and step % n == 0

    last = step == cfg.steps
    evaluate = has_eval and (last or every(cfg.eval_every))
    return Due(
        log=last or evaluate or every(cfg.log_every) or every(cfg.eval_every),
        evaluate=evaluate,
        checkpoint=last or every(cfg.checkpoint_every),
    )


# ---- the loop ---------------------------------------------------------------------------------
def _decay_all_but_1d(model, weight_decay: float):
    """timm's weight-decay groups with an empty ``no_weight_decay`` list: what timm's factory gives
    a model that has no ``no_weight_decay()`` (the public code's DDP wrapper); 1-D parameters
    (biases, norms) stay undecayed."""
    import timm.optim

    return timm.optim.param_groups_weight_decay(model, weight_decay, no_weight_decay_list=())


#: Optimizers (``TrainConfig.opt``) that torch has a fused CUDA kernel for.
FUSED_OPTS = ("adamw", "adam", "sgd")


def build_optimization(model, cfg: TrainConfig, res, num_classes: int, device: torch.device | None = None):
    """timm optimizer, cosine scheduler stepped per update, Mixup (or None) and soft-target loss.

    The optimizer is built on the unwrapped model, so timm honours its ``no_weight_decay()`` list
    (a ViT's ``pos_embed`` and ``cls_token``); ``cfg.decay_embed_tokens`` decays them too, as the
    public pre-training's optimizer built on the DDP-wrapped model does. On a CUDA ``device`` AdamW,
    Adam and SGD use torch's fused kernels, which take the gradient scaler's inf check on the device:
    an fp16 step then never waits for the card (the unfused step reads it back every step).
    """
    import timm.optim
    from timm.loss import SoftTargetCrossEntropy
    from timm.scheduler import CosineLRScheduler

    groups = {}
    if cfg.decay_embed_tokens and cfg.weight_decay:
        groups["param_group_fn"] = lambda m: _decay_all_but_1d(m, cfg.weight_decay)
    if device is not None and device.type == "cuda" and cfg.opt in FUSED_OPTS:
        groups["fused"] = True
    optimizer = timm.optim.create_optimizer_v2(
        model, opt=cfg.opt, lr=res.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, **groups
    )
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=cfg.steps,
        lr_min=res.min_lr,
        warmup_t=cfg.warmup_steps,
        warmup_lr_init=res.warmup_lr,
        t_in_epochs=False,
    )
    return optimizer, scheduler, augment.build_mixup(cfg, num_classes), SoftTargetCrossEntropy()


def train_step(
    step: int,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    net,
    optimizer,
    scheduler,
    mixup,
    criterion,
    cfg: TrainConfig,
    num_classes: int,
    device: torch.device,
    rank: int = 0,
    scaler=None,
    micro_batch: int | None = None,
) -> torch.Tensor:
    """One optimizer step on a batch x (B, 3, S, S), y (B,) at 0-based ``step``; returns the loss.

    With a ``scaler`` (``build_scaler``: fp16 on CUDA) the loss is scaled for the backward pass and
    the scaler steps the optimizer (skipping a step whose gradients overflowed); without one the
    optimizer steps directly. With a ``micro_batch`` smaller than B (``memory.micro_batch``: the
    batch does not fit the card) Mixup still mixes the whole batch, the forward and backward passes
    run on B / micro_batch slices whose losses are weighted by their share and whose gradients add
    up (DDP synchronises on the last), and the optimizer steps once: the step of batch B, in
    floating point up to the order of the sums.
    """
    from timm.data.mixup import mixup_target

    scheduler.step_update(num_updates=step)
    seed_all(mix_seed(cfg.seed, step, rank, SALT_STEP))
    x, y = _to_device(x, device), y.to(device, non_blocking=True)
    if mixup is not None:
        x, target = mixup(x, y)
    else:
        target = mixup_target(y, num_classes, smoothing=cfg.smoothing)
    optimizer.zero_grad(set_to_none=True)
    b = x.shape[0]
    if micro_batch is None or micro_batch >= b:
        with _autocast(device, cfg.precision):
            loss = criterion(net(x), target)
        (loss if scaler is None else scaler.scale(loss)).backward()
    else:
        loss = torch.zeros((), device=device)
        starts = range(0, b, micro_batch)
        for i in starts:
            last = i == starts[-1]
            sync = contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()
            with sync:
                with _autocast(device, cfg.precision):
                    part = criterion(net(x[i : i + micro_batch]), target[i : i + micro_batch])
                    part = part * (min(micro_batch, b - i) / b)
                (part if scaler is None else scaler.scale(part)).backward()
            loss += part.detach().float()
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return loss


class _FirstBadStep:
    """The first 1-based step whose loss was not finite, tracked on the device without a sync."""

    def __init__(self, steps: int, device: torch.device):
        self.none = steps + 1
        self.value = torch.full((), self.none, dtype=torch.int64, device=device)

    def update(self, step: int, loss: torch.Tensor) -> None:
        self.value = torch.minimum(self.value, torch.where(torch.isfinite(loss), self.none, step))

    def check(self, dd: Dist) -> None:
        """Raise TrainingError (on every rank alike) if some step so far had a non-finite loss."""
        if dd.world_size > 1:
            dist.all_reduce(self.value, op=dist.ReduceOp.MIN)
        bad = int(self.value)
        if bad < self.none:
            raise TrainingError(
                f"the loss is not finite (NaN or inf) at step {bad} of {self.none - 1}; stopped "
                "without a summary (the last checkpoint is from before that step; try a lower learning rate)"
            )


def main_first(dd: Dist, device: torch.device, fn, rest=None):
    """``fn()`` on rank 0, then ``rest()`` (default ``fn``) on the other ranks once rank 0 is done.

    The ranks meet in an all-reduce of rank 0's outcome instead of a barrier, so an error on rank 0
    stops every rank: rank 0 raises its error and the others a ``TrainingError`` that points to it
    (at a plain barrier they would wait until the job's time ran out).
    """
    result, error = None, None
    if dd.main:
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001  (re-raised below, after the others are told)
            error = e
    if dd.world_size > 1:
        failed = torch.tensor([0 if error is None else 1], device=device if device.type == "cuda" else "cpu")
        dist.all_reduce(failed)
        if int(failed) and error is None:
            raise TrainingError(
                f"rank 0 stopped with an error (its output names it); rank {dd.rank} stops too"
            )
    if error is not None:
        raise error
    if not dd.main:
        result = (rest or fn)()
    return result


def _build(cfg: TrainConfig, dd: Dist, device: torch.device):
    """Data and a fresh model on the CPU; the exact search is cached by rank 0 before the others read it."""
    train_ds, eval_ds, num_classes, data_hash = main_first(dd, device, lambda: build_data(cfg))
    seed_all(mix_seed(cfg.seed, SALT_INIT))  # the initial weights depend on the seed only
    model = models.create_model(cfg, num_classes)
    if cfg.phase == "finetune" and cfg.init not in (None, "", "scratch"):
        models.load_pretrained(model, cfg.init)
    return train_ds, eval_ds, num_classes, data_hash, model


def _wrap(model, cfg: TrainConfig, device: torch.device, dd: Dist):
    """The module the loop calls: DDP across ranks, compiled on CUDA when asked; else ``model``."""
    net = model
    if dd.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile and device.type == "cuda":
        net = torch.compile(net)
    return net


def _loader(train_ds, cfg: TrainConfig, start: int, device: torch.device, dd: Dist) -> DataLoader:
    """Batches of steps ``start .. cfg.steps - 1`` for this rank, each sample seeded by its position."""
    return DataLoader(
        Keyed(train_ds),
        batch_sampler=StreamBatches(
            len(train_ds),
            cfg.batch_size,
            cfg.seed,
            start,
            cfg.steps,
            dd.rank,
            dd.world_size,
            cfg.repeated_aug,
        ),
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def _batches(train_ds, cfg: TrainConfig, start: int, device: torch.device, dd: Dist, parts):
    """The step batches of this rank: the DataLoader, or the batched pipeline when ``parts``."""
    if parts is None:
        return _loader(train_ds, cfg, start, device, dd)
    source, aug = parts
    return batched.DeviceBatches(
        source,
        aug,
        seed=cfg.seed,
        batch=cfg.batch_size,
        start=start,
        stop=cfg.steps,
        device=device,
        rank=dd.rank,
        world=dd.world_size,
        repeats=cfg.repeated_aug,
    )


def train(
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Run one phase to ``cfg.steps`` optimizer steps and write the run folder.

    Args:
        cfg: the profile's config with overrides (``config.phase_config``); fine-tuning starts from
            ``cfg.init``: a pre-training run folder, its checkpoint.pt, or "scratch".
        out: run folder.
        resume: continue from ``out/checkpoint.pt`` (the config must be the same).
        force: replace an existing run in ``out``.
        progress: show a tqdm bar (rank 0).

    Returns:
        The summary dict (also written to ``out/summary.json``).

    Raises:
        ParamError: a setting that cannot run, or ``out`` holds another run (nothing is written).
        TrainingError: the loss became NaN or infinite (no summary.json is written).
    """
    threads, kernels = torch.get_num_threads(), _kernel_settings()
    try:
        return _train(cfg, out, resume=resume, force=force, progress=progress)
    finally:  # the process's settings as they were (a test or a notebook runs many configs)
        torch.set_num_threads(threads)
        _set_kernel_settings(kernels)


#: Set to anything but "" or "0", CUDA runs use deterministic kernels where torch has them
#: (``train``); the CPU's runs are deterministic without it.
DETERMINISTIC_ENV = "OFDB_DETERMINISTIC"


def deterministic_asked() -> bool:
    """Whether ``OFDB_DETERMINISTIC`` asks for deterministic kernels."""
    return os.environ.get(DETERMINISTIC_ENV, "") not in ("", "0")


def _kernel_settings() -> tuple:
    b = torch.backends
    return (
        b.cuda.matmul.allow_tf32,
        b.cudnn.allow_tf32,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        b.cudnn.deterministic,
        b.cudnn.benchmark,
        b.cuda.flash_sdp_enabled(),
        b.cuda.mem_efficient_sdp_enabled(),
        b.cuda.cudnn_sdp_enabled(),
    )


def _set_kernel_settings(saved: tuple) -> None:
    b = torch.backends
    b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, det, warn_only, b.cudnn.deterministic = saved[:5]
    b.cudnn.benchmark = saved[5]
    torch.use_deterministic_algorithms(det, warn_only=warn_only)
    b.cuda.enable_flash_sdp(saved[6])
    b.cuda.enable_mem_efficient_sdp(saved[7])
    b.cuda.enable_cudnn_sdp(saved[8])


def _deterministic_kernels() -> None:
    """Deterministic kernels for this process's runs (``OFDB_DETERMINISTIC``): torch's deterministic
    algorithms (a warning where an op has none), cuDNN's deterministic kernels without autotuning,
    attention on the math kernel (the fused ones' backward adds in a varying order) and cuBLAS's
    fixed workspace (which takes effect only before the process's first CUDA matmul). Slower; the
    run's key is the same, its manifest says ``deterministic``."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_mem_efficient_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)


def _train(cfg: TrainConfig, out, *, resume: bool, force: bool, progress: bool) -> dict:
    t_begin = time.perf_counter()
    run = RunFolder(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device()
    if device.type == "cuda" and cfg.precision == "fp32":  # TF32 matmuls and convolutions
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    deterministic = device.type == "cuda" and deterministic_asked()
    if deterministic:  # the attention switches are global: the CPU's kernels stay as they are
        _deterministic_kernels()
    dd = init_distributed(device)
    check_config(cfg)
    res = resolve(cfg, dd.world_size)
    finished = run.summary() if resume else None
    if finished is not None:  # the run as recorded: auto that chose batched here says batched
        picks = batched.resolve_pipeline(cfg, device)
        ran = finished.get("pipeline", "loader") if picks == "batched" else "loader"
        run.prepare(cfg.ran_with(ran), resume=True, force=False)
        return finished
    train_ds, eval_ds, num_classes, data_hash, model = _build(cfg, dd, device)
    pipeline, parts = batched.choose_pipeline(cfg, train_ds, device, dd)
    asked, cfg = cfg.pipeline, cfg.ran_with(pipeline)  # the run's key names the pipeline that runs

    def prepare():
        if resume:  # before the settings' check, which would name only the pipeline's setting
            batched.check_resumed(run.file(MANIFEST), pipeline)
        run.prepare(cfg, resume=resume, force=force)

    main_first(dd, device, prepare, rest=lambda: None)

    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler, mixup, criterion = build_optimization(model, cfg, res, num_classes, device)
    scaler = build_scaler(cfg, device)
    micro = memory.micro_batch(model, cfg.batch_size, cfg.precision, cfg.opt, memory.device_memory(device))
    saved = ScaledOptimizer(optimizer, scaler)  # what the checkpoint holds as the optimizer
    state = run.load_checkpoint(model, saved, scheduler) if resume else Progress()
    start, resumed_seconds = state.step, state.train_seconds
    if dd.main:
        provenance = manifest(
            cfg,
            device=device,
            world_size=dd.world_size,
            resolved=res,
            data_hash=data_hash,
            num_classes=num_classes,
        )
        provenance["pipeline"] = pipeline
        provenance["pipeline_asked"] = asked
        provenance["micro_batch"] = micro
        provenance["tf32"] = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
        provenance["deterministic"] = deterministic
        run.start(cfg, provenance, from_step=start)

    net = _wrap(model, cfg, device, dd)
    # seconds spent evaluating: transforming the test set (part of the set-up) and the passes (part
    # of the loop's wall time)
    timing = {"eval": 0.0, "prep": 0.0, "loss": None}
    if eval_ds is not None:  # each rank transforms and evaluates its own shard
        t0 = time.perf_counter()
        key = eval_cache_key(cfg, eval_set_name(eval_ds, data_hash), dd)
        sizes = "eval_per_category" if cfg.phase == "pretrain" else "test_per_class"
        eval_ds = eval_tensors(eval_shard(eval_ds, dd), key, cfg.mean, cfg.std, sizes)
        timing["prep"] = time.perf_counter() - t0
    loader = _batches(train_ds, cfg, start, device, dd, parts)

    def note_top1(step: int) -> float:
        t0 = time.perf_counter()
        top1 = evaluate(model, eval_ds, cfg.eval_batch_size, device, dd, cfg.precision)
        timing["eval"] += time.perf_counter() - t0
        if state.top1_best is None or top1 > state.top1_best:
            state.top1_best, state.best_step = top1, step
        return top1

    bar = None
    if progress and dd.main:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=start, unit="step", desc=cfg.phase, dynamic_ncols=True)
    net.train()
    t_start = time.perf_counter()
    t_window, n_window, loss_sum = t_start, 0, torch.zeros((), device=device)
    bad = _FirstBadStep(cfg.steps, device)
    top1 = None
    step = start
    for x, y in loader:
        loss = train_step(
            step,
            x,
            y,
            net=net,
            optimizer=optimizer,
            scheduler=scheduler,
            mixup=mixup,
            criterion=criterion,
            cfg=cfg,
            num_classes=num_classes,
            device=device,
            rank=dd.rank,
            scaler=scaler,
            micro_batch=micro,
        )
        step += 1
        loss = loss.detach().float()
        bad.update(step, loss)
        loss_sum += loss
        n_window += 1
        due = due_at(step, cfg, eval_ds is not None)
        if due.log or due.checkpoint:
            bad.check(dd)  # before anything of this step is written
        if due.log:
            if dd.world_size > 1:
                dist.all_reduce(loss_sum)
                loss_sum /= dd.world_size
            now = time.perf_counter()
            record = {
                "step": step,
                "loss": float(loss_sum) / n_window,
                "lr": optimizer.param_groups[0]["lr"],
                "images_per_s": n_window * res.global_batch / max(now - t_window, 1e-9),
            }
            timing["loss"] = record["loss"]
            if due.evaluate:
                top1 = record["top1"] = note_top1(step)
            if dd.main:
                run.log(record)
                if bar is not None:
                    bar.set_postfix(loss=f"{record['loss']:.3f}", img_s=f"{record['images_per_s']:.0f}")
            t_window, n_window, loss_sum = time.perf_counter(), 0, torch.zeros((), device=device)
        if due.checkpoint:

            def save(step=step):
                state.step = step
                state.train_seconds = resumed_seconds + time.perf_counter() - t_start
                run.save_checkpoint(model, saved, scheduler, state, cfg, num_classes)

            main_first(dd, device, save, rest=lambda: None)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if start >= cfg.steps and eval_ds is not None:  # killed between the last checkpoint and the summary
        top1 = note_top1(cfg.steps)
    now = time.perf_counter()
    summary = {
        "phase": cfg.phase,
        "steps": cfg.steps,
        "global_batch": res.global_batch,
        "lr": res.lr,
        "num_classes": num_classes,
        "top1_last": top1,
        "top1_best": state.top1_best,
        "best_step": state.best_step,
        "wall_seconds": resumed_seconds + now - t_start,
        "setup_seconds": t_start - t_begin,
        "eval_seconds": timing["eval"],
        "eval_prep_seconds": timing["prep"],
        "final_loss": timing["loss"],
        "images_per_s": (cfg.steps - start) * res.global_batch / max(now - t_start, 1e-9),
        "weights_sha256": weights_sha256(model),
        "device": str(device),
        "world_size": dd.world_size,
        "pipeline": pipeline,
        "micro_batch": micro,
        "finished": True,
    }
    main_first(dd, device, lambda: run.write_summary(summary), rest=lambda: None)
    return summary
