"""Dataset builders: OFDB-N and FractalDB-N as ImageFolder trees with a manifest, and verification;
the tree writer every kind's builder uses (``write_image_tree``).

A tree is ``DIR/NNNNN/<image>.png`` (one folder per category, readable by torchvision's
``ImageFolder``) plus ``DIR/manifest.json``: kind, settings, every category's parameters, seeds,
package versions, the sha256 of every file and ``dataset_sha256`` (``datasets.dataset_digest``: the
same hash the in-memory training sources report for the same images). What each image is, is
defined once in ``datasets``; this module only writes the images down.

Writing is crash-safe: images go through a temporary file and a rename, each finished file is
appended to ``DIR/.journal`` with its hash, and ``manifest.json`` is written last. A tree without
a manifest is never complete; ``resume=True`` continues it from the journal (images are
deterministic, so redoing one gives the same bytes). ``force=True`` removes what a tree owns in
``DIR`` (its category folders, manifest, journal and settings; see ``files.prepare_output``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import (
    COMMON_FILES,
    OUTPUT_KINDS,
    atomic_write_bytes,
    atomic_write_text,
    package_versions,
    prepare_output,
    release_output,
    resolve_workers,
)
from . import datasets, render
from .defaults import (
    DATA_SEED,
    FRACTALDB_FLIPS,
    FRACTALDB_RENDERS,
    FRACTALDB_ROWS,
    OFDB_A_WEIGHT,
    OFDB_PAD,
    OFDB_POINTS,
    OFDB_SIZE,
)
from .ifs import IFS, category_name, fluctuation_weights
from .png import write_png_atomic
from .render import DRAW_MODES, FLIPS, check_render_args
from .search import first_categories

MANIFEST = "manifest.json"
JOURNAL = ".journal"
SETTINGS = ".settings.json"
#: Raised when the manifest layout or the definition of the images changes.
FORMAT_VERSION = 2
#: What a tree owns in its folder (``files.prepare_output``): category folders, bookkeeping files.
TREE_FILES = (*OUTPUT_KINDS["tree"]["files"], *OUTPUT_KINDS["tree"]["folders"], *COMMON_FILES)

Job = tuple[Sequence[str] | str, Callable[[], Sequence[np.ndarray] | np.ndarray]]


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _prepare_out(out: Path, kind: str, settings: dict, resume: bool, force: bool) -> dict[str, str] | None:
    """Check what is at ``out``; returns the journal's finished files, or None if complete."""
    what = "a complete dataset" if (out / MANIFEST).is_file() else "an unfinished build"
    if not prepare_output(out, what=what, owned="tree", resume=resume, force=force, lock=True):
        out.mkdir(parents=True, exist_ok=True)
        return {}
    started = out / SETTINGS
    if not started.is_file():
        raise ParamError("resume", f"{out} was not made by this builder; use --force or another --out")
    previous = json.loads(started.read_text())
    if previous != {"kind": kind, "settings": settings}:
        raise ParamError("resume", f"{out} was built with other settings: {previous}")
    if (out / MANIFEST).is_file():
        return None
    done: dict[str, str] = {}
    journal = out / JOURNAL
    if journal.is_file():
        for line in journal.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) == 2 and (out / parts[0]).is_file():
                done[parts[0]] = parts[1]
    return done


def write_image_tree(
    out: str | os.PathLike,
    jobs: Sequence[Job],
    kind: str,
    settings: dict,
    *,
    extra: dict | None = None,
    texts: dict[str, str] | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    workers: int | None = None,
) -> Path:
    """Write images produced by ``jobs`` (and text files) under ``out`` with a manifest.

    Args:
        out: the tree's root folder.
        jobs: ``(relative_paths, fn)`` pairs; ``fn()`` returns the uint8 images, (H, W) or
            (H, W, 3), one per path (a single path and a single image are accepted too). Each fn
            must be deterministic: the bytes may not depend on worker count or order.
        kind: dataset kind recorded in the manifest (``ofdb``, ``fractaldb``, ``ofdb3d``...).
        settings: JSON-able settings; a resume must use equal settings.
        extra: more JSON-able manifest entries (parameters, seeds).
        texts: relative path -> text of small files written with the images (parameter CSVs),
            hashed in the manifest like them.
        resume: continue an unfinished build, or return a complete one unchanged.
        force: remove what a tree owns at ``out`` (``TREE_FILES``) first.
        progress: show a tqdm bar.
        workers: threads (default: ``files.usable_cpus()``); the kernels and zlib release the GIL.

    Returns:
        ``out`` as a Path.
    """
    out = Path(out)
    n_workers = resolve_workers(workers)
    settings = json.loads(json.dumps(settings))  # normalise tuples etc. for comparison
    done = _prepare_out(out, kind, settings, resume, force)
    if done is None:
        release_output(out)
        return out
    # a killed writer's temporaries (``.NAME.<pid>-<tid>.tmp``): this process holds the lock, so
    # none of them is being written
    for stale in (*out.glob(".*.tmp"), *out.glob("*/.*.tmp")):
        stale.unlink(missing_ok=True)
    atomic_write_text(out / SETTINGS, json.dumps({"kind": kind, "settings": settings}))
    todo = []
    for paths, fn in jobs:
        names = [paths] if isinstance(paths, str) else list(paths)
        if not all(n in done for n in names):
            todo.append((names, fn))

    def run(job):
        names, fn = job
        images = fn()
        if (
            isinstance(images, np.ndarray)
            and len(names) == 1
            and images.ndim in (2, 3)
            and images.dtype == np.uint8
        ):
            if images.ndim == 2 or images.shape[-1] == 3:
                images = [images]
        if len(images) != len(names):
            raise RuntimeError(f"job for {names[0]} made {len(images)} images for {len(names)} paths")
        hashes = []
        for name, img in zip(names, images):
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            hashes.append(hashlib.sha256(write_png_atomic(target, img)).hexdigest())
        return names, hashes

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="job", desc=f"build {kind}")
    with open(out / JOURNAL, "a") as journal, ThreadPoolExecutor(n_workers) as pool:
        for names, hashes in pool.map(run, todo):
            journal.write("".join(f"{n} {h}\n" for n, h in zip(names, hashes)))
            journal.flush()
            done.update(zip(names, hashes))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    for name, text in sorted((texts or {}).items()):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        atomic_write_bytes(target, data)
        done[name] = hashlib.sha256(data).hexdigest()
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "settings": settings,
        **(extra or {}),
        "versions": package_versions(),
        "n_files": len(done),
        "files": dict(sorted(done.items())),
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    (out / JOURNAL).unlink()
    release_output(out)
    return out


def load_manifest(out: str | os.PathLike) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise ParamError("dir", f"{out} has no {MANIFEST}: not a complete dataset")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParamError("dir", f"{path} is not valid JSON (corrupt); rebuild with --force") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise ParamError("dir", f"{path} is not a dataset manifest (no files)")
    return doc


def verify(out: str | os.PathLike) -> list[str]:
    """Check a tree against its manifest; returns one line per missing, corrupt or extra file."""
    out = Path(out)
    manifest = load_manifest(out)
    problems = []
    root = out.resolve()
    for name, digest in manifest["files"].items():
        path = out / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not path.resolve().is_relative_to(root):
            problems.append(f"unsafe: {name} (outside the tree; not read)")
        elif not path.is_file():
            problems.append(f"missing: {name}")
        elif sha256_file(path) != digest:
            problems.append(f"corrupt: {name}")
    listed = set(manifest["files"])
    # inside the folders the manifest's files lie in, everything is listed: no stray or non-PNG
    # file, no nested folder, no empty folder (names beside them are the user's)
    folders = {Path(name).parts[0] for name in listed if len(Path(name).parts) > 1}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.parent == out:
            if path.is_dir() and path.name not in folders and path.name[:5].isdigit():
                if not any(path.iterdir()):
                    problems.append(f"empty folder: {rel.as_posix()}")
            continue
        if rel.parts[0] not in folders:
            continue
        if path.is_dir() and not path.is_symlink():
            problems.append(f"{'empty' if not any(path.iterdir()) else 'unlisted'} folder: {rel.as_posix()}")
        elif rel.as_posix() not in listed:
            problems.append(f"unlisted: {rel.as_posix()}")
    return problems


# ----------------------------------------------------------------------------------------------
# The two datasets, written down (their images are defined in ``datasets``).


def _params_doc(systems: Sequence[IFS]) -> dict[str, list]:
    return {category_name(i): s.to_rows().tolist() for i, s in enumerate(systems)}


def _source(params: str | os.PathLike | None) -> str:
    return "the exact search, seed 1" if params is None else str(params)


def build_ofdb(
    out: str | os.PathLike,
    categories: int,
    *,
    params: str | os.PathLike | None = None,
    size: int = OFDB_SIZE,
    points: int = OFDB_POINTS,
    pad: int = OFDB_PAD,
    mode: str = "patch",
    a_weight: float = OFDB_A_WEIGHT,
    weights: Sequence[float] | None = None,
    seed: int = DATA_SEED,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """OFDB-N: one image per category, ``DIR/NNNNN/NNNNN.png`` (``datasets.ofdb_image``).

    Args:
        out: the tree's folder.
        categories: N, the first N categories of ``params`` (a folder of NNNNN.csv) or of the
            exact search (``search.first_categories``, cached).
        size, points, pad, mode: render settings (the public generator's by default).
        a_weight: factor on every map's ``a``; ``weights`` (6,) multiplies a..f on top.
        seed: base seed of the patch masks (category c draws with ``ofdb_mask_seed(seed, c)``).
        workers, resume, force, progress: see ``write_image_tree``.
    """
    check_render_args(size, points, pad, mode)
    check_positive_int("seed", seed, minimum=0)
    pixels = datasets.ofdb_settings(
        size=size, points=points, pad=pad, a_weight=a_weight, weights=weights, mode=mode, seed=seed
    )
    systems = first_categories(categories, params, workers=workers)
    settings = {"categories": len(systems), **pixels, "params": _source(params)}

    def job(i: int, system: IFS) -> Job:
        def fn():
            pts = render.points(
                system, size=size, n_points=points, pad=pad, a_weight=a_weight, weights=pixels["weights"]
            )
            return datasets.ofdb_image(pts, i, seed, mode)

        return datasets.ofdb_file(i), fn

    extra = {
        "dataset_sha256": datasets.dataset_digest("ofdb", pixels, systems),
        "params": _params_doc(systems),
    }
    jobs = [job(i, s) for i, s in enumerate(systems)]
    return write_image_tree(
        out,
        jobs,
        "ofdb",
        settings,
        extra=extra,
        resume=resume,
        force=force,
        progress=progress,
        workers=workers,
    )


def build_fractaldb(
    out: str | os.PathLike,
    categories: int,
    *,
    params: str | os.PathLike | None = None,
    fluctuations: int = FRACTALDB_ROWS,
    renders: int = FRACTALDB_RENDERS,
    flips: int = FRACTALDB_FLIPS,
    size: int = OFDB_SIZE,
    points: int = OFDB_POINTS,
    pad: int = OFDB_PAD,
    mode: str = "patch",
    seed: int = DATA_SEED,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """FractalDB-N: per category, fluctuation rows x patch renders x flips images.

    The images are ``datasets``' FractalDB instances: row ``w`` is ``fluctuation_weights()[w]``
    (row 0 identity, then a..f x 0.2/0.6/1.4/1.8), render ``r`` draws the row's points with the
    masks of ``fractaldb_mask_seed(seed, category, w, r)``, flips are none, top-bottom, left-right,
    both. Files: ``DIR/NNNNN/NNNNN_wWW_rRR_<flip>.png``. The full recipe is 25 x 10 x 4 = 1,000.
    Fewer rows, renders or flips give the first ones of the full recipe, byte for byte.
    """
    if not 1 <= fluctuations <= FRACTALDB_ROWS:
        raise ParamError("fluctuations", f"must be between 1 and {FRACTALDB_ROWS}, got {fluctuations}")
    check_positive_int("renders", renders)
    if not 1 <= flips <= len(FLIPS):
        raise ParamError("flips", f"must be between 1 and {len(FLIPS)}, got {flips}")
    if mode not in DRAW_MODES:
        raise ParamError("draw", f"must be one of {', '.join(DRAW_MODES)}, got {mode!r}")
    check_render_args(size, points, pad, mode)
    check_positive_int("seed", seed, minimum=0)
    pixels = datasets.fractaldb_settings(
        size=size,
        points=points,
        pad=pad,
        fluctuations=fluctuations,
        renders=renders,
        flips=flips,
        mode=mode,
        seed=seed,
    )
    systems = first_categories(categories, params, workers=workers)
    settings = {"categories": len(systems), **pixels, "params": _source(params)}
    names = FLIPS[:flips]

    def job(i: int, system: IFS, w: int) -> Job:
        paths = [datasets.fractaldb_file(i, w, r, f) for r in range(renders) for f in names]

        def fn():
            pts = datasets.fractaldb_points(system, w, size=size, n_points=points, pad=pad)
            images = []
            for r in range(renders):
                images.extend(datasets.fractaldb_images(pts, i, w, r, names, seed, mode))
            return images

        return paths, fn

    jobs = [job(i, s, w) for i, s in enumerate(systems) for w in range(fluctuations)]
    extra = {
        "dataset_sha256": datasets.dataset_digest("fractaldb", pixels, systems),
        "params": _params_doc(systems),
        "weights": fluctuation_weights()[:fluctuations].tolist(),
    }
    return write_image_tree(
        out,
        jobs,
        "fractaldb",
        settings,
        extra=extra,
        resume=resume,
        force=force,
        progress=progress,
        workers=workers,
    )
