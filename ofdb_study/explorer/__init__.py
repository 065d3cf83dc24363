"""The fractal explorer: one IFS category on screen, every map editable.

``Explorer`` (``widgets``) is the live ipywidgets app for a kernel; ``ExplorerModel`` (``model``)
holds its state without widgets, so tests drive it directly; ``static_explorer`` (``static``) is the
kernel-free version stored in the published book. ``from ofdb_study import explorer`` is all a
notebook needs.
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
from .static import (
    StaticFrames,
    static_explorer,
    static_explorer_for_profile,
    static_frames,
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
    "Readouts",
    "StaticFrames",
    "ViewSettings",
    "augmentation_previews",
    "fluctuation_label",
    "folder_category",
    "random_ifs",
    "search_category",
    "static_explorer",
    "static_explorer_for_profile",
    "static_frames",
    "warm_up",
]
