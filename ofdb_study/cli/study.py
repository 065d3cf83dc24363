"""``python -m ofdb_study study`` (run the notebooks into the book) and ``vendor`` (the book's scripts).

Registering imports only light modules; papermill, pandas and the rest load inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import PROFILES
from ..study.runner import DEFAULT_OUT
from . import cluster


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "study",
        help="execute the study notebooks with papermill into the book",
        description="Execute notebooks/NN_*.ipynb with papermill into the book's folder. Finished "
        "training runs are reused (cached by their resolved config), so a second call only re-plots.",
    )
    p.add_argument(
        "--profile",
        required=True,
        choices=tuple(PROFILES),
        help="a profile of config.PROFILES (smoke: seconds; mini: the study on 2 CPU cores)",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this notebook (name, number or name without number); repeatable",
    )
    p.add_argument(
        "--seeds", type=int, nargs="+", metavar="SEED", help="training seeds (default: the profile's)"
    )
    p.add_argument(
        "--out", default=DEFAULT_OUT, help=f"folder of the executed notebooks (default {DEFAULT_OUT})"
    )
    p.add_argument("--notebooks", default="notebooks", help="folder of the source notebooks")
    p.add_argument("--data-root", default="data", help="data cache folder (default data)")
    p.add_argument("--run-root", "--root", default="runs", help="training run cache folder (default runs)")
    p.add_argument(
        "--downstream-root",
        default=None,
        help="where the fine-tuning data set lives (default: its usual place, e.g. Debian's Fashion-MNIST)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="training runs at once (default: the profile's plan)"
    )
    p.add_argument(
        "--no-train",
        action="store_true",
        help="train nothing: the notebooks read the finished runs (e.g. after `results unpack`)",
    )
    p.add_argument("--kernel", default=None, help="Jupyter kernel name (default python3)")
    p.add_argument("--progress", action="store_true", help="show papermill's per-cell progress")
    p.add_argument(
        "--book",
        action="store_true",
        help="then build the book (offline, warnings as errors) from the folder above --out",
    )
    cluster.add_arguments(p)  # `study plan` / `study run`
    p.set_defaults(func=_study)

    v = subparsers.add_parser(
        "vendor",
        help="fetch MathJax, RequireJS and the widgets manager from npm into the book's _static, and "
        "write the explorer page's files",
        description="Install the pinned npm packages the built book loads and copy them into "
        "BOOK/_static/vendor, so the book works with no network; copy the explorer's JavaScript into "
        "BOOK/_static/explorer with the first 1,000 categories of the exact search (the first run "
        "searches, about half a minute). Idempotent.",
    )
    v.add_argument("--book", default="book", help="the Jupyter Book folder (default book)")
    v.set_defaults(func=_vendor)


def _vendor(args: argparse.Namespace) -> int:
    from ..explorer.web import ensure_book_assets
    from ..study.vendor import ensure_vendor

    try:
        path = ensure_vendor(args.book)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"vendor assets ready in {path}")
    print(f"explorer page files ready in {ensure_book_assets(args.book)}")
    return 0


def _study(args: argparse.Namespace) -> int:
    from ..study.runner import downstream_errors

    # a finished fine-tuning made on other data than --downstream-root holds names that flag
    with downstream_errors():
        code = cluster.dispatch(args, _run)  # `study plan` / `study run`; None: the notebooks
        return _run(args) if code is None else code


def _check_folder(param: str, path: str) -> None:
    """Refuse a folder argument that is, or lies under, something other than a folder."""
    from ..errors import ParamError

    target = Path(path)
    for p in (target, *target.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                where = "exists" if p == target else f"lies under {p}, which exists"
                raise ParamError(param, f"{path} {where} and is not a folder")
            return


def _run(args: argparse.Namespace) -> int:
    from ..study.runner import NotebookFailed, build_book, run_study

    _check_folder("out", args.out)
    try:
        report = run_study(
            args.profile,
            only=args.only,
            seeds=args.seeds,
            out=args.out,
            notebooks_dir=args.notebooks,
            data_root=args.data_root,
            run_root=args.run_root,
            downstream_root=args.downstream_root,
            kernel_name=args.kernel,
            progress=args.progress,
            train=not args.no_train,
            workers=args.workers,
        )
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = sum(n.seconds for n in report.notebooks)
    print(f"[study] {len(report.notebooks)} notebook(s) in {total:.1f} s; executed notebooks in {report.out}")
    if args.book:
        try:
            index = build_book(Path(args.out).resolve().parent)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"[study] the book: {index}")
    return 0
