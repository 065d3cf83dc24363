"""One small JSON result file per benchmark, for the book's speed page (``book/guide/speed.md``).

Each of ``bench_ifs.py``, ``bench_3d.py``, ``bench_explorer.py`` and ``bench_train.py`` takes
``--json PATH`` (default ``book/bench/<name>.json``) and writes, atomically, a document of:

* ``machine``: ``{"cpu": model, "cores": count, "usable_cores": affinity, "gpu": name or null}``
  (``gpu`` is null where the script does not use torch; ``"none"`` where torch found no GPU);
* ``command``: the command line run, ``python`` standing for the interpreter and the script's path
  relative to the repository;
* ``date``: the UTC date (ISO, ``YYYY-MM-DD``);
* ``columns``: the column names; ``rows``: lists of text cells, one per column (our figure beside
  the anchor's and its source);
* ``notes``: sentences (quick mode, extrapolation, a busy shared machine).

A script may add keys of its own (``bench_train.py`` keeps its raw measurements). The book's
``bench_tables`` extension renders the document with ``{bench-table} <name>``. What a script prints
is ``text`` of the document it wrote, read back from the file (``record``), so the terminal shows
the figures the book will.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ofdb_study.files import atomic_write_text, usable_cpus

REPO = Path(__file__).resolve().parent.parent
#: Where the book's speed page reads the result files from.
BOOK_BENCH = REPO / "book" / "bench"
#: The keys every result document holds.
KEYS = ("machine", "command", "date", "columns", "rows", "notes")


def default_path(name: str) -> Path:
    """``book/bench/<name>.json`` of this repository."""
    return BOOK_BENCH / f"{name}.json"


def add_json_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--json PATH`` (default ``book/bench/<name>.json``) and ``--note TEXT`` (repeatable)."""
    parser.add_argument(
        "--json",
        type=Path,
        default=default_path(name),
        metavar="PATH",
        help=f"write the result document here (default: book/bench/{name}.json)",
    )
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TEXT",
        help="a sentence for the document's notes (e.g. that the machine was shared); repeatable",
    )


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(gpu: str | None = None) -> dict:
    """The machine: CPU model, core counts, and ``gpu`` as the script found it (None: not used)."""
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 1, "usable_cores": usable_cpus(), "gpu": gpu}


def torch_gpu() -> str:
    """The first CUDA device's name through torch, or ``"none"``."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def command(argv: Sequence[str] | None = None) -> str:
    """The command line: ``python``, the script relative to the repository, the arguments as given."""
    argv = list(sys.argv if argv is None else argv)
    script = argv[0] if argv else ""
    try:
        script = str(Path(script).resolve().relative_to(REPO))
    except ValueError:
        pass
    return shlex.join(["python", script, *argv[1:]])


def load_note(start: tuple[float, float, float] | None = None) -> str:
    """A sentence on the 1-minute load average (at ``start``, an ``os.getloadavg()``, and now; the
    benchmark's own work counts in it): other work on the machine slows the figures."""
    now = os.getloadavg()[0]
    when = f"{start[0]:.2f} at the start and {now:.2f} at the end" if start else f"{now:.2f} at the end"
    return f"Load average (1 min, this run included) {when} of the run, on {os.cpu_count() or 1} cores."


def document(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str] = (),
    *,
    gpu: str | None = None,
    argv: Sequence[str] | None = None,
    extra: dict | None = None,
) -> dict:
    """The result document; raises ``TypeError`` or ``ValueError`` on a cell that is not text or a
    row whose length differs from the columns'."""
    columns = list(columns)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise TypeError("columns must be a non-empty list of strings")
    out_rows = []
    for i, r in enumerate(rows):
        r = list(r)
        if len(r) != len(columns):
            raise ValueError(f"row {i} has {len(r)} cells for {len(columns)} columns: {r!r}")
        bad = [c for c in r if not isinstance(c, str)]
        if bad:
            raise TypeError(f"row {i}: cells must be text, got {bad!r}")
        out_rows.append(r)
    notes = list(notes)
    if not all(isinstance(n, str) for n in notes):
        raise TypeError("notes must be strings")
    doc = {
        "machine": machine(gpu),
        "command": command(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "columns": columns,
        "rows": out_rows,
        "notes": notes,
    }
    for key, value in (extra or {}).items():
        if key in doc:
            raise ValueError(f"extra key {key!r} would replace a key of the document")
        doc[key] = value
    return doc


def write(path: str | os.PathLike, doc: dict) -> Path:
    """Write ``doc`` as JSON to ``path`` atomically (its folder is made if missing)."""
    missing = [k for k in KEYS if k not in doc]
    if missing:
        raise ValueError(f"result document lacks {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def describe_machine(machine: dict) -> str:
    """A document's ``machine`` in words: ``CPU (N cores, M usable, GPU NAME)``."""
    details = [f"{machine['cores']} cores"]
    if machine.get("usable_cores") not in (None, machine["cores"]):
        details.append(f"{machine['usable_cores']} usable")
    if machine.get("gpu") is not None:  # None: the script does not use a GPU
        details.append("no GPU" if machine["gpu"] == "none" else f"GPU {machine['gpu']}")
    return f"{machine['cpu']} ({', '.join(details)})"


def _cells(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def text(doc: dict) -> str:
    """The document as a benchmark prints it: the machine, date and command, the rows as a Markdown
    table under the columns (a ``|`` in a cell written ``\\|``), then one line per note."""
    lines = [
        f"Measured on {describe_machine(doc['machine'])} on {doc['date']} by {doc['command']}",
        "",
        _cells(doc["columns"]),
        _cells(["---"] * len(doc["columns"])),
        *(_cells(r) for r in doc["rows"]),
    ]
    if doc["notes"]:
        lines += ["", *(f"- {n}" for n in doc["notes"])]
    return "\n".join(lines)


def record(path: str | os.PathLike, columns, rows, notes=(), **kw) -> Path:
    """``write(path, document(columns, rows, notes, **kw))``, then print the written file's ``text``
    (to stdout) and where it went (to stderr)."""
    out = write(path, document(columns, rows, notes, **kw))
    print(text(json.loads(out.read_text(encoding="utf-8"))))
    print(f"result document: {out}", file=sys.stderr)
    return out
