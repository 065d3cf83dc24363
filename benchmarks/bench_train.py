"""Training throughput: our step vs a bare timm loop, the paper's augmentation, the pattern source.

    python benchmarks/bench_train.py [--profile mini] [--steps 30] [--threads N] [--paper-gpu [--compile]]

Prints one table:

* ``loop``: images/s of ``engine.train_step`` (scheduler, per-step seeding, soft-target loss,
  Mixup when the profile has it) against a bare loop over the same timm model, batch and
  synthetic tensors (``model(x)``, cross-entropy, AdamW); the goal is >= 0.9x.
* ``augment``: images/s per worker of the paper's pre-training transform at 224 px on a 362 px
  OFDB image (one process, no DataLoader).
* ``source``: images/s of the in-memory random-pattern source (fresh masks, no transform), at the
  paper's 362 px / 200k points and at the profile's render size.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ofdb_study.config import phase_config, resolve  # noqa: E402
from ofdb_study.fractals.defaults import OFDB_PAD, OFDB_POINTS, OFDB_SIZE  # noqa: E402
from ofdb_study.fractals.search import search  # noqa: E402
from ofdb_study.train import (  # noqa: E402
    augment,
    engine,  # noqa: E402
    models,
    pretrain_data,  # noqa: E402
)
from ofdb_study.train.runtime import resolve_device  # noqa: E402


def _rate(fn, n_items: int, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return n_items * repeats / (time.perf_counter() - t)


def _train_step_fn(net, model, cfg, x, y, classes: int, device):
    """One call = one ``engine.train_step`` on the fixed batch, with the profile's optimisation."""
    optimizer, scheduler, mixup, criterion = engine.build_optimization(model, cfg, resolve(cfg), classes)
    counter = iter(range(10**9))

    def step():
        engine.train_step(
            next(counter),
            x,
            y,
            net=net,
            optimizer=optimizer,
            scheduler=scheduler,
            mixup=mixup,
            criterion=criterion,
            cfg=cfg,
            num_classes=classes,
            device=device,
        )

    return step


def bench_loop(profile: str, steps: int, classes: int = 100) -> tuple[float, float, float]:
    """Median images/s of the bare loop, of ours with the profile's Mixup, and of ours without."""
    cfg = phase_config(profile, "pretrain")
    device = resolve_device()
    x = torch.randn(cfg.batch_size, 3, cfg.img_size, cfg.img_size)
    y = torch.randint(0, classes, (cfg.batch_size,))

    torch.manual_seed(0)
    bare = models.create_model(cfg, classes).to(device)
    opt = torch.optim.AdamW(bare.parameters(), lr=1e-4, weight_decay=0.05)
    xd, yd = x.to(device), y.to(device)

    def bare_step():
        loss = torch.nn.functional.cross_entropy(bare(xd), yd)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def ours(c):
        torch.manual_seed(0)
        model = models.create_model(c, classes).to(device)
        return _train_step_fn(model, model, c, x, y, classes, device)

    steps_fns = [bare_step, ours(cfg), ours(cfg.replace(mixup=0.0, cutmix=0.0))]
    # interleave rounds so that the machine's noise (other processes) falls on all three alike
    rates = [[], [], []]
    for _ in range(3):
        for k, fn in enumerate(steps_fns):
            rates[k].append(_rate(fn, cfg.batch_size, max(1, steps // 3)))
    return tuple(float(np.median(r)) for r in rates)


def bench_augment(n: int = 100) -> float:
    from PIL import Image

    cfg = phase_config("paper", "pretrain")
    tf = augment.train_transform(cfg)
    src = pretrain_data.FractalSource(search(1).categories)  # the public generator's settings
    img = Image.fromarray(src.fixed_image(0)).convert("RGB")
    return _rate(lambda: tf(img), 1, n)


def bench_source(size: int, n_points: int, pad: int, n: int = 200) -> float:
    src = pretrain_data.FractalSource(search(4).categories, size=size, n_points=n_points, pad=pad)
    ds = pretrain_data.OFDBDataset(src, "pattern")
    k = iter(range(10**9))
    return _rate(lambda: ds.image(next(k) % 4), 1, n)


def bench_paper_gpu(steps: int, compile_: bool) -> tuple[float, float]:
    """Images/s of the paper's ViT-Tiny step (batch 256, Mixup, bf16, channels_last) on this device.

    Returns:
        (images/s of the bare loop, images/s of train_step), same model and synthetic batch.
    """
    cfg = phase_config("paper", "pretrain", compile=compile_)
    device = resolve_device()
    classes = cfg.categories
    x = torch.randn(cfg.batch_size, 3, cfg.img_size, cfg.img_size, device=device)
    y = torch.randint(0, classes, (cfg.batch_size,), device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.manual_seed(0)
    bare = models.create_model(cfg, classes).to(device).to(memory_format=torch.channels_last)
    bare_net = torch.compile(bare) if compile_ else bare
    opt = torch.optim.AdamW(bare.parameters(), lr=5e-4, weight_decay=0.05)
    xc = x.contiguous(memory_format=torch.channels_last)

    def bare_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(bare_net(xc), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    torch.manual_seed(0)
    model = models.create_model(cfg, classes).to(device).to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_ else model
    our_step = _train_step_fn(net, model, cfg, x, y, classes, device)

    out = []
    for fn in (bare_step, our_step):
        for _ in range(5):
            fn()
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        out.append(cfg.batch_size * steps / (time.perf_counter() - t))
    return out[0], out[1]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the profile's, else default)")
    p.add_argument(
        "--paper-gpu",
        action="store_true",
        help="also time the paper's ViT-Tiny step at 224 px, batch 256, on this device",
    )
    p.add_argument("--compile", action="store_true", help="with --paper-gpu: torch.compile the model")
    args = p.parse_args(argv)
    cfg = phase_config(args.profile, "pretrain")
    threads = args.threads or cfg.threads
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device()
    bare, ours, ours_plain = bench_loop(args.profile, args.steps)
    rows = [
        ("loop", f"bare timm loop, {args.profile} model, batch {cfg.batch_size}", bare),
        (
            "loop",
            f"ofdb_study train_step, profile's Mixup ({'on' if augment.mixup_active(cfg) else 'off'})",
            ours,
        ),
        ("loop", "ofdb_study train_step, Mixup off (same work as bare)", ours_plain),
        ("loop", "ratio ours (Mixup off) / bare (goal >= 0.9)", ours_plain / bare),
        ("augment", "paper pre-training transform, 362 -> 224 px, per worker", bench_augment()),
        ("source", "random pattern, 362 px, 200k points", bench_source(OFDB_SIZE, OFDB_POINTS, OFDB_PAD)),
        (
            "source",
            f"random pattern, {cfg.render_size} px, {cfg.render_points} points",
            bench_source(cfg.render_size, cfg.render_points, cfg.render_pad),
        ),
    ]
    if args.paper_gpu:
        pb, po = bench_paper_gpu(max(args.steps, 20), args.compile)
        hours = 240_000 * 256 / po / 3600
        rows += [
            (
                "paper",
                f"bare loop, ViT-Tiny/16 224 px, batch 256, bf16{', compiled' if args.compile else ''}",
                pb,
            ),
            ("paper", "ofdb_study train_step, same (Mixup/CutMix on)", po),
            ("paper", "ratio ours / bare", po / pb),
            ("paper", "projected hours for 240k iterations at batch 256 (ours)", hours),
        ]
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}")
    print(f"{'part':8} {'what':62} {'images/s':>10}")
    for part, what, value in rows:
        print(f"{part:8} {what:62} {value:10.2f}")


if __name__ == "__main__":
    main()
