"""The renderer: the published pixel counts, the NumPy reference, patch masks, seeds, modes."""

import hashlib

import ifs_reference as ref
import numpy as np
import pytest

from ofdb_study.errors import ParamError
from ofdb_study.fractals import kernels, render
from ofdb_study.fractals.ifs import IFS, fluctuation_weights, probabilities_from_determinants


@pytest.fixture(scope="module")
def cats(searched):
    return searched.categories[:5]


def _sha(img):
    return hashlib.sha256(img.tobytes()).hexdigest()


@pytest.mark.parametrize("index, lit", [(0, 26_574), (4, 37_868)])
def test_point_mode_matches_public_generator(cats, index, lit):
    img = render.render(cats[index], mode="point")
    assert img.shape == (362, 362) and img.dtype == np.uint8
    assert np.count_nonzero(img) == lit
    assert set(np.unique(img)) == {0, 127}


def _random_system(rng, n, scale):
    maps = rng.uniform(-scale, scale, (n, 6))
    return IFS(maps, probabilities_from_determinants(maps))


@pytest.mark.parametrize("scale", [0.8, 1.0, 1.6])
def test_kernels_equal_numpy_reference_including_divergent_systems(scale):
    rng = np.random.default_rng(int(scale * 10))
    u = np.random.RandomState(100).random_sample(3000)
    for _ in range(8):
        system = _random_system(rng, int(rng.integers(2, 6)), scale)
        xs_ref, ys_ref = ref.chaos(system.maps, system.probs, u, 3000)
        xs = np.empty(3000)
        ys = np.empty(3000)
        stats = kernels.new_stats()
        count = kernels.chaos_game(system.maps, system.cumulative(), u, 3000, xs, ys, stats)
        np.testing.assert_array_equal(xs[:count], xs_ref[:count])
        X_ref, Y_ref = ref.nan_rule_and_rescale(xs_ref, ys_ref, 128, 6)
        px = np.empty(3000, np.uint16)
        py = np.empty(3000, np.uint16)
        n = kernels.nan_rule_and_rescale(xs, ys, count, 3000, 128, 6, px, py, stats)
        assert n == X_ref.size
        np.testing.assert_array_equal(px[:n], X_ref)
        np.testing.assert_array_equal(py[:n], Y_ref)


def test_nan_rule_deletes_hundred_points_before_first_nan():
    xs = np.arange(1000, dtype=np.float64)
    ys = np.arange(1000, dtype=np.float64)
    xs[500:] = np.nan
    ys[501:] = np.nan
    px = np.empty(1000, np.uint16)
    py = np.empty(1000, np.uint16)
    stats = kernels.new_stats()
    stats[4] = kernels.NAN_SEEN
    n = kernels.nan_rule_and_rescale(xs.copy(), ys.copy(), 1000, 1000, 64, 4, px, py, stats)
    X_ref, Y_ref = ref.nan_rule_and_rescale(xs, ys, 64, 4)
    assert n == 400 == X_ref.size
    np.testing.assert_array_equal(px[:n], X_ref)


def test_step_with_no_qualifying_map_repeats_the_point():
    # Probabilities summing to 0.6: every uniform above 0.6 picks no map, so the point repeats.
    maps = np.array([[0.5, 0.1, -0.2, 0.4, 0.3, -0.1], [-0.3, 0.2, 0.1, 0.6, -0.2, 0.4]])
    probs = np.array([0.3, 0.3])
    u = np.random.RandomState(100).random_sample(5000)
    xs_ref, ys_ref = ref.chaos(maps, probs, u, 5000)
    xs = np.empty(5000)
    ys = np.empty(5000)
    stats = kernels.new_stats()
    kernels.chaos_game(maps, np.cumsum(probs), u, 5000, xs, ys, stats)
    np.testing.assert_array_equal(xs, xs_ref)
    np.testing.assert_array_equal(ys, ys_ref)
    X_ref, Y_ref = ref.nan_rule_and_rescale(xs_ref, ys_ref, 96, 6)
    px = np.empty(5000, np.uint16)
    py = np.empty(5000, np.uint16)
    n = kernels.nan_rule_and_rescale(xs, ys, 5000, 5000, 96, 6, px, py, stats)
    np.testing.assert_array_equal(px[:n], X_ref)
    np.testing.assert_array_equal(py[:n], Y_ref)


def _both_ways(system, n):
    """(xs, ys, stats) of the sequential and of the interleaved chaos game."""
    u = np.random.RandomState(100).random_sample(n)
    out = []
    for choice in (None, np.empty(n, np.uint8)):
        xs, ys, stats = np.empty(n), np.empty(n), kernels.new_stats()
        kernels.chaos_game(system.maps, system.cumulative(), u, n, xs, ys, stats, choice)
        out.append((xs, ys, stats))
    return out


def _assert_same_bits(a, b):
    np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


@pytest.mark.parametrize("scale", [0.8, 1.0, 1.6])
def test_interleaved_chaos_game_equals_sequential_bit_for_bit(scale):
    rng = np.random.default_rng(100 + int(scale * 10))
    n = kernels.INTERLEAVE_MIN + 123
    flags = set()
    for _ in range(6):
        system = _random_system(rng, int(rng.integers(2, 8)), scale)
        (xs, ys, st), (xs2, ys2, st2) = _both_ways(system, n)
        _assert_same_bits(xs, xs2)
        _assert_same_bits(ys, ys2)
        assert bool(st[4]) == bool(st2[4])  # a NaN is seen by both or by neither
        if not st[4]:
            _assert_same_bits(st[:4], st2[:4])
        flags.add(bool(st[4]))
    if scale == 1.6:
        assert True in flags  # diverging systems were among them


def test_interleaved_seams_that_never_meet_are_recomputed():
    # Two rotations by irrational angles: distances are kept, so chains from (0, 0) never meet
    # the true trajectory and every seam must be recomputed from the true point.
    maps = np.array([[np.cos(t), -np.sin(t), np.sin(t), np.cos(t), 0.1, 0.0] for t in (0.7, 2.1)])
    system = IFS(maps, np.array([0.5, 0.5]))
    n = kernels.INTERLEAVE_MIN
    u = np.random.RandomState(100).random_sample(n)
    coef, bound = kernels.chaos_tables(system.maps, system.cumulative())
    choice = np.empty(n, np.uint8)
    assert not kernels.map_choices(bound, 2, u, n - 1, choice)
    xs, ys, stats = np.empty(n), np.empty(n), kernels.new_stats()
    assert kernels.chaos_interleaved(coef, choice, n, xs, ys, stats) == kernels.CHAINS - 1
    (xs_ref, ys_ref, st_ref), _ = _both_ways(system, n)
    _assert_same_bits(xs, xs_ref)
    _assert_same_bits(ys, ys_ref)
    np.testing.assert_array_equal(stats, st_ref)


def test_interleaved_game_with_steps_that_pick_no_map():
    # Probabilities summing to 0.6: the interleaved path sees uniforms that pick no map and falls
    # back to the exact sequential rule; both paths must give the NumPy reference's points.
    maps = np.array([[0.5, 0.1, -0.2, 0.4, 0.3, -0.1], [-0.3, 0.2, 0.1, 0.6, -0.2, 0.4]])
    system = IFS(maps, np.array([0.3, 0.3]))
    n = kernels.INTERLEAVE_MIN
    u = np.random.RandomState(100).random_sample(n)
    xs_ref, ys_ref = ref.chaos(system.maps, system.probs, u, n)
    for (xs, ys, stats), path in zip(_both_ways(system, n), ("sequential", "interleaved")):
        np.testing.assert_array_equal(xs.view(np.int64), xs_ref.view(np.int64), err_msg=path)
        np.testing.assert_array_equal(ys.view(np.int64), ys_ref.view(np.int64), err_msg=path)
        assert stats[4] == kernels.NAN_SEEN, path  # min/max unknown after the fallback


def test_render_agrees_with_reference_on_the_interleaved_path(cats):
    n = kernels.INTERLEAVE_MIN + 7
    system = cats[3].weighted(render.effective_weights(1.0))
    u = render.chaos_uniforms(n)
    xs, ys = ref.chaos(system.maps, system.probs, u, n)
    X, Y = ref.nan_rule_and_rescale(xs, ys, 256, 6)
    got = render.render(cats[3], size=256, n_points=n, mode="point", a_weight=1.0)
    np.testing.assert_array_equal(got, ref.point_image(X, Y, 256))


def test_point_image_equals_reference(cats):
    system = cats[2].weighted(render.effective_weights(0.2))
    u = render.chaos_uniforms(20_000)
    xs, ys = ref.chaos(system.maps, system.probs, u, 20_000)
    X, Y = ref.nan_rule_and_rescale(xs, ys, 200, 6)
    expected = ref.point_image(X, Y, 200)
    got = render.render(cats[2], size=200, n_points=20_000, mode="point")
    np.testing.assert_array_equal(got, expected)


def test_patch_masks_are_seeded_and_placed(cats):
    pts = render.points(cats[1], size=128, n_points=5000)
    a = render.draw(pts, mode="patch", mask_seed=3)
    assert _sha(a) == _sha(render.draw(pts, mode="patch", mask_seed=3))
    assert _sha(a) != _sha(render.draw(pts, mode="patch", mask_seed=4))
    masks = np.array([kernels.patch_mask(3, i) for i in range(5000)])
    assert masks.min() >= 1 and masks.max() <= 511 and len(np.unique(masks)) > 400
    # The last point's block is written whole (top-left at X+1, Y+1 before the flip).
    x0, y0 = int(pts.x[-1]) + 1, int(pts.y[-1]) + 1
    unflipped = a[::-1]
    block = unflipped[y0 : y0 + 3, x0 : x0 + 3]
    expected = np.array([[127 if (masks[-1] >> (3 * r + c)) & 1 else 0 for c in range(3)] for r in range(3)])
    np.testing.assert_array_equal(block, expected)


@pytest.mark.parametrize("size, pad", [(128, 6), (64, 0)])  # blocks inside; blocks past the edge
def test_patch_image_equals_reference(cats, size, pad):
    pts = render.points(cats[1], size=size, pad=pad, n_points=3000)
    masks = [kernels.patch_mask(5, i) for i in range(len(pts))]
    expected = ref.patch_image(pts.x, pts.y, size, masks)
    np.testing.assert_array_equal(render.draw(pts, mode="patch", mask_seed=5), expected)
    np.testing.assert_array_equal(render.draw(pts, mode="patch", mask_seed=5, flip=False), expected[::-1])


def test_color_mode_and_flip(cats):
    pts = render.points(cats[0], size=96, n_points=4000)
    col = render.draw(pts, mode="color")
    assert col.shape == (96, 96, 3) and col.max() == 255
    flat = render.draw(pts, mode="point", flip=False)
    np.testing.assert_array_equal(flat[::-1], render.draw(pts, mode="point"))
    assert render.fill_rate(col) == render.fill_rate(render.draw(pts, mode="point"))


def test_weights_change_the_points(cats):
    rows = fluctuation_weights()
    assert rows.shape == (25, 6) and np.all(rows[0] == 1)
    assert sorted(set(rows[1:].ravel()) - {1.0}) == [0.2, 0.6, 1.4, 1.8]
    base = render.points(cats[0], size=128, n_points=4000, a_weight=1.0)
    row1 = render.points(cats[0], size=128, n_points=4000, a_weight=1.0, weights=rows[1])
    ofdb = render.points(cats[0], size=128, n_points=4000)  # a x 0.2 == row 1
    assert not np.array_equal(base.x, row1.x)
    np.testing.assert_array_equal(row1.x, ofdb.x)


@pytest.mark.parametrize(
    "kwargs, param",
    [
        (dict(size=15), "size"),
        (dict(n_points=1), "points"),
        (dict(mode="dots"), "draw"),
        (dict(weights=[1, 2]), "weights"),
        (dict(mask_seed=-1), "seed"),
    ],
)
def test_bad_render_arguments(cats, kwargs, param):
    with pytest.raises(ParamError, match=param):
        render.render(cats[0], **kwargs)
