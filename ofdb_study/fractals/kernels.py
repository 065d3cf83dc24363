"""numba kernels shared by the search and the renderer: chaos game, NaN rule, rescale, drawing.

Pure: arrays in, arrays out, no file I/O, no global state. The arithmetic is written in the
order of the public generators (``x * a + y * b + e``, then ``x / (xmax - xmin) * (W - 2 pad)
+ pad``) and compiled without fast-math, so results are bit-identical to the NumPy originals.
"""

from __future__ import annotations

import math

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


#: Interleaved chaos game: independent segments per call, and the steps each segment's chain
#: runs from (0, 0) before its first point so that it lands exactly on the true trajectory.
CHAINS = 4
WARM_STEPS = 1024
#: Fewest points for which ``chaos_game`` interleaves (each segment at least 4 warm-ups long).
INTERLEAVE_MIN = 1 + CHAINS * 4 * WARM_STEPS


@nb.njit(cache=True, nogil=True)
def map_choices(bound, n_maps, uniforms, n, choice):
    """``choice[i]`` = index of the map that uniform ``i`` picks (``n_maps``: none qualifies).

    The choices depend on the uniforms only, not on the trajectory, so they are counted in a
    separate loop that LLVM vectorises. Returns True if some uniform picks no map.
    """
    none = 0
    if n_maps <= FAST_MAPS:
        b0, b1, b2, b3 = bound[0], bound[1], bound[2], bound[3]
        b4, b5, b6, b7 = bound[4], bound[5], bound[6], bound[7]
        for i in range(n):
            r = uniforms[i]
            j = (
                np.int64(r > b0)
                + np.int64(r > b1)
                + np.int64(r > b2)
                + np.int64(r > b3)
                + np.int64(r > b4)
                + np.int64(r > b5)
                + np.int64(r > b6)
                + np.int64(r > b7)
            )
            none += j == n_maps
            choice[i] = j
    else:
        for i in range(n):
            r = uniforms[i]
            j = 0
            for k in range(n_maps):
                j += r > bound[k]
            none += j == n_maps
            choice[i] = j
    return none > 0


@nb.njit(cache=True, nogil=True, inline="always")
def _apply(coef, j, x, y):
    """One step with map ``j`` of the flat table: ``(x a + y b + e, x c + y d + f)``."""
    b = np.uint64(6) * np.uint64(j)
    return (
        x * coef[b] + y * coef[b + np.uint64(1)] + coef[b + np.uint64(4)],
        x * coef[b + np.uint64(2)] + y * coef[b + np.uint64(3)] + coef[b + np.uint64(5)],
    )


@nb.njit(cache=True, nogil=True)
def _replay(coef, choice, x, y, xs, ys, start, stop):
    """Steps ``start .. stop - 1`` from point (x, y), one after the other."""
    for i in range(start, stop):
        x, y = _apply(coef, choice[i - 1], x, y)
        xs[i] = x
        ys[i] = y


@nb.njit(cache=True, nogil=True)
def _same_bits(a, b):
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@nb.njit(cache=True, nogil=True)
def chaos_interleaved(coef, choice, n_points, xs, ys, stats):
    """Steps 1 .. n_points - 1 as ``CHAINS`` segments run side by side; exact, checked at every seam.

    One chaos game is a chain of dependent multiply-adds, so a single chain waits on latency.
    Segment ``k`` here starts ``WARM_STEPS`` steps early from (0, 0): the maps contract, so the
    warmed-up point almost always equals the true one bit for bit, and from an equal point the
    rest of the segment is equal too. Each seam is checked against the true point that the
    previous segment produced; a segment whose seam differs (a system that contracts too slowly)
    is recomputed from the true point. The result is the sequential game exactly, whatever the
    seams do. A NaN, once reached, stays NaN through every later step, so the last point tells
    whether one occurred.

    Fills ``stats`` as ``chaos_steps`` does. Needs ``n_points >= INTERLEAVE_MIN``. Returns the
    number of segments recomputed.
    """
    seg = (n_points - 1) // CHAINS
    s1 = 1 + seg
    s2 = 1 + 2 * seg
    s3 = 1 + 3 * seg
    x1 = y1 = x2 = y2 = x3 = y3 = 0.0
    for t in range(WARM_STEPS):
        x1, y1 = _apply(coef, choice[s1 - WARM_STEPS + t - 1], x1, y1)
        x2, y2 = _apply(coef, choice[s2 - WARM_STEPS + t - 1], x2, y2)
        x3, y3 = _apply(coef, choice[s3 - WARM_STEPS + t - 1], x3, y3)
    warm_x = (x1, x2, x3)
    warm_y = (y1, y2, y3)
    x0 = y0 = 0.0
    xs[0] = 0.0
    ys[0] = 0.0
    lox = hix = loy = hiy = 0.0
    for t in range(seg):
        x0, y0 = _apply(coef, choice[t], x0, y0)
        xs[1 + t] = x0
        ys[1 + t] = y0
        x1, y1 = _apply(coef, choice[s1 + t - 1], x1, y1)
        xs[s1 + t] = x1
        ys[s1 + t] = y1
        x2, y2 = _apply(coef, choice[s2 + t - 1], x2, y2)
        xs[s2 + t] = x2
        ys[s2 + t] = y2
        x3, y3 = _apply(coef, choice[s3 + t - 1], x3, y3)
        xs[s3 + t] = x3
        ys[s3 + t] = y3
        lox = min(lox, min(min(x0, x1), min(x2, x3)))
        hix = max(hix, max(max(x0, x1), max(x2, x3)))
        loy = min(loy, min(min(y0, y1), min(y2, y3)))
        hiy = max(hiy, max(max(y0, y1), max(y2, y3)))
    starts = (s1, s2, s3, 1 + CHAINS * seg)
    _replay(coef, choice, x3, y3, xs, ys, starts[3], n_points)
    redone = 0
    for k in range(CHAINS - 1):
        s = starts[k]
        if not (_same_bits(xs[s - 1], warm_x[k]) and _same_bits(ys[s - 1], warm_y[k])):
            stop = starts[k + 1] if k < CHAINS - 2 else n_points
            _replay(coef, choice, xs[s - 1], ys[s - 1], xs, ys, s, stop)
            redone += 1
    for i in range(starts[3], n_points):
        lox = min(lox, xs[i])
        hix = max(hix, xs[i])
        loy = min(loy, ys[i])
        hiy = max(hiy, ys[i])
    if redone:
        lox, hix = _min_max(xs, n_points)
        loy, hiy = _min_max(ys, n_points)
    last_x = xs[n_points - 1]
    last_y = ys[n_points - 1]
    stats[0] = lox
    stats[1] = hix
    stats[2] = loy
    stats[3] = hiy
    stats[4] = NAN_SEEN if (last_x != last_x) | (last_y != last_y) else 0
    return redone


@nb.njit(cache=True, nogil=True)
def chaos_game(maps, cum, uniforms, n_points, xs, ys, stats, choice=None):
    """Run the chaos game from (0, 0), which is kept as point 0.

    Args:
        maps: (N, 6) float64 coefficients a..f.
        cum: (N,) cumulative probabilities, accumulated in map order.
        uniforms: (>= n_points - 1,) float64 uniforms; step ``i`` uses ``uniforms[i - 1]``.
        n_points: points wanted, including the start point.
        xs, ys: (>= n_points,) float64 outputs.
        stats: (5,) from ``new_stats``, filled as ``chaos_steps`` describes.
        choice: optional (>= n_points - 1,) uint8 work array. With it, and with at least
            ``INTERLEAVE_MIN`` points and fewer than 255 maps, the game runs interleaved
            (``chaos_interleaved``); the points are the same either way.

    Returns:
        ``n_points``, the number of points written (the NaN rule takes any count).
    """
    coef, bound = chaos_tables(maps, cum)
    n_maps = maps.shape[0]
    xs[0] = 0.0
    ys[0] = 0.0
    stats[0] = 0.0
    stats[1] = 0.0
    stats[2] = 0.0
    stats[3] = 0.0
    stats[4] = 0.0
    if choice is not None and n_points >= INTERLEAVE_MIN and n_maps < 255:
        if not map_choices(bound, n_maps, uniforms, n_points - 1, choice):
            chaos_interleaved(coef, choice, n_points, xs, ys, stats)
            return n_points
        stats[4] = NO_MAP_STEP
    else:
        chaos_steps(coef, bound, n_maps, uniforms, 0.0, 0.0, xs, ys, 1, n_points, stats)
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


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _shift_and_scale(v, length, lo, hi, span, pad, out):
    """NumPy's ``if v.min() < 0: v -= v.min()`` then ``uint16(v / (v.max() - v.min()) * span + pad)``.

    ``lo`` and ``hi`` are the min and max of ``v[:length]``, which holds no NaN. After a shift by
    ``lo`` the minimum is exactly 0 and the maximum is ``hi - lo`` (rounding is monotonic), so no
    shifted copy is needed. The common, finite case is a branch-free loop that LLVM vectorises;
    infinities (diverging systems) take a slow path that reproduces NumPy's NaN and overflow; a
    zero range (every point equal, as a huge finite coefficient leaves them) divides as NumPy does
    (``error_model="numpy"``: NaN or infinity, never ``ZeroDivisionError``).
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


@nb.njit(cache=True, nogil=True, error_model="numpy")
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
    return np.int64(_mask_of(_splitmix64(np.uint64(seed)), index))


@nb.njit(cache=True, nogil=True, inline="always")
def _mask_of(key, i):
    """The mask (1..511) of point ``i`` under ``key = splitmix64(seed)``: the one formula."""
    h = _splitmix64(key + np.uint64(i))
    return np.uint64(1) + (((h >> np.uint64(32)) * np.uint64(511)) >> np.uint64(32))


def _mask_table():
    bits = np.arange(9)
    masks = np.arange(512)[:, None]
    return np.where((masks >> bits) & 1, _GRAY, 0).astype(np.uint8).reshape(512, 3, 3)


#: MASK_ROWS[m, r, c]: the value patch mask ``m`` writes at row r, column c (bit 3 r + c).
MASK_ROWS = _mask_table()
#: The same, flat: mask ``m``'s 9 values start at ``9 m``.
MASK_FLAT = MASK_ROWS.reshape(-1).copy()


@nb.njit(cache=True, nogil=True)
def draw_points(px, py, n, size, flip, out):
    """Point mode: each point one pixel of 127 on ``out`` (size, size) uint8, zeroed first.

    Indexes a flat view with unsigned offsets (no negative-index wrap-around per store).
    """
    flat = out.reshape(size * size)
    flat[:] = 0
    side = np.uint64(size)
    if flip:
        last_row = np.uint64((size - 1) * size)
        for i in range(n):
            x = np.uint64(px[i])
            y = np.uint64(py[i])
            if (x < side) & (y < side):
                flat[last_row - y * side + x] = _GRAY
    else:
        for i in range(n):
            x = np.uint64(px[i])
            y = np.uint64(py[i])
            if (x < side) & (y < side):
                flat[y * side + x] = _GRAY


@nb.njit(cache=True, nogil=True)
def _max_u16(v, n):
    m = 0
    for i in range(n):
        m = max(m, np.int64(v[i]))
    return m


@nb.njit(cache=True, nogil=True, inline="always")
def _mask_index(key, i):
    """Offset in ``MASK_FLAT`` of point ``i``'s mask (``patch_mask`` times 9)."""
    return np.uint64(9) * _mask_of(key, i)


@nb.njit(cache=True, nogil=True, inline="always")
def _patch_rows(flat, lut, m, b, row_step_down, side):
    """Write the 3 rows of mask offset ``m`` from flat pixel ``b``, then each next row below or above."""
    for r in range(3):
        k = m + np.uint64(3 * r)
        flat[b] = lut[k]
        flat[b + np.uint64(1)] = lut[k + np.uint64(1)]
        flat[b + np.uint64(2)] = lut[k + np.uint64(2)]
        b = b + side if row_step_down else b - side


@nb.njit(cache=True, nogil=True)
def draw_patches(px, py, n, size, flip, seed, out):
    """Patch mode: a 3x3 block at (X + 1, Y + 1) per point, bit ``3 r + c`` of the mask lighting
    (row r, column c) with 127; cleared bits write 0, so later points erase earlier ones.

    When every block fits (the usual case, pad >= 3) the blocks are written through a flat view
    with unsigned offsets and no per-pixel bounds checks.
    """
    out[:, :] = 0
    key = _splitmix64(np.uint64(seed))
    if _max_u16(px, n) + 4 <= size and _max_u16(py, n) + 4 <= size:
        flat = out.reshape(size * size)
        side = np.uint64(size)
        one = np.uint64(1)
        if flip:
            top = np.uint64(size - 2)  # row of y0 = Y + 1 after the flip: size - 1 - (Y + 1)
            for i in range(n):
                b = (top - np.uint64(py[i])) * side + np.uint64(px[i]) + one
                _patch_rows(flat, MASK_FLAT, _mask_index(key, i), b, False, side)
        else:
            for i in range(n):
                b = (np.uint64(py[i]) + one) * side + np.uint64(px[i]) + one
                _patch_rows(flat, MASK_FLAT, _mask_index(key, i), b, True, side)
        return
    for i in range(n):
        m = np.int64(_mask_index(key, i))
        x0 = np.int64(px[i]) + 1
        y0 = np.int64(py[i]) + 1
        for k in range(9):
            x = x0 + k % 3
            y = y0 + k // 3
            if x < size and y < size:
                out[size - 1 - y if flip else y, x] = MASK_FLAT[m + k]


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
