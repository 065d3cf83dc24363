"""The explorer from Python: the model (readouts, editing, CSV export, the category sources) and the
JupyterLab widget's entry points and state hashes. The front end's pixels are checked in Chromium
by ``test_explorer_web``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ofdb_study import explorer as ex
from ofdb_study.errors import ParamError
from ofdb_study.fractals import render
from ofdb_study.fractals.ifs import IFS, read_csv, write_csv

# A small, fixed, contractive system (a Sierpinski-like triangle): fast and independent of the search.
TRIANGLE = IFS(
    np.array(
        [[0.5, 0.0, 0.0, 0.5, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5, 0.25, 0.5]]
    ),
    np.full(3, 1 / 3),
)
SMALL = ex.ViewSettings(size=128, n_points=20_000, mode="point", a_weight=1.0)


def make(view=SMALL) -> ex.ExplorerModel:
    return ex.ExplorerModel.from_ifs(TRIANGLE, "triangle", view)


def test_readouts_of_a_fixed_system():
    r = make().readouts()
    assert r.n_maps == 3 and r.search_fill is None
    np.testing.assert_allclose(r.contraction, 0.5)
    assert r.contractive
    # The triangle is sparse at 512 px: it fails the search's 0.2 filter.
    assert 0 < r.filter_fill < ex.FILTER_RATE and not r.passes


def test_fill_rate_matches_renderer():
    m = make(ex.ViewSettings(size=256, n_points=100_000, mode="point", a_weight=1.0))
    r = m.readouts()
    img = render.render(TRIANGLE, size=256, n_points=100_000, mode="point", a_weight=1.0)
    assert r.fill_rate == render.fill_rate(img)
    filt = render.render(TRIANGLE, size=512, n_points=100_000, mode="point", a_weight=1.0)
    assert r.filter_fill == render.fill_rate(filt)


def test_edits_change_image_and_readouts():
    m = make()
    img0, r0 = m.image(), m.readouts()
    m.set_coefficient(0, "a", 0.9)
    assert not np.array_equal(m.image(), img0)
    r = m.readouts()
    assert r.contraction[0] == pytest.approx(0.9) and r.filter_fill != r0.filter_fill
    m.set_coefficient(0, "a", 1.2)
    assert not m.readouts().contractive
    # probabilities are relative weights, normalised for rendering and export
    img1 = m.image()
    m.set_probability(1, 0.9)
    assert m.probabilities().sum() == pytest.approx(1.0)
    assert not np.array_equal(m.image(), img1)
    m.probabilities_from_determinants()
    np.testing.assert_allclose(m.probabilities(), np.array([0.6, 0.25, 0.25]) / 1.1)


def test_view_settings_change_the_image():
    m = make()
    seen = {m.image().tobytes()}
    for change in (
        {"mode": "patch"},
        {"mask_seed": 7},
        {"mode": "color"},
        {"size": 192},
        {"n_points": 50_000},
        {"a_weight": 0.2},
        {"row": 13},
    ):
        m.set_view(**change)
        assert m.image().tobytes() not in seen, change
        seen.add(m.image().tobytes())
    assert m.view == ex.ViewSettings(
        size=192, n_points=50_000, mode="color", a_weight=0.2, mask_seed=7, row=13
    )
    assert ex.fluctuation_label(13) == "d x 0.2"


def test_add_and_remove_map():
    m = make()
    m.add_map()
    assert m.n_maps == 4 and m.readouts().n_maps == 4
    m.remove_map(0)
    m.remove_map(0)
    assert m.n_maps == 2
    np.testing.assert_array_equal(m.maps[0], TRIANGLE.maps[2])
    m.remove_map(0)
    with pytest.raises(ParamError, match="at least one map"):
        m.remove_map(0)


def test_csv_export_round_trip(tmp_path):
    m = make()
    m.set_coefficient(2, "e", -0.3)
    m.set_probability(0, 0.5)
    path = m.export_csv(tmp_path / "00000.csv")
    assert read_csv(path) == m.ifs()
    assert path.read_text() == m.csv_text()


def test_folder_category_renders_bit_identically(tmp_path):
    ifs = ex.random_ifs(3)
    write_csv(tmp_path / "00000.csv", TRIANGLE)
    write_csv(tmp_path / "00001.csv", ifs)
    assert ex.folder_category(tmp_path, 0) == TRIANGLE
    view = ex.ViewSettings(size=96, n_points=10_000, mode="patch", mask_seed=4)
    m = ex.ExplorerModel.from_ifs(ex.folder_category(tmp_path, 1), view=view)
    assert m.ifs() == ifs
    expected = render.render(ifs, size=96, n_points=10_000, mode="patch", mask_seed=4)
    np.testing.assert_array_equal(m.image(), expected)
    with pytest.raises(ParamError, match="holds 2 categories"):
        ex.folder_category(tmp_path, 9)


def test_search_source_uses_the_cached_accessor(monkeypatch):
    calls = []

    class FakeResult:
        def __init__(self, n):
            self.categories = [TRIANGLE] * n
            self.fill_rates = [0.25] * n

    def fake_searched(n):
        calls.append(n)
        return FakeResult(n)

    import ofdb_study.fractals.search

    # the accessor's own caching is tested in test_search.py
    monkeypatch.setattr(ofdb_study.fractals.search, "searched", fake_searched)
    assert ex.search_category(2) == (TRIANGLE, 0.25)
    assert calls == [3]  # categories 0..2
    ifs, fill = ex.search_category(1)
    m = ex.ExplorerModel.from_ifs(ifs, "search 00001", SMALL, fill)
    assert m.readouts().search_fill == 0.25
    m.set_coefficient(0, "b", 0.1)  # edited: the search's record no longer applies
    assert m.readouts().search_fill is None


def test_bad_inputs():
    m = ex.ExplorerModel.from_ifs(TRIANGLE)
    with pytest.raises(ParamError, match="row"):
        m.set_view(row=25)
    with pytest.raises(ParamError, match="draw"):
        m.set_view(mode="splat")
    with pytest.raises(ParamError, match="map"):
        m.set_coefficient(5, "a", 0.1)
    with pytest.raises(ParamError, match="coefficient"):
        m.set_coefficient(0, "g", 0.1)
    with pytest.raises(ParamError, match="p"):
        m.set_probability(0, -1)
    m2 = ex.ExplorerModel.from_ifs(TRIANGLE)
    for i in range(3):
        m2.set_probability(i, 0.0)
    with pytest.raises(ParamError, match="above 0"):
        m2.ifs()
    with pytest.raises(ParamError, match="folder"):
        m.export_csv("/nonexistent/dir/x.csv")


def test_augmentation_previews():
    m = make(ex.ViewSettings(size=64, n_points=5_000, mode="point"))
    tiles, notes = ex.augmentation_previews(m, n=2)
    titles = [t for t, _ in tiles]
    assert titles[:3] == ["patch (fixed)", "pattern 0", "pattern 1"]
    assert not np.array_equal(tiles[1][1], tiles[2][1])  # fresh masks each time
    try:
        import torch  # noqa: F401
    except ImportError:
        assert notes and "timm transform not shown" in notes[0]
    else:
        assert {"texture 0", "timm 0"} <= set(titles), notes


# ----------------------------------------------------------------------------------------------
# State hashes and the widget's entry points (the front end reads the hashes: test_explorer_web).


def _fields(hash_: str) -> dict:
    return dict(p.split("=", 1) for p in hash_.lstrip("#").split("&"))


def test_state_hash_of_a_category_and_a_view():
    assert ex.state_hash(417) == "#c=417"
    view = ex.ViewSettings(size=200, n_points=30_000, mode="color", a_weight=1.0, mask_seed=9, row=24)
    got = ex.state_hash(417, view, flip="lr")
    assert got == "#c=417&row=24&mode=color&seed=9&points=30000&size=200&a=1.0&flip=lr"
    for bad in (
        dict(category=None),
        dict(category=1, ifs=TRIANGLE),
        dict(category=-1),
        dict(category=1, flip="up"),
        dict(category=1, view=ex.ViewSettings(pad=3)),
    ):
        with pytest.raises(ParamError):
            ex.state_hash(**bad)


def test_state_hash_of_a_system_reads_back_exactly():
    rs = np.random.RandomState(0)
    maps = rs.uniform(-1, 1, (4, 6)) * 10.0 ** rs.randint(-8, 3, (4, 6))
    maps[0, 1] = -0.0
    ifs = IFS(maps, np.array([0.1, 0.2, 0.3, 0.4]))
    fields = _fields(ex.state_hash(ifs=ifs))
    assert fields["c"] == "" and set(fields) == {"c", "maps"}
    rows = [[float(v) for v in r.split(",")] for r in fields["maps"].split(";")]
    back = np.array(rows)
    assert back.shape == (4, 7) and np.array_equal(back, ifs.to_rows())
    assert np.signbit(back[0, 1])
    # every number in the form the front end's parser takes (ifs-text.js, parseNumber)
    number = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
    assert all(number.fullmatch(v) for r in fields["maps"].split(";") for v in r.split(","))


def test_widget_entry_points(tmp_path):
    pytest.importorskip("anywidget")
    from ofdb_study.explorer.webwidget import ExplorerWidget

    view = ex.ViewSettings(mode="point", a_weight=1.0)
    assert ExplorerWidget(3).hash == "#c=3"
    assert ExplorerWidget(3, view=view).hash == ex.state_hash(3, view)
    assert ExplorerWidget(hash="#c=5&row=2").hash == "#c=5&row=2"
    ifs = ex.random_ifs(7)
    assert ExplorerWidget.from_ifs(ifs).hash == ex.state_hash(ifs=ifs)
    write_csv(tmp_path / "00000.csv", TRIANGLE)
    write_csv(tmp_path / "00001.csv", ifs)
    w = ExplorerWidget.from_folder(tmp_path, 1, view)
    assert w.hash == ex.state_hash(ifs=ifs, view=view)
    with pytest.raises(ParamError, match="holds 2 categories"):
        ExplorerWidget.from_folder(tmp_path, 2)
    # moving the view keeps its settings; the system goes first (c=) and last (maps=)
    w.load(TRIANGLE)
    assert w.hash == ex.state_hash(ifs=TRIANGLE, view=view)
    w.show(12)
    assert w.hash == ex.state_hash(12, view)
    w.load(TRIANGLE)
    assert _fields(w.hash) == _fields(ex.state_hash(ifs=TRIANGLE, view=view))
