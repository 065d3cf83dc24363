"""1p-frac: one fractal and its perturbations as a 1,000-class data set, exact and seeded.

"Scaling Backwards: Minimal Synthetic Pre-training?" (ECCV 2024) pre-trains the OFDB recipe on
the images of a single IFS: class k is the base system with every coefficient perturbed. The
public generator (1p-frac ``render_from_oneparam_mp.py`` and ``utils.py``) draws everything from
unseeded generators and never writes the base system; here every draw comes from a seeded
``numpy.random.Generator`` and every system is written, so the same seed gives the same bytes.

The rule, step by step:

1. Base system (``sample_base``): N = 2 maps from Anderson & Farrell's sigma-factor sampler. For
   each of the 2N singular-vector matrices, the identity with each row's sign flipped at random
   (``sign(random - 0.5)``), rotated by an angle ``uniform(-pi, pi)``; U is the first N, V the
   last N. The sigma factor ``a = uniform(sigma - 0.1, sigma + 0.1)`` fixes the singular values
   (``sample_singular_values``: ``1 >= s1 >= s2 >= 0`` per map and ``sum(s1 + 2 s2) = a``).
   Map i's linear part is ``U_i diag(s_i) V_i`` (a, b / c, d), its translation (e, f)
   ``uniform(-1, 1)``; probabilities ``|det|`` normalised in map order. The draws are made in the
   public sampler's order (signs, angles, a, singular values, translations). Ours, not the
   public code's: the base is drawn again (counted) until its own image passes the fill test of
   step 3 (``sample_base``).
2. Class k (``class_system``): each of the six coefficients of each map times its own
   ``uniform(1 - delta, 1 + delta)`` (map 0's six, then map 1's); the probabilities stay the base
   system's, as in the public generator (it computes them once, from the base).
3. Its image: FractalDB's patch-gray render at 512 px, 100,000 points on the seed-100 chaos
   stream, pad 6, a x 1 (``render.points`` then ``render.draw`` with a seeded 3x3 mask stream),
   flipped top to bottom. The class is kept when its fill rate (lit pixels / pixels) exceeds 0.05
   (the public ``rate > threshold``; at 512 px no count of pixels lands on 0.05 exactly),
   otherwise class k draws new factors and a new mask seed, and the number of draws is counted.

Seeds: the base system (and the mask seed of its test image) uses
``default_rng(SeedSequence([seed, BASE_SALT]))``; class k draws its
factors and mask seeds, attempt after attempt, from ``default_rng(SeedSequence([seed,
CLASS_SALT, k]))``, so classes are independent of each other and of the worker count.
"""

from __future__ import annotations

import dataclasses
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import resolve_workers
from . import render
from .defaults import ONEPFRAC_DELTA, ONEPFRAC_PAD, ONEPFRAC_POINTS, ONEPFRAC_SIGMA, ONEPFRAC_SIZE
from .ifs import IFS, category_name, check_categories, format_rows, probabilities_from_determinants

#: The published recipe: two maps, sigma 3.5 +- 0.1, delta 0.1, 1,000 classes of one image.
N_MAPS = 2
SIGMA = ONEPFRAC_SIGMA
SIGMA_MARGIN = 0.1
DELTA = ONEPFRAC_DELTA
CATEGORIES = 1000
SIZE = ONEPFRAC_SIZE
POINTS = ONEPFRAC_POINTS
PAD = ONEPFRAC_PAD
MIN_FILL = 0.05
#: A class that draws this many images without passing the fill test stops the build.
MAX_ATTEMPTS = 1000
BASE_SALT = 0x1F5A
CLASS_SALT = 0x1F5C


# ----------------------------------------------------------------------------------------------
# The sigma-factor sampler.


def sample_singular_values(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    """Singular values of ``n`` maps whose weighted sum is the sigma factor ``a``.

    Pairs ``(s1, s2)`` with ``1 >= s1 >= s2 >= 0`` and ``sum(s1 + 2 s2) = a`` (``0 < a < 3 n``):
    the first ``n - 1`` pairs are drawn uniformly within what keeps the rest reachable (``p`` is
    what is left of ``a``, ``q`` the least the remaining pairs must still take); the last pair
    is solved from the remainder.

    Returns:
        float64 (n, 2).
    """
    out = np.empty((n, 2))
    left = float(a)  # p: what the remaining pairs must add up to
    floor = float(a) - 3 * n + 3  # q: how much of it the remaining pairs beyond this one cannot take
    for i in range(n - 1):
        s1 = rng.uniform(max(0.0, floor / 3), min(1.0, left))
        floor -= s1
        left -= s1
        s2 = rng.uniform(max(0.0, floor / 2), min(s1, left / 2))
        floor = floor - 2 * s2 + 3
        left -= 2 * s2
        out[i] = s1, s2
    s2 = rng.uniform(max(0.0, (left - 1) / 2), left / 3)
    out[n - 1] = left - 2 * s2, s2
    return out


def _frame(flip_rows: np.ndarray, angle: float) -> tuple[float, float, float, float]:
    """``R(angle) @ diag(flip_rows)`` as (m00, m01, m10, m11), in scalar libm arithmetic."""
    c, s = math.cos(angle), math.sin(angle)
    f0, f1 = float(flip_rows[0]), float(flip_rows[1])
    return c * f0, -s * f1, s * f0, c * f1


def sample_maps(n: int, sigma: float, rng: np.random.Generator, margin: float = SIGMA_MARGIN):
    """``n`` contractive affine maps from the sigma-factor sampler.

    The products are written out in scalar arithmetic (``math.sin``/``cos``, no vectorised
    trigonometry or batched matmul), so the coefficients do not depend on the CPU's SIMD paths.

    Returns:
        ``(maps, a)``: float64 (n, 6) rows ``a, b, c, d, e, f`` and the sigma factor drawn.
    """
    flips = np.sign(rng.random((2 * n, 2)) - 0.5)  # per matrix, a sign for each row of I
    angles = rng.uniform(-np.pi, np.pi, 2 * n)
    frames = [_frame(flips[i], float(angles[i])) for i in range(2 * n)]
    factor = float(rng.uniform(sigma - margin, sigma + margin))
    sv = sample_singular_values(n, factor, rng)
    shift = rng.uniform(-1.0, 1.0, (n, 2))
    maps = np.empty((n, 6))
    for i in range(n):
        u00, u01, u10, u11 = frames[i]
        v00, v01, v10, v11 = frames[n + i]
        s1, s2 = float(sv[i, 0]), float(sv[i, 1])
        # U diag(s) V: (U diag(s))[r, j] = U[r, j] s_j
        a = u00 * s1 * v00 + u01 * s2 * v10
        b = u00 * s1 * v01 + u01 * s2 * v11
        c = u10 * s1 * v00 + u11 * s2 * v10
        d = u10 * s1 * v01 + u11 * s2 * v11
        maps[i] = a, b, c, d, shift[i, 0], shift[i, 1]
    return maps, factor


# ----------------------------------------------------------------------------------------------
# Settings, base system, classes.


@dataclass(frozen=True)
class Settings:
    """What defines a 1p-frac data set; equal settings give equal bytes."""

    categories: int = CATEGORIES
    delta: float = DELTA
    sigma: float = SIGMA
    seed: int = 0
    n_maps: int = N_MAPS
    size: int = SIZE
    points: int = POINTS
    pad: int = PAD
    min_fill: float = MIN_FILL

    def validate(self) -> Settings:
        check_categories(self.categories)
        check_positive_int("seed", self.seed, minimum=0)
        check_positive_int("n_maps", self.n_maps)
        render.check_render_args(self.size, self.points, self.pad, "patch")
        d, s, f = float(self.delta), float(self.sigma), float(self.min_fill)
        if not (math.isfinite(d) and 0.0 <= d < 1.0):
            raise ParamError(
                "delta", f"must be in [0, 1) (factors in [1 - delta, 1 + delta]), got {self.delta!r}"
            )
        top = 3 * self.n_maps
        if not (math.isfinite(s) and SIGMA_MARGIN < s and s + SIGMA_MARGIN < top):
            raise ParamError(
                "sigma",
                f"must be in ({SIGMA_MARGIN}, {top - SIGMA_MARGIN}) for {self.n_maps} maps "
                f"(the sigma factor is drawn from [sigma - 0.1, sigma + 0.1] inside (0, {top})), got {self.sigma!r}",
            )
        if not (math.isfinite(f) and 0.0 <= f < 1.0):
            raise ParamError("min_fill", f"must be in [0, 1), got {self.min_fill!r}")
        return self


def render_system(system: IFS, s: Settings, mask_seed: int) -> np.ndarray:
    """The patch-gray image (S, S) uint8 of ``system`` at the settings' size, points and pad."""
    pts = render.points(system, size=s.size, n_points=s.points, pad=s.pad, a_weight=1.0)
    return render.draw(pts, mode="patch", mask_seed=mask_seed)


@dataclass(frozen=True)
class Base:
    """The base system, its sigma factor and the number of base systems drawn to find it."""

    system: IFS
    sigma_factor: float
    draws: int


def sample_base(s: Settings) -> Base:
    """The base system of ``s.seed``: the first draw of the sampler whose own image passes the
    fill test (a mask seed is drawn after each system).

    The public generator draws one base and never tests it; about half of the sigma-3.5 bases
    fill under 0.05 at 512 px, and with such a base the class loop of a small delta never ends.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(s.seed), BASE_SALT]))
    for draw in range(1, MAX_ATTEMPTS + 1):
        maps, factor = sample_maps(s.n_maps, s.sigma, rng)
        system = IFS(maps, probabilities_from_determinants(maps))
        if render.fill_rate(render_system(system, s, int(rng.integers(0, 2**62)))) > s.min_fill:
            return Base(system, factor, draw)
    raise ParamError("sigma", f"no base system in {MAX_ATTEMPTS} draws fills more than {s.min_fill}")


def class_system(base: IFS, delta: float, rng: np.random.Generator) -> IFS:
    """One perturbation of ``base``: every coefficient times its own ``uniform(1 - d, 1 + d)``."""
    factors = rng.uniform(1.0 - delta, 1.0 + delta, size=base.maps.shape)
    return IFS(base.maps * factors, base.probs.copy())


@dataclass(frozen=True)
class Drawn:
    """Class k as kept: its system, mask seed, image (S, S) uint8, fill rate and draws taken."""

    system: IFS
    mask_seed: int
    image: np.ndarray
    fill: float
    attempts: int


def draw_class(base: IFS, k: int, s: Settings) -> Drawn:
    """Draw class ``k`` until its image passes the fill test (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(s.seed), CLASS_SALT, int(k)]))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        system = class_system(base, s.delta, rng)
        mask_seed = int(rng.integers(0, 2**62))
        image = render_system(system, s, mask_seed)
        fill = render.fill_rate(image)
        if fill > s.min_fill:
            image.flags.writeable = False
            return Drawn(system, mask_seed, image, fill, attempt)
    raise ParamError(
        "delta",
        f"class {k} drew {MAX_ATTEMPTS} images none of which fills more than {s.min_fill}; try a smaller delta",
    )


@dataclass(frozen=True)
class OnePFrac:
    """A generated 1p-frac set: the base system, its sigma factor and every class as kept."""

    settings: Settings
    base: Base
    classes: tuple[Drawn, ...]

    @property
    def redraws(self) -> int:
        """Draws beyond the first, summed over the classes."""
        return sum(c.attempts - 1 for c in self.classes)


def generate(settings: Settings | None = None, *, workers: int | None = None) -> OnePFrac:
    """Generate every class (threads share the work; the result does not depend on ``workers``)."""
    s = (settings or Settings()).validate()
    n_workers = resolve_workers(workers)
    base = sample_base(s)
    with ThreadPoolExecutor(n_workers) as pool:
        classes = tuple(pool.map(lambda k: draw_class(base.system, k, s), range(s.categories)))
    return OnePFrac(s, base, classes)


# ----------------------------------------------------------------------------------------------
# On disk.


def build_onepfrac(
    out: str | os.PathLike,
    settings: Settings | None = None,
    *,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """Write a 1p-frac tree: ``DIR/NNNNN/NNNNN.png`` and ``.csv`` per class, ``DIR/base.csv``.

    The CSVs are the package's official format (``ifs.format_rows``: rows ``a,b,c,d,e,f,p``,
    ``%.18e``); ``manifest.json`` records the settings, the base system and sigma factor, and per
    class its mask seed, fill rate and draws, with the sha256 of every file. Everything is
    generated (and every setting checked) before anything is written.
    """
    from .build import write_image_tree  # the tree writer (journal, resume, manifest)

    s = (settings or Settings()).validate()
    result = generate(s, workers=workers)
    jobs = []
    texts = {"base.csv": format_rows(result.base.system)}
    for k, drawn in enumerate(result.classes):
        name = category_name(k)
        jobs.append((f"{name}/{name}.png", lambda d=drawn: d.image))
        texts[f"{name}/{name}.csv"] = format_rows(drawn.system)
    extra = {
        "base": result.base.system.to_rows().tolist(),
        "sigma_factor": result.base.sigma_factor,
        "base_draws": result.base.draws,
        "redraws": result.redraws,
        "classes": {
            category_name(k): {"mask_seed": d.mask_seed, "fill": d.fill, "attempts": d.attempts}
            for k, d in enumerate(result.classes)
        },
    }
    settings_doc = {
        **dataclasses.asdict(s),
        "chaos_seed": render.CHAOS_SEED,
        "a_weight": 1.0,
        "draw": "patch",
    }
    return write_image_tree(
        out,
        jobs,
        "1pfrac",
        settings_doc,
        extra=extra,
        texts=texts,
        resume=resume,
        force=force,
        progress=progress,
        workers=workers,
    )


def build_kind(
    out: str | os.PathLike,
    categories: int,
    *,
    delta: float = DELTA,
    sigma: float = SIGMA,
    seed: int = 0,
    size: int = SIZE,
    points: int = POINTS,
    **run,
) -> Path:
    """``build_onepfrac`` called as every kind's builder (``fractals.kinds``): the settings as
    keywords; ``run`` is ``build_onepfrac``'s (workers, resume, force, progress)."""
    settings = Settings(categories=categories, delta=delta, sigma=sigma, seed=seed, size=size, points=points)
    return build_onepfrac(out, settings, **run)
