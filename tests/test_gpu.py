"""GPU checks, marker ``gpu``: ``pytest -m gpu`` on a machine with CUDA (skipped elsewhere).

They run the ``paper`` recipe's own step (ViT-Tiny/16 at 224, RandAugment, Mixup/CutMix, fp16
autocast with its scaler and a fused optimizer, channels_last) for a few steps on in-memory OFDB
data with either pipeline (the loader, and the batched pipeline that ``auto`` picks on CUDA),
compiled too, which is the path a paper-scale run takes and the CPU tests cannot reach; they check
the batched pipeline on the card against the same code on the CPU, that neither it nor the fp16
step makes the host wait for the card, and that the memory estimate is not below a step's peak.
"""

import json
import math

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("pipeline", ["loader", "batched"])
def test_paper_recipe_steps_on_cuda(tmp_path, pipeline):
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
        augment="pattern",
        pipeline=pipeline,
    )
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["device"].startswith("cuda") and summary["steps"] == 4
    assert summary["pipeline"] == pipeline
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(math.isfinite(r["loss"]) for r in rows)
    assert summary["images_per_s"] > 0 and len(summary["weights_sha256"]) == 64


@pytest.fixture
def math_attention():
    """Attention on torch's math kernel, whose backward is deterministic (the fused ones' is not)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


@pytest.mark.parametrize("pipeline", ["loader", "auto"])
def test_resume_on_cuda_gives_the_uninterrupted_weights(tmp_path, monkeypatch, pipeline, math_attention):
    """Interrupted inside step 3 (after the step-2 checkpoint) and resumed, a CUDA run ends with
    the same weights as one run straight through where the kernels are deterministic: cuDNN
    restricted to its deterministic ones and attention on the math kernel. A plain CUDA run's fused
    attention backward is not bit-reproducible: two such runs differ in their last bits."""
    from ofdb_study.config import phase_config
    from ofdb_study.train import engine

    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    cfg = phase_config("smoke", "pretrain", steps=4, checkpoint_every=2, augment="both", pipeline=pipeline)
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


def test_compiled_paper_steps_with_the_batched_pipeline(tmp_path):
    from ofdb_study.config import phase_config
    from ofdb_study.train.engine import train

    cfg = phase_config(
        "paper",
        "pretrain",
        steps=3,
        batch_size=64,
        categories=8,
        warmup_steps=1,
        checkpoint_every=3,
        log_every=1,
        eval_every=0,
        compile=True,
        pipeline="batched",
    )
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["pipeline"] == "batched" and summary["steps"] == 3
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss"]) for r in rows)


def _paper_sources(option):
    from ofdb_study.fractals.search import first_categories
    from ofdb_study.train import batched, pretrain_data

    src = pretrain_data.FractalSource(first_categories(4, None))  # the paper's 362 px, 200k points
    if option == "fractaldb":
        ds = pretrain_data.FractalDBDataset(src)
    else:
        ds = pretrain_data.OFDBDataset(src, option)
    return [batched.sources.FractalBatches(ds, torch.device(d)) for d in ("cpu", "cuda")]


@pytest.mark.parametrize("option", ["pattern", "fluctuation", "fractaldb"])
def test_batched_sources_on_cuda_give_the_cpu_bytes(option):
    """The tables stamped on the card give the CPU's bytes (which the CPU tests check against the
    loader's sources)."""
    on_cpu, on_cuda = _paper_sources(option)
    keys = [(k * 397 % len(on_cpu), k) for k in range(8)]
    a, la = on_cpu.batch(keys, None)
    b, lb = on_cuda.batch(keys, None)
    assert torch.equal(a, b.cpu()) and torch.equal(la, lb.cpu())


def test_batched_augmentation_on_cuda_follows_the_cpu():
    """The same parameters give the same pixels on the card as on the CPU (crop, flips and the LUT
    ops exactly; the float64 warps within a gray level), erasing off since its noise differs."""
    from ofdb_study.config import phase_config
    from ofdb_study.train import augment, batched

    aug = batched.transforms.BatchAugment.from_timm(
        augment.train_transform(phase_config("paper", "pretrain", re_prob=0.0))
    )
    on_cpu, on_cuda = _paper_sources("pattern")
    keys = [(c % 4, c) for c in range(64)]
    x = on_cpu.batch(keys, None)[0]
    p = aug.params(torch.Generator().manual_seed(0), 64, 362, 362)
    a = aug.apply(x, p, None)
    b = aug.apply(x.cuda(), p, None).cpu()
    diff = (a - b).abs()
    assert diff.max() <= 1 / 127.5 + 1e-6 and (diff > 0).double().mean() < 1e-3


def test_the_batched_pipeline_never_waits_for_the_card():
    from ofdb_study.config import phase_config
    from ofdb_study.train import augment, batched

    aug = batched.transforms.BatchAugment.from_timm(
        augment.train_transform(phase_config("paper", "pretrain"))
    )
    source = _paper_sources("both")[1]
    batches = batched.DeviceBatches(
        source, aug, seed=0, batch=64, start=0, stop=4, device=torch.device("cuda")
    )
    it = iter(batches)
    next(it)  # first use: allocations, lazy initialisation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        x = [xb for xb, _ in it][-1]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert x.shape == (64, 3, 224, 224) and torch.isfinite(x).all()


def _paper_step(batch: int, **overrides):
    """(one ``engine.train_step`` call of the paper recipe on a fixed CUDA batch, the model)."""
    from ofdb_study.config import phase_config, resolve
    from ofdb_study.train import engine, models

    cfg = phase_config("paper", "pretrain", batch_size=batch, categories=8, **overrides)
    device = torch.device("cuda", 0)
    model = models.create_model(cfg, 8).to(device).to(memory_format=torch.channels_last)
    optimizer, scheduler, mixup, criterion = engine.build_optimization(model, cfg, resolve(cfg), 8, device)
    kw = dict(net=model, optimizer=optimizer, scheduler=scheduler, mixup=mixup, criterion=criterion)
    kw.update(cfg=cfg, num_classes=8, device=device, scaler=engine.build_scaler(cfg, device))
    x = torch.randn(batch, 3, cfg.img_size, cfg.img_size, device=device)
    y = torch.randint(0, 8, (batch,), device=device)
    return (lambda step, micro=None: engine.train_step(step, x, y, **kw, micro_batch=micro)), model


def test_the_fp16_step_never_waits_for_the_card():
    """The scaler's inf check stays on the card (the fused optimizer takes it), so the host can run
    ahead and make the next batch while the card steps."""
    step, _ = _paper_step(32)
    step(0)
    step(1, 16)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(2)
        step(3, 16)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_the_memory_estimate_is_not_below_a_steps_peak():
    from ofdb_study.train import memory

    step, model = _paper_step(64)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step(0)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    estimate = memory.step_bytes(model, 64, "fp16", "adamw") - memory.OVERHEAD
    assert peak <= estimate + 2**30, (peak / 2**20, estimate / 2**20)


def test_two_deterministic_runs_give_the_same_weights(tmp_path, monkeypatch):
    """OFDB_DETERMINISTIC: deterministic kernels and math attention, so two runs of the paper-like
    recipe are bit-identical on the card (plain runs differ in their last bits)."""
    from ofdb_study.config import phase_config
    from ofdb_study.train import engine

    monkeypatch.setenv(engine.DETERMINISTIC_ENV, "1")
    cfg = phase_config("smoke", "pretrain", steps=3, augment="both", pipeline="batched")
    a = engine.train(cfg, tmp_path / "a", progress=False)
    b = engine.train(cfg, tmp_path / "b", progress=False)
    assert a["device"].startswith("cuda") and a["weights_sha256"] == b["weights_sha256"]
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["deterministic"] is True
