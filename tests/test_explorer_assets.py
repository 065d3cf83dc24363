"""The explorer's browser front end from the Python side: the embedded search data, the book's
files, the widget's single module and the kernel's answers. (The pixels are checked in Chromium by
``test_explorer_web``.)"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ofdb_study.errors import ParamError
from ofdb_study.explorer import web
from ofdb_study.explorer.model import search_category
from ofdb_study.fractals.ifs import IFS
from ofdb_study.fractals.search import SearchSettings, search

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_search():
    return search(12, workers=1)


def test_categories_document_round_trip(small_search):
    r = small_search
    doc = json.loads(json.dumps(web.categories_document(r.categories, r.fill_rates, r.settings)))
    cats, lit = web.read_categories_document(doc)
    assert cats == r.categories
    assert [n / (512 * 512) for n in lit] == r.fill_rates
    assert doc["facts"] == web.facts() and doc["search"]["seed"] == 1 and doc["count"] == 12
    # compact: the coefficients as base64 float64, about 64 characters per map
    assert len(json.dumps(doc)) < 2000 + 70 * sum(doc["n_maps"])


def test_categories_document_refuses_what_the_page_cannot_rebuild(small_search):
    ifs = small_search.categories[0]
    odd = IFS(ifs.maps, np.full(ifs.n_maps, 1 / ifs.n_maps))
    with pytest.raises(ParamError, match="not |det| normalised"):
        web.categories_document([odd], [0.25], SearchSettings())
    with pytest.raises(ParamError, match="not a count of"):
        web.categories_document([ifs], [0.3], SearchSettings())
    with pytest.raises(ParamError, match="format"):
        web.read_categories_document({"format": "something else"})


def test_ensure_book_assets_writes_once(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    with pytest.raises(ParamError, match="not a Jupyter Book"):
        web.ensure_book_assets(book, 3)
    (book / "_config.yml").write_text("title: t\n")
    folder = web.ensure_book_assets(book, 3, log=None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*web.MODULES, web.BOOK_ENTRY, web.CSS, web.DATA_FILE]
    )
    data = folder / web.DATA_FILE
    stamp = data.stat().st_mtime_ns
    assert web.ensure_book_assets(book, 3, log=None) == folder and data.stat().st_mtime_ns == stamp
    cats, _ = web.read_categories_document(json.loads(data.read_text()))
    assert cats == [search_category(k)[0] for k in range(3)]
    doc = json.loads(data.read_text())
    doc["facts"]["pad"] = -1  # facts of another version: rewritten from the file, no search
    data.write_text(json.dumps(doc))
    searched = []
    web.ensure_book_assets(book, 3, log=searched.append)
    assert not searched and json.loads(data.read_text())["facts"] == web.facts()
    web.ensure_book_assets(book, 4, log=searched.append)  # another count: searched again
    assert json.loads(data.read_text())["count"] == 4 and len(searched) == 1


def test_the_book_page_loads_the_explorer_files():
    page = (REPO / "book" / "explorer.md").read_text()
    block = re.search(r"```\{raw\} html\n(.*?)\n```", page, re.S)[1]
    for ref in re.findall(r"_static/explorer/([\w.-]+)", block):
        assert (web.WEB_DIR / ref).is_file(), ref
    assert "- file: explorer" in (REPO / "book" / "_toc.yml").read_text()
    assert "book/_static/explorer/" in (REPO / ".gitignore").read_text()


def test_offline_assets_keeps_the_modules_off_other_pages():
    spec = importlib.util.spec_from_file_location(
        "offline_assets", REPO / "book" / "_ext" / "offline_assets.py"
    )
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    config = SimpleNamespace(
        html_js_files=["explorer/ifs-core.js", "vendor/mathjax/x.js", "mine.js"],
        html_css_files=["explorer/ifs-explorer.css", "theme.css"],
        mathjax_path="vendor/mathjax/tex-mml-chtml.js",
        nb_ipywidgets_js={},
    )
    ext._clean(None, config)
    assert config.html_js_files == ["mine.js"] and config.html_css_files == ["theme.css"]


def test_widget_module_is_one_self_contained_module(tmp_path):
    src = web.widget_esm()
    assert not re.search(r"^import\b", src, re.M)
    assert len(re.findall(r"^export\b", src, re.M)) == 1 and "export default {" in src
    for name in web.MODULES:
        assert f"const __{name.removesuffix('.js').replace('-', '_')} = (() => {{" in src
    if shutil.which("node"):
        path = tmp_path / "widget.mjs"
        path.write_text(src)
        done = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_kernel_answers_the_front_end():
    pytest.importorskip("anywidget")
    from ofdb_study.explorer.webwidget import ExplorerWidget, model_from_state

    w = ExplorerWidget(2)
    assert w.hash == "#c=2" and w.facts == web.facts()
    ifs, fill = search_category(1)
    reply = w.answer({"kind": "category", "index": 1, "id": 7})
    assert reply == {"id": 7, "rows": ifs.to_rows().tolist(), "lit": round(fill * 512 * 512)}
    assert "category" in w.answer({"kind": "category", "index": -1, "id": 8})["error"]
    assert "kind" in w.answer({"kind": "nothing", "id": 9})["error"]
    with pytest.raises(ParamError, match="display the widget"):
        w.model()
    w.hash = "#c=2&row=3&mode=point&maps=1,0,0,1,0,0,1"
    w.show(1500)
    assert w.hash == "#c=1500&row=3&mode=point"
    state = {
        "category": 1,
        "row": 5,
        "flip": "lr",
        "mode": "color",
        "seed": 3,
        "points": 5000,
        "size": 64,
        "aWeight": 1.0,
        "maps": None,
    }
    m = model_from_state(state)
    assert m.ifs() == ifs and m.view.row == 5 and m.view.mode == "color" and m.view.a_weight == 1.0
    edited = dict(
        state,
        maps=[[0.5, 0, 0, 0.5, 0, 0, 2.0], [0.5, 0, 0, 0.5, 0.5, 0, 1.0], [0.5, 0, 0, 0.5, 0.25, 0.5, 1.0]],
    )
    m = model_from_state(edited)
    assert np.array_equal(m.weights, [2.0, 1.0, 1.0]) and m.n_maps == 3
    with pytest.raises(ParamError, match="state"):
        model_from_state({"size": 64})
    w.state = edited
    assert w.model().n_maps == 3
    png = base64.b64decode(
        w.answer({"kind": "augment", "state": dict(edited, mode="patch"), "id": 3})["tiles"][0]["png"]
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
