"""A finite but huge IFS coefficient renders as NumPy's public pipeline does (its points overflow
to infinity and NaN, the NaN rule leaves equal points, and their zero range divides to NaN), with no
ZeroDivisionError from the numba kernels."""

import ifs_reference as ref
import numpy as np
import pytest

from ofdb_study.fractals import kernels


@pytest.mark.parametrize(
    "maps",
    [
        [[1e200, 0, 0, 1e200, 0, 0]],
        [[1e200, 0, 0, 1e200, 0, 0], [0.5, 0, 0, 0.5, 0.5, 0]],
        [[0, 0, 0, 0, 0, 0]],  # every point at the origin: a zero range without overflow
    ],
)
def test_kernels_equal_the_reference_for_huge_and_degenerate_coefficients(maps):
    maps = np.array(maps, dtype=np.float64)
    probs = np.full(len(maps), 1 / len(maps))
    u = np.random.RandomState(7).random_sample(2000)
    xs_ref, ys_ref = ref.chaos(maps, probs, u, 2000)
    xs, ys = np.empty(2000), np.empty(2000)
    stats = kernels.new_stats()
    count = kernels.chaos_game(maps, np.cumsum(probs), u, 2000, xs, ys, stats)
    px, py = np.empty(2000, np.uint16), np.empty(2000, np.uint16)
    n = kernels.nan_rule_and_rescale(xs, ys, count, 2000, 64, 2, px, py, stats)
    with np.errstate(all="ignore"):
        x_ref, y_ref = ref.nan_rule_and_rescale(xs_ref, ys_ref, 64, 2)
    assert n == x_ref.size
    np.testing.assert_array_equal(px[:n], x_ref)
    np.testing.assert_array_equal(py[:n], y_ref)


def test_render_of_a_huge_coefficient_is_not_a_traceback(tmp_path, capsys):
    from ofdb_study.cli import main

    params = tmp_path / "params"
    params.mkdir()
    (params / "00000.csv").write_text("1e200,0,0,1e200,0,0,1\n")
    out = tmp_path / "tree"
    code = main(
        ["render", "--params", str(params), "--size", "32", "--points", "2000", "--out", str(out), "--quiet"]
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ZeroDivisionError" not in err
    assert code == 0 and (out / "00000").is_dir() and not (out / ".journal").exists()
