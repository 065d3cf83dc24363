"""The fractal explorer: one IFS category on screen, every map editable.

One front end, the JavaScript of ``web/``, runs in two hosts: the book's explorer page, with no
kernel, and JupyterLab, as the anywidget ``ExplorerWidget`` (``webwidget``), where the kernel
supplies any category of the search and the augmentation previews. ``ExplorerModel`` (``model``)
holds a system and its view without widgets, with the package's readouts, image and CSV export,
so tests and scripts drive it directly. ``from ofdb_study import explorer`` is all a notebook needs
(``ExplorerWidget`` imports anywidget on first use).
"""

from .model import (
    FILTER_A_WEIGHT,
    FILTER_PAD,
    FILTER_POINTS,
    FILTER_RATE,
    FILTER_SIZE,
    ExplorerModel,
    Readouts,
    ViewSettings,
    augmentation_previews,
    fluctuation_label,
    folder_category,
    random_ifs,
    search_category,
)
from .web import state_hash

__all__ = [
    "FILTER_A_WEIGHT",
    "FILTER_PAD",
    "FILTER_POINTS",
    "FILTER_RATE",
    "FILTER_SIZE",
    "ExplorerModel",
    "ExplorerWidget",
    "Readouts",
    "ViewSettings",
    "augmentation_previews",
    "fluctuation_label",
    "folder_category",
    "random_ifs",
    "search_category",
    "state_hash",
]


def __getattr__(name: str):
    if name == "ExplorerWidget":  # anywidget (and ipywidgets) load only when the widget is asked for
        from .webwidget import ExplorerWidget

        return ExplorerWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
