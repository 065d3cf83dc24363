"""The explorer driven from Python: widgets, readouts, editing, CSV export, latency, coalescing."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from ofdb_study import explorer as ex  # noqa: E402
from ofdb_study.errors import ParamError  # noqa: E402
from ofdb_study.fractals import render  # noqa: E402
from ofdb_study.fractals.ifs import IFS, read_csv, write_csv  # noqa: E402

# A small, fixed, contractive system (a Sierpinski-like triangle): fast and independent of the search.
TRIANGLE = IFS(
    np.array(
        [[0.5, 0.0, 0.0, 0.5, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5, 0.25, 0.5]]
    ),
    np.full(3, 1 / 3),
)


class ManualSchedule:
    """Collects scheduled callbacks; the test decides when the 'event loop' runs them."""

    def __init__(self):
        self.calls = []

    def __call__(self, fn):
        self.calls.append(fn)

    def run(self):
        calls, self.calls = self.calls, []
        for fn in calls:
            fn()


@pytest.fixture(scope="module", autouse=True)
def _warm():
    ex.warm_up()


def make(view=None, **kwargs) -> ex.Explorer:
    view = view or ex.ViewSettings(size=128, n_points=20_000, mode="point", a_weight=1.0)
    return ex.Explorer(ex.ExplorerModel.from_ifs(TRIANGLE, "triangle", view), **kwargs)


def test_initial_render_and_readouts():
    e = make()
    assert bytes(e.image.value).startswith(b"\x89PNG")
    r = e.last_readouts
    assert r.n_maps == 3
    np.testing.assert_allclose(r.contraction, 0.5)
    assert r.contractive
    # The triangle is sparse at 512 px: it fails the search's 0.2 filter.
    assert 0 < r.filter_fill < ex.FILTER_RATE and not r.passes
    assert "fails" in e.readout.value and "maps</td><td>3" in e.readout.value
    assert e.last_latency_ms is not None and "ms" in e.readout.value


def test_sliders_change_image_and_readouts():
    e = make()
    png0, r0 = e.image.value, e.last_readouts
    e.map_sliders(0)["a"].value = 0.9
    assert e.model.maps[0, 0] == pytest.approx(0.9)
    assert e.image.value != png0
    assert e.last_readouts.contraction[0] == pytest.approx(0.9)
    assert e.last_readouts.filter_fill != r0.filter_fill
    e.map_sliders(0)["a"].value = 1.2
    assert not e.last_readouts.contractive and "not contractive" in e.readout.value
    # probability slider: relative weights, normalised for rendering and export
    png1 = e.image.value
    e.map_sliders(1)["p"].value = 0.9
    assert e.model.probabilities().sum() == pytest.approx(1.0)
    assert e.image.value != png1


def test_view_controls():
    e = make()
    seen = {bytes(e.image.value)}
    for widget, value in (
        (e.mode, "patch"),
        (e.mask_seed, 7),
        (e.mode, "color"),
        (e.size_slider, 192),
        (e.points_slider, 50_000),
        (e.a_weight, 0.2),
        (e.row, 13),
    ):
        widget.value = value
        assert bytes(e.image.value) not in seen, widget.description
        seen.add(bytes(e.image.value))
    assert e.model.view == ex.ViewSettings(
        size=192, n_points=50_000, mode="color", a_weight=0.2, mask_seed=7, row=13
    )
    # row 13 = d x 0.2 on every map; the contraction is reported for the system as drawn
    assert ex.fluctuation_label(13) == "d x 0.2"
    assert e.last_readouts.n_maps == 3


def test_fill_rate_matches_renderer():
    e = make(ex.ViewSettings(size=256, n_points=100_000, mode="point", a_weight=1.0))
    img = render.render(TRIANGLE, size=256, n_points=100_000, mode="point", a_weight=1.0)
    assert e.last_readouts.fill_rate == render.fill_rate(img)
    filt = render.render(TRIANGLE, size=512, n_points=100_000, mode="point", a_weight=1.0)
    assert e.last_readouts.filter_fill == render.fill_rate(filt)


def test_add_and_remove_map():
    e = make()
    png0 = e.image.value
    e.add_map()
    assert e.model.n_maps == 4 and len(e.maps_box.children) == 4 and e.last_readouts.n_maps == 4
    assert e.image.value != png0
    e.remove_map(0)
    e.remove_map(0)
    assert e.model.n_maps == 2 and len(e.maps_box.children) == 2
    np.testing.assert_array_equal(e.model.maps[0], TRIANGLE.maps[2])
    e.remove_map(0)
    e.remove_map(0)  # the last map stays; the refusal is shown, nothing raised
    assert e.model.n_maps == 1 and "at least one map" in e.status.value


def test_csv_export_round_trip(tmp_path):
    e = make()
    e.map_sliders(2)["e"].value = -0.3
    e.map_sliders(0)["p"].value = 0.5
    path = e.model.export_csv(tmp_path / "00000.csv")
    back = read_csv(path)
    assert back == e.model.ifs()
    assert path.read_text() == e.model.csv_text()
    # the export button writes where the path box says
    e.export_path.value = str(tmp_path / "edited.csv")
    e.export_button.click()
    assert read_csv(tmp_path / "edited.csv") == back and "wrote" in e.export_status.value


def test_loaded_category_renders_bit_identically(tmp_path):
    ifs = ex.random_ifs(3)
    write_csv(tmp_path / "00000.csv", TRIANGLE)
    write_csv(tmp_path / "00001.csv", ifs)
    view = ex.ViewSettings(size=96, n_points=10_000, mode="patch", mask_seed=4)
    e = ex.Explorer.from_folder(tmp_path, 1, view)
    assert e.model.ifs() == ifs
    expected = render.render(ifs, size=96, n_points=10_000, mode="patch", mask_seed=4)
    np.testing.assert_array_equal(e.model.image(), expected)
    # loading by source buttons: folder, then random
    e.number.value = 0
    e.load_button.click()
    assert e.model.ifs() == TRIANGLE and e.last_readouts.n_maps == 3
    e.source.value, e.number.value = "random", 3
    e.load_button.click()
    assert e.model.ifs() == ifs and e.model.label == "random 3"
    e.source.value, e.number.value = "folder", 9
    e.load_button.click()
    assert "holds 2 categories" in e.status.value


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
    e = make()
    e.number.value = 1
    e.load_button.click()
    assert e.model.label == "search 00001" and e.last_readouts.search_fill == 0.25
    assert "search record 0.2500" in e.readout.value
    e.map_sliders(0)["b"].value = 0.1  # edited: the search's record no longer applies
    assert e.last_readouts.search_fill is None


def test_slider_snap_is_not_an_edit():
    e = make()
    before = e.model.maps.copy()
    runs = e.coalescer.runs
    e.map_sliders(0)["c"].value = 0.0002  # below half a slider step: a front-end snap
    np.testing.assert_array_equal(e.model.maps, before)
    assert e.coalescer.runs == runs


def test_latency_is_measured_and_shown_at_256px_100k_points():
    """Every update at 256 px / 100k points times itself and shows it. The figure against the
    50 ms budget is printed by ``benchmarks/bench_explorer.py``, not asserted here."""
    e = make(ex.ViewSettings(size=256, n_points=100_000, mode="patch", a_weight=0.2))
    a = e.map_sliders(1)["a"]
    latencies = []
    for k in range(3):
        a.value = 0.30 + 0.02 * k  # a new system each time: chaos game, filter test, draw, encode
        latencies.append(e.last_latency_ms)
    assert all(x is not None and x > 0 for x in latencies) and len(set(latencies)) > 1
    assert f"{e.last_latency_ms:.1f} ms" in e.readout.value


def test_coalescing_drops_intermediate_states():
    schedule = ManualSchedule()
    e = make(schedule=schedule)
    runs0 = e.coalescer.runs
    png0 = e.image.value
    a = e.map_sliders(0)["a"]
    for k in range(20):  # a drag: 20 events before the loop gets to run anything
        a.value = 0.60 + 0.01 * k
    assert e.coalescer.runs == runs0 and e.image.value == png0  # nothing rendered yet
    assert len(schedule.calls) == 1  # one render scheduled for the whole burst
    schedule.run()
    assert e.coalescer.runs == runs0 + 1 and not e.coalescer.pending
    assert e.model.maps[0, 0] == pytest.approx(0.79)
    np.testing.assert_array_equal(
        e.model.image(), render.render(e.model.ifs(), size=128, n_points=20_000, mode="point", a_weight=1.0)
    )
    assert e.last_readouts.contraction[0] == pytest.approx(0.79)
    schedule.run()
    assert e.coalescer.runs == runs0 + 1  # nothing left over


def test_coalescer_request_during_work_runs_once_more():
    seen = []
    schedule = ManualSchedule()

    def work():
        seen.append(len(seen))
        if len(seen) == 1:
            c.request()
            c.request()

    c = ex.Coalescer(work, schedule)
    c.request()
    schedule.run()
    assert seen == [0, 1] and c.requests == 3 and c.runs == 2 and not schedule.calls


def test_coalescer_without_event_loop_is_synchronous():
    seen = []
    c = ex.Coalescer(lambda: seen.append(1))
    c.request()
    c.request()
    assert seen == [1, 1]


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


def test_augmentation_preview_grid():
    e = make(ex.ViewSettings(size=64, n_points=5_000, mode="point"))
    tiles = e.preview_augmentations(n=2)
    titles = [t for t, _ in tiles]
    assert titles[:3] == ["patch (fixed)", "pattern 0", "pattern 1"]
    assert not np.array_equal(tiles[1][1], tiles[2][1])  # fresh masks each time
    assert len(e.aug_grid.children) == len(tiles)
    try:
        import ofdb_study.train.augment  # noqa: F401
    except ImportError:
        assert "unavailable" in e.aug_note.value
    else:
        assert {"texture 0", "timm 0"} <= set(titles), e.aug_note.value


def test_measure_latency_restores_state():
    e = make()
    maps, view, png = e.model.maps.copy(), e.model.view, bytes(e.image.value)
    lat = e.measure_latency(n=3)
    assert len(lat) == 3 and all(x > 0 for x in lat)
    np.testing.assert_array_equal(e.model.maps, maps)
    assert e.model.view == view and bytes(e.image.value) == png


def test_kernel_coalesces_a_slider_drag():
    """In a real ipykernel, a burst of front-end slider messages renders far fewer times than it
    has messages, and the last state wins (renders slowed to 50 ms to make a backlog possible)."""
    manager = pytest.importorskip("jupyter_client.manager")
    km, kc = manager.start_new_kernel(kernel_name="python3")

    def run(code: str) -> str:
        msg_id = kc.execute(code)
        out = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    try:
        slider = run(
            "import time\n"
            "from ofdb_study import explorer as ex\n"
            "e = ex.Explorer(ex.ExplorerModel.from_ifs(ex.random_ifs(7), view=ex.ViewSettings(size=64, n_points=2000)))\n"
            "work = e.coalescer._work\n"
            "def slow():\n"
            "    time.sleep(0.05)\n"
            "    work()\n"
            "e.coalescer._work = slow\n"
            "print(e.map_sliders(0)['a'].model_id, end='')"
        )
        for k in range(30):  # what the front end sends while the slider is dragged
            content = {
                "comm_id": slider,
                "data": {"method": "update", "state": {"value": 0.30 + 0.01 * k}, "buffer_paths": []},
            }
            kc.session.send(kc.shell_channel.socket, kc.session.msg("comm_msg", content))
            time.sleep(0.005)
        time.sleep(0.5)
        requests, runs, a = run("print(e.coalescer.requests, e.coalescer.runs, e.model.maps[0, 0])").split()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert int(requests) == 30
    assert 1 <= int(runs) <= 15, runs  # 30 renders of 50 ms would be a 1.5 s backlog
    assert float(a) == pytest.approx(0.59)
