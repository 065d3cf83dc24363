"""The benchmarks' result documents (``benchmarks/_record.py``), their tables in the book
(``book/_ext/bench_tables.py``), and each benchmark run in its quickest mode: what it prints is the
document it writes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docutils import nodes

REPO = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and friends look themselves up here
    spec.loader.exec_module(module)
    return module


record = _load("_bench_record", REPO / "benchmarks" / "_record.py")
tables = _load("_bench_tables", REPO / "book" / "_ext" / "bench_tables.py")

COLUMNS = ["measurement", "ours", "anchor", "note"]
ROWS = [["render", "1.2 ms", "public generator 3.2 s", ""], ["search", "13.6 s", "paper 2.37 h", "x5"]]


def _texts(node: nodes.Node) -> list[str]:
    return [p.astext() for p in node.findall(nodes.paragraph)]


def test_document_has_every_key_and_rows_of_text():
    doc = record.document(
        COLUMNS, ROWS, ["quick run"], argv=[str(REPO / "benchmarks" / "bench_x.py"), "--quick"]
    )
    assert set(record.KEYS) <= set(doc)
    assert doc["columns"] == COLUMNS
    assert doc["rows"] == ROWS
    assert all(isinstance(r, list) and all(isinstance(c, str) for c in r) for r in doc["rows"])
    assert doc["notes"] == ["quick run"]
    assert doc["command"] == "python benchmarks/bench_x.py --quick"
    assert len(doc["date"]) == 10 and doc["date"][4] == "-"  # YYYY-MM-DD
    m = doc["machine"]
    assert isinstance(m["cpu"], str) and m["cpu"]
    assert isinstance(m["cores"], int) and m["cores"] >= 1
    assert m["gpu"] is None


def test_document_refuses_numbers_and_ragged_rows():
    with pytest.raises(TypeError):
        record.document(COLUMNS[:2], [["render", 1.2]])
    with pytest.raises(ValueError):
        record.document(COLUMNS, [["render", "1 ms"]])
    with pytest.raises(ValueError):
        record.document(COLUMNS, ROWS, extra={"rows": []})


def test_write_is_atomic_and_valid_json(tmp_path, monkeypatch):
    path = tmp_path / "bench" / "ifs.json"  # the folder is made
    doc = record.document(COLUMNS, ROWS, ["n"], gpu="none", extra={"measurements": [{"x": 1.5}]})
    seen = []
    real_replace = os.replace

    def replace(src, dst):  # the text lands in a temporary beside the target, then one rename
        seen.append((Path(src), Path(dst), json.loads(Path(src).read_text(encoding="utf-8"))))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    assert record.write(path, doc) == path
    [(src, dst, content)] = seen
    assert dst == path and src.parent == path.parent and src != path
    assert content == doc
    assert json.loads(path.read_text(encoding="utf-8")) == doc
    assert [p.name for p in path.parent.iterdir()] == ["ifs.json"]  # no temporary left


def test_write_refuses_a_document_without_the_keys(tmp_path):
    with pytest.raises(ValueError):
        record.write(tmp_path / "x.json", {"rows": []})
    assert not (tmp_path / "x.json").exists()


def test_record_options_default_to_the_book():
    import argparse

    ap = argparse.ArgumentParser()
    record.add_json_option(ap, "ifs")
    args = ap.parse_args([])
    assert args.json == REPO / "book" / "bench" / "ifs.json" and args.note == []
    args = ap.parse_args(["--json", "out.json", "--note", "a", "--note", "b"])
    assert args.json == Path("out.json") and args.note == ["a", "b"]


def test_table_renders_columns_and_rows():
    table = tables._table(COLUMNS, ROWS)
    assert isinstance(table, nodes.table)
    [group] = table.findall(nodes.tgroup)
    assert group["cols"] == 4
    [head] = table.findall(nodes.thead)
    [body] = table.findall(nodes.tbody)
    assert _texts(head) == COLUMNS
    rows = list(body.findall(nodes.row))
    assert [[e.astext() for e in r.findall(nodes.entry)] for r in rows] == ROWS


def test_table_pads_short_rows_and_refuses_long_ones():
    table = tables._table(["a", "b"], [["1"]])
    [body] = table.findall(nodes.tbody)
    assert [e.astext() for e in body.findall(nodes.entry)] == ["1", ""]
    with pytest.raises(tables.BenchDocumentError):
        tables._table(["a"], [["1", "2"]])


def test_render_a_written_document(tmp_path):
    path = record.write(tmp_path / "t.json", record.document(COLUMNS, ROWS, ["quick run"], gpu="none"))
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = tables.render(doc, "ifs")
    intro, table, note = out
    assert isinstance(intro, nodes.paragraph) and isinstance(table, nodes.table)
    text = intro.astext()
    assert text.startswith(f"Measured on {doc['machine']['cpu']} (") and "no GPU" in text
    assert doc["date"] in text and doc["command"] in text
    assert list(intro.findall(nodes.literal))[0].astext() == doc["command"]
    assert note.astext() == "quick run"


def test_render_takes_a_machine_as_text_and_refuses_a_bad_document():
    intro = tables.render({"machine": "a laptop", "columns": ["x"], "rows": [["1"]]}, "ifs")[0]
    assert intro.astext() == "Measured on a laptop by python benchmarks/bench_ifs.py."
    for bad in ([], {"columns": ["x"]}, {"columns": ["x"], "rows": ["1"]}):
        with pytest.raises(tables.BenchDocumentError):
            tables.render(bad, "ifs")


def test_missing_file_is_said_so():
    [para] = tables.missing("explorer")
    assert "bench/explorer.json is missing" in para.astext()


def test_committed_result_files_are_documents():
    for path in sorted((REPO / "book" / "bench").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert set(record.KEYS) <= set(doc), path.name
        assert all(isinstance(c, str) for r in doc["rows"] for c in r), path.name
        tables.render(doc, path.stem)


# ----------------------------------------------------------------------------------------------
# What a benchmark prints is the document it wrote.

_BAR = re.compile(r"(?<!\\)\|")


def _printed(out: str) -> tuple[str, list[list[str]], list[str]]:
    """(first line, table lines as cells, notes) of what ``record.text`` printed."""
    lines = out.splitlines()
    table = [
        [c.strip().replace("\\|", "|") for c in _BAR.split(line)[1:-1]]
        for line in lines
        if line.startswith("| ")
    ]
    notes = [line[2:] for line in lines if line.startswith("- ")]
    return lines[0], table, notes


def test_text_is_the_document():
    doc = record.document(
        ["what", "figure"], [["a | b", "1.5 ms"], ["c", ""]], ["note 1", "note 2"], gpu="none"
    )
    first, table, notes = _printed(record.text(doc))
    assert (
        first == f"Measured on {record.describe_machine(doc['machine'])} on {doc['date']} by {doc['command']}"
    )
    assert first.startswith(f"Measured on {doc['machine']['cpu']} (") and ", no GPU)" in first
    assert table == [doc["columns"], ["---", "---"], *doc["rows"]]
    assert notes == doc["notes"]
    bare = record.text(record.document(["x"], [["1"]]))  # no notes: the table ends the text
    assert _printed(bare)[2] == [] and bare.endswith("| 1 |")


def test_record_prints_the_file_it_wrote(tmp_path, capsys):
    path = record.record(tmp_path / "t.json", COLUMNS, ROWS, ["quick run"])
    out = capsys.readouterr()
    assert out.out.rstrip("\n") == record.text(json.loads(path.read_text(encoding="utf-8")))
    assert str(path) in out.err


def _needs(*modules: str):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


_CHROMIUM = _needs("selenium")
_HAS_BROWSER = shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chromium-browser"))

#: Each benchmark in its quickest mode: seconds, figures not worth keeping.
QUICKEST = [
    pytest.param("bench_ifs.py", ["--smoke"], id="ifs"),
    pytest.param(
        "bench_3d.py", ["--categories", "4", "--views", "2", "--points", "2000", "--workers", "1"], id="3d"
    ),
    pytest.param(
        "bench_explorer.py",
        ["--n", "2"],
        id="explorer",
        marks=[_CHROMIUM, pytest.mark.skipif(not _HAS_BROWSER, reason="needs chromium and chromedriver")],
    ),
    pytest.param(
        "bench_train.py", ["--quick"], id="train", marks=[_needs("torch", "timm"), pytest.mark.slow]
    ),
]


@pytest.mark.parametrize(("script", "args"), QUICKEST)
def test_benchmark_prints_the_figures_it_writes(script, args, tmp_path):
    """Run a benchmark with its document in ``tmp_path``: the table it prints is that document's,
    every cell and note (so every figure) in it, and the book's result files stay as they were."""
    book = {p.name: p.read_bytes() for p in (REPO / "book" / "bench").glob("*.json")}
    path = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / script),
            *args,
            "--json",
            str(path),
            "--note",
            "a test run",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(path.read_text(encoding="utf-8"))
    first, table, notes = _printed(done.stdout)
    assert first.startswith(f"Measured on {doc['machine']['cpu']} (") and doc["command"] in first
    assert table[0] == doc["columns"] and table[2:] == doc["rows"]
    assert notes == doc["notes"] and "a test run" in notes
    figures = re.compile(r"\d[\d,.]*")
    for text in [c for r in doc["rows"] for c in r] + doc["notes"]:
        for figure in figures.findall(text):
            assert figure in done.stdout, (figure, text)
    for m in doc.get("measurements", []):  # bench_train's raw figures, as its cells round them
        assert f"{m['images_per_s']:.1f}" in done.stdout
    assert {p.name: p.read_bytes() for p in (REPO / "book" / "bench").glob("*.json")} == book
