"""How the package writes its outputs: atomic writes, one policy for outputs already there, the
package versions written beside them, and the number of CPUs to use.

Every writer of the package goes through these, so the rules hold everywhere:

* A file is written to a hidden temporary name in its folder (``.NAME.*.tmp``), flushed,
  ``fsync``-ed, renamed over the target, and the folder is ``fsync``-ed, so a reader sees the old
  file or the new one, never a part, even after a power cut.
* An output folder that already holds this kind of output is refused, unless the caller passes
  ``resume`` (continue it, when its settings match) or ``force``. ``force`` has one meaning: remove
  what this kind of output owns in the folder (named by patterns), then write afresh; anything else
  in the folder is left alone.
"""

from __future__ import annotations

import fnmatch
import os
import platform
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import ParamError, check_positive_int


# ---- atomic writes ------------------------------------------------------------------------------
def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: str | os.PathLike, write: bytes | Callable[[BinaryIO], object], *, durable: bool = True
) -> Path:
    """Write a file so that readers see the old content or the new, never a part of it.

    Args:
        path: the target file; its folder must exist.
        write: the bytes, or a function that writes them to the binary file object it is given
            (e.g. ``lambda f: torch.save(state, f)``).
        durable: ``fsync`` the file before the rename and the folder after it. Bulk image files
            pass False: a million ``fsync`` calls would cost more than the renders (a dataset's
            manifest hashes find what a power cut leaves), and a killed process loses nothing
            either way.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    # unique per process and thread: two writers of one file never share a temporary
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if callable(write):
                write(fh)
            else:
                fh.write(write)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


# ---- outputs already there --------------------------------------------------------------------
def owned_entries(out: Path, owned: Sequence[str]) -> list[Path]:
    """The entries directly in ``out`` whose names match one of the glob patterns ``owned``."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if any(fnmatch.fnmatchcase(p.name, pat) for pat in owned))


def prepare_output(
    out: str | os.PathLike,
    *,
    what: str,
    owned: Sequence[str],
    resume: bool = False,
    force: bool = False,
    resumable: bool = True,
) -> bool:
    """Apply the package's one policy to an output folder before anything is written.

    Args:
        out: the output folder (it need not exist; it is not created here).
        what: what the folder holds when it holds this kind of output, for the message
            (e.g. ``"a run"``, ``"an unfinished build"``).
        owned: glob patterns of the names this kind of output writes directly in ``out``; only
            these count as "already there" and only these are removed by ``force``.
        resume: the caller will continue the output that is there (it checks the settings).
        force: remove the owned entries (files and folders), then start afresh.
        resumable: whether this kind of output can be resumed (the message says so).

    Returns:
        True when owned entries are there and ``resume`` is set (continue them); False when the
        caller starts afresh (nothing owned was there, or ``force`` removed it).

    Raises:
        ParamError: ``out`` is not a folder; ``resume`` and ``force`` together; owned entries are
            there and neither flag is set.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ParamError("out", f"{out} exists and is not a folder")
    if resume and force:
        raise ParamError("force", "pass --resume (continue) or --force (replace), not both")
    present = owned_entries(out, owned)
    if not present:
        return False
    if resume and resumable:
        return True
    if force:
        for entry in present:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return False
    choices = "--resume to continue it or --force to replace it" if resumable else "--force to replace it"
    raise ParamError(
        "out",
        f"{out} already holds {what}; pass {choices} (--force removes {', '.join(owned)} there), "
        "or choose another --out",
    )


# ---- provenance and CPUs ----------------------------------------------------------------------
def package_versions(*extra: str) -> dict[str, str | None]:
    """The versions that decide an output's bytes, without importing any package.

    Args:
        extra: more distributions to record (e.g. ``"torch"``, ``"timm"`` for training runs).

    Returns:
        ``{"python": ..., "ofdb-study": ..., "numpy": ..., "numba": ..., *extra}``; None for a
        distribution that is not installed.
    """
    import importlib.metadata as md

    from . import __version__

    out: dict[str, str | None] = {"python": platform.python_version(), "ofdb-study": __version__}
    for name in ("numpy", "numba", *extra):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (Linux), else the
    machine's count (macOS, Windows); at least 1."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None) -> int:
    """``workers`` checked (an integer >= 1), or ``usable_cpus()`` when None."""
    if workers is None:
        return usable_cpus()
    return check_positive_int("workers", workers)
