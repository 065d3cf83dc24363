"""Device-resident pre-training sources and the batched pipeline (``--pipeline batched``).

``choose_pipeline`` decides, per run, between the loader and this pipeline (``auto``: batched on
CUDA, loader elsewhere, and the loader when the batched pipeline cannot be built);
``check_resumed`` keeps a resumed run on the pipeline it started with.

``DeviceBatches`` takes the loader's sample keys (``runtime.StreamBatches``: (index, sample seed)
per sample), asks a source for uint8 images (B, C, S, S) and labels (B,) on the model's device, and
augments them there (``gpu_augment.BatchAugment``).

* ``FractalBatches`` (``ofdb`` with every Table-1 option, ``fractaldb``): the categories' points
  turned once into last-writer tables on the device (``device_draw.PatchTables``), from which patch
  images are stamped with any mask seed, byte-identical to ``render.draw``. ``ofdb`` keeps the
  fixed images (C, S, S) (``default``, ``rotation``, ``texture``), the tables of the plain points
  (``pattern``, ``both``: fresh masks per sample) or the 25 weight rows' images with the fixed masks
  (``fluctuation``); ``fractaldb`` keeps the tables of the 25 rows of every category and stamps each
  instance's masks and flip per batch (``FractalDBDataset.instance``: the loader's rule).
* ``StoredBatches`` (ImageFolder trees and ``multiview:`` 3D-OFDB views): every image decoded once
  into one uint8 tensor, on the device when it fits its share of the memory, else (with CUDA) in
  pinned host memory, gathered per batch and copied without blocking. All images must have one
  size (else a ParamError naming ``pipeline``); gray ('L') trees are kept with one channel.

Per-sample choices (the fluctuation row, the flip, the pattern seed, the texture grid, the view)
are counter-based draws from the sample seed (``device_draw.sample_draws``), not the loader's
NumPy calls: the batched pipeline sees the same categories in the same order as the loader, with
other instances drawn from the same distributions. Texture grain comes from the device generator.

What does not fit: stored data may take ``DATA_SHARE`` of the free device memory (CUDA) or of the
available host memory. A source that needs more raises ``DoesNotFit`` (a ``ParamError`` naming
``pipeline``) while it is built, before anything is written; ``--pipeline auto`` then falls back to
the loader (one line on stderr), ``--pipeline batched`` stops with that line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from ..errors import ParamError
from ..fractals.ifs import fluctuation_weights
from . import augment, gpu_augment
from .augment import FLIPS
from .device_draw import (
    PatchTables,
    bounded,
    flip_batch,
    sample_draws,
    texture_batch,
    texture_draws,
    threads,
)
from .runtime import upload

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
    def __init__(self, device: torch.device, what: str):
        self.device, self.what, self.used = device, what, 0
        self.limit = data_budget(device)

    def take(self, nbytes: int) -> None:
        self.used += int(nbytes)
        if self.used > self.limit:
            raise DoesNotFit(self.what, self.used, self.limit, str(self.device))

    def give(self, nbytes: int) -> None:
        self.used -= int(nbytes)


#: Point sets computed at a time while building (200k points take 0.8 MB each on the host).
_CHUNK = 256


# ---- fractal sources ------------------------------------------------------------------------------
class FractalBatches:
    """Batches of an in-memory ``OFDBDataset`` or ``FractalDBDataset`` made on ``device``.

    Args:
        dataset: the loader pipeline's dataset (its ``FractalSource`` and, for OFDB, its Table-1
            option); the batched images before augmentation are the same pictures.
        device: where tables, images and batches live.
    """

    def __init__(self, dataset, device: torch.device):
        from .pretrain_data import FractalDBDataset

        self.dataset, self.device = dataset, device
        src = dataset.source
        self.size, self.channels, self.num_classes = src.size, 1, len(src)
        self.kind = "fractaldb" if isinstance(dataset, FractalDBDataset) else dataset.augment
        budget = _Budget(device, f"the {self.kind} data of {len(src)} categories")
        cats = list(range(len(src)))
        rows = fluctuation_weights()
        self.n_rows = len(rows)
        self.tables = self.images = None
        if self.kind in ("fractaldb", "fluctuation"):  # item c * n_rows + r: category c, row r
            items = [(c, r) for c in cats for r in range(self.n_rows)]
            point_fn = lambda cr: src.weighted_points(cr[0], rows[cr[1]], cache=False)  # noqa: E731
            seeds = [src.fixed_seed(c) for c, _ in items]
        else:
            items, seeds = cats, [src.fixed_seed(c) for c in cats]
            point_fn = lambda c: src.points(c, cache=False)  # noqa: E731
        if self.kind in ("fractaldb", "pattern", "both"):  # masks stamped per sample
            self.tables = PatchTables(src.size, device, budget)
            for a in range(0, len(items), _CHUNK):
                for pts in threads(point_fn, items[a : a + _CHUNK]):
                    self.tables.add(pts)
            self.tables.finish()
        else:  # the fixed masks: images, stamped once (fluctuation: the 25 rows of each category)
            s = src.size
            budget.take(len(items) * s * s)
            self.images = torch.empty((len(items), s, s), dtype=torch.uint8, device=device)
            for a in range(0, len(items), _CHUNK):
                part = PatchTables(s, device, budget)
                for pts in threads(point_fn, items[a : a + _CHUNK]):
                    part.add(pts)
                part.finish()
                rows_a = np.arange(len(part))
                self.images[a : a + len(part)] = part.stamp(rows_a, seeds[a : a + len(part)])
                budget.give(part.nbytes)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def nbytes(self) -> int:
        return sum(int(t.nbytes) for t in (self.tables, self.images) if t is not None)

    def batch(self, keys: list[tuple[int, int]], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, 1, S, S) and labels (B,) on the device for sample keys [(index, seed)].

        ``gen`` is the batch's generator on the device (texture grain only).
        """
        idx = np.array([k[0] for k in keys], dtype=np.int64)
        seeds = np.array([k[1] for k in keys], dtype=np.uint64)
        if self.kind == "fractaldb":
            inst = np.array([self.dataset.instance(i) for i in idx], dtype=np.int64).reshape(-1, 4)
            cats = inst[:, 0]
            img = self.tables.stamp(cats * self.n_rows + inst[:, 1], inst[:, 2])
            img = flip_batch(img, inst[:, 3], self.device)
        else:
            cats = idx
            if self.kind == "fluctuation":
                row = bounded(sample_draws(seeds, 0), self.n_rows)
                img = self.images[upload(torch.from_numpy(cats * self.n_rows + row), self.device)]
            elif self.kind in ("pattern", "both"):
                img = self.tables.stamp(cats, (sample_draws(seeds, 2) >> np.uint64(2)).astype(np.int64))
            else:
                img = self.images[upload(torch.from_numpy(cats), self.device)]
            if self.kind == "rotation":
                img = flip_batch(img, bounded(sample_draws(seeds, 1), len(FLIPS)), self.device)
            if self.kind in ("texture", "both"):
                img = texture_batch(img, *texture_draws(seeds), gen)
        labels = upload(torch.from_numpy(cats), self.device)
        return img.unsqueeze(1), labels


# ---- decoded image trees ----------------------------------------------------------------------------
class StoredBatches:
    """Batches of an ImageFolder tree or of 3D-OFDB views, decoded once into one uint8 tensor.

    Args:
        files: image paths, grouped by item: ``files[i]`` lists the images item i may yield (one
            for ImageFolder, a category's views for ``multiview``).
        labels: (len(files),) labels.
        device: the model's device; the images live there when they fit, else (CUDA only) in
            pinned host memory.
    """

    def __init__(self, files: list[list[str]], labels, device: torch.device, what: str):
        self.device = device
        self.labels_cpu = np.asarray(labels, dtype=np.int64)
        self.counts = np.array([len(f) for f in files], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        flat = [p for group in files for p in group]
        modes = threads(_mode_and_size, flat)
        sizes = {m[1] for m in modes}
        if len(sizes) > 1:
            raise ParamError(
                "pipeline",
                f"the batched pipeline needs images of one size; {what} has {len(sizes)} sizes "
                f"(e.g. {sorted(sizes)[:3]}); use --pipeline loader",
            )
        gray = all(m[0] == "L" for m in modes)
        self.channels = 1 if gray else 3
        w, h = sizes.pop()
        self.size = (h, w)
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

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def nbytes(self) -> int:
        return int(self.images.numel())

    def batch(self, keys: list[tuple[int, int]], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, C, H, W) and labels (B,) on the device; an item with several images
        (a category's views) yields one chosen by its sample seed."""
        idx = np.array([k[0] for k in keys], dtype=np.int64)
        seeds = np.array([k[1] for k in keys], dtype=np.uint64)
        pick = self.offsets[idx] + bounded(sample_draws(seeds, 5), self.counts[idx])
        if self.images.device == self.device:
            img = self.images[upload(torch.from_numpy(pick), self.device)]
        else:
            img = upload(self.images[torch.from_numpy(pick)], self.device)
        return img, upload(torch.from_numpy(self.labels_cpu[idx]), self.device)


def _mode_and_size(path: str) -> tuple[str, tuple[int, int]]:
    with Image.open(path) as im:
        return ("L" if im.mode in ("L", "1") else im.mode), im.size


def batched_source(dataset, device: torch.device):
    """The device-resident source of a pre-training dataset built by ``pretrain_data``.

    Raises:
        DoesNotFit: the data needs more than its memory share.
        ParamError: a tree whose images differ in size, or a dataset with no batched source.
    """
    from .pretrain_data import FractalDBDataset, MultiViewDataset, OFDBDataset

    if isinstance(dataset, (OFDBDataset, FractalDBDataset)):
        return FractalBatches(dataset, device)
    if isinstance(dataset, MultiViewDataset):
        files = [[str(p) for p in v] for v in dataset.views]
        return StoredBatches(files, range(len(files)), device, f"the views under {dataset.root}")
    samples = getattr(dataset, "samples", None)
    if samples is not None:  # torchvision ImageFolder
        files = [[str(p)] for p, _ in samples]
        return StoredBatches(files, [t for _, t in samples], device, f"the tree {dataset.root}")
    raise ParamError("pipeline", f"no batched source for {type(dataset).__name__}; use --pipeline loader")


# ---- the pipeline --------------------------------------------------------------------------------
def resolve_pipeline(cfg, device: torch.device) -> str:
    """``loader`` or ``batched``: ``auto`` is batched for pre-training on CUDA; fine-tuning reads no
    ``pipeline`` and always uses the loader."""
    if cfg.phase != "pretrain":
        return "loader"
    if cfg.pipeline == "auto":
        return "batched" if device.type == "cuda" else "loader"
    return cfg.pipeline


def choose_pipeline(cfg, train_ds, device: torch.device, dd):
    """(pipeline name, (batched source, batch augmentation) or None), agreed by every rank.

    A batched pipeline that cannot be built (the data do not fit, a tree of mixed image sizes, a
    recipe part it lacks) raises its ParamError when asked for explicitly, and falls back to the
    loader (one line on stderr) under ``auto``.
    """
    if resolve_pipeline(cfg, device) == "loader":
        return "loader", None
    parts, error = None, None
    try:
        aug = gpu_augment.BatchAugment.from_timm(augment.train_transform(cfg))
        parts = (batched_source(train_ds, device), aug)
    except ParamError as exc:
        if exc.param != "pipeline":
            raise
        error = exc
    if dd.world_size > 1:  # one rank that cannot, and none does
        ok = torch.tensor(int(parts is not None), device=device)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if not int(ok) and error is None:
            parts, error = None, ParamError("pipeline", "another rank cannot run the batched pipeline")
    if error is None:
        return "batched", parts
    if cfg.pipeline != "auto":
        raise error
    if dd.main:
        print(f"{error}; --pipeline auto uses the loader instead", file=sys.stderr)
    return "loader", None


def check_resumed(manifest_path: Path, pipeline: str) -> None:
    """A resumed run must make its batches the way it started, as its manifest.json says (a run
    from before the record: loader)."""
    path = Path(manifest_path)
    if not path.is_file():
        return
    was = json.loads(path.read_text()).get("pipeline", "loader")
    if was != pipeline:
        raise ParamError(
            "pipeline",
            f"{path.parent} was started with the {was} pipeline and this process would use {pipeline}; "
            "resume it where the same pipeline is chosen (auto: batched on CUDA, loader elsewhere)",
        )


#: Tags of the batch generators: parameters (CPU) and noise (device), seeded by (seed, step, rank, tag).
PARAM_TAG, NOISE_TAG = 0xBA7C, 0xB015E


class DeviceBatches:
    """The batched pipeline: augmented batches of steps ``start .. stop - 1`` for one rank.

    Each step takes the same sample keys as the loader (``runtime.StreamBatches``), asks the source
    for uint8 images and labels, and augments them with generators seeded by (seed, step, rank), so
    a batch is a function of (seed, step, rank) alone and a resumed run continues exactly.

    Args:
        source: a ``FractalBatches`` or ``StoredBatches``.
        augment: a ``gpu_augment.BatchAugment``.
        seed, batch, start, stop, rank, world: as ``StreamBatches``.
        device: the model's device.

    Yields:
        (float32 images (batch, 3, S, S), int64 labels (batch,)), both on ``device``.
    """

    def __init__(self, source, augment, *, seed, batch, start, stop, device, rank=0, world=1):
        from .runtime import StreamBatches, mix_seed

        self.source, self.augment, self.device = source, augment, device
        self.seed, self.rank, self.start = seed, rank, start
        self.keys = StreamBatches(len(source), batch, seed, start, stop, rank, world)
        self._mix = mix_seed

    def __len__(self) -> int:
        return len(self.keys)

    def generators(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        """(parameter generator on the CPU, noise generator on the device) of ``step``."""
        gen = torch.Generator().manual_seed(self._mix(self.seed, step, self.rank, PARAM_TAG))
        noise = torch.Generator(device=self.device)
        noise.manual_seed(self._mix(self.seed, step, self.rank, NOISE_TAG))
        return gen, noise

    def __iter__(self):
        for step, keys in enumerate(self.keys, start=self.start):
            gen, noise = self.generators(step)
            x, y = self.source.batch(keys, noise)
            yield self.augment(x, gen, noise), y
