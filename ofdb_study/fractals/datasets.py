"""OFDB-N and FractalDB-N, each defined once as pure functions of (category, instance, seed).

The builders that write image trees (``build``) and the in-memory training sources
(``train.pretrain_data``, through ``FractalSource``) both call these, so the PNG written for an
instance holds the bytes training draws for it, and ``dataset_digest`` names both.

* **OFDB-N**: category ``c`` has one image: its chaos-game points (``render.points``, every map's
  ``a`` x ``a_weight``, 0.2 by default) drawn in patch mode with the masks of
  ``ofdb_mask_seed(seed, c)``.
* **FractalDB-N**: category ``c`` has rows x renders x flips instances (25 x 10 x 4 = 1,000).
  Instance ``j`` is (row ``w``, render ``r``, flip ``f``) with ``j = (w * renders + r) * flips + f``.
  Row ``w``'s points are the chaos game of the system times ``fluctuation_weights()[w]`` (``a`` x 1:
  the OFDB default ``a`` x 0.2 is itself row 1), shared by the row's renders; render ``r`` draws
  them with the masks of ``fractaldb_mask_seed(seed, c, w, r)``; flip ``f`` is ``render.FLIPS[f]``.

Every image uses the seed-100 chaos-game stream and the public generator's top-to-bottom flip.
Mask seeds come from ``seeds.mix_seed``, so every (category, instance, seed) has its own masks.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from ..errors import ParamError, check_positive_int
from ..seeds import SALT_FRACTALDB_MASK, SALT_OFDB_MASK, mix_seed
from . import render
from .defaults import (
    CHAOS_SEED,
    DATA_SEED,
    FRACTALDB_FLIPS,
    FRACTALDB_RENDERS,
    FRACTALDB_ROWS,
    OFDB_A_WEIGHT,
    OFDB_PAD,
    OFDB_POINTS,
    OFDB_SIZE,
)
from .ifs import IFS, category_name, fluctuation_weights

#: Version of the definitions above; part of every dataset digest. Bump it when they change bytes.
RULE = 1
_ROWS = fluctuation_weights()
_ROWS.flags.writeable = False


# ---- the definitions --------------------------------------------------------------------------
def ofdb_mask_seed(seed: int, category: int) -> int:
    """The patch-mask seed of OFDB category ``category`` under base seed ``seed``."""
    return mix_seed(seed, category, SALT_OFDB_MASK)


def fractaldb_mask_seed(seed: int, category: int, row: int, render_index: int) -> int:
    """The patch-mask seed of FractalDB category ``category``, weight row ``row``, render ``render_index``."""
    return mix_seed(seed, category, row, render_index, SALT_FRACTALDB_MASK)


def ofdb_image(pts: render.Points, category: int, seed: int = DATA_SEED, mode: str = "patch") -> np.ndarray:
    """OFDB's image of category ``category``, from its points (``render.points``).

    Returns:
        uint8 (S, S), or (S, S, 3) in colour mode; S = ``pts.size``.
    """
    return render.draw(pts, mode=mode, mask_seed=ofdb_mask_seed(seed, category))


def fractaldb_points(
    system: IFS, row: int, *, size: int = OFDB_SIZE, n_points: int = OFDB_POINTS, pad: int = OFDB_PAD
) -> render.Points:
    """The points of FractalDB weight row ``row`` (0..24) of a category: ``a`` x 1 times the row."""
    if not 0 <= int(row) < FRACTALDB_ROWS:
        raise ParamError("row", f"must be between 0 and {FRACTALDB_ROWS - 1}, got {row}")
    return render.points(system, size=size, n_points=n_points, pad=pad, a_weight=1.0, weights=_ROWS[int(row)])


def fractaldb_images(
    pts: render.Points,
    category: int,
    row: int,
    render_index: int,
    flips: Sequence[str] = render.FLIPS,
    seed: int = DATA_SEED,
    mode: str = "patch",
) -> list[np.ndarray]:
    """FractalDB's instances (``row``, ``render_index``, f) for each flip f of ``flips``: one draw.

    Args:
        pts: the row's points (``fractaldb_points``).
        category, row, render_index: which render.
        flips: names from ``render.FLIPS``.
        seed: the dataset's base seed.
        mode: draw mode (``patch`` as released).

    Returns:
        One C-contiguous uint8 image per flip, (S, S) or (S, S, 3).
    """
    base = render.draw(pts, mode=mode, mask_seed=fractaldb_mask_seed(seed, category, row, render_index))
    return [np.ascontiguousarray(render.flip(base, f)) for f in flips]


def fractaldb_instance(
    index: int, renders: int = FRACTALDB_RENDERS, flips: int = FRACTALDB_FLIPS
) -> tuple[int, int, str]:
    """(row, render, flip name) of instance ``index`` of a category: ``index = (w * renders + r) * flips + f``."""
    rest, f = divmod(int(index), flips)
    row, r = divmod(rest, renders)
    if not 0 <= row < FRACTALDB_ROWS:
        raise ParamError("index", f"must be below {FRACTALDB_ROWS * renders * flips}, got {index}")
    return row, r, render.FLIPS[f]


def ofdb_file(category: int) -> str:
    """Path of OFDB category ``category``'s image in a tree: ``NNNNN/NNNNN.png``."""
    name = category_name(category)
    return f"{name}/{name}.png"


def fractaldb_file(category: int, row: int, render_index: int, flip: str) -> str:
    """Path of a FractalDB instance in a tree: ``NNNNN/NNNNN_wWW_rRR_<flip>.png``."""
    name = category_name(category)
    return f"{name}/{name}_w{row:02d}_r{render_index:02d}_{flip}.png"


# ---- what identifies a dataset's bytes --------------------------------------------------------
def ofdb_settings(
    *,
    size: int = OFDB_SIZE,
    points: int = OFDB_POINTS,
    pad: int = OFDB_PAD,
    a_weight: float = OFDB_A_WEIGHT,
    weights: Sequence[float] | None = None,
    mode: str = "patch",
    seed: int = DATA_SEED,
) -> dict:
    """The settings that decide OFDB's pixels, normalised for JSON (``weights``: (6,) on a..f)."""
    w6 = render.effective_weights(1.0, weights)
    return {
        "size": int(size),
        "points": int(points),
        "pad": int(pad),
        "a_weight": float(a_weight),
        "weights": [float(v) for v in w6],
        "mode": str(mode),
        "seed": int(seed),
        "chaos_seed": CHAOS_SEED,
    }


def fractaldb_settings(
    *,
    size: int = OFDB_SIZE,
    points: int = OFDB_POINTS,
    pad: int = OFDB_PAD,
    fluctuations: int = FRACTALDB_ROWS,
    renders: int = FRACTALDB_RENDERS,
    flips: int = FRACTALDB_FLIPS,
    mode: str = "patch",
    seed: int = DATA_SEED,
) -> dict:
    """The settings that decide FractalDB's pixels, normalised for JSON."""
    return {
        "size": int(size),
        "points": int(points),
        "pad": int(pad),
        "fluctuations": int(fluctuations),
        "renders": int(renders),
        "flips": list(render.FLIPS[: int(flips)]),
        "mode": str(mode),
        "seed": int(seed),
        "chaos_seed": CHAOS_SEED,
    }


def dataset_digest(kind: str, settings: dict, systems: Sequence[IFS]) -> str:
    """sha256 naming a dataset's image bytes: ``RULE``, kind, pixel settings, every category's table.

    The builders write it into the manifest (``dataset_sha256``); the in-memory sources compute the
    same value, so a run records one hash for one dataset wherever its images came from.
    """
    doc = {"rule": RULE, "kind": kind, "settings": settings}
    h = hashlib.sha256(json.dumps(doc, sort_keys=True).encode())
    for system in systems:
        h.update(np.ascontiguousarray(system.to_rows(), dtype=np.float64).tobytes())
    return h.hexdigest()


# ---- the in-memory source ---------------------------------------------------------------------
class FractalSource:
    """Both datasets of a list of categories, in memory: points cached, images drawn on demand.

    Args:
        categories: the IFS systems (category ``c`` is ``categories[c]``).
        size, n_points, pad: render settings (``render.points``).
        a_weight: OFDB's factor on ``a`` (FractalDB's rows use ``a`` x 1).
        seed: the datasets' base seed (the builders' ``--seed``).
    """

    #: Weighted point sets kept (category, row); 25 rows of 160 categories.
    ROW_CACHE = 4096

    def __init__(
        self,
        categories: Sequence[IFS],
        size: int = OFDB_SIZE,
        n_points: int = OFDB_POINTS,
        pad: int = OFDB_PAD,
        a_weight: float = OFDB_A_WEIGHT,
        seed: int = DATA_SEED,
    ):
        render.check_render_args(size, n_points, pad, "patch")
        self.seed = check_positive_int("seed", seed, minimum=0)
        self.categories = list(categories)
        self.size, self.n_points, self.pad, self.a_weight = size, n_points, pad, a_weight
        self._points: dict[int, render.Points] = {}
        self._fixed: dict[int, np.ndarray] = {}
        self._rows: OrderedDict[tuple[int, int], render.Points] = OrderedDict()

    def __len__(self) -> int:
        return len(self.categories)

    def points(self, c: int, cache: bool = True) -> render.Points:
        """OFDB's points of category ``c``, kept for later calls unless ``cache`` is False."""
        pts = self._points.get(c)
        if pts is None:
            pts = render.points(
                self.categories[c],
                size=self.size,
                n_points=self.n_points,
                pad=self.pad,
                a_weight=self.a_weight,
            )
            if cache:
                self._points[c] = pts
        return pts

    def fixed_image(self, c: int, cache: bool = True) -> np.ndarray:
        """OFDB's image of category ``c`` (``ofdb_image``), uint8 (S, S), read-only; kept (with its
        points) unless ``cache`` is False."""
        img = self._fixed.get(c)
        if img is None:
            img = ofdb_image(self.points(c, cache), c, self.seed)
            img.flags.writeable = False
            if cache:
                self._fixed[c] = img
        return img

    def pattern_image(self, c: int, mask_seed: int) -> np.ndarray:
        """Category ``c``'s OFDB points with the masks of ``mask_seed``, uint8 (S, S)."""
        return render.draw(self.points(c), mode="patch", mask_seed=mask_seed)

    def row_points(self, c: int, row: int, cache: bool = True) -> render.Points:
        """FractalDB's points of category ``c``, weight row ``row`` (the last ``ROW_CACHE`` kept;
        with ``cache`` False nothing is kept or reordered, so threads may call it at once)."""
        key = (int(c), int(row))
        pts = self._rows.get(key)
        if pts is not None:
            if cache:
                self._rows.move_to_end(key)
            return pts
        pts = fractaldb_points(self.categories[c], row, size=self.size, n_points=self.n_points, pad=self.pad)
        if cache:
            self._rows[key] = pts
            if len(self._rows) > self.ROW_CACHE:
                self._rows.popitem(last=False)
        return pts

    def row_image(self, c: int, row: int, cache: bool = True) -> np.ndarray:
        """Weight row ``row``'s points drawn with OFDB's masks of category ``c``, uint8 (S, S)
        (the points kept unless ``cache`` is False)."""
        pts = self.row_points(c, row, cache)
        return render.draw(pts, mode="patch", mask_seed=ofdb_mask_seed(self.seed, c))

    def fractaldb_image(self, c: int, index: int) -> np.ndarray:
        """FractalDB's instance ``index`` (0..999) of category ``c``, uint8 (S, S)."""
        row, r, flip = fractaldb_instance(index)
        return fractaldb_images(self.row_points(c, row), c, row, r, (flip,), self.seed)[0]

    def digest(self, kind: str = "ofdb") -> str:
        """``dataset_digest`` of the ``ofdb`` or ``fractaldb`` dataset this source draws."""
        common = dict(size=self.size, points=self.n_points, pad=self.pad, seed=self.seed)
        if kind == "ofdb":
            settings = ofdb_settings(a_weight=self.a_weight, **common)
        elif kind == "fractaldb":
            settings = fractaldb_settings(**common)
        else:
            raise ParamError("data", f"must be ofdb or fractaldb, got {kind!r}")
        return dataset_digest(kind, settings, self.categories)
