"""The benchmarks' result files as tables: ``{bench-table} NAME`` renders ``bench/NAME.json``.

Each script under ``benchmarks/`` writes one small JSON file (``--json``, by default into
``book/bench/``; the writer is ``benchmarks/_record.py``) holding the machine it ran on, the
command, the date, column names and rows of text cells, and notes. The directive turns it into a
sentence naming the machine, date and command, a table, and the notes, so that the speed page holds
no figure typed by hand. A missing file is said so on the page; a file that is not such a document
is an error of the build.

The extension also puts the repository root on ``sys.path`` when ``ofdb_study`` does not import
from this checkout, so that the API reference (autodoc) and the command-line reference
(sphinx-argparse) document the code of the checkout the book is built from.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

#: A result file's name: ``bench/NAME.json`` (no folders, no dots).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")


class BenchDocumentError(ValueError):
    """A result file that is not a benchmark result document."""


def _cell(text: str) -> nodes.entry:
    entry = nodes.entry()
    entry += nodes.paragraph(text=str(text))
    return entry


def _table(columns: list[str], rows: list[list[str]]) -> nodes.table:
    """A docutils table: one header row of ``columns``, one body row per entry of ``rows``.

    A row shorter than the columns is padded with empty cells; a longer one is an error (its last
    cells would be lost without a word).
    """
    if not columns:
        raise BenchDocumentError("a table needs at least one column")
    table = nodes.table(classes=["bench-table"])
    group = nodes.tgroup(cols=len(columns))
    table += group
    for _ in columns:
        group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    row = nodes.row()
    for name in columns:
        row += _cell(name)
    head += row
    for n, cells in enumerate(rows):
        if len(cells) > len(columns):
            raise BenchDocumentError(f"row {n} has {len(cells)} cells for {len(columns)} columns")
        row = nodes.row()
        for i in range(len(columns)):
            row += _cell(cells[i] if i < len(cells) else "")
        body += row
    return table


def describe_machine(machine) -> str:
    """``machine`` as words: text as it is; ``{cpu, cores, usable_cores, gpu}`` as
    ``CPU (N cores, GPU NAME)``."""
    if not machine:
        return "an unrecorded machine"
    if isinstance(machine, str):
        return machine
    if not isinstance(machine, dict):
        raise BenchDocumentError(f"machine must be text or an object, not {type(machine).__name__}")
    details = []
    cores, usable = machine.get("cores"), machine.get("usable_cores")
    if cores:
        details.append(f"{cores} cores" + (f", {usable} usable" if usable and usable != cores else ""))
    gpu = machine.get("gpu")
    if gpu:  # null: the benchmark does not use a GPU
        details.append("no GPU" if gpu == "none" else f"GPU {gpu}")
    cpu = str(machine.get("cpu") or "an unrecorded CPU")
    return f"{cpu} ({', '.join(details)})" if details else cpu


def render(doc: dict, name: str) -> list[nodes.Node]:
    """The nodes of one result document: the sentence, the table, one paragraph per note."""
    if not isinstance(doc, dict):
        raise BenchDocumentError("the file does not hold a JSON object")
    missing = [k for k in ("columns", "rows") if k not in doc]
    if missing:
        raise BenchDocumentError(f"the document lacks {', '.join(missing)}")
    columns, rows = doc["columns"], doc["rows"]
    if (
        not isinstance(columns, list)
        or not isinstance(rows, list)
        or not all(isinstance(r, list) for r in rows)
    ):
        raise BenchDocumentError("columns must be a list and rows a list of lists")
    intro = nodes.paragraph()
    intro += nodes.Text(f"Measured on {describe_machine(doc.get('machine'))}")
    if doc.get("date"):
        intro += nodes.Text(f" on {doc['date']}")
    intro += nodes.Text(" by ")
    intro += nodes.literal(text=doc.get("command") or f"python benchmarks/bench_{name}.py")
    intro += nodes.Text(".")
    out: list[nodes.Node] = [intro, _table([str(c) for c in columns], rows)]
    notes = doc.get("notes") or []
    if isinstance(notes, str):
        notes = [notes]
    for note in notes:
        out.append(nodes.paragraph(text=str(note)))
    return out


def missing(name: str) -> list[nodes.Node]:
    """What the page says where ``bench/NAME.json`` has not been written."""
    para = nodes.paragraph()
    para += nodes.Text(f"No result file yet (bench/{name}.json is missing); ")
    para += nodes.literal(text=f"python benchmarks/bench_{name}.py")
    para += nodes.Text(" writes it.")
    return [para]


class BenchTable(Directive):
    """``{bench-table} NAME``: the table of ``bench/NAME.json`` under the book's folder."""

    required_arguments = 1
    optional_arguments = 0
    has_content = False

    def run(self):
        name = self.arguments[0]
        if not NAME.match(name):
            raise self.error(f"bench-table: {name!r} is not a result file's name (bench/NAME.json)")
        env = self.state.document.settings.env
        path = Path(env.srcdir) / "bench" / f"{name}.json"
        # Read again when the file changes, appears or goes (a missing dependency re-reads the page).
        env.note_dependency(str(path))
        if not path.is_file():
            return missing(name)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return render(doc, name)
        except (ValueError, BenchDocumentError) as exc:  # json.JSONDecodeError is a ValueError
            raise self.error(f"bench-table: bench/{name}.json: {exc}") from None


def _importable(app: Sphinx) -> None:
    root = Path(app.srcdir).resolve().parent
    spec = importlib.util.find_spec("ofdb_study")
    here = spec is not None and spec.origin is not None and Path(spec.origin).resolve().is_relative_to(root)
    if not here and (root / "ofdb_study").is_dir() and str(root) not in sys.path:
        sys.path.insert(0, str(root))


def setup(app: Sphinx) -> dict:
    app.add_directive("bench-table", BenchTable)
    app.connect("builder-inited", _importable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
