"""Dataset builders: OFDB-N and FractalDB-N as ImageFolder trees with a manifest, and verification.

A tree is ``DIR/NNNNN/<image>.png`` (one folder per category, readable by torchvision's
``ImageFolder``) plus ``DIR/manifest.json``: kind, settings, every category's parameters, seeds,
package versions and the sha256 of every file.

Writing is crash-safe: images go through a temporary file and a rename, each finished file is
appended to ``DIR/.journal`` with its hash, and ``manifest.json`` is written last. A tree without
a manifest is never complete; ``resume=True`` continues it from the journal (images are
deterministic, so redoing one gives the same bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ParamError, check_positive_int
from . import render
from .ifs import IFS, category_name, fluctuation_weights, read_dir
from .png import write_png_atomic
from .render import DRAW_MODES, check_render_args

MANIFEST = "manifest.json"
JOURNAL = ".journal"
FORMAT_VERSION = 1
FLIPS = ("none", "tb", "lr", "both")

Job = tuple[Sequence[str] | str, Callable[[], Sequence[np.ndarray] | np.ndarray]]


def package_versions() -> dict[str, str]:
    """Versions that decide the bytes of a dataset (and, for runs, of the weights)."""
    import numba

    return {
        "ofdb_study": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_sha256(out: str | os.PathLike) -> str:
    """Hash of a tree's manifest: one string that identifies the whole dataset."""
    return sha256_file(Path(out) / MANIFEST)


def _prepare_out(out: Path, kind: str, settings: dict, resume: bool, force: bool) -> dict[str, str] | None:
    """Check what is at ``out``; returns the journal's finished files, or None if complete."""
    if out.exists() and not out.is_dir():
        raise ParamError("out", f"{out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return {}
    manifest = out / MANIFEST
    if force:
        shutil.rmtree(out)
        out.mkdir(parents=True)
        return {}
    if not resume:
        state = "a complete dataset" if manifest.is_file() else "an unfinished build"
        raise ParamError("out", f"{out} holds {state}; pass --resume to continue or --force to replace")
    started = out / ".settings.json"
    if not started.is_file():
        raise ParamError("resume", f"{out} was not made by this builder; use --force or another --out")
    previous = json.loads(started.read_text())
    if previous != {"kind": kind, "settings": settings}:
        raise ParamError("resume", f"{out} was built with other settings: {previous}")
    if manifest.is_file():
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
        force: delete what is at ``out`` first.
        progress: show a tqdm bar.
        workers: threads (default: CPUs available); the kernels and zlib release the GIL.

    Returns:
        ``out`` as a Path.
    """
    out = Path(out)
    if workers is not None:
        check_positive_int("workers", workers)
    settings = json.loads(json.dumps(settings))  # normalise tuples etc. for comparison
    done = _prepare_out(out, kind, settings, resume, force)
    if done is None:
        return out
    (out / ".settings.json").write_text(json.dumps({"kind": kind, "settings": settings}))
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

    n_workers = workers or max(1, len(os.sched_getaffinity(0)))
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
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
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
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)
    (out / JOURNAL).unlink()
    return out


def load_manifest(out: str | os.PathLike) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise ParamError("dir", f"{out} has no {MANIFEST}: not a complete dataset")
    return json.loads(path.read_text())


def verify(out: str | os.PathLike) -> list[str]:
    """Check a tree against its manifest; returns one line per missing, corrupt or extra file."""
    out = Path(out)
    manifest = load_manifest(out)
    problems = []
    for name, digest in manifest["files"].items():
        path = out / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif sha256_file(path) != digest:
            problems.append(f"corrupt: {name}")
    listed = set(manifest["files"])
    for path in sorted(out.rglob("*.png")):
        rel = path.relative_to(out).as_posix()
        if rel not in listed:
            problems.append(f"unlisted: {rel}")
    return problems


# ----------------------------------------------------------------------------------------------
# Category parameters: from a search folder, or the exact search run here.


def category_params(
    categories: int, params: str | os.PathLike | None = None, workers: int | None = None
) -> list[IFS]:
    """The first ``categories`` systems: read from ``params`` (NNNNN.csv files) or searched."""
    categories = check_positive_int("categories", categories)
    if params is not None:
        return read_dir(params, limit=categories)
    from .search import search

    return search(categories, workers=workers).categories


def _params_doc(systems: Sequence[IFS]) -> dict[str, list]:
    return {category_name(i): s.to_rows().tolist() for i, s in enumerate(systems)}


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers (base seed, category, row, render): stable and order-free."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _flip(image: np.ndarray, flip: str) -> np.ndarray:
    if flip == "tb":
        return image[::-1]
    if flip == "lr":
        return image[:, ::-1]
    if flip == "both":
        return image[::-1, ::-1]
    return image


def build_ofdb(
    out: str | os.PathLike,
    categories: int,
    *,
    params: str | os.PathLike | None = None,
    size: int = 362,
    points: int = 200_000,
    mode: str = "patch",
    a_weight: float = 0.2,
    weights: Sequence[float] | None = None,
    mask_seed: int = 0,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """OFDB-N: one image per category, ``DIR/NNNNN/NNNNN.png`` (the public generator's settings).

    ``weights`` (6,) multiplies a..f on top of ``a_weight`` (for example a FractalDB row).

    ``mask_seed`` seeds the patch masks; every category uses the same masks stream, as every
    category also uses the same chaos-game stream.
    """
    check_render_args(size, points, 6, mode)
    check_positive_int("seed", mask_seed, minimum=0)
    w6 = render.effective_weights(1.0, weights)
    systems = category_params(categories, params, workers)
    settings = {
        "categories": len(systems),
        "size": size,
        "points": points,
        "mode": mode,
        "a_weight": a_weight,
        "weights": w6.tolist(),
        "mask_seed": mask_seed,
        "chaos_seed": 100,
        "pad": 6,
        "params": "search seed 1" if params is None else str(params),
    }

    def job(i: int, system: IFS) -> Job:
        name = category_name(i)

        def fn():
            pts = render.points(system, size=size, n_points=points, a_weight=a_weight, weights=w6)
            return render.draw(pts, mode=mode, mask_seed=mask_seed)

        return f"{name}/{name}.png", fn

    jobs = [job(i, s) for i, s in enumerate(systems)]
    return write_image_tree(
        out,
        jobs,
        "ofdb",
        settings,
        extra={"params": _params_doc(systems)},
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
    fluctuations: int = 25,
    renders: int = 10,
    flips: int = 4,
    size: int = 362,
    points: int = 200_000,
    mode: str = "patch",
    seed: int = 0,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> Path:
    """FractalDB-N: per category, fluctuation rows x patch renders x flips images.

    Row ``w`` is ``fluctuation_weights()[w]`` (row 0 identity, then a..f x 0.2/0.6/1.4/1.8); all
    renders of a row share the seed-100 chaos-game points and draw fresh masks seeded by
    ``derive_seed(seed, category, w, r)``; flips are none, top-bottom, left-right, both.
    Files: ``DIR/NNNNN/NNNNN_wWW_rRR_<flip>.png``. The full recipe is 25 x 10 x 4 = 1,000.
    """
    if not 1 <= fluctuations <= 25:
        raise ParamError("fluctuations", f"must be between 1 and 25, got {fluctuations}")
    check_positive_int("renders", renders)
    if not 1 <= flips <= 4:
        raise ParamError("flips", f"must be between 1 and 4, got {flips}")
    if mode not in DRAW_MODES:
        raise ParamError("draw", f"must be one of {', '.join(DRAW_MODES)}, got {mode!r}")
    check_render_args(size, points, 6, mode)
    check_positive_int("seed", seed, minimum=0)
    systems = category_params(categories, params, workers)
    rows = fluctuation_weights()[:fluctuations]
    settings = {
        "categories": len(systems),
        "fluctuations": fluctuations,
        "renders": renders,
        "flips": list(FLIPS[:flips]),
        "size": size,
        "points": points,
        "mode": mode,
        "seed": seed,
        "chaos_seed": 100,
        "pad": 6,
        "params": "search seed 1" if params is None else str(params),
    }

    def job(i: int, system: IFS, w: int) -> Job:
        name = category_name(i)
        paths = [f"{name}/{name}_w{w:02d}_r{r:02d}_{f}.png" for r in range(renders) for f in FLIPS[:flips]]

        def fn():
            pts = render.points(system, size=size, n_points=points, a_weight=1.0, weights=rows[w])
            images = []
            for r in range(renders):
                base = render.draw(pts, mode=mode, mask_seed=derive_seed(seed, i, w, r))
                images.extend(np.ascontiguousarray(_flip(base, f)) for f in FLIPS[:flips])
            return images

        return paths, fn

    jobs = [job(i, s, w) for i, s in enumerate(systems) for w in range(fluctuations)]
    extra = {"params": _params_doc(systems), "weights": rows.tolist()}
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
