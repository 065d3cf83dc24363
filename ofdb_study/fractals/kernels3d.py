"""The numba kernels of 3D-OFDB: chaos game, normalisation, variance test, search scoring, camera.

Pure: arrays in, arrays out, no file I/O. ``ofdb_study.fractals.ofdb3d`` holds the definitions they
implement (the module docstring there) and the API around them; it re-exports these names.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from . import mt

MAX_MAPS = 7
N_PARAMS = 12  # 9 for A (row-major) + 3 for t
#: Uniforms regenerated per block in the search kernel.
CHUNK = 1024


@nb.njit(cache=True, nogil=True)
def _det3(m):
    return (
        m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
        - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
        + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0])
    )


@nb.njit(cache=True, nogil=True)
def _run(lin, shift, cum, n_maps, uniforms, n_steps, start, x, y, z, out):
    """``n_steps`` chaos-game steps from ``(x, y, z)``, writing points ``start + 1 ...``.

    Step ``s`` uses ``uniforms[s]`` and the first map ``j`` with ``r <= cum[j]`` (none: the point
    repeats). The index is a branch-free count of ``r > cum[k]``: the choice is random, so a
    search loop would mispredict on most steps.

    Returns:
        ``(steps_done, x, y, z)``; ``steps_done < n_steps`` when step ``steps_done`` produced a
        non-finite coordinate (it is not written).
    """
    for s in range(n_steps):
        r = uniforms[s]
        j = 0
        for k in range(n_maps):
            j += r > cum[k]
        if j < n_maps:
            # Paired sums: the x -> x' dependency chain is mul, add, add instead of four deep.
            nx = (lin[j, 0, 0] * x + lin[j, 0, 1] * y) + (lin[j, 0, 2] * z + shift[j, 0])
            ny = (lin[j, 1, 0] * x + lin[j, 1, 1] * y) + (lin[j, 1, 2] * z + shift[j, 1])
            nz = (lin[j, 2, 0] * x + lin[j, 2, 1] * y) + (lin[j, 2, 2] * z + shift[j, 2])
            # NaN fails every comparison, so this one test catches NaN and +-inf.
            if not (abs(nx) + abs(ny) + abs(nz) < np.inf):
                return s, x, y, z
            x = nx
            y = ny
            z = nz
        i = start + 1 + s
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z
    return n_steps, x, y, z


@nb.njit(cache=True, nogil=True)
def chaos_game_3d(lin, shift, cum, uniforms, n_points, out):
    """Run the 3D chaos game from the origin, which is kept as point 0.

    Args:
        lin: (N, 3, 3) float64 linear parts.
        shift: (N, 3) float64 translations.
        cum: (N,) cumulative probabilities in map order.
        uniforms: (>= n_points - 1,) float64; step ``i`` uses ``uniforms[i - 1]``.
        n_points: points wanted, including the start point.
        out: (>= n_points, 3) float64 output.

    Returns:
        The number of finite points written. Fewer than ``n_points`` means point ``count`` had a
        non-finite coordinate (the system diverged); it and later points are not written.
    """
    out[0, :] = 0.0
    done, _, _, _ = _run(lin, shift, cum, cum.shape[0], uniforms, n_points - 1, 0, 0.0, 0.0, 0.0, out)
    return done + 1


@nb.njit(cache=True, nogil=True)
def normalize_cloud(pts, n):
    """In place on ``pts[:n]`` (n, 3): jointly to [-1, 1], then minus the centroid.

    Returns:
        False (leaving ``pts`` partly changed) when a value is not finite or all values are
        equal, i.e. when NumPy's version of the formula would produce a NaN.
    """
    if n < 1:
        return False
    lo = np.inf
    hi = -np.inf
    for i in range(n):
        for k in range(3):
            v = pts[i, k]
            if not (abs(v) < np.inf):
                return False
            lo = min(lo, v)
            hi = max(hi, v)
    span = hi - lo
    if not (0.0 < span < np.inf):
        return False
    for i in range(n):
        for k in range(3):
            pts[i, k] = (pts[i, k] - lo) / span * 2.0 - 1.0
    for k in range(3):
        total = 0.0
        for i in range(n):
            total += pts[i, k]
        mean = total / n
        for i in range(n):
            pts[i, k] -= mean
    return True


@nb.njit(cache=True, nogil=True)
def normalized_variances(pts, n, out):
    """Per-axis variance of ``pts[:n]`` after ``normalize_cloud``, into ``out`` (3,), read-only.

    Shifts do not change a variance, so the answer is the variance (ddof 0) of
    ``w = (v - lo) * (2 / span)``, recomputed on the fly instead of stored. Every sum is of values
    in [0, 2], so nothing overflows even for clouds near 1e308. This is the search's test; it agrees
    with the variances of ``normalize_cloud``'s output to rounding. ``pts`` must be finite.

    Returns:
        False when all values are equal or their range overflows (``normalize_cloud`` fails).
    """
    lo = pts[0, 0]
    hi = pts[0, 0]
    for i in range(n):
        lo = min(lo, min(pts[i, 0], min(pts[i, 1], pts[i, 2])))
        hi = max(hi, max(pts[i, 0], max(pts[i, 1], pts[i, 2])))
    span = hi - lo
    if not (0.0 < span < np.inf):
        return False
    scale = 2.0 / span  # a multiply per value instead of a divide
    if not scale < np.inf:  # span below 2 / DBL_MAX: subnormal, treat as degenerate
        return False
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for i in range(n):
        s0 += (pts[i, 0] - lo) * scale
        s1 += (pts[i, 1] - lo) * scale
        s2 += (pts[i, 2] - lo) * scale
    m0 = s0 / n
    m1 = s1 / n
    m2 = s2 / n
    q0 = 0.0
    q1 = 0.0
    q2 = 0.0
    for i in range(n):
        d0 = (pts[i, 0] - lo) * scale - m0
        d1 = (pts[i, 1] - lo) * scale - m1
        d2 = (pts[i, 2] - lo) * scale - m2
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
    out[0] = q0 / n
    out[1] = q1 / n
    out[2] = q2 / n
    return True


@nb.njit(cache=True, nogil=True)
def _split(params, n_maps, lin, shift, cum):
    """Unpack an (>= n_maps, 12) parameter table; returns False when every det is 0."""
    total = 0.0
    dets = np.empty(n_maps)
    for i in range(n_maps):
        for r in range(3):
            for c in range(3):
                lin[i, r, c] = params[i, 3 * r + c]
            shift[i, r] = params[i, 9 + r]
        dets[i] = abs(_det3(lin[i]))
        total += dets[i]
    if not total > 0.0:
        return False
    acc = 0.0
    for i in range(n_maps):
        acc += dets[i] / total
        cum[i] = acc
    return True


@nb.njit(cache=True, nogil=True)
def _draw_batch(state, n, n_words, params_out, nmaps_out, states_out):
    """Draw ``n`` candidates' maps and snapshot the state where each one's uniforms begin.

    ``uniform(-1, 1)`` is ``-1 + 2 * random_sample()`` in NumPy's legacy generator; the
    uniforms themselves (``n_words`` words) are skipped here and regenerated by the scorer.
    """
    for k in range(n):
        n_maps = mt.randint_masked(state, 2, MAX_MAPS + 1)
        nmaps_out[k] = n_maps
        for i in range(n_maps):
            for j in range(N_PARAMS):
                params_out[k, i, j] = -1.0 + 2.0 * mt.next_double(state)
        states_out[k, :] = state
        mt.skip(state, n_words)


@nb.njit(cache=True, nogil=True)
def _score(params, nmaps, states, index, n_points, min_var, variances, accepted):
    """Variance test of the candidates ``index`` (a shard of the batch).

    The uniforms are regenerated from the snapshot a block at a time, so a candidate that
    diverges early costs little.
    """
    pts = np.empty((n_points, 3))
    lin = np.empty((MAX_MAPS, 3, 3))
    shift = np.empty((MAX_MAPS, 3))
    cum_all = np.empty(MAX_MAPS)
    state = np.empty(states.shape[1], dtype=np.uint32)
    var = np.empty(3)
    buf = np.empty(CHUNK)
    for k in index:
        n_maps = nmaps[k]
        accepted[k] = False
        variances[k, :] = np.nan
        if not _split(params[k], n_maps, lin, shift, cum_all):
            continue
        state[:] = states[k]
        pts[0, :] = 0.0
        x = 0.0
        y = 0.0
        z = 0.0
        finite = True
        start = 0
        while start < n_points - 1:
            # Uniforms a block at a time: a diverging candidate stops within one block.
            step = min(CHUNK, n_points - 1 - start)
            mt.fill_doubles(state, buf, step)
            done, x, y, z = _run(lin, shift, cum_all, n_maps, buf, step, start, x, y, z, pts)
            if done < step:
                finite = False
                break
            start += step
        if not finite or not normalized_variances(pts, n_points, var):
            continue
        variances[k, :] = var
        accepted[k] = var[0] > min_var and var[1] > min_var and var[2] > min_var


@nb.njit(cache=True, nogil=True)
def render_views(pts, n, views, focal, near, far, values, use_depth, images, depth):
    """Draw ``pts[:n]`` from each camera in ``views`` with a z-buffer.

    Args:
        pts: (>= n, 3) float64 world coordinates.
        n: points to draw.
        views: (V, 3, 4) float64 world-to-camera matrices ``[R | -R eye]``; rows are the camera's
            right, up and backward axes (OpenGL: the camera looks down its -z axis).
        focal: ``1 / tan(fov / 2)`` (square image, so the same for x and y).
        near, far: depth range kept, in world units along the viewing direction.
        values: (>= n,) uint8 value of each point (255 for white).
        use_depth: keep the nearest point per pixel. When every point has the same value the
            z-buffer cannot change the image, so callers pass False and skip its unpredictable
            compare (same bytes, about twice as fast).
        images: (V, H, W) uint8 output, cleared to 0 (black) first.
        depth: (H, W) float64 scratch z-buffer (unused when ``use_depth`` is False).
    """
    h = images.shape[1]
    w = images.shape[2]
    # Pixel = floor((f * xc / d + 1) * w / 2): fold the constants once per view.
    hx = 0.5 * w
    hy = 0.5 * h
    off = h * w  # pixel index meaning "dropped"
    pix = np.empty(n, dtype=np.int64)
    dist = np.empty(n)
    for v in range(views.shape[0]):
        r00, r01, r02, r03 = views[v, 0, 0], views[v, 0, 1], views[v, 0, 2], views[v, 0, 3]
        r10, r11, r12, r13 = views[v, 1, 0], views[v, 1, 1], views[v, 1, 2], views[v, 1, 3]
        r20, r21, r22, r23 = views[v, 2, 0], views[v, 2, 1], views[v, 2, 2], views[v, 2, 3]
        # Two passes: project every point, then draw. In one pass each image store waits on a
        # long address computation and holds up the next point's loads (measured 2x slower).
        for i in range(n):
            px = pts[i, 0]
            py = pts[i, 1]
            pz = pts[i, 2]
            d = -(r20 * px + r21 * py + r22 * pz + r23)
            xc = r00 * px + r01 * py + r02 * pz + r03
            yc = r10 * px + r11 * py + r12 * pz + r13
            g = focal / d
            sx = (g * xc + 1.0) * hx
            sy = (1.0 - g * yc) * hy
            # NaN fails every comparison, so a NaN projection is dropped too.
            inside = (near <= d) & (d <= far) & (0.0 <= sx) & (sx < w) & (0.0 <= sy) & (sy < h)
            pix[i] = np.int64(sy) * w + np.int64(sx) if inside else off
            dist[i] = d
        flat = images[v].ravel()
        flat[:] = 0
        if use_depth:
            zbuf = depth.ravel()
            zbuf[:] = np.inf
            for i in range(n):
                k = pix[i]
                if k < off and dist[i] < zbuf[k]:
                    zbuf[k] = dist[i]
                    flat[k] = values[i]
        else:
            for i in range(n):
                k = pix[i]
                if k < off:
                    flat[k] = values[i]
