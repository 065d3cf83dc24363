"""``export`` (a run as timm-loadable weights) and ``results pack|unpack`` (portable results).

Examples::

    python -m ofdb_study export runs/pretrain/ofdb-1000-default-s0-0123456789 --out exports/ofdb2d_1k
    python -m ofdb_study results pack --root runs --profile paper --out paper-results.tar.gz
    python -m ofdb_study results unpack paper-results.tar.gz --root runs

Registering imports nothing heavy; torch and timm load inside ``export``.
"""

from __future__ import annotations

import argparse

from ..config import PROFILES


def cmd_export(args: argparse.Namespace) -> int:
    from ..train.export import export_name, export_run, trained_categories
    from ..train.runinfo import read_run

    out = export_run(args.run, args.out, force=args.force)
    name = export_name(trained_categories(read_run(args.run)))
    print(f"{name} -> {out} (model.safetensors, config.json, README.md)")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from ..study.pack import pack_results

    rep = pack_results(args.root, args.profile, args.out, data_root=args.data_root, force=args.force)
    print(f"packed {len(rep.runs)} run(s), {rep.files} file(s) -> {rep.archive}")
    if rep.skipped:
        print(f"left out {len(rep.skipped)} unfinished run(s): {', '.join(rep.skipped[:5])}")
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    from ..study.pack import unpack_results

    rep = unpack_results(args.archive, args.root, data_root=args.data_root, force=args.force)
    print(
        f"unpacked {len(rep.runs)} run(s): {rep.files} file(s) written under {args.root} and "
        f"{args.data_root}, {len(rep.skipped)} already identical; every sha256 matched and every run "
        "is what its name says"
    )
    return 0


def register(subparsers) -> None:
    e = subparsers.add_parser(
        "export",
        help="export a finished run as a timm-loadable folder (model.safetensors, config.json, README.md)",
        description="Write RUN's final weights as model.safetensors, timm's config.json (architecture, "
        "model_args, input size, mean/std, crop, tag) and a model card generated from the run folder. "
        'Load it with timm.create_model("local-dir:OUT", pretrained=True).',
    )
    e.add_argument("run", help="a finished run folder (summary.json and checkpoint.pt)")
    e.add_argument("--out", required=True, help="the export folder")
    e.add_argument("--force", action="store_true", help="replace what is in --out")
    e.set_defaults(func=cmd_export)

    r = subparsers.add_parser(
        "results", help="pack a profile's finished runs into one archive, or unpack one"
    )
    sub = r.add_subparsers(dest="results_command", required=True, metavar="pack|unpack")
    p = sub.add_parser(
        "pack",
        help="pack the finished runs' small files (no checkpoints) with a manifest of sha256 hashes",
    )
    p.add_argument("--root", default="runs", help="the run root (default runs)")
    p.add_argument("--profile", required=True, help=" | ".join(PROFILES))
    p.add_argument("--out", required=True, help="the archive to write (FILE.tar.gz)")
    p.add_argument(
        "--data-root",
        default="data",
        help="where the data notebook keeps its construction record, packed if present (default data)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing archive")
    p.set_defaults(func=cmd_pack)
    u = sub.add_parser(
        "unpack",
        help="verify every hash of an archive, then put its runs where the notebooks read them",
    )
    u.add_argument("archive", help="FILE.tar.gz written by results pack")
    u.add_argument("--root", default="runs", help="the run root (default runs)")
    u.add_argument("--data-root", default="data", help="the data root (default data)")
    u.add_argument("--force", action="store_true", help="replace files that exist with other contents")
    u.set_defaults(func=cmd_unpack)
