"""The baselines beside every arm: raw-pixel classifiers and linear probes on each seed's subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")

from ofdb_study.analysis import runs  # noqa: E402
from ofdb_study.study import baselines, plan  # noqa: E402
from ofdb_study.train import downstream  # noqa: E402
from ofdb_study.train.engine import subset_seed  # noqa: E402


def test_the_subset_is_drawn_from_the_seed_and_shared_by_the_arms(tmp_path, fashion):
    pre = plan.pretrain_spec("smoke", "ofdb", "default", 2, 3, tmp_path)
    a = plan.finetune_spec("smoke", "scratch", 3, tmp_path, data_root=fashion)
    b = plan.finetune_spec("smoke", pre, 3, tmp_path, data_root=fashion)
    c = plan.finetune_spec("smoke", "scratch", 4, tmp_path, data_root=fashion)
    assert subset_seed(a.cfg) == subset_seed(b.cfg) == 3 and subset_seed(c.cfg) == 4
    labels = np.repeat(np.arange(10), 20)
    assert not np.array_equal(
        downstream.per_class_subset(labels, 2, 3), downstream.per_class_subset(labels, 2, 4)
    )
    assert baselines.raw_pixels_path(a.cfg, tmp_path) == baselines.raw_pixels_path(b.cfg, tmp_path)
    assert baselines.raw_pixels_path(a.cfg, tmp_path) != baselines.raw_pixels_path(c.cfg, tmp_path)


def test_raw_pixel_baselines_are_deterministic_and_cached(tmp_path, fashion):
    spec = plan.finetune_spec("smoke", "scratch", 0, tmp_path, data_root=fashion)
    first = baselines.raw_pixels(spec.cfg, tmp_path)
    assert set(baselines.RAW_PIXEL_METHODS) <= set(first) and first["train_images"] == 20
    assert 0.0 <= first["softmax"] <= 100.0 and 0.0 <= first["1-nn"] <= 100.0
    path = baselines.raw_pixels_path(spec.cfg, tmp_path)
    path.unlink()
    again = baselines.raw_pixels(spec.cfg, tmp_path)
    assert {k: again[k] for k in ("softmax", "1-nn")} == {k: first[k] for k in ("softmax", "1-nn")}
    table = runs.baselines([spec])
    assert table["softmax"].tolist() == [first["softmax"]] and table.attrs["missing"] == []


def test_linear_probe_reads_the_frozen_pretrained_features(tmp_path, fashion):
    specs = plan.augmentation_specs("smoke", [0], tmp_path, ["ofdb", "scratch"], data_root=fashion)
    plan.run_plan(specs, log=lambda line: None)
    made = baselines.compute(specs, tmp_path, log=lambda line: None)
    assert made["baselines"] == 1 and made["probes"] == 2
    fine = runs.downstream(specs)
    assert fine["probe_top1"].notna().all() and fine["final_loss"].notna().all()
    probes = {
        json.loads(p.read_text())["row"]: json.loads(p.read_text()) for p in (tmp_path / "probes").iterdir()
    }
    assert probes["ofdb"]["features"] == probes["scratch"]["features"] == 32  # smoke's embed_dim
    ofdb = next(s for s in specs if s.phase == "finetune" and s.row == "ofdb")
    assert probes["ofdb"]["init"] == str(ofdb.needs) and probes["scratch"]["init"] == "scratch"
    baselines.probe_path(ofdb.cfg, tmp_path).unlink()
    assert baselines.linear_probe(ofdb, tmp_path)["probe_top1"] == probes["ofdb"]["probe_top1"]


def test_baselines_refuse_an_imagefolder():
    from ofdb_study.config import phase_config
    from ofdb_study.errors import ParamError

    with pytest.raises(ParamError, match="in-memory"):
        baselines._arrays(phase_config("smoke", "finetune", dataset="imagefolder:x"))
