"""Dataset formats: the ImageFolder tree, WebDataset tar shards and parquet shards; one verify.

A kind's builder (``kinds.Kind.builder``: ``build_ofdb``, ``build_fractaldb``, ``build_ofdb3d``,
1p-frac's) writes an ImageFolder tree; the shard formats are that tree's files re-packed, so the
PNG bytes are the same in every format:

* ``webdataset``: ``DIR/data-000000.tar``, ... in the WebDataset layout: per sample the members
  ``KEY.png`` (the image), ``KEY.cls`` (the label as decimal text) and ``KEY.json`` (path, label,
  category, the category's parameters and the instance fields), ``KEY`` a six-digit sample index.
  Plain ``tarfile`` writes them, with zero times and owners, so the shards are byte-reproducible.
* ``parquet``: ``DIR/data-000000.parquet``, ... (pyarrow), one row per image with the columns of
  ``PARQUET_SCHEMA``: image (PNG bytes), label, category, params (the category's CSV rows,
  ``a,b,c,d,e,f,p`` or the 3D layout), path and the instance fields row, render, flip, view (null
  where a kind has none).

Every format keeps ``DIR/manifest.json``: the tree's manifest (kind, settings, every category's
parameters, the sha256 of every image's bytes by its tree path) plus ``format`` and ``shards``
(name -> sha256 and sample count). A 1p-frac tree keeps its classes' parameters in
``CAT/CAT.csv`` files beside the images (and its base system in the manifest); the shard manifest
and samples carry them as ``params``, as for the other kinds. The tree is built in ``DIR/.folder``
and removed once the shards and the manifest (written last) are in place; ``--resume`` continues
an unfinished build there.

Labels follow ``torchvision``'s ImageFolder: the index of the category folder in sorted order.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from ..errors import ParamError, check_positive_int
from ..files import atomic_write_bytes, atomic_write_text, prepare_output, release_output
from .build import MANIFEST, load_manifest, sha256_file
from .build import verify as verify_folder

FORMATS = ("folder", "webdataset", "parquet")
SHARD_SIZE = 10_000  # samples per shard
STAGING = ".folder"
SUFFIX = {"webdataset": ".tar", "parquet": ".parquet"}
_FIELDS = {"row": re.compile(r"_w(\d+)"), "render": re.compile(r"_r(\d+)"), "view": re.compile(r"_v(\d+)")}
_FLIP = re.compile(r"_(none|tb|lr|both)\.png$")


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of ``FORMATS`` whose library is installed; ParamError otherwise."""
    if fmt not in FORMATS:
        raise ParamError("format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ParamError("format", "parquet needs pyarrow (pip install -r requirements.txt)") from None
    return fmt


def instance_fields(path: str) -> dict:
    """Row, render, flip and view of an image from its tree path (None where the kind has none).

    ``00003/00003_w07_r02_lr.png`` (FractalDB) -> row 7, render 2, flip ``lr``;
    ``00003/00003_v11.png`` (3D-OFDB) -> view 11; ``00003/00003.png`` (OFDB) -> all None.
    """
    stem = path.rsplit("/", 1)[-1]
    out = {k: (int(m.group(1)) if (m := rx.search(stem)) else None) for k, rx in _FIELDS.items()}
    flip = _FLIP.search(stem)
    out["flip"] = flip.group(1) if flip else None
    return {k: out[k] for k in ("row", "render", "flip", "view")}


def image_paths(manifest: dict) -> list[str]:
    """The tree's images (``CAT/NAME.png``), in path order: the samples of a shard dataset (a
    tree's text files, such as 1p-frac's parameter CSVs, stay in the manifest only)."""
    return sorted(p for p in manifest["files"] if p.endswith(".png") and "/" in p)


def _labels(manifest: dict) -> dict[str, int]:
    """Category folder -> label: its index in sorted order (torchvision's ImageFolder)."""
    return {c: i for i, c in enumerate(sorted({p.split("/", 1)[0] for p in image_paths(manifest)}))}


def record(manifest: dict, labels: dict[str, int], path: str, index: int | None = None) -> dict:
    """The sample record of one image: key, path, label, category, params, instance fields, sha256."""
    cat = path.split("/", 1)[0]
    rec = {"key": None if index is None else f"{index:06d}", "path": path, "label": labels[cat]}
    rec.update(category=cat, params=manifest.get("params", {}).get(cat), **instance_fields(path))
    rec["sha256"] = manifest["files"][path]
    return rec


def samples(tree: str | os.PathLike, manifest: dict | None = None) -> Iterator[dict]:
    """The records of every image of a tree, in path order (keys ``000000``, ``000001``, ...)."""
    manifest = manifest or load_manifest(tree)
    labels = _labels(manifest)
    for i, path in enumerate(image_paths(manifest)):
        yield record(manifest, labels, path, i)


def tree_params(tree: Path, manifest: dict) -> dict[str, list]:
    """Each category's parameter rows: the manifest's ``params``, else (1p-frac, whose manifest
    keeps only the base system) the ``CAT/CAT.csv`` of every category the tree lists."""
    if manifest.get("params"):
        return manifest["params"]
    from .ifs import read_csv

    cats = sorted({p.split("/", 1)[0] for p in image_paths(manifest)})
    return {
        c: read_csv(tree / c / f"{c}.csv").to_rows().tolist()
        for c in cats
        if f"{c}/{c}.csv" in manifest["files"]
    }


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _write_webdataset_shard(fh: BinaryIO, tree: Path, recs: list[dict]) -> None:
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rec in recs:
            meta = {k: v for k, v in rec.items() if k not in ("key", "sha256")}
            _tar_member(tar, f"{rec['key']}.png", (tree / rec["path"]).read_bytes())
            _tar_member(tar, f"{rec['key']}.cls", str(rec["label"]).encode())
            _tar_member(tar, f"{rec['key']}.json", json.dumps(meta, sort_keys=True).encode())


def parquet_schema():
    """The columns of a parquet shard (pyarrow schema)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("image", pa.binary()),
            ("label", pa.int64()),
            ("category", pa.string()),
            ("params", pa.list_(pa.list_(pa.float64()))),
            ("path", pa.string()),
            ("row", pa.int32()),
            ("render", pa.int32()),
            ("flip", pa.string()),
            ("view", pa.int32()),
        ]
    )


def _write_parquet_shard(fh: BinaryIO, tree: Path, recs: list[dict], meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema().with_metadata({"ofdb_study": json.dumps(meta, sort_keys=True)})
    cols = {name: [rec.get(name) for rec in recs] for name in schema.names if name != "image"}
    cols["image"] = [(tree / rec["path"]).read_bytes() for rec in recs]
    table = pa.table({name: cols[name] for name in schema.names}, schema=schema)
    pq.write_table(table, fh, row_group_size=1000)


def convert_tree(
    tree: str | os.PathLike, out: str | os.PathLike, fmt: str, shard_size: int = SHARD_SIZE
) -> Path:
    """Write a complete tree's images as ``fmt`` shards in ``out`` with the manifest (written last).

    Shards already in ``out`` (an unfinished earlier conversion) are replaced.
    """
    tree, out = Path(tree), Path(out)
    check_format(fmt)
    check_positive_int("shard_size", shard_size)
    manifest = load_manifest(tree)
    params = tree_params(tree, manifest)
    if params:  # every format carries each category's parameters, in its samples and manifest
        manifest = {**manifest, "params": params}
    recs = samples(tree, manifest)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("data-*"):
        old.unlink()
    shards = {}
    small = {
        "kind": manifest["kind"],
        "settings": manifest["settings"],
        "format_version": manifest["format_version"],
    }
    index = count = 0
    while chunk := list(islice(recs, shard_size)):
        name = f"data-{index:06d}{SUFFIX[fmt]}"
        if fmt == "webdataset":
            atomic_write_bytes(out / name, lambda fh: _write_webdataset_shard(fh, tree, chunk))
        else:
            atomic_write_bytes(out / name, lambda fh: _write_parquet_shard(fh, tree, chunk, small))
        shards[name] = {"sha256": sha256_file(out / name), "samples": len(chunk)}
        index, count = index + 1, count + len(chunk)
    doc = {**manifest, "format": fmt, "shard_size": shard_size, "samples": count, "shards": shards}
    atomic_write_text(out / MANIFEST, json.dumps(doc, indent=1))
    return out


def build_in_format(
    build_tree: Callable[..., Path],
    out: str | os.PathLike,
    fmt: str = "folder",
    *,
    resume: bool = False,
    force: bool = False,
    shard_size: int = SHARD_SIZE,
) -> Path:
    """Build a dataset in ``fmt``: ``build_tree(path, resume=..., force=...)`` writes the tree.

    For ``folder`` that is all. For the shard formats the tree goes to ``out/.folder`` and is
    converted (``convert_tree``), then removed. ``out`` is refused if it holds anything, unless
    ``force`` (emptied first) or ``resume`` (an unfinished build continues; a complete one of the
    same format is returned as it is: pass ``force`` to rebuild with other settings).
    """
    check_format(fmt)
    check_positive_int("shard_size", shard_size)
    if fmt == "folder":
        return build_tree(out, resume=resume, force=force)
    out = Path(out)
    done = (out / MANIFEST).is_file()
    what = "a complete shard dataset" if done else "an unfinished shard build"
    if prepare_output(out, what=what, owned="shards", resume=resume, force=force, lock=True):
        if done:
            previous = load_manifest(out).get("format", "folder")
            if previous != fmt:
                raise ParamError("resume", f"{out} holds a {previous} dataset, not {fmt}")
            return out
        if not (out / STAGING).is_dir():
            raise ParamError("resume", f"{out} was not made by this builder; use --force or another --out")
    staging = out / STAGING
    build_tree(staging, resume=True, force=False)
    convert_tree(staging, out, fmt, shard_size)
    shutil.rmtree(staging)
    release_output(out)
    return out


# ---- verification --------------------------------------------------------------------------------
def dataset_format(out: str | os.PathLike) -> str:
    """``folder``, ``webdataset`` or ``parquet``, from the manifest."""
    return load_manifest(out).get("format", "folder")


def _read_webdataset(path: Path) -> tuple[dict[str, dict[str, bytes]], str | None]:
    """Members grouped by sample key, and the error that stopped reading (None if none)."""
    found: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                key, _, ext = info.name.partition(".")
                if info.isreg():
                    found.setdefault(key, {})[ext] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        return found, str(exc) or type(exc).__name__
    return found, None


def _read_parquet(path: Path) -> tuple[dict[str, dict], str | None]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises its own types for damaged files
        return {}, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {r["key"]: r for r in rows}, None


def _check_sample(shard: str, key: str, got, fmt: str, expected: Callable) -> tuple[str | None, str | None]:
    """(tree path the sample claims, problem line or None)."""
    if fmt == "webdataset":
        if not {"png", "cls", "json"} <= set(got):
            return (
                None,
                f"corrupt: {shard}:{key} lacks {', '.join(sorted({'png', 'cls', 'json'} - set(got)))}",
            )
        try:
            meta = json.loads(got["json"])
            label = int(got["cls"])
        except ValueError:
            return None, f"corrupt: {shard}:{key}.json or .cls does not parse"
        image, path = got["png"], meta.get("path")
    else:
        meta, image, path, label = got, got["image"], got["path"], got["label"]
    rec = expected(path)
    if rec is None:
        return path, f"unlisted: {shard}:{key} ({path})"
    member = f"{shard}:{key}.png" if fmt == "webdataset" else f"{shard}:{key}"
    if image is None or hashlib.sha256(image).hexdigest() != rec["sha256"]:
        return path, f"corrupt: {member} ({path})"
    if (
        label != rec["label"]
        or meta.get("params") != rec["params"]
        or meta.get("category") != rec["category"]
    ):
        return path, f"corrupt: {member} ({path}: label, category or parameters differ from the manifest)"
    return path, None


def verify_shards(out: str | os.PathLike) -> list[str]:
    """Check a shard dataset against its manifest: one line per missing, corrupt or unlisted item."""
    out = Path(out)
    manifest = load_manifest(out)
    fmt = manifest["format"]
    files, labels = set(image_paths(manifest)), _labels(manifest)

    def expected(path) -> dict | None:
        return record(manifest, labels, path) if path in files else None

    seen: set[str] = set()
    problems = []
    for shard, info in manifest["shards"].items():
        path = out / shard
        if not path.is_file():
            problems.append(f"missing: {shard}")
            continue
        found, error = (_read_webdataset if fmt == "webdataset" else _read_parquet)(path)
        before = len(problems)
        if error:
            problems.append(f"corrupt: {shard} ({error})")
        for key, got in sorted(found.items()):
            claimed, problem = _check_sample(shard, key, got, fmt, expected)
            if claimed in files:  # found (whole or corrupt): not reported missing as well
                seen.add(claimed)
            if problem:
                problems.append(problem)
        if len(problems) == before and sha256_file(path) != info["sha256"]:
            problems.append(f"corrupt: {shard} (sha256 differs from the manifest)")
    problems += [f"missing: {p}" for p in sorted(set(files) - seen)]
    listed = set(manifest["shards"])
    problems += [f"unlisted: {p.name}" for p in sorted(out.glob("data-*")) if p.name not in listed]
    return problems


def verify_any(out: str | os.PathLike) -> list[str]:
    """``build.verify`` for a tree, ``verify_shards`` for the shard formats."""
    return verify_folder(out) if dataset_format(out) == "folder" else verify_shards(out)
