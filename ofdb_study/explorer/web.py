"""The explorer's browser front end: its files, the facts it is given and the embedded search data.

The ES modules in ``web/`` draw a category on a canvas exactly as ``fractals.render`` does (point,
patch and colour modes, pixel for pixel) and hold every control. They run in two hosts:

* the book page ``book/explorer.md``, with no kernel: ``ensure_book_assets`` copies the modules into
  ``<book>/_static/explorer`` and writes ``categories.json`` there, the first ``BOOK_CATEGORIES``
  categories of the exact search with the package's facts (``facts``);
* JupyterLab: ``widget_esm`` bundles the same modules into the single ES module that the anywidget
  ``ExplorerWidget`` (``webwidget``) loads; the kernel supplies any category and the augmentations.

Both hosts open on a state hash (``state_hash``), the form the book page's address carries.

``categories.json`` keeps the coefficients a..f of every map as base64 of little-endian float64
(the probabilities are the search's ``|det|`` rule, recomputed in the page bit for bit) and each
category's search record as lit pixels of the 512 px filter image. About 230 KB for 1,000.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import atomic_write_bytes
from ..fractals import render
from ..fractals.build import FLIPS
from ..fractals.ifs import (
    COEFFICIENTS,
    FLUCTUATION_FACTORS,
    IFS,
    check_categories,
    probabilities_from_determinants,
)
from .model import FILTER_A_WEIGHT, FILTER_PAD, FILTER_POINTS, FILTER_RATE, FILTER_SIZE, ViewSettings

WEB_DIR = Path(__file__).with_name("web")
#: The modules of the front end in dependency order, then the two hosts' entry points and the CSS.
MODULES = ("ifs-core.js", "ifs-text.js", "ifs-layout.js", "ifs-explorer.js")
BOOK_ENTRY = "ifs-book.js"
WIDGET_ENTRY = "ifs-widget.js"
CSS = "ifs-explorer.css"
#: Folder under the book's ``_static`` and the data file in it.
BOOK_FOLDER = "explorer"
DATA_FILE = "categories.json"
BOOK_CATEGORIES = 1000
DATA_FORMAT = "ofdb-study explorer categories 1"


def _shortest(value: float) -> str:
    """The shortest decimal text that reads back as the same double (the front end parses it so)."""
    return repr(float(value))


def state_hash(
    category: int | None = None,
    view: ViewSettings | None = None,
    *,
    ifs: IFS | None = None,
    flip: str | None = None,
) -> str:
    """The front end's state as a URL hash, for a search category or for a system of one's own.

    The hash is what the book page's address carries after ``#`` and what ``ExplorerWidget`` opens
    on: ``#c=417`` for a category with the front end's default view, and with ``view`` (and
    ``flip``) every drawing setting too. A system given as ``ifs`` goes in as ``c=`` (no category)
    and ``maps=a,b,c,d,e,f,p;...``, each number the shortest text that reads back as the same
    double, so the front end draws it bit for bit.

    Args:
        category: a category of the exact search (0-based); leave it out with ``ifs``.
        view: the drawing settings; None keeps the front end's defaults (``ViewSettings()``).
        ifs: a system to draw instead of a category.
        flip: one of FractalDB's flips (``none``, ``tb``, ``lr``, ``both``); None keeps ``none``.

    Returns:
        The hash, with its ``#``.

    Raises:
        ParamError: both or neither of ``category`` and ``ifs``, a view the renderer refuses or
            with another padding than the front end's, or an unknown flip.
    """
    if (category is None) == (ifs is None):
        raise ParamError("state", "give either a category or a system (ifs), not both or neither")
    parts = ["c=" if ifs is not None else f"c={check_positive_int('category', category, minimum=0)}"]
    if view is not None:
        view = view.validate()
        if view.pad != ViewSettings().pad:
            raise ParamError("pad", f"the front end draws with pad {ViewSettings().pad}, got {view.pad}")
        parts += [f"row={view.row}", f"mode={view.mode}", f"seed={view.mask_seed}"]
        parts += [f"points={view.n_points}", f"size={view.size}", f"a={_shortest(view.a_weight)}"]
    if flip is not None:
        if flip not in FLIPS:
            raise ParamError("flip", f"must be one of {', '.join(FLIPS)}, got {flip!r}")
        parts.append(f"flip={flip}")
    if ifs is not None:
        parts.append("maps=" + ";".join(",".join(_shortest(v) for v in row) for row in ifs.to_rows()))
    return "#" + "&".join(parts)


def facts() -> dict:
    """The package's facts the front end needs (it hard-codes none of them)."""
    v = ViewSettings()
    return {
        "coefficients": list(COEFFICIENTS),
        "fluctuation_factors": list(FLUCTUATION_FACTORS),
        "flips": list(FLIPS),
        "chaos_seed": render.CHAOS_SEED,
        "pad": v.pad,
        "filter": {
            "size": FILTER_SIZE,
            "pad": FILTER_PAD,
            "points": FILTER_POINTS,
            "a_weight": FILTER_A_WEIGHT,
            "rate": FILTER_RATE,
        },
        "view": {
            "size": v.size,
            "points": v.n_points,
            "mode": v.mode,
            "a_weight": v.a_weight,
            "seed": v.mask_seed,
            "row": v.row,
        },
    }


# ----------------------------------------------------------------------------------------------
# The embedded categories.


def categories_document(categories: Sequence[IFS], fill_rates: Sequence[float], settings) -> dict:
    """The data file's content for search categories and their recorded fill rates.

    Raises:
        ParamError: a category's probabilities are not the search's ``|det|`` rule (the page
            recomputes them), or a fill rate is not a whole number of filter pixels.
    """
    pixels = settings.size * settings.size
    lit = []
    for i, (ifs, fill) in enumerate(zip(categories, fill_rates, strict=True)):
        if not np.array_equal(ifs.probs, probabilities_from_determinants(ifs.maps)):
            raise ParamError("categories", f"category {i}: probabilities are not |det| normalised")
        count = round(float(fill) * pixels)
        if count / pixels != float(fill):
            raise ParamError("fill_rates", f"category {i}: {fill} is not a count of {pixels} pixels")
        lit.append(count)
    maps = np.concatenate([c.maps for c in categories]).astype("<f8")
    return {
        "format": DATA_FORMAT,
        "search": asdict(settings),
        "count": len(lit),
        "n_maps": [c.n_maps for c in categories],
        "lit": lit,
        "maps": base64.b64encode(maps.tobytes()).decode("ascii"),
        "facts": facts(),
    }


def read_categories_document(doc: dict) -> tuple[list[IFS], list[int]]:
    """The categories and their search records (lit filter pixels) back from ``categories_document``."""
    if doc.get("format") != DATA_FORMAT:
        raise ParamError("categories", f"not an explorer data file (format {doc.get('format')!r})")
    flat = np.frombuffer(base64.b64decode(doc["maps"]), dtype="<f8").reshape(-1, 6)
    if flat.shape[0] != sum(doc["n_maps"]):
        raise ParamError("categories", "maps and n_maps disagree")
    cats, start = [], 0
    for n in doc["n_maps"]:
        maps = flat[start : start + n].astype(np.float64)
        cats.append(IFS(maps, probabilities_from_determinants(maps)))
        start += n
    return cats, list(doc["lit"])


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data, durable=False)


def ensure_book_assets(
    book: str | os.PathLike, n_categories: int = BOOK_CATEGORIES, *, workers: int | None = None, log=print
) -> Path:
    """Copy the front end into ``<book>/_static/explorer`` and write its ``categories.json``.

    Idempotent: the search runs only when the data file is missing or was made with other search
    settings or another count (about 35 s for 1,000 categories on two cores); new facts alone are
    written into the file without searching again.

    Returns:
        The folder.
    """
    from ..fractals.search import SearchSettings, search

    n_categories = check_categories(n_categories)
    book = Path(book)
    if not (book / "_config.yml").is_file():
        raise ParamError("book", f"{book} is not a Jupyter Book folder (no _config.yml)")
    folder = book / "_static" / BOOK_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*MODULES, BOOK_ENTRY, CSS):
        _write_if_changed(folder / name, (WEB_DIR / name).read_bytes())
    data = folder / DATA_FILE
    settings = SearchSettings()
    want = {"format": DATA_FORMAT, "search": asdict(settings), "count": n_categories}
    have = {}
    if data.is_file():
        try:
            have = json.loads(data.read_text())
        except ValueError:
            pass
    if all(have.get(k) == v for k, v in want.items()):
        if have.get("facts") == facts():
            return folder
        cats, lit = read_categories_document(have)  # the same search: only the facts are new
        fills = [n / (settings.size * settings.size) for n in lit]
    else:
        if log:
            log(f"explorer: searching the first {n_categories} categories for {data}")
        result = search(n_categories, settings, workers=workers)
        cats, fills = result.categories, result.fill_rates
    doc = categories_document(cats, fills, settings)
    _write_if_changed(data, json.dumps(doc, separators=(",", ":")).encode())
    return folder


# ----------------------------------------------------------------------------------------------
# The widget's single module.

_IMPORT_ALL = re.compile(r'^import \* as (\w+) from "\./([\w-]+)\.js";$', re.M)
_IMPORT_NAMES = re.compile(r'^import \{([\w\s,]+)\} from "\./([\w-]+)\.js";$', re.M)
_EXPORT = re.compile(r"^export (?:async )?(?:function\*?|class|const|let) (\w+)", re.M)


def _namespace(stem: str) -> str:
    return "__" + stem.replace("-", "_")


def _link_imports(source: str) -> str:
    source = _IMPORT_ALL.sub(lambda m: f"const {m[1]} = {_namespace(m[2])};", source)
    return _IMPORT_NAMES.sub(lambda m: f"const {{{m[1]}}} = {_namespace(m[2])};", source)


def widget_esm() -> str:
    """The front end and the widget entry as one ES module (anywidget loads a single module).

    Each module becomes a function scope returning its exports, in dependency order; its
    ``import`` lines become references to those scopes. Only the forms the modules use are
    accepted (``import * as x``, ``import {a, b}`` from ``./name.js``; ``export function|class|const``).
    """
    parts = []
    for name in MODULES:
        source = _link_imports((WEB_DIR / name).read_text())
        names = _EXPORT.findall(source)
        body = _EXPORT.sub(lambda m: m[0][len("export ") :], source)
        if re.search(r"^\s*(import|export)\b", body, re.M):
            raise RuntimeError(f"{name}: an import or export form the bundler does not handle")
        stem = name.removesuffix(".js")
        parts.append(
            f"const {_namespace(stem)} = (() => {{\n{body}\nreturn {{ {', '.join(names)} }};\n}})();\n"
        )
    parts.append(_link_imports((WEB_DIR / WIDGET_ENTRY).read_text()))
    return "\n".join(parts)


def widget_css() -> str:
    return (WEB_DIR / CSS).read_text()
