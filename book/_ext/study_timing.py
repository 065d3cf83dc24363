"""The wall time of the build that made this book, as a page: ``{study-timing}``; and re-reading
the pages that quote the executed notebooks.

The study runner writes ``study/timing.json`` (the training call's wall time, each notebook's);
this directive renders it as a table, with one row left for the book build itself. The build
cannot know its own length while it writes the page, so the row holds a placeholder that the
``build-finished`` handler replaces in the written HTML with the seconds this Sphinx build took
(from ``builder-inited`` to ``build-finished``). Every number on the page comes out of the build.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

PLACEHOLDER = "OFDB-BOOK-BUILD-MINUTES"
PAGES: set[str] = set()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _table(rows: list[tuple[str, str]]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=2)
    table += group
    for width in (70, 30):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    body = nodes.tbody()
    group += head
    group += body
    for target, cells in ((head, [("part", "minutes")]), (body, rows)):
        for a, b in cells:
            row = nodes.row()
            for text in (a, b):
                entry = nodes.entry()
                entry += nodes.paragraph(text=text)
                row += entry
            target += row
    return table


class StudyTiming(Directive):
    """The table of ``study/timing.json`` and the book build's own time."""

    def run(self):
        env = self.state.document.settings.env
        PAGES.add(env.docname)
        path = Path(env.srcdir) / "study" / "timing.json"
        if not path.is_file():
            return [
                nodes.paragraph(
                    text="No study has been run into this book yet (study/timing.json is missing)."
                )
            ]
        timing = json.loads(path.read_text())
        rows = []
        if "training" in timing:
            t = timing["training"]
            rows.append(
                (
                    f"training: {t['trained']} of {t['runs']} runs trained in this call"
                    + (" (the others were already finished)" if t["trained"] < t["runs"] else ""),
                    _minutes(t["seconds"]),
                )
            )
        for name, seconds in timing.get("notebooks", {}).items():
            rows.append((f"notebook {name}", _minutes(seconds)))
        rows.append(("the book build (this Sphinx run)", PLACEHOLDER))
        total = (timing.get("training", {}).get("seconds", 0.0)) + sum(timing.get("notebooks", {}).values())
        intro = nodes.paragraph(
            text=f"Profile {timing.get('profile', '?')} on {timing.get('machine', 'an unrecorded machine')}: "
            f"{_minutes(total)} min of training and notebooks before the book build."
        )
        return [intro, _table(rows)]


def _inited(app: Sphinx) -> None:
    app.env.ofdb_build_started = time.perf_counter()  # type: ignore[attr-defined]


def _finished(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    started = getattr(app.env, "ofdb_build_started", None)
    if started is None:
        return
    minutes = _minutes(time.perf_counter() - started)
    for docname in PAGES:
        page = Path(app.outdir) / f"{docname}.html"
        if page.is_file():
            page.write_text(page.read_text().replace(PLACEHOLDER, minutes))


def _always_reread(app: Sphinx, env, added, changed, removed) -> list[str]:
    """Pages that depend on what Sphinx does not track: the timing page (study/timing.json) and
    every Markdown page that glues numbers from the executed notebooks (``{glue:...}`` with a
    ``doc``), whose values change when the notebooks are re-executed while the page does not."""
    stale = []
    for name in env.found_docs:
        path = Path(env.doc2path(name))
        if name in PAGES or name == "timing":
            stale.append(name)
        elif path.suffix == ".md" and path.is_file():
            text = path.read_text()
            if ".ipynb::" in text or ":doc: study/" in text:
                stale.append(name)
    return sorted(stale)


def setup(app: Sphinx) -> dict:
    app.add_directive("study-timing", StudyTiming)
    app.connect("env-get-outdated", _always_reread)
    app.connect("builder-inited", _inited)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
