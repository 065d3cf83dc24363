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
* A writer that fails removes the folders it created for its output (``missing_folders``,
  ``remove_empty``), so a refused or failed command leaves no empty folders behind.
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
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, PermissionError) and exc.filename == str(tmp):  # name the target
            raise PermissionError(exc.errno, exc.strerror, str(path)) from None
        raise
    if durable:
        _fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def missing_folders(path: str | os.PathLike) -> list[Path]:
    """``path`` and those of its ancestors that do not exist, deepest first: the folders that
    ``mkdir(parents=True)`` would make, and that a writer which fails removes again
    (``remove_empty``)."""
    path = Path(path).absolute()
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def remove_empty(folders: Sequence[Path]) -> None:
    """Remove ``folders`` in order (deepest first, as ``missing_folders`` names them), stopping at
    the first that is not empty or cannot be removed."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


# ---- outputs already there --------------------------------------------------------------------
#: The lock file every writer holds in its output folder while it writes (``lock_output``).
LOCK_FILE = ".ofdb_study.lock"
#: Names every kind owns: the temporaries of ``atomic_write_bytes`` and the lock file.
COMMON_FILES = (".*.tmp", LOCK_FILE)
_CATEGORY = "[0-9][0-9][0-9][0-9][0-9]"
#: What each kind of output owns directly in its folder: ``files`` are glob patterns of plain
#: files, ``folders`` of sub-folders. ``manifest.json`` is told apart by what it holds
#: (``manifest_kind``). A name no kind owns is the user's and is never touched.
OUTPUT_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "search": {"files": (f"{_CATEGORY}*.csv", "search_log.csv", "search_state.json"), "folders": ()},
    "search3d": {"files": (f"{_CATEGORY}*.csv", "search3d_log.csv"), "folders": ()},
    "tree": {
        "files": ("manifest.json", ".journal", ".settings.json", "base.csv"),
        "folders": (f"{_CATEGORY}*",),
    },
    "shards": {"files": ("manifest.json", "data-*.tar", "data-*.parquet"), "folders": (".folder",)},
    "run": {
        "files": ("config.yaml", "manifest.json", "metrics.jsonl", "checkpoint.pt", "summary.json"),
        "folders": (),
    },
    "export": {"files": ("model.safetensors", "config.json", "README.md"), "folders": ()},
}
WHAT = {
    "search": "a search",
    "search3d": "a 3D search",
    "tree": "a dataset",
    "shards": "a shard dataset",
    "run": "a run",
    "export": "an export",
}


def manifest_kind(path: Path) -> str | None:
    """``tree``, ``shards`` or ``run`` from what a ``manifest.json`` holds; None if unreadable."""
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    if "shards" in doc:
        return "shards"
    if "files" in doc and "format_version" in doc:
        return "tree"
    return "run"


def entry_kinds(entry: Path) -> set[str]:
    """The kinds of output that own ``entry`` (a path directly in an output folder)."""
    name = entry.name
    if any(fnmatch.fnmatchcase(name, pat) for pat in COMMON_FILES):
        return set(OUTPUT_KINDS)
    is_dir = entry.is_dir() and not entry.is_symlink()
    found = set()
    for kind, owned in OUTPUT_KINDS.items():
        patterns = owned["folders"] if is_dir else owned["files"]
        if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
            found.add(kind)
    if name == "manifest.json" and not is_dir and len(found) > 1:
        told = manifest_kind(entry)
        if told is not None:
            found &= {told}
    return found


def owned_entries(out: Path, owned: Sequence[str] | str) -> list[Path]:
    """The entries directly in ``out`` that the output kind ``owned`` owns (or, given glob
    patterns, whose names match one of them)."""
    if not out.is_dir():
        return []
    if isinstance(owned, str):
        return sorted(p for p in out.iterdir() if owned in entry_kinds(p))
    return sorted(p for p in out.iterdir() if any(fnmatch.fnmatchcase(p.name, pat) for pat in owned))


def _inside(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b)


def check_apart(out: str | os.PathLike, inputs: Sequence[tuple[str, str | os.PathLike | None]]) -> None:
    """Refuse an output folder that is, holds or lies inside one of the command's inputs.

    Args:
        out: the output folder.
        inputs: ``(parameter, path)`` pairs; None paths are skipped.

    Raises:
        ParamError: naming ``out`` and the input's parameter.
    """
    target = Path(out).resolve()
    for param, path in inputs:
        if path is None:
            continue
        source = Path(path).resolve()
        if target == source:
            raise ParamError("out", f"{out} is the --{param} input itself; choose another --out")
        if target.is_relative_to(source):
            raise ParamError("out", f"{out} lies inside the --{param} input {path}; choose another --out")
        if source.is_relative_to(target):
            raise ParamError("out", f"{out} holds the --{param} input {path}; choose another --out")


_LOCKS: dict[Path, tuple[Path, int]] = {}


def lock_output(out: str | os.PathLike, *, wait: bool = False) -> None:
    """Create ``out`` and hold an exclusive lock on ``out/LOCK_FILE`` until ``release_outputs``
    (the command line releases after each command, which removes the file) or the process ends,
    so two writers of one folder cannot both run. A no-op where ``fcntl`` is missing (Windows).

    Args:
        out: the folder.
        wait: block until another process releases the folder instead of refusing (a shared
            cache that several processes extend in turn).

    Raises:
        ParamError: another process holds the folder (unless ``wait``), or it cannot be created
            or written.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    out = Path(out)
    key = out.resolve()
    if key in _LOCKS:
        return
    path = out / LOCK_FILE
    for _ in range(10):
        try:
            out.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            raise ParamError("out", f"{out} cannot be written (permission denied)") from None
        except OSError as exc:
            raise ParamError("out", f"{out} cannot be written ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ParamError(
                "out", f"{out} is being written by another process; wait for it or choose another --out"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed while this process waited to open it
            _LOCKS[key] = (path, fd)
            return
        os.close(fd)
    raise ParamError("out", f"{out} is being written by another process; wait for it or choose another --out")


def release_output(out: str | os.PathLike) -> None:
    """Release the lock ``lock_output`` took on ``out`` (if this process holds it); writers call
    it when their output is complete."""
    held = _LOCKS.pop(Path(out).resolve(), None)
    if held is not None:
        path, fd = held
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(fd)


def release_outputs() -> None:
    """Release every lock ``lock_output`` took in this process and remove its lock files."""
    while _LOCKS:
        _, (path, fd) = _LOCKS.popitem()
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(fd)


def prepare_output(
    out: str | os.PathLike,
    *,
    what: str | None = None,
    owned: Sequence[str] | str,
    resume: bool = False,
    force: bool = False,
    resumable: bool = True,
    inputs: Sequence[tuple[str, str | os.PathLike | None]] = (),
    lock: bool = False,
    wait: bool = False,
    check_only: bool = False,
) -> bool:
    """Apply the package's one policy to an output folder before anything is written.

    Args:
        out: the output folder (it need not exist; it is created only when ``lock``).
        what: what the folder holds when it holds this kind of output, for the message
            (default: ``WHAT[owned]``).
        owned: the kind of output (a key of ``OUTPUT_KINDS``): a folder that holds another
            kind's entries is refused, even with ``force``, and only this kind's entries count as
            "already there" and are removed by ``force``. Glob patterns (a sequence) name the
            entries directly instead, with no check of other kinds.
        resume: the caller will continue the output that is there (it checks the settings).
        force: remove the owned entries (files and folders), then start afresh.
        resumable: whether this kind of output can be resumed (the message says so).
        inputs: ``(parameter, path)`` pairs the command reads; ``out`` may not be, hold or lie
            inside one (``check_apart``).
        lock: create ``out`` and hold its lock (``lock_output``) before ``force`` removes anything.
        wait: with ``lock``, wait for another writer of ``out`` to finish, then look at what it
            left (a shared cache); the lock is taken before any check, and released if one fails.
        check_only: make every check (``force`` passing an earlier output of this kind) and
            return without locking or removing anything.

    Returns:
        True when owned entries are there and ``resume`` is set (continue them); False when the
        caller starts afresh (nothing owned was there, or ``force`` removed it).

    Raises:
        ParamError: ``out`` is not a folder; ``resume`` and ``force`` together; ``out`` is an
            input or holds another kind's output; owned entries are there and neither flag is
            set; another process writes ``out``.
    """
    out = Path(out)
    if lock and wait and not check_only:
        if out.exists() and not out.is_dir():
            raise ParamError("out", f"{out} exists and is not a folder")
        lock_output(out, wait=True)
        try:
            return prepare_output(
                out,
                what=what,
                owned=owned,
                resume=resume,
                force=force,
                resumable=resumable,
                inputs=inputs,
                lock=True,
            )
        except BaseException:
            release_output(out)
            raise
    if what is None:
        what = WHAT[owned] if isinstance(owned, str) else "an output"
    if out.exists() and not out.is_dir():
        raise ParamError("out", f"{out} exists and is not a folder")
    if resume and force:
        raise ParamError("force", "pass --resume (continue) or --force (replace), not both")
    check_apart(out, inputs)
    if isinstance(owned, str):
        if out.is_dir():
            try:
                entries = list(out.iterdir())
            except PermissionError:
                raise ParamError("out", f"{out} cannot be read (permission denied)") from None
            for entry in entries:
                kinds = entry_kinds(entry)
                if kinds and owned not in kinds:
                    other = sorted(kinds)[0]
                    raise ParamError(
                        "out",
                        f"{out} holds {WHAT[other]} ({entry.name}), not {WHAT[owned]}; "
                        "choose another --out (--force never removes another output)",
                    )
        patterns = (*OUTPUT_KINDS[owned]["files"], *OUTPUT_KINDS[owned]["folders"])
        present = [p for p in owned_entries(out, owned) if p.name != LOCK_FILE]
    else:
        patterns = tuple(owned)
        present = owned_entries(out, owned)
    if check_only and force:
        return bool(present)
    if present and not (resume and resumable) and not force:
        choices = "--resume to continue it or --force to replace it" if resumable else "--force to replace it"
        raise ParamError(
            "out",
            f"{out} already holds {what}; pass {choices} (--force removes {', '.join(patterns)} there), "
            "or choose another --out",
        )
    if check_only:
        return bool(present) and resume and resumable
    if lock:
        lock_output(out)
    if not present:
        return False
    if resume and resumable:
        return True
    for entry in present:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return False


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


def available_memory() -> int:
    """Bytes of memory a new allocation can get: ``MemAvailable`` (Linux), else the physical
    memory (``sysconf``); a large number where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


def check_fits(param: str, need: int, what: str, share: float = 0.5) -> None:
    """Refuse a setting whose buffers need more than ``share`` of the available memory, before
    anything is allocated or written.

    Args:
        param: the setting that sizes the buffers (named in the message).
        need: the bytes they take.
        what: what they are, for the message.
        share: the part of ``available_memory()`` they may take.

    Raises:
        ParamError: naming ``param``, the bytes needed and the bytes there are.
    """
    have = available_memory()
    if need > share * have:
        raise ParamError(
            param,
            f"{what} would need {need / 2**30:,.1f} GiB; this machine has {have / 2**30:,.1f} GiB "
            f"available (at most {share:.0%} of it is used)",
        )


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
