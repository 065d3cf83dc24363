"""The table of pre-training data kinds: one row per kind, read by every command, source, tag and card.

A run's ``data`` setting names its kind (``kind_of``): an in-memory kind by its name (``ofdb``,
``fractaldb``, ``1pfrac``), a tree on disk by its prefix (``multiview:PATH``), and any other
setting is an ImageFolder ``PATH`` (``folder``). Each row (``Kind``) says what the kind is (title,
the model card's line and tags), the tag its exports carry, whether it is made in memory or read
from disk, whether it reads the exact category search, and how ``python -m ofdb_study build`` makes
it: the builder as ``module:function`` (imported only when called, so the command line stays
light), the defaults of the shared build options and the kind's own options.

The sources that train on a kind are keyed by its name: ``train.pretrain_data.LOADER_SOURCES`` and
``train.batched.sources.BATCHED_SOURCES``; ``tests/test_kinds.py`` checks every row has both.

Plain data and no heavy imports: the renderers, torch and the config are never loaded here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import ParamError
from .defaults import (
    DATA_SEED,
    FRACTALDB_FLIPS,
    FRACTALDB_RENDERS,
    FRACTALDB_ROWS,
    OFDB3D_A_WEIGHT,
    OFDB3D_JITTER_DEG,
    OFDB3D_POINTS,
    OFDB3D_SEED,
    OFDB3D_SIZE,
    OFDB_A_WEIGHT,
    OFDB_POINTS,
    OFDB_SIZE,
    ONEPFRAC_DELTA,
    ONEPFRAC_POINTS,
    ONEPFRAC_SEED,
    ONEPFRAC_SIGMA,
    ONEPFRAC_SIZE,
)

#: Value types of build options, as the command line parses them: ``int``, ``float`` (finite),
#: ``text``, ``weights`` (six finite factors ``a,b,c,d,e,f``).
OPTION_TYPES = ("int", "float", "text", "weights")


@dataclass(frozen=True)
class Option:
    """A builder option of some kinds only: its command-line flag, value type and help.

    The builder's keyword is the key the option has in ``Kind.options``; its default is the value
    there (None: the builder's own default).
    """

    flag: str
    type: str
    help: str


PARAMS = Option("params", "text", "folder of NNNNN.csv (default: run the search)")
DRAW = Option("draw", "text", "point | patch | color")
WEIGHTS = Option("weights", "weights", "factors on a,b,c,d,e,f as well")
FLUCTUATIONS = Option("fluctuations", "int", f"weight rows, 1..{FRACTALDB_ROWS}")
RENDERS = Option("renders", "int", "patch renders per row")
FLIPS = Option("flips", "int", f"flips, 1..{FRACTALDB_FLIPS}")
JITTER = Option("jitter-deg", "float", "half-width of the view jitter in degrees (pi: the public camera's)")
DELTA = Option("delta", "float", "perturbation strength")
SIGMA = Option("sigma", "float", "sigma factor")


@dataclass(frozen=True)
class Kind:
    """One pre-training data kind.

    Attributes:
        name: the kind (``config.data_kind``); in-memory kinds are named by it in ``data``.
        title: its name in prose (``3D-OFDB``).
        about: what it is, for the model card's data table.
        tag: the first word of its exports' tag (``ofdb2d`` in ``ofdb2d_1k``); never changes.
        card_tags: the model card's tags for it.
        searched: its categories are the exact FractalDB category search's (or ``params``).
        prefix: None for a kind generated in memory from the run's settings (``in_memory``); for
            a tree read from disk, what ``data`` starts with before the tree's path (``""``: a
            plain path, the ImageFolder kind).
        first_n: a tree on disk: trains on its first N category folders (N from the run), where
            an ImageFolder tree trains on all of them.
        categories: where the categories come from, for the model card (``str.format`` with
            ``cfg``, the run's config); unused where ``searched``.
        build: the name ``python -m ofdb_study build NAME`` gives it (None: the package does
            not build it).
        builder: ``module:function`` writing its tree, called as ``builder(out, categories,
            workers=, resume=, force=, progress=, **options)``.
        build_defaults: defaults of the shared build options it takes (``size``, ``points``,
            ``a_weight``, ``seed``).
        options: the builder's own options (keyword -> default; ``OPTIONS`` says how each is given).
    """

    name: str
    title: str
    about: str
    tag: str
    card_tags: tuple[str, ...]
    searched: bool = False
    prefix: str | None = None
    first_n: bool = False
    categories: str = "the folders of the tree (one category per folder)"
    build: str | None = None
    builder: str | None = None
    build_defaults: Mapping[str, object] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)

    @property
    def in_memory(self) -> bool:
        """Generated in memory from the run's settings (no tree on disk)."""
        return self.prefix is None

    def load_builder(self) -> Callable:
        """The builder function (imports its module)."""
        if self.builder is None:
            raise ParamError("kind", f"{self.name} is not built by the package")
        module, name = self.builder.split(":")
        return getattr(importlib.import_module(module), name)


_FDSL = "formula-driven-supervised-learning"

#: Every kind, by name. The ImageFolder kind (``prefix=""``) comes last: it takes any other ``data``.
KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        k.name: k
        for k in (
            Kind(
                name="ofdb",
                title="2D-OFDB",
                about="2D-OFDB (one fractal image per category, rendered in memory)",
                tag="ofdb2d",
                card_tags=(_FDSL, "fractal", "ofdb"),
                searched=True,
                build="ofdb",
                builder="ofdb_study.fractals.build:build_ofdb",
                build_defaults=dict(
                    size=OFDB_SIZE, points=OFDB_POINTS, a_weight=OFDB_A_WEIGHT, seed=DATA_SEED
                ),
                options=dict(params=None, mode="patch", weights=None),
            ),
            Kind(
                name="fractaldb",
                title="FractalDB",
                about="FractalDB (25 fluctuation rows x patch renders x flips per category, rendered in memory)",
                tag="fractaldb",
                card_tags=(_FDSL, "fractal", "fractaldb"),
                searched=True,
                build="fractaldb",
                builder="ofdb_study.fractals.build:build_fractaldb",
                build_defaults=dict(size=OFDB_SIZE, points=OFDB_POINTS, seed=DATA_SEED),
                options=dict(
                    params=None,
                    mode="patch",
                    fluctuations=FRACTALDB_ROWS,
                    renders=FRACTALDB_RENDERS,
                    flips=FRACTALDB_FLIPS,
                ),
            ),
            Kind(
                name="1pfrac",
                title="1p-frac",
                about="1p-frac (perturbations of one fractal, one image per category, generated in memory)",
                tag="1pfrac",
                card_tags=(_FDSL, "fractal", "1p-frac"),
                categories=f"one base fractal drawn with seed {ONEPFRAC_SEED}, perturbed by delta "
                "{cfg.delta:g}, sigma {cfg.sigma:g}",
                build="1pfrac",
                builder="ofdb_study.fractals.onepfrac:build_kind",
                build_defaults=dict(size=ONEPFRAC_SIZE, points=ONEPFRAC_POINTS, seed=DATA_SEED),
                options=dict(delta=ONEPFRAC_DELTA, sigma=ONEPFRAC_SIGMA),
            ),
            Kind(
                name="multiview",
                title="3D-OFDB",
                about="3D-OFDB (12 rendered views per category; one random view per sample)",
                tag="ofdb3d",
                card_tags=(_FDSL, "fractal", "3d-ofdb"),
                prefix="multiview:",
                first_n=True,
                build="ofdb3d",
                builder="ofdb_study.fractals.ofdb3d:build_ofdb3d",
                build_defaults=dict(
                    size=OFDB3D_SIZE, points=OFDB3D_POINTS, a_weight=OFDB3D_A_WEIGHT, seed=OFDB3D_SEED
                ),
                options=dict(params=None, jitter=OFDB3D_JITTER_DEG),
            ),
            Kind(
                name="folder",
                title="ImageFolder tree",
                about="an ImageFolder tree",
                tag="imagefolder",
                card_tags=(),  # a tree may hold anything
                prefix="",
            ),
        )
    }
)

#: How each builder option is given on the command line (keyword -> ``Option``).
OPTIONS: Mapping[str, Option] = MappingProxyType(
    dict(
        params=PARAMS,
        mode=DRAW,
        weights=WEIGHTS,
        fluctuations=FLUCTUATIONS,
        renders=RENDERS,
        flips=FLIPS,
        jitter=JITTER,
        delta=DELTA,
        sigma=SIGMA,
    )
)

#: The kinds ``build`` makes, by their build name.
BUILDS: Mapping[str, Kind] = MappingProxyType({k.build: k for k in KINDS.values() if k.build})
#: The kinds whose categories are the exact category search's.
SEARCHED = tuple(k.name for k in KINDS.values() if k.searched)


def kind_of(data: str | None) -> Kind:
    """The kind of a ``data`` setting: an in-memory kind's name, a prefixed tree, else ``folder``."""
    data = str(data or "")
    if data in KINDS and KINDS[data].in_memory:
        return KINDS[data]
    prefixed = [k for k in KINDS.values() if k.prefix and data.startswith(k.prefix)]
    if prefixed:
        return prefixed[0]
    return next(k for k in KINDS.values() if k.prefix == "")


def data_path(data: str | None) -> str | None:
    """The tree a ``data`` setting reads (``multiview:PATH`` -> ``PATH``); None for in-memory data."""
    kind = kind_of(data)
    return None if kind.in_memory else str(data or "")[len(kind.prefix) :]


def data_forms() -> str:
    """The ``data`` settings there are, for messages: ``ofdb, fractaldb, 1pfrac, multiview:PATH or PATH``."""
    forms = [k.name if k.in_memory else f"{k.prefix}PATH" for k in KINDS.values()]
    return ", ".join(forms[:-1]) + " or " + forms[-1]
