"""3D-OFDB: search stream and filter, camera maths, reproducibility by hash, bad input."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from ofdb_study.errors import ParamError
from ofdb_study.fractals import kernels3d as k3
from ofdb_study.fractals import ofdb3d as o
from ofdb_study.fractals.ifs import format_rows, write_csv

SEED = 1
#: Candidate numbers (1-based) of the first five categories for seed 1, 10,000 points.
FIRST_CANDIDATES = [60, 176, 262, 274, 389]


def _tetrahedron(scale: float = 0.5) -> o.IFS3D:
    """The 3D Sierpinski gasket: four maps x -> x / 2 + v / 2 over a tetrahedron's vertices."""
    verts = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)
    A = np.repeat(np.eye(3)[None] * scale, 4, axis=0)
    return o.IFS3D(A, verts * (1 - scale), np.full(4, 0.25))


# ----------------------------------------------------------------------------------------------
# The search: the documented NumPy stream, the filter, reproducibility.


def test_search_follows_the_documented_numpy_stream():
    """Replaying randint / uniform(-1, 1, (N, 12)) / random_sample(10000) with NumPy finds the
    same candidates and the same bits as the numba search."""
    result = o.search3d(len(FIRST_CANDIDATES), o.Search3DSettings(seed=SEED), workers=2)
    assert result.candidates == FIRST_CANDIDATES
    rs = np.random.RandomState(SEED)
    found = []
    for cand in range(1, FIRST_CANDIDATES[-1] + 1):
        n = rs.randint(2, 8)
        params = rs.uniform(-1, 1, size=(n, 12))
        uniforms = rs.random_sample(10_000)
        ok, var = o.score_system(o.IFS3D.from_params(params), uniforms)
        if ok:
            found.append((cand, params, var))
    assert [c for c, _, _ in found] == FIRST_CANDIDATES
    for ifs, var_search, (_, params, var) in zip(result.categories, result.variances, found):
        assert np.array_equal(ifs.A.reshape(-1, 9), params[:, :9])
        assert np.array_equal(ifs.t, params[:, 9:])
        assert np.array_equal(var_search, var)
        assert ifs.probs.sum() == pytest.approx(1.0)


def _csv_hash(result: o.Search3DResult) -> str:
    return hashlib.sha256("".join(format_rows(c) for c in result.categories).encode()).hexdigest()


def test_search_same_bytes_for_any_workers_and_batch():
    ref = o.search3d(6, workers=1, batch=32)
    for workers, batch in ((2, 512), (3, 7)):
        other = o.search3d(6, workers=workers, batch=batch)
        assert _csv_hash(other) == _csv_hash(ref)
        assert other.candidates == ref.candidates
    assert _csv_hash(o.search3d(6, o.Search3DSettings(seed=2), workers=1)) != _csv_hash(ref)


def test_variance_filter_on_hand_made_systems():
    u = np.random.RandomState(0).random_sample(10_000)
    ok, var = o.score_system(_tetrahedron(), u)
    assert ok and np.all(var > 0.05)
    # A gasket squashed onto the plane z = 0: x and y spread, z has no variance at all.
    flat = _tetrahedron()
    A = flat.A.copy()
    A[:, 2, 2] = 1e-3  # a tiny non-zero determinant so that p ~ |det| is defined
    t = flat.t.copy()
    t[:, 2] = 0.0
    ok, var = o.score_system(o.IFS3D(A, t, flat.probs), u)
    assert not ok and var[0] > 0.05 and var[1] > 0.05 and var[2] < 1e-6
    # Expanding maps: the points overflow to inf and NaN, so the candidate is rejected.
    grow = o.IFS3D(np.repeat(np.eye(3)[None] * 3.0, 2, axis=0), np.ones((2, 3)), np.full(2, 0.5))
    ok, var = o.score_system(grow, u)
    assert not ok and np.all(np.isnan(var))
    pts = np.empty((10_000, 3))
    assert k3.chaos_game_3d(grow.A, grow.t, grow.cumulative(), u, 10_000, pts) < 10_000


def test_fast_variance_matches_normalise_then_variance():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(5000, 3)) * [1.0, 3.0, 0.2] + [1e6, -2e6, 5.0]
    fast = np.empty(3)
    assert k3.normalized_variances(pts, 5000, fast)
    q = pts.copy()
    assert k3.normalize_cloud(q, 5000)
    assert q.min() >= -1 - 1e-12 and np.abs(q.mean(axis=0)).max() < 1e-12
    assert np.allclose(fast, q.var(axis=0), rtol=1e-9, atol=1e-15)
    # Near overflow (sums of squares would be inf): same variances, the test is scale-free.
    huge = pts / np.abs(pts).max() * 1e307
    big = np.empty(3)
    assert k3.normalized_variances(huge, 5000, big) and np.allclose(big, fast, rtol=1e-6)
    assert not k3.normalized_variances(np.ones((10, 3)), 10, fast)  # all equal: cannot normalise


def test_csv_round_trip_and_format(tmp_path):
    ifs = o.search3d(1, workers=1).categories[0]
    path = tmp_path / "00000.csv"
    write_csv(path, ifs)
    assert o.read_csv(path) == ifs
    ref = tmp_path / "ref.csv"
    np.savetxt(ref, ifs.to_rows(), delimiter=",")
    assert path.read_text() == ref.read_text()
    assert ifs.to_rows().shape == (ifs.n_maps, 13)
    assert o.read_dir(tmp_path) == [ifs]  # ref.csv is not an NNNNN.csv category file
    (tmp_path / "00001.csv").write_text("1,2,3\n")
    with pytest.raises(ParamError):
        o.read_csv(tmp_path / "00001.csv")


def test_search3d_cli_writes_csvs(tmp_path):
    from ofdb_study.cli import main

    out = tmp_path / "params3d"
    assert main(["search3d", "--categories", "2", "--out", str(out), "--workers", "1"]) == 0
    ref = o.search3d(2, workers=1)
    assert [o.read_csv(out / f"0000{i}.csv") for i in range(2)] == ref.categories
    assert main(["search3d", "--categories", "2", "--out", str(out)]) == 2  # not empty, no --force


# ----------------------------------------------------------------------------------------------
# Camera.

_TAN = math.tan(math.radians(22.5))  # = sqrt(2) - 1


def _lit(img: np.ndarray) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in rc) for rc in np.argwhere(img)]


def test_origin_lands_in_the_centre_from_every_view():
    imgs = o.render_cloud(np.zeros((1, 3)), o.view_angles(12, jitter=4.0, seed=5, index=3))
    assert imgs.shape == (12, 224, 224) and imgs.dtype == np.uint8
    for img in imgs:
        assert _lit(img) == [(112, 112)] and img[112, 112] == 255


def test_points_on_the_axes_land_where_the_fov_says():
    # Seen from +z at distance 4, x = 1 is at ndc 1 / (4 tan 22.5 deg) = 0.60355, so column
    # floor((1 + 0.60355) * 112) = floor(179.598) = 179; y = 1 goes up to row floor(0.39645 * 112) = 44.
    ndc = 1.0 / (4.0 * _TAN)
    assert math.floor((1 + ndc) * 112) == 179 and math.floor((1 - ndc) * 112) == 44
    img = o.render_cloud(np.array([[1.0, 0, 0]]), [0.0])[0]
    assert _lit(img) == [(112, 179)]
    img = o.render_cloud(np.array([[0, 1.0, 0]]), [0.0])[0]
    assert _lit(img) == [(44, 112)]
    # From +x (angle 90 deg) the camera's right is -z: the point z = 1 goes left, to column 44.
    img = o.render_cloud(np.array([[0, 0, 1.0]]), [math.pi / 2])[0]
    assert _lit(img) == [(112, 44)]
    # Depth matters: x = 1 at depth 3 (z = 1, seen from +z) is further out than at depth 4.
    img = o.render_cloud(np.array([[1.0, 0, 1.0]]), [0.0])[0]
    assert _lit(img) == [(112, math.floor((1 + 1 / (3 * _TAN)) * 112))]


def test_near_far_clipping_and_z_buffer():
    # z = 3.5 is 0.5 in front of the camera at z = 4, nearer than near = 1: dropped.
    assert not o.render_cloud(np.array([[0, 0, 3.5]]), [0.0]).any()
    # Two points on the central ray: the one nearer to the camera wins, in either order.
    pts = np.array([[0, 0, 0.0], [0, 0, 1.0]])
    vals = np.array([100, 200], dtype=np.uint8)
    assert o.render_cloud(pts, [0.0], values=vals)[0, 112, 112] == 200
    assert o.render_cloud(pts[::-1], [0.0], values=vals[::-1])[0, 112, 112] == 200
    # From the other side (angle 180 deg) the point at z = 0 is the nearer one.
    assert o.render_cloud(pts, [math.pi], values=vals)[0, 112, 112] == 100


def test_twelve_viewpoints_at_the_right_angles():
    base = 2 * np.pi * np.arange(12) / 12 + np.deg2rad(30)
    assert np.allclose(o.view_angles(12, jitter=0.0), base, rtol=0, atol=1e-15)
    a = o.view_angles(12, jitter=5.0, seed=1, index=7)
    assert np.all(np.abs(a - base) <= np.deg2rad(5.0)) and np.any(a != base)
    assert np.array_equal(a, o.view_angles(12, jitter=5.0, seed=1, index=7))
    assert not np.array_equal(a, o.view_angles(12, jitter=5.0, seed=1, index=8))
    m = o.look_at(0.0)
    assert np.allclose(m, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -4]])


# ----------------------------------------------------------------------------------------------
# Rendering and the tree.


def test_render_category_is_reproducible_and_weighted():
    ifs = o.search3d(2, workers=1).categories[1]
    kw = dict(index=1, views=3, size=64, points=5000)
    a = o.render_category(ifs, **kw)
    assert a.shape == (3, 64, 64) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255}
    assert a.any() and np.array_equal(a, o.render_category(ifs, **kw))
    assert not np.array_equal(a, o.render_category(ifs, a_weight=1.0, **kw))
    w = ifs.weighted(0.4)
    assert np.array_equal(w.A[:, 0, 0], ifs.A[:, 0, 0] * 0.4) and np.array_equal(w.A[:, 1:], ifs.A[:, 1:])


def _stand_in_writer(
    out, jobs, kind, settings, *, extra=None, resume=False, force=False, progress=False, workers=None
):
    """Minimal tree writer with the lead's signature (used only if datasets lacks the real one)."""
    from pathlib import Path

    out = Path(out)
    files = {}
    for paths, fn in jobs:
        for name, img in zip(paths, fn()):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            data = img.tobytes()
            (out / name).write_bytes(data)
            files[name] = hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps({"kind": kind, "settings": settings, "files": files}))
    return out


def test_build_tree_same_bytes_for_any_workers(tmp_path, monkeypatch):
    from ofdb_study.fractals import build as datasets

    if not hasattr(datasets, "write_image_tree"):
        monkeypatch.setattr(datasets, "write_image_tree", _stand_in_writer, raising=False)
    kw = dict(views=3, size=48, points=3000)
    trees = [o.build_ofdb3d(tmp_path / f"w{w}", 2, workers=w, **kw) for w in (1, 2)]
    docs = [json.loads((t / "manifest.json").read_text()) for t in trees]
    assert docs[0]["files"] == docs[1]["files"]
    assert sorted(docs[0]["files"]) == [f"0000{c}/0000{c}_v0{v}.png" for c in range(2) for v in range(3)]
    assert docs[0]["kind"] == "ofdb3d" and docs[0]["settings"]["a_weight"] == 0.4


# ----------------------------------------------------------------------------------------------
# Bad input: ParamError naming the parameter, before anything is written.


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: o.search3d(0), "categories"),
        (lambda: o.search3d(-3), "categories"),
        (lambda: o.search3d(1, o.Search3DSettings(points=1)), "points"),
        (lambda: o.search3d(1, o.Search3DSettings(seed=-1)), "seed"),
        (lambda: o.search3d(1, workers=0), "workers"),
        (lambda: o.render_category(_tetrahedron(), size=4), "size"),
        (lambda: o.render_category(_tetrahedron(), points=1), "points"),
        (lambda: o.render_category(_tetrahedron(), views=0), "views"),
        (lambda: o.render_category(_tetrahedron(), jitter=20.0), "jitter"),
        (lambda: o.render_category(_tetrahedron(), a_weight=0.0), "a_weight"),
        (lambda: o.render_category(_tetrahedron(), a_weight=float("nan")), "a_weight"),
        (lambda: o.render_category(_tetrahedron(), a_weight="heavy"), "a_weight"),
        (lambda: o.IFS3D(np.zeros((2, 2, 2)), np.zeros((2, 3)), np.ones(2) / 2), "A"),
        (lambda: o.IFS3D(np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0)), "A"),
        (lambda: o.IFS3D.from_params(np.zeros((2, 12))), "A"),
        (lambda: o.IFS3D.from_params(np.zeros((0, 12))), "params"),
        (lambda: o.render_cloud(np.zeros((3, 2)), [0.0]), "points"),
    ],
)
def test_bad_input_raises_param_error(call, param):
    with pytest.raises(ParamError) as info:
        call()
    assert info.value.param == param


def test_build_rejects_bad_input_before_writing(tmp_path):
    for kwargs in (
        dict(categories=0),
        dict(categories=2, size=2),
        dict(categories=2, points=1),
        dict(categories=2, a_weight=-1.0),
    ):
        with pytest.raises(ParamError):
            o.build_ofdb3d(tmp_path / "tree", **kwargs)
        assert not (tmp_path / "tree").exists()


@pytest.mark.slow
def test_thousandth_category_candidate_number():
    """Regression anchor of our stream: seed 1 accepts its 1,000th category at candidate 83,914."""
    result = o.search3d(1000)
    assert result.candidates[:5] == FIRST_CANDIDATES
    assert result.candidates[-1] == 83_914


def test_build_records_categories_whose_instance_diverges(tmp_path, capsys):
    from ofdb_study import cli

    params = tmp_path / "params"
    params.mkdir()
    write_csv(params / "00000.csv", _tetrahedron())
    write_csv(params / "00001.csv", _tetrahedron(scale=3.0))  # expands: overflows within 700 steps
    assert o.diverged_categories(o.read_dir(params), points=3000) == ["00001"]
    out = tmp_path / "tree"
    argv = ["build", "ofdb3d", "--categories", "2", "--params", str(params), "--out", str(out)]
    assert cli.main([*argv, "--size", "32", "--points", "3000", "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["diverged"] == ["00001"]
    assert "1 categories diverge with a x 0.4" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The public generator's defaults, and random pattern for 3D.

#: View 0 of category 0 (search seed 1) at the defaults: 224 px, 10,000 points, jitter pi degrees.
DEFAULT_VIEW_LIT = 378
DEFAULT_VIEW_SHA256 = "0afcad53d827828d9a53832d943d525c4f47c7701060484af0de87da99887016"


def test_defaults_are_the_public_generators():
    import inspect

    from ofdb_study.cli.data import BUILD_DEFAULTS
    from ofdb_study.fractals import defaults

    assert (defaults.OFDB3D_POINTS, defaults.OFDB3D_SIZE, o.DEFAULT_A_WEIGHT) == (10_000, 224, 0.4)
    assert o.DEFAULT_JITTER_DEG == math.pi == defaults.OFDB3D_JITTER_DEG  # radians(uniform(-pi, pi))
    for fn in (o.render_category, o.build_ofdb3d):
        params = inspect.signature(fn).parameters
        assert params["points"].default == 10_000 and params["size"].default == 224
        assert params["jitter"].default == math.pi
    assert BUILD_DEFAULTS["ofdb3d"] == dict(size=224, points=10_000, a_weight=0.4, seed=1)
    views = o.render_category(o.search3d(1, workers=1).categories[0], index=0, seed=1)
    assert views.shape == (12, 224, 224)
    assert int(np.count_nonzero(views[0])) == DEFAULT_VIEW_LIT
    assert hashlib.sha256(views[0].tobytes()).hexdigest() == DEFAULT_VIEW_SHA256
    u = (o.view_angles(12, seed=1, index=0) - o.view_angles(12, jitter=0.0, seed=1, index=0)) * 180 / np.pi
    assert np.all(np.abs(u) <= math.pi) and np.abs(u).max() > 1.0


def _restamp_reference(x, y, size, seed):
    """The 2D patch rule read literally: pixel i's mask bit 3 r + c lights (y + 1 + r, x + 1 + c)."""
    from ofdb_study.fractals import kernels

    out = np.zeros((size, size), dtype=np.uint8)
    for i in range(len(x)):
        m = int(kernels.patch_mask(seed, i))
        for bit in range(9):
            r, c = divmod(bit, 3)
            yy, xx = int(y[i]) + 1 + r, int(x[i]) + 1 + c
            if yy < size and xx < size:
                out[yy, xx] = 127 if (m >> bit) & 1 else 0
    return out


def test_pattern_view_restamps_each_lit_pixel():
    img = np.zeros((16, 16), dtype=np.uint8)
    img[[0, 3, 3, 9, 15], [2, 3, 4, 15, 15]] = 255  # two at the far edge
    x, y = o.view_pixels(img)
    assert list(zip(y.tolist(), x.tolist())) == [(0, 2), (3, 3), (3, 4), (9, 15), (15, 15)]  # row-major
    assert np.array_equal(o.view_pixels(np.dstack([img] * 3))[0], x)
    for seed in (0, 7, 2**40):
        assert np.array_equal(o.pattern_view((x, y), 16, seed), _restamp_reference(x, y, 16, seed))
    assert not np.array_equal(o.pattern_view((x, y), 16, 1), o.pattern_view((x, y), 16, 2))
    with pytest.raises(ParamError):
        o.pattern_view((x, y[:2]), 16, 0)
