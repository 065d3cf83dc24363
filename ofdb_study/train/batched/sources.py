"""Device-resident sources of the batched pipeline (``train.batched``).

A source turns the loader's sample keys ((index, sample seed) per sample, ``runtime.StreamBatches``)
into uint8 images (B, C, S, S) and labels (B,) on the model's device (``batch(keys, gen)``); the
images before augmentation are the loader dataset's own bytes for the same choices.

* ``FractalBatches`` (``ofdb`` and ``1pfrac`` with every Table-1 option, ``fractaldb``), over the
  dataset's ``fractals.datasets.FractalSource``: ``default``, ``rotation`` and ``texture`` keep the
  source's fixed images (C, S, S) (``fixed_image``: OFDB's, or the images 1p-frac's generator
  kept), ``fluctuation`` the 25 weight rows' images of each category (``row_image``);
  ``pattern`` and ``both`` keep the categories' points as last-writer tables on the device
  (``draw.PatchTables``) and stamp fresh masks per sample (``pattern_image``);
  ``fractaldb`` keeps the tables of the 25 rows of every category (``row_points``) and stamps each
  instance's masks (``datasets.fractaldb_mask_seed``) and flip per batch
  (``datasets.fractaldb_instance``: ``FractalDBDataset``'s rule).
* ``StoredBatches`` (ImageFolder trees and ``multiview:`` 3D-OFDB views): every image decoded once
  into one uint8 tensor, on the device when it fits its share of the memory, else (with CUDA) in
  pinned host memory, gathered per batch and copied without blocking. All images must have one
  size (else a ParamError naming ``pipeline``); gray ('L') trees and 3D views (read as gray, as
  ``MultiViewDataset`` reads them) are kept with one channel.
* ``PatternViews`` (``multiview:`` with ``augment=pattern``): every view's lit pixels as a
  last-writer table (no flip), stamped per sample with fresh masks (``ofdb3d.pattern_view``).
* ``ArrayBatches`` (fine-tuning sets in memory, ``downstream.ArrayDataset``: Fashion-MNIST, the
  CIFARs): the training images as one uint8 tensor (gray kept with one channel, as the loader's
  RGB conversion repeats it), gathered per batch.

Per-sample choices (the fluctuation row, the flip, the pattern seed, the texture grid, the view)
are counter-based draws from the sample seed (``draw.sample_draws``), not the loader's
NumPy calls: the batched pipeline sees the same categories in the same order as the loader, with
other instances drawn from the same distributions. Texture grain comes from the device generator.

``BATCHED_SOURCES`` holds the source of each pre-training data kind (``fractals.kinds.KINDS``),
keyed by its name, the ``kind`` the loader's training set carries (``pretrain_data``).

What does not fit: stored data may take ``DATA_SHARE`` of the free device memory (CUDA) or of the
available host memory. A source that needs more raises ``DoesNotFit`` (a ``ParamError`` naming
``pipeline``) while it is built, before anything is written.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from ...errors import ParamError
from ...fractals.datasets import fractaldb_instance, fractaldb_mask_seed
from ...fractals.defaults import FRACTALDB_INSTANCES, FRACTALDB_ROWS
from ...fractals.render import FLIPS
from ..runtime import upload
from .draw import (
    PatchTables,
    bounded,
    flip_batch,
    pattern_seeds,
    sample_draws,
    texture_batch,
    texture_draws,
    threads,
)

#: Share of the free device memory (CUDA) or available host memory that stored data may take.
DATA_SHARE = 0.4


class DoesNotFit(ParamError):
    """The batched pipeline's data needs more memory than its share."""

    def __init__(self, what: str, need: int, budget: int, where: str):
        super().__init__(
            "pipeline",
            f"the batched pipeline needs {need / 2**30:.2f} GiB for {what} on {where} but may use "
            f"{budget / 2**30:.2f} GiB there ({DATA_SHARE:.0%} of what is free); use --pipeline loader",
        )


# ---- memory ---------------------------------------------------------------------------------------
def _host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def data_budget(device: torch.device) -> int:
    """Bytes the stored data may take on ``device``: ``DATA_SHARE`` of what is free there."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * DATA_SHARE)
    return int(_host_available() * DATA_SHARE)


class _Budget:
    """Counts the bytes a source takes on ``device`` and stops it past ``data_budget``."""

    def __init__(self, device: torch.device, what: str):
        self.device, self.what, self.used = device, what, 0
        self.limit = data_budget(device)

    def take(self, nbytes: int) -> None:
        self.used += int(nbytes)
        if self.used > self.limit:
            raise DoesNotFit(self.what, self.used, self.limit, str(self.device))


#: Point sets or images computed at a time while building (200k points take 0.8 MB each on the host).
_CHUNK = 256


# ---- fractal sources ------------------------------------------------------------------------------
class FractalBatches:
    """Batches of an in-memory ``OFDBDataset`` (OFDB or 1p-frac) or ``FractalDBDataset`` on ``device``.

    Args:
        dataset: the loader pipeline's dataset (its ``fractals.datasets.FractalSource`` and, for
            OFDB, its Table-1 option); the batched images before augmentation are the same pictures.
        device: where tables, images and batches live.
    """

    def __init__(self, dataset, device: torch.device):
        self.dataset, self.device = dataset, device
        self.source = src = dataset.source
        self.size, self.channels, self.num_classes = src.size, 1, len(src)
        self.kind = "fractaldb" if dataset.kind == "fractaldb" else dataset.augment
        budget = _Budget(device, f"the {self.kind} data of {len(src)} categories")
        cats = list(range(len(src)))
        rows = [(c, r) for c in cats for r in range(FRACTALDB_ROWS)]  # item c * ROWS + r
        self.tables = self.images = None
        if self.kind in ("fractaldb", "pattern", "both"):  # masks stamped per sample
            if self.kind == "fractaldb":
                items, point_fn = rows, lambda cr: src.row_points(*cr, cache=False)
            else:
                items, point_fn = cats, lambda c: src.points(c, cache=False)
            self.tables = PatchTables(src.size, device, budget)
            for a in range(0, len(items), _CHUNK):
                for pts in threads(point_fn, items[a : a + _CHUNK]):
                    self.tables.add(pts)
            self.tables.finish()
        else:  # the source's own images with their fixed masks (fluctuation: the 25 rows of each)
            if self.kind == "fluctuation":
                items, image_fn = rows, lambda cr: src.row_image(*cr, cache=False)
            else:
                items, image_fn = cats, lambda c: src.fixed_image(c, cache=False)
            s = src.size
            budget.take(len(items) * s * s)
            self.images = torch.empty((len(items), s, s), dtype=torch.uint8, device=device)
            for a in range(0, len(items), _CHUNK):
                part = np.stack(threads(image_fn, items[a : a + _CHUNK]))
                self.images[a : a + len(part)] = torch.from_numpy(part).to(device)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def nbytes(self) -> int:
        held = [self.tables, self.images]
        return sum(int(t.nbytes) for t in held if t is not None)

    def _fractaldb(self, idx: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """FractalDB's instances ``idx`` (``FractalDBDataset``'s items) and their categories."""
        cats, inst = np.divmod(idx, FRACTALDB_INSTANCES)
        drawn = [fractaldb_instance(j) for j in inst]  # (row, render, flip name)
        rows = np.array([w for w, _, _ in drawn], dtype=np.int64)
        seeds = [fractaldb_mask_seed(self.source.seed, int(c), w, r) for c, (w, r, _) in zip(cats, drawn)]
        img = self.tables.stamp(cats * FRACTALDB_ROWS + rows, seeds)
        return flip_batch(img, [FLIPS.index(f) for _, _, f in drawn], self.device), cats

    def batch(self, keys: list[tuple[int, int]], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, 1, S, S) and labels (B,) on the device for sample keys [(index, seed)].

        ``gen`` is the batch's generator on the device (texture grain only).
        """
        idx = np.array([k[0] for k in keys], dtype=np.int64)
        seeds = np.array([k[1] for k in keys], dtype=np.uint64)
        if self.kind == "fractaldb":
            img, cats = self._fractaldb(idx)
        else:
            cats = idx
            if self.kind == "fluctuation":
                row = bounded(sample_draws(seeds, 0), FRACTALDB_ROWS)
                img = self.images[upload(torch.from_numpy(cats * FRACTALDB_ROWS + row), self.device)]
            elif self.kind in ("pattern", "both"):
                img = self.tables.stamp(cats, pattern_seeds(seeds))
            else:
                img = self.images[upload(torch.from_numpy(cats), self.device)]
            if self.kind == "rotation":
                img = flip_batch(img, bounded(sample_draws(seeds, 1), len(FLIPS)), self.device)
            if self.kind in ("texture", "both"):
                img = texture_batch(img, *texture_draws(seeds), gen)
        labels = upload(torch.from_numpy(cats), self.device)
        return img.unsqueeze(1), labels


# ---- decoded image trees ----------------------------------------------------------------------------
class _Grouped:
    """Image files grouped by item (``files[i]``: the images item i may yield, one for ImageFolder,
    a category's views for ``multiview``), all of one size; a sample picks one by its seed."""

    def __init__(self, files: list[list[str]], labels, device: torch.device, what: str):
        self.device, self.what = device, what
        self.labels_cpu = np.asarray(labels, dtype=np.int64)
        self.counts = np.array([len(f) for f in files], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.flat = [p for group in files for p in group]
        self.modes = threads(_mode_and_size, self.flat)
        sizes = {m[1] for m in self.modes}
        if len(sizes) > 1:
            raise ParamError(
                "pipeline",
                f"the batched pipeline needs images of one size; {what} has {len(sizes)} sizes "
                f"(e.g. {sorted(sizes)[:3]}); use --pipeline loader",
            )
        w, h = sizes.pop()
        self.size = (h, w)

    def __len__(self) -> int:
        return len(self.counts)

    def pick(self, keys: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """(image rows (B,), sample seeds (B,), labels (B,) on the device) of sample keys."""
        idx = np.array([k[0] for k in keys], dtype=np.int64)
        seeds = np.array([k[1] for k in keys], dtype=np.uint64)
        rows = self.offsets[idx] + bounded(sample_draws(seeds, 5), self.counts[idx])
        return rows, seeds, upload(torch.from_numpy(self.labels_cpu[idx]), self.device)


class StoredBatches(_Grouped):
    """Batches of an ImageFolder tree or of 3D-OFDB views, decoded once into one uint8 tensor.

    Args:
        files: image paths, grouped by item (``_Grouped``).
        labels: (len(files),) labels.
        device: the model's device; the images live there when they fit, else (CUDA only) in
            pinned host memory.
        what: the data in words, for errors.
        gray: keep one channel (files read as gray, as ``MultiViewDataset`` does); None: when
            every file is gray ('L'), the loader's RGB conversion repeating that channel.
    """

    def __init__(
        self, files: list[list[str]], labels, device: torch.device, what: str, gray: bool | None = None
    ):
        super().__init__(files, labels, device, what)
        if gray is None:
            gray = all(m[0] == "L" for m in self.modes)
        self.channels = 1 if gray else 3
        h, w = self.size
        flat = self.flat
        need = len(flat) * self.channels * h * w
        home = device
        limit = data_budget(device)
        if need > limit:
            host = data_budget(torch.device("cpu"))
            if device.type != "cuda" or need > host:
                raise DoesNotFit(what, need, limit, str(device))
            home = torch.device("cpu")
        pinned = home.type == "cpu" and device.type == "cuda"
        self.images = torch.empty((len(flat), self.channels, h, w), dtype=torch.uint8, pin_memory=pinned)
        mode = "L" if gray else "RGB"

        def load(i: int) -> None:
            with Image.open(flat[i]) as im:
                arr = np.array(im.convert(mode))
            self.images[i] = torch.from_numpy(arr.reshape(h, w, -1)).permute(2, 0, 1)

        threads(load, range(len(flat)))
        if home.type == "cuda":
            self.images = self.images.to(device)
        self.where = str(home) + (" (pinned)" if pinned else "")

    @property
    def nbytes(self) -> int:
        return int(self.images.numel())

    def batch(self, keys: list[tuple[int, int]], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, C, H, W) and labels (B,) on the device; an item with several images
        (a category's views) yields one chosen by its sample seed."""
        pick, _, labels = self.pick(keys)
        if self.images.device == self.device:
            img = self.images[upload(torch.from_numpy(pick), self.device)]
        else:
            img = upload(self.images[torch.from_numpy(pick)], self.device)
        return img, labels


class PatternViews(_Grouped):
    """Batches of 3D-OFDB views under the random pattern (``multiview:PATH``, ``augment=pattern``).

    Every view's lit pixels (``ofdb3d.view_pixels`` of the view read as gray, as the loader reads
    it) become one last-writer table on the device (no flip); a sample takes one view of its
    category and stamps it with fresh masks: ``ofdb3d.pattern_view``'s bytes for that view and seed.

    Args:
        dataset: a ``pretrain_data.MultiViewDataset`` with ``augment="pattern"``.
        device: where the tables and batches live.
    """

    def __init__(self, dataset, device: torch.device):
        from ...fractals.ofdb3d import view_pixels

        what = f"the views under {dataset.root}"
        files = [[str(p) for p in v] for v in dataset.views]
        super().__init__(files, range(len(files)), device, what)
        h, w = self.size
        if h != w:
            raise ParamError(
                "pipeline", f"3D views must be square for the random pattern; {what} are {w}x{h}"
            )
        self.channels = 1

        def pixels(path: str):
            with Image.open(path) as im:
                return view_pixels(np.asarray(im.convert("L")))

        self.tables = PatchTables(h, device, _Budget(device, what), flip=False)
        for a in range(0, len(self.flat), _CHUNK):
            for px in threads(pixels, self.flat[a : a + _CHUNK]):
                self.tables.add(px)
        self.tables.finish()

    @property
    def nbytes(self) -> int:
        return self.tables.nbytes

    def batch(self, keys: list[tuple[int, int]], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, 1, S, S) and labels (B,) on the device: one view of each sample's
        category, re-stamped with the masks of its pattern seed."""
        pick, seeds, labels = self.pick(keys)
        return self.tables.stamp(pick, pattern_seeds(seeds)).unsqueeze(1), labels


# ---- fine-tuning sets in memory ----------------------------------------------------------------------
class ArrayBatches:
    """Batches of a fine-tuning set held in memory (``downstream.ArrayDataset``).

    Args:
        dataset: the training set: uint8 images (N, H, W) gray or (N, H, W, 3), labels (N,).
        device: the model's device; the images live there (they are small: Fashion-MNIST's 60,000
            training images are 47 MB) unless they exceed its share of the memory.
    """

    def __init__(self, dataset, device: torch.device):
        images = np.asarray(dataset.images)
        if (
            images.dtype != np.uint8
            or images.ndim not in (3, 4)
            or (images.ndim == 4 and images.shape[-1] != 3)
        ):
            raise ParamError(
                "pipeline", f"no batched source for images of shape {images.shape} ({images.dtype})"
            )
        self.device = device
        x = torch.from_numpy(np.ascontiguousarray(images))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
        limit = data_budget(device)
        if x.numel() > limit:
            raise DoesNotFit("the fine-tuning images", int(x.numel()), limit, str(device))
        self.images = x.to(device)
        self.labels = torch.from_numpy(np.asarray(dataset.labels, dtype=np.int64)).to(device)
        self.where = str(device)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return int(self.images.numel())

    def batch(self, keys: list[tuple[int, int]], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, C, H, W) and labels (B,) on the device for the keys' indices."""
        idx = upload(torch.tensor([k[0] for k in keys], dtype=torch.int64), self.device)
        return self.images[idx], self.labels[idx]


def _mode_and_size(path: str) -> tuple[str, tuple[int, int]]:
    with Image.open(path) as im:
        return ("L" if im.mode in ("L", "1") else im.mode), im.size


def _views(dataset, device: torch.device):
    """3D-OFDB views (``MultiViewDataset``): re-stamped under the random pattern, else as stored."""
    if dataset.augment == "pattern":
        return PatternViews(dataset, device)
    files = [[str(p) for p in v] for v in dataset.views]
    return StoredBatches(files, range(len(files)), device, f"the views under {dataset.root}", gray=True)


def _tree(dataset, device: torch.device):
    """An ImageFolder tree (torchvision's ``ImageFolder``)."""
    files = [[str(p)] for p, _ in dataset.samples]
    return StoredBatches(files, [t for _, t in dataset.samples], device, f"the tree {dataset.root}")


#: The batched source of each pre-training data kind (``fractals.kinds.KINDS``), keyed by its name:
#: ``(the loader's training set, device) -> source``.
BATCHED_SOURCES = {
    "ofdb": FractalBatches,
    "fractaldb": FractalBatches,
    "1pfrac": FractalBatches,
    "multiview": _views,
    "folder": _tree,
}


def batched_source(dataset, device: torch.device):
    """The device-resident source of a pre-training dataset built by ``pretrain_data`` (its
    ``kind``'s ``BATCHED_SOURCES`` entry; an ImageFolder made elsewhere is the ``folder`` kind), or
    of a fine-tuning set in memory (``downstream.ArrayDataset``).

    Raises:
        DoesNotFit: the data needs more than its memory share.
        ParamError: a tree whose images differ in size, or a dataset with no batched source.
    """
    from ..downstream import ArrayDataset

    if isinstance(dataset, ArrayDataset):
        return ArrayBatches(dataset, device)
    kind = getattr(dataset, "kind", "folder" if hasattr(dataset, "samples") else None)
    if kind not in BATCHED_SOURCES:
        raise ParamError("pipeline", f"no batched source for {type(dataset).__name__}; use --pipeline loader")
    return BATCHED_SOURCES[kind](dataset, device)
