"""``python -m ofdb_study <command>``: one parser, subcommands registered by feature modules.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, adding its subcommands with
``set_defaults(func=...)``; ``func(args)`` returns the exit code. A ``ParamError`` anywhere
becomes one line on stderr and exit code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ParamError

COMMAND_MODULES = (
    "ofdb_study.cli_data",
    "ofdb_study.cli_train",
    "ofdb_study.cli_3d",
    "ofdb_study.cli_study",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like ParamError
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ofdb_study", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # feature not present in this checkout
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except ParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
