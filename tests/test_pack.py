"""Portable results: pack a smoke study's runs, unpack them elsewhere, and nothing retrains.

A corrupt, truncated or partial archive, or one with a path outside the run root, is refused with
exit code 2 and nothing is written.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("torch")


import study_runs  # noqa: E402

from ofdb_study.cli import main  # noqa: E402
from ofdb_study.study import pack  # noqa: E402

ROWS = ["ofdb3d", "scratch"]
SCALING = [2]


def _study(root: Path, fashion: str):
    """The experiments of the smoke notebooks (a subset of rows, to stay fast)."""
    aug = study_runs.augmentation("smoke", [0], root=root, rows=ROWS, data_root=fashion)
    scaling = study_runs.scaling("smoke", SCALING, [0], root=root, data_root=fashion)
    return aug, scaling


@pytest.fixture(scope="module")
def study(tmp_path_factory, fashion):
    """(run root, data root with a construction record, the study's tables)."""
    base = tmp_path_factory.mktemp("study")
    root = base / "runs"
    tables = _study(root, fashion)
    data = base / "data" / "construction" / "s10-o10-f1x2"  # the smoke data plan's record
    (data / "search").mkdir(parents=True)
    (data / "timing.json").write_text('{"search_seconds": 1.0}\n')
    (data / "search" / "00000.csv").write_text("0.1,0.2,0.3,0.4,0.5,0.6,1.0\n")
    return root, base / "data", tables


@pytest.fixture(scope="module")
def archive(study, tmp_path_factory):
    root, data, _ = study
    out = tmp_path_factory.mktemp("archive") / "smoke.tar.gz"
    assert (
        main(
            [
                "results",
                "pack",
                "--root",
                str(root),
                "--profile",
                "smoke",
                "--out",
                str(out),
                "--data-root",
                str(data),
            ]
        )
        == 0
    )
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training was started")

    monkeypatch.setattr("ofdb_study.train.engine.train", refuse)


def test_pack_holds_small_files_with_hashes(study, archive, tmp_path):
    root, _, _ = study
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(pack.MANIFEST).read())
    assert names[0] == pack.MANIFEST
    runs = sorted(f"{p.parent.name}/{p.name}" for p in root.glob("*/*") if (p / "summary.json").is_file())
    assert sorted(manifest["runs"]) == runs and len(runs) == 5  # 2 pre-trainings, 3 fine-tunings
    assert not any(n.endswith(".pt") for n in names)
    assert set(names) == {pack.MANIFEST, *manifest["files"]}
    assert "data/construction/s10-o10-f1x2/timing.json" in names
    assert "data/construction/s10-o10-f1x2/search/00000.csv" in names
    # the same runs give the same bytes; an existing archive is not overwritten
    again = tmp_path / "again.tar.gz"
    pack.pack_results(root, "smoke", again, data_root=archive.parent / "none")
    pack.pack_results(root, "smoke", tmp_path / "b.tar.gz", data_root=archive.parent / "none")
    assert again.read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert main(["results", "pack", "--root", str(root), "--profile", "smoke", "--out", str(again)]) == 2


def test_unpack_elsewhere_and_nothing_retrains(study, archive, tmp_path, fashion, monkeypatch):
    root, data, (aug, scaling) = study
    fresh, fresh_data = tmp_path / "runs", tmp_path / "data"
    argv = ["results", "unpack", str(archive), "--root", str(fresh), "--data-root", str(fresh_data)]
    assert main(argv) == 0
    for run in root.glob("*/*"):
        if (run / "summary.json").is_file():
            for f in ("config.yaml", "manifest.json", "metrics.jsonl", "summary.json"):
                assert (fresh / run.parent.name / run.name / f).read_bytes() == (run / f).read_bytes()
            assert not (fresh / run.parent.name / run.name / "checkpoint.pt").exists()
    assert _files(fresh_data / "construction") == _files(data / "construction")
    # the notebooks' experiments find every run finished under the new root: nothing trains
    _no_training(monkeypatch)
    aug2, scaling2 = _study(fresh, fashion)
    assert aug2["top1_last"].tolist() == aug["top1_last"].tolist()
    assert scaling2["top1_best"].tolist() == scaling["top1_best"].tolist()
    assert all(str(p).startswith(str(fresh)) for p in aug2["finetune_run"])
    # unpacking again changes nothing; a file changed since is refused, then replaced with --force
    assert main(argv) == 0
    summary = next(fresh.glob("finetune/*/summary.json"))
    summary.write_text("{}")
    assert main(argv) == 2 and summary.read_text() == "{}"
    assert main(argv + ["--force"]) == 0 and summary.read_text() != "{}"


def test_profile_is_read_from_the_run_config(study, tmp_path):
    root, _, _ = study
    other = tmp_path / "runs"
    shutil.copytree(root, other)
    runs = sorted(p for p in other.glob("*/*") if (p / "config.yaml").is_file())
    mini, old = runs[0], runs[1]
    text = mini.joinpath("config.yaml").read_text()
    mini.joinpath("config.yaml").write_text(text.replace("profile: smoke", "profile: mini"))
    # a run folder written before configs recorded their profile is matched by its settings
    old.joinpath("config.yaml").write_text(
        old.joinpath("config.yaml").read_text().replace("profile: smoke\n", "")
    )
    unfinished = runs[2]
    (unfinished / "summary.json").unlink()
    rep = pack.pack_results(other, "smoke", tmp_path / "a.tar.gz", data_root=None)
    names = {r.split("/", 1)[1] for r in rep.runs}
    assert mini.name not in names and old.name in names and unfinished.name not in names
    assert rep.skipped == [f"{unfinished.parent.name}/{unfinished.name}"]
    with pytest.raises(Exception, match="no finished paper runs"):
        pack.pack_results(other, "paper", tmp_path / "b.tar.gz")


def _rewrite(archive: Path, out: Path, change) -> Path:
    """Copy ``archive`` with ``change(members: dict[name, bytes])`` applied (manifest left alone)."""
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    change(members)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.write_bytes(gzip.compress(buf.getvalue()))
    return out


def _first_run_file(members) -> str:
    return next(n for n in members if n.startswith("runs/"))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "corrupt or truncated"),
        ("flip", "corrupt or truncated"),
        ("edit", "corrupt file"),
        ("drop", "partial"),
        ("traversal", "not a results file"),
        ("extra", "unlisted"),
        ("symlink", "not a plain file"),
    ],
)
def test_a_damaged_archive_is_refused_and_nothing_unpacked(archive, tmp_path, capsys, damage, message):
    bad = tmp_path / "bad.tar.gz"
    raw = archive.read_bytes()
    if damage == "truncate":
        bad.write_bytes(raw[: len(raw) - 5])
    elif damage == "flip":
        bad.write_bytes(raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:])
    elif damage == "edit":
        _rewrite(archive, bad, lambda m: m.__setitem__(_first_run_file(m), b"changed\n"))
    elif damage == "drop":
        _rewrite(archive, bad, lambda m: m.pop(_first_run_file(m)))
    elif damage == "traversal":
        _rewrite(archive, bad, lambda m: m.__setitem__("runs/pretrain/../../../evil/config.yaml", b"x"))
    elif damage == "extra":
        _rewrite(archive, bad, lambda m: m.__setitem__("runs/pretrain/extra-run/config.yaml", b"x"))
    else:
        with tarfile.open(archive) as src, tarfile.open(bad, "w:gz") as dst:
            for m in src:
                dst.addfile(m, src.extractfile(m))
            link = tarfile.TarInfo("runs/pretrain/x/summary.json")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            dst.addfile(link)
    out = tmp_path / "runs"
    assert main(["results", "unpack", str(bad), "--root", str(out), "--data-root", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "d").exists() and not (tmp_path / "evil").exists()


def test_the_smoke_book_rebuilds_from_the_archive_alone(study_book, smoke_book_in, tmp_path):
    """Pack the session's smoke study, unpack it into a fresh folder, run the notebooks there with
    training off (``run_study(train=False)``: the runner trains nothing and the notebooks only read)
    and build the book: every number it glues is the first study's, and no weights exist there."""
    archive = tmp_path / "smoke.tar.gz"
    pack = ["results", "pack", "--root", str(study_book.run_root), "--profile", "smoke"]
    assert main([*pack, "--out", str(archive), "--data-root", str(study_book.data_root)]) == 0
    second = tmp_path / "second"
    unpack = ["results", "unpack", str(archive), "--root", str(second / "runs")]
    assert main([*unpack, "--data-root", str(second / "data")]) == 0
    book = smoke_book_in(second, train=False)
    assert (book / "_build" / "html" / "index.html").is_file()
    assert not list((second / "runs").glob("*/*/checkpoint.pt"))  # nothing was trained
    for name in ("02_instances_vs_augmentation", "03_category_scaling", "04_results"):
        a, b = (_glued(folder / f"{name}.ipynb") for folder in (study_book.study_dir, book / "study"))
        assert a and a == b, name


def _glued(notebook: Path) -> dict[str, str]:
    """Glued name -> its plain-text value, for every glued output of an executed notebook."""
    out = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                out[name] = "".join(o.get("data", {}).get("text/plain", ""))
    return out


def _with_manifest(archive: Path, out: Path, change) -> Path:
    """Copy ``archive`` with ``change(manifest: dict, members)`` applied to PACK.json and members."""

    def edit(members):
        manifest = json.loads(members["PACK.json"])
        change(manifest, members)
        members["PACK.json"] = json.dumps(manifest).encode()

    return _rewrite(archive, out, edit)


def _plant_summary(manifest, members):
    manifest["runs"] = []
    members["runs/pretrain/planted/summary.json"] = b"{}"


def _wrong_size(manifest, members):
    name = _first_run_file(members)
    manifest["files"][name]["size"] += 1


def _python_tag(manifest, members):
    name = next(n for n in members if n.endswith("/config.yaml"))
    members[name] = b"!!python/object/apply:os.system ['true']\n"
    manifest["files"][name] = {"sha256": pack._sha256(members[name]), "size": len(members[name])}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m, _: m.__setitem__("runs", []), "lists no runs"),
        (_plant_summary, "lists no runs"),
        (lambda m, _: m.__setitem__("files", []), "lists no files"),
        (lambda m, _: m["runs"].append("pretrain/../x"), "not phase/name"),
        (_wrong_size, "another size than listed"),
        (_python_tag, "not a readable config"),
    ],
)
def test_a_crafted_manifest_is_refused_and_nothing_unpacked(archive, tmp_path, capsys, change, message):
    bad = _with_manifest(archive, tmp_path / "bad.tar.gz", change)
    out = tmp_path / "runs"
    assert main(["results", "unpack", str(bad), "--root", str(out), "--data-root", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "d").exists()


def test_a_gzip_bomb_stops_at_the_size_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pack, "MAX_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb") as gz:
        for _ in range(8):
            gz.write(bytes(1 << 20))
    assert bomb.stat().st_size < 64 << 10
    assert main(["results", "unpack", str(bomb), "--root", str(tmp_path / "runs")]) == 2
    assert "holds more than 1 MiB" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_unpack_does_not_write_through_a_symlinked_run_folder(archive, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "runs"
    root.mkdir()
    (root / "pretrain").symlink_to(outside, target_is_directory=True)
    assert (
        main(["results", "unpack", str(archive), "--root", str(root), "--data-root", str(tmp_path / "d")])
        == 2
    )
    assert "symbolic link" in capsys.readouterr().err
    assert not any(outside.iterdir())


def test_baselines_travel_with_the_runs(study, tmp_path):
    """The raw-pixel baselines of the packed fine-tunings are in the archive and land under the new
    run root with the names the plan there looks for (the file names hold no path)."""
    from ofdb_study.study import baselines
    from ofdb_study.train.runinfo import read_run

    root, _, _ = study
    configs = [read_run(p).config for p in sorted((root / "finetune").iterdir())]
    made = {baselines.raw_pixels_path(c, root) for c in configs if baselines.raw_pixels(c, root)}
    out = tmp_path / "with-baselines.tar.gz"
    pack.pack_results(root, "smoke", out, data_root=None)
    _, members = pack.check_archive(out)
    packed = sorted(n for n in members if n.startswith(("runs/baselines/", "runs/probes/")))
    assert packed == sorted(f"runs/{p.relative_to(root).as_posix()}" for p in made)
    second = tmp_path / "second"
    pack.unpack_results(out, second, data_root=tmp_path / "d")
    for c in configs:
        moved = c.replace(data_root=str(tmp_path / "elsewhere"))
        assert baselines.raw_pixels_path(moved, second).is_file()
        assert baselines.probe_path(moved, second).name == baselines.probe_path(c, root).name
