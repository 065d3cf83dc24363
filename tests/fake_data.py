"""Tiny downstream datasets written in the real file formats (IDX .gz, CIFAR pickles), for tests.

A helper module (not a test file): ``test_downstream.py`` and ``test_train.py`` import it.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX unsigned-byte file (gzipped): magic 0 0 8 ndim, big-endian dims, bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_fashion(root: Path, per_class_train: int = 6, per_class_test: int = 3, classes: int = 10) -> Path:
    """A tiny Fashion-MNIST in the Debian layout: class c images are filled with 20 * c + noise."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, k in (("train", per_class_train), ("t10k", per_class_test)):
        labels = np.repeat(np.arange(classes), k).astype(np.uint8)
        images = (labels[:, None, None] * 20 + rng.integers(0, 10, (len(labels), 28, 28))).astype(np.uint8)
        write_idx(root / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels)
    return root


def make_cifar(root: Path, name: str, n_train: int = 20, n_test: int = 10) -> Path:
    """A tiny CIFAR-10/100 in the python-pickle layout torchvision reads (random pixels)."""
    from ofdb_study.train import downstream

    sub, train_names, test_names, key = downstream.CIFAR[name]
    folder = root / sub
    folder.mkdir(parents=True)
    classes = 10 if name == "cifar10" else 100
    rng = np.random.default_rng(1)
    for names, n in ((train_names, n_train), (test_names, n_test)):
        for fname in names:
            doc = {
                b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                key: [int(i % classes) for i in range(n)],
            }
            with open(folder / fname, "wb") as f:
                pickle.dump(doc, f)
    return root
