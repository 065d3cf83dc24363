"""numba kernels shared by the search and the renderer: chaos game, NaN rule, rescale, drawing.

Pure: arrays in, arrays out, no file I/O, no global state. The arithmetic is written in the
order of the public generators (``x * a + y * b + e``, then ``x / (xmax - xmin) * (W - 2 pad)
+ pad``) and compiled without fast-math, so results are bit-identical to the NumPy originals.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import mt

#: Points the public NaN rule deletes before the first NaN.
NAN_BACKOFF = 100
_GRAY = np.uint8(127)


@nb.njit(cache=True, nogil=True)
def chaos_game(maps, cum, uniforms, n_points, xs, ys):
    """Run the chaos game from (0, 0), which is kept as point 0.

    Args:
        maps: (N, 6) float64 coefficients a..f.
        cum: (N,) cumulative probabilities, accumulated in map order.
        uniforms: (>= n_points - 1,) float64 uniforms; step ``i`` uses ``uniforms[i - 1]``.
        n_points: points wanted, including the start point.
        xs, ys: (>= n_points,) float64 outputs.

    Returns:
        The number of points computed. Fewer than ``n_points`` means both coordinates became NaN
        at the last computed point, so all later points are NaN too (and are not written).

    Step ``i`` uses the first map ``j`` with ``r <= cum[j]``; when none qualifies (rounding), the
    point repeats. The map index is found without branches (a count of ``r > cum[k]``): the
    choice is random, so a branchy search would mispredict on most steps.
    """
    n_maps = maps.shape[0]
    ca = np.empty(n_maps + 1)
    cb = np.empty(n_maps + 1)
    cc = np.empty(n_maps + 1)
    cd = np.empty(n_maps + 1)
    ce = np.empty(n_maps + 1)
    cf = np.empty(n_maps + 1)
    for j in range(n_maps):
        ca[j], cb[j], cc[j], cd[j], ce[j], cf[j] = (maps[j, 0], maps[j, 1], maps[j, 2],
                                                    maps[j, 3], maps[j, 4], maps[j, 5])
    x = 0.0
    y = 0.0
    xs[0] = x
    ys[0] = y
    for i in range(1, n_points):
        r = uniforms[i - 1]
        j = 0
        for k in range(n_maps):
            j += r > cum[k]
        if j < n_maps:
            nx = x * ca[j] + y * cb[j] + ce[j]
            y = x * cc[j] + y * cd[j] + cf[j]
            x = nx
        xs[i] = x
        ys[i] = y
        if x != x and y != y:
            return i + 1
    return n_points


@nb.njit(cache=True, nogil=True)
def _delete_nan_run(key, other, length, total):
    """NumPy ``delete`` of the public NaN rule on ``key``; compacts ``key`` and ``other`` in place.

    Deletes the ``NAN_BACKOFF`` indices before the first NaN of ``key`` (negative ones wrap to the
    end, as ``np.delete`` does) and every NaN. ``length`` entries are stored; entries up to
    ``total`` are implied NaN. Returns the new length; no NaN of ``key`` means nothing changes.
    """
    first = -1
    for i in range(length):
        if key[i] != key[i]:
            first = i
            break
    if first < 0:
        if length == total:
            return length
        first = length
    lo = first - NAN_BACKOFF
    kept = 0
    for i in range(length):
        gone = key[i] != key[i]
        if not gone:
            if lo >= 0:
                gone = lo <= i < first
            else:
                gone = i < first or i >= total + lo
        if not gone:
            key[kept] = key[i]
            other[kept] = other[i]
            kept += 1
    return kept


@nb.njit(cache=True, nogil=True)
def _to_uint16(v):
    """NumPy's float64 -> uint16 cast on x86-64: truncation; NaN and huge values give 0."""
    if v != v or v >= 2147483648.0 or v <= -2147483649.0:
        return 0
    return np.int64(v) & 0xFFFF


@nb.njit(cache=True, nogil=True)
def _shift_and_scale(v, length, span, pad, out):
    """``if min < 0: v -= min``; then ``uint16(v / (max - min) * span + pad)``, as NumPy does.

    ``v`` holds no NaN here. Infinities are possible: a shift by ``-inf`` turns every value into
    NaN or ``+inf`` and NumPy's max is then NaN, so every pixel is 0, which is what we write.
    """
    lo = v[0]
    for i in range(1, length):
        lo = min(lo, v[i])
    if lo == -np.inf:
        out[:length] = 0
        return
    if lo < 0.0:
        for i in range(length):
            v[i] -= lo
    vmax = v[0]
    vmin = v[0]
    for i in range(1, length):
        vmax = max(vmax, v[i])
        vmin = min(vmin, v[i])
    rng = vmax - vmin
    for i in range(length):
        out[i] = _to_uint16(v[i] / rng * span + pad)


@nb.njit(cache=True, nogil=True)
def nan_rule_and_rescale(xs, ys, count, n_total, size, pad, px, py):
    """Apply the public NaN rule, then rescale the points to pixel coordinates.

    Args:
        xs, ys: (>= count,) chaos-game points; modified in place.
        count: points stored; points ``count .. n_total - 1`` are implied NaN.
        n_total: points the chaos game was asked for.
        size, pad: image side and padding in pixels.
        px, py: (>= n_total,) uint16 outputs, pixel column and row before any flip.

    Returns:
        The number of points kept. ``X = uint16(x / (xmax - xmin) * (size - 2 pad) + pad)``
        after shifting by the minimum when it is negative; x and y are stretched independently.
    """
    length = _delete_nan_run(xs, ys, count, n_total)
    length = _delete_nan_run(ys, xs, length, length)
    if length == 0:
        return 0
    span = float(size - 2 * pad)
    _shift_and_scale(xs, length, span, float(pad), px)
    _shift_and_scale(ys, length, span, float(pad), py)
    return length


@nb.njit(cache=True, nogil=True)
def _splitmix64(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, nogil=True)
def patch_mask(seed, index):
    """The 9-bit patch mask (1..511) of point ``index`` for ``seed``: counter-based, so any
    point's mask is known without drawing the ones before it (same bytes for any worker count)."""
    h = _splitmix64(_splitmix64(np.uint64(seed)) ^ np.uint64(index))
    return 1 + np.int64(h % np.uint64(511))


@nb.njit(cache=True, nogil=True)
def draw_points(px, py, n, size, flip, out):
    """Point mode: each point one pixel of 127 on ``out`` (size, size) uint8, zeroed first."""
    out[:, :] = 0
    for i in range(n):
        x = px[i]
        y = py[i]
        if x < size and y < size:
            out[size - 1 - y if flip else y, x] = _GRAY


@nb.njit(cache=True, nogil=True)
def draw_patches(px, py, n, size, flip, seed, out):
    """Patch mode: a 3x3 block at (X + 1, Y + 1) per point, bit k of the mask lighting cell
    (row k // 3, column k % 3) with 127; cleared bits write 0, so later points erase earlier."""
    out[:, :] = 0
    for i in range(n):
        mask = patch_mask(seed, i)
        for k in range(9):
            x = px[i] + 1 + k % 3
            y = py[i] + 1 + k // 3
            if x < size and y < size:
                out[size - 1 - y if flip else y, x] = _GRAY if (mask >> k) & 1 else 0


@nb.njit(cache=True, nogil=True)
def draw_colors(px, py, n, size, flip, out):
    """Colour mode: point ``i`` gets hue ``i / n`` at full saturation and value; ``out`` is
    (size, size, 3) uint8."""
    out[:, :, :] = 0
    for i in range(n):
        x = px[i]
        y = py[i]
        if x >= size or y >= size:
            continue
        h = 6.0 * i / n
        sector = int(h)
        f = h - sector
        up = np.uint8(255.0 * f)
        down = np.uint8(255.0 * (1.0 - f))
        if sector == 0:
            r, g, b = 255, up, 0
        elif sector == 1:
            r, g, b = down, 255, 0
        elif sector == 2:
            r, g, b = 0, 255, up
        elif sector == 3:
            r, g, b = 0, down, 255
        elif sector == 4:
            r, g, b = up, 0, 255
        else:
            r, g, b = 255, 0, down
        row = size - 1 - y if flip else y
        out[row, x, 0] = r
        out[row, x, 1] = g
        out[row, x, 2] = b
