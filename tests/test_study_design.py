"""The study as an experiment: held-out own-task evaluation, the plan's runner, the results' tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from ofdb_study.analysis import paper as results  # noqa: E402
from ofdb_study.config import PROFILES, ROWS, get_profile, phase_config  # noqa: E402
from ofdb_study.errors import ParamError  # noqa: E402
from ofdb_study.fractals.datasets import FractalSource  # noqa: E402
from ofdb_study.study import plan as experiments
from ofdb_study.train import pretrain_data  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _search_cached(searched):
    """The engine reads the session's exact search from its cache instead of searching again."""


@pytest.fixture(scope="module")
def source(searched):
    return FractalSource(searched.categories[:3], size=32, n_points=1500, pad=1)


@pytest.mark.parametrize("task", ["ofdb", "fluctuation", "fractaldb"])
def test_held_out_renders_are_fixed_labelled_and_never_a_training_image(source, task):
    held = pretrain_data.HeldOutRenders(source, task, 4, transform=None, data_hash="test")
    again = pretrain_data.HeldOutRenders(source, task, 4, transform=None, data_hash="test")
    assert len(held) == 12 and [held[i][1] for i in range(12)] == [i // 4 for i in range(12)]
    for i in range(12):
        img = held.image(i)
        assert img.dtype == np.uint8 and img.any()
        assert np.array_equal(img, again.image(i))  # a function of (category, k) only
        c = i // 4
        assert not np.array_equal(img, source.fixed_image(c))  # fresh masks, not the training image
    assert len({held.image(i).tobytes() for i in range(4)}) == 4  # four different renders of one category
    if task == "fractaldb":  # held-out instances: none of the 1,000 training images of category 0
        train = {source.fractaldb_image(0, j).tobytes() for j in range(1000)}
        assert not any(held.image(i).tobytes() in train for i in range(4))
    with pytest.raises(ParamError, match="held-out"):
        pretrain_data.HeldOutRenders(source, "folder", 4, data_hash="test")


def test_each_row_is_evaluated_on_its_own_task(searched):
    cfg = phase_config("smoke", "pretrain", categories=3, eval_per_category=2)
    for augment, task in (("default", "ofdb"), ("pattern", "ofdb"), ("fluctuation", "fluctuation")):
        _, held, classes, _ = pretrain_data.pretrain_datasets(cfg.replace(augment=augment), None, None)
        assert held.task == task and len(held) == 6 and classes == 3
    _, held, _, _ = pretrain_data.pretrain_datasets(cfg.replace(data="fractaldb"), None, None)
    assert held.task == "fractaldb"


def test_a_process_evaluates_each_row_on_its_own_held_out_set(searched, monkeypatch):
    """The default and fluctuation rows share a source and its data hash: the evaluation cache of a
    process that ran one must not hand its held-out set to the other (it once did: the study's
    worker processes read OFDB + fluctuation's own task on the default row's renders)."""
    import torch

    from ofdb_study.train import engine
    from ofdb_study.train.runtime import Dist

    monkeypatch.setattr(engine, "_EVAL_CACHE", {})
    one = Dist()
    cfg = phase_config("smoke", "pretrain", categories=3, eval_per_category=2)
    seen = {}
    for augment in ("default", "fluctuation", "pattern"):
        c = cfg.replace(augment=augment)
        _, held, _, data_hash = engine.build_data(c)
        key = engine.eval_cache_key(c, engine.eval_set_name(held, data_hash), one)
        seen[augment] = engine.eval_tensors(held, key).tensors[0]
        # what the set transforms to, outside any cache
        assert torch.equal(seen[augment], torch.stack([held[i][0] for i in range(len(held))]))
    assert not torch.equal(seen["default"], seen["fluctuation"])
    assert torch.equal(seen["default"], seen["pattern"])  # one own task: fresh masks of one system
    _, small, _, h = engine.build_data(cfg)
    _, large, _, _ = engine.build_data(cfg.replace(eval_per_category=3))
    assert engine.eval_set_name(small, h) != engine.eval_set_name(large, h)


def test_run_plan_with_two_workers_gives_the_weights_of_one(tmp_path, fashion):
    specs = experiments.plan(
        "smoke", [0], tmp_path / "one", rows=["ofdb", "scratch"], categories=[2], data_root=fashion
    )
    lines = []
    experiments.run_plan(specs, log=lines.append)
    assert sum("done in" in ln for ln in lines) == len(specs) and "left" in lines[-1]
    twin = experiments.plan(
        "smoke", [0], tmp_path / "two", rows=["ofdb", "scratch"], categories=[2], data_root=fashion
    )
    experiments.run_plan(twin, log=lambda line: None, workers=2)
    for a, b in zip(specs, twin):
        assert a.summary()["weights_sha256"] == b.summary()["weights_sha256"], a.label
    assert experiments.run_plan(twin, log=lines.append, workers=2) == []  # all finished: nothing trains
    with pytest.raises(ParamError, match="workers"):
        experiments.run_plan(twin, workers=0)


def test_mini_is_a_design_that_can_decide():
    mini = get_profile("mini")
    plan, pre = mini.study, mini.pretrain
    assert plan.endpoint == "readout" and len(set(plan.seeds)) == len(plan.seeds) >= 8
    # the paper's variable as a 2x2 (instances x augmentation), with calibration arms
    assert {"ofdb", "ofdb+aug", "ofdb+fluctuation", "ofdb+fluctuation+aug", "supervised"} <= set(plan.rows)
    assert {"random", "mimetic", "supervised"} <= set(plan.controls)
    assert (
        plan.categories >= 32
        and plan.categories in plan.scaling_categories
        and len(plan.scaling_categories) >= 3
    )
    for row in ("ofdb+aug", "ofdb+fluctuation+aug"):  # the paper's augmentation on, read from its recipe
        aug = plan.settings_of(row)
        assert aug["auto_augment"] and aug["re_prob"] > 0 and aug["hflip"] > 0 and aug["scale"][0] < 0.2
    assert not plan.settings_of("ofdb") and tuple(pre.scale) == (0.8, 1.0)  # the minimal arm
    assert plan.readout_per_class <= 10 and plan.readout_draws >= 3  # few labels, several draws
    assert plan.control_pool_per_class >= 500  # the positive control's real images, never labelled
    assert pre.eval_per_category * plan.categories >= 100  # one held-out image is under one point


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_shares_the_model_shape_between_phases(name):
    prof = get_profile(name)
    for key in ("model", "img_size", "patch_size", "depth", "embed_dim", "num_heads", "global_pool"):
        assert getattr(prof.pretrain, key) == getattr(prof.finetune, key), (name, key)
    assert set(prof.study.rows) <= set(ROWS)


def test_own_task_claims_table_and_time_split():
    pre = pd.DataFrame(
        [
            {
                "row": r,
                "categories": 8,
                "seed": s,
                "own_top1": v + s,
                "bar": b,
                "final_loss": 1.0,
                "wall_seconds": 60.0,
            }
            for r, v, b in (("ofdb", 60.0, 50.0), ("fractaldb", 20.0, 37.5))
            for s in range(3)
        ]
    )
    own = results.own_task(pre).set_index("row")
    assert own.loc["ofdb", "learned"] and not own.loc["fractaldb", "learned"]
    assert own.loc["ofdb", "mean"] == pytest.approx(61.0) and own.loc["fractaldb", "chance"] == 12.5
    from ofdb_study.analysis import claims

    runs = pd.DataFrame(
        [
            {"row": r, "categories": 8, "seed": s, "top1_last": 50 + d + 0.1 * s}
            for r, d in (("ofdb", 3), ("scratch", 0))
            for s in range(3)
        ]
    )
    evaluated = claims.evaluate(runs, pretrain=pre)
    table = results.claims_table(evaluated)
    assert list(table.columns) == ["claim", "paper", "ours", "verdict"]
    assert table.loc[0, "verdict"] == "agrees" and "[" in table.loc[0, "ours"]
    assert table.loc[0, "claim"] == claims.by_key("ofdb_beats_scratch").text  # written out in full
    tests = results.claims_table(evaluated, detail=True)
    assert tests.loc[0, "claim"] == "ofdb_beats_scratch" and float(tests.loc[0, "p"]) < 0.05
    summaries = [
        {"wall_seconds": 100.0, "setup_seconds": 10.0, "eval_seconds": 5.0, "eval_prep_seconds": 2.0}
    ]
    split = results.time_split(pre, runs, summaries, {"notebooks": {"01_data": 30.0}}).set_index("part")
    assert split["minutes"].sum() == pytest.approx((95 + 7 + 8 + 30) / 60)
    assert math.isclose(split["share"].sum(), 100.0)
    # runs two at a time: their 110 s of clocks took 55 s of wall time, divided in their proportions
    timed = {"notebooks": {}, "training": {"trained": 2, "runs": 2, "seconds": 55.0}}
    split = results.time_split(pre, runs, summaries, timed)
    assert split["minutes"].sum() == pytest.approx(55 / 60) and "wall time" in split["part"].iloc[0]


def test_timing_record_and_hidden_parameters(tmp_path):
    """The runner's record of the wall time, and the parameter cells tagged out of the book."""
    import nbformat

    from ofdb_study.study import runner

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("x")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    runner.hide_parameters(path)
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].metadata["tags"] == ["parameters", "remove-cell"] and "tags" not in cells[1].metadata
    assert "CPU core" in runner.machine()
    params = runner.resolve_parameters("smoke", [0], downstream_root="/x")
    assert params["downstream_root"] == "/x" and json.dumps(params)
