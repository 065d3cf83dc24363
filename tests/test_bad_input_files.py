"""Bad files handed to the commands (issue 32's remaining cases): one line on stderr naming the
parameter or the file, exit code 2 (1 where the work itself failed), no traceback, and nothing
left that the command does not own."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_runs import results_archive

from ofdb_study.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A complete 2-category OFDB tree at 32 px (read only: copy it to change it)."""
    out = tmp_path_factory.mktemp("tree") / "ofdb"
    assert (
        main(
            [
                "build",
                "ofdb",
                "--categories",
                "2",
                "--size",
                "32",
                "--points",
                "2000",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


def _copy(tree: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tree, tmp_path / "tree"))


@pytest.mark.parametrize(
    "damage, line",
    [
        (lambda t: (t / "00000" / "stray.txt").write_text("x"), "unlisted: 00000/stray.txt"),
        (lambda t: (t / "00001" / "extra.jpg").write_bytes(b"\xff\xd8"), "unlisted: 00001/extra.jpg"),
        (lambda t: (t / "00001" / "nested").mkdir(), "empty folder: 00001/nested"),
        (lambda t: (t / "00001" / "deep" / "x").mkdir(parents=True), "unlisted folder: 00001/deep"),
        (lambda t: (t / "00002").mkdir(), "empty folder: 00002"),
    ],
    ids=["stray file", "non-png", "empty nested folder", "nested folder", "empty category"],
)
def test_verify_reports_what_a_tree_should_not_hold(damage, line, tree, tmp_path, capsys):
    copy = _copy(tree, tmp_path)
    assert main(["verify", str(copy)]) == 0
    capsys.readouterr()
    damage(copy)
    assert main(["verify", str(copy)]) == 1
    out, err = capsys.readouterr()
    assert line in out.splitlines() and "problem(s)" in err, out


def test_pretraining_on_a_tree_with_a_truncated_png_is_one_line(tree, tmp_path, capsys):
    copy = _copy(tree, tmp_path)
    png = copy / "00000" / "00000.png"
    png.write_bytes(png.read_bytes()[:60])
    out = tmp_path / "run"
    argv = ["pretrain", "--profile", "smoke", "--data", str(copy), "--out", str(out), "--no-progress"]
    assert main(argv) == 1
    err = _one_line(capsys)
    assert err.startswith(f"error: data: {png} cannot be read (image file is truncated)"), err
    assert not (out / "summary.json").exists()


def test_finetune_from_a_text_file_is_one_line(fashion, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    out = tmp_path / "run"
    argv = ["finetune", "--profile", "smoke", "--init", str(text), "--dataset", "fashion-mnist"]
    assert main([*argv, "--data-root", fashion, "--out", str(out), "--no-progress"]) == 2
    err = _one_line(capsys)
    assert err.startswith(f"error: init: {text} cannot be read as tensors"), err
    assert not out.exists()


def test_unpack_refuses_a_300_character_run_name_and_writes_nothing(tmp_path, capsys):
    name = "r" * 300
    members = {
        f"runs/finetune/{name}/{f}": b"{}"
        for f in ("config.yaml", "manifest.json", "metrics.jsonl", "summary.json")
    }
    bad = results_archive(members, tmp_path / "long.tar.gz", [f"finetune/{name}"])
    out = tmp_path / "out"
    assert main(["results", "unpack", str(bad), "--root", str(out), "--data-root", str(tmp_path / "d")]) == 2
    err = _one_line(capsys)
    assert err.startswith("error: archive: ") and "not a results file" in err, err
    assert not out.exists() and not (tmp_path / "d").exists()


def test_a_build_into_a_killed_runs_folder_names_the_run(tmp_path, capsys):
    out = tmp_path / "killed"
    out.mkdir()
    for f in ("config.yaml", "manifest.json", "metrics.jsonl"):
        (out / f).write_text("{}\n" if f.endswith("json") else "")
    before = sorted(p.name for p in out.iterdir())
    assert main(["build", "ofdb", "--categories", "2", "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert "holds a run (" in err and "not a dataset; choose another --out" in err, err
    assert sorted(p.name for p in out.iterdir()) == before


def test_an_atomic_write_that_is_refused_names_the_target_not_its_temporary(tmp_path, monkeypatch):
    import builtins

    from ofdb_study import files

    real_open = builtins.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)
    with pytest.raises(PermissionError) as info:
        files.atomic_write_bytes(tmp_path / "a.tar.gz", b"x")
    assert info.value.filename == str(tmp_path / "a.tar.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_study_out_that_is_a_file_is_one_line(where, tmp_path, capsys):
    plain = tmp_path / "plain.txt"
    plain.write_text("x\n")
    out = plain if where == "file" else plain / "book" / "study"
    argv = ["study", "--profile", "smoke", "--run-root", str(tmp_path / "runs"), "--out", str(out)]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert err.startswith(f"error: out: {out} ") and "is not a folder" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


#: Run in a child: hold the lock of the folder argv[1] until stdin closes.
HOLD_LOCK = """
import sys
from ofdb_study.files import lock_output
lock_output(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""

#: Every command that writes a folder, as a second writer of a folder another process is writing.
WRITERS = {
    "search": ["search", "--categories", "2", "--out", "OUT"],
    "search3d": ["search3d", "--categories", "2", "--out", "OUT"],
    "build ofdb": ["build", "ofdb", "--categories", "2", "--size", "32", "--points", "2000", "--out", "OUT"],
    "build fractaldb": [
        "build",
        "fractaldb",
        "--categories",
        "2",
        "--size",
        "32",
        "--points",
        "2000",
        "--out",
        "OUT",
    ],
    "build shards": [
        "build",
        "ofdb",
        "--categories",
        "2",
        "--size",
        "32",
        "--format",
        "webdataset",
        "--out",
        "OUT",
    ],
    "render": ["render", "--params", "PARAMS", "--size", "32", "--points", "2000", "--out", "OUT"],
    "pretrain": ["pretrain", "--profile", "smoke", "--no-progress", "--out", "OUT"],
    "finetune": ["finetune", "--profile", "smoke", "--init", "scratch", "--no-progress", "--out", "OUT"],
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_second_writer_of_a_folder_is_refused(writer, tmp_path, capsys):
    import subprocess
    import sys

    params = tmp_path / "params"
    params.mkdir()
    (params / "00000.csv").write_text("0.5,0.0,0.0,0.5,0.0,0.0,0.5\n0.5,0.0,0.0,0.5,0.5,0.0,0.5\n")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        argv = [a.replace("OUT", str(out)).replace("PARAMS", str(params)) for a in WRITERS[writer]]
        assert main(argv) == 2
        err = _one_line(capsys)
        assert "being written by another process" in err, err
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    finally:
        holder.communicate("", timeout=60)


@pytest.mark.parametrize(
    "manifest, command, message",
    [
        ("truncated", "verify", "manifest.json is not valid JSON"),
        ("deep", "verify", "manifest.json is not valid JSON"),
        ("list", "verify", "is not a dataset manifest"),
        ("deep", "pretrain", "nests too deeply"),
    ],
)
def test_a_trees_damaged_manifest_is_one_line(manifest, command, message, tree, tmp_path, capsys):
    copy = _copy(tree, tmp_path)
    path = copy / "manifest.json"
    text = {"truncated": path.read_text()[:50], "deep": "[" * 100_000 + "]" * 100_000, "list": "[1]"}[
        manifest
    ]
    path.write_text(text)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if command == "verify":
        argv = ["verify", str(copy)]
    else:
        argv = [
            "pretrain",
            "--profile",
            "smoke",
            "--data",
            str(copy),
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert message in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
