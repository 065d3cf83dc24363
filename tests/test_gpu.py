"""GPU checks, marker ``gpu``: ``pytest -m gpu`` on a machine with CUDA (skipped elsewhere).

They run the ``paper`` recipe's own step (ViT-Tiny/16 at 224, RandAugment, Mixup/CutMix, bf16
autocast, channels_last) for a few steps on in-memory OFDB data, which is the path a paper-scale
run takes and the CPU tests cannot reach.
"""

import json
import math

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_paper_recipe_steps_on_cuda(tmp_path):
    from ofdb_study.config import phase_config
    from ofdb_study.train.engine import train
    from ofdb_study.train.runtime import resolve_device

    assert resolve_device().type == "cuda"
    cfg = phase_config(
        "paper",
        "pretrain",
        steps=4,
        batch_size=32,
        categories=8,
        warmup_steps=1,
        checkpoint_every=2,
        log_every=1,
        eval_every=0,
        num_workers=2,
    )
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["device"].startswith("cuda") and summary["steps"] == 4
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(math.isfinite(r["loss"]) for r in rows)
    assert summary["images_per_s"] > 0 and len(summary["weights_sha256"]) == 64


def test_resume_on_cuda_continues_to_the_end(tmp_path):
    from ofdb_study.config import phase_config
    from ofdb_study.train.engine import train

    short = phase_config("smoke", "pretrain", steps=4, checkpoint_every=2)
    train(short, tmp_path / "run", progress=False)
    (tmp_path / "run" / "summary.json").unlink()  # as if killed after the last checkpoint
    summary = train(short, tmp_path / "run", resume=True, progress=False)
    assert summary["steps"] == 4 and summary["device"].startswith("cuda")
