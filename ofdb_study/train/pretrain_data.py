"""Pre-training sources as torch Datasets: fractals rendered in memory, ImageFolder trees, 3D views.

* ``ofdb``: one image per category (2D-OFDB), with a Table-1 option (``augment.INSTANCE_AUGMENTS``)
  deciding what a category yields each time it is drawn. Epoch = one pass over the categories.
* ``fractaldb``: FractalDB's 1,000 instances per category (25 weight rows x 10 patch renders x 4
  flips), rendered on demand from cached points, never written to disk. Epoch = N x 1,000.
* ``1pfrac``: 1p-frac (``fractals.onepfrac``): N perturbations of one fractal, one image each,
  generated in memory with seed 0 (the bytes ``build 1pfrac --seed 0`` writes at the same
  settings); ``delta`` and ``sigma`` come from the config, size / points / pad from the render
  settings (512 px, 100,000 points, pad 6 at ``paper``). A Table-1 option applies as for ``ofdb``.
* ``PATH``: an ImageFolder tree ``PATH/NNNNN/*.png`` (what ``fractals.build`` writes).
* ``multiview:PATH``: 3D-OFDB views, a folder per category holding its 12 views; each draw of a
  category returns one of its views at random; with ``augment="pattern"`` its lit pixels are
  re-stamped with fresh random 3x3 masks (``ofdb3d.pattern_view``).

``LOADER_SOURCES`` holds the source of each kind (``fractals.kinds.KINDS``), keyed by its name; each
training set it builds carries that name as ``kind`` (the batched pipeline's key).

The in-memory images are ``fractals.datasets``' definitions (through its ``FractalSource``), the
same bytes ``python -m ofdb_study build`` writes, and the data hash a run records is the
``dataset_sha256`` of the tree that build would write.

Randomness: a dataset draws from NumPy's global generator (and timm transforms from ``random`` /
``torch``); the training loader seeds all three per sample from (run seed, sample position), so a
sample is the same whatever the worker count, and after a resume.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ParamError, check_positive_int
from ..fractals import render
from ..fractals.build import MANIFEST
from ..fractals.datasets import FractalSource
from ..fractals.defaults import FRACTALDB_FLIPS, FRACTALDB_INSTANCES, FRACTALDB_ROWS, ONEPFRAC_SEED
from ..fractals.kinds import data_forms, data_path, kind_of
from ..fractals.search import first_categories
from ..seeds import SALT_HELD_OUT, mix_seed
from .augment import check_augment, instance_image

try:  # torch is an optional dependency of the package; the sources below need it
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover
    Dataset = object

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: Instance options a multi-view (3D) tree supports.
MULTIVIEW_AUGMENTS = ("default", "pattern")


def _pil(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(gray), mode="L").convert("RGB")


class OnePFracSource(FractalSource):
    """1p-frac in memory: the kept class systems and images of ``onepfrac.generate``.

    A ``FractalSource`` over the class systems (a x 1), whose fixed image of class c is the one
    the generator kept (its own mask seed), so every Table-1 option works as for OFDB.
    """

    def __init__(self, result):
        s = result.settings
        super().__init__(
            [d.system for d in result.classes], s.size, s.points, s.pad, a_weight=1.0, seed=s.seed
        )
        self.result = result
        self._fixed = {c: d.image for c, d in enumerate(result.classes)}

    def digest(self, kind: str = "1pfrac") -> str:
        """sha256 of the settings and the kept systems and mask seeds."""
        h = hashlib.sha256(json.dumps(dataclasses.asdict(self.result.settings), sort_keys=True).encode())
        for d in self.result.classes:
            h.update(d.system.to_rows().tobytes() + int(d.mask_seed).to_bytes(8, "little"))
        return h.hexdigest()


@functools.lru_cache(maxsize=2)
def onepfrac_set(categories: int, delta: float, sigma: float, size: int, points: int, pad: int):
    """``onepfrac.generate`` at these settings and seed ``ONEPFRAC_SEED`` (cached per process)."""
    from ..fractals import onepfrac

    settings = onepfrac.Settings(
        categories=categories, delta=delta, sigma=sigma, seed=ONEPFRAC_SEED, size=size, points=points, pad=pad
    )
    return onepfrac.generate(settings)


class OFDBDataset(Dataset):
    """OFDB-N in memory: item i is category i under a Table-1 option -> (tensor (3, S', S'), i).

    Also 1p-frac's (over its ``OnePFracSource``; ``kind`` is then ``1pfrac``).
    """

    kind = "ofdb"

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

    kind = "fractaldb"

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


#: Salt of the held-out evaluation seeds (``seeds.SALT_HELD_OUT``): no training sample draws from it.
HELD_OUT_SALT = SALT_HELD_OUT


#: Held-out renders of each kind of own task: the category's one system with fresh masks and a view
#: it never trained on, or a weight row drawn per image (with a flip for FractalDB) and fresh masks.
HELD_OUT_TASKS = ("ofdb", "fluctuation", "fractaldb")
#: Area of the held-out crops of a one-image row (fraction of the render): below every training crop
#: of ``mini`` and ``smoke`` (80-100 %), so the task asks for the shape seen closer, not the image
#: the row memorised.
HELD_OUT_CROP = (0.4, 0.7)


def held_out_crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded crop of ``HELD_OUT_CROP`` of the area (aspect 3:4 to 4:3), resized back to (S, S)."""
    size = img.shape[0]
    area = rng.uniform(*HELD_OUT_CROP) * size * size
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    w = int(np.clip(round(np.sqrt(area * aspect)), 1, size))
    h = int(np.clip(round(np.sqrt(area / aspect)), 1, size))
    x, y = int(rng.integers(size - w + 1)), int(rng.integers(size - h + 1))
    crop = Image.fromarray(np.ascontiguousarray(img[y : y + h, x : x + w]))
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


class HeldOutRenders(Dataset):
    """Pre-training's own task on images it never trained on: ``per_category`` per category.

    * ``ofdb`` (the default, pattern, texture, both and rotation options, and 1p-frac): the
      category's points drawn with fresh seeded 3x3 masks and seen through a seeded crop of 40-70 %
      of the image (``held_out_crop``), smaller than any training crop, so a row is read on the
      shape at a view it never trained on, not on the one image it memorised;
    * ``fluctuation``: one of FractalDB's 25 weight rows drawn per image, fresh masks (the option's
      own instances, never one it trained on);
    * ``fractaldb``: held-out instances: a weight row and a flip drawn per image, masks from the
      held-out seed space (never one of the 10 training renders).

    Item ``i`` is category ``i // per_category``; every item is a function of (category, k) only.
    ``digest`` names the set: the source's data hash (``data_hash``, the training data's), the task
    and ``per_category``; the evaluation cache keys on it, since the default and fluctuation tasks
    draw from the same source.
    """

    def __init__(
        self, source: FractalSource, task: str, per_category: int, transform=None, *, data_hash: str
    ):
        if task not in HELD_OUT_TASKS:
            raise ParamError("data", f"held-out renders exist for {', '.join(HELD_OUT_TASKS)}, not {task!r}")
        check_positive_int("eval_per_category", per_category)
        self.source, self.task, self.per_category, self.transform = source, task, per_category, transform
        name = f"{data_hash}:held-out:{task}:{per_category}:{HELD_OUT_SALT}:crop{HELD_OUT_CROP}"
        self.digest = hashlib.sha256(name.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.source) * self.per_category

    def image(self, i: int) -> np.ndarray:
        c, k = divmod(int(i), self.per_category)
        seed = mix_seed(HELD_OUT_SALT, c, k)
        rng = np.random.default_rng(seed)
        if self.task == "ofdb":
            return held_out_crop(self.source.pattern_image(c, seed), rng)
        row, flip_k = int(rng.integers(FRACTALDB_ROWS)), int(rng.integers(FRACTALDB_FLIPS))
        img = render.draw(self.source.row_points(c, row), mode="patch", mask_seed=int(rng.integers(2**62)))
        if self.task == "fluctuation":
            return img
        return np.ascontiguousarray(render.flip(img, render.FLIPS[flip_k]))

    def __getitem__(self, i: int):
        img = _pil(self.image(int(i)))
        return (self.transform(img) if self.transform else img), int(i) // self.per_category


def _category_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ParamError("data", f"not a folder: {root}")
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not dirs:
        raise ParamError("data", f"{root} holds no category folders")
    return dirs


def tree_categories(data: str | None, asked: int | None, default: int) -> int:
    """The category count of a pre-training on ``data``, from the tree when ``data`` is one.

    An ImageFolder tree (``PATH``) has one category per class folder, whatever a profile says:
    its count is the tree's, and an ``asked`` count must equal it. A 3D-view tree
    (``multiview:PATH``, a kind with ``first_n``) trains on its first N folders: N is ``asked`` (at most the folders it
    holds), else the profile's ``default`` or the tree's count where that is smaller. Data that is
    not a folder tree, or a tree that is not there (``pretrain_datasets`` names it), keeps
    ``asked``, else ``default``.

    Args:
        data: the ``data`` setting (``ofdb``, ``PATH``, ``multiview:PATH``, ...).
        asked: the count given by the user (``--categories``), or None.
        default: the profile's count.

    Returns:
        The count the run records, its tag names and its classifier has.

    Raises:
        ParamError: ``asked`` differs from an ImageFolder tree's class folders, or is more than a
            3D-view tree holds.
    """
    wanted = default if asked is None else asked
    path = data_path(data)
    if not path:
        return wanted
    multiview = kind_of(data).first_n
    root = Path(path)
    try:
        held = sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 0
    except OSError:
        held = 0
    if not held:
        return wanted
    if not multiview and asked in (None, held):
        return held
    if multiview and (asked is None or asked <= held):
        return min(wanted, held)
    what, hint = (
        ("3D-view tree", "ask for at most that many")
        if multiview
        else ("ImageFolder tree", "leave --categories out: a tree's class folders are its categories")
    )
    raise ParamError(
        "categories",
        f"--categories {asked} disagrees with the {what} {root}, which holds {held} category folders; {hint}",
    )


class MultiViewDataset(Dataset):
    """3D-OFDB views: ``root/<category>/<view>.png``; item i is a random view of category i.

    ``augment="pattern"`` re-stamps the view's lit pixels with fresh random 3x3 masks (seeded by
    the sample's NumPy stream), the random pattern of the paper's "3D-OFDB w/ Aug".
    """

    kind = "multiview"

    def __init__(
        self, root: str | os.PathLike, transform=None, limit: int | None = None, augment: str = "default"
    ):
        if augment not in MULTIVIEW_AUGMENTS:
            raise ParamError(
                "augment", f"multi-view data takes {' or '.join(MULTIVIEW_AUGMENTS)}, got {augment!r}"
            )
        self.augment = augment
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

    def view(self, i: int) -> np.ndarray:
        """One random view of category ``i`` as stored, or re-stamped (``pattern``): uint8 (S, S)."""
        files = self.views[int(i)]
        with Image.open(files[random.randrange(len(files))]) as im:
            gray = np.asarray(im.convert("L"))
        if self.augment == "pattern":
            from ..fractals import ofdb3d

            seed = int(np.random.randint(0, 2**31 - 1))
            gray = ofdb3d.pattern_view(ofdb3d.view_pixels(gray), gray.shape[0], seed)
        return gray

    def __getitem__(self, i: int):
        img = _pil(self.view(int(i)))
        return (self.transform(img) if self.transform else img), int(i)


def folder_digest(root: str | os.PathLike) -> str:
    """The tree's ``dataset_sha256`` when its manifest has one (the same hash as the in-memory
    source of those images), else sha256 of ``root/manifest.json``, else of the sorted file list."""
    root = Path(root)
    manifest = root / MANIFEST
    if manifest.is_file():
        data = manifest.read_bytes()
        digest = json.loads(data).get("dataset_sha256")
        return digest if digest else hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0")
    return h.hexdigest()


def _onepfrac_sources(cfg, transform, eval_transform):
    result = onepfrac_set(
        cfg.categories, cfg.delta, cfg.sigma, cfg.render_size, cfg.render_points, cfg.render_pad
    )
    source = OnePFracSource(result)
    train = OFDBDataset(source, cfg.augment, transform)
    train.kind = "1pfrac"
    digest = source.digest()
    held_out = HeldOutRenders(source, "ofdb", cfg.eval_per_category, eval_transform, data_hash=digest)
    return train, held_out, len(source), digest


def _searched_sources(cfg, transform, eval_transform):
    """``ofdb`` and ``fractaldb``: the first categories of the exact search (or ``params``)."""
    data = cfg.data
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
    task = "fluctuation" if data == "ofdb" and cfg.augment == "fluctuation" else data
    digest = source.digest(data)
    held_out = HeldOutRenders(source, task, cfg.eval_per_category, eval_transform, data_hash=digest)
    return train, held_out, len(source), digest


def _multiview_sources(cfg, transform, eval_transform):
    path = data_path(cfg.data)
    train = MultiViewDataset(path, transform, limit=cfg.categories, augment=cfg.augment)
    return train, None, train.num_classes, folder_digest(path)


def _folder_sources(cfg, transform, eval_transform):
    data = cfg.data
    if cfg.augment != "default":
        raise ParamError(
            "augment", f"instance augmentations need in-memory fractals or 3D views, not {data!r}"
        )
    path = Path(data)
    if not path.is_dir():
        raise ParamError("data", f"must be {data_forms()} (an ImageFolder tree); got {data!r}")
    from torchvision.datasets import ImageFolder

    _category_dirs(path)
    try:
        train = ImageFolder(str(path), transform=transform)
    except FileNotFoundError as exc:  # a class folder without a single image
        raise ParamError("data", f"{path}: {str(exc).splitlines()[0]}") from None
    train.kind = "folder"
    return train, None, len(train.classes), folder_digest(path)


#: The loader pipeline's source of each data kind (``fractals.kinds.KINDS``), keyed by its name:
#: ``(cfg, transform, eval_transform) -> (train, eval or None, classes, data hash)``.
LOADER_SOURCES = {
    "ofdb": _searched_sources,
    "fractaldb": _searched_sources,
    "1pfrac": _onepfrac_sources,
    "multiview": _multiview_sources,
    "folder": _folder_sources,
}


def pretrain_datasets(cfg, transform, eval_transform):
    """Build the pre-training source named by ``cfg.data`` (its kind's ``LOADER_SOURCES`` entry).

    Returns:
        (train dataset, eval dataset or None, number of classes, data manifest hash); the train
        dataset's ``kind`` names its data kind.
    """
    return LOADER_SOURCES[kind_of(cfg.data).name](cfg, transform, eval_transform)
