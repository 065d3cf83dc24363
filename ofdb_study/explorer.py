"""The fractal explorer: an ipywidgets app to look at one IFS category, edit it and export it.

Two front ends share one model:

* ``Explorer`` (live, needs a kernel): load a category from a search result folder, by number from
  the exact FractalDB search, or a random system from a seed; edit every map's ``a..f`` and
  probability; add and remove maps; choose points, image size, draw mode, the ``a`` weight, the patch
  seed and one of FractalDB's 25 fluctuation rows; preview the pre-training augmentations; export the
  system as an official CSV. Readouts: the fill rate of the preview, whether the system passes the
  search's 0.2 filter, the number of maps, the contraction factors and the last update's latency.
* ``static_explorer`` (no kernel, for the published book): precomputed frames (categories x
  fluctuation rows) in nested ``Stack`` widgets whose ``selected_index`` is ``jslink``-ed to sliders
  and ``Play`` buttons, so moving through them works from saved widget state alone, offline.

The state logic (``ExplorerModel``, ``Coalescer``) holds no widgets, so tests drive it without a
browser. Rendering is coalesced: a burst of slider events triggers one render of the latest state.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import render
from .errors import ParamError, check_positive_int
from .ifs import (
    COEFFICIENTS,
    FLUCTUATION_FACTORS,
    IFS,
    category_name,
    fluctuation_weights,
    format_rows,
    list_csvs,
    probabilities_from_determinants,
    read_csv,
    write_csv,
)
from .png import encode_png

#: The search's fill test (facts section 1): 512 px, pad 6, 100k points, every point one pixel, the
#: plain system (``a`` x 1.0, no fluctuation row), kept when at least 20 % of the pixels are lit.
#: The chaos game here uses the seed-100 stream of the renderer, not the candidate's own uniforms from
#: the search stream (an edited system has none). Fill rates move by about 0.01 between streams (search
#: category 00000: 0.2237 recorded, 0.2124 here), so a system near 0.2 can pass in one and fail in the
#: other; a category loaded from the search also shows the search's own record.
FILTER_SIZE = 512
FILTER_PAD = 6
FILTER_POINTS = 100_000
FILTER_A_WEIGHT = 1.0
FILTER_RATE = 0.2
#: Coefficient sliders span [-1, 1] (the search's range), widened when a loaded system needs more.
COEF_RANGE = 1.0
SLIDER_STEP = 0.001
#: Seconds to wait after the first change before rendering, so a burst of slider events collapses
#: into one render of its last state; small against the 50 ms budget of one update.
DEBOUNCE_S = 0.01
#: Settings of the static explorer per profile (frames are embedded in the page, so keep them small).
STATIC_PROFILES = {
    "smoke": {"categories": 3, "rows": tuple(range(25)), "size": 128, "n_points": 50_000},
    "mini": {"categories": 8, "rows": tuple(range(25)), "size": 160, "n_points": 100_000},
    "paper": {"categories": 20, "rows": tuple(range(25)), "size": 192, "n_points": 200_000},
}


def fluctuation_label(row: int) -> str:
    """Human name of FractalDB weight row ``row`` (0..24): 'identity' or e.g. 'b x 0.6'."""
    row = check_positive_int("row", row, minimum=0)
    if row > 24:
        raise ParamError("row", f"must be between 0 and 24, got {row}")
    if row == 0:
        return "identity"
    k, j = divmod(row - 1, len(FLUCTUATION_FACTORS))
    return f"{COEFFICIENTS[k]} x {FLUCTUATION_FACTORS[j]}"


def random_ifs(seed: int) -> IFS:
    """A random candidate drawn like the search draws one: 2..7 maps, a..f uniform in [-1, 1),
    probabilities from the determinants. Most such candidates fail the fill filter; that is the point
    of showing one."""
    seed = check_positive_int("seed", seed, minimum=0)
    rs = np.random.RandomState(seed)
    n = rs.randint(2, 8)
    maps = rs.uniform(-1.0, 1.0, size=(n, 6))
    return IFS(maps, probabilities_from_determinants(maps))


# ----------------------------------------------------------------------------------------------
# Category sources, cached: the search costs ~0.1 s per category, a folder read is cheap.

_search_lock = threading.Lock()
_search_cache = None  # SearchResult, extended in place with resume_from


def search_category(index: int) -> tuple[IFS, float]:
    """Category ``index`` (0-based) of the exact FractalDB search and its recorded fill rate.

    The search result is cached for the session and extended (resumed) only when a later category
    is asked for, so stepping through categories costs one search in total.
    """
    global _search_cache
    index = check_positive_int("category", index, minimum=0)
    from .search import search  # deferred: the search module compiles its kernels on first use

    with _search_lock:
        if _search_cache is None or len(_search_cache.categories) <= index:
            _search_cache = search(index + 1, resume_from=_search_cache)
        return _search_cache.categories[index], float(_search_cache.fill_rates[index])


def folder_category(directory: str | Path, index: int) -> IFS:
    """Category ``index`` (0-based, in name order) of a search result folder of NNNNN.csv files."""
    index = check_positive_int("category", index, minimum=0)
    files = list_csvs(directory)
    if index >= len(files):
        raise ParamError("category", f"{directory} holds {len(files)} categories, asked for {index}")
    return read_csv(files[index])


# ----------------------------------------------------------------------------------------------
# The model: everything the explorer shows, with no widgets.


@dataclass(frozen=True)
class ViewSettings:
    """How the current system is drawn.

    Attributes:
        size: image side in pixels.
        n_points: chaos-game points (start point included).
        mode: ``point``, ``patch`` or ``color``.
        a_weight: factor on every map's ``a`` (0.2 in the public OFDB generator).
        mask_seed: seed of the 3x3 patch masks.
        row: FractalDB fluctuation row 0..24 applied on top (0 = identity).
        pad: padding in pixels.
    """

    size: int = 256
    n_points: int = 100_000
    mode: str = "patch"
    a_weight: float = render.OFDB_A_WEIGHT
    mask_seed: int = 0
    row: int = 0
    pad: int = render.OFDB_PAD

    def validate(self) -> ViewSettings:
        render.check_render_args(self.size, self.n_points, self.pad, self.mode)
        fluctuation_label(self.row)
        check_positive_int("seed", self.mask_seed, minimum=0)
        if not np.isfinite(self.a_weight):
            raise ParamError("a_weight", f"must be finite, got {self.a_weight}")
        return self


@dataclass
class Readouts:
    """What the explorer reports about the current system and view.

    Attributes:
        fill_rate: share of lit pixels of the preview image.
        filter_fill: fill rate under the search's test (see ``FILTER_*``).
        passes: ``filter_fill >= FILTER_RATE``.
        search_fill: the search's own record for an unedited search category, else None.
        n_maps: number of maps.
        contraction: (N,) spectral norm of each map's linear part, with the view's weights applied.
        contractive: every factor below 1.
    """

    fill_rate: float
    filter_fill: float
    passes: bool
    search_fill: float | None
    n_maps: int
    contraction: np.ndarray
    contractive: bool


@dataclass
class ExplorerModel:
    """The editable system and its view, with cached points.

    Probabilities are kept as non-negative relative weights; ``ifs()`` normalises them to sum 1
    (left untouched when they already do, so a loaded category renders bit-identically).

    Attributes:
        maps: (N, 6) coefficients a..f.
        weights: (N,) relative probabilities.
        view: drawing settings.
        label: where the system came from, for titles and file names.
        search_fill: the search's fill record of the loaded category, cleared on any edit.
    """

    maps: np.ndarray
    weights: np.ndarray
    view: ViewSettings = field(default_factory=ViewSettings)
    label: str = "system"
    search_fill: float | None = None

    def __post_init__(self) -> None:
        self.maps = np.array(self.maps, dtype=np.float64).reshape(-1, 6)
        self.weights = np.array(self.weights, dtype=np.float64).reshape(-1)
        IFS(self.maps, self.weights)  # shape checks
        self.view = self.view.validate()
        self._points_key = None
        self._points = None
        self._filter_key = None
        self._filter_fill = 0.0

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_ifs(
        cls,
        ifs: IFS,
        label: str = "system",
        view: ViewSettings | None = None,
        search_fill: float | None = None,
    ) -> ExplorerModel:
        return cls(ifs.maps.copy(), ifs.probs.copy(), view or ViewSettings(), label, search_fill)

    def load(self, ifs: IFS, label: str, search_fill: float | None = None) -> None:
        """Replace the system (the view settings stay)."""
        self.maps = ifs.maps.copy()
        self.weights = ifs.probs.copy()
        self.label = label
        self.search_fill = search_fill

    # -- editing ---------------------------------------------------------------------------------
    @property
    def n_maps(self) -> int:
        return int(self.maps.shape[0])

    def _check_map(self, i: int) -> int:
        i = check_positive_int("map", i, minimum=0)
        if i >= self.n_maps:
            raise ParamError("map", f"must be below {self.n_maps}, got {i}")
        return i

    def set_coefficient(self, i: int, name: str, value: float) -> None:
        """Set coefficient ``name`` (one of a..f) of map ``i``."""
        if name not in COEFFICIENTS:
            raise ParamError("coefficient", f"must be one of a..f, got {name!r}")
        if not np.isfinite(value):
            raise ParamError(name, f"must be finite, got {value}")
        self.maps[self._check_map(i), COEFFICIENTS.index(name)] = float(value)
        self.search_fill = None

    def set_probability(self, i: int, value: float) -> None:
        """Set the relative probability of map ``i`` (normalised with the others when rendering)."""
        if not (np.isfinite(value) and value >= 0):
            raise ParamError("p", f"must be >= 0, got {value}")
        self.weights[self._check_map(i)] = float(value)
        self.search_fill = None

    def probabilities_from_determinants(self) -> None:
        """Reset the probabilities to ``|det|`` normalised, as the search sets them."""
        self.weights = probabilities_from_determinants(self.maps)
        self.search_fill = None

    def add_map(self, coefficients: Sequence[float] | None = None, probability: float | None = None) -> None:
        """Append a map; by default a random contraction (seeded by the map count) with an equal share."""
        if coefficients is None:
            # Half-size random linear part: contractive enough to keep the attractor bounded.
            rs = np.random.RandomState(self.n_maps)
            coefficients = np.concatenate([rs.uniform(-0.5, 0.5, 4), rs.uniform(-1, 1, 2)])
        row = np.asarray(coefficients, dtype=np.float64)
        if row.shape != (6,) or not np.all(np.isfinite(row)):
            raise ParamError("coefficients", f"need 6 finite numbers a..f, got {coefficients!r}")
        if probability is None:
            probability = float(self.weights.mean()) if self.weights.sum() > 0 else 1.0
        self.maps = np.vstack([self.maps, row])
        self.weights = np.append(self.weights, float(probability))
        self.search_fill = None

    def remove_map(self, i: int) -> None:
        """Remove map ``i``; a system keeps at least one map."""
        i = self._check_map(i)
        if self.n_maps == 1:
            raise ParamError("map", "a system needs at least one map")
        self.maps = np.delete(self.maps, i, axis=0)
        self.weights = np.delete(self.weights, i)
        self.search_fill = None

    def set_view(self, **changes) -> None:
        """Change drawing settings (the fields of ``ViewSettings``)."""
        self.view = replace(self.view, **changes).validate()

    # -- derived ---------------------------------------------------------------------------------
    def probabilities(self) -> np.ndarray:
        """(N,) probabilities summing to 1."""
        total = float(self.weights.sum())
        if total <= 0:
            raise ParamError("p", "at least one map needs a probability above 0")
        if abs(total - 1.0) <= 1e-12:
            return self.weights.copy()
        return self.weights / total

    def ifs(self) -> IFS:
        """The current system, probabilities normalised."""
        return IFS(self.maps.copy(), self.probabilities())

    def view_weights(self) -> np.ndarray:
        """(6,) factors on a..f of the view: fluctuation row times the ``a`` weight."""
        return render.effective_weights(self.view.a_weight, fluctuation_weights()[self.view.row])

    def points(self) -> render.Points:
        """The chaos-game points of the current system and view, cached until either changes."""
        v = self.view
        key = (
            self.maps.tobytes(),
            self.probabilities().tobytes(),
            v.size,
            v.n_points,
            v.pad,
            v.a_weight,
            v.row,
        )
        if key != self._points_key:
            self._points = render.points(
                self.ifs(),
                size=v.size,
                n_points=v.n_points,
                pad=v.pad,
                a_weight=v.a_weight,
                weights=fluctuation_weights()[v.row],
            )
            self._points_key = key
        return self._points

    def image(self, mask_seed: int | None = None) -> np.ndarray:
        """The preview, uint8 (size, size) or (size, size, 3) in colour mode."""
        seed = self.view.mask_seed if mask_seed is None else mask_seed
        return render.draw(self.points(), mode=self.view.mode, mask_seed=seed)

    def filter_fill(self) -> float:
        """Fill rate under the search's test (``FILTER_*``), cached per system."""
        ifs = self.ifs()
        key = (ifs.maps.tobytes(), ifs.probs.tobytes())
        if key != self._filter_key:
            img = render.render(
                ifs,
                size=FILTER_SIZE,
                n_points=FILTER_POINTS,
                pad=FILTER_PAD,
                mode="point",
                a_weight=FILTER_A_WEIGHT,
                flip=False,
            )
            self._filter_fill = render.fill_rate(img)
            self._filter_key = key
        return self._filter_fill

    def readouts(self, image: np.ndarray | None = None) -> Readouts:
        """All readouts; pass the preview ``image`` when already drawn to avoid drawing it again."""
        img = self.image() if image is None else image
        ff = self.filter_fill()
        factors = self.ifs().weighted(self.view_weights()).contraction_factors()
        return Readouts(
            fill_rate=render.fill_rate(img),
            filter_fill=ff,
            passes=ff >= FILTER_RATE,
            search_fill=self.search_fill,
            n_maps=self.n_maps,
            contraction=factors,
            contractive=bool(np.all(factors < 1.0)),
        )

    def csv_text(self) -> str:
        """The system (as edited, without the view's weights) in the official CSV format."""
        return format_rows(self.ifs())

    def export_csv(self, path: str | Path) -> Path:
        """Write the system as an official CSV file; returns the path."""
        path = Path(path)
        if not path.parent.is_dir():
            raise ParamError("path", f"no such folder: {path.parent}")
        write_csv(path, self.ifs())
        return path


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
# Augmentation previews. ``ofdb_study.augment`` (and with it torch/timm) is imported only here, so
# the explorer opens fast and still works where the training extras are not installed.


def augmentation_previews(
    model: ExplorerModel, n: int = 4, seed: int = 0
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """Sample the pre-training augmentations on the current system.

    * random pattern: the cached points re-drawn with ``n`` fresh patch-mask seeds (needs only the
      renderer);
    * random texture: ``augment.random_texture`` on the view's patch image;
    * timm: ``augment.train_transform`` of the paper recipe (224 px, RandAugment, flips, erasing),
      shown de-normalised.

    Args:
        model: the explorer state.
        n: samples per augmentation.
        seed: seed of every random draw, so a preview is reproducible.

    Returns:
        (title, uint8 image) tiles, and notes about augmentations that could not be shown.
    """
    n = check_positive_int("n", n)
    base = render.draw(model.points(), mode="patch", mask_seed=model.view.mask_seed)
    tiles = [("patch (fixed)", base)]
    # Mask seeds other than the view's own, so every sample differs from the fixed image.
    for k in range(n):
        s = seed * 1_000_003 + model.view.mask_seed + 1 + k
        tiles.append((f"pattern {k}", render.draw(model.points(), mode="patch", mask_seed=s)))
    notes = []
    try:
        from . import augment
    except ImportError as err:
        notes.append(f"random texture and timm transform not shown: ofdb_study.augment unavailable ({err})")
        return tiles, notes
    rng = np.random.default_rng(seed)
    if hasattr(augment, "random_texture"):
        tiles += [(f"texture {k}", augment.random_texture(base, rng)) for k in range(n)]
    else:
        notes.append("random texture not shown: ofdb_study.augment has no random_texture")
    try:
        import torch
        from PIL import Image

        from .config import phase_config

        cfg = phase_config("paper", "pretrain")
        transform = augment.train_transform(cfg)
        torch.manual_seed(seed)
        pil = Image.fromarray(base).convert("RGB")
        mean = torch.tensor(cfg.mean).view(3, 1, 1)
        std = torch.tensor(cfg.std).view(3, 1, 1)
        for k in range(n):
            t = transform(pil) * std + mean
            img = (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            tiles.append((f"timm {k}", np.ascontiguousarray(img)))
    except (ImportError, AttributeError) as err:
        notes.append(f"timm transform not shown: {err}")
    return tiles, notes


def warm_up() -> None:
    """Compile the numba kernels of every draw mode on a tiny system (seconds, once per process),
    so the first real update already runs at full speed."""
    model = ExplorerModel.from_ifs(random_ifs(1), view=ViewSettings(size=32, n_points=100))
    for mode in render.DRAW_MODES:
        model.set_view(mode=mode)
        model.readouts()


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
        f"<tr><td>search filter (512 px, 100k pts, a x 1)</td><td>{r.filter_fill:.4f}{record} "
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
            options=[(f"{r}: {fluctuation_label(r)}", r) for r in range(25)],
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


# ----------------------------------------------------------------------------------------------
# The static explorer: precomputed frames, linked in the browser.


@dataclass(frozen=True)
class StaticFrames:
    """Frames of the static explorer: ``png[c][r]`` for category ``c`` and row index ``r``."""

    labels: tuple[str, ...]
    rows: tuple[int, ...]
    png: tuple[tuple[bytes, ...], ...]
    fill: tuple[tuple[float, ...], ...]


def static_frames(
    categories: Sequence[IFS],
    rows: Sequence[int] = tuple(range(25)),
    *,
    labels: Sequence[str] | None = None,
    size: int = 128,
    n_points: int = 50_000,
    mode: str = "point",
    a_weight: float = render.OFDB_A_WEIGHT,
) -> StaticFrames:
    """Render every category under every fluctuation row as PNG bytes."""
    categories = list(categories)
    rows = tuple(int(r) for r in rows)
    if not categories:
        raise ParamError("categories", "need at least one category")
    if not rows:
        raise ParamError("rows", "need at least one fluctuation row")
    for r in rows:
        fluctuation_label(r)
    labels = tuple(labels) if labels is not None else tuple(category_name(i) for i in range(len(categories)))
    if len(labels) != len(categories):
        raise ParamError("labels", f"need {len(categories)} labels, got {len(labels)}")
    table = fluctuation_weights()
    pngs, fills = [], []
    for ifs in categories:
        row_png, row_fill = [], []
        for r in rows:
            img = render.render(
                ifs, size=size, n_points=n_points, mode=mode, a_weight=a_weight, weights=table[r]
            )
            row_png.append(_png(img))
            row_fill.append(render.fill_rate(img))
        pngs.append(tuple(row_png))
        fills.append(tuple(row_fill))
    return StaticFrames(labels, rows, tuple(pngs), tuple(fills))


def static_explorer(
    categories: Sequence[IFS] | None = None,
    rows: Sequence[int] = tuple(range(25)),
    *,
    labels: Sequence[str] | None = None,
    size: int = 128,
    n_points: int = 50_000,
    mode: str = "point",
    a_weight: float = render.OFDB_A_WEIGHT,
    frames: StaticFrames | None = None,
):
    """A kernel-free explorer: category and fluctuation-row sliders (with ``Play``) over frames.

    Layout: an outer ``Stack`` with one inner ``Stack`` per category, each holding one frame
    (image + caption) per row. The category slider is ``jslink``-ed to the outer stack's
    ``selected_index``, the row slider to every inner stack's, and each ``Play`` to its slider, so
    everything runs in the browser from the saved widget state.

    Args:
        categories: the systems (default: the first 3 categories of the exact search).
        rows: FractalDB fluctuation rows to show (0..24).
        labels: one name per category (default 00000, 00001, ...).
        size, n_points, mode, a_weight: rendering of every frame.
        frames: precomputed frames (then the other rendering arguments are ignored).

    Returns:
        An ``ipywidgets.VBox``; the sliders are ``box.category_slider`` and ``box.row_slider``.
    """
    import ipywidgets as w

    if frames is None:
        if categories is None:
            categories = [search_category(i)[0] for i in range(3)]
        frames = static_frames(
            categories, rows, labels=labels, size=size, n_points=n_points, mode=mode, a_weight=a_weight
        )
    n_cat, n_row = len(frames.labels), len(frames.rows)
    # Shared layout/style models keep the embedded state small (one model instead of one per frame).
    img_layout = w.Layout(width=f"{2 * size}px", height=f"{2 * size}px")
    cell_layout, label_layout = w.Layout(), w.Layout()
    inner = []
    for c in range(n_cat):
        cells = []
        for j, r in enumerate(frames.rows):
            caption = (
                f"category {frames.labels[c]}, row {r} ({fluctuation_label(r)}), fill {frames.fill[c][j]:.3f}"
            )
            cells.append(
                w.VBox(
                    [
                        w.Image(value=frames.png[c][j], format="png", layout=img_layout),
                        w.Label(caption, layout=label_layout),
                    ],
                    layout=cell_layout,
                )
            )
        inner.append(w.Stack(cells, selected_index=0))
    outer = w.Stack(inner, selected_index=0)

    cat_slider = w.IntSlider(value=0, min=0, max=max(n_cat - 1, 0), description="category")
    row_slider = w.IntSlider(value=0, min=0, max=max(n_row - 1, 0), description="row")
    cat_play = w.Play(value=0, min=0, max=max(n_cat - 1, 0), interval=800, description="categories")
    row_play = w.Play(value=0, min=0, max=max(n_row - 1, 0), interval=300, description="rows")
    links = [
        w.jslink((cat_play, "value"), (cat_slider, "value")),
        w.jslink((row_play, "value"), (row_slider, "value")),
        w.jslink((cat_slider, "value"), (outer, "selected_index")),
    ]
    links += [w.jslink((row_slider, "value"), (stack, "selected_index")) for stack in inner]
    legend = w.HTML(
        "<small>FractalDB fluctuation rows: 0 identity; 1-24 scale one coefficient (a, b, ... f) "
        f"of every map by {', '.join(map(str, FLUCTUATION_FACTORS))}. Frames precomputed at "
        f"{size} px; moving the sliders needs no kernel.</small>"
    )
    box = w.VBox([w.HBox([cat_play, cat_slider]), w.HBox([row_play, row_slider]), outer, legend])
    # Kept on the box so they are not garbage collected before the state is saved.
    box.category_slider, box.row_slider, box.stacks, box.links = cat_slider, row_slider, inner, links
    box.outer_stack = outer
    return box


def static_explorer_for_profile(profile: str = "smoke", **overrides):
    """``static_explorer`` with the ``STATIC_PROFILES`` settings of ``profile``, search categories."""
    if profile not in STATIC_PROFILES:
        raise ParamError("profile", f"must be one of {', '.join(STATIC_PROFILES)}, got {profile!r}")
    cfg = {**STATIC_PROFILES[profile], **overrides}
    n = check_positive_int("categories", cfg.pop("categories"))
    cats = [search_category(i)[0] for i in range(n)]
    return static_explorer(cats, cfg.pop("rows"), labels=[category_name(i) for i in range(n)], **cfg)
