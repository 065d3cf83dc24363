"""Pre-training sources as torch Datasets: fractals rendered in memory, ImageFolder trees, 3D views.

* ``ofdb``: one image per category (2D-OFDB), with a Table-1 option (``augment.INSTANCE_AUGMENTS``)
  deciding what a category yields each time it is drawn. Epoch = one pass over the categories.
* ``fractaldb``: FractalDB's 1,000 instances per category (25 weight rows x 10 patch renders x 4
  flips), rendered on demand from cached points, never written to disk. Epoch = N x 1,000.
* ``PATH``: an ImageFolder tree ``PATH/NNNNN/*.png`` (what ``fractals.build`` writes).
* ``multiview:PATH``: 3D-OFDB views, a folder per category holding its 12 views; each draw of a
  category returns one of its views at random.

The in-memory images are ``fractals.datasets``' definitions (through its ``FractalSource``), the
same bytes ``python -m ofdb_study build`` writes, and the data hash a run records is the
``dataset_sha256`` of the tree that build would write.

Randomness: a dataset draws from NumPy's global generator (and timm transforms from ``random`` /
``torch``); the training loader seeds all three per sample from (run seed, sample position), so a
sample is the same whatever the worker count, and after a resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ParamError
from ..fractals.datasets import FractalSource
from ..fractals.defaults import FRACTALDB_INSTANCES
from ..fractals.search import first_categories
from .augment import check_augment, instance_image

try:  # torch is an optional dependency of the package; the sources below need it
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover
    Dataset = object

MULTIVIEW_PREFIX = "multiview:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _pil(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(gray), mode="L").convert("RGB")


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

    def __len__(self) -> int:
        return len(self.source) * FRACTALDB_INSTANCES

    def image(self, i: int) -> np.ndarray:
        """Instance ``i % 1000`` of category ``i // 1000`` (``datasets.fractaldb_instance``), uint8 (S, S)."""
        c, j = divmod(int(i), FRACTALDB_INSTANCES)
        return self.source.fractaldb_image(c, j)

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
    """The tree's ``dataset_sha256`` when its manifest has one (the same hash as the in-memory
    source of those images), else sha256 of ``root/manifest.json``, else of the sorted file list."""
    root = Path(root)
    manifest = root / "manifest.json"
    if manifest.is_file():
        data = manifest.read_bytes()
        digest = json.loads(data).get("dataset_sha256")
        return digest if digest else hashlib.sha256(data).hexdigest()
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
            first_categories(cfg.categories, cfg.params),
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
        return train, FixedImages(source, eval_transform), len(source), source.digest(data)
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
