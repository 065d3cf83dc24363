"""A minimal PNG encoder: 8-bit gray or RGB, no filtering, zlib level 1.

Rendered fractals are mostly black, so filter 0 with fast deflate is both the quickest and small
enough. The bytes depend only on the pixels and zlib, not on an imaging library's version, which
keeps dataset hashes stable. ``zlib.compress`` releases the GIL, so threads encode in parallel.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from ..files import atomic_write_bytes

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """Encode a uint8 image, (H, W) gray or (H, W, 3) RGB, as PNG bytes."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"need uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    color_type = 0 if image.ndim == 2 else 2
    rows = np.ascontiguousarray(image).reshape(h, -1)
    raw = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type "none" on every row
    raw[:, 1:] = rows
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def write_png_atomic(path: str | os.PathLike, image: np.ndarray, level: int = 1) -> bytes:
    """Write ``image`` to ``path`` atomically, without ``fsync`` (a bulk image; see
    ``files.atomic_write_bytes``); returns the PNG bytes."""
    data = encode_png(image, level)
    atomic_write_bytes(path, data, durable=False)
    return data
