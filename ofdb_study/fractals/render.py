"""The 2D renderer: one typed entry point over the numba kernels. Arrays in, arrays out.

``render(ifs)`` with the defaults makes the image of the public 2D-OFDB generator (``defaults``):
362 px, 6 px padding, 200,000 points from the seed-100 chaos-game stream (the same uniforms for
every category), every map's ``a`` multiplied by 0.2, 3x3 random patches, flipped top to bottom.

The expensive part (the chaos game and the rescale) is separate from the cheap part (drawing), so
training can cache a category's points once and re-draw them with fresh patch masks per sample:
``pts = points(ifs)`` then ``draw(pts, mask_seed=s)``. ``flip`` gives FractalDB's four flips.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import check_fits
from . import kernels
from .defaults import CHAOS_SEED, OFDB_A_WEIGHT, OFDB_PAD, OFDB_POINTS, OFDB_SIZE, POINT_BYTES
from .ifs import IFS, a_weights
from .mt import chaos_uniforms

DRAW_MODES = ("point", "patch", "color")
#: FractalDB's four flips of a drawn image, in the order of its instances.
FLIPS = ("none", "tb", "lr", "both")


@dataclass(frozen=True)
class Points:
    """A category's chaos-game points in pixel coordinates, before drawing and flipping.

    Attributes:
        x, y: (n,) uint16 pixel column and row (the patch of a point starts one pixel further).
        size: the image side in pixels they were scaled for.
    """

    x: np.ndarray
    y: np.ndarray
    size: int

    def __len__(self) -> int:
        return int(self.x.shape[0])


_scratch = threading.local()


def _buffers(n_points: int) -> tuple[np.ndarray, ...]:
    """Per-thread work arrays (xs, ys float64; px, py uint16; map choices uint8), reused.

    Allocating 4 MB per image costs page faults worth a fifth of a render; threads each get
    their own, so parallel builders stay independent.
    """
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None or bufs[0].shape[0] < n_points:
        bufs = (
            np.empty(n_points),
            np.empty(n_points),
            np.empty(n_points, dtype=np.uint16),
            np.empty(n_points, dtype=np.uint16),
            np.empty(n_points, dtype=np.uint8),
        )
        _scratch.bufs = bufs
    return bufs


def check_render_args(size: int, points: int, pad: int, draw: str) -> None:
    """Raise ParamError for settings the renderer cannot honour."""
    check_positive_int("points", points, minimum=2)
    check_positive_int("pad", pad, minimum=0)
    check_positive_int("size", size, minimum=1)
    if size - 2 * pad < 4:
        raise ParamError("size", f"must be at least 2 * pad + 4 = {2 * pad + 4} px, got {size}")
    check_fits("points", points * POINT_BYTES, f"{points:,} points")
    check_fits("size", size * size * 3 * 2, f"a {size:,} px image")
    if draw not in DRAW_MODES:
        raise ParamError("draw", f"must be one of {', '.join(DRAW_MODES)}, got {draw!r}")


def effective_weights(a_weight: float = OFDB_A_WEIGHT, weights=None) -> np.ndarray:
    """Weights (6,) applied to a..f: ``weights`` (default ones) with ``a`` also times ``a_weight``."""
    w = a_weights(a_weight)
    if weights is not None:
        extra = np.asarray(weights, dtype=np.float64)
        if extra.shape != (6,):
            raise ParamError("weights", f"must have 6 entries (a..f), got shape {extra.shape}")
        w = w * extra
    return w


def _pixels(
    ifs: IFS, size: int, n_points: int, pad: int, a_weight: float, weights, chaos_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (px, py) of the kept points, as views of this thread's work arrays."""
    w = effective_weights(a_weight, weights)
    sys_ = ifs.weighted(w)
    u = chaos_uniforms(n_points, chaos_seed)
    xs, ys, px, py, choice = _buffers(n_points)
    stats = kernels.new_stats()
    count = kernels.chaos_game(sys_.maps, sys_.cumulative(), u, n_points, xs, ys, stats, choice)
    n = kernels.nan_rule_and_rescale(xs, ys, count, n_points, size, pad, px, py, stats)
    return px[:n], py[:n]


def points(
    ifs: IFS,
    *,
    size: int = OFDB_SIZE,
    n_points: int = OFDB_POINTS,
    pad: int = OFDB_PAD,
    a_weight: float = OFDB_A_WEIGHT,
    weights=None,
    chaos_seed: int = CHAOS_SEED,
) -> Points:
    """Chaos game, NaN rule and rescale of one category.

    Args:
        ifs: the category.
        size, pad: image side and padding in pixels.
        n_points: points including the start point (0, 0).
        a_weight: factor on every map's ``a`` (0.2 in the public OFDB generator; 1.0 is plain).
        weights: optional (6,) factors on a..f (FractalDB's fluctuation rows), applied as well.
        chaos_seed: seed of the map-choice stream, reset for every render as the public code does.

    Returns:
        The kept points in pixel coordinates.
    """
    check_render_args(size, n_points, pad, "point")
    px, py = _pixels(ifs, size, n_points, pad, a_weight, weights, chaos_seed)
    return Points(px.copy(), py.copy(), size)


def draw(pts: Points, *, mode: str = "patch", mask_seed: int = 0, flip: bool = True) -> np.ndarray:
    """Draw cached points.

    Args:
        pts: from ``points``.
        mode: ``point`` (one pixel of 127), ``patch`` (3x3 random masks, the released data) or
            ``color`` (hue by point index).
        mask_seed: seed of the patch masks; the same seed gives the same bytes.
        flip: flip top to bottom, as the public generator does after drawing.

    Returns:
        uint8 image (size, size) for point and patch, (size, size, 3) for color.
    """
    if mode not in DRAW_MODES:
        raise ParamError("draw", f"must be one of {', '.join(DRAW_MODES)}, got {mode!r}")
    if mode == "patch":
        check_positive_int("seed", mask_seed, minimum=0)
    return _draw(pts.x, pts.y, pts.size, mode, mask_seed, flip)


def _draw(px: np.ndarray, py: np.ndarray, size: int, mode: str, mask_seed: int, flip: bool) -> np.ndarray:
    """Draw pixel coordinates; the callers (``draw``, ``render``) have checked ``mode`` and the seed."""
    n = int(px.shape[0])
    if mode == "color":
        out = np.empty((size, size, 3), dtype=np.uint8)
        kernels.draw_colors(px, py, n, size, flip, out)
        return out
    out = np.empty((size, size), dtype=np.uint8)
    if mode == "point":
        kernels.draw_points(px, py, n, size, flip, out)
    else:
        kernels.draw_patches(px, py, n, size, flip, int(mask_seed), out)
    return out


def render(
    ifs: IFS,
    *,
    size: int = OFDB_SIZE,
    n_points: int = OFDB_POINTS,
    pad: int = OFDB_PAD,
    mode: str = "patch",
    a_weight: float = OFDB_A_WEIGHT,
    weights=None,
    mask_seed: int = 0,
    chaos_seed: int = CHAOS_SEED,
    flip: bool = True,
) -> np.ndarray:
    """Render one category: ``draw(points(ifs, ...), ...)``; see both for the arguments.

    Returns:
        uint8 image (size, size), or (size, size, 3) in colour mode.
    """
    check_render_args(size, n_points, pad, mode)
    if mode == "patch":
        check_positive_int("seed", mask_seed, minimum=0)
    px, py = _pixels(ifs, size, n_points, pad, a_weight, weights, chaos_seed)
    return _draw(px, py, size, mode, mask_seed, flip)


def flip(image: np.ndarray, which: str) -> np.ndarray:
    """One of FractalDB's ``FLIPS`` of an (H, W) or (H, W, C) image, as a view.

    ``none`` keeps it, ``tb`` flips top to bottom, ``lr`` left to right, ``both`` both (a half turn).
    """
    if which == "none":
        return image
    if which == "tb":
        return image[::-1]
    if which == "lr":
        return image[:, ::-1]
    if which == "both":
        return image[::-1, ::-1]
    raise ParamError("flip", f"must be one of {', '.join(FLIPS)}, got {which!r}")


def fill_rate(image: np.ndarray) -> float:
    """Share of pixels that are not black, (H, W) or (H, W, 3) -> float in [0, 1]."""
    lit = image if image.ndim == 2 else image.max(axis=2)
    return float(np.count_nonzero(lit)) / lit.size
