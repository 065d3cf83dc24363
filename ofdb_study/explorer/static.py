"""The static explorer for the published book: precomputed frames, linked in the browser.

``static_explorer`` renders categories x FractalDB fluctuation rows once and puts them in nested
``Stack`` widgets whose ``selected_index`` is ``jslink``-ed to sliders and ``Play`` buttons, so
moving through them works from the saved widget state alone, with no kernel and no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..config import get_profile
from ..errors import ParamError, check_positive_int
from ..fractals import render
from ..fractals.defaults import FRACTALDB_ROWS
from ..fractals.ifs import FLUCTUATION_FACTORS, IFS, category_name, fluctuation_label, fluctuation_weights
from ..fractals.png import encode_png
from .model import search_category


@dataclass(frozen=True)
class StaticFrames:
    """Frames of the static explorer: ``png[c][r]`` for category ``c`` and row index ``r``."""

    labels: tuple[str, ...]
    rows: tuple[int, ...]
    png: tuple[tuple[bytes, ...], ...]
    fill: tuple[tuple[float, ...], ...]


def static_frames(
    categories: Sequence[IFS],
    rows: Sequence[int] = tuple(range(FRACTALDB_ROWS)),
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
            row_png.append(encode_png(img))
            row_fill.append(render.fill_rate(img))
        pngs.append(tuple(row_png))
        fills.append(tuple(row_fill))
    return StaticFrames(labels, rows, tuple(pngs), tuple(fills))


def static_explorer(
    categories: Sequence[IFS] | None = None,
    rows: Sequence[int] = tuple(range(FRACTALDB_ROWS)),
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
    """``static_explorer`` of the first search categories, with ``config``'s ``ExplorerPlan`` of
    ``profile`` (categories, rows, size, n_points), any of them replaced by ``overrides``."""
    cfg = {**asdict(get_profile(profile).explorer), **overrides}
    n = check_positive_int("categories", cfg.pop("categories"))
    cats = [search_category(i)[0] for i in range(n)]
    return static_explorer(cats, cfg.pop("rows"), labels=[category_name(i) for i in range(n)], **cfg)
