"""Data commands: ``search``, ``search3d``, ``render``, ``build`` and ``verify``.

``build --format webdataset|parquet`` writes shards (``fractals.formats``); ``verify`` checks any
format, and ``verify --against PARAMS`` compares a parameter folder (``fractals.compare``).

They import only the fractal wing (numba, NumPy), never torch, pandas or matplotlib, so they run
after a base install (``pip install ofdb-study`` without extras).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from ..errors import ParamError
from ..files import check_apart
from ..fractals.defaults import (
    OFDB3D_SEED,
    SEARCH3D_MIN_VAR,
    SEARCH3D_POINTS,
    SEARCH_PAD,
    SEARCH_POINTS,
    SEARCH_RATE,
    SEARCH_SEED,
    SEARCH_SIZE,
)
from ..fractals.kinds import BUILDS, OPTIONS


def _finite(param: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{param} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{param} must be finite, got {text!r}")
        return value

    return parse


def _weights(text: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"--weights must be six finite numbers a,b,c,d,e,f, got {text!r}")
    return values


def _common_out(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers", type=int, default=None, help="threads (default: all CPUs); never changes the bytes"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    group.add_argument("--force", action="store_true", help="replace what is in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_search(args: argparse.Namespace) -> int:
    from ..fractals.search import SearchSettings, search_to_dir

    settings = SearchSettings(
        seed=args.seed, rate=args.rate, points=args.points, size=args.size, pad=SEARCH_PAD
    )
    start = time.perf_counter()
    result = search_to_dir(
        args.out,
        args.categories,
        settings,
        workers=args.workers,
        resume=args.resume,
        force=args.force,
        progress=not args.quiet,
    )
    took = time.perf_counter() - start
    print(
        f"{len(result.categories)} categories from {result.n_candidates} candidates "
        f"({100 * result.acceptance_rate:.2f}% accepted) in {took:.1f} s -> {args.out}"
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """``build ofdb --params``, over every category of the folder unless ``--categories``."""
    from ..fractals.formats import SHARD_SIZE
    from ..fractals.ifs import list_csvs

    if args.categories is None:
        args.categories = len(list_csvs(args.params))
    args.kind, args.format, args.shard_size = "ofdb", "folder", SHARD_SIZE
    return cmd_build(args)


#: Per-kind defaults of the shared build options (``Kind.build_defaults``; None on the command line
#: means "not given").
BUILD_DEFAULTS = {name: dict(kind.build_defaults) for name, kind in BUILDS.items()}
#: The build options kinds share (type, help); ``Kind.build_defaults`` says which a kind takes.
SHARED = {
    "size": ("int", "image side"),
    "points": ("int", "chaos-game points"),
    "seed": ("int", "base seed (patch masks; ofdb3d: search and jitter; 1pfrac: every draw)"),
    "a_weight": ("float", "factor on a (ofdb3d: on A[0,0])"),
}


def _parser(vtype: str, flag: str):
    """The argparse type of a build option's value type (``fractals.kinds.OPTION_TYPES``)."""
    return {"int": int, "float": _finite(flag), "text": str, "weights": _weights}[vtype]


def _builders_of(key: str, table: str) -> list[str]:
    return [name for name, kind in BUILDS.items() if key in getattr(kind, table)]


def _build_options(args: argparse.Namespace) -> dict:
    """The builder's keywords for ``build KIND``: the given options, else the kind's defaults.

    Raises:
        ParamError: an option given that this kind does not take.
    """
    kind = BUILDS[args.kind]
    given = {k: getattr(args, k, None) for k in (*SHARED, *OPTIONS)}
    for key, value in given.items():
        if value is not None and key not in kind.build_defaults and key not in kind.options:
            flag = OPTIONS[key].flag if key in OPTIONS else key.replace("_", "-")
            takes = _builders_of(key, "options" if key in OPTIONS else "build_defaults")
            raise ParamError(flag, f"applies to build {', '.join(takes)} only, not {args.kind}")
    defaults = {**kind.build_defaults, **kind.options}
    return {k: given[k] if given[k] is not None else v for k, v in defaults.items()}


def _kind_options(p: argparse.ArgumentParser, kinds, skip=()) -> None:
    """Add the build options that any of ``kinds`` (build names) takes, but ``skip``, with each
    kind's default in the help; None means "not given" (``_build_options``)."""
    for key, (vtype, text) in SHARED.items():
        takes = [n for n in _builders_of(key, "build_defaults") if n in kinds]
        if takes:
            flag = "--" + key.replace("_", "-")
            defaults = "; ".join(f"{n} {BUILD_DEFAULTS[n][key]}" for n in takes)
            p.add_argument(
                flag, dest=key, type=_parser(vtype, flag), default=None, help=f"{text} (default {defaults})"
            )
    for key, option in OPTIONS.items():
        takes = [n for n in _builders_of(key, "options") if n in kinds]
        if not takes or key in skip:
            continue
        defaults = {BUILDS[n].options[key] for n in takes} - {None}
        shown = f" (default {defaults.pop()})" if len(defaults) == 1 else ""
        p.add_argument(
            f"--{option.flag}",
            dest=key,
            metavar=option.flag.upper().replace("-", "_"),
            type=_parser(option.type, f"--{option.flag}"),
            default=None,
            help=f"{'/'.join(takes)}: {option.help}{shown}",
        )


def cmd_build(args: argparse.Namespace) -> int:
    from ..fractals import build
    from ..fractals.formats import build_in_format, check_format

    opts = _build_options(args)
    check_format(args.format)
    check_apart(args.out, [("params", args.params)])
    builder = BUILDS[args.kind].load_builder()

    def tree(out, resume: bool, force: bool):
        run = dict(workers=args.workers, progress=not args.quiet, resume=resume, force=force)
        return builder(out, args.categories, **opts, **run)

    start = time.perf_counter()
    out = build_in_format(
        tree, args.out, args.format, resume=args.resume, force=args.force, shard_size=args.shard_size
    )
    manifest = build.load_manifest(out)
    shards = f" in {len(manifest['shards'])} {args.format} shard(s)" if "shards" in manifest else ""
    files = manifest.get("files")
    images = sum(name.endswith(".png") for name in files) if files else manifest["n_files"]
    print(f"{args.kind}: {images} images{shards} in {time.perf_counter() - start:.1f} s -> {out}")
    if "sigma_factor" in manifest:
        print(
            f"{args.kind}: sigma factor {manifest['sigma_factor']:.4f} (base drawn {manifest['base_draws']} time(s)), "
            f"{manifest['redraws']} class redraw(s) under fill {manifest['settings']['min_fill']}"
        )
    if manifest.get("diverged"):
        names = manifest["diverged"]
        print(
            f"note: {len(names)} categories diverge with a x {manifest['settings']['a_weight']} and have "
            f"near-empty views: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''} "
            "(listed in manifest.json as 'diverged'; --a-weight 1.0 renders the systems as searched)",
            file=sys.stderr,
        )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..fractals.build import load_manifest
    from ..fractals.formats import dataset_format, verify_any

    if args.against is not None:
        return _verify_against(args)
    if args.dir is None:
        raise ParamError("dir", "give a dataset folder to verify, or --against PARAMS")
    problems = verify_any(args.dir)
    if problems:
        for line in problems:
            print(line)
        print(f"{args.dir}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    fmt = dataset_format(args.dir)
    print(
        f"{args.dir}: OK, {sum(p.endswith('.png') for p in load_manifest(args.dir)['files'])} images ({fmt}) match the manifest"
    )
    return 0


def _verify_against(args: argparse.Namespace) -> int:
    from ..fractals.compare import compare_params

    result = compare_params(args.against, args.dir, tolerance=args.tolerance, workers=args.workers)
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1


def cmd_search3d(args: argparse.Namespace) -> int:
    from ..fractals.ofdb3d import Search3DSettings, search3d_to_dir

    start = time.perf_counter()
    settings = Search3DSettings(seed=args.seed, points=args.points, min_var=args.min_var)
    result = search3d_to_dir(
        args.out, args.categories, settings, workers=args.workers, force=args.force, progress=args.progress
    )
    print(
        f"{len(result.categories)} categories from {result.n_candidates} candidates "
        f"({100 * result.acceptance_rate:.2f} % accepted) in {time.perf_counter() - start:.1f} s -> {args.out}"
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("search", help="exact FractalDB/OFDB category search -> DIR/NNNNN.csv")
    p.add_argument("--categories", type=int, required=True, help="categories to find (1000 = FractalDB-1k)")
    p.add_argument("--out", required=True, help="folder for NNNNN.csv")
    p.add_argument(
        "--seed",
        type=int,
        default=SEARCH_SEED,
        help=f"NumPy legacy seed (default {SEARCH_SEED}, the published data)",
    )
    p.add_argument(
        "--rate",
        type=_finite("--rate"),
        default=SEARCH_RATE,
        help=f"fill-rate threshold (default {SEARCH_RATE})",
    )
    p.add_argument(
        "--points", type=int, default=SEARCH_POINTS, help=f"chaos-game points (default {SEARCH_POINTS})"
    )
    p.add_argument(
        "--size", type=int, default=SEARCH_SIZE, help=f"image side for the fill test (default {SEARCH_SIZE})"
    )
    _common_out(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "search3d",
        help="search 3D IFS categories (3D-OFDB) and write NNNNN.csv files",
        description="Seeded 3D category search: N = randint(2, 8), 12 uniform(-1, 1) numbers per map, "
        f"p ~ abs(det A), {SEARCH3D_POINTS:,} points, accepted when each axis's normalised variance exceeds "
        f"{SEARCH3D_MIN_VAR}.",
    )
    p.add_argument("--categories", type=int, required=True, help="categories to find")
    p.add_argument("--out", required=True, help="folder for NNNNN.csv and search3d_log.csv")
    p.add_argument(
        "--seed",
        type=int,
        default=OFDB3D_SEED,
        help=f"MT19937 seed of the one search stream (default {OFDB3D_SEED})",
    )
    p.add_argument("--points", type=int, default=SEARCH3D_POINTS, help="chaos-game points per candidate")
    p.add_argument("--min-var", type=float, default=SEARCH3D_MIN_VAR, help="variance each axis must exceed")
    p.add_argument("--workers", type=int, default=None, help="threads (default: CPUs); same result")
    p.add_argument("--force", action="store_true", help="replace the CSV files of a non-empty folder")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_search3d)

    p = sub.add_parser(
        "render", help="render one image per category of a parameter folder (build ofdb --params)"
    )
    p.add_argument("--params", required=True, help="folder of NNNNN.csv")
    p.add_argument("--out", required=True, help="output tree DIR2/NNNNN/NNNNN.png")
    p.add_argument("--categories", type=int, default=None, help="first N categories (default all)")
    _kind_options(p, ["ofdb"], skip=["params"])
    _common_out(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("build", help=f"build a dataset tree with manifest: {', '.join(BUILDS)}")
    p.add_argument(
        "kind",
        choices=tuple(BUILDS),
        help="; ".join(f"{name}: {kind.title}" for name, kind in BUILDS.items()),
    )
    p.add_argument(
        "--categories",
        type=int,
        required=True,
        help="categories, the first of the exact search (at most 100,000)",
    )
    p.add_argument("--out", required=True, help="the folder of the tree (category folders and manifest.json)")
    _kind_options(p, BUILDS)
    p.add_argument(
        "--format",
        default="folder",
        help="folder (ImageFolder tree, default) | webdataset (tar shards) | parquet (shards)",
    )
    p.add_argument("--shard-size", type=int, default=10_000, help="images per shard (default 10000)")
    _common_out(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "verify",
        help="check a dataset (tree or shards) against its manifest, or compare parameter folders",
        description="verify DIR: check every image of a dataset in any format against its manifest. "
        "verify --against PARAMS [DIR_OR_PARAMS]: compare a folder of NNNNN.csv categories with a "
        "reference (default: the exact search), category by category; exit code 1 if any differs.",
    )
    p.add_argument(
        "dir", nargs="?", help="a dataset folder; with --against, the reference (default: the search)"
    )
    p.add_argument("--against", metavar="PARAMS", help="a folder of NNNNN.csv categories to compare")
    p.add_argument(
        "--tolerance",
        type=_finite("--tolerance"),
        default=0.0,
        help="--against: max abs difference (default 0)",
    )
    p.add_argument("--workers", type=int, default=None, help="--against: search threads (default: CPUs)")
    p.set_defaults(func=cmd_verify)
