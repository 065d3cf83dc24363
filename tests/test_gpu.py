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


def test_resume_on_cuda_gives_the_uninterrupted_weights(tmp_path, monkeypatch):
    """Interrupted inside step 3 (after the step-2 checkpoint) and resumed, a CUDA run ends with
    the same weights as one run straight through (cuDNN restricted to deterministic kernels)."""
    from ofdb_study.config import phase_config
    from ofdb_study.train import engine

    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    cfg = phase_config("smoke", "pretrain", steps=4, checkpoint_every=2)
    whole = engine.train(cfg, tmp_path / "whole", progress=False)

    real = engine.build_optimization

    def interrupted(*args, **kwargs):
        optimizer, scheduler, mixup, criterion = real(*args, **kwargs)
        step, calls = optimizer.step, []

        def step_or_stop(*a, **k):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt  # after backward, before the update of step 3
            return step(*a, **k)

        optimizer.step = step_or_stop
        return optimizer, scheduler, mixup, criterion

    monkeypatch.setattr(engine, "build_optimization", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.train(cfg, tmp_path / "run", progress=False)
    monkeypatch.setattr(engine, "build_optimization", real)
    assert not (tmp_path / "run" / "summary.json").exists()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2
    resumed = engine.train(cfg, tmp_path / "run", resume=True, progress=False)
    assert resumed["device"].startswith("cuda") and resumed["steps"] == 4
    assert resumed["weights_sha256"] == whole["weights_sha256"]
