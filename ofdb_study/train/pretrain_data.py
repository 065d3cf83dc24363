"""Pre-training sources as torch Datasets: fractals rendered in memory, ImageFolder trees, 3D views.

* ``ofdb``: one image per category (2D-OFDB), with a Table-1 option (``augment.INSTANCE_AUGMENTS``)
  deciding what a category yields each time it is drawn. Epoch = one pass over the categories.
* ``fractaldb``: FractalDB's 1,000 instances per category (25 weight rows x 10 patch renders x 4
  flips), rendered on demand from cached points, never written to disk. Epoch = N x 1,000.
* ``PATH``: an ImageFolder tree ``PATH/NNNNN/*.png`` (what ``datasets.py`` writes).
* ``multiview:PATH``: 3D-OFDB views, a folder per category holding its 12 views; each draw of a
  category returns one of its views at random.

Randomness: a dataset draws from NumPy's global generator (and timm transforms from ``random`` /
``torch``); the training loader seeds all three per sample from (run seed, sample position), so a
sample is the same whatever the worker count, and after a resume.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ParamError
from ..fractals import render
from ..fractals.ifs import IFS, fluctuation_weights, read_dir
from .augment import FLIPS, check_augment, flip, instance_image

try:  # torch is an optional dependency of the package; the sources below need it
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover
    Dataset = object

MULTIVIEW_PREFIX = "multiview:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: 25 weight rows x 10 patch renders x 4 flips (OFDB project page; public FractalDB generator,
#: ryoo-nakamura/OFDB ``fractal_renderer/make_fractaldb.py``)
FRACTALDB_INSTANCES = 1000


def cache_dir() -> Path:
    """Where the exact category search is cached: ``$OFDB_STUDY_CACHE`` or ~/.cache/ofdb-study."""
    return Path(os.environ.get("OFDB_STUDY_CACHE", Path.home() / ".cache" / "ofdb-study"))


@functools.lru_cache(maxsize=4)
def _searched(n: int, where: str) -> tuple[IFS, ...]:
    from ..fractals.search import search_to_dir

    result = search_to_dir(where, n, resume=True)
    return tuple(result.categories[:n])


def load_categories(n: int, params: str | None = None) -> list[IFS]:
    """The first ``n`` categories: from a folder of CSVs, or the exact search (seed 1), cached."""
    if params:
        return read_dir(params, n)
    return list(_searched(int(n), str(cache_dir() / "search-seed1")))


def _pil(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(gray), mode="L").convert("RGB")


class FractalSource:
    """Per-category cache of chaos-game points and of the fixed (default) image.

    Args:
        categories: the IFS systems.
        size, n_points, pad, a_weight: render settings (see ``render.points``).
    """

    def __init__(self, categories: list[IFS], size: int, n_points: int, pad: int, a_weight: float = 0.2):
        render.check_render_args(size, n_points, pad, "patch")
        self.categories = list(categories)
        self.size, self.n_points, self.pad, self.a_weight = size, n_points, pad, a_weight
        self._points: dict[int, render.Points] = {}
        self._fixed: dict[int, np.ndarray] = {}
        self._weighted: OrderedDict = OrderedDict()  # (category, row bytes) -> Points, bounded

    def __len__(self) -> int:
        return len(self.categories)

    def points(self, c: int, cache: bool = True) -> render.Points:
        """Category ``c``'s points, kept for later calls unless ``cache`` is False."""
        if c in self._points:
            return self._points[c]
        pts = render.points(
            self.categories[c], size=self.size, n_points=self.n_points, pad=self.pad, a_weight=self.a_weight
        )
        if cache:
            self._points[c] = pts
        return pts

    @staticmethod
    def fixed_seed(c: int) -> int:
        """The patch-mask seed of category ``c``'s fixed image (and of its fluctuation rows)."""
        return int(c)

    def fixed_image(self, c: int) -> np.ndarray:
        """The category's one image, uint8 (S, S): patch masks seeded by ``fixed_seed(c)``."""
        if c not in self._fixed:
            img = render.draw(self.points(c), mode="patch", mask_seed=self.fixed_seed(c))
            img.flags.writeable = False
            self._fixed[c] = img
        return self._fixed[c]

    def pattern_image(self, c: int, mask_seed: int) -> np.ndarray:
        """Cached points with fresh 3x3 masks, uint8 (S, S)."""
        return render.draw(self.points(c), mode="patch", mask_seed=mask_seed)

    def weighted_points(self, c: int, weights: np.ndarray, cache: bool = True) -> render.Points:
        """Category ``c``'s points under a weight row (6,), kept (up to 4,096) unless ``cache`` is False."""
        key = (c, np.asarray(weights, dtype=np.float64).tobytes())
        if key in self._weighted:
            self._weighted.move_to_end(key)
            return self._weighted[key]
        # a x 1 here: the OFDB default (a x 0.2) is itself one of the 25 rows
        pts = render.points(
            self.categories[c],
            size=self.size,
            n_points=self.n_points,
            pad=self.pad,
            a_weight=1.0,
            weights=weights,
        )
        if not cache:
            return pts
        self._weighted[key] = pts
        if len(self._weighted) > 4096:
            self._weighted.popitem(last=False)
        return pts

    def weighted_image(self, c: int, weights: np.ndarray, mask_seed: int | None = None) -> np.ndarray:
        """Points under a weight row (6,), drawn with the category's masks; uint8 (S, S)."""
        seed = self.fixed_seed(c) if mask_seed is None else mask_seed
        return render.draw(self.weighted_points(c, weights), mode="patch", mask_seed=seed)

    def digest(self) -> str:
        """sha256 of the categories' parameters and the render settings (the data manifest hash)."""
        h = hashlib.sha256(json.dumps([self.size, self.n_points, self.pad, self.a_weight]).encode())
        for ifs in self.categories:
            h.update(ifs.to_rows().tobytes())
        return h.hexdigest()


class OFDBDataset(Dataset):
    """OFDB-N in memory: item i is category i under a Table-1 option -> (tensor (3, S', S'), i)."""

    def __init__(self, source: FractalSource, augment: str = "default", transform=None):
        self.source, self.augment, self.transform = source, check_augment(augment), transform
        self.num_classes = len(source)

    def __len__(self) -> int:
        return len(self.source)

    def image(self, i: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        return instance_image(self.source, i, self.augment, rng)

    def __getitem__(self, i: int):
        img = _pil(self.image(int(i)))
        return (self.transform(img) if self.transform else img), int(i)


class FractalDBDataset(Dataset):
    """FractalDB-N in memory: item i = category i // 1000, instance i % 1000 (row, patch render, flip)."""

    def __init__(self, source: FractalSource, transform=None):
        self.source, self.transform = source, transform
        self.num_classes = len(source)
        self._rows = fluctuation_weights()

    def __len__(self) -> int:
        return len(self.source) * FRACTALDB_INSTANCES

    @staticmethod
    def instance(i: int) -> tuple[int, int, int, int]:
        """Item ``i`` as (category, weight row 0..24, patch-mask seed, flip index into ``augment.FLIPS``)."""
        c, j = divmod(int(i), FRACTALDB_INSTANCES)
        row, rest = divmod(j, 40)
        render_k, flip_k = divmod(rest, 4)
        return c, row, c * 10 + render_k, flip_k

    def image(self, i: int) -> np.ndarray:
        c, row, mask_seed, flip_k = self.instance(i)
        img = self.source.weighted_image(c, self._rows[row], mask_seed=mask_seed)
        return np.ascontiguousarray(flip(img, FLIPS[flip_k]))

    def __getitem__(self, i: int):
        img = _pil(self.image(int(i)))
        return (self.transform(img) if self.transform else img), int(i) // FRACTALDB_INSTANCES


class FixedImages(Dataset):
    """The default image of every category (pre-training top-1 is measured on these)."""

    def __init__(self, source: FractalSource, transform=None):
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        img = _pil(self.source.fixed_image(int(i)))
        return (self.transform(img) if self.transform else img), int(i)


def _category_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ParamError("data", f"not a folder: {root}")
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not dirs:
        raise ParamError("data", f"{root} holds no category folders")
    return dirs


class MultiViewDataset(Dataset):
    """3D-OFDB views: ``root/<category>/<view>.png``; item i is a random view of category i."""

    def __init__(self, root: str | os.PathLike, transform=None, limit: int | None = None):
        self.root = Path(root)
        dirs = _category_dirs(self.root)[:limit]
        self.views = []
        for d in dirs:
            files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ParamError("data", f"{d} holds no images")
            self.views.append(files)
        self.classes = [d.name for d in dirs]
        self.num_classes = len(dirs)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int):
        files = self.views[int(i)]
        with Image.open(files[random.randrange(len(files))]) as im:
            img = im.convert("RGB")
        return (self.transform(img) if self.transform else img), int(i)


def folder_digest(root: str | os.PathLike) -> str:
    """sha256 of ``root/manifest.json`` when there is one, else of the sorted relative file list."""
    root = Path(root)
    manifest = root / "manifest.json"
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0")
    return h.hexdigest()


def pretrain_datasets(cfg, transform, eval_transform):
    """Build the pre-training source named by ``cfg.data``.

    Returns:
        (train dataset, eval dataset or None, number of classes, data manifest hash).
    """
    data = cfg.data
    if data in ("ofdb", "fractaldb"):
        source = FractalSource(
            load_categories(cfg.categories, cfg.params),
            cfg.render_size,
            cfg.render_points,
            cfg.render_pad,
            cfg.a_weight,
        )
        if data == "ofdb":
            train = OFDBDataset(source, cfg.augment, transform)
        else:
            if cfg.augment != "default":
                raise ParamError("augment", "fractaldb already holds its 1,000 instances; use 'default'")
            train = FractalDBDataset(source, transform)
        return train, FixedImages(source, eval_transform), len(source), source.digest()
    if cfg.augment != "default":
        raise ParamError("augment", f"instance augmentations need in-memory fractals, not {data!r}")
    if data.startswith(MULTIVIEW_PREFIX):
        path = data[len(MULTIVIEW_PREFIX) :]
        train = MultiViewDataset(path, transform, limit=cfg.categories)
        return train, None, train.num_classes, folder_digest(path)
    path = Path(data)
    if not path.is_dir():
        raise ParamError(
            "data", f"must be ofdb, fractaldb, multiview:PATH or an ImageFolder PATH; got {data!r}"
        )
    from torchvision.datasets import ImageFolder

    _category_dirs(path)
    train = ImageFolder(str(path), transform=transform)
    return train, None, len(train.classes), folder_digest(path)
