"""What paper-scale runs need, computed on the CPU: the held-out evaluation set's bytes, ViT-Base
memory and the micro-batch that fits a card, gradient accumulation giving the step of the whole
batch, and settings a run changes being put back."""

import pytest
import torch

from ofdb_study.config import phase_config, resolve
from ofdb_study.train import engine, memory, models
from ofdb_study.train.runtime import Dist

GiB = 2**30
#: An 80 GB H100 as torch reports it (bytes).
H100 = 85_031_714_816


@pytest.fixture(scope="module")
def vit_b():
    cfg = phase_config("paper-21k", "pretrain")
    with torch.device("meta"):
        return models.create_model(cfg, cfg.categories)


def test_the_paper_21k_evaluation_set_is_bounded_as_uint8():
    cfg = phase_config("paper-21k", "pretrain")
    n = cfg.eval_per_category * cfg.categories
    assert n == 210_000
    need = engine.eval_bytes(n, cfg.img_size)
    assert need / GiB == pytest.approx(29.4, abs=0.05)  # float32 would be 118 GiB
    assert need < 0.5 * 128 * GiB  # within check_fits's share of a 128 GiB host


def test_the_evaluation_set_is_stored_as_uint8_and_evaluates_as_before():
    cfg = phase_config("smoke", "pretrain", categories=3, eval_per_category=2)
    _, held, classes, _ = engine.build_data(cfg)
    ev = engine.eval_tensors(held, ("uint8-test",), cfg.mean, cfg.std)
    assert ev.images.dtype == torch.uint8 and len(ev) == len(held)
    floats = torch.stack([held[i][0] for i in range(len(held))])
    assert torch.equal(ev.tensors[0], floats)  # bit for bit the transform's output
    model = models.create_model(cfg, classes)
    plain = torch.utils.data.TensorDataset(floats, ev.labels)
    cpu = torch.device("cpu")
    assert engine.evaluate(model, ev, 4, cpu) == engine.evaluate(model, plain, 4, cpu)


def test_vit_b_memory_and_the_micro_batch_of_an_80_gb_card(vit_b):
    per_image_16 = memory.step_bytes(vit_b, 2, "fp16", "adamw") - memory.step_bytes(vit_b, 1, "fp16", "adamw")
    per_image_32 = memory.step_bytes(vit_b, 2, "fp32", "adamw") - memory.step_bytes(vit_b, 1, "fp32", "adamw")
    assert per_image_16 / 2**20 == pytest.approx(58.9, abs=0.1)
    assert per_image_32 == 2 * per_image_16  # about the 113 MiB an image the review measured
    # pre-training (fp16, batch 1,024): one pass fits; fine-tuning in float32: two passes of 512
    pre, fine = phase_config("paper-21k", "pretrain"), phase_config("paper-21k", "finetune")
    assert (pre.precision, pre.batch_size, fine.precision, fine.batch_size) == ("fp16", 1024, "fp32", 1024)
    assert memory.step_bytes(vit_b, 1024, "fp16", "adamw") / GiB == pytest.approx(63.4, abs=0.5)
    assert memory.micro_batch(vit_b, 1024, pre.precision, pre.opt, H100) == 1024
    assert memory.step_bytes(vit_b, 1024, "fp32", "adamw") > H100
    assert memory.micro_batch(vit_b, 1024, fine.precision, fine.opt, H100) == 512
    assert memory.micro_batch(vit_b, 1024, "fp32", "adamw", None) == 1024  # the CPU: no split


def test_accumulated_micro_batches_give_the_step_of_the_whole_batch():
    cfg = phase_config("smoke", "pretrain", steps=2, batch_size=8)
    cpu = torch.device("cpu")
    weights = []
    for micro in (None, 2):
        torch.manual_seed(0)
        model = models.create_model(cfg, 4)
        opt, sched, mixup, crit = engine.build_optimization(model, cfg, resolve(cfg), 4, cpu)
        g = torch.Generator().manual_seed(1)
        for step in range(2):
            x, y = torch.randn(8, 3, cfg.img_size, cfg.img_size, generator=g), torch.arange(8) % 4
            loss = engine.train_step(
                step, x, y, net=model, optimizer=opt, scheduler=sched, mixup=mixup, criterion=crit,
                cfg=cfg, num_classes=4, device=cpu, micro_batch=micro,
            )  # fmt: skip
            assert torch.isfinite(loss)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-5)


def test_a_run_puts_the_thread_count_back(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = phase_config("smoke", "pretrain", steps=1, threads=1, eval_every=0)
        summary = engine.train(cfg, tmp_path / "run", progress=False)
        assert torch.get_num_threads() == 2 and summary["micro_batch"] == cfg.batch_size
    finally:
        torch.set_num_threads(before)


def test_an_error_on_rank_0_is_raised_there():
    def boom():
        raise ValueError("rank 0's error")

    with pytest.raises(ValueError, match="rank 0's error"):
        engine.main_first(Dist(), torch.device("cpu"), boom)
    assert engine.main_first(Dist(), torch.device("cpu"), lambda: 3) == 3


def test_posterize_keeping_zero_bits_gives_a_black_image_on_any_pillow():
    """RandAugment inc1 at magnitude 10 asks for 0 bits, which Pillow 13 refuses and Pillow 12 made black."""
    from PIL import Image
    from timm.data import auto_augment

    from ofdb_study.train import augment

    augment.train_transform(phase_config("paper", "pretrain"))
    img = Image.new("RGB", (8, 8), (200, 100, 50))
    assert auto_augment.NAME_TO_OP["PosterizeIncreasing"](img, 0).getextrema() == ((0, 0),) * 3
    assert auto_augment.NAME_TO_OP["PosterizeIncreasing"](img, 4).getextrema() == (
        (192, 192),
        (96, 96),
        (48, 48),
    )


def test_a_timm_transform_the_batched_pipeline_does_not_know_is_refused_with_timms_version():
    import timm
    from torchvision import transforms as T

    from ofdb_study.errors import ParamError
    from ofdb_study.train import augment, batched

    tf = augment.train_transform(phase_config("paper", "pretrain"))
    tf.transforms.append(T.GaussianBlur(3))
    with pytest.raises(ParamError, match=f"GaussianBlur \\(timm {timm.__version__}\\)"):
        batched.transforms.BatchAugment.from_timm(tf)


def test_micro_batches_under_a_gradient_scaler_with_a_fused_optimizer():
    """The fp16 path's logic on the CPU: a scaler and a fused AdamW (which takes the scaler's inf
    check itself) over accumulated micro-batches give the plain step's weights."""
    cfg = phase_config("smoke", "pretrain", steps=2, batch_size=8)
    cpu = torch.device("cpu")
    weights = []
    for scaled in (False, True):
        torch.manual_seed(0)
        model = models.create_model(cfg, 4)
        opt, sched, mixup, crit = engine.build_optimization(model, cfg, resolve(cfg), 4, cpu)
        scaler = None
        if scaled:
            groups = [{k: v for k, v in g.items() if k not in ("fused", "foreach")} for g in opt.param_groups]
            opt = torch.optim.AdamW(groups, fused=True)
            assert opt._step_supports_amp_scaling
            scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
            sched.optimizer = opt
        g = torch.Generator().manual_seed(1)
        for step in range(2):
            x, y = torch.randn(8, 3, cfg.img_size, cfg.img_size, generator=g), torch.arange(8) % 4
            engine.train_step(
                step, x, y, net=model, optimizer=opt, scheduler=sched, mixup=mixup, criterion=crit,
                cfg=cfg, num_classes=4, device=cpu, scaler=scaler, micro_batch=4 if scaled else None,
            )  # fmt: skip
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-5)


def _rank(rank: int, port: int, out) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)

    def build():
        raise ValueError("rank 0 cannot build its data")

    try:
        engine.main_first(Dist(rank, 2), torch.device("cpu"), build, rest=lambda: "built")
    except Exception as e:  # noqa: BLE001
        out.put((rank, type(e).__name__, str(e)))
    finally:
        dist.destroy_process_group()


def test_an_error_on_rank_0_stops_the_other_ranks_too():
    import multiprocessing as mp
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    seen = dict((r, (kind, msg)) for r, kind, msg in (out.get(timeout=5) for _ in range(2)))
    assert seen[0] == ("ValueError", "rank 0 cannot build its data")
    assert seen[1][0] == "TrainingError" and "rank 0 stopped with an error" in seen[1][1]


def test_deterministic_kernels_are_asked_by_the_environment_and_put_back(tmp_path, monkeypatch):
    import json

    cfg = phase_config("smoke", "pretrain", steps=2, eval_every=0)
    plain = engine.train(cfg, tmp_path / "plain", progress=False)
    monkeypatch.setenv(engine.DETERMINISTIC_ENV, "1")
    before = engine._kernel_settings()
    det = engine.train(cfg, tmp_path / "det", progress=False)
    assert engine._kernel_settings() == before and not torch.are_deterministic_algorithms_enabled()
    assert det["weights_sha256"] == plain["weights_sha256"]  # the CPU's kernels stay as they are
    manifest = json.loads((tmp_path / "det" / "manifest.json").read_text())
    assert manifest["deterministic"] is False  # asked for CUDA runs only
    engine._deterministic_kernels()
    try:
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cuda.flash_sdp_enabled()
    finally:
        engine._set_kernel_settings(before)
    assert engine._kernel_settings() == before
