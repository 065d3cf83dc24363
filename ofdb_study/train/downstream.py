"""Fine-tuning (downstream) datasets: Fashion-MNIST, CIFAR-10/100, any ImageFolder train/val tree.

Files are read with our own small readers (IDX .gz, CIFAR's python pickles) so that any copy in
the standard formats works offline; torchvision is used only to download where asked and a network
exists. ``--train-per-class K`` keeps K training images per class, chosen with a seeded generator.

An explicit ``--data-root`` is the one place looked in (Fashion-MNIST falls back to the system copy
only when none is given). ``--download`` fetches into a hidden staging folder in the data root and
moves the checked files into place, so a failed download (no network, a cut connection, a checksum
mismatch) leaves the data root as it was and ends in one error naming ``--download``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ParamError, check_positive_int
from ..files import missing_folders, remove_empty
from ..seeds import SALT_SUBSET, mix_seed

try:
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover
    Dataset = object

NUM_CLASSES = {"fashion-mnist": 10, "cifar10": 10, "cifar100": 100}
DATASETS = ("fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH")
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


class ArrayDataset(Dataset):
    """Images in memory: uint8 (N, H, W) gray or (N, H, W, 3) colour, labels (N,) -> (tensor, label).

    Gray images are repeated to RGB, since the models take 3 channels.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        if len(images) != len(labels):
            raise ParamError("dataset", f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.transform = images, np.asarray(labels, dtype=np.int64), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        arr = self.images[int(i)]
        img = Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB").convert("RGB")
        return (self.transform(img) if self.transform else img), int(self.labels[int(i)])


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally .gz): unsigned-byte data of any rank -> uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ParamError("dataset", f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ParamError("dataset", f"{path}: header says {dims}, file holds {data.size} bytes")
    return data.reshape(dims)


def _fashion_in(root: Path) -> Path | None:
    """The folder under ``root`` that holds the four Fashion-MNIST files (its usual layouts)."""
    for d in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw"):
        if all((d / f).is_file() for pair in FASHION_FILES.values() for f in pair):
            return d
    return None


def _check_root(data_root: str, download: bool, name: str) -> Path:
    """``data_root`` as a Path; ParamError when it names a file, or a folder that does not exist
    while there is no ``download`` to make it (``name``: the data set, for the message)."""
    root = Path(data_root)
    if root.exists() and not root.is_dir():
        raise ParamError("data_root", f"--data-root {root} is a file, not a folder")
    if not root.exists() and not download:
        raise ParamError(
            "data_root",
            f"--data-root {root} does not exist; pass the folder that holds {name}, "
            f"or add --download to fetch {name} there",
        )
    return root


def _fashion_dir(data_root: str | None, download: bool) -> Path:
    """Where the Fashion-MNIST files are: under an explicit ``data_root`` (never anywhere else),
    else the system copy; ``download`` fetches them into ``data_root`` when they are not there."""
    if data_root:
        root = _check_root(data_root, download, "fashion-mnist")
        found = _fashion_in(root) if root.is_dir() else None
        if found is not None:
            return found
        if download:
            return _download_fashion(root)
        names = ", ".join(f for pair in FASHION_FILES.values() for f in pair)
        raise ParamError(
            "data_root",
            f"--data-root {root} does not hold fashion-mnist (looked for {names} in it, in its "
            f"fashion-mnist/ and in its FashionMNIST/raw/); pass the folder that holds them, add "
            f"--download to fetch them there, or leave --data-root out to read {FASHION_SYSTEM_DIR}",
        )
    found = _fashion_in(FASHION_SYSTEM_DIR)
    if found is not None:
        return found
    if download:
        raise ParamError("download", "--download needs --data-root DIR, the folder to download into")
    raise ParamError(
        "dataset",
        f"fashion-mnist not found in {FASHION_SYSTEM_DIR}; install it with "
        "'apt-get install dataset-fashion-mnist', or pass --data-root DIR holding the four "
        "*-ubyte.gz files, or --data-root DIR --download where a network exists",
    )


#: What a failed download raises: urllib's URLError and socket errors (OSError), http.client's
#: errors for a connection cut mid-file, and torchvision's RuntimeError for a checksum mismatch.
_DOWNLOAD_ERRORS = (OSError, http.client.HTTPException, RuntimeError, EOFError, tarfile.TarError)


def _reason(exc: BaseException) -> str:
    """One line saying why a download failed."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        text = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    else:
        text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _fetch(name: str, root: Path, url: str, fetch, place) -> Path:
    """Download ``name`` into ``root`` through a hidden staging folder, so that a failure leaves
    nothing behind.

    Args:
        name: the data set, for messages and the staging folder's name.
        root: the ``--data-root`` folder (created if missing; removed again if the download fails).
        url: the (first) address fetched, whose host the message names.
        fetch: ``fetch(staging)`` downloads and unpacks into the staging folder (torchvision).
        place: ``place(staging)`` moves the checked files from it into ``root``, returning the
            folder that holds them.

    Raises:
        ParamError: ``data_root`` when ``root`` cannot be written, ``download`` when the download
            fails (no network, a cut connection, a checksum mismatch).
    """
    made = missing_folders(root)
    staging = None
    try:
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=root))
        except OSError as exc:
            why = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
            raise ParamError(
                "data_root",
                f"--data-root {root} cannot be written ({why}); --download needs a folder it can write",
            ) from None
        try:
            fetch(staging)
        except _DOWNLOAD_ERRORS as exc:
            host = urllib.parse.urlsplit(url).hostname or url
            raise ParamError(
                "download",
                f"could not fetch {name} from {host} ({_reason(exc)}); fetch the files where a network "
                "exists and pass --data-root DIR holding them",
            ) from None
        found = place(staging)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        remove_empty(made)  # only the folders this call created, and only while empty
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return found


def _move_files(source: Path, target: Path, names) -> None:
    """Move ``names`` from ``source`` into ``target`` (created), replacing files there."""
    target.mkdir(parents=True, exist_ok=True)
    for n in names:
        os.replace(source / n, target / n)


def _download_fashion(root: Path) -> Path:
    """Fetch the four Fashion-MNIST files from torchvision's mirror (its md5s checked) into
    ``root/FashionMNIST/raw`` (torchvision's layout)."""
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets import utils as tv_utils

    names = [f for pair in FASHION_FILES.values() for f in pair]
    md5 = dict(FashionMNIST.resources)
    mirror = FashionMNIST.mirrors[0]

    def fetch(staging: Path) -> None:
        for n in names:
            tv_utils.download_url(f"{mirror}{n}", str(staging), filename=n, md5=md5.get(n))

    def place(staging: Path) -> Path:
        target = root / "FashionMNIST" / "raw"
        _move_files(staging, target, names)
        return target

    return _fetch("fashion-mnist", root, f"{mirror}{names[0]}", fetch, place)


def load_fashion_mnist(data_root: str | None = None, download: bool = False):
    """(train images (60000, 28, 28), train labels, test images (10000, 28, 28), test labels)."""
    d = _fashion_dir(data_root, download)
    out = []
    for split in ("train", "test"):
        images, labels = (read_idx(d / f) for f in FASHION_FILES[split])
        out += [images, labels]
    return tuple(out)


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR's python batches without running code: only numpy's array rebuilding (and
    protocol 2's text-to-bytes) may be named; any other global (the way a pickle calls a function)
    is refused."""

    ALLOWED = {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _bad_batch(path: Path, why: str) -> ParamError:
    return ParamError(
        "data_root", f"{path} is not a CIFAR python batch ({why}); replace it with a clean copy"
    )


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _bad_batch(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise _bad_batch(path, f"no {b'data'!r} and {label_key!r} entries")
    data, labels = batch[b"data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise _bad_batch(path, "data is not a uint8 array of rows of 3072 pixels")
    if not isinstance(labels, list | np.ndarray) or len(labels) != len(data):
        raise _bad_batch(path, "labels do not match the images")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise _bad_batch(path, "labels are not integers") from None
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_cifar_batches(folder: Path, names: list[str], label_key: bytes):
    images, labels = [], []
    for name in names:
        data, lab = _read_cifar_batch(folder / name, label_key)
        images.append(data)
        labels.append(lab)
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _download_cifar(name: str, root: Path) -> None:
    """Fetch a CIFAR archive through torchvision (the archive's and every batch's md5 checked) and
    put its batch folder in ``root``."""
    from torchvision import datasets

    sub = CIFAR[name][0]
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100

    def fetch(staging: Path) -> None:
        cls(str(staging), train=True, download=True)

    def place(staging: Path) -> Path:
        _move_files(staging / sub, root / sub, sorted(p.name for p in (staging / sub).iterdir()))
        return root / sub

    _fetch(name, root, cls.url, fetch, place)


def load_cifar(name: str, data_root: str | None = None, download: bool = False):
    """(train images (N, 32, 32, 3), train labels, test images, test labels) from the python pickles.

    Raises:
        ParamError: ``data_root`` when it is missing, not a folder or without the batches (and no
            ``download``); ``download`` when fetching fails; ``data_root`` for a batch that is not
            a CIFAR batch (read without running code).
    """
    sub, train_names, test_names, key = CIFAR[name]
    if not data_root:
        raise ParamError(
            "data_root", f"{name} needs --data-root DIR (holding {sub}/), with --download to fetch it"
        )
    root = _check_root(data_root, download, name)
    folder = root / sub
    missing = [n for n in train_names + test_names if not (folder / n).is_file()]
    if missing:
        if not download:
            raise ParamError(
                "data_root",
                f"--data-root {root} does not hold {name} ({folder} lacks {', '.join(missing)}); pass "
                f"the folder that holds {sub}/, or add --download to fetch {name} there",
            )
        _download_cifar(name, root)
    arrays = (*_read_cifar_batches(folder, train_names, key), *_read_cifar_batches(folder, test_names, key))
    for labels in arrays[1::2]:
        if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES[name]):
            raise ParamError("data_root", f"{folder} holds labels outside 0..{NUM_CLASSES[name] - 1}")
    return arrays


def per_class_subset(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` samples per class, drawn without replacement by a seeded generator, sorted."""
    k = check_positive_int("train_per_class", k)
    rng = np.random.default_rng(mix_seed(seed, SALT_SUBSET))
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < k:
            raise ParamError("train_per_class", f"class {c} has only {len(idx)} images, asked for {k}")
        keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))


IMAGEFOLDER_PREFIX = "imagefolder:"


def imagefolder_root(name: str, data_root: str | None = None) -> Path:
    """The folder of ``imagefolder:PATH``, which must hold ``train/`` and ``val/``.

    A relative PATH is looked up under ``data_root`` when one is given (the study passes
    ``--data-root``; ``paper-21k`` fine-tunes on ``imagefolder:imagenet-1k``), else under the
    working directory.

    Raises:
        ParamError: the folder or one of its splits is missing; names ``data_root`` for a relative
            PATH (where it was looked for) and ``dataset`` for an absolute one.
    """
    path = Path(name[len(IMAGEFOLDER_PREFIX) :])
    if not str(path) or str(path) == ".":
        raise ParamError("dataset", "imagefolder:PATH needs a PATH holding train/ and val/ class folders")
    root = path if path.is_absolute() or not data_root else Path(data_root) / path
    missing = [split for split in ("train", "val") if not (root / split).is_dir()]
    if missing:
        what = f"{name}: no {' and no '.join(str(root / m) for m in missing)}"
        if path.is_absolute():
            raise ParamError("dataset", f"{what}; PATH must hold train/ and val/ class folders")
        where = f"--data-root {data_root}" if data_root else "the working directory (no --data-root)"
        raise ParamError(
            "data_root",
            f"{what}; a relative imagefolder:PATH is looked up under {where}: put the data set "
            f"(ImageNet-1k for paper-21k) in {root}/train and {root}/val, pass --data-root DIR holding "
            f"{path}/, or give an absolute imagefolder:PATH",
        )
    return root


def check_dataset(name: str) -> str:
    if name in ("fashion-mnist", "cifar10", "cifar100") or name.startswith("imagefolder:"):
        return name
    raise ParamError("dataset", f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def load_downstream(
    name: str,
    train_transform=None,
    eval_transform=None,
    *,
    data_root: str | None = None,
    download: bool = False,
    train_per_class: int | None = None,
    seed: int = 0,
    test_per_class: int | None = None,
):
    """The fine-tuning datasets.

    Args:
        name: ``fashion-mnist``, ``cifar10``, ``cifar100`` or ``imagefolder:PATH`` (PATH/train,
            PATH/val; a relative PATH under ``data_root``, see ``imagefolder_root``).
        train_transform, eval_transform: PIL -> tensor transforms.
        data_root, download: where to look, and whether torchvision may download.
        train_per_class: keep this many training images per class (seeded by ``seed``).
        test_per_class: evaluate on this many test images per class (a fixed draw; None: all).

    Returns:
        (train dataset, test dataset, number of classes, data hash) - items are (tensor, label).
        The hash covers the files and the test draw (``test_per_class``), so it names the test set.
    """
    check_dataset(name)
    if name.startswith("imagefolder:"):
        from torch.utils.data import Subset
        from torchvision.datasets import ImageFolder

        root = imagefolder_root(name, data_root)
        train = ImageFolder(str(root / "train"), transform=train_transform)
        test = ImageFolder(str(root / "val"), transform=eval_transform)
        digest = hashlib.sha256(repr(train.samples + test.samples).encode()).hexdigest()
        if train_per_class:
            train = Subset(train, per_class_subset(np.array(train.targets), train_per_class, seed).tolist())
        classes = len(test.classes)
        if test_per_class:
            test = Subset(test, per_class_subset(np.array(test.targets), test_per_class, 0).tolist())
            digest = hashlib.sha256(f"{digest}:test_per_class={test_per_class}".encode()).hexdigest()
        return train, test, classes, digest
    xtr, ytr, xte, yte, digest = _arrays(name, data_root, download)
    num_classes = max(NUM_CLASSES[name], int(max(ytr.max(), yte.max())) + 1)
    if train_per_class:
        keep = per_class_subset(ytr, train_per_class, seed)
        xtr, ytr = xtr[keep], ytr[keep]
    if test_per_class:
        keep = per_class_subset(yte, test_per_class, 0)
        xte, yte = xte[keep], yte[keep]
        digest = hashlib.sha256(f"{digest}:test_per_class={test_per_class}".encode()).hexdigest()
    return (
        ArrayDataset(xtr, ytr, train_transform),
        ArrayDataset(xte, yte, eval_transform),
        num_classes,
        digest,
    )


@functools.lru_cache(maxsize=2)
def _arrays(name: str, data_root: str | None, download: bool):
    """Arrays of a file-based dataset and their sha256, cached: a study loads them many times."""
    if name == "fashion-mnist":
        arrays = load_fashion_mnist(data_root, download)
    else:
        arrays = load_cifar(name, data_root, download)
    h = hashlib.sha256()
    for a in arrays:
        a.flags.writeable = False
        h.update(np.ascontiguousarray(a).tobytes())
    return (*arrays, h.hexdigest())
