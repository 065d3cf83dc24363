"""Helpers of the explorer's browser tests: the book page's own markup served from localhost, the
canvas read back as pixels, and the package's reference image for a state.

The page is ``book/explorer.md``'s raw HTML block in a bare document, with the book's
``_static/explorer`` folder (``explorer.web.ensure_book_assets``) beside it, as the built book
serves it. The widget page runs the anywidget bundle (``explorer.web.widget_esm``) against a
stand-in for anywidget's model whose messages the test answers with ``ExplorerWidget.answer``.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
from selenium.webdriver.support.ui import WebDriverWait

from ofdb_study.explorer import web
from ofdb_study.explorer.model import ExplorerModel, ViewSettings
from ofdb_study.fractals.render import flip

REPO = Path(__file__).resolve().parent.parent

_DOC = """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>{title}</title><link rel="icon" href="data:,"></head>
<body>
{body}
</body></html>
"""

#: A stand-in for anywidget's model: get/set/save_changes/on/off/send; sent messages queue in
#: ``window.sent`` and ``window.deliver(msg)`` hands a reply to the front end.
_WIDGET = """<link rel="stylesheet" href="widget.css">
<div id="widget"></div>
<script type="module">
import widget from "./widget.js";
const values = JSON.parse(document.getElementById("initial").textContent);
const handlers = {};
window.sent = [];
window.saved = 0;
const model = {
  get: (k) => values[k],
  set: (k, v) => { values[k] = v; },
  save_changes: () => { window.saved += 1; },
  on: (name, fn) => { (handlers[name] = handlers[name] || []).push(fn); },
  off: (name, fn) => { handlers[name] = (handlers[name] || []).filter((f) => f !== fn); },
  send: (content) => { window.sent.push(content); },
};
window.deliver = (msg) => (handlers["msg:custom"] || []).forEach((fn) => fn(msg));
window.setTrait = (k, v) => { values[k] = v; (handlers["change:" + k] || []).forEach((fn) => fn()); };
window.values = values;
widget.render({ model, el: document.getElementById("widget") });
</script>
<script type="application/json" id="initial">{initial}</script>
"""


def book_markup() -> str:
    """The raw HTML block of ``book/explorer.md``."""
    text = (REPO / "book" / "explorer.md").read_text()
    found = re.search(r"```\{raw\} html\n(.*?)\n```", text, re.S)
    assert found, "book/explorer.md has no raw html block"
    return found[1]


def write_site(root: Path, initial_hash: str = "#c=3") -> Path:
    """The explorer page (``explorer.html``) and the widget page (``widget.html``) in ``root``."""
    folder = web.ensure_book_assets(REPO / "book")
    (root / "_static").mkdir()
    (root / "_static" / "explorer").symlink_to(folder.resolve(), target_is_directory=True)
    (root / "explorer.html").write_text(_DOC.format(title="explorer", body=book_markup()))
    (root / "widget.js").write_text(web.widget_esm())
    (root / "widget.css").write_text(web.widget_css())
    initial = json.dumps({"facts": web.facts(), "hash": initial_hash, "state": {}})
    (root / "widget.html").write_text(_DOC.format(title="widget", body=_WIDGET.replace("{initial}", initial)))
    return folder


def open_page(driver, url: str, timeout: float = 60) -> None:
    """Load ``url`` in a fresh document and wait until the explorer has drawn."""
    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "const e = document.querySelector('.ofdb-x-host'); return e && e.dataset.ready"
        )
    )


_PIXELS = """
const c = document.querySelector(arguments[0]);
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let s = '';
for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
return [c.width, c.height, btoa(s)];
"""


def canvas_pixels(driver, scope: str = "") -> np.ndarray:
    """The explorer's canvas (the first, or the one under CSS selector ``scope``) as uint8 (H, W, 4) RGBA."""
    w, h, data = driver.execute_script(_PIXELS, f"{scope} .ofdb-x-canvas".strip())
    return np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(h, w, 4)


def as_rgba(image: np.ndarray) -> np.ndarray:
    """A package image, (H, W) gray or (H, W, 3), as the opaque RGBA the canvas holds."""
    rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
    return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)


def reference(state: dict, categories) -> np.ndarray:
    """The package's image of a front-end state (``explorer.state()``), flips included, as RGBA."""
    if state["maps"] is not None:
        rows = np.array(state["maps"], dtype=np.float64)
        maps, weights = rows[:, :6], rows[:, 6]
    else:
        ifs = categories[state["category"]]
        maps, weights = ifs.maps, ifs.probs
    view = ViewSettings(
        size=state["size"],
        n_points=state["points"],
        mode=state["mode"],
        a_weight=state["aWeight"],
        mask_seed=state["seed"],
        row=state["row"],
    )
    image = ExplorerModel(maps, weights, view).image()
    return as_rgba(np.ascontiguousarray(flip(image, state["flip"])))


def state(driver, host: str = "#ofdb-explorer") -> dict:
    return driver.execute_script(f"return document.querySelector('{host}').ofdbExplorer.state();")


def readout(driver, name: str) -> str:
    return driver.execute_script(
        f"return document.querySelector('[data-readout=\"{name}\"] td').textContent;"
    )


def message(driver, field: str) -> str:
    return driver.execute_script(f"return document.querySelector('[data-msg-for=\"{field}\"]').textContent;")


def settled_url(driver, host: str = "#ofdb-explorer") -> str:
    """The page's URL once it carries the drawn state (it is published 100 ms after a burst)."""
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script(
            f"return location.hash === document.querySelector('{host}').ofdbExplorer.hash();"
        )
    )
    return driver.current_url
