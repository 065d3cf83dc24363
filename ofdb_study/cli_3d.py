"""``python -m ofdb_study search3d``: the seeded 3D-OFDB category search, written as NNNNN.csv.

``build ofdb3d`` (the multi-view images) is dispatched by the data commands to
``ofdb_study.ofdb3d.build_ofdb3d``; this module only adds the search on its own, whose folder can
then be passed to the builder as its parameters.
"""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search3d",
        help="search 3D IFS categories (3D-OFDB) and write NNNNN.csv files",
        description="Seeded 3D category search: N = randint(2, 8), 12 uniform(-1, 1) numbers per map, "
        "p ~ |det A|, 10,000 points, accepted when each axis's normalised variance exceeds 0.05.",
    )
    p.add_argument("--categories", type=int, required=True, help="categories to find")
    p.add_argument("--out", required=True, help="folder for NNNNN.csv and search3d_log.csv")
    p.add_argument("--seed", type=int, default=1, help="MT19937 seed of the one search stream (default 1)")
    p.add_argument("--points", type=int, default=10_000, help="chaos-game points per candidate")
    p.add_argument("--min-var", type=float, default=0.05, help="variance each axis must exceed")
    p.add_argument("--workers", type=int, default=None, help="threads (default: CPUs); same result")
    p.add_argument("--force", action="store_true", help="replace the CSV files of a non-empty folder")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=_search3d)


def _search3d(args: argparse.Namespace) -> int:
    from .ofdb3d import Search3DSettings, search3d_to_dir

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
