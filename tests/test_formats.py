"""Data exports (folder, WebDataset shards, parquet shards) and ``verify --against``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ofdb_study.cli import main
from ofdb_study.fractals import formats
from ofdb_study.fractals.build import load_manifest
from ofdb_study.fractals.compare import compare_params
from ofdb_study.fractals.ifs import write_csv
from ofdb_study.fractals.search import search

pq = pytest.importorskip("pyarrow.parquet")

SMALL = ["--size", "48", "--points", "1500", "--quiet"]
KINDS = {
    "ofdb": ["--categories", "3"],
    "fractaldb": ["--categories", "2", "--fluctuations", "2", "--renders", "2", "--flips", "2"],
    "ofdb3d": ["--categories", "2"],
    "1pfrac": ["--categories", "3"],
}


def _build(kind: str, fmt: str, out: Path, *extra: str) -> int:
    argv = ["build", kind, *KINDS[kind], *SMALL, "--out", str(out), "--format", fmt, "--shard-size", "3"]
    return main(argv + list(extra))


def _images(out: Path) -> dict[str, bytes]:
    """Tree path -> PNG bytes, read back from any format."""
    manifest = load_manifest(out)
    fmt = manifest.get("format", "folder")
    if fmt == "folder":  # the samples are the images (1p-frac's parameter CSVs are not)
        return {p: (out / p).read_bytes() for p in formats.image_paths(manifest)}
    got = {}
    for shard in manifest["shards"]:
        if fmt == "webdataset":
            with tarfile.open(out / shard) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar}
            for name, data in members.items():
                if name.endswith(".json"):
                    meta = json.loads(data)
                    key = name[: -len(".json")]
                    got[meta["path"]] = members[f"{key}.png"]
                    assert int(members[f"{key}.cls"]) == meta["label"]
        else:
            for row in pq.read_table(out / shard).to_pylist():
                got[row["path"]] = row["image"]
    return got


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """kind -> format -> output folder, every kind in every format (tiny sizes)."""
    base = tmp_path_factory.mktemp("formats")
    out = {}
    for kind in KINDS:
        for fmt in formats.FORMATS:
            folder = base / kind / fmt
            assert _build(kind, fmt, folder) == 0
            out.setdefault(kind, {})[fmt] = folder
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_format_holds_the_same_image_bytes_and_verifies(built, kind, capsys):
    trees = built[kind]
    images = {fmt: _images(folder) for fmt, folder in trees.items()}
    assert images["folder"] and images["webdataset"] == images["folder"] == images["parquet"]
    for fmt, folder in trees.items():
        assert main(["verify", str(folder)]) == 0
        assert f"({fmt}) match the manifest" in capsys.readouterr().out
        manifest = load_manifest(folder)
        assert manifest["kind"] == kind
        # every category's parameters in every format (a 1p-frac tree keeps them in its CSVs)
        params = formats.tree_params(folder, manifest) if fmt == "folder" else manifest["params"]
        assert sorted(params) == sorted({p.split("/", 1)[0] for p in formats.image_paths(manifest)})
        if fmt != "folder":
            assert params == formats.tree_params(trees["folder"], load_manifest(trees["folder"]))
            assert sorted(p.name for p in folder.iterdir()) == [*manifest["shards"], "manifest.json"]
            assert manifest["files"] == load_manifest(trees["folder"])["files"]


def _verified_count(folder: Path, capsys) -> int:
    """The image count ``verify`` reports for a dataset (it must verify)."""
    import re

    assert main(["verify", str(folder)]) == 0
    return int(re.search(r"OK, (\d+) images", capsys.readouterr().out).group(1))


def _webdataset_samples(shard: Path) -> list[dict]:
    """The samples of a tar shard grouped as the ``webdataset`` library groups them (the key is
    the member name up to the first dot of its last part), each member decoded as its
    ``.decode("pil")`` does: ``png`` to a PIL image, ``cls`` to an int, ``json`` to an object."""
    from PIL import Image

    samples: dict[str, dict] = {}
    with tarfile.open(shard) as tar:
        for m in tar:
            head, _, last = m.name.rpartition("/")
            key, _, ext = last.partition(".")
            data = tar.extractfile(m).read()
            if ext == "png":
                value = Image.open(io.BytesIO(data))
                value.load()
            elif ext == "cls":
                value = int(data)
            elif ext == "json":
                value = json.loads(data)
            else:
                value = data
            samples.setdefault(f"{head}/{key}" if head else key, {})[ext] = value
    return [samples[k] for k in sorted(samples)]


def _check_onepfrac_samples(samples: list[dict], folder: Path, count: int) -> None:
    """Every sample an image of the 1p-frac tree's size, labelled by its category, as many as
    ``verify`` counts, every category present (and no fourth class from ``base.csv``)."""
    manifest = load_manifest(folder)
    size = manifest["settings"]["size"]
    assert len(samples) == count == manifest["samples"] == 3
    for s in samples:
        assert s["image"].size == (size, size) and s["image"].mode in ("L", "RGB")
        assert s["label"] == int(s["category"])
        assert s["params"] == manifest["params"][s["category"]]  # the class's own CSV rows
    assert sorted(s["label"] for s in samples) == [0, 1, 2]


def test_onepfrac_webdataset_shards_read_as_webdataset_reads_them(built, capsys):
    folder = built["1pfrac"]["webdataset"]
    samples = [
        {**s["json"], "image": s["png"], "label": s["cls"], "keys": set(s)}
        for shard in load_manifest(folder)["shards"]
        for s in _webdataset_samples(folder / shard)
    ]
    assert all(s["keys"] == {"png", "cls", "json"} for s in samples)
    with tarfile.open(folder / "data-000000.tar") as tar:
        meta = [json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")]
    assert [m["label"] for m in meta] == [s["label"] for s in samples]  # .json and .cls agree
    _check_onepfrac_samples(samples, folder, _verified_count(folder, capsys))


def test_onepfrac_parquet_shards_decode_to_images(built, capsys):
    from PIL import Image

    folder = built["1pfrac"]["parquet"]
    rows = [r for shard in load_manifest(folder)["shards"] for r in pq.read_table(folder / shard).to_pylist()]
    samples = [dict(r, image=Image.open(io.BytesIO(r["image"]))) for r in rows]
    _check_onepfrac_samples(samples, folder, _verified_count(folder, capsys))


def test_onepfrac_shards_through_the_webdataset_library(built, capsys):
    wds = pytest.importorskip("webdataset", reason="the webdataset library is not installed here")
    folder = built["1pfrac"]["webdataset"]
    urls = [str(folder / shard) for shard in load_manifest(folder)["shards"]]
    samples = [
        {
            "image": s["png"],
            "label": s["cls"],
            "category": s["json"]["category"],
            "params": s["json"]["params"],
        }
        for s in wds.WebDataset(urls, shardshuffle=False).decode("pil")
    ]
    _check_onepfrac_samples(samples, folder, _verified_count(folder, capsys))


def test_onepfrac_shards_through_hugging_face_datasets(built, capsys, tmp_path):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed here")
    folder = built["1pfrac"]["parquet"]
    files = [str(folder / shard) for shard in load_manifest(folder)["shards"]]
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    ds = ds.cast_column("image", datasets.Image())
    _check_onepfrac_samples(list(ds), folder, _verified_count(folder, capsys))


def test_samples_carry_parameters_and_instance_fields(built):
    rows = pq.read_table(built["fractaldb"]["parquet"] / "data-000000.parquet").to_pylist()
    manifest = load_manifest(built["fractaldb"]["parquet"])
    first = rows[0]
    assert first["path"] == "00000/00000_w00_r00_none.png" and first["label"] == 0
    assert (first["row"], first["render"], first["flip"], first["view"]) == (0, 0, "none", None)
    assert first["params"] == manifest["params"]["00000"]
    with tarfile.open(built["ofdb3d"]["webdataset"] / "data-000001.tar") as tar:
        meta = json.loads(tar.extractfile("000003.json").read())
    assert meta["path"] == "00000/00000_v03.png" and meta["view"] == 3 and meta["row"] is None
    assert formats.instance_fields("00002/00002.png") == dict(row=None, render=None, flip=None, view=None)


def test_shards_are_reproducible(built, tmp_path):
    for fmt in ("webdataset", "parquet"):
        again = tmp_path / fmt
        assert _build("ofdb", fmt, again) == 0
        first = load_manifest(built["ofdb"][fmt])["shards"]
        assert load_manifest(again)["shards"] == first


def _rewrite_member(shard: Path, member: str, change) -> None:
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(shard, "w") as tar:
        for m, data in members:
            data = change(data) if m.name == member else data
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


def test_verify_names_missing_and_corrupt_members(built, tmp_path, capsys):
    import shutil

    wds = tmp_path / "wds"
    shutil.copytree(built["ofdb"]["webdataset"], wds)
    _rewrite_member(wds / "data-000000.tar", "000001.png", lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    assert main(["verify", str(wds)]) == 1
    assert capsys.readouterr().out.splitlines() == ["corrupt: data-000000.tar:000001.png (00001/00001.png)"]
    (wds / "data-000000.tar").unlink()
    assert main(["verify", str(wds)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "missing: data-000000.tar" and "missing: 00000/00000.png" in out

    par = tmp_path / "par"
    shutil.copytree(built["ofdb"]["parquet"], par)
    raw = (par / "data-000000.parquet").read_bytes()
    (par / "data-000000.parquet").write_bytes(raw[: len(raw) // 2])
    assert main(["verify", str(par)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("corrupt: data-000000.parquet (") and "missing: 00002/00002.png" in out


def test_format_builds_refuse_existing_output_and_resume(built, tmp_path, capsys):
    out = tmp_path / "p"
    assert _build("ofdb", "parquet", out) == 0
    assert _build("ofdb", "parquet", out) == 2
    assert "--resume" in capsys.readouterr().err
    assert _build("ofdb", "webdataset", out, "--resume") == 2  # another format is not a resume
    assert _build("ofdb", "parquet", out, "--resume") == 0
    assert _build("ofdb", "webdataset", out, "--force") == 0
    assert load_manifest(out)["format"] == "webdataset" and not (out / formats.STAGING).exists()
    assert main(["build", "ofdb", "--categories", "2", "--out", str(tmp_path / "x"), "--format", "zip"]) == 2
    assert not (tmp_path / "x").exists()


def test_verify_against_names_each_category(tmp_path, capsys):
    systems = search(4).categories
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    for i, s in enumerate(systems):
        write_csv(theirs / f"{i:05d}.csv", s)
    assert main(["verify", "--against", str(theirs)]) == 0
    assert "4 identical, 0 different, 0 missing, 0 extra" in capsys.readouterr().out

    rows = systems[1].to_rows().copy()
    rows[0, 2] += 1e-3
    np.savetxt(theirs / "00001.csv", rows, delimiter=",")
    (theirs / "00002.csv").unlink()
    reference = tmp_path / "ours"
    reference.mkdir()
    for i, s in enumerate(systems[:2]):
        write_csv(reference / f"{i:05d}.csv", s)
    result = compare_params(theirs)
    assert result.status == {
        "00000": "identical",
        "00001": "different",
        "00002": "missing",
        "00003": "identical",
    }
    assert result.detail["00001"] == "max abs difference 0.001"
    assert main(["verify", "--against", str(theirs), str(reference)]) == 1  # 00003 is extra there
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["different: 00001 (max abs difference 0.001)", "extra: 00003"]
    assert compare_params(theirs, tolerance=0.01).names("different") == []
    # a dataset's manifest is a reference as well
    tree = tmp_path / "tree"
    assert main(["build", "ofdb", "--categories", "4", *SMALL, "--out", str(tree)]) == 0
    assert compare_params(theirs, tree).status == result.status


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kinds_shards_read_with_the_libraries_users_read_them_with(built, kind, tmp_path):
    """webdataset's ``decode("pil")`` and Hugging Face datasets' ``Image()`` column give one image per
    sample of the manifest, with the manifest's labels, for every kind."""
    from PIL import Image

    wds = pytest.importorskip("webdataset", reason="the webdataset library is not installed here")
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed here")
    tar, parquet = built[kind]["webdataset"], built[kind]["parquet"]
    manifest = load_manifest(tar)
    urls = [str(tar / s) for s in manifest["shards"]]
    from_tar = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    files = [str(parquet / s) for s in load_manifest(parquet)["shards"]]
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    from_parquet = list(ds.cast_column("image", datasets.Image()))
    assert len(from_tar) == len(from_parquet) == manifest["samples"]
    assert all(isinstance(s["png"], Image.Image) for s in from_tar)
    assert all(isinstance(r["image"], Image.Image) for r in from_parquet)
    assert sorted(int(s["cls"]) for s in from_tar) == sorted(int(r["label"]) for r in from_parquet)
    # webdataset's "pil" decoder gives RGB; the same pixels either way
    rgb = [s["png"].convert("RGB").tobytes() for s in from_tar]
    assert rgb == [r["image"].convert("RGB").tobytes() for r in from_parquet]
