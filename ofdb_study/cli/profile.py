"""``python -m ofdb_study profile show NAME``: a profile's recipe, every value with its source.

Prints both phases (pre-training, fine-tuning): each setting with our value, the public recipe's
value and the source, then the global batch and the learning rates scaled by ``global_batch /
512`` at ``--world-size`` processes, so a recipe can be checked before GPU hours are spent.
``--markdown`` prints the book's recipe page (every profile) instead.
"""

from __future__ import annotations

import argparse

from ..config import PROFILES


def _show(args: argparse.Namespace) -> int:
    from ..config import recipe

    if args.markdown:
        print(recipe.page_markdown(), end="")
    else:
        print(recipe.show_text(args.name, args.world_size), end="")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("profile", help="show a training profile's values and their sources")
    sub = p.add_subparsers(dest="profile_command", required=True)
    s = sub.add_parser(
        "show",
        help="both phases' values with their sources, global batch and scaled learning rates",
        description=__doc__.splitlines()[0],
    )
    s.add_argument("name", choices=tuple(PROFILES), help="the profile")
    s.add_argument(
        "--world-size",
        type=int,
        default=1,
        help="processes (GPUs) the global batch is computed for (default 1)",
    )
    s.add_argument("--markdown", action="store_true", help="print the book's recipe page (all profiles)")
    s.set_defaults(func=_show)
