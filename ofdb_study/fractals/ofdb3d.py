"""3D-OFDB: 3D IFS categories, their seeded search and a numba multi-view point renderer.

The numba kernels are in ``kernels3d``; this module defines the system,
its CSV format, the search and the renderer's API.

A 3D category is N affine maps ``x' = A_i x + t_i`` (``A_i`` 3x3, ``t_i`` in R^3) chosen with
probabilities ``p_i`` proportional to ``|det A_i|`` (public 3D-OFDB generator, ryoo-nakamura/OFDB
``3d-ofdb-generator/3dfractal_render/category_search.py``). On disk one category is one
CSV file, one row per map of 13 numbers, NumPy ``savetxt``'s ``%.18e`` joined by commas::

    a11,a12,a13,a21,a22,a23,a31,a32,a33,t1,t2,t3,p

(``A`` row-major, then ``t``, then the probability), so ``a11`` is the public generator's ``a``.

The search (our definition; the public 3D stream is not published)
------------------------------------------------------------------
One MT19937 stream, ``np.random.RandomState(seed)``, seeded once. Per candidate, in this order:

1. ``N = randint(2, 8)`` (2..7 maps);
2. ``uniform(-1, 1, size=(N, 12))``: per map the 12 numbers in the CSV order above;
3. ``p_i = |det A_i| / sum_j |det A_j|`` (summed and divided in map order; no draws);
4. ``random_sample(points)`` (10,000 by default): the chaos-game uniforms, always drawn in full.

The chaos game starts at the origin, which is kept as point 0; step ``i`` (1..points-1) uses
uniform ``i - 1`` and the first map ``j`` with ``r <= cumsum(p)[j]`` (the point repeats when none
qualifies), so the last uniform is drawn but unused, as in the 2D search. A step computes
``x' = (A00 x + A01 y) + (A02 z + t0)`` (likewise y', z') in float64 without fast-math, so the
points are the same on every machine. The candidate is accepted when every point is finite and,
after normalising all coordinates jointly to [-1, 1] (``(v - min) / (max - min) * 2 - 1`` over
all 3 x points numbers) and subtracting the centroid, the population variance of each of x, y
and z exceeds ``min_var`` (0.05). The draws are exactly NumPy's (``tests/test_ofdb3d.py``
replays the stream with NumPy); the variance is computed without storing the normalised cloud
(``normalized_variances``), equal to normalise-then-``var`` up to rounding.

Rendering
---------
The instance is the chaos game of the system with ``A[0, 0]`` multiplied by ``a_weight`` (0.4 in
the public generator; 1.0 is the unweighted system), run for ``points`` points (10,000 by
default, the public instance renderer's count) on the seed-100 stream shared by every category (the 2D generators' convention),
normalised as in the search. Points after a divergence (a non-finite coordinate) are dropped. The
camera is OpenGL's ``gluPerspective(45, 1, 1, 100)`` + ``gluLookAt(eye, origin, +y)`` with
``eye = 4 (sin theta, 0, cos theta)``; view ``k`` of category ``c`` has
``theta_k = 2 pi k / 12 + 30 deg + u_k`` with ``u_k`` uniform in ``[-jitter, jitter]`` degrees from
``np.random.default_rng([seed, c])``; the default half-width is pi degrees, as the public camera
(``radians(uniform(-pi, pi))``). Views are 224 x 224 by default. A point at depth ``d`` (along the viewing direction) and
camera coordinates ``(xc, yc)`` lands at column ``floor((g xc + 1) W / 2)`` and row
``floor((1 - g yc) H / 2)`` with ``g = f / d`` and ``f = 1 / tan(fov / 2)``, so the origin is at
pixel (row, column) = (H / 2, W / 2); points outside ``near <= d <= far`` or outside the image are
dropped; a z-buffer keeps the nearest point of each pixel; points are white (255) on black, one
pixel each (with one value for all points the z-buffer cannot change the image and is skipped).
The images are (H, W) uint8 gray; a loader converts them to RGB like any ImageFolder image.

Random pattern for 3D
---------------------
With one gray value and one pixel per point, a view's lit pixels are exactly its projected
points (duplicates merged), so ``view_pixels`` recovers them from the image (or its PNG) without
re-rendering, and ``pattern_view`` re-stamps each lit pixel with a seeded random 3x3 mask under
the 2D patch rule (``kernels.draw_patches``: mask 1..511, bit ``3 r + c`` lights row r, column c
with 127, block at (x + 1, y + 1), later pixels overwrite earlier ones, in row-major order). This
is the paper's random-pattern augmentation carried to the 3D views ("3D-OFDB w/ Aug").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import (
    COMMON_FILES,
    OUTPUT_KINDS,
    atomic_write_text,
    check_fits,
    prepare_output,
    release_output,
    resolve_workers,
)
from . import ifs as ifs2d
from . import kernels, mt
from .defaults import (
    CHAOS_SEED,
    OFDB3D_A_WEIGHT,
    OFDB3D_JITTER_DEG,
    OFDB3D_POINTS,
    OFDB3D_SEED,
    OFDB3D_SIZE,
    OFDB3D_VIEWS,
    SEARCH3D_MIN_VAR,
    SEARCH3D_POINTS,
)
from .ifs import check_categories, write_csv
from .kernels3d import (
    MAX_MAPS,
    N_PARAMS,
    _det3,
    _draw_batch,
    _score,
    chaos_game_3d,
    normalize_cloud,
    normalized_variances,
    render_views,
)
from .search import scan

#: Stream used for every render's map choices (the 2D generators reset theirs to 100 as well).
RENDER_SEED = CHAOS_SEED
DEFAULT_A_WEIGHT = OFDB3D_A_WEIGHT
DEFAULT_JITTER_DEG = OFDB3D_JITTER_DEG
#: Jitter must stay below half the 30-degree spacing so that views keep their order.
MAX_JITTER_DEG = 15.0
VIEW_OFFSET_DEG = 30.0
FOV_DEG = 45.0
NEAR = 1.0
FAR = 100.0
DISTANCE = 4.0
MIN_SIZE = 8
WHITE = 255
SEARCH3D_LOG = "search3d_log.csv"
#: What a 3D search folder owns (``files.prepare_output``): its categories, log and temporaries.
SEARCH3D_FILES = (*OUTPUT_KINDS["search3d"]["files"], *COMMON_FILES)


# ----------------------------------------------------------------------------------------------
# The system and its CSV format.


@dataclass(frozen=True, eq=False)
class IFS3D:
    """One 3D IFS category.

    Attributes:
        A: float64 (N, 3, 3), the linear parts.
        t: float64 (N, 3), the translations.
        probs: float64 (N,), the map probabilities (sum 1), in map order.
    """

    A: np.ndarray
    t: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        A = np.ascontiguousarray(self.A, dtype=np.float64)
        t = np.ascontiguousarray(self.t, dtype=np.float64)
        probs = np.ascontiguousarray(self.probs, dtype=np.float64)
        if A.ndim != 3 or A.shape[1:] != (3, 3) or A.shape[0] < 1:
            raise ParamError("A", f"must have shape (N, 3, 3) with N >= 1, got {A.shape}")
        n = A.shape[0]
        if t.shape != (n, 3):
            raise ParamError("t", f"must have shape ({n}, 3), got {t.shape}")
        if probs.shape != (n,):
            raise ParamError("probs", f"must have shape ({n},), got {probs.shape}")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "probs", probs)

    @property
    def n_maps(self) -> int:
        return int(self.A.shape[0])

    @classmethod
    def from_params(cls, params: np.ndarray) -> IFS3D:
        """From an (N, 12) table (``A`` row-major, then ``t``), with ``p`` from the determinants."""
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 2 or params.shape[1] != N_PARAMS or params.shape[0] < 1:
            raise ParamError("params", f"must have shape (N, 12) with N >= 1, got {params.shape}")
        A = params[:, :9].reshape(-1, 3, 3)
        return cls(A, params[:, 9:], probabilities_from_determinants(A))

    def cumulative(self) -> np.ndarray:
        """Cumulative probabilities accumulated in map order, as the chaos game compares them."""
        return ifs2d.cumulative_probs(self.probs)

    def weighted(self, a_weight: float) -> IFS3D:
        """A copy with every map's ``A[0, 0]`` multiplied by ``a_weight`` (probabilities kept)."""
        a_weight = check_weight(a_weight)
        A = self.A.copy()
        A[:, 0, 0] *= a_weight
        return IFS3D(A, self.t.copy(), self.probs.copy())

    def to_rows(self) -> np.ndarray:
        """The CSV table, shape (N, 13): ``A`` row-major, ``t``, ``p``."""
        return np.column_stack([self.A.reshape(-1, 9), self.t, self.probs])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IFS3D):
            return NotImplemented
        return (
            np.array_equal(self.A, other.A)
            and np.array_equal(self.t, other.t)
            and np.array_equal(self.probs, other.probs)
        )

    def __repr__(self) -> str:
        return f"IFS3D(n_maps={self.n_maps})"


def probabilities_from_determinants(A: np.ndarray) -> np.ndarray:
    """``p_i = |det A_i|`` normalised to sum 1 (summed in map order), shape (N,).

    The determinant is expanded along the first row in a fixed order (not LAPACK's LU), so the
    numba search kernel computes bit-identical values.
    """
    A = np.asarray(A, dtype=np.float64)
    dets = np.array([abs(_det3(A[i])) for i in range(A.shape[0])])
    total = 0.0
    for v in dets:
        total += float(v)
    if not total > 0.0:
        raise ParamError("A", "all determinants are 0: no map can be chosen")
    return dets / total


def check_weight(a_weight: float) -> float:
    """``a_weight`` as a float when finite and > 0; ParamError otherwise."""
    try:
        w = float(a_weight)
    except (TypeError, ValueError):
        raise ParamError("a_weight", f"must be a number > 0, got {a_weight!r}") from None
    if not (math.isfinite(w) and w > 0.0):
        raise ParamError("a_weight", f"must be finite and > 0, got {a_weight!r}")
    return w


def read_csv(path: str | os.PathLike) -> IFS3D:
    """Read one 3D category CSV (13 numbers per row: A row-major, t, p); errors as ``ifs.read_table``."""
    table = ifs2d.read_table(path, N_PARAMS + 1, "(A, t, p)")
    return IFS3D(table[:, :9].reshape(-1, 3, 3), table[:, 9:12], table[:, 12])


def read_dir(directory: str | os.PathLike, limit: int | None = None) -> list[IFS3D]:
    """Read the first ``limit`` (default all) ``NNNNN.csv`` categories of a folder, in order."""
    return ifs2d.read_dir(directory, limit, reader=read_csv)


# ----------------------------------------------------------------------------------------------
# Search.


@dataclass(frozen=True)
class Search3DSettings:
    """What defines a 3D search; equal settings give equal categories."""

    seed: int = OFDB3D_SEED
    points: int = SEARCH3D_POINTS
    min_var: float = SEARCH3D_MIN_VAR

    def validate(self) -> Search3DSettings:
        check_positive_int("seed", self.seed, minimum=0)
        if self.seed > 2**32 - 1:
            raise ParamError("seed", f"must be between 0 and 2**32 - 1, got {self.seed}")
        check_positive_int("points", self.points, minimum=2)
        check_fits("points", self.points * 3 * 8 * 2, f"{self.points:,} points")  # xyz and a copy, float64
        if not (math.isfinite(float(self.min_var)) and float(self.min_var) >= 0.0):
            raise ParamError("min_var", f"must be finite and >= 0, got {self.min_var!r}")
        return self


@dataclass
class Search3DResult:
    """Accepted categories, in order, with their 1-based candidate numbers and variances (3,)."""

    settings: Search3DSettings
    categories: list[IFS3D] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    variances: list[np.ndarray] = field(default_factory=list)
    n_candidates: int = 0

    @property
    def acceptance_rate(self) -> float:
        return len(self.categories) / max(self.n_candidates, 1)


def search3d(
    n_categories: int,
    settings: Search3DSettings | None = None,
    *,
    workers: int | None = None,
    batch: int = 512,
    progress: bool = False,
) -> Search3DResult:
    """Run the seeded 3D category search until ``n_categories`` systems are accepted.

    A producer walks the MT stream (maps drawn, uniforms skipped without tempering) while
    ``workers`` threads run ``nogil`` scoring kernels on the previous batch; acceptance is then
    read in candidate order, so the result does not depend on ``workers`` or ``batch``.

    Args:
        n_categories: categories wanted.
        settings: seed, points per candidate, variance threshold.
        workers: scoring threads (default: ``files.usable_cpus()``).
        batch: candidates per producer step.
        progress: show a tqdm bar.

    Returns:
        The first ``n_categories`` accepted categories and their bookkeeping.
    """
    settings = (settings or Search3DSettings()).validate()
    n_categories = check_categories(n_categories)
    workers = resolve_workers(workers)
    batch = check_positive_int("batch", batch)
    result = Search3DResult(settings=settings)
    state = mt.legacy_state(settings.seed)
    words = 2 * settings.points

    def draw():
        drawn = (
            np.zeros((batch, MAX_MAPS, N_PARAMS)),
            np.zeros(batch, dtype=np.int64),
            np.zeros((batch, mt.STATE_LEN), dtype=np.uint32),
        )
        _draw_batch(state, batch, words, *drawn)
        return (*drawn, np.empty((batch, 3)), np.zeros(batch, dtype=np.bool_))  # variances, accepted

    def score(drawn, shard):
        _score(*drawn[:3], shard, settings.points, float(settings.min_var), *drawn[3:])

    def take(drawn):
        params, nmaps, _, var, ok = drawn
        for k in range(batch):
            result.n_candidates += 1
            if ok[k]:
                result.categories.append(IFS3D.from_params(params[k, : nmaps[k]]))
                result.candidates.append(result.n_candidates)
                result.variances.append(var[k].copy())
                if len(result.categories) == n_categories:
                    break

    scan(
        draw,
        score,
        take,
        lambda: len(result.categories),
        n_categories,
        batch=batch,
        workers=workers,
        progress=progress,
        desc="search3d",
    )
    return result


def score_system(
    ifs: IFS3D, uniforms: np.ndarray, min_var: float = SEARCH3D_MIN_VAR
) -> tuple[bool, np.ndarray]:
    """The search's acceptance test for one system and its chaos-game uniforms.

    Args:
        ifs: the system.
        uniforms: (points,) float64; the first ``points - 1`` drive the map choices.
        min_var: the variance each axis must exceed.

    Returns:
        ``(accepted, variances)``; variances (3,) are NaN when the cloud is not finite.
    """
    uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
    n = check_positive_int("points", uniforms.shape[0], minimum=2)
    pts = np.empty((n, 3))
    count = chaos_game_3d(ifs.A, ifs.t, ifs.cumulative(), uniforms, n, pts)
    var = np.full(3, np.nan)
    if count < n or not normalized_variances(pts, n, var):
        return False, np.full(3, np.nan)
    return bool(np.all(var > min_var)), var


def search3d_to_dir(
    out: str | os.PathLike,
    n_categories: int,
    settings: Search3DSettings | None = None,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
) -> Search3DResult:
    """Search and write ``out/NNNNN.csv`` plus ``out/search3d_log.csv`` (candidate, variances).

    A folder that holds a 3D search (``SEARCH3D_FILES``) is refused unless ``force``, which removes
    those files first (``files.prepare_output``). Everything is validated before anything is written.
    """
    settings = (settings or Search3DSettings()).validate()
    n_categories = check_categories(n_categories)
    if workers is not None:
        check_positive_int("workers", workers)
    out = Path(out)
    prepare_output(out, owned="search3d", force=force, resumable=False, lock=True)
    result = search3d(n_categories, settings, workers=workers, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["category,candidate,n_maps,var_x,var_y,var_z\n"]
    for i, (ifs, cand, var) in enumerate(zip(result.categories, result.candidates, result.variances)):
        write_csv(out / f"{i:05d}.csv", ifs)
        lines.append(f"{i:05d},{cand},{ifs.n_maps},{var[0]:.6f},{var[1]:.6f},{var[2]:.6f}\n")
    atomic_write_text(out / SEARCH3D_LOG, "".join(lines))
    release_output(out)
    return result


# ----------------------------------------------------------------------------------------------
# Camera and rendering.


def check_render_args(size: int, points: int, views: int, jitter: float, a_weight: float) -> None:
    """Raise ParamError for a bad render setting (before anything is computed or written)."""
    check_positive_int("size", size, minimum=MIN_SIZE)
    check_positive_int("points", points, minimum=2)
    check_positive_int("views", views)
    check_fits("points", points * 3 * 8 * 2, f"{points:,} points")  # xyz and a copy, float64
    check_fits("size", size * size * 8 * 2, f"a {size:,} px view")
    check_weight(a_weight)
    try:
        j = float(jitter)
    except (TypeError, ValueError):
        raise ParamError("jitter", f"must be a number of degrees, got {jitter!r}") from None
    if not (0.0 <= j < MAX_JITTER_DEG):
        raise ParamError("jitter", f"must be in [0, {MAX_JITTER_DEG}) degrees, got {jitter!r}")


def view_angles(
    views: int = OFDB3D_VIEWS, *, jitter: float = DEFAULT_JITTER_DEG, seed: int = OFDB3D_SEED, index: int = 0
) -> np.ndarray:
    """Azimuths (radians), shape (views,): ``2 pi k / views + 30 deg + u_k``.

    ``u_k`` is uniform in ``[-jitter, jitter]`` degrees from ``np.random.default_rng([seed,
    index])`` (``index`` is the category number), drawn even when ``jitter`` is 0 so that the
    stream does not depend on it.
    """
    views = check_positive_int("views", views)
    u = np.random.default_rng([int(seed), int(index)]).uniform(-1.0, 1.0, views)
    k = np.arange(views)
    return 2.0 * np.pi * k / views + np.deg2rad(VIEW_OFFSET_DEG) + np.deg2rad(float(jitter)) * u


def look_at(angle: float, distance: float = DISTANCE) -> np.ndarray:
    """World-to-camera matrix (3, 4) of ``gluLookAt(eye, origin, up=+y)``.

    ``eye = distance (sin angle, 0, cos angle)``; angle 0 looks down -z from +z (OpenGL's
    default view), and increasing angles orbit counter-clockwise seen from +y. The rows are the
    camera's right ``(cos, 0, -sin)``, up ``(0, 1, 0)`` and backward ``(sin, 0, cos)`` axes, written
    in closed form so that the translation is exactly ``(0, 0, -distance)``: the origin then maps to
    the image centre without rounding noise.
    """
    c = math.cos(angle)
    s = math.sin(angle)
    return np.array([[c, 0.0, -s, 0.0], [0.0, 1.0, 0.0, 0.0], [s, 0.0, c, -float(distance)]])


def render_cloud(
    pts: np.ndarray,
    angles: np.ndarray,
    *,
    size: int = OFDB3D_SIZE,
    fov: float = FOV_DEG,
    near: float = NEAR,
    far: float = FAR,
    distance: float = DISTANCE,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """Render a point cloud (n, 3) from each azimuth in ``angles``; returns (V, size, size) uint8.

    ``values`` (n,) uint8 gives each point's gray level (default all white).
    """
    pts = np.ascontiguousarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ParamError("points", f"must have shape (n, 3), got {pts.shape}")
    size = check_positive_int("size", size, minimum=MIN_SIZE)
    if values is None:
        values = np.full(pts.shape[0], WHITE, dtype=np.uint8)
    values = np.ascontiguousarray(values, dtype=np.uint8)
    if values.shape != (pts.shape[0],):
        raise ParamError("values", f"must have shape ({pts.shape[0]},), got {values.shape}")
    views = np.stack([look_at(float(a), distance) for a in np.atleast_1d(angles)])
    images = np.empty((views.shape[0], size, size), dtype=np.uint8)
    depth = np.empty((size, size))
    focal = 1.0 / math.tan(math.radians(fov) / 2.0)
    uniform = values.size == 0 or bool(np.all(values == values[0]))
    render_views(pts, pts.shape[0], views, focal, float(near), float(far), values, not uniform, images, depth)
    return images


def instance_cloud(
    ifs: IFS3D, *, points: int = OFDB3D_POINTS, a_weight: float = DEFAULT_A_WEIGHT
) -> np.ndarray:
    """The rendered instance: weighted chaos game, normalised and centred; shape (m, 3), m <= points.

    Points from the first non-finite one on are dropped; a cloud that cannot be normalised
    (fewer than 2 points left, or all equal) comes back empty.
    """
    points = check_positive_int("points", points, minimum=2)
    system = ifs.weighted(a_weight)
    pts = np.empty((points, 3))
    count = chaos_game_3d(
        system.A, system.t, system.cumulative(), mt.chaos_uniforms(points, RENDER_SEED), points, pts
    )
    pts = pts[:count]
    if count < 2 or not normalize_cloud(pts, count):
        return np.empty((0, 3))
    return pts


def render_category(
    ifs: IFS3D,
    *,
    index: int = 0,
    seed: int = OFDB3D_SEED,
    views: int = OFDB3D_VIEWS,
    size: int = OFDB3D_SIZE,
    a_weight: float = DEFAULT_A_WEIGHT,
    jitter: float = DEFAULT_JITTER_DEG,
    points: int = OFDB3D_POINTS,
) -> np.ndarray:
    """The ``views`` images of one category, shape (views, size, size) uint8.

    Args:
        ifs: the category (unweighted, as stored).
        index: category number (seeds the view jitter with ``seed``).
        seed: base seed of the view jitter.
        views, size: number of views and image side in pixels.
        a_weight: factor on every map's ``A[0, 0]`` (0.4 public generator, 1.0 unweighted).
        jitter: half-width in degrees of the uniform azimuth jitter.
        points: chaos-game points of the instance.
    """
    check_render_args(size, points, views, jitter, a_weight)
    cloud = instance_cloud(ifs, points=points, a_weight=a_weight)
    return render_cloud(cloud, view_angles(views, jitter=jitter, seed=seed, index=index), size=size)


def diverged_categories(
    systems: list[IFS3D], *, points: int = OFDB3D_POINTS, a_weight: float = DEFAULT_A_WEIGHT
) -> list[str]:
    """Names (``NNNNN``) of the categories whose weighted instance diverges before ``points``.

    The search tests the unweighted system; with the public ``A[0, 0]`` x 0.4 a few accepted
    systems (3 of the first 1,000 at seed 1) reach a non-finite point, and their views show only
    the points before it. ``build_ofdb3d`` records them in the manifest as ``diverged``.
    """
    return [
        f"{i:05d}"
        for i, s in enumerate(systems)
        if instance_cloud(s, points=points, a_weight=a_weight).shape[0] < points
    ]


def view_pixels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lit pixels of a point-rendered view, as the patch kernels take them.

    Args:
        image: (S, S) uint8 view (0 is background), or (S, S, 3).

    Returns:
        ``(x, y)``: uint16 columns and rows of the lit pixels in row-major order, shape (m,) each.
    """
    lit = image if image.ndim == 2 else image.max(axis=2)
    if lit.ndim != 2 or lit.shape[0] != lit.shape[1]:
        raise ParamError("image", f"must be a square (S, S) or (S, S, 3) view, got shape {image.shape}")
    rows, cols = np.nonzero(lit)
    return cols.astype(np.uint16), rows.astype(np.uint16)


def pattern_view(pixels: tuple[np.ndarray, np.ndarray], size: int, seed: int) -> np.ndarray:
    """Random pattern for a 3D view: each lit pixel re-stamped with a seeded random 3x3 mask.

    Args:
        pixels: ``(x, y)`` from ``view_pixels``.
        size: image side in pixels.
        seed: mask seed (>= 0); the same seed gives the same bytes.

    Returns:
        uint8 (size, size): 127 where a mask bit is on, 0 elsewhere (the 2D patch rule, no flip).
    """
    size = check_positive_int("size", size, minimum=MIN_SIZE)
    check_positive_int("seed", seed, minimum=0)
    x = np.ascontiguousarray(pixels[0], dtype=np.uint16)
    y = np.ascontiguousarray(pixels[1], dtype=np.uint16)
    if x.shape != y.shape or x.ndim != 1:
        raise ParamError("pixels", f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    out = np.empty((size, size), dtype=np.uint8)
    kernels.draw_patches(x, y, x.shape[0], size, False, int(seed), out)
    return out


def build_ofdb3d(
    out: str | os.PathLike,
    categories: int,
    *,
    seed: int = OFDB3D_SEED,
    params: str | os.PathLike | None = None,
    views: int = OFDB3D_VIEWS,
    size: int = OFDB3D_SIZE,
    a_weight: float = DEFAULT_A_WEIGHT,
    jitter: float = DEFAULT_JITTER_DEG,
    points: int = OFDB3D_POINTS,
    search_points: int = SEARCH3D_POINTS,
    min_var: float = SEARCH3D_MIN_VAR,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """3D-OFDB-N: ``views`` images per category, ``DIR/NNNNN/NNNNN_vVV.png``, with a manifest.

    Categories come from ``params`` (a folder of 3D ``NNNNN.csv`` files) or from
    ``search3d(categories, Search3DSettings(seed, search_points, min_var))``. ``seed`` also seeds
    the view jitter. One job per category renders all its views from one point cloud. The
    manifest's ``diverged`` lists the categories whose weighted instance diverges
    (``diverged_categories``).
    """
    from .build import write_image_tree  # the writer imports the 2D renderer; keep it lazy

    categories = check_categories(categories)
    check_render_args(size, points, views, jitter, a_weight)
    settings3d = Search3DSettings(seed, search_points, min_var).validate()
    if workers is not None:
        check_positive_int("workers", workers)
    if params is not None:
        systems = read_dir(params, limit=categories)
    else:
        systems = search3d(categories, settings3d, workers=workers, progress=progress).categories
    settings = {
        "categories": categories,
        "views": views,
        "size": size,
        "a_weight": float(a_weight),
        "jitter_deg": float(jitter),
        "points": points,
        "seed": seed,
        "chaos_seed": RENDER_SEED,
        "fov_deg": FOV_DEG,
        "near": NEAR,
        "far": FAR,
        "distance": DISTANCE,
        "view_offset_deg": VIEW_OFFSET_DEG,
        "params": (
            f"search3d seed {seed}, {search_points} points, min_var {min_var}"
            if params is None
            else str(params)
        ),
    }

    def job(i: int, system: IFS3D):
        name = f"{i:05d}"
        paths = [f"{name}/{name}_v{v:02d}.png" for v in range(views)]

        def fn():
            return list(
                render_category(
                    system,
                    index=i,
                    seed=seed,
                    views=views,
                    size=size,
                    a_weight=a_weight,
                    jitter=jitter,
                    points=points,
                )
            )

        return paths, fn

    jobs = [job(i, s) for i, s in enumerate(systems)]
    extra = {
        "params": {f"{i:05d}": s.to_rows().tolist() for i, s in enumerate(systems)},
        "diverged": diverged_categories(systems, points=points, a_weight=a_weight),
    }
    return write_image_tree(
        out,
        jobs,
        "ofdb3d",
        settings,
        extra=extra,
        resume=resume,
        force=force,
        progress=progress,
        workers=workers,
    )
