"""The recipes as data: every value's source, the paper-21k and ImageNet-1k recipes, ``profile show``,
the book's recipe page, the evaluation transform, repeated augmentation and ImageFolder errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from ofdb_study.cli import build_parser, main
from ofdb_study.config import (
    IMAGENET_TRAIN_IMAGES,
    PHASES,
    PROFILES,
    TrainConfig,
    phase_config,
    recipe,
    resolve,
    steps_for,
)
from ofdb_study.config.sources import DISAGREEMENTS, INHERIT, NO_PUBLIC, SAME, Cite
from ofdb_study.errors import ParamError

FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_value_of_every_profile_has_a_source(name):
    prof = PROFILES[name]
    for phase in PHASES:
        rec = prof.recipe(phase)
        assert set(rec.cites) == set(FIELDS)
        for key in FIELDS:
            cite = rec.cites[key]
            assert isinstance(cite, Cite) and len(cite.source) > 8, (name, phase, key)
            assert cite.public is not SAME and cite.public is not INHERIT, (name, phase, key)
            assert "facts" not in cite.source
    for kind, items in prof.data_kinds.items():
        for key, (value, cite) in items.items():
            assert isinstance(value, type(getattr(TrainConfig(), key))) and isinstance(cite, Cite), (
                kind,
                key,
            )


def test_paper_values_are_the_public_ones_and_small_profiles_say_why_they_differ():
    for phase in PHASES:
        paper = PROFILES["paper"].recipe(phase)
        for key in FIELDS:
            cite = paper.cites[key]
            if cite.public is not NO_PUBLIC:
                assert cite.public == getattr(paper.cfg, key), (phase, key)
        mini = PROFILES["mini"].recipe(phase)
        for key in FIELDS:
            if getattr(mini.cfg, key) != getattr(paper.cfg, key):
                assert mini.cites[key].source.startswith("ours:"), (phase, key)
                # the public column keeps the paper's value for what mini shrinks
                assert mini.cites[key].public == paper.cites[key].public, (phase, key)


def test_paper_steps_follow_the_public_loaders():
    pre, fine = PROFILES["paper"].pretrain, PROFILES["paper"].finetune
    assert (pre.steps, pre.warmup_steps) == (80_000 * 3, 5 * 3)  # floor(1,000 / 256) = 3
    assert (fine.steps, fine.warmup_steps) == (1000 * 65, 10 * 65)  # floor(50,000 / 768) = 65
    p21 = PROFILES["paper-21k"].pretrain
    assert (p21.steps, p21.warmup_steps) == (15_238 * 20, 5 * 20)  # floor(21,000 / 1,024) = 20


def test_paper_21k_pretraining_learning_rate():
    """The released 21k checkpoints: lr5.0e-4 at bs1024, scaled by 1,024 / 512 to 1e-3."""
    cfg = PROFILES["paper-21k"].pretrain
    assert cfg.model == "vit_base_patch16_224" and cfg.categories == 21_000 and cfg.base_lr == 5e-4
    one = resolve(cfg, 1)
    eight = resolve(cfg.replace(batch_size=128), 8)
    assert one.global_batch == eight.global_batch == 1024
    assert one.lr == pytest.approx(1e-3) == eight.lr
    assert "lr5.0e-4" in PROFILES["paper-21k"].pretrain_recipe.cites["base_lr"].source


def test_imagenet_finetuning_recipe_of_the_21k_models():
    cfg = PROFILES["paper-21k"].finetune
    assert cfg.dataset == "imagefolder:imagenet-1k" and cfg.model == "vit_base_patch16_224"
    assert (cfg.opt, cfg.weight_decay, cfg.smoothing) == ("adamw", 0.05, 0.1)
    assert resolve(cfg).global_batch == 1024 and resolve(cfg).lr == pytest.approx(1e-3)
    assert resolve(cfg).warmup_lr == pytest.approx(1e-4) and resolve(cfg).min_lr == pytest.approx(1e-5)
    per_epoch = IMAGENET_TRAIN_IMAGES // 1024
    assert per_epoch == 1251 and cfg.steps == 300 * per_epoch == steps_for(300, 1_281_167, 1024) == 375_300
    assert cfg.warmup_steps == 5 * per_epoch
    assert (cfg.repeated_aug, cfg.re_prob, cfg.re_mode) == (3, 0.25, "const")
    assert (cfg.mixup, cfg.cutmix, cfg.auto_augment) == (0.8, 1.0, "rand-m9-mstd0.5-inc1")
    assert cfg.crop_pct == 0.875 and cfg.drop_path == 0.1
    steps_source = PROFILES["paper-21k"].finetune_recipe.cites["steps"].source
    assert "floor(1,281,167 / 1,024)" in steps_source and "375,300" in steps_source


def test_phase_config_takes_a_data_kinds_own_settings():
    cfg = phase_config("paper", "pretrain", data="1pfrac")
    assert (cfg.render_size, cfg.render_points, cfg.render_pad) == (512, 100_000, 6)
    assert phase_config("paper", "pretrain", data="1pfrac", render_size=256).render_size == 256
    assert phase_config("paper", "pretrain").render_size == 362
    assert (
        phase_config("mini", "pretrain", data="1pfrac").render_size == PROFILES["mini"].pretrain.render_size
    )
    assert PROFILES["paper"].kind_settings("ofdb3d")["render_size"] == 224
    assert PROFILES["paper"].kind_settings("ofdb3d")["render_points"] == 10_000
    assert PROFILES["smoke"].kind_settings("ofdb3d")["render_size"] == 32


def test_profile_show_paper(capsys):
    assert main(["profile", "show", "paper"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "profile paper" and "== pre-training" in lines and "== fine-tuning" in lines

    def row(setting, phase_title):
        start = lines.index(f"== {phase_title}")
        return next(ln.split() for ln in lines[start:] if ln.split()[:1] == [setting])

    assert row("base_lr", "pre-training")[:5] == ["base_lr", "0.001", "0.001", "OFDB", "pre-train.sh:"]
    assert row("steps", "pre-training")[:3] == ["steps", "240,000", "240,000"]
    assert row("opt", "fine-tuning")[:3] == ["opt", "sgd", "sgd"]
    assert row("crop_pct", "fine-tuning")[:3] == ["crop_pct", "0.875", "0.875"]
    assert row("seed", "pre-training")[:3] == ["seed", "0", "-"]
    resolved = [ln.split() for ln in lines if ln.startswith(("global batch", "lr "))]
    assert resolved[0][:4] == ["global", "batch", "256", "256"]
    assert resolved[1][:3] == ["lr", "0.0005", "0.0005"]
    assert resolved[2][:4] == ["global", "batch", "768", "768"]
    assert resolved[3][:3] == ["lr", "0.015", "0.015"]
    for field in FIELDS:  # every setting, both phases
        assert sum(1 for ln in lines[1:] if ln.split()[:1] == [field]) == 2, field
    assert main(["profile", "show", "paper", "--world-size", "8"]) == 0
    out8 = capsys.readouterr().out
    assert "--batch-size 32" in out8 and "--batch-size 96" in out8
    assert main(["profile", "show", "paper", "--world-size", "0"]) == 2


def test_recipe_page_lists_every_value_of_every_profile():
    page = recipe.page_markdown()
    for name in PROFILES:
        assert f"## `{name}`" in page
    rows = [ln for ln in page.splitlines() if ln.startswith("| ")]
    # per profile and phase: a header and one row per field; then a header and 5 resolved rows
    kinds = sum(1 + sum(len(i) for i in p.data_kinds.values()) for p in PROFILES.values() if p.data_kinds)
    disagreements = 1 + len(DISAGREEMENTS)
    assert len(rows) == len(PROFILES) * len(PHASES) * (1 + len(FIELDS) + 1 + 5) + kinds + disagreements
    assert "| base_lr | 0.0005 | 0.0005 |" in page  # paper-21k's rate, from the code


def test_the_disagreements_between_sources_are_on_the_page_and_true_of_the_profiles():
    page = recipe.page_markdown()
    assert "## Where the public sources disagree" in page
    for topic, _, _ in DISAGREEMENTS:
        assert f"| {topic} |" in page
    p21 = PROFILES["paper-21k"]
    assert p21.pretrain.batch_size == 1024 and p21.pretrain.base_lr == 5e-4  # the names' bs1024, lr5.0e-4
    assert p21.pretrain.augment == "default" and p21.pretrain.model == "vit_base_patch16_224"
    assert (p21.pretrain.precision, p21.finetune.precision) == ("fp16", "fp32")
    assert {"ofdb", "ofdb+pattern"} <= set(PROFILES["paper"].study.rows)
    assert (
        "ofdb" in PROFILES["paper-short"].study.rows
        and "ofdb+pattern" not in PROFILES["paper-short"].study.rows
    )
    for name in ("paper", "paper-short"):
        prof = PROFILES[name]
        assert prof.pretrain.precision == prof.finetune.precision == "fp16"


def test_eval_transform_uses_crop_pct():
    pytest.importorskip("timm")
    from PIL import Image

    from ofdb_study.train import augment

    paper = augment.eval_transform(PROFILES["paper"].finetune)
    names = [type(t).__name__ for t in paper.transforms]
    assert names[:2] == ["Resize", "CenterCrop"] and paper.transforms[0].size == 256
    assert tuple(paper(Image.new("RGB", (320, 480))).shape) == (3, 224, 224)
    mini = augment.eval_transform(PROFILES["mini"].finetune)
    assert mini.transforms[0].size == 32  # crop_pct 1.0: the whole image
    assert augment.eval_settings(PROFILES["paper"].finetune) != augment.eval_settings(
        PROFILES["paper"].pretrain
    )


def test_repeated_augmentation_in_the_sample_stream():
    pytest.importorskip("torch")
    from ofdb_study.train.runtime import StreamBatches

    n, k = 10, 3
    stream = [key for b in StreamBatches(n, 6, seed=5, start=0, stop=5, repeats=k) for key in b]
    indices = [i for i, _ in stream]
    seeds = [s for _, s in stream]
    assert len(set(seeds)) == len(seeds)  # every copy gets its own augmentation seed
    for epoch in range(3):
        part = indices[epoch * n : (epoch + 1) * n]
        runs = [part[j : j + k] for j in range(0, n, k)]
        assert all(len(set(r)) == 1 for r in runs)  # k copies in a row
        assert len({r[0] for r in runs}) == math.ceil(n / k)  # distinct indices per epoch
    again = [key for b in StreamBatches(n, 6, seed=5, start=0, stop=5, repeats=k) for key in b]
    assert again == stream
    plain = [key for b in StreamBatches(n, 6, seed=5, start=0, stop=5) for key in b]
    assert [key for b in StreamBatches(n, 6, seed=5, start=0, stop=5, repeats=0) for key in b] == plain
    assert sorted(i for i, _ in plain[:n]) == list(range(n))
    # two ranks take their shares of the same global stream
    shards = [
        list(StreamBatches(n, 3, seed=5, start=0, stop=5, rank=r, world=2, repeats=k)) for r in range(2)
    ]
    merged = [key for step in range(5) for r in range(2) for key in shards[r][step]]
    assert merged == stream


def test_imagefolder_errors_name_where_it_looked(tmp_path, capsys):
    from ofdb_study.train.downstream import imagefolder_root

    with pytest.raises(ParamError) as info:
        imagefolder_root("imagefolder:imagenet-1k", str(tmp_path))
    assert info.value.param == "data_root" and str(tmp_path / "imagenet-1k" / "train") in str(info.value)
    with pytest.raises(ParamError) as info:
        imagefolder_root(f"imagefolder:{tmp_path / 'nowhere'}")
    assert info.value.param == "dataset"
    for split in ("train", "val"):
        (tmp_path / "imagenet-1k" / split / "n0").mkdir(parents=True)
    assert imagefolder_root("imagefolder:imagenet-1k", str(tmp_path)) == tmp_path / "imagenet-1k"
    pytest.importorskip("torch")
    out = tmp_path / "run"
    argv = ["finetune", "--profile", "smoke", "--dataset", "imagefolder:missing", "--init", "scratch"]
    assert main([*argv, "--data-root", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: data_root:") and "missing" in err[0]
    assert not out.exists()


def test_study_accepts_paper_21k():
    from ofdb_study.study.runner import resolve_parameters

    args = build_parser().parse_args(["study", "--profile", "paper-21k"])
    assert args.profile == "paper-21k"
    assert resolve_parameters("paper-21k")["profile"] == "paper-21k"
    plan = PROFILES["paper-21k"].study
    assert plan.dataset == PROFILES["paper-21k"].finetune.dataset
    assert plan.scaling_categories == (1000, 21_000)
    assert (plan.paper_table, plan.paper_column) == ("table3", "vit_b")
    assert PROFILES["paper"].study.onepfrac_deltas == (0.01, 0.05, 0.1, 0.2)
    assert "1p-frac" not in PROFILES["mini"].study.rows and "1p-frac" in PROFILES["smoke"].study.rows
    from ofdb_study.config import ALL_ROWS, READOUT_ROWS
    from ofdb_study.study import plan as experiments

    assert tuple(experiments.ROWS) == (*ALL_ROWS, *READOUT_ROWS)
    for prof in PROFILES.values():
        allowed = ALL_ROWS + (READOUT_ROWS if prof.study.endpoint == "readout" else ())
        assert set(prof.study.rows) <= set(allowed), prof.name
    assert np.isclose(PROFILES["paper-21k"].pretrain.base_lr * 1024 / 512, 1e-3)


def test_render_literals_match_the_renderers():
    """config, the CLI and the renderers read one set of defaults (``fractals.defaults``)."""
    from ofdb_study.cli.data import BUILD_DEFAULTS
    from ofdb_study.fractals import defaults, ofdb3d, onepfrac, render

    kinds = PROFILES["paper"].data_kinds
    assert (kinds["1pfrac"]["render_size"][0], kinds["1pfrac"]["render_points"][0]) == (
        onepfrac.SIZE,
        onepfrac.POINTS,
    )
    assert kinds["1pfrac"]["render_pad"][0] == onepfrac.PAD
    assert (kinds["ofdb3d"]["render_size"][0], kinds["ofdb3d"]["render_points"][0]) == (
        defaults.OFDB3D_SIZE,
        defaults.OFDB3D_POINTS,
    )
    assert ofdb3d.DEFAULT_JITTER_DEG == defaults.OFDB3D_JITTER_DEG
    pre = PROFILES["paper"].pretrain
    assert (pre.render_size, pre.render_points, pre.render_pad, pre.a_weight) == (
        render.OFDB_SIZE,
        render.OFDB_POINTS,
        render.OFDB_PAD,
        render.OFDB_A_WEIGHT,
    )
    assert (pre.delta, pre.sigma) == (onepfrac.DELTA, onepfrac.SIGMA)
    assert (
        BUILD_DEFAULTS["1pfrac"]["size"] == onepfrac.SIZE
        and BUILD_DEFAULTS["1pfrac"]["points"] == onepfrac.POINTS
    )


def test_the_a_weight_is_cited_to_the_table_the_public_generator_reads():
    from ofdb_study.config import PROFILES

    cite = PROFILES["paper"].pretrain_recipe.cites["a_weight"]
    assert "weights_0.4.csv" in str(cite) and "one_ins.csv is all ones" in str(cite)


@pytest.mark.parametrize("name", list(PROFILES))
def test_sources_are_words_not_objects(name):
    """A source names files and settings: no object's repr formatted into it by mistake."""
    for phase in PHASES:
        for key, cite in PROFILES[name].recipe(phase).cites.items():
            assert "Profile(" not in cite.source and "TrainConfig(" not in cite.source, (phase, key)
            assert len(cite.source) < 500 and "ours: ours:" not in cite.source, (phase, key)
