"""``python -m ofdb_study <command>``: one parser, subcommands registered by its modules.

``data`` (search, search3d, render, build, verify), ``train`` (pretrain, finetune), ``profile``
(show), ``study`` (study, vendor) and ``publish`` (export, results) each define
``register(subparsers)``, adding subcommands with ``set_defaults(func=...)``; ``func(args)``
returns the exit code. Registering imports nothing heavy: each command imports torch, pandas or
papermill inside itself, so the data commands run after a base install. A ``ParamError``
anywhere becomes one line on stderr and exit code 2, before anything is written; a
``TrainingError`` (a diverged run) one line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ParamError, TrainingError
from ..files import release_outputs
from . import data, profile, publish, study, train


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like ParamError
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ofdb_study", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (data, train, profile, study, publish):
        module.register(sub)
    return parser


#: Bounds of the numeric arguments several commands share, checked before any command runs:
#: worker processes or threads, seeds (non-negative signed 64-bit, ``config.schema.MAX_SEED``),
#: FractalDB's patch renders per fluctuation row (the recipe's 10; every render is one more image
#: per row and flip).
ARGUMENT_LIMITS = {"workers": (1, 1_024), "seed": (0, 2**63 - 1), "renders": (1, 1_000)}


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a shared numeric argument outside ``ARGUMENT_LIMITS`` (None: not given)."""
    for name, (lo, hi) in ARGUMENT_LIMITS.items():
        value = getattr(args, name, None)
        if isinstance(value, int) and not lo <= value <= hi:
            raise ParamError(name, f"must be an integer >= {lo} and at most {hi:,}, got {value}")


def _last_line(exc: TrainingError) -> str:
    """A TrainingError's message on one line: an error raised in a DataLoader worker reaches the
    parent with the worker's traceback in its message, whose last line is the error itself."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    if len(lines) <= 1:
        return str(exc).strip()
    last = lines[-1]
    prefix = f"{TrainingError.__module__}.{TrainingError.__name__}: "
    return last[len(prefix) :] if last.startswith(prefix) else last


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return int(exc.code or 0)
    if getattr(args, "resume", False) and getattr(args, "force", False):
        print("error: force: pass --resume (continue) or --force (replace), not both", file=sys.stderr)
        return 2
    try:
        check_arguments(args)
        return int(args.func(args) or 0)
    except PermissionError as exc:
        param = "out" if getattr(args, "out", None) else "root" if getattr(args, "root", None) else "path"
        print(
            f"error: {param}: {exc.filename or 'a path'} cannot be written (permission denied)",
            file=sys.stderr,
        )
        return 2
    except ParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingError as exc:
        print(f"error: {_last_line(exc)}", file=sys.stderr)
        return 1
    except RecursionError:  # a JSON or YAML input nested too deeply for its parser
        print("error: input: a file read by this command nests too deeply to be read", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
    finally:
        release_outputs()


if __name__ == "__main__":
    raise SystemExit(main())
