"""Downstream loaders on tiny files written in the real formats (IDX .gz, CIFAR pickles, folders)."""

import gzip
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from fake_data import make_cifar, make_fashion, write_idx  # noqa: E402

from ofdb_study.errors import ParamError  # noqa: E402
from ofdb_study.train import downstream  # noqa: E402


def test_read_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(downstream.read_idx(tmp_path / "a.gz"), a)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x09\x01\x00\x00\x00\x01x"))
    with pytest.raises(ParamError):
        downstream.read_idx(tmp_path / "bad.gz")


def test_fashion_from_data_root_with_subset(tmp_path):
    root = make_fashion(tmp_path / "fm")
    train, test, n, digest = downstream.load_downstream(
        "fashion-mnist", data_root=str(root), train_per_class=2
    )
    assert n == 10 and len(train) == 20 and len(test) == 30 and len(digest) == 64
    img, label = train[0]
    assert img.mode == "RGB" and img.size == (28, 28) and 0 <= label < 10
    assert np.bincount(train.labels).tolist() == [2] * 10
    again, *_ = downstream.load_downstream("fashion-mnist", data_root=str(root), train_per_class=2)
    np.testing.assert_array_equal(train.images, again.images)  # seeded subset


def test_fashion_missing_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(downstream, "FASHION_SYSTEM_DIR", tmp_path / "nowhere")
    downstream._arrays.cache_clear()  # arrays an earlier test read from the system copy
    with pytest.raises(ParamError, match="^dataset: .*dataset-fashion-mnist"):
        downstream.load_downstream("fashion-mnist")
    with pytest.raises(ParamError, match="^download: --download needs --data-root"):
        downstream.load_downstream("fashion-mnist", download=True)


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10", "cifar100"])
@pytest.mark.parametrize("root", ["missing", "empty", "file"])
def test_an_explicit_data_root_without_the_data_is_an_error_naming_it(name, root, tmp_path, monkeypatch):
    """An explicit --data-root is where the data must be: never a silent fall back to the system
    copy (which is there for Fashion-MNIST: the system folder is made to hold it)."""
    system = make_fashion(tmp_path / "system")
    monkeypatch.setattr(downstream, "FASHION_SYSTEM_DIR", system)
    downstream._arrays.cache_clear()
    folder = {"missing": tmp_path / "nowhere", "empty": tmp_path / "empty", "file": tmp_path / "f.txt"}[root]
    if root == "empty":
        folder.mkdir()
        (folder / ("cifar-10-batches-py" if name == "cifar10" else "fashion-mnist")).mkdir()
    elif root == "file":
        folder.write_text("not a folder")
    why = {"missing": "does not exist", "empty": f"does not hold {name}", "file": "is a file"}[root]
    with pytest.raises(ParamError, match=f"^data_root: --data-root {folder} {why}"):
        downstream.load_downstream(name, data_root=str(folder))
    assert not (tmp_path / "nowhere").exists()
    if name == "fashion-mnist":  # without --data-root the system copy is read
        train, test, n, _ = downstream.load_downstream(name)
        assert n == 10 and len(train) == 60 and len(test) == 30


def test_finetune_with_a_wrong_data_root_is_one_line_and_writes_nothing(tmp_path, capsys):
    from ofdb_study.cli import main

    for name in ("fashion-mnist", "cifar10"):
        argv = ["finetune", "--profile", "smoke", "--init", "scratch", "--dataset", name]
        out = tmp_path / "run"
        assert main([*argv, "--data-root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: data_root: --data-root ") and err.count("\n") == 1, err
        assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_pickles(tmp_path, name, classes):
    root = make_cifar(tmp_path, name)
    train, test, n, _ = downstream.load_downstream(name, data_root=str(root))
    assert n == classes
    assert len(train) == (100 if name == "cifar10" else 20) and len(test) == 10
    img, _ = test[0]
    assert img.size == (32, 32)


class _Planted:
    """Unpickling this calls ``pathlib.Path.touch`` on the marker: code a pickle would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.mark.parametrize("how", ["code", "truncated", "not-a-dict", "wrong-shape"])
def test_cifar_batches_are_read_without_running_code(tmp_path, how, capsys):
    import pickle

    from ofdb_study.cli import main

    root = make_cifar(tmp_path, "cifar10")
    marker = tmp_path / "ran"
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    if how == "code":
        batch.write_bytes(pickle.dumps({b"data": _Planted(marker), b"labels": [0]}))
    elif how == "truncated":
        batch.write_bytes(batch.read_bytes()[:100])
    elif how == "not-a-dict":
        batch.write_bytes(pickle.dumps([1, 2, 3]))
    else:
        batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ParamError, match="data_root: .*data_batch_1 is not a CIFAR python batch"):
        downstream.load_downstream("cifar10", data_root=str(root))
    assert not marker.exists()
    code = main(
        [
            "finetune",
            "--profile",
            "smoke",
            "--dataset",
            "cifar10",
            "--data-root",
            str(root),
            "--init",
            "scratch",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "not a CIFAR python batch" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_cifar_missing_without_download(tmp_path):
    with pytest.raises(ParamError, match="^data_root: .*lacks data_batch_1.*--download"):
        downstream.load_downstream("cifar10", data_root=str(tmp_path))


def test_imagefolder_train_val(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for c in ("a", "b"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(d / f"{i}.png")
    train, test, n, digest = downstream.load_downstream(f"imagefolder:{tmp_path}", train_per_class=2)
    assert n == 2 and len(train) == 4 and len(test) == 6
    # a test draw is another test set: another hash (the evaluation cache is keyed by it)
    _, drawn, n2, digest2 = downstream.load_downstream(f"imagefolder:{tmp_path}", test_per_class=1)
    assert n2 == 2 and len(drawn) == 2 and digest2 != digest


def test_unknown_dataset():
    with pytest.raises(ParamError, match="unknown dataset"):
        downstream.load_downstream("mnist3d")


def test_per_class_subset_too_large():
    with pytest.raises(ParamError, match="only 2"):
        downstream.per_class_subset(np.array([0, 0, 1, 1]), 3, seed=0)


def _py2_pickle(doc: dict) -> bytes:
    """A pickle whose str keys are Python 2 byte strings, as in the published CIFAR batches: they
    load as str with ``encoding="latin1"`` (torchvision) and as bytes with ``encoding="bytes"`` (us)."""
    import pickle as pk

    data = pk.dumps(doc, protocol=2)
    for key in doc:
        raw = key.encode()
        data = data.replace(b"X" + len(raw).to_bytes(4, "little") + raw, b"U" + bytes([len(raw)]) + raw, 1)
    return data


def test_cifar_download_through_torchvision_from_a_local_server(tmp_path, monkeypatch):
    """``--download``: torchvision fetches the archive, checks its md5s and unpacks it; we read it."""
    import hashlib
    import tarfile

    from chromium import serve
    from torchvision import datasets

    sub, train_names, test_names, _ = downstream.CIFAR["cifar10"]
    folder = tmp_path / "src" / sub
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for fname, n in [(f, 20) for f in train_names] + [(f, 10) for f in test_names]:
        doc = {"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), "labels": [i % 10 for i in range(n)]}
        (folder / fname).write_bytes(_py2_pickle(doc))
    (folder / "batches.meta").write_bytes(_py2_pickle({"label_names": [f"class {i}" for i in range(10)]}))
    www = tmp_path / "www"
    www.mkdir()
    with tarfile.open(www / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname=sub)

    def md5(path: Path) -> str:
        return hashlib.md5(path.read_bytes()).hexdigest()

    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", md5(www / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[f, md5(folder / f)] for f in train_names])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [[f, md5(folder / f)] for f in test_names])
    meta = {"filename": "batches.meta", "key": "label_names", "md5": md5(folder / "batches.meta")}
    monkeypatch.setattr(datasets.CIFAR10, "meta", meta)
    root = tmp_path / "data"
    with pytest.raises(ParamError, match="--download"):
        downstream.load_cifar("cifar10", data_root=str(root))
    with serve(www) as url:
        monkeypatch.setattr(datasets.CIFAR10, "url", f"{url}/cifar-10-python.tar.gz")
        xtr, ytr, xte, yte = downstream.load_cifar("cifar10", data_root=str(root), download=True)
    assert xtr.shape == (100, 32, 32, 3) and xte.shape == (10, 32, 32, 3)
    assert list(ytr[:12]) == [i % 10 for i in range(12)]
    # a second call reads what is on disk, no server needed
    assert downstream.load_cifar("cifar10", data_root=str(root), download=True)[0].shape == (100, 32, 32, 3)


def _tree(folder: Path) -> list[tuple[str, bytes | None]]:
    """Every path under ``folder`` with its bytes (None for a folder): what a call must not change."""
    return sorted(
        (str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")
    )


def _offline(monkeypatch) -> None:
    """urllib as on a machine without a network: every address fails to resolve."""
    import socket
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _host(name: str) -> str:
    import urllib.parse

    from torchvision import datasets

    if name == "fashion-mnist":
        return urllib.parse.urlsplit(datasets.FashionMNIST.mirrors[0]).hostname
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    return urllib.parse.urlsplit(cls.url).hostname


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10", "cifar100"])
@pytest.mark.parametrize("root", ["missing", "existing"])
def test_download_without_a_network_is_one_error_and_leaves_nothing(name, root, tmp_path, monkeypatch):
    """The error names --download and the host; the data root is as it was (a folder the call
    made is removed again, a user's folder keeps its files and gets no staging folder)."""
    import re

    _offline(monkeypatch)
    data = tmp_path / "data" / "sets"
    if root == "existing":
        data.mkdir(parents=True)
        (data / "mine.txt").write_text("keep")
    before = _tree(tmp_path)
    want = f"^download: could not fetch {name} from {re.escape(_host(name))} \\(Name or service not known\\)"
    with pytest.raises(ParamError, match=want):
        downstream.load_downstream(name, data_root=str(data), download=True)
    assert _tree(tmp_path) == before


def _cut_handler():
    """A server handler that promises a long body, sends a few bytes and closes the connection."""
    from chromium import QuietHandler

    class Cut(QuietHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"0" * 100)
            self.wfile.flush()
            self.close_connection = True

    return Cut


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10"])
@pytest.mark.parametrize("how", ["cut", "corrupt"])
def test_a_download_cut_short_or_corrupt_leaves_nothing_half_written(name, how, tmp_path, monkeypatch):
    """A connection cut mid-file (http.client's IncompleteRead) or a file whose md5 differs
    (torchvision's RuntimeError): one ParamError naming --download, no partial file kept."""
    from chromium import QuietHandler, serve
    from torchvision import datasets

    www = tmp_path / "www"
    www.mkdir()
    for f in ("cifar-10-python.tar.gz", *(f for pair in downstream.FASHION_FILES.values() for f in pair)):
        (www / f).write_bytes(b"not the published file")
    data = tmp_path / "data"
    with serve(www, _cut_handler() if how == "cut" else QuietHandler) as url:
        if name == "fashion-mnist":
            monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [f"{url}/"])
        else:
            monkeypatch.setattr(datasets.CIFAR10, "url", f"{url}/cifar-10-python.tar.gz")
        # a cut body reads short (IncompleteRead) or as a shorter file whose md5 then differs
        why = (
            "(IncompleteRead|File not found or corrupted)" if how == "cut" else "File not found or corrupted"
        )
        with pytest.raises(ParamError, match=f"^download: could not fetch {name} from 127.0.0.1 \\({why}"):
            downstream.load_downstream(name, data_root=str(data), download=True)
    assert not data.exists()


def test_fashion_download_through_torchvision_from_a_local_server(tmp_path, monkeypatch):
    """``--download`` for Fashion-MNIST: the four files fetched (md5s checked) into
    ``DIR/FashionMNIST/raw``, nothing else left in DIR; later calls read them with no server."""
    import hashlib

    from chromium import serve
    from torchvision import datasets

    www = make_fashion(tmp_path / "www")
    md5 = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(www.iterdir())]
    monkeypatch.setattr(datasets.FashionMNIST, "resources", md5)
    monkeypatch.setattr(downstream, "FASHION_SYSTEM_DIR", tmp_path / "nowhere")
    root = tmp_path / "data"
    with serve(www) as url:
        monkeypatch.setattr(datasets.FashionMNIST, "mirrors", [f"{url}/"])
        xtr, ytr, xte, yte = downstream.load_fashion_mnist(str(root), download=True)
    assert xtr.shape == (60, 28, 28) and xte.shape == (30, 28, 28) and list(ytr[:7]) == [0] * 6 + [1]
    assert [p.relative_to(root).as_posix() for p in sorted(root.rglob("*"))] == [
        "FashionMNIST",
        "FashionMNIST/raw",
        *(f"FashionMNIST/raw/{n}" for n, _ in md5),
    ]
    assert downstream.load_fashion_mnist(str(root), download=True)[0].shape == (60, 28, 28)
    assert downstream.load_fashion_mnist(str(root))[2].shape == (30, 28, 28)


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10"])
def test_download_offline_for_real_is_one_line(name, tmp_path):
    """The command as a user runs it on this machine, which has no network."""
    import os
    import socket
    import subprocess
    import sys

    host = _host(name)
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        pass
    else:
        pytest.skip(f"{host} resolves here: a real download would run")
    data, out = tmp_path / "data", tmp_path / "run"
    argv = ["finetune", "--profile", "smoke", "--init", "scratch", "--dataset", name]
    argv += ["--data-root", str(data), "--download", "--out", str(out), "--no-progress"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "ofdb_study", *argv], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: download: could not fetch {name} from {host} (")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not data.exists() and not out.exists()
