"""The data commands: what they write, and one-line errors with exit code 2 for bad input."""

import subprocess
import sys

import pytest

from ofdb_study.cli import main


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "params"
    assert main(["search", "--categories", "3", "--out", str(out), "--quiet"]) == 0
    return out


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_search_render_build_verify(tmp_path, params, searched_dir, capsys):
    assert sorted(p.name for p in params.glob("0*.csv")) == ["00000.csv", "00001.csv", "00002.csv"]
    for p in params.glob("0*.csv"):  # the same bytes as the session's search through the API
        assert p.read_bytes() == (searched_dir / p.name).read_bytes()
    out = tmp_path / "img"
    assert (
        main(
            [
                "render",
                "--params",
                str(params),
                "--out",
                str(out),
                "--size",
                "64",
                "--points",
                "2000",
                "--draw",
                "point",
                "--quiet",
            ]
        )
        == 0
    )
    assert len(list(out.rglob("*.png"))) == 3
    assert main(["verify", str(out)]) == 0
    (out / "00001" / "00001.png").unlink()
    assert main(["verify", str(out)]) == 1
    assert "missing: 00001/00001.png" in capsys.readouterr().out
    fdb = tmp_path / "fdb"
    assert (
        main(
            [
                "build",
                "fractaldb",
                "--categories",
                "2",
                "--params",
                str(params),
                "--out",
                str(fdb),
                "--size",
                "48",
                "--points",
                "1000",
                "--fluctuations",
                "2",
                "--renders",
                "1",
                "--flips",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert len(list(fdb.rglob("*.png"))) == 8
    assert main(["search", "--categories", "5", "--out", str(params), "--resume", "--quiet"]) == 0
    assert len(list(params.glob("0*.csv"))) == 5


def _bad_csv(tmp_path, text):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "00000.csv").write_text(text)
    return d


@pytest.mark.parametrize(
    "argv, word",
    [
        (["search", "--categories", "0"], "categories"),
        (["search", "--categories", "2", "--points", "1"], "points"),
        (["search", "--categories", "2", "--size", "10"], "size"),
        (["search", "--categories", "2", "--workers", "0"], "workers"),
        (["render", "--size", "12"], "size"),
        (["render", "--points", "1"], "points"),
        (["render", "--draw", "dots"], "draw"),
        (["render", "--weights", "1,2"], "weights"),
        (["render", "--a-weight", "nan"], "a-weight"),
        (["build", "ofdb", "--categories", "-3"], "categories"),
        (["build", "cifar", "--categories", "3"], "kind"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, params, capsys, argv, word):
    out = tmp_path / "out"
    if argv[0] == "render":
        argv = argv + ["--params", str(params)]
    code = main(argv + ["--out", str(out)])
    assert code == 2
    assert word in _err(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "text, word",
    [
        ("1,2,3\n", "expected 7 values"),
        ("0.1,0.2,0.3,0.4,0.5,0.6,0.3\n0.1,0.2,0.3,0.4,0.5,0.6,0.3\n", "sum to 1"),
        ("a,b,c,d,e,f,p\n", "not a row of numbers"),
    ],
)
def test_malformed_csv(tmp_path, capsys, text, word):
    d = _bad_csv(tmp_path, text)
    out = tmp_path / "out"
    assert main(["render", "--params", str(d), "--out", str(out)]) == 2
    err = _err(capsys)
    assert word in err and err.startswith("error: params:")
    assert not out.exists()


def test_missing_params_and_existing_output(tmp_path, params, capsys):
    assert main(["render", "--params", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "params" in _err(capsys)
    out = tmp_path / "o2"
    assert (
        main(
            [
                "render",
                "--params",
                str(params),
                "--out",
                str(out),
                "--size",
                "48",
                "--points",
                "500",
                "--quiet",
            ]
        )
        == 0
    )
    before = sorted(p.stat().st_mtime_ns for p in out.rglob("*.png"))
    assert (
        main(["render", "--params", str(params), "--out", str(out), "--size", "48", "--points", "500"]) == 2
    )
    assert "--resume" in _err(capsys)
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("*.png")) == before


def test_module_entry_point_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ofdb_study", "search", "--categories", "0", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: categories: must be an integer >= 1, got 0"
