"""numba kernels shared by the search and the renderer: chaos game, NaN rule, rescale, drawing.

Pure: arrays in, arrays out, no file I/O, no global state. The arithmetic is written in the
order of the public generators (``x * a + y * b + e``, then ``x / (xmax - xmin) * (W - 2 pad)
+ pad``) and compiled without fast-math, so results are bit-identical to the NumPy originals.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: Points the public NaN rule deletes before the first NaN.
NAN_BACKOFF = 100
_GRAY = np.uint8(127)
#: Systems with up to this many maps take the unrolled map choice (the search draws 2..7).
FAST_MAPS = 8


@nb.njit(cache=True, nogil=True)
def chaos_tables(maps, cum):
    """Flat coefficient table (6 per map) and cumulative bounds padded with +inf.

    The padding makes the map choice a fixed-length, unrolled count of comparisons for up to
    ``FAST_MAPS`` maps. Row ``N`` is the identity: when no map qualifies (``r`` above the last
    cumulative probability, by rounding) the count lands there and the point repeats.
    """
    n_maps = maps.shape[0]
    width = max(n_maps, FAST_MAPS) + 1
    coef = np.zeros(width * 6)
    bound = np.full(width, np.inf)
    for j in range(n_maps):
        bound[j] = cum[j]
        for q in range(6):
            coef[6 * j + q] = maps[j, q]
    coef[6 * n_maps] = 1.0
    coef[6 * n_maps + 3] = 1.0
    return coef, bound


def new_stats() -> np.ndarray:
    """Running statistics of a chaos game: [min x, max x, min y, max y, flags]."""
    return np.array([np.inf, -np.inf, np.inf, -np.inf, 0.0])


#: Flags in ``stats[4]``: a NaN was seen; a step found no map (the identity row stood in).
NAN_SEEN = 1
NO_MAP_STEP = 2


@nb.njit(cache=True, nogil=True)
def chaos_steps(coef, bound, n_maps, uniforms, x, y, xs, ys, start, stop, stats):
    """Steps ``start .. stop - 1`` of the chaos game from point (x, y); step ``start + k`` uses
    ``uniforms[k]``. Returns the last point, so a game can run in chunks.

    Step ``i`` uses the first map ``j`` with ``r <= cum[j]``. The map index is counted without
    branches (the choice is random, so a branchy search would mispredict on most steps) and the
    point is updated without a branch either, through the identity row when no map qualifies.
    ``x * 1 + y * 0 + 0`` equals the repeated point except for infinite ``y``, so such steps are
    flagged and ``chaos_game`` redoes the game exactly in that (astronomically rare) case.

    ``stats`` (from ``new_stats``) is updated with the running min and max of x and y and the
    flags; the renderer then skips the NaN rule's scans and the min/max passes. These updates
    sit beside the latency-bound recurrence and cost next to nothing.
    """
    lox = stats[0]
    hix = stats[1]
    loy = stats[2]
    hiy = stats[3]
    nan = False
    no_map = False
    for i in range(start, stop):
        r = uniforms[i - start]
        j = 0
        if n_maps <= FAST_MAPS:
            for k in range(FAST_MAPS):
                j += r > bound[k]
        else:
            for k in range(n_maps):
                j += r > bound[k]
        no_map |= j == n_maps
        b = 6 * j
        nx = x * coef[b] + y * coef[b + 1] + coef[b + 4]
        y = x * coef[b + 2] + y * coef[b + 3] + coef[b + 5]
        x = nx
        xs[i] = x
        ys[i] = y
        lox = min(lox, x)
        hix = max(hix, x)
        loy = min(loy, y)
        hiy = max(hiy, y)
        nan |= (x != x) | (y != y)
    stats[0] = lox
    stats[1] = hix
    stats[2] = loy
    stats[3] = hiy
    stats[4] = np.int64(stats[4]) | (NAN_SEEN if nan else 0) | (NO_MAP_STEP if no_map else 0)
    return x, y


@nb.njit(cache=True, nogil=True)
def _exact_steps(maps, cum, uniforms, xs, ys, n_points):
    """The plain, branchy chaos game (the public rule read literally), for the rare flagged case."""
    x = 0.0
    y = 0.0
    for i in range(1, n_points):
        r = uniforms[i - 1]
        for j in range(maps.shape[0]):
            if r <= cum[j]:
                nx = x * maps[j, 0] + y * maps[j, 1] + maps[j, 4]
                y = x * maps[j, 2] + y * maps[j, 3] + maps[j, 5]
                x = nx
                break
        xs[i] = x
        ys[i] = y


@nb.njit(cache=True, nogil=True)
def chaos_game(maps, cum, uniforms, n_points, xs, ys, stats):
    """Run the chaos game from (0, 0), which is kept as point 0.

    Args:
        maps: (N, 6) float64 coefficients a..f.
        cum: (N,) cumulative probabilities, accumulated in map order.
        uniforms: (>= n_points - 1,) float64 uniforms; step ``i`` uses ``uniforms[i - 1]``.
        n_points: points wanted, including the start point.
        xs, ys: (>= n_points,) float64 outputs.
        stats: (5,) from ``new_stats``, filled as ``chaos_steps`` describes.

    Returns:
        ``n_points``, the number of points written (the NaN rule takes any count).
    """
    coef, bound = chaos_tables(maps, cum)
    xs[0] = 0.0
    ys[0] = 0.0
    stats[0] = 0.0
    stats[1] = 0.0
    stats[2] = 0.0
    stats[3] = 0.0
    stats[4] = 0.0
    chaos_steps(coef, bound, maps.shape[0], uniforms, 0.0, 0.0, xs, ys, 1, n_points, stats)
    if np.int64(stats[4]) & NO_MAP_STEP:
        _exact_steps(maps, cum, uniforms, xs, ys, n_points)
        stats[4] = NAN_SEEN  # min/max unknown now: take the general path
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
def _min_max(v, length):
    lo = v[0]
    hi = v[0]
    for i in range(1, length):
        lo = min(lo, v[i])
        hi = max(hi, v[i])
    return lo, hi


@nb.njit(cache=True, nogil=True)
def _shift_and_scale(v, length, lo, hi, span, pad, out):
    """NumPy's ``if v.min() < 0: v -= v.min()`` then ``uint16(v / (v.max() - v.min()) * span + pad)``.

    ``lo`` and ``hi`` are the min and max of ``v[:length]``, which holds no NaN. After a shift by
    ``lo`` the minimum is exactly 0 and the maximum is ``hi - lo`` (rounding is monotonic), so no
    shifted copy is needed. The common, finite case is a branch-free loop that LLVM vectorises;
    infinities (diverging systems) take a slow path that reproduces NumPy's NaN and overflow.
    """
    shift = lo if lo < 0.0 else 0.0
    rng = (hi - shift) - (0.0 if lo < 0.0 else lo)
    if np.isfinite(lo) and np.isfinite(hi) and np.isfinite(rng) and rng > 0.0:
        if lo < 0.0:
            for i in range(length):
                out[i] = np.uint16((v[i] - shift) / rng * span + pad)
        else:
            for i in range(length):
                out[i] = np.uint16(v[i] / rng * span + pad)
        return
    if lo == -np.inf:  # v - (-inf) is +inf or NaN, NumPy's max is then NaN: every pixel is 0
        out[:length] = 0
        return
    for i in range(length):
        out[i] = _to_uint16((v[i] - shift) / rng * span + pad)


@nb.njit(cache=True, nogil=True)
def nan_rule_and_rescale(xs, ys, count, n_total, size, pad, px, py, stats):
    """Apply the public NaN rule, then rescale the points to pixel coordinates.

    Args:
        xs, ys: (>= count,) chaos-game points; modified in place when the NaN rule deletes.
        count: points stored; points ``count .. n_total - 1`` are implied NaN.
        n_total: points the chaos game was asked for.
        size, pad: image side and padding in pixels.
        px, py: (>= n_total,) uint16 outputs, pixel column and row before any flip.
        stats: from ``chaos_game``; with no NaN seen its min and max are used as they are.

    Returns:
        The number of points kept. ``X = uint16(x / (xmax - xmin) * (size - 2 pad) + pad)``
        after shifting by the minimum when it is negative; x and y are stretched independently.
    """
    span = float(size - 2 * pad)
    if count == n_total and not (np.int64(stats[4]) & NAN_SEEN):
        _shift_and_scale(xs, count, stats[0], stats[1], span, float(pad), px)
        _shift_and_scale(ys, count, stats[2], stats[3], span, float(pad), py)
        return count
    length = _delete_nan_run(xs, ys, count, n_total)
    length = _delete_nan_run(ys, xs, length, length)
    if length == 0:
        return 0
    lo, hi = _min_max(xs, length)
    _shift_and_scale(xs, length, lo, hi, span, float(pad), px)
    lo, hi = _min_max(ys, length)
    _shift_and_scale(ys, length, lo, hi, span, float(pad), py)
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
    h = _splitmix64(_splitmix64(np.uint64(seed)) + np.uint64(index))
    return 1 + np.int64(((h >> np.uint64(32)) * np.uint64(511)) >> np.uint64(32))


def _mask_table():
    bits = np.arange(9)
    masks = np.arange(512)[:, None]
    return np.where((masks >> bits) & 1, _GRAY, 0).astype(np.uint8).reshape(512, 3, 3)


#: MASK_ROWS[m, r, c]: the value patch mask ``m`` writes at row r, column c (bit 3 r + c).
MASK_ROWS = _mask_table()


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
def _max_u16(v, n):
    m = 0
    for i in range(n):
        m = max(m, np.int64(v[i]))
    return m


@nb.njit(cache=True, nogil=True)
def draw_patches(px, py, n, size, flip, seed, out):
    """Patch mode: a 3x3 block at (X + 1, Y + 1) per point, bit ``3 r + c`` of the mask lighting
    (row r, column c) with 127; cleared bits write 0, so later points erase earlier ones."""
    out[:, :] = 0
    key = _splitmix64(np.uint64(seed))
    inside = _max_u16(px, n) + 4 <= size and _max_u16(py, n) + 4 <= size
    step = -1 if flip else 1
    for i in range(n):
        h = _splitmix64(key + np.uint64(i))
        mask = 1 + np.int64(((h >> np.uint64(32)) * np.uint64(511)) >> np.uint64(32))
        x0 = np.int64(px[i]) + 1
        y0 = np.int64(py[i]) + 1
        if inside:  # the usual case (pad >= 3): no per-pixel bounds checks
            row = size - 1 - y0 if flip else y0
            for r in range(3):
                out[row, x0] = MASK_ROWS[mask, r, 0]
                out[row, x0 + 1] = MASK_ROWS[mask, r, 1]
                out[row, x0 + 2] = MASK_ROWS[mask, r, 2]
                row += step
        else:
            for k in range(9):
                x = x0 + k % 3
                y = y0 + k // 3
                if x < size and y < size:
                    out[size - 1 - y if flip else y, x] = MASK_ROWS[mask, k // 3, k % 3]


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
