"""Training throughput side by side: the bare model step, our step fed by each pipeline, the data alone.

    python benchmarks/bench_train.py [--profile paper] [--steps 20] [--batch-size B] [--model NAME]
        [--categories C] [--augment pattern] [--data ofdb|fractaldb] [--img-size S]
        [--render-size R] [--render-points P] [--workers W] [--compile] [--threads T]
        [--kinds default,pattern,...] [--no-loader] [--no-data] [--quick] [--quick-model] [--json OUT]

Rows (images/s; ``ratio`` is against the bare step):

* ``step``: the bare timm step (synthetic batch already on the device: forward, cross-entropy,
  backward, the profile's optimizer; on CUDA the profile's precision, with the engine's gradient
  scaler where it is fp16, and channels_last), ``engine.train_step`` on the same fixed batch (the
  engine's overhead with the profile's Mixup), and ``engine.train_step`` fed by the loader pipeline
  (DataLoader with ``--workers`` processes over the in-memory source, timm per image; not with
  ``--no-loader``) and by the batched pipeline (``batched.DeviceBatches`` on the model's device).
  Both steps run the arithmetic the engine's runs do, so hours projected from them are the engine's.
* ``data``: the batched pipeline alone (source and augmentation, no model), per ``--kinds`` entry
  when given (an OFDB Table-1 option or ``fractaldb``), and its stages one by one (source, the
  parameters drawn on the CPU, crop and resize, RandAugment); timm's per-image transform and the
  loader's per-image source, per worker (one process); on the CPU, the batched pipeline per core.
  ``--no-data`` leaves these out.

Each row is printed on stderr as it is measured, and the table on stdout once the file is written.

The profile gives the recipe (``paper``: ViT-Tiny/16, 224 px, batch 256; ``paper-21k``: ViT-Base/16,
batch 1,024); the options shrink it for a quick run, and ``--quick`` shrinks every one not given
(``QUICK``: 8 categories, batch 8, 64 px, 5,000 render points, 2 steps after 1, one loader worker)
and the model to one block of width 32 (``QUICK_MODEL``; ``--quick-model`` cuts the model alone): a CPU run of seconds that checks the
script, not the recipe's speed. ``--json PATH`` (default ``book/bench/train.json``) writes the
result document of the book's speed page (``_record.py``: machine, command, date, columns, rows of
text, notes) with the raw figures besides: ``device``, ``threads``, ``config``, ``compile`` and
``measurements`` (one ``{part, what, images_per_s, ratio}`` per row, what
``benchmarks/project_hours.py`` projects hours from). The table printed is that document's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import _record  # noqa: E402
import torch  # noqa: E402

from ofdb_study.config import phase_config, resolve  # noqa: E402
from ofdb_study.train import augment, batched, engine, memory, models  # noqa: E402
from ofdb_study.train.runtime import Dist, resolve_device  # noqa: E402

#: What ``--quick`` sets where the option is not given (argparse destinations).
QUICK = {
    "categories": 8,
    "batch_size": 8,
    "img_size": 64,
    "render_size": 64,
    "render_points": 5000,
    "steps": 2,
    "warmup": 1,
    "workers": 1,
}
#: The model of ``--quick``: the profile's timm ViT cut to one block of width 32 (config fields).
QUICK_MODEL = {"depth": 1, "embed_dim": 32, "num_heads": 2}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(batches, step, n: int, warmup: int, per_batch: int, device) -> float:
    """images/s of ``step(x, y)`` over ``n`` batches after ``warmup`` batches."""
    it = iter(batches)
    for _ in range(warmup):
        step(*next(it))
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        step(*next(it))
    _sync(device)
    return n * per_batch / (time.perf_counter() - t)


def _model(cfg, classes: int, device):
    torch.manual_seed(0)
    model = models.create_model(cfg, classes).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if cfg.compile and device.type == "cuda" else model
    return model, net


def bare_step_fn(cfg, classes: int, device):
    """The bare timm step on whatever batch it is given (no Mixup, no scheduler, no seeding), in the
    profile's precision with the engine's scaler and optimizer (``engine.build_optimization``)."""
    model, net = _model(cfg, classes, device)
    opt = engine.build_optimization(model, cfg, resolve(cfg), classes, device)[0]
    scaler = engine.build_scaler(cfg, device)

    def step(x, y):
        x = x.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with engine._autocast(device, cfg.precision):
            loss = torch.nn.functional.cross_entropy(net(x), y.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return step


def our_step_fn(cfg, classes: int, device):
    """``engine.train_step`` with the profile's optimisation and Mixup, on successive steps, in
    micro-batches where the engine would split the step on this card (``memory.micro_batch``)."""
    model, net = _model(cfg, classes, device)
    optimizer, scheduler, mixup, criterion = engine.build_optimization(
        model, cfg, resolve(cfg), classes, device
    )
    counter = iter(range(10**9))
    kw = dict(net=net, optimizer=optimizer, scheduler=scheduler, mixup=mixup, criterion=criterion)
    kw["scaler"] = engine.build_scaler(cfg, device)
    kw["micro_batch"] = memory.micro_batch(
        model, cfg.batch_size, cfg.precision, cfg.opt, memory.device_memory(device)
    )

    def step(x, y):
        engine.train_step(next(counter), x, y, **kw, cfg=cfg, num_classes=classes, device=device)

    return step


def _repeat(x, y):
    while True:
        yield x, y


def batched_batches(cfg, train_ds, device, steps: int):
    parts = batched.choose_pipeline(cfg.replace(pipeline="batched"), train_ds, device, Dist())[1]
    return engine._batches(train_ds, cfg.replace(steps=steps), 0, device, Dist(), parts)


def stage_rates(cfg, train_ds, device, n: int, warm: int) -> list[tuple[str, float]]:
    """images/s of each stage of the batched pipeline alone on the device (where its time goes)."""
    import ofdb_study.train.batched.pil  # noqa: F401  (batched.pil)
    from ofdb_study.train.runtime import StreamBatches

    source = batched.sources.batched_source(train_ds, device)
    aug = batched.transforms.BatchAugment.from_timm(augment.train_transform(cfg))
    b = cfg.batch_size
    keys = next(iter(StreamBatches(len(source), b, 0, 0, 1)))
    gen, noise = batched.DeviceBatches(
        source, aug, seed=0, batch=b, start=0, stop=1, device=device
    ).generators(0)
    x8 = source.batch(keys, noise)[0]
    p = aug.params(gen, b, x8.shape[-2], x8.shape[-1])
    crop = batched.pil.resized_crop(x8, p.crop, aug.size, aug.interpolation)
    stages = [
        ("source", lambda: source.batch(keys, noise)),
        ("parameters (CPU)", lambda: aug.params(gen, b, x8.shape[-2], x8.shape[-1])),
        ("crop and resize", lambda: batched.pil.resized_crop(x8, p.crop, aug.size, aug.interpolation)),
    ]
    if aug.ra is not None:
        stages.append(("RandAugment", lambda: aug.ra.apply(crop.clone(), p.ra)))
    out = []
    for name, fn in stages:
        out.append((name, _timed(_repeat(None, None), lambda *_, fn=fn: fn(), n, warm, b, device)))
    return out


def per_image_rates(cfg, train_ds, n: int = 40) -> tuple[float, float]:
    """(timm transform, loader source) images/s in this process, on the dataset's own images."""
    from PIL import Image

    tf = augment.train_transform(cfg)
    imgs = [Image.fromarray(train_ds.image(i % len(train_ds))).convert("RGB") for i in range(8)]
    t = time.perf_counter()
    for i in range(n):
        tf(imgs[i % 8])
    aug = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n):
        train_ds.image(i % len(train_ds))
    return aug, n / (time.perf_counter() - t)


def model_name(cfg) -> str:
    """The timm model of a config, with the depth and width where the config cuts them."""
    cut = [f"{k.replace('_', ' ')} {getattr(cfg, k)}" for k in QUICK_MODEL if getattr(cfg, k) is not None]
    return cfg.model + (f" ({', '.join(cut)})" if cut else "")


def precision_name(cfg, device) -> str:
    """The step's arithmetic as the engine runs it: the profile's precision on CUDA (fp16 with its
    gradient scaler), float32 on the CPU."""
    if device.type != "cuda":
        return "fp32 (CPU)"
    return cfg.precision + (" with GradScaler" if engine.build_scaler(cfg, device) is not None else "")


def _kind(cfg) -> str:
    """The data kind of a config: ``fractaldb`` or the OFDB Table-1 option."""
    return "fractaldb" if cfg.data == "fractaldb" else cfg.augment


def run(args):
    """(rows (part, what, images/s, ratio to the bare step or None), config, device)."""
    over = {
        k: v
        for k, v in {
            "model": args.model,
            "batch_size": args.batch_size,
            "categories": args.categories,
            "augment": args.augment,
            "data": args.data,
            "img_size": args.img_size,
            "render_size": args.render_size,
            "render_points": args.render_points,
            "num_workers": args.workers,
        }.items()
        if v is not None
    }
    if getattr(args, "quick", False) or getattr(args, "quick_model", False):
        over.update(QUICK_MODEL)
    cfg = phase_config(args.profile, "pretrain", compile=args.compile, **over)
    device = resolve_device()
    train_ds, _, classes, _ = engine.build_data(cfg)
    b, n, warm = cfg.batch_size, args.steps, args.warmup
    x = torch.randn(b, 3, cfg.img_size, cfg.img_size, device=device)
    y = torch.randint(0, classes, (b,), device=device)
    rows = []

    def add(part, what, rate, ratio):  # on stderr as measured: a run cut short still shows its rows
        rows.append((part, what, rate, ratio))
        tail = "" if ratio is None else f"  {ratio:.2f}"
        print(f"{part:5} {what.strip():70} {rate:10.1f} images/s{tail}", file=sys.stderr, flush=True)

    bare = _timed(_repeat(x, y), bare_step_fn(cfg, classes, device), n, warm, b, device)
    add("step", f"bare timm step, {model_name(cfg)}, batch {b}, {precision_name(cfg, device)}", bare, 1.0)
    ours = our_step_fn(cfg, classes, device)  # one model (compiled once) for every row of ours
    fixed = _timed(_repeat(x, y), ours, n, warm, b, device)
    add("step", "ours, fixed batch (engine overhead, Mixup as the profile)", fixed, fixed / bare)
    if not getattr(args, "no_loader", False):
        loader = engine._loader(train_ds, cfg.replace(steps=n + warm), 0, device, Dist())
        rate = _timed(loader, ours, n, warm, b, device)
        add("step", f"ours + loader pipeline, {cfg.num_workers} workers", rate, rate / bare)
    rate = _timed(batched_batches(cfg, train_ds, device, n + warm), ours, n, warm, b, device)
    add("step", f"ours + batched pipeline, {_kind(cfg)}", rate, rate / bare)
    if getattr(args, "no_data", False):
        return rows, cfg, device
    main_alone = None
    for kind in dict.fromkeys([_kind(cfg)] + (args.kinds or [])):
        kcfg = (
            cfg.replace(data="fractaldb", augment="default")
            if kind == "fractaldb"
            else cfg.replace(augment=kind)
        )
        kds = train_ds if kcfg == cfg else engine.build_data(kcfg)[0]
        alone = _timed(batched_batches(kcfg, kds, device, n + warm), lambda x, y: None, n, warm, b, device)
        add("data", f"batched pipeline alone, {kind}", alone, None)
        main_alone = main_alone or alone
    for name, rate in stage_rates(cfg, train_ds, device, n, warm):
        add("data", f"  stage: {name}", rate, None)
    if device.type == "cpu":
        add("data", "batched pipeline alone per core", main_alone / torch.get_num_threads(), None)
    aug, src = per_image_rates(cfg, train_ds)
    add("data", f"timm transform per worker, {cfg.render_size} -> {cfg.img_size} px", aug, None)
    add("data", "loader source per worker (no transform)", src, None)
    add("data", "loader pipeline per worker (source + transform)", 1 / (1 / aug + 1 / src), None)
    return rows, cfg, device


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--steps", type=int, help="timed steps per row (default 20)")
    p.add_argument("--warmup", type=int, help="untimed steps first (compilation, workers; default 5)")
    p.add_argument("--model")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--categories", type=int)
    p.add_argument("--augment", help="the OFDB Table-1 option of the step rows")
    p.add_argument("--data", help="ofdb | fractaldb")
    p.add_argument("--img-size", type=int)
    p.add_argument("--render-size", type=int)
    p.add_argument("--render-points", type=int)
    p.add_argument("--workers", type=int, help="loader processes (default: the profile's)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the profile's, else torch's)")
    p.add_argument("--kinds", type=lambda s: s.split(","), help="batched-alone rows: OFDB options, fractaldb")
    p.add_argument("--no-loader", action="store_true", help="no step row fed by the loader pipeline")
    p.add_argument("--no-data", action="store_true", help="the step rows only (no data-alone rows)")
    p.add_argument("--quick-model", action="store_true", help="the model of --quick (QUICK_MODEL) only")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a CPU run of seconds: every shrinking option not given takes its QUICK value",
    )
    _record.add_json_option(p, "train")
    args = p.parse_args(argv)
    for name, value in {"steps": 20, "warmup": 5, **(QUICK if args.quick else {})}.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    load = os.getloadavg()
    threads = args.threads or phase_config(args.profile, "pretrain").threads
    if threads:
        torch.set_num_threads(threads)
    rows, cfg, device = run(args)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    raw = {
        "device": name,
        "threads": torch.get_num_threads(),
        "config": cfg.to_dict(),
        "compile": args.compile,
        "precision": precision_name(cfg, device),
        "measurements": [{"part": a, "what": w, "images_per_s": v, "ratio": r} for a, w, v, r in rows],
    }
    cells = [[a, w.strip(), f"{v:.1f}", "" if r is None else f"{r:.2f}"] for a, w, v, r in rows]
    notes = [
        f"Device {name}, {torch.get_num_threads()} torch threads; profile {args.profile}: "
        f"{model_name(cfg)}, batch {cfg.batch_size}, {cfg.img_size} px, {cfg.categories} categories, {cfg.render_size} px "
        f"renders, {args.steps} timed steps after {args.warmup}{', compiled' if args.compile else ''}; "
        f"{precision_name(cfg, device)}, the engine's step.",
        "No anchor row: the paper gives no throughput. Its Table 3 implies about 78 images/s per V100 "
        "for ViT-B/16 (2D-OFDB-21k: 1,088 GPU-hours for 300k iterations at batch 1,024; ofdb-facts "
        "section 8), and the pre-training length is 240k steps at batch 256 for the 1k rows "
        "(benchmarks/project_hours.py turns the figures into hours).",
    ]
    paper = phase_config(args.profile, "pretrain")
    ours_cut, recipe = model_name(cfg), model_name(paper)
    if (ours_cut, cfg.batch_size, cfg.img_size) != (recipe, paper.batch_size, paper.img_size):
        notes.append(
            f"Shrunk run{' (--quick)' if args.quick else ''}: {ours_cut} at batch {cfg.batch_size} and "
            f"{cfg.img_size} px instead of the profile's {recipe} at batch {paper.batch_size} and "
            f"{paper.img_size} px; the figures show where the time goes, not the recipe's speed."
        )
    notes += [*args.note, _record.load_note(load)]
    gpu = _record.torch_gpu()
    _record.record(
        args.json, ["part", "what", "images/s", "ratio to bare step"], cells, notes, gpu=gpu, extra=raw
    )


if __name__ == "__main__":
    main()
