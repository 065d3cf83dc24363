"""The pipeline that made a pre-training's batches is in its key: ``auto`` stands for the loader it
picks on the CPU (``mini`` and ``smoke`` keep their keys), an ``auto`` that picks the batched
pipeline is recorded and keyed as ``batched``, and the GPU profiles pin ``batched``, so their keys
(the study's run folders) are the same on every machine."""

from __future__ import annotations

import json

import pytest
import study_runs
import yaml

from ofdb_study.config import PIPELINES, PROFILES, TrainConfig, data_kind, phase_config
from ofdb_study.errors import ParamError
from ofdb_study.study import plan

GPU_PROFILES = ("paper", "paper-short", "paper-21k")
#: smoke-sized settings for a GPU profile's pre-training on the CPU
TINY = study_runs.GPU_TWIN


def _recorded(folder) -> TrainConfig:
    return TrainConfig.from_dict(yaml.safe_load((folder / "config.yaml").read_text()))


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


# ---- the rule, on configs --------------------------------------------------------------------------
def test_auto_is_out_of_the_key_and_the_pipelines_are_in():
    for name in ("mini", "smoke"):
        pre = PROFILES[name].pretrain
        assert pre.pipeline == "auto" and "pipeline" not in pre.result_dict()
        keys = {pre.replace(pipeline=p).digest() for p in PIPELINES}
        assert len(keys) == 3  # auto (the loader on the CPU), loader, batched
        assert pre.ran_with("loader") is pre  # auto that chose the loader keeps its key
        assert pre.ran_with("batched").pipeline == "batched"
        assert pre.ran_with("batched").digest() == pre.replace(pipeline="batched").digest() != pre.digest()
        # the profiles fine-tune batched (as piloted); fine-tuning's auto is the loader on every device
        assert PROFILES[name].finetune.pipeline == "batched"
        assert PROFILES[name].finetune.result_dict()["pipeline"] == "batched"
        ft = PROFILES[name].finetune.replace(pipeline="auto")
        assert ft.ran_with("batched") is ft and "pipeline" not in ft.result_dict()
        assert ft.pipeline_on("cuda") == ft.pipeline_on("cpu") == "loader"
        assert ft.replace(pipeline="batched").pipeline_on("cpu") == "batched"
        assert len({ft.replace(pipeline=p).digest() for p in PIPELINES}) == 3
    explicit = PROFILES["smoke"].pretrain.replace(pipeline="loader")
    assert explicit.ran_with("batched") is explicit  # only auto is resolved


def test_pipeline_on_is_the_engines_choice():
    torch = pytest.importorskip("torch")
    from ofdb_study.train import batched

    for phase in ("pretrain", "finetune"):
        for pipeline in PIPELINES:
            cfg = phase_config("smoke", phase, pipeline=pipeline)
            for device in ("cpu", "cuda"):
                assert cfg.pipeline_on(device) == batched.resolve_pipeline(cfg, torch.device(device))


def test_gpu_profiles_pin_batched_in_pre_training_with_a_reason():
    for name in GPU_PROFILES:
        rec = PROFILES[name].pretrain_recipe
        assert rec.cfg.pipeline == "batched" and rec.cites["pipeline"].source.startswith("ours:")
        assert rec.cfg.result_dict()["pipeline"] == "batched"
        assert rec.cfg.ran_with("batched") is rec.cfg  # nothing to resolve: one key everywhere
    for name in ("mini", "smoke"):
        assert PROFILES[name].pretrain.pipeline == "auto"


@pytest.mark.parametrize("name", GPU_PROFILES)
def test_every_pre_training_of_a_gpu_plan_has_a_batched_pipeline(name, tmp_path):
    pytest.importorskip("timm")
    from ofdb_study.train import augment
    from ofdb_study.train.batched.transforms import BatchAugment

    pres = [s for s in plan.plan(name, root=tmp_path) if s.phase == "pretrain"]
    assert pres and all(s.cfg.pipeline == "batched" for s in pres)
    for s in pres:
        kind = data_kind(s.cfg.data)
        assert kind in ("ofdb", "fractaldb", "1pfrac", "multiview"), s.label  # each has a source
        if kind == "multiview":
            assert s.cfg.augment in ("default", "pattern"), s.label
        BatchAugment.from_timm(augment.train_transform(s.cfg))  # every part of the recipe
    assert not (tmp_path / "pretrain").exists()  # planning builds nothing


def test_the_study_keys_of_a_gpu_profile_do_not_depend_on_the_machine(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    here = [s.path for s in plan.plan("paper-short", root=tmp_path)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [s.path for s in plan.plan("paper-short", root=tmp_path)] == here


# ---- what the engine records ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def _search_cached(searched):
    """The engine reads the session's exact search from its cache."""


@pytest.fixture
def engine():
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from ofdb_study.train import engine

    return engine


def test_a_planned_gpu_run_records_the_key_its_folder_is_named_by(tmp_path, _search_cached, engine):
    spec = plan.pretrain_spec("paper-short", "ofdb", "pattern", seed=0, root=tmp_path, **TINY)
    summary = plan.train_spec(spec)
    assert summary["pipeline"] == "batched" and summary["device"] == "cpu"
    recorded = _recorded(spec.path)
    assert recorded.digest() == spec.cfg.digest() and spec.path.name.endswith(recorded.digest()[:10])
    assert _manifest(spec.path)["pipeline"] == _manifest(spec.path)["pipeline_asked"] == "batched"
    assert plan.pretrain_spec("paper-short", "ofdb", "pattern", seed=0, root=tmp_path, **TINY).finished


def test_auto_that_picks_batched_is_recorded_and_keyed_as_batched(
    tmp_path, _search_cached, engine, monkeypatch
):
    from ofdb_study.train import batched

    cfg = phase_config("smoke", "pretrain")
    assert cfg.pipeline == "auto"
    monkeypatch.setattr(batched, "resolve_pipeline", lambda cfg, device: "batched")  # as on CUDA
    summary = engine.train(cfg, tmp_path / "run", progress=False)
    assert summary["pipeline"] == "batched"
    recorded = _recorded(tmp_path / "run")
    assert recorded.pipeline == "batched" and recorded.digest() == cfg.replace(pipeline="batched").digest()
    assert recorded.digest() != cfg.digest()  # not the key of the CPU's (loader) run of this config
    manifest = _manifest(tmp_path / "run")
    assert (manifest["pipeline"], manifest["pipeline_asked"]) == ("batched", "auto")
    # the finished run is found again where auto picks the batched pipeline ...
    assert engine.train(cfg, tmp_path / "run", resume=True, progress=False) == summary
    monkeypatch.undo()
    # ... and is not the run this config asks for on the CPU
    with pytest.raises(ParamError) as info:
        engine.train(cfg, tmp_path / "run", resume=True, progress=False)
    assert info.value.param == "resume" and "pipeline" in str(info.value)


def test_auto_that_falls_back_to_the_loader_keeps_the_loaders_key(
    tmp_path, _search_cached, engine, monkeypatch
):
    from ofdb_study.train import batched

    cfg = phase_config("smoke", "pretrain")
    monkeypatch.setattr(batched, "resolve_pipeline", lambda cfg, device: "batched")  # as on CUDA
    monkeypatch.setattr(batched.sources, "DATA_SHARE", 0.0)  # the data do not fit
    assert engine.train(cfg, tmp_path / "run", progress=False)["pipeline"] == "loader"
    assert _recorded(tmp_path / "run").digest() == cfg.digest()
    manifest = _manifest(tmp_path / "run")
    assert (manifest["pipeline"], manifest["pipeline_asked"]) == ("loader", "auto")


def test_auto_on_the_cpu_records_the_config_as_asked(tmp_path, _search_cached, engine):
    cfg = phase_config("smoke", "pretrain")
    engine.train(cfg, tmp_path / "run", progress=False)
    assert _recorded(tmp_path / "run") == cfg  # mini's and smoke's keys stay
    assert _manifest(tmp_path / "run")["pipeline"] == "loader"


def test_a_fine_tuning_asks_for_the_batched_pipeline_and_is_keyed_by_it(tmp_path, engine):
    """A fine-tuning with ``pipeline=batched`` draws its batches from the training images held as
    one tensor: its own key, recorded as such, and the same bytes for the same seed."""
    import torch

    from ofdb_study.train import augment, batched, downstream

    cfg = phase_config("smoke", "finetune").replace(pipeline="batched")
    train_ds, _, _, _ = engine.build_data(cfg)
    source = batched.sources.batched_source(train_ds, torch.device("cpu"))
    keys = [(3, 0), (0, 0), (3, 1)]
    x, y = source.batch(keys, None)
    assert x.dtype == torch.uint8 and x.shape[1] == 1  # gray kept with one channel
    for row, (i, _) in enumerate(keys):
        assert (x[row, 0].numpy() == train_ds.images[i]).all() and int(y[row]) == int(train_ds.labels[i])
    assert isinstance(train_ds, downstream.ArrayDataset)
    batched.transforms.BatchAugment.from_timm(augment.train_transform(cfg))  # the recipe has a batched twin
    runs = [engine.train(cfg, tmp_path / f"run{k}", progress=False) for k in range(2)]
    assert runs[0]["pipeline"] == "batched" and runs[0]["final_loss"] == runs[1]["final_loss"]
    assert runs[0]["weights_sha256"] == runs[1]["weights_sha256"]
    loader = phase_config("smoke", "finetune", pipeline="loader")
    assert _recorded(tmp_path / "run0").digest() == cfg.digest() != loader.digest()
