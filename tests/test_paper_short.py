"""``paper-short``: the paper's recipe at a tenth of its length for one GPU. It resolves, differs
from ``paper`` only in its length (and bookkeeping), plans four rows at five seeds with FractalDB
pre-trained five times as long, with projected hours, and its smoke-sized twin pre-trains on the CPU
with the full augmentation."""

from __future__ import annotations

import dataclasses
import json

import pytest
import study_runs
import yaml

from ofdb_study.cli import main
from ofdb_study.config import PAPER_SHORT, PHASES, PROFILES, TrainConfig, get_profile, phase_config, recipe

#: What paper-short may change against paper: the length, the own-task cadence and its name.
CHANGED = {"steps", "eval_every", "profile"}
#: The smoke-sized twin: smoke's model and sizes on the paper-short recipe.
TWIN = study_runs.GPU_TWIN


def test_paper_short_is_registered_and_is_paper_but_shorter():
    assert PROFILES["paper-short"] is PAPER_SHORT is get_profile("paper-short")
    assert "paper-short" in recipe.PAGE_ORDER and set(recipe.PAGE_ORDER) == set(PROFILES)
    paper = PROFILES["paper"]
    for phase in PHASES:
        ours, theirs = PAPER_SHORT.recipe(phase), paper.recipe(phase)
        for f in dataclasses.fields(TrainConfig):
            if f.name in CHANGED:
                continue
            assert getattr(ours.cfg, f.name) == getattr(theirs.cfg, f.name), (phase, f.name)
            assert ours.cites[f.name] == theirs.cites[f.name], (phase, f.name)
        assert ours.cites["steps"].source.startswith("ours:")
    pre, ft = PAPER_SHORT.pretrain, PAPER_SHORT.finetune
    assert pre.steps == 24_000 and pre.steps * 10 == paper.pretrain.steps
    assert ft.steps * 10 == paper.finetune.steps
    assert (pre.model, pre.img_size, pre.batch_size, pre.auto_augment) == (
        "vit_tiny_patch16_224",
        224,
        256,
        "rand-m9-mstd0.5-inc1",
    )
    assert pre.mixup and pre.cutmix and pre.re_prob and pre.hflip and pre.vflip
    assert pre.precision == "fp16" and pre.decay_embed_tokens
    plan = PAPER_SHORT.study
    assert plan.dataset == ft.dataset == "cifar100"
    assert (plan.paper_table, plan.paper_column) == ("table2", "C100") and plan.workers == 1
    assert PAPER_SHORT.data_kinds == paper.data_kinds  # 1p-frac at 512 px, as at paper


def test_paper_short_plans_few_rows_at_five_seeds_and_fractaldb_longer():
    plan, pre = PAPER_SHORT.study, PAPER_SHORT.pretrain
    assert set(plan.rows) == {"scratch", "ofdb", "ofdb+fluctuation", "fractaldb"}
    assert len(plan.seeds) >= 5
    # FractalDB's million images get at least five times a one-image row's steps
    fdb = phase_config("paper-short", "pretrain", **plan.settings_of("fractaldb"))
    assert fdb.steps >= 5 * pre.steps and fdb.eval_every * 6 == fdb.steps
    assert plan.settings_of("ofdb") == plan.settings_of("ofdb+fluctuation") == {}


def test_profile_show_and_study_plan(capsys, tmp_path):
    assert main(["profile", "show", "paper-short"]) == 0
    shown = capsys.readouterr().out
    assert "profile paper-short" in shown and "24,000" in shown and "ours: " in shown
    assert main(["study", "plan", "--profile", "paper-short", "--run-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    seeds = len(PAPER_SHORT.study.seeds)
    pretrainings = (len(PAPER_SHORT.study.rows) - 1 + 1) * seeds  # the rows but scratch, and OFDB-100
    finetunings = (len(PAPER_SHORT.study.rows) + 1) * seeds
    assert f"{pretrainings + finetunings} runs: 0 done" in out
    assert "pretrain fractaldb C1000 s0" in out and "finetune scratch s4" in out
    assert "pretrain ofdb C100 s0" in out  # the category trend's second size
    estimate = out.split("estimate", 1)[1]
    assert " h GPU time at " in estimate and "bench_train.py" in estimate  # hours, with their source


@pytest.fixture(scope="module")
def _search_cached(searched):
    """The engine reads the session's exact search from its cache."""


@pytest.mark.parametrize("augment", ["pattern"])
def test_the_smoke_sized_twin_pretrains_on_the_cpu(tmp_path, _search_cached, augment):
    pytest.importorskip("torch")
    from ofdb_study.train.engine import train

    cfg = phase_config("paper-short", "pretrain", augment=augment, **TWIN)
    assert cfg.profile == "paper-short" and cfg.auto_augment and cfg.mixup and cfg.re_prob
    summary = train(cfg, tmp_path / "run", progress=False)
    assert summary["finished"] and summary["steps"] == 2 and summary["device"] == "cpu"
    # the pinned pipeline, on the CPU too: the run's key is the one a GPU machine plans and trains
    assert summary["top1_last"] is not None and summary["pipeline"] == "batched"
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert TrainConfig.from_dict(recorded).digest() == cfg.digest()
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["weights_sha256"] == summary["weights_sha256"]


# ---- fp16: the gradient scaler's state in the checkpoint ------------------------------------------
def _growing_scaler(torch):
    """A CPU GradScaler whose scale doubles every step (no overflow at these sizes)."""
    return torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=1)


def _interrupt_before_step_2(engine, cfg, folder, monkeypatch) -> None:
    """Train ``cfg`` into ``folder`` and stop it (KeyboardInterrupt) as step 2 begins, after the
    checkpoint of step 2; ``engine.train_step`` is the real one again afterwards."""
    real = engine.train_step

    def stop(step, *args, **kwargs):
        if step == 2:
            raise KeyboardInterrupt
        return real(step, *args, **kwargs)

    monkeypatch.setattr(engine, "train_step", stop)
    with pytest.raises(KeyboardInterrupt):
        engine.train(cfg, folder, progress=False)
    monkeypatch.setattr(engine, "train_step", real)


def test_the_optimizer_state_carries_the_scaler_only_where_one_is_used():
    torch = pytest.importorskip("torch")
    from ofdb_study.train import engine

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = _growing_scaler(torch)
    for _ in range(3):
        loss = model(torch.ones(4, 3)).square().mean()
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    assert scaler.get_scale() == 2.0**11
    plain = engine.ScaledOptimizer(optimizer).state_dict()
    assert engine.SCALER_KEY not in plain  # bf16 and fp32 runs: the optimizer's state alone
    doc = engine.ScaledOptimizer(optimizer, scaler).state_dict()
    assert doc[engine.SCALER_KEY] == scaler.state_dict() and doc["state"] == plain["state"]

    fresh_opt = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    fresh = _growing_scaler(torch)
    engine.ScaledOptimizer(fresh_opt, fresh).load_state_dict(doc)
    assert fresh.get_scale() == 2.0**11 and fresh.state_dict() == scaler.state_dict()
    assert torch.equal(
        fresh_opt.state_dict()["state"][0]["momentum_buffer"], plain["state"][0]["momentum_buffer"]
    )
    # a checkpoint without the key (a bf16 run) leaves the scaler as built ...
    other = _growing_scaler(torch)
    engine.ScaledOptimizer(fresh_opt, other).load_state_dict(plain)
    assert other.get_scale() == 2.0**8
    # ... and a run without a scaler reads a checkpoint that has one
    engine.ScaledOptimizer(fresh_opt).load_state_dict(doc)
    assert engine.SCALER_KEY in doc  # the caller's document is left as it was


def test_a_resumed_fp16_run_continues_its_loss_scale(tmp_path, _search_cached, monkeypatch):
    """Interrupted after its step-2 checkpoint and resumed, a run with a gradient scaler (built on
    the CPU here, as fp16 builds one on CUDA) ends with the scale and the weights of a run straight
    through; the scale restarting would end at a quarter of it."""
    torch = pytest.importorskip("torch")
    from ofdb_study.train import engine

    monkeypatch.setattr(engine, "build_scaler", lambda cfg, device: _growing_scaler(torch))
    cfg = phase_config("paper-short", "pretrain", augment="pattern", **{**TWIN, "steps": 4})
    cfg = cfg.replace(checkpoint_every=2)
    assert cfg.precision == "fp16"
    whole = engine.train(cfg, tmp_path / "whole", progress=False)

    def scale(folder) -> float:
        doc = torch.load(folder / "checkpoint.pt", weights_only=True)
        return doc["optimizer"][engine.SCALER_KEY]["scale"]

    assert scale(tmp_path / "whole") == 2.0**12

    _interrupt_before_step_2(engine, cfg, tmp_path / "run", monkeypatch)
    assert scale(tmp_path / "run") == 2.0**10  # the step-2 checkpoint
    resumed = engine.train(cfg, tmp_path / "run", resume=True, progress=False)
    assert scale(tmp_path / "run") == 2.0**12
    assert resumed["weights_sha256"] == whole["weights_sha256"]


def test_a_checkpoint_without_a_scaler_resumes_with_one(tmp_path, _search_cached, monkeypatch):
    """A bf16 run's checkpoint (no scaler state) still loads where a scaler is in use."""
    torch = pytest.importorskip("torch")
    from ofdb_study.train import engine

    cfg = phase_config("smoke", "pretrain", steps=4, checkpoint_every=2)
    _interrupt_before_step_2(engine, cfg, tmp_path / "run", monkeypatch)
    doc = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert engine.SCALER_KEY not in doc["optimizer"]
    monkeypatch.setattr(engine, "build_scaler", lambda cfg, device: _growing_scaler(torch))
    resumed = engine.train(cfg, tmp_path / "run", resume=True, progress=False)
    assert resumed["steps"] == 4
    doc = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert doc["optimizer"][engine.SCALER_KEY]["scale"] == 2.0**10  # built afresh, two steps
