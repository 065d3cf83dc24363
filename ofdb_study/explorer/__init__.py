"""The fractal explorer: one IFS category on screen, every map editable.

``ExplorerWidget`` (``webwidget``, anywidget) is the JavaScript front end of ``web`` in JupyterLab,
the same one the book's explorer page runs without a kernel; ``Explorer`` (``widgets``) is the
ipywidgets app drawn by the kernel; ``ExplorerModel`` (``model``) holds the state without widgets,
so tests and scripts drive it directly. ``from ofdb_study import explorer`` is all a notebook needs
(``ExplorerWidget`` imports anywidget on first use).
"""

from .model import (
    COEF_RANGE,
    FILTER_A_WEIGHT,
    FILTER_PAD,
    FILTER_POINTS,
    FILTER_RATE,
    FILTER_SIZE,
    SLIDER_STEP,
    ExplorerModel,
    Readouts,
    ViewSettings,
    augmentation_previews,
    fluctuation_label,
    folder_category,
    random_ifs,
    search_category,
    warm_up,
)
from .widgets import Coalescer, Explorer

__all__ = [
    "COEF_RANGE",
    "FILTER_A_WEIGHT",
    "FILTER_PAD",
    "FILTER_POINTS",
    "FILTER_RATE",
    "FILTER_SIZE",
    "SLIDER_STEP",
    "Coalescer",
    "Explorer",
    "ExplorerModel",
    "ExplorerWidget",
    "Readouts",
    "ViewSettings",
    "augmentation_previews",
    "fluctuation_label",
    "folder_category",
    "random_ifs",
    "search_category",
    "warm_up",
]


def __getattr__(name: str):
    if name == "ExplorerWidget":  # anywidget (and ipywidgets) load only when the widget is asked for
        from .webwidget import ExplorerWidget

        return ExplorerWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
