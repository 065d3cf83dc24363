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

Run folder: config.yaml, manifest.json, metrics.jsonl, checkpoint.pt (written atomically),
summary.json (written last: its presence means the run finished); see ``runfolder``. Device,
processes, seeding and the sample stream are in ``runtime``. Both are re-exported here.
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.utils.data import DataLoader

from ..config import TrainConfig, resolve
from ..errors import ParamError, check_positive_int
from . import augment, downstream, models, pretrain_data
from .runfolder import (
    _git_commit,
    _versions,
    atomic_write_bytes,
    prepare_out,
    weights_sha256,
)
from .runtime import (
    Dist,
    Keyed,
    StreamBatches,
    _barrier,
    init_distributed,
    mix_seed,
    resolve_device,
    seed_all,
)

#: Tests set OFDB_STUDY_KILL_AT=N to SIGKILL the process in the middle of step N (1-based).
_KILL_AT = int(os.environ.get("OFDB_STUDY_KILL_AT", "0"))


# ---- building blocks --------------------------------------------------------------------------
def validate(cfg: TrainConfig, world_size: int = 1) -> None:
    """ParamErrors for settings that cannot run; called before anything is written."""
    models.check_model_args(cfg)
    augment.check_augment(cfg.augment)
    for key in ("batch_size", "steps", "eval_batch_size", "log_every", "checkpoint_every"):
        check_positive_int(key, getattr(cfg, key))
    check_positive_int("warmup_steps", cfg.warmup_steps, minimum=0)
    check_positive_int("num_workers", cfg.num_workers, minimum=0)
    check_positive_int("threads", cfg.threads, minimum=0)
    check_positive_int("seed", cfg.seed, minimum=0)
    check_positive_int("repeated_aug", cfg.repeated_aug, minimum=0)
    if not isinstance(cfg.crop_pct, (int, float)) or not 0.0 < cfg.crop_pct <= 1.0:
        raise ParamError("crop_pct", f"must be a number in (0, 1], got {cfg.crop_pct!r}")
    if cfg.phase == "finetune":
        downstream.check_dataset(cfg.dataset)
    else:
        check_positive_int("categories", cfg.categories)
    if augment.mixup_active(cfg) and cfg.batch_size % 2:
        raise ParamError("batch_size", f"must be even while Mixup/CutMix is on, got {cfg.batch_size}")


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
        seed=cfg.subset_seed,
        test_per_class=cfg.test_per_class,
    )


_EVAL_CACHE: dict = {}


def eval_tensors(dataset, key) -> torch.utils.data.TensorDataset:
    """The evaluation set as tensors (N, 3, S, S) and labels (N,), cached per process under ``key``.

    The eval transform is deterministic, so a study that evaluates the same test set many times
    (every fine-tuning run, every eval step) transforms it once.
    """
    if key not in _EVAL_CACHE:
        xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
        if len(_EVAL_CACHE) >= 2:
            _EVAL_CACHE.pop(next(iter(_EVAL_CACHE)))
        _EVAL_CACHE[key] = torch.utils.data.TensorDataset(torch.stack(xs), torch.tensor(ys))
    return _EVAL_CACHE[key]


@torch.no_grad()
def evaluate(model, dataset, cfg: TrainConfig, device: torch.device, dd: Dist | None = None) -> float:
    """Top-1 accuracy in percent of ``model`` on ``dataset`` (items (tensor (3, S, S), label)).

    Under DDP every rank passes its own shard (``eval_shard``) and the counts of correct and of all
    items are summed over the ranks, so the result is the whole set's accuracy on every rank.
    """
    loader = DataLoader(dataset, batch_size=cfg.eval_batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in loader:
        x, y = _to_device(x, device), y.to(device)
        with _autocast(device):
            logits = model(x)
        correct += int((logits.argmax(-1) == y).sum())
        total += int(y.numel())
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


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def _rng_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _read_metrics(path: Path, upto: int) -> list[str]:
    if not path.is_file():
        return []
    return [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= upto]


# ---- the loop ---------------------------------------------------------------------------------
def build_optimization(model, cfg: TrainConfig, res, num_classes: int):
    """timm optimizer, cosine scheduler stepped per update, Mixup (or None) and soft-target loss."""
    import timm.optim
    from timm.loss import SoftTargetCrossEntropy
    from timm.scheduler import CosineLRScheduler

    optimizer = timm.optim.create_optimizer_v2(
        model, opt=cfg.opt, lr=res.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
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
) -> torch.Tensor:
    """One optimizer step on a batch x (B, 3, S, S), y (B,) at 0-based ``step``; returns the loss."""
    from timm.data.mixup import mixup_target

    scheduler.step_update(num_updates=step)
    seed_all(mix_seed(cfg.seed, step, rank, 0x57E9))
    x, y = _to_device(x, device), y.to(device)
    if mixup is not None:
        x, target = mixup(x, y)
    else:
        target = mixup_target(y, num_classes, smoothing=cfg.smoothing)
    with _autocast(device):
        loss = criterion(net(x), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if step + 1 == _KILL_AT:  # test hook: die mid-step, after backward, before the update
        os.kill(os.getpid(), signal.SIGKILL)
    optimizer.step()
    return loss


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
        cfg: the profile's config with overrides (see config.py); fine-tuning starts from
            ``cfg.init``: a pre-training run folder, its checkpoint.pt, or "scratch".
        out: run folder.
        resume: continue from ``out/checkpoint.pt`` (the config must be the same).
        force: replace an existing run in ``out``.
        progress: show a tqdm bar (rank 0).

    Returns:
        The summary dict (also written to ``out/summary.json``).
    """
    t_begin = time.perf_counter()
    out = Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device()
    dd = init_distributed(device)
    validate(cfg, dd.world_size)
    res = resolve(cfg, dd.world_size)
    if resume and (out / "summary.json").is_file():
        prepare_out(out, cfg, resume, force)
        return json.loads((out / "summary.json").read_text())
    if dd.main:  # the exact search may be written to the cache once, before the other ranks read it
        train_ds, eval_ds, num_classes, data_hash = build_data(cfg)
    _barrier(dd)
    if not dd.main:
        train_ds, eval_ds, num_classes, data_hash = build_data(cfg)
    seed_all(mix_seed(cfg.seed, 0x1417))  # the initial weights depend on the seed only
    model = models.create_model(cfg, num_classes)
    init = None if cfg.init in (None, "", "scratch") else cfg.init
    if init is not None:
        if cfg.phase != "finetune":
            raise ParamError("init", "only fine-tuning starts from a checkpoint")
        models.load_pretrained(model, init)
    if dd.main:
        prepare_out(out, cfg, resume, force)
    _barrier(dd)

    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler, mixup, criterion = build_optimization(model, cfg, res, num_classes)

    start, best, best_step, elapsed = 0, None, None, 0.0
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start, best, best_step, elapsed = ck["step"], ck["top1_best"], ck["best_step"], ck["train_seconds"]

    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=True))
        manifest = {
            "git_commit": _git_commit(),
            "versions": _versions(),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor(),
            "seed": cfg.seed,
            "world_size": dd.world_size,
            "resolved": res.to_dict(),
            "dataset_sha256": data_hash,
            "num_classes": num_classes,
            "init": str(init) if init else "scratch",
            "command": sys.argv,
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
        kept = _read_metrics(out / "metrics.jsonl", start)
        (out / "metrics.jsonl").write_text("".join(ln + "\n" for ln in kept))

    net = model
    if dd.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile and device.type == "cuda":
        net = torch.compile(net)
    sampler = StreamBatches(
        len(train_ds), cfg.batch_size, cfg.seed, start, cfg.steps, dd.rank, dd.world_size, cfg.repeated_aug
    )
    if eval_ds is not None:  # each rank transforms and evaluates its own shard
        eval_ds = eval_tensors(
            eval_shard(eval_ds, dd),
            (data_hash, cfg.test_per_class, augment.eval_key(cfg), dd.rank, dd.world_size),
        )
    loader = DataLoader(
        Keyed(train_ds),
        batch_sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )

    def save_checkpoint(step: int) -> None:
        doc = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "top1_best": best,
            "best_step": best_step,
            "train_seconds": elapsed + (time.perf_counter() - t_start),
            "rng": _rng_states(),
            "config": cfg.to_dict(),
            "num_classes": num_classes,
        }
        atomic_write_bytes(ckpt_path, lambda f: torch.save(doc, f))

    def log(record: dict) -> None:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    bar = None
    if progress and dd.main:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=start, unit="step", desc=cfg.phase, dynamic_ncols=True)
    net.train()
    t_start = time.perf_counter()
    t_window, n_window, loss_sum = time.perf_counter(), 0, torch.zeros((), device=device)
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
        )
        step += 1
        loss_sum += loss.detach().float()
        n_window += 1
        last = step == cfg.steps
        if step % cfg.log_every == 0 or last or (cfg.eval_every and step % cfg.eval_every == 0):
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
            if eval_ds is not None and (last or (cfg.eval_every and step % cfg.eval_every == 0)):
                top1 = evaluate(model, eval_ds, cfg, device, dd)
                record["top1"] = top1
                if best is None or top1 > best:
                    best, best_step = top1, step
            if dd.main:
                log(record)
                if bar is not None:
                    bar.set_postfix(loss=f"{record['loss']:.3f}", img_s=f"{record['images_per_s']:.0f}")
            t_window, n_window, loss_sum = time.perf_counter(), 0, torch.zeros((), device=device)
        if dd.main and (step % cfg.checkpoint_every == 0 or last):
            save_checkpoint(step)
        if bar is not None:
            bar.update(1)
        if step % cfg.checkpoint_every == 0 or last:
            _barrier(dd)
    if bar is not None:
        bar.close()
    if start >= cfg.steps and eval_ds is not None:  # killed between checkpoint and summary
        top1 = evaluate(model, eval_ds, cfg, device, dd)
        if best is None or top1 > best:
            best, best_step = top1, cfg.steps
    wall = elapsed + time.perf_counter() - t_start
    summary = {
        "phase": cfg.phase,
        "steps": cfg.steps,
        "global_batch": res.global_batch,
        "lr": res.lr,
        "num_classes": num_classes,
        "top1_last": top1,
        "top1_best": best,
        "best_step": best_step,
        "wall_seconds": wall,
        "setup_seconds": t_start - t_begin,
        "images_per_s": (cfg.steps - start) * res.global_batch / max(time.perf_counter() - t_start, 1e-9),
        "weights_sha256": weights_sha256(model),
        "device": str(device),
        "world_size": dd.world_size,
        "finished": True,
    }
    if dd.main:
        atomic_write_bytes(out / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    _barrier(dd)
    return summary
