"""A slow, plain-NumPy statement of the public pipeline (ryoo-nakamura/OFDB: the search script
``param_search/ifs_search.py`` and the renderer ``fractal_renderer/make_2dofdb.py``).

The tests compare the numba kernels against it on hand-made and random systems, including ones
that diverge, so that the fast code is checked against the rules rather than against itself.
"""

from __future__ import annotations

import numpy as np


def chaos(maps: np.ndarray, probs: np.ndarray, uniforms: np.ndarray, n_points: int):
    cum = []
    total = 0.0
    for p in probs:
        total += p
        cum.append(total)
    xs = [0.0]
    ys = [0.0]
    x = y = 0.0
    with np.errstate(all="ignore"):
        for i in range(n_points - 1):
            r = uniforms[i]
            for j, c in enumerate(cum):
                if r <= c:
                    a, b, cc, d, e, f = (float(v) for v in maps[j])
                    x, y = x * a + y * b + e, x * cc + y * d + f
                    break
            xs.append(x)
            ys.append(y)
    return np.array(xs), np.array(ys)


def nan_rule_and_rescale(xs: np.ndarray, ys: np.ndarray, size: int, pad: int):
    with np.errstate(all="ignore"):
        if np.any(np.isnan(xs)):
            first = np.where(np.isnan(xs))[0][0]
            drop = np.append(np.arange(first - 100, first), np.where(np.isnan(xs))[0])
            xs, ys = np.delete(xs, drop), np.delete(ys, drop)
        if np.any(np.isnan(ys)):
            first = np.where(np.isnan(ys))[0][0]
            drop = np.append(np.arange(first - 100, first), np.where(np.isnan(ys))[0])
            xs, ys = np.delete(xs, drop), np.delete(ys, drop)
        if xs.size == 0:
            return xs.astype(np.uint16), ys.astype(np.uint16)
        if np.min(xs) < 0:
            xs = xs - np.min(xs)
        if np.min(ys) < 0:
            ys = ys - np.min(ys)
        X = np.uint16(xs / (np.max(xs) - np.min(xs)) * float(size - 2 * pad) + float(pad))
        Y = np.uint16(ys / (np.max(ys) - np.min(ys)) * float(size - 2 * pad) + float(pad))
    return X, Y


def point_image(X: np.ndarray, Y: np.ndarray, size: int) -> np.ndarray:
    img = np.zeros((size, size), dtype=np.uint8)
    ok = (X < size) & (Y < size)
    img[Y[ok], X[ok]] = 127
    return img[::-1]


def patch_image(X: np.ndarray, Y: np.ndarray, size: int, masks) -> np.ndarray:
    """Patch mode read literally: point i writes bit 3 r + c of ``masks[i]`` (127 or 0) at row
    Y + 1 + r, column X + 1 + c, in point order, skipping pixels outside; then the flip."""
    img = np.zeros((size, size), dtype=np.uint8)
    for i in range(len(X)):
        for r in range(3):
            for c in range(3):
                y, x = int(Y[i]) + 1 + r, int(X[i]) + 1 + c
                if x < size and y < size:
                    img[y, x] = 127 if (masks[i] >> (3 * r + c)) & 1 else 0
    return img[::-1]
