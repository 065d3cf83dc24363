"""The fractal explorer drawn by the kernel: an ipywidgets app to look at one IFS category, edit it
and export it.

``Explorer`` (live, needs a kernel): load a category from a search result folder, by number from the
exact FractalDB search, or a random system from a seed; edit every map's ``a..f`` and probability;
add and remove maps; choose points, image size, draw mode, the ``a`` weight, the patch seed and one
of FractalDB's 25 fluctuation rows; preview the pre-training augmentations; export the system as an
official CSV. Readouts: the fill rate of the preview, whether the system passes the search's 0.2
filter, the number of maps, the contraction factors and the last update's latency.

The JavaScript explorer (``webwidget.ExplorerWidget``, the same front end as the book's explorer
page) draws in the browser instead. The state logic holds no widgets, so tests drive it without a
browser: ``ExplorerModel`` (in ``model``) and ``Coalescer`` (here), which makes a burst of slider
events trigger one render of the latest state.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ParamError, check_positive_int
from ..fractals import render
from ..fractals.defaults import FRACTALDB_ROWS
from ..fractals.ifs import COEFFICIENTS, IFS, category_name, fluctuation_label
from ..fractals.png import encode_png
from .model import (
    COEF_RANGE,
    FILTER_POINTS,
    FILTER_RATE,
    FILTER_SIZE,
    SLIDER_STEP,
    ExplorerModel,
    Readouts,
    ViewSettings,
    augmentation_previews,
    folder_category,
    random_ifs,
    search_category,
)

#: Seconds to wait after the first change before rendering, so a burst of slider events collapses
#: into one render of its last state; small against the 50 ms budget of one update.
DEBOUNCE_S = 0.01


# ----------------------------------------------------------------------------------------------
# Coalescing: while a slider is dragged, render only the latest state.


def _event_loop_scheduler(delay_s: float) -> Callable[[Callable[[], None]], None] | None:
    """``call_later`` on the running asyncio loop (the kernel's), or None outside one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return lambda fn: loop.call_later(delay_s, fn)


class Coalescer:
    """Run ``work`` once per burst of ``request()`` calls, after the burst.

    Each request only marks the state dirty; the first one of a burst schedules a single run
    (``schedule(callback)``; by default ``DEBOUNCE_S`` later on the kernel's event loop, or at once
    when no loop runs, as in plain scripts). Requests arriving before that run are absorbed, and
    ``work`` reads the model when it runs, so intermediate states are never rendered. A request
    made while ``work`` runs triggers one more run afterwards, never a queue.

    Attributes:
        requests: number of ``request()`` calls.
        runs: number of times ``work`` ran.
    """

    def __init__(
        self,
        work: Callable[[], None],
        schedule: Callable[[Callable[[], None]], None] | None = None,
        delay_s: float = DEBOUNCE_S,
    ):
        self._work = work
        self._schedule = schedule
        self._delay_s = delay_s
        self._dirty = False
        self._scheduled = False
        self._running = False
        self.requests = 0
        self.runs = 0

    @property
    def pending(self) -> bool:
        """A request has not been served yet."""
        return self._dirty

    def request(self) -> None:
        self.requests += 1
        self._dirty = True
        if self._scheduled or self._running:
            return
        schedule = self._schedule or _event_loop_scheduler(self._delay_s)
        if schedule is None:
            self._run()
            return
        self._scheduled = True
        schedule(self._run)

    def _run(self) -> None:
        self._scheduled = False
        if self._running:
            return
        self._running = True
        try:
            while self._dirty:
                self._dirty = False
                self.runs += 1
                self._work()
        finally:
            self._running = False


# ----------------------------------------------------------------------------------------------
# The live widget app.


def _readouts_html(r: Readouts, latency_ms: float | None) -> str:
    verdict = "<b style='color:#1a7f37'>passes</b>" if r.passes else "<b style='color:#cf222e'>fails</b>"
    record = "" if r.search_fill is None else f" (search record {r.search_fill:.4f})"
    factors = ", ".join(f"{f:.3f}" for f in r.contraction)
    contr = "contractive" if r.contractive else "<b>not contractive</b>"
    lat = "-" if latency_ms is None else f"{latency_ms:.1f} ms"
    return (
        "<table style='font-family:monospace'>"
        f"<tr><td>fill rate (preview)</td><td>{r.fill_rate:.4f}</td></tr>"
        f"<tr><td>search filter ({FILTER_SIZE} px, {FILTER_POINTS // 1000}k pts, a x 1)</td><td>{r.filter_fill:.4f}{record} "
        f"&ge; {FILTER_RATE}? {verdict}</td></tr>"
        f"<tr><td>maps</td><td>{r.n_maps}</td></tr>"
        f"<tr><td>contraction as drawn (largest singular value per map)</td><td>{factors}: {contr}</td></tr>"
        f"<tr><td>last update</td><td>{lat}</td></tr></table>"
    )


def _close_tree(widget) -> None:
    """Close a widget and its descendants (their front-end models are freed too)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _png(image: np.ndarray) -> bytes:
    return encode_png(np.ascontiguousarray(image))


class Explorer:
    """The live explorer. ``display(Explorer(...).widget)`` in a notebook.

    Args:
        model: the state to show (default: a random system from seed 0).
        folder: default search-result folder for the "folder" source.
        schedule: render scheduler for the coalescer (tests pass a manual one); default: the
            kernel's event loop with ``DEBOUNCE_S`` delay, or synchronous outside a loop.

    Attributes:
        model: the ``ExplorerModel``.
        widget: the root widget.
        image: the preview ``Image`` widget (PNG bytes in ``image.value``).
        readout: the ``HTML`` readouts.
        last_latency_ms: render + PNG encode + widget update time of the last update.
        coalescer: the ``Coalescer`` that serves slider changes.
    """

    def __init__(
        self,
        model: ExplorerModel | None = None,
        *,
        folder: str | Path | None = None,
        schedule: Callable[[Callable[[], None]], None] | None = None,
    ):
        import ipywidgets as w

        self._w = w
        self.model = model or ExplorerModel.from_ifs(random_ifs(0), "random 0")
        self.last_latency_ms: float | None = None
        self.last_readouts: Readouts | None = None
        self.coalescer = Coalescer(self.refresh, schedule)
        self._syncing = False  # True while code (not the user) sets widget values
        self._build(folder)
        self._rebuild_maps()
        self.refresh()

    @classmethod
    def from_search(cls, index: int = 0, view: ViewSettings | None = None, **kwargs) -> Explorer:
        """Open on category ``index`` of the exact search (cached)."""
        ifs, fill = search_category(index)
        ex = cls(ExplorerModel.from_ifs(ifs, f"search {category_name(index)}", view, fill), **kwargs)
        ex.number.value = index
        return ex

    @classmethod
    def from_folder(
        cls, folder: str | Path, index: int = 0, view: ViewSettings | None = None, **kwargs
    ) -> Explorer:
        """Open on category ``index`` of a search result folder."""
        model = ExplorerModel.from_ifs(folder_category(folder, index), f"folder {category_name(index)}", view)
        ex = cls(model, folder=folder, **kwargs)
        ex.source.value, ex.number.value = "folder", index
        return ex

    # -- construction ----------------------------------------------------------------------------
    def _build(self, folder) -> None:
        w = self._w
        v = self.model.view
        self.source = w.ToggleButtons(
            options=["search", "folder", "random"],
            value="search",
            description="source",
            style={"button_width": "72px"},
        )
        self.folder = w.Text(value=str(folder or ""), description="folder", placeholder="folder of NNNNN.csv")
        self.number = w.BoundedIntText(value=0, min=0, max=10**6, description="number / seed")
        self.load_button = w.Button(description="load", button_style="primary")
        self.status = w.HTML()
        self.load_button.on_click(lambda _: self.load_from_source())

        self.maps_box = w.VBox()
        self.add_button = w.Button(description="add map", icon="plus")
        self.det_button = w.Button(description="p from |det|")
        self.add_button.on_click(lambda _: self._edit(self.model.add_map))
        self.det_button.on_click(lambda _: self._edit(self.model.probabilities_from_determinants))

        self.points_slider = w.IntSlider(
            value=v.n_points, min=1_000, max=200_000, step=1_000, description="points"
        )
        self.size_slider = w.IntSlider(value=v.size, min=64, max=512, step=32, description="size")
        self.mode = w.ToggleButtons(
            options=list(render.DRAW_MODES), value=v.mode, description="draw", style={"button_width": "72px"}
        )
        self.a_weight = w.FloatSlider(value=v.a_weight, min=0.0, max=2.0, step=0.05, description="a weight")
        self.mask_seed = w.IntSlider(value=v.mask_seed, min=0, max=999, description="patch seed")
        self.row = w.Dropdown(
            options=[(f"{r}: {fluctuation_label(r)}", r) for r in range(FRACTALDB_ROWS)],
            value=v.row,
            description="fluctuation",
        )
        for widget, name in (
            (self.points_slider, "n_points"),
            (self.size_slider, "size"),
            (self.mode, "mode"),
            (self.a_weight, "a_weight"),
            (self.mask_seed, "mask_seed"),
            (self.row, "row"),
        ):
            widget.observe(self._view_handler(name), names="value")

        self.image = w.Image(format="png", layout=w.Layout(width="384px", height="384px"))
        self.readout = w.HTML()

        self.export_path = w.Text(value="", description="CSV path", placeholder="e.g. 00000.csv")
        self.export_button = w.Button(description="export CSV", icon="download")
        self.export_status = w.HTML()
        self.export_button.on_click(lambda _: self._export())

        self.aug_button = w.Button(description="preview augmentations", layout=w.Layout(width="220px"))
        self.aug_grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(4, 132px)"))
        self.aug_note = w.HTML()
        self.aug_button.on_click(lambda _: self.preview_augmentations())

        controls = w.VBox(
            [
                w.HBox([self.source, self.load_button]),
                self.number,
                self.folder,
                self.status,
                w.HTML("<b>view</b>"),
                self.points_slider,
                self.size_slider,
                self.mode,
                self.a_weight,
                self.mask_seed,
                self.row,
            ],
            layout=w.Layout(width="520px"),
        )
        output = w.VBox(
            [self.image, self.readout, w.HBox([self.export_path, self.export_button]), self.export_status]
        )
        maps = w.VBox(
            [
                w.HTML("<b>maps</b>: coefficients a..f and relative probability p (normalised)"),
                self.maps_box,
                w.HBox([self.add_button, self.det_button]),
            ]
        )
        augment = w.VBox([self.aug_button, self.aug_note, self.aug_grid])
        self.widget = w.VBox([w.HBox([controls, output]), maps, augment])

    def _map_row(self, i: int):
        w = self._w
        sliders = []
        for k, name in enumerate(COEFFICIENTS):
            value = float(self.model.maps[i, k])
            span = max(COEF_RANGE, abs(value))
            s = w.FloatSlider(
                value=value,
                min=-span,
                max=span,
                step=SLIDER_STEP,
                description=name,
                readout_format=".3f",
                continuous_update=True,
                layout=w.Layout(width="290px"),
                style={"description_width": "14px"},
            )
            s.observe(self._coef_handler(i, name), names="value")
            sliders.append(s)
        p = w.FloatSlider(
            value=float(self.model.weights[i]),
            min=0.0,
            max=max(1.0, self.model.weights[i]),
            step=SLIDER_STEP,
            description="p",
            readout_format=".3f",
            layout=w.Layout(width="290px"),
            style={"description_width": "14px"},
        )
        p.observe(self._prob_handler(i), names="value")
        sliders.append(p)
        remove = w.Button(
            description="remove", icon="trash", tooltip=f"remove map {i}", layout=w.Layout(width="100px")
        )
        remove.on_click(lambda _: self.remove_map(i))
        # Two lines per map (a b c d / e f p remove) keep each slider long enough to drag finely.
        lines = w.VBox([w.HBox(sliders[:4]), w.HBox([*sliders[4:], remove])])
        return w.HBox(
            [w.HTML(f"<b>{i}</b>", layout=w.Layout(width="20px")), lines],
            layout=w.Layout(border_bottom="1px solid #ddd"),
        )

    def _rebuild_maps(self) -> None:
        """Recreate the map rows (after loading, adding or removing maps)."""
        old = self.maps_box.children
        self._syncing = True
        try:
            self.maps_box.children = [self._map_row(i) for i in range(self.model.n_maps)]
        finally:
            self._syncing = False
        for row in old:  # free the front-end models of the old rows
            _close_tree(row)

    def map_sliders(self, i: int) -> dict:
        """The sliders of map ``i`` by name (``a``..``f``, ``p``), for tests and scripts."""
        lines = self.maps_box.children[i].children[1].children
        return {
            s.description: s for line in lines for s in line.children if isinstance(s, self._w.FloatSlider)
        }

    # -- event handlers --------------------------------------------------------------------------
    def _coef_handler(self, i: int, name: str):
        def handler(change) -> None:
            if self._syncing:
                return
            # A front end may snap a loaded value to the slider step when it draws it; a change
            # smaller than half a step is that snap, not an edit, and must not alter the system.
            if abs(change["new"] - self.model.maps[i, COEFFICIENTS.index(name)]) < SLIDER_STEP / 2:
                return
            self.model.set_coefficient(i, name, change["new"])
            self.coalescer.request()

        return handler

    def _prob_handler(self, i: int):
        def handler(change) -> None:
            if self._syncing or abs(change["new"] - self.model.weights[i]) < SLIDER_STEP / 2:
                return
            try:
                self.model.set_probability(i, change["new"])
            except ParamError as err:
                self.status.value = f"<span style='color:#cf222e'>{html.escape(str(err))}</span>"
                return
            self.coalescer.request()

        return handler

    def _view_handler(self, name: str):
        def handler(change) -> None:
            if self._syncing:
                return
            try:
                self.model.set_view(**{name: change["new"]})
            except ParamError as err:
                self.status.value = f"<span style='color:#cf222e'>{html.escape(str(err))}</span>"
                return
            self.coalescer.request()

        return handler

    def _edit(self, action: Callable[[], None]) -> None:
        try:
            action()
        except ParamError as err:
            self.status.value = f"<span style='color:#cf222e'>{html.escape(str(err))}</span>"
            return
        self._rebuild_maps()
        self.coalescer.request()

    # -- public actions --------------------------------------------------------------------------
    def remove_map(self, i: int) -> None:
        self._edit(lambda: self.model.remove_map(i))

    def add_map(self) -> None:
        self._edit(self.model.add_map)

    def load(self, ifs: IFS, label: str, search_fill: float | None = None) -> None:
        """Show ``ifs``; the view settings stay."""
        self.model.load(ifs, label, search_fill)
        self.status.value = f"loaded {html.escape(label)}"
        self._rebuild_maps()
        self.refresh()

    def load_from_source(self) -> None:
        """Load by the source buttons: search category, folder category or random seed."""
        n = int(self.number.value)
        try:
            if self.source.value == "search":
                self.status.value = f"searching for category {n} ..."
                ifs, fill = search_category(n)
                self.load(ifs, f"search {category_name(n)}", fill)
            elif self.source.value == "folder":
                self.load(folder_category(self.folder.value, n), f"folder {category_name(n)}")
            else:
                self.load(random_ifs(n), f"random {n}")
        except ParamError as err:
            self.status.value = f"<span style='color:#cf222e'>{html.escape(str(err))}</span>"

    def refresh(self) -> None:
        """Render the current state, encode it and update the widgets; records the latency."""
        t0 = time.perf_counter()
        try:
            img = self.model.image()
            readouts = self.model.readouts(img)
        except ParamError as err:
            self.status.value = f"<span style='color:#cf222e'>{html.escape(str(err))}</span>"
            return
        self.image.value = _png(img)
        self.last_readouts = readouts
        self.last_latency_ms = (time.perf_counter() - t0) * 1e3
        # The readout shows its own update's latency, so write it last with that number.
        self.readout.value = _readouts_html(readouts, self.last_latency_ms)

    def measure_latency(self, n: int = 9, size: int = 256, n_points: int = 100_000) -> list[float]:
        """Time ``n`` full updates (render + PNG + widget) at ``size`` px / ``n_points`` points.

        Each update nudges map 0's ``a`` so the points are recomputed, as a slider drag does; the
        system and view are restored afterwards. Returns the latencies in ms (call ``warm_up`` first).
        """
        n = check_positive_int("n", n)
        saved_maps, saved_view, saved_fill = self.model.maps.copy(), self.model.view, self.model.search_fill
        out = []
        try:
            self.model.set_view(size=size, n_points=n_points)
            for k in range(n):
                self.model.maps[0, 0] = saved_maps[0, 0] + 1e-3 * (k + 1)
                self.refresh()
                out.append(self.last_latency_ms)
        finally:
            self.model.maps, self.model.view, self.model.search_fill = saved_maps, saved_view, saved_fill
            self.refresh()
        return out

    def _export(self) -> None:
        path = self.export_path.value.strip() or f"{self.model.label.split()[-1]}.csv"
        try:
            out = self.model.export_csv(path)
        except ParamError as err:
            self.export_status.value = f"<span style='color:#cf222e'>{html.escape(str(err))}</span>"
            return
        self.export_status.value = f"wrote {html.escape(str(out))}"

    def preview_augmentations(self, n: int = 4, seed: int = 0) -> list[tuple[str, np.ndarray]]:
        """Fill the preview grid: ``n`` random-pattern re-draws, then random texture and the timm
        transform when ``ofdb_study.augment`` provides them. Returns (title, image) pairs."""
        tiles, notes = augmentation_previews(self.model, n=n, seed=seed)
        w = self._w
        cells = []
        for title, img in tiles:
            cells.append(
                w.VBox(
                    [
                        w.Image(
                            value=_png(img), format="png", layout=w.Layout(width="128px", height="128px")
                        ),
                        w.Label(title),
                    ]
                )
            )
        old = self.aug_grid.children
        self.aug_grid.children = cells
        for cell in old:
            _close_tree(cell)
        self.aug_note.value = "<br>".join(html.escape(n) for n in notes)
        return tiles
