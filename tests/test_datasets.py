"""Dataset trees: manifest, verify, atomic resume, worker-independent bytes, FractalDB layout."""

import json

import numpy as np
import pytest
from PIL import Image

from ofdb_study.errors import ParamError
from ofdb_study.fractals import build as datasets
from ofdb_study.fractals import datasets as fractal_datasets
from ofdb_study.fractals.png import encode_png

SMALL = dict(size=64, points=3000)


@pytest.fixture(scope="module")
def params(searched_dir):
    return searched_dir


def test_png_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    for img in (
        rng.integers(0, 255, (17, 23), dtype=np.uint8),
        rng.integers(0, 255, (9, 5, 3), dtype=np.uint8),
    ):
        (tmp_path / "a.png").write_bytes(encode_png(img))
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)


def test_ofdb_tree_manifest_and_verify(tmp_path, params):
    out = datasets.build_ofdb(tmp_path / "ofdb", 4, params=params, **SMALL)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert files == [f"{i:05d}/{i:05d}.png" for i in range(4)]
    manifest = datasets.load_manifest(out)
    assert manifest["kind"] == "ofdb" and manifest["n_files"] == 4
    assert manifest["settings"]["a_weight"] == 0.2 and "numba" in manifest["versions"]
    assert len(manifest["params"]["00000"]) == 5  # category 0 has five maps
    assert datasets.verify(out) == []
    img = np.asarray(Image.open(out / "00002/00002.png"))
    assert img.shape == (64, 64) and set(np.unique(img)) <= {0, 127}
    # Corrupt one file, remove another, add a stray one: verify names each.
    (out / "00001/00001.png").write_bytes(b"junk")
    (out / "00003/00003.png").unlink()
    (out / "00000/extra.png").write_bytes(encode_png(np.zeros((2, 2), np.uint8)))
    assert datasets.verify(out) == [
        "corrupt: 00001/00001.png",
        "missing: 00003/00003.png",
        "unlisted: 00000/extra.png",
    ]


def test_same_bytes_for_any_worker_count(tmp_path, params):
    a = datasets.build_ofdb(tmp_path / "a", 4, params=params, workers=1, **SMALL)
    b = datasets.build_ofdb(tmp_path / "b", 4, params=params, workers=2, **SMALL)
    assert datasets.load_manifest(a)["files"] == datasets.load_manifest(b)["files"]
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()


def test_existing_output_is_refused_then_resumed_or_forced(tmp_path, params):
    out = datasets.build_ofdb(tmp_path / "t", 2, params=params, **SMALL)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ParamError, match="out"):
        datasets.build_ofdb(out, 2, params=params, **SMALL)
    datasets.build_ofdb(out, 2, params=params, resume=True, **SMALL)  # complete: nothing to do
    assert (out / "manifest.json").read_bytes() == before
    with pytest.raises(ParamError, match="resume"):
        datasets.build_ofdb(out, 2, params=params, resume=True, size=96, points=3000)
    datasets.build_ofdb(out, 3, params=params, force=True, **SMALL)
    assert datasets.load_manifest(out)["n_files"] == 3


def test_killed_build_is_incomplete_and_resumes(tmp_path, params, monkeypatch):
    import ofdb_study.fractals.build as D

    out = tmp_path / "k"
    real = D.write_png_atomic
    written = []

    def dying(path, image, level=1):
        if len(written) == 2:
            raise KeyboardInterrupt  # killed mid-build
        written.append(path)
        return real(path, image, level)

    monkeypatch.setattr(D, "write_png_atomic", dying)
    with pytest.raises(KeyboardInterrupt):
        datasets.build_ofdb(out, 4, params=params, workers=1, **SMALL)
    monkeypatch.setattr(D, "write_png_atomic", real)
    assert not (out / "manifest.json").exists()
    with pytest.raises(ParamError, match="dir"):
        datasets.verify(out)  # a killed build never passes as complete
    with pytest.raises(ParamError, match="unfinished"):
        datasets.build_ofdb(out, 4, params=params, **SMALL)
    # the temporary a SIGKILL leaves behind mid-write (atomic_write's hidden name)
    stale = written[0].parent / f".{written[0].name}.4242-1.tmp"
    stale.write_bytes(b"half a png")
    datasets.build_ofdb(out, 4, params=params, resume=True, **SMALL)
    assert not stale.exists() and not list(out.rglob("*.tmp"))
    ref = datasets.build_ofdb(tmp_path / "ref", 4, params=params, **SMALL)
    assert datasets.load_manifest(out)["files"] == datasets.load_manifest(ref)["files"]
    assert datasets.verify(out) == []


def test_fractaldb_layout_and_variations(tmp_path, params):
    out = datasets.build_fractaldb(
        tmp_path / "f", 2, params=params, fluctuations=3, renders=2, flips=4, **SMALL
    )
    manifest = datasets.load_manifest(out)
    assert manifest["n_files"] == 2 * 3 * 2 * 4
    assert manifest["settings"]["flips"] == ["none", "tb", "lr", "both"]
    load = lambda name: np.asarray(Image.open(out / "00000" / name))  # noqa: E731
    base = load("00000_w01_r00_none.png")
    np.testing.assert_array_equal(load("00000_w01_r00_tb.png"), base[::-1])
    np.testing.assert_array_equal(load("00000_w01_r00_lr.png"), base[:, ::-1])
    np.testing.assert_array_equal(load("00000_w01_r00_both.png"), base[::-1, ::-1])
    assert not np.array_equal(load("00000_w01_r01_none.png"), base)  # fresh masks per render
    assert not np.array_equal(load("00000_w00_r00_none.png"), base)  # another weight row
    assert json.loads((out / "manifest.json").read_text())["weights"][1][0] == 0.2


@pytest.mark.parametrize(
    "kwargs, param",
    [(dict(fluctuations=26), "fluctuations"), (dict(flips=0), "flips"), (dict(renders=0), "renders")],
)
def test_bad_fractaldb_arguments(tmp_path, params, kwargs, param):
    with pytest.raises(ParamError, match=param):
        datasets.build_fractaldb(tmp_path / "x", 2, params=params, **kwargs)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------------------
# One definition: the in-memory training sources draw the bytes the builders write.

TINY = dict(size=32, points=800, pad=2)


def _png(path):
    return np.asarray(Image.open(path))


def test_in_memory_ofdb_equals_the_built_tree(tmp_path, params):
    pytest.importorskip("torch")
    from ofdb_study.config import phase_config
    from ofdb_study.fractals.ifs import read_dir
    from ofdb_study.train import pretrain_data

    for seed in (0, 7):
        out = datasets.build_ofdb(tmp_path / f"o{seed}", 4, params=params, seed=seed, **TINY)
        source = pretrain_data.FractalSource(read_dir(params, 4), 32, 800, 2, seed=seed)
        ds = pretrain_data.OFDBDataset(source, "default")
        for c in range(4):
            disk = _png(out / f"{c:05d}/{c:05d}.png")
            assert disk.any()
            np.testing.assert_array_equal(ds.image(c), disk)
        manifest = datasets.load_manifest(out)
        assert manifest["dataset_sha256"] == source.digest("ofdb") == pretrain_data.folder_digest(out)
    assert source.digest("ofdb") != pretrain_data.FractalSource(read_dir(params, 4), 32, 800, 2).digest()
    assert not np.array_equal(_png(tmp_path / "o0/00001/00001.png"), _png(tmp_path / "o7/00001/00001.png"))
    # The training entry point reports the same hash for the same images.
    cfg = phase_config("smoke", "pretrain").replace(
        data="ofdb", params=str(params), categories=4, render_size=32, render_points=800, render_pad=2
    )
    _, _, n, digest = pretrain_data.pretrain_datasets(cfg, None, None)
    assert n == 4 and digest == datasets.load_manifest(tmp_path / "o0")["dataset_sha256"]


def test_in_memory_fractaldb_equals_the_built_tree(tmp_path, params):
    pytest.importorskip("torch")
    from ofdb_study.fractals.defaults import FRACTALDB_INSTANCES
    from ofdb_study.fractals.ifs import read_dir
    from ofdb_study.train import pretrain_data

    out = datasets.build_fractaldb(tmp_path / "f", 2, params=params, **TINY)
    source = pretrain_data.FractalSource(read_dir(params, 2), 32, 800, 2)
    ds = pretrain_data.FractalDBDataset(source)
    files = datasets.load_manifest(out)["files"]
    assert len(files) == 2 * FRACTALDB_INSTANCES
    seen = set()
    for i in range(len(ds)):
        c, j = divmod(i, FRACTALDB_INSTANCES)
        row, r, flip = fractal_datasets.fractaldb_instance(j)
        name = fractal_datasets.fractaldb_file(c, row, r, flip)
        np.testing.assert_array_equal(ds.image(i), _png(out / name), err_msg=name)
        seen.add(name)
    assert seen == set(files)  # every file is one in-memory instance, and the other way round
    assert datasets.load_manifest(out)["dataset_sha256"] == source.digest("fractaldb")
    assert pretrain_data.folder_digest(out) == source.digest("fractaldb") != source.digest("ofdb")
    # A smaller recipe is the first rows, renders and flips of the full one, byte for byte.
    small = datasets.build_fractaldb(
        tmp_path / "s", 1, params=params, fluctuations=2, renders=3, flips=2, **TINY
    )
    for name in datasets.load_manifest(small)["files"]:
        assert (small / name).read_bytes() == (out / name).read_bytes()
    assert not np.array_equal(ds.image(0), ds.image(4))  # render 1 of row 0: fresh masks
