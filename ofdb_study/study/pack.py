"""Portable results: a profile's finished runs as one small archive, and back.

``pack_results(root, profile, out)`` writes ``out`` (a ``.tar.gz``) holding, for every finished run
of the profile under ``root/pretrain`` and ``root/finetune``, its small files (``runinfo.SMALL_FILES``:
config, manifest, metrics, summary; never the checkpoint) and the raw-pixel baseline and linear
probe of each fine-tuning (``root/baselines``, ``root/probes``), plus the data notebook's construction
record where it exists (``<data_root>/construction/<plan>/timing.json`` and the search's
``NNNNN.csv``), so that the book rebuilds without re-measuring. The first member, ``PACK.json``,
lists every other member with its sha256 and size. The archive's bytes depend only on the files
(sorted members, zero times), so packing the same runs twice gives the same archive.

Which runs belong to a profile: configs record it (``TrainConfig.profile``); older run folders are
matched by their settings (``runinfo.profile_of``).

``unpack_results(archive, root, data_root)`` reads the whole archive and checks it before writing
anything: every member a plain file under an allowed name (no links, no absolute or ``..`` paths),
every file of the manifest present with its hash, nothing else, every run complete. A corrupt,
truncated or partial archive is refused with a ParamError and nothing is written. Files that
already exist with other contents are refused unless ``force``; identical ones are left alone.
Each run's summary.json is written last, so an interrupted unpack never leaves a run that looks
finished without its other files. The experiments then find every run finished
(``study.plan.pretrain_run`` / ``finetune_run`` train nothing), and the notebooks re-plot.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import ParamError
from ..files import atomic_write_bytes, lock_output, missing_folders, release_output, remove_empty
from ..train.runinfo import CONFIG, SMALL_FILES, RunInfo, check_numbers, profile_of, read_run, verify_run

FORMAT = "ofdb-study-results"
FORMAT_VERSION = 1
MANIFEST = "PACK.json"
PHASES = ("pretrain", "finetune")
#: Uncompressed size an archive may hold (a paper-scale study is a few MB); checked while the
#: archive is decompressed, so a gzip bomb stops at this much memory.
MAX_BYTES = 256 << 20
_CHUNK = 1 << 20
#: One path part of a member: portable characters, at most 200 of them (file systems allow 255).
_PART = r"[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,199}"
_RUN_FILE = re.compile(rf"^runs/(pretrain|finetune)/({_PART})/({'|'.join(map(re.escape, SMALL_FILES))})$")
_EXTRA_FILE = re.compile(rf"^runs/(baselines|probes)/{_PART}\.json$")
_DATA_FILE = re.compile(rf"^data/construction/({_PART})/(timing\.json|search/{_PART})$")


@dataclass
class PackReport:
    """What ``pack_results`` / ``unpack_results`` did: runs and files by name."""

    archive: Path
    runs: list[str] = field(default_factory=list)
    files: int = 0
    skipped: list[str] = field(default_factory=list)  # pack: unfinished; unpack: already identical


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _construction_files(data_root: Path, profile: str) -> dict[str, bytes]:
    from .helpers import construction_dir, data_plan

    folder = construction_dir(data_root, data_plan(profile))
    if not (folder / "timing.json").is_file():
        return {}
    base = f"data/construction/{folder.name}"
    files = {f"{base}/timing.json": (folder / "timing.json").read_bytes()}
    search = folder / "search"
    if search.is_dir():
        for p in sorted(search.iterdir()):
            if p.is_file() and not p.name.endswith(".tmp"):
                files[f"{base}/search/{p.name}"] = p.read_bytes()
    return files


def _finished_runs(root: Path, profile: str) -> tuple[list[tuple[str, RunInfo]], list[str]]:
    """``([(phase/name, the run as read)], [left out])``: the run folders in ``root``, ``root/pretrain`` and
    ``root/finetune`` (the phase is the config's); unfinished and unreadable runs are left out."""
    folders = [p for p in sorted(root.iterdir()) if (p / CONFIG).is_file()]
    for phase in PHASES:
        if (root / phase).is_dir():
            folders += [p for p in sorted((root / phase).iterdir()) if (p / CONFIG).is_file()]
    runs, unfinished, names = [], [], set()
    for run in folders:
        try:
            info = read_run(run)
        except ParamError as exc:
            unfinished.append(f"{run.relative_to(root).as_posix()} ({exc})")
            continue
        if profile_of(info.config)[0] != profile:
            continue
        name = f"{info.config.phase}/{run.name}"
        if not all((run / f).is_file() for f in SMALL_FILES):
            unfinished.append(name)
        elif name in names or not re.fullmatch(_PART, run.name):
            unfinished.append(f"{run.relative_to(root).as_posix()} (name taken or not portable)")
        elif why := _unverified(run):
            unfinished.append(f"{run.relative_to(root).as_posix()} ({why})")
        else:
            names.add(name)
            runs.append((name, info))
    return runs, unfinished


def _unverified(run: Path) -> str | None:
    """Why ``verify_run`` refuses ``run`` (a damaged or renamed run is not packed), or None."""
    try:
        verify_run(run)
    except ParamError as exc:
        return exc.message
    return None


def pack_results(
    root: str | os.PathLike,
    profile: str,
    out: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = "data",
    force: bool = False,
) -> PackReport:
    """Pack the finished runs of ``profile`` under ``root`` (see the module doc).

    Args:
        root: the run root (``runs``: ``root/pretrain/<run>``, ``root/finetune/<run>``).
        profile: a name of ``config.PROFILES``.
        out: the archive to write (``.tar.gz``); refused if it exists, unless ``force``.
        data_root: where the data notebook keeps its construction record (None: leave it out).
        force: replace ``out``.

    Returns:
        The runs packed (``phase/name``) and the unfinished runs left out.
    """
    from ..config import get_profile

    get_profile(profile)
    root, out = Path(root), Path(out)
    if out.exists() and not force:
        raise ParamError("out", f"{out} exists; pass --force to replace it")
    if not root.is_dir():
        raise ParamError("root", f"{root} is not a folder of runs")
    runs, unfinished = _finished_runs(root, profile)
    if not runs:
        raise ParamError(
            "profile",
            f"no finished {profile} runs under {root}/pretrain or {root}/finetune (results pack packs the "
            "study's run folders; a single run is published with export)",
        )
    files: dict[str, bytes] = {}
    from .baselines import files_of

    for packed, info in runs:
        for name in SMALL_FILES:
            files[f"runs/{packed}/{name}"] = (info.path / name).read_bytes()
        if packed.startswith("finetune/"):
            for extra in files_of(info.config, root):
                files[f"runs/{extra.parent.name}/{extra.name}"] = extra.read_bytes()
    if data_root is not None:
        files.update(_construction_files(Path(data_root), profile))
    from .. import __version__

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "profile": profile,
        "ofdb_study": __version__,
        "runs": [packed for packed, _ in runs],
        "files": {k: {"sha256": _sha256(v), "size": len(v)} for k, v in sorted(files.items())},
    }
    members = {
        MANIFEST: json.dumps(manifest, indent=1, sort_keys=True).encode(),
        **dict(sorted(files.items())),
    }
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(raw: BinaryIO) -> None:
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, data in members.items():
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(data), 0o644, 0
                    tar.addfile(info, io.BytesIO(data))

    atomic_write_bytes(out, write)
    return PackReport(out, manifest["runs"], len(files), unfinished)


# ---- unpack ------------------------------------------------------------------------------------
def _read_archive(archive: Path) -> dict[str, bytes]:
    """Every member's bytes, or a ParamError naming what is wrong with the archive."""
    if not archive.is_file():
        raise ParamError("archive", f"{archive} is not a file")
    members: dict[str, bytes] = {}
    try:
        # the whole gzip stream is read first, so its CRC and length are checked to the last byte,
        # and no more than MAX_BYTES of it: the members lie inside that buffer
        buffer = io.BytesIO()
        with gzip.open(archive, "rb") as gz:
            while chunk := gz.read(_CHUNK):
                if buffer.tell() + len(chunk) > MAX_BYTES:
                    raise ParamError(
                        "archive", f"{archive} holds more than {MAX_BYTES >> 20} MiB; nothing was unpacked"
                    )
                buffer.write(chunk)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer, mode="r:") as tar:
            for info in tar:
                name = info.name
                if not info.isreg():
                    raise ParamError("archive", f"{archive}: member {name!r} is not a plain file")
                if name in members:
                    raise ParamError("archive", f"{archive}: member {name!r} appears twice")
                if name != MANIFEST and not (
                    _RUN_FILE.match(name) or _EXTRA_FILE.match(name) or _DATA_FILE.match(name)
                ):
                    raise ParamError("archive", f"{archive}: member {name!r} is not a results file")
                members[name] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ParamError(
            "archive", f"{archive} is corrupt or truncated ({exc}); nothing was unpacked"
        ) from None
    return members


def check_archive(archive: str | os.PathLike) -> tuple[dict, dict[str, bytes]]:
    """``(manifest, files)`` of an archive whose every file matches its manifest; ParamError otherwise."""
    archive = Path(archive)
    members = _read_archive(archive)
    if MANIFEST not in members:
        raise ParamError("archive", f"{archive} has no {MANIFEST}: not a results archive")
    try:
        manifest = json.loads(members.pop(MANIFEST))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParamError("archive", f"{archive}: {MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise ParamError("archive", f"{archive}: {MANIFEST} is not a JSON object")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ParamError("archive", f"{archive} is not a {FORMAT} archive of version {FORMAT_VERSION}")
    listed, runs = manifest.get("files"), manifest.get("runs")
    if not isinstance(listed, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and type(v.get("size")) is int
        for v in listed.values()
    ):
        raise ParamError("archive", f"{archive}: {MANIFEST} lists no files with sha256 and size")
    if not isinstance(runs, list) or not runs or len(set(map(str, runs))) != len(runs):
        raise ParamError("archive", f"{archive}: {MANIFEST} lists no runs (or one twice); nothing to unpack")
    if not all(isinstance(r, str) and re.fullmatch(rf"(pretrain|finetune)/{_PART}", r) for r in runs):
        raise ParamError("archive", f"{archive}: {MANIFEST} lists a run that is not phase/name")
    missing = sorted(set(listed) - set(members))
    if missing:
        raise ParamError(
            "archive", f"{archive} is partial: {len(missing)} listed file(s) missing, first {missing[0]}"
        )
    extra = sorted(set(members) - set(listed))
    if extra:
        raise ParamError("archive", f"{archive} holds {len(extra)} unlisted file(s), first {extra[0]}")
    bad = sorted(n for n, data in members.items() if _sha256(data) != listed[n]["sha256"])
    if bad:
        raise ParamError("archive", f"{archive}: {len(bad)} corrupt file(s) (sha256 differs), first {bad[0]}")
    wrong_size = sorted(n for n, data in members.items() if len(data) != listed[n]["size"])
    if wrong_size:
        raise ParamError(
            "archive",
            f"{archive}: {len(wrong_size)} file(s) of another size than listed, first {wrong_size[0]}",
        )
    for run in runs:
        lacking = [f for f in SMALL_FILES if f"runs/{run}/{f}" not in members]
        if lacking:
            raise ParamError("archive", f"{archive}: run {run} lacks {', '.join(lacking)}")
        # the run is what its name says: config digest = key, phase = folder, numbers in range
        own = {f: members[f"runs/{run}/{f}"] for f in SMALL_FILES}
        try:
            verify_run(Path("runs", run), files=own, param="archive")
        except ParamError as exc:
            raise ParamError("archive", f"{archive}: {exc.message}") from None
    for name, data in members.items():
        if _EXTRA_FILE.match(name):
            try:
                doc = json.loads(data)
            except (ValueError, UnicodeDecodeError, RecursionError):
                doc = None
            if not isinstance(doc, dict):
                raise ParamError("archive", f"{archive}: {name} is not a JSON object")
            try:
                check_numbers(doc, name, param="archive")
            except ParamError as exc:
                raise ParamError("archive", f"{archive}: {exc.message}") from None
    outside = sorted(
        n
        for n in members
        if n.startswith("runs/")
        and not _EXTRA_FILE.match(n)
        and n.rsplit("/", 1)[0][len("runs/") :] not in runs
    )
    if outside:
        raise ParamError(
            "archive", f"{archive}: {len(outside)} file(s) outside the listed runs, first {outside[0]}"
        )
    return manifest, members


def _target(name: str, root: Path, data_root: Path) -> Path:
    head, rest = name.split("/", 1)
    return (root if head == "runs" else data_root) / rest


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def unpack_results(
    archive: str | os.PathLike,
    root: str | os.PathLike = "runs",
    *,
    data_root: str | os.PathLike = "data",
    force: bool = False,
) -> PackReport:
    """Check ``archive`` completely, then write its runs under ``root`` and its data record under
    ``data_root`` (see the module doc).

    Returns:
        The runs unpacked, the number of files written and the files skipped as identical.
    """
    manifest, files = check_archive(archive)
    root, data_root = Path(root), Path(data_root)
    for param, folder in (("root", root), ("data_root", data_root)):
        if folder.exists() and not folder.is_dir():
            raise ParamError(param, f"{folder} exists and is not a folder")
    # one writer at a time: the lock of each folder written is held around the check and the
    # writes (``files.lock_output``, as every writer); a refused unpack leaves no folder it made
    folders = [root] + ([data_root] if any(n.startswith("data/") for n in files) else [])
    made = [missing_folders(f) for f in folders]
    try:
        for folder in folders:
            try:
                lock_output(folder)
            except ParamError as exc:
                param = "root" if folder == root else "data_root"
                raise ParamError(
                    param, exc.message.replace("--out", f"--{param.replace('_', '-')}")
                ) from None
        return _unpack_locked(archive, manifest, files, root, data_root, force)
    except BaseException:
        for folder in folders:
            release_output(folder)
        for created in made:
            remove_empty(created)
        raise
    finally:
        for folder in folders:
            release_output(folder)


def _unpack_locked(
    archive, manifest: dict, files: dict[str, bytes], root: Path, data_root: Path, force: bool
) -> PackReport:
    """``unpack_results``' checks against what is there and its writes, under the folders' locks."""
    targets = {name: _target(name, root, data_root) for name in files}
    for name, path in targets.items():
        base = root if name.startswith("runs/") else data_root
        parent = path.parent
        while parent != base and parent != parent.parent:
            if parent.is_symlink():
                raise ParamError(
                    "root",
                    f"{parent} is a symbolic link; unpack does not write through links (nothing was unpacked)",
                )
            parent = parent.parent
    same, conflicts = [], []
    for name, path in targets.items():
        if path.is_file() and not path.is_symlink() and path.read_bytes() == files[name]:
            same.append(name)
        elif path.exists() or path.is_symlink():
            conflicts.append(str(path))
    if conflicts and not force:
        raise ParamError(
            "root",
            f"{len(conflicts)} file(s) already exist with other contents, first {conflicts[0]}; "
            "pass --force to replace them (nothing was unpacked)",
        )
    # summary.json last, so a run looks finished only once its other files are in place
    order = sorted((n for n in files if n not in same), key=lambda n: (n.endswith("/summary.json"), n))
    for name in order:
        _write_atomic(targets[name], files[name])
    return PackReport(Path(archive), list(manifest.get("runs", [])), len(order), same)
