"""1p-frac: the sigma-factor sampler, the perturbed classes, seeded bytes, the build and the source."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from ofdb_study.cli import main
from ofdb_study.errors import ParamError
from ofdb_study.fractals import onepfrac as o
from ofdb_study.fractals import render
from ofdb_study.fractals.ifs import read_csv

#: A small set with a fixed seed: its CSVs and one image's pixels, pinned.
SMALL = o.Settings(categories=3, delta=0.1, seed=7, size=128, points=20_000)
SMALL_SHA256 = {
    "base.csv": "4dcb02090f83391db75a904a7f39708e5f4ac4572b268bd516e980bd9b941f52",
    "00000/00000.csv": "65c6b03d21f2545375c5bb4917dd7c6a07924c2eb35baed148dff3249ca8a756",
    "00001/00001.csv": "9d3a1580ca9adf93a03dc81068e2bc1ff4cd352ad3993fc76a22d132fb68f9eb",
}
#: sha256 of the decoded pixels (128 x 128 uint8) of class 0 (independent of the PNG encoder).
SMALL_IMAGE_SHA256 = "d4cbfa18e363285e9cda8b261d730fc691e6b9d83be3e75ad2578c2e01aead30"


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    return o.build_onepfrac(tmp_path_factory.mktemp("1p") / "small", SMALL, workers=1)


def test_singular_values_meet_their_constraints():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 5):
        for a in rng.uniform(0.05, 3 * n - 0.05, 200):
            sv = o.sample_singular_values(n, a, rng)
            assert np.all(sv[:, 0] <= 1 + 1e-12) and np.all(sv[:, 1] >= -1e-12)
            assert np.all(sv[:, 0] >= sv[:, 1] - 1e-12)
            assert np.sum(sv[:, 0] + 2 * sv[:, 1]) == pytest.approx(a, abs=1e-12)


def test_sampler_matches_a_plain_statement_of_the_rule():
    """signs, angles, a, singular values, translations drawn in that order; A = R diag(signs) ..."""
    n, sigma = 2, 3.5
    maps, factor = o.sample_maps(n, sigma, np.random.default_rng(11))
    rng = np.random.default_rng(11)
    signs = np.sign(rng.random((2 * n, 2)) - 0.5)
    theta = rng.uniform(-np.pi, np.pi, 2 * n)
    rot = np.array([[[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]] for t in theta])
    frames = rot @ np.array([np.diag(s) for s in signs])
    a = rng.uniform(sigma - 0.1, sigma + 0.1)
    sv = o.sample_singular_values(n, a, rng)
    shift = rng.uniform(-1, 1, (n, 2))
    linear = np.array([frames[i] @ np.diag(sv[i]) @ frames[n + i] for i in range(n)])
    assert factor == a
    np.testing.assert_allclose(maps[:, :4], linear.reshape(n, 4), rtol=0, atol=1e-15)
    assert np.array_equal(maps[:, 4:], shift)
    # the singular values of each map are the drawn ones: contractive
    for i in range(n):
        np.testing.assert_allclose(np.linalg.svd(linear[i], compute_uv=False), sv[i], atol=1e-12)


def test_base_system_is_seeded_contractive_and_fills_the_image():
    s = o.Settings(seed=4)
    a, b = o.sample_base(s), o.sample_base(s)
    assert a.system == b.system and a.sigma_factor == b.sigma_factor and a.draws == b.draws >= 1
    assert not a.system == o.sample_base(o.Settings(seed=5)).system
    assert a.system.n_maps == 2 and np.all(a.system.contraction_factors() < 1)
    assert 3.4 <= a.sigma_factor <= 3.6
    dets = np.abs(a.system.maps[:, 0] * a.system.maps[:, 3] - a.system.maps[:, 1] * a.system.maps[:, 2])
    np.testing.assert_allclose(a.system.probs, dets / dets.sum(), rtol=0, atol=1e-15)


def test_classes_are_the_base_times_their_own_factors():
    result = o.generate(o.Settings(categories=6, delta=0.2, seed=2, size=96, points=8000), workers=2)
    base = result.base.system
    for k, drawn in enumerate(result.classes):
        ratio = drawn.system.maps / base.maps
        assert np.all((0.8 - 1e-12 <= ratio) & (ratio <= 1.2 + 1e-12))
        assert np.array_equal(drawn.system.probs, base.probs)  # the base's probabilities, as public
        assert drawn.fill > 0.05 and drawn.attempts >= 1
        # the kept image is the render of the kept system with its mask seed
        again = render.draw(
            render.points(drawn.system, size=96, n_points=8000, pad=6, a_weight=1.0),
            mode="patch",
            mask_seed=drawn.mask_seed,
        )
        assert np.array_equal(again, drawn.image), k
    assert len({d.system.maps.tobytes() for d in result.classes}) == 6
    assert result.redraws == sum(d.attempts - 1 for d in result.classes)


def test_same_seed_same_bytes_pinned(small_tree, tmp_path):
    for name, digest in SMALL_SHA256.items():
        assert hashlib.sha256((small_tree / name).read_bytes()).hexdigest() == digest, name
    pixels = np.asarray(Image.open(small_tree / "00000" / "00000.png"))
    assert pixels.shape == (128, 128) and hashlib.sha256(pixels.tobytes()).hexdigest() == SMALL_IMAGE_SHA256
    again = o.build_onepfrac(tmp_path / "again", SMALL, workers=2)
    first = json.loads((small_tree / "manifest.json").read_text())
    second = json.loads((again / "manifest.json").read_text())
    assert first["files"] == second["files"]  # any worker count
    other = o.build_onepfrac(tmp_path / "other", dataclasses.replace(SMALL, seed=8), workers=1)
    assert (other / "base.csv").read_bytes() != (small_tree / "base.csv").read_bytes()


def test_tree_holds_every_system_in_the_official_format(small_tree):
    doc = json.loads((small_tree / "manifest.json").read_text())
    assert doc["kind"] == "1pfrac" and doc["settings"]["delta"] == 0.1 and doc["settings"]["seed"] == 7
    assert sorted(doc["files"]) == [
        "00000/00000.csv",
        "00000/00000.png",
        "00001/00001.csv",
        "00001/00001.png",
        "00002/00002.csv",
        "00002/00002.png",
        "base.csv",
    ]
    result = o.generate(SMALL, workers=1)
    assert read_csv(small_tree / "base.csv") == result.base.system
    for k, drawn in enumerate(result.classes):
        assert read_csv(small_tree / f"{k:05d}" / f"{k:05d}.csv") == drawn.system
        assert doc["classes"][f"{k:05d}"]["mask_seed"] == drawn.mask_seed
    assert doc["base"] == result.base.system.to_rows().tolist()


def test_cli_build_and_bad_input(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["build", "1pfrac", "--categories", "2", "--delta", "0.05", "--seed", "3", "--out", str(out)]
    assert main([*argv, "--size", "64", "--points", "3000", "--quiet"]) == 0
    assert (out / "base.csv").is_file() and (out / "00001" / "00001.png").is_file()
    assert "1pfrac: 2 images" in capsys.readouterr().out
    for bad, word in (
        (["--delta", "1.5"], "delta"),
        (["--sigma", "6.0"], "sigma"),
        (["--a-weight", "0.2"], "a-weight"),
        (["--draw", "point"], "draw"),
    ):
        target = tmp_path / f"bad-{word}"
        code = main(["build", "1pfrac", "--categories", "2", "--out", str(target), "--quiet", *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and word in err[0]
        assert not target.exists()
    with pytest.raises(ParamError, match="delta"):
        o.Settings(delta=-0.1).validate()


def test_in_memory_source_is_the_built_tree(tmp_path):
    pytest.importorskip("torch")
    from ofdb_study.config import phase_config
    from ofdb_study.train import pretrain_data

    cfg = phase_config("smoke", "pretrain", data="1pfrac", categories=3, delta=0.1)
    train, held_out, classes, digest = pretrain_data.pretrain_datasets(cfg, None, None)
    assert classes == 3 and len(train) == 3 and len(digest) == 64
    settings = o.Settings(
        categories=3,
        delta=0.1,
        sigma=cfg.sigma,
        seed=pretrain_data.ONEPFRAC_SEED,
        size=cfg.render_size,
        points=cfg.render_points,
        pad=cfg.render_pad,
    )
    tree = o.build_onepfrac(tmp_path / "tree", settings, workers=1)
    for c in range(3):
        on_disk = np.asarray(Image.open(tree / f"{c:05d}" / f"{c:05d}.png"))
        assert np.array_equal(train.source.fixed_image(c), on_disk)
        # the own-task evaluation: the class's points with fresh masks, never the training image
        k = cfg.eval_per_category
        img, label = held_out[c * k]
        fresh = np.asarray(img.convert("L"))
        assert label == c and fresh.any() and not np.array_equal(fresh, on_disk)


def test_published_numbers_beside_ours():
    pd = pytest.importorskip("pandas")
    from ofdb_study.analysis import paper as results

    table = results.onepfrac_table()
    assert table["delta"].tolist() == [0.01, 0.05, 0.1, 0.2]
    assert table["c100"].tolist() == [19.9, 83.0, 84.2, 83.4] and set(table["sigma"]) == {3.5}
    later = results.later_work().set_index("method")
    assert later.loc["1p-frac", "top1"] == 84.2  # the headline number, from the same rows
    sweep = pd.DataFrame({"delta": [0.1, 0.1, 0.3], "seed": [0, 1, 0], "top1_best": [50.0, 52.0, 40.0]})
    side = results.onepfrac_vs_paper(sweep)
    assert side["delta"].tolist() == [0.1, 0.3] and side["n"].tolist() == [2, 1]
    assert side["ours_mean"].tolist() == [51.0, 40.0] and side["paper"].iloc[0] == 84.2
    assert np.isnan(side["paper"].iloc[1])
    summary = pd.DataFrame(
        {
            "row": ["ofdb3d", "ofdb3d+pattern", "1p-frac"],
            "pretrain": ["ofdb3d", "ofdb3d", "1pfrac"],
            "augment": ["default", "pattern", "default"],
            "mean": [1.0, 2.0, 3.0],
            "half": [0.1, 0.1, 0.1],
        }
    )
    assert results.paper_reference(summary).tolist() == [83.8, 84.7, 84.2]  # Table 1's 3D column
    t2 = results.pretraining_vs_table2(summary)
    assert t2["paper_row"].tolist() == ["3D-OFDB-1k", "3D-OFDB-1k w/ Aug"]
    summary21 = pd.DataFrame(
        {
            "row": ["ofdb", "ofdb3d", "scratch"],
            "pretrain": ["ofdb", "ofdb3d", "scratch"],
            "augment": ["default", "default", None],
            "mean": [80.0, 81.0, 78.0],
            "half": [np.nan] * 3,
        }
    )
    t3 = results.pretraining_vs_table3(summary21)
    assert t3["paper"].tolist() == [82.2, 82.7, 79.8] and t3["ours_gap"].tolist() == [2.0, 3.0, 0.0]
    assert results.pretraining_vs_table3(summary21, "vit_t")["paper"].tolist() == [73.8, 73.7, 72.6]
