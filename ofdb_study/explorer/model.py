"""The explorer's model: one IFS category being looked at and edited, with no widgets.

``ExplorerModel`` holds the system (maps, probabilities) and the view settings (points, size,
draw mode, ``a`` weight, patch seed, FractalDB fluctuation row), renders the preview and computes
the readouts: fill rate, the search's fill test, contraction factors. ``augmentation_previews``
samples the pre-training augmentations on it. The JupyterLab widget hands its state back as this
model (``webwidget.model_from_state``) and renders its augmentation previews with it; tests and
plain scripts use it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import phase_config
from ..errors import ParamError, check_positive_int
from ..fractals import render
from ..fractals.defaults import SEARCH_PAD, SEARCH_POINTS, SEARCH_RATE, SEARCH_SIZE
from ..fractals.ifs import (
    COEFFICIENTS,
    IFS,
    fluctuation_label,
    fluctuation_weights,
    format_rows,
    list_csvs,
    probabilities_from_determinants,
    read_csv,
    write_csv,
)
from ..train import augment

#: The search's fill test (public search script, ryoo-nakamura/OFDB ``param_search/ifs_search.py``):
#: 512 px, pad 6, 100k points, every point one pixel, the plain system (``a`` x 1.0, no fluctuation
#: row), kept when at least 20 % of the pixels are lit.
#: The chaos game here uses the seed-100 stream of the renderer, not the candidate's own uniforms from
#: the search stream (an edited system has none). Fill rates move by about 0.01 between streams (search
#: category 00000: 0.2237 recorded, 0.2124 here), so a system near 0.2 can pass in one and fail in the
#: other; a category loaded from the search also shows the search's own record.
FILTER_SIZE = SEARCH_SIZE
FILTER_PAD = SEARCH_PAD
FILTER_POINTS = SEARCH_POINTS
FILTER_A_WEIGHT = 1.0
FILTER_RATE = SEARCH_RATE


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
# Category sources: the search's categories are cached (``search.searched``), a folder read is cheap.


def search_category(index: int) -> tuple[IFS, float]:
    """Category ``index`` (0-based) of the exact FractalDB search and its recorded fill rate.

    The categories come from ``fractals.search.searched``, cached on disk and in the process and
    resumed only when a later category is asked for, so stepping through them searches each once.
    """
    index = check_positive_int("category", index, minimum=0)
    from ..fractals.search import searched

    result = searched(index + 1)
    return result.categories[index], float(result.fill_rates[index])


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
# Augmentation previews. timm (and with it torch) is imported only here, so the explorer opens fast
# and still works where the training extras are not installed.


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
    rng = np.random.default_rng(seed)
    tiles += [(f"texture {k}", augment.random_texture(base, rng)) for k in range(n)]
    notes = []
    try:
        import torch
        from PIL import Image
    except ImportError as err:  # a base install: no training extras
        notes.append(f"timm transform not shown: {err}")
        return tiles, notes
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
    return tiles, notes
