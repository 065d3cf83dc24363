"""One training step of ViT-Base/16 at batch 1,024 as ``paper-21k`` runs it, with its peak memory.

    python benchmarks/memory_probe.py [--profile paper-21k] [--batch-size 1024] [--json OUT] [--dry-run]

For each phase of the profile (pre-training under its precision with its scaler; fine-tuning in its
precision) it builds the model and the engine's optimizer on the device, runs ``engine.train_step``
once on a synthetic batch with the micro-batch the engine would take on this card
(``train.memory.micro_batch``), and prints the estimate of ``train.memory.step_bytes`` beside the
peak the card allocated (``torch.cuda.max_memory_allocated``), or the out-of-memory error. On the CPU
(``--dry-run``: a one-block model of width 32 at batch 8 and 64 px) there is no peak to read: the
script checks that the step runs. ``--json`` writes one record per phase.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ofdb_study.config import phase_config, resolve  # noqa: E402
from ofdb_study.train import engine, memory, models  # noqa: E402
from ofdb_study.train.runtime import resolve_device  # noqa: E402

GiB = 2**30


def probe(cfg, device) -> dict:
    """One step of ``cfg`` on a synthetic batch: the estimate, the micro-batch and the peak."""
    classes = cfg.categories if cfg.phase == "pretrain" else 1000
    torch.manual_seed(0)
    model = models.create_model(cfg, classes).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(device)
    card = memory.device_memory(device)
    micro = memory.micro_batch(model, cfg.batch_size, cfg.precision, cfg.opt, card)
    est = memory.step_bytes(model, micro, cfg.precision, cfg.opt, device.type)
    rec = {
        "phase": cfg.phase,
        "model": cfg.model,
        "batch": cfg.batch_size,
        "micro_batch": micro,
        "precision": cfg.precision if device.type == "cuda" else "fp32 (CPU)",
        "estimate_gib": round(est / GiB, 2),
        "card_gib": None if card is None else round(card / GiB, 2),
    }
    print(
        f"{cfg.phase}: {cfg.model}, batch {cfg.batch_size} as {cfg.batch_size // micro} x {micro}, "
        f"{rec['precision']}: estimate {rec['estimate_gib']} GiB",
        flush=True,
    )
    optimizer, scheduler, mixup, criterion = engine.build_optimization(
        model, cfg, resolve(cfg), classes, device
    )
    x = torch.randn(cfg.batch_size, 3, cfg.img_size, cfg.img_size)
    y = torch.randint(0, classes, (cfg.batch_size,))
    t = time.perf_counter()
    try:
        loss = engine.train_step(
            0,
            x,
            y,
            net=model,
            optimizer=optimizer,
            scheduler=scheduler,
            mixup=mixup,
            criterion=criterion,
            cfg=cfg,
            num_classes=classes,
            device=device,
            scaler=engine.build_scaler(cfg, device),
            micro_batch=micro,
        )
        rec["loss"] = float(loss)
        rec["seconds"] = round(time.perf_counter() - t, 2)
        rec["ok"] = True
    except torch.OutOfMemoryError as e:
        rec["ok"], rec["error"] = False, f"out of memory: {str(e).splitlines()[0]}"
    if device.type == "cuda":
        rec["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / GiB, 2)
        rec["peak_mib_per_image"] = round(rec["peak_gib"] * 1024 / micro, 1)
    print(
        f"  {'peak ' + str(rec.get('peak_gib')) + ' GiB' if 'peak_gib' in rec else 'no peak on the CPU'}"
        f"{'' if rec['ok'] else ', ' + rec['error']}, {rec.get('seconds', '-')} s",
        flush=True,
    )
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper-21k")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--json", type=Path)
    p.add_argument("--dry-run", action="store_true", help="a one-block model at batch 8 and 64 px (the CPU)")
    args = p.parse_args(argv)
    device = resolve_device()
    over = {"batch_size": args.batch_size}
    if args.dry_run:
        over = {"batch_size": 8, "img_size": 64, "depth": 1, "embed_dim": 32, "num_heads": 2}
    records = []
    for phase in ("pretrain", "finetune"):
        cfg = phase_config(args.profile, phase, **over)
        records.append(probe(cfg, device))
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "probes": records}, indent=1) + "\n")
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
