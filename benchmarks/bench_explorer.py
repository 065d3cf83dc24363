"""Explorer latency: one live update of the explorer's front end in headless Chromium, at 256 px.

    python benchmarks/bench_explorer.py [--n 15]    # --n 2: a check of the script in seconds

The front end (``ofdb_study/explorer/web/``: the same JavaScript runs the book page and the
JupyterLab widget) is served from localhost and opened on search category 0 at 256 px and 100,000
points. Each timed update gives map 0's ``a`` a new value, as typing does, so the whole update runs
on a new system: reading the form, the chaos game and the draw, the search's 512 px fill-rate test
and the readouts. It is timed in the page (``performance.now()`` around the input event; the canvas
is painted afterwards) in the three draw modes, after a few untimed updates, beside the explorer's
budget of 50 ms per update. Needs selenium and Debian's ``chromium`` and ``chromedriver`` (no
network, no kernel).

Writes the table as a result document (``--json PATH``, default ``book/bench/explorer.json``) for
the book's speed page and prints it from that document.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import _record

from ofdb_study.explorer import web
from ofdb_study.explorer.model import FILTER_SIZE, ViewSettings, search_category

BUDGET_MS = 50.0
CATEGORY = 0
VIEW = ViewSettings(size=256, n_points=100_000)
MODES = ("point", "patch", "color")
#: Untimed updates per draw mode before the timed ones (the JavaScript engine compiles the hot loops).
WARM_UPDATES = 10
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>explorer benchmark</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}"></head>
<body>
<div id="explorer" class="ofdb-x-host"></div>
<script type="module">
import {{ mount }} from "./{entry}";
const data = JSON.parse(document.getElementById("data").textContent);
const api = mount(document.getElementById("explorer"), {{
  facts: data.facts,
  maxCategory: data.category,
  useUrl: false,
  initial: data.hash,
  category: (k) => (k === data.category ? {{ rows: data.rows, lit: data.lit }} : {{ error: "not on this page" }}),
}});
window.explorer = api;
api.ready.then((ok) => (document.body.dataset.ready = String(ok)));
</script>
<script type="application/json" id="data">{data}</script>
</body></html>
"""

#: One draw mode: ``warm`` untimed and ``n`` timed updates, each a new value of map 0's ``a``.
_TIME = """
const [mode, warm, n] = arguments;
const wrap = document.querySelector("#explorer > .ofdb-x");
const select = document.querySelector('[data-field="mode"]');
select.value = mode;
select.dispatchEvent(new Event("change"));
const a = document.querySelector('tr.ofdb-x-map input[data-coef="a"]');
const base = Number(a.value);
const times = [];
let failed = 0;
for (let k = 0; k < warm + n; k++) {
  a.value = String(base + 1e-3 * (k + 1));
  const t = performance.now();
  a.dispatchEvent(new Event("input"));
  const ms = performance.now() - t;
  if (wrap.classList.contains("ofdb-x-is-stale")) failed += 1;
  if (k >= warm) times.push(ms);
}
a.value = String(base);
a.dispatchEvent(new Event("input"));
return { times, failed, mode: window.explorer.state().mode };
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serve(directory: Path):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _browser_paths() -> tuple[str, str]:
    found = [shutil.which(n) for n in ("chromium", "chromium-browser")] + [shutil.which("chromedriver")]
    browser, driver = next((p for p in found[:2] if p), None), found[2]
    if not (browser and driver):
        sys.exit(
            "bench_explorer: needs chromium and chromedriver on PATH (Debian: chromium, chromium-driver)"
        )
    return browser, driver


def write_page(folder: Path) -> None:
    """The front end's modules and a page that mounts them on ``CATEGORY`` at ``VIEW``."""
    for name in (*web.MODULES, web.CSS):
        shutil.copyfile(web.WEB_DIR / name, folder / name)
    ifs, fill = search_category(CATEGORY)
    data = {
        "facts": web.facts(),
        "category": CATEGORY,
        "hash": web.state_hash(CATEGORY, VIEW),
        "rows": ifs.to_rows().tolist(),
        "lit": round(fill * FILTER_SIZE**2),
    }
    page = _PAGE.format(css=web.CSS, entry="ifs-explorer.js", data=json.dumps(data).replace("</", "<\\/"))
    (folder / "index.html").write_text(page, encoding="utf-8")


def measure(n: int) -> tuple[dict[str, list[float]], str]:
    """{draw mode: ``n`` update times in ms} and the browser with its version."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as err:
        sys.exit(f"bench_explorer: needs selenium ({err})")

    browser, driver_path = _browser_paths()
    with tempfile.TemporaryDirectory() as tmp:
        site, profile = Path(tmp) / "site", Path(tmp) / "profile"
        site.mkdir()
        write_page(site)
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for flag in (*FLAGS, "--window-size=1300,1400", f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        with _serve(site) as url:
            driver = webdriver.Chrome(service=Service(driver_path), options=opts)
            try:
                driver.set_page_load_timeout(60)
                driver.get(f"{url}/index.html")
                WebDriverWait(driver, 60).until(
                    lambda d: d.execute_script("return document.body.dataset.ready")
                )
                if driver.execute_script("return document.body.dataset.ready") != "true":
                    raise RuntimeError("the explorer did not draw the category")
                times = {}
                for mode in MODES:
                    got = driver.execute_script(_TIME, mode, WARM_UPDATES, n)
                    if got["failed"] or got["mode"] != mode:
                        raise RuntimeError(f"{mode}: {got['failed']} updates did not draw")
                    times[mode] = got["times"]
                version = driver.capabilities.get("browserVersion", "")
            finally:
                driver.quit()
    return times, f"Chromium {version}".strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=15, help="updates timed per draw mode")
    _record.add_json_option(ap, "explorer")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("--n must be at least 1")
    load = os.getloadavg()
    times, browser = measure(args.n)
    rows = [
        [
            mode,
            f"{statistics.median(t):.1f} ms",
            f"{min(t):.1f} - {max(t):.1f} ms",
            f"{BUDGET_MS:.0f} ms",
        ]
        for mode, t in times.items()
    ]
    notes = [
        f"{args.n} updates per draw mode of search category {CATEGORY} at {VIEW.size} px and "
        f"{VIEW.n_points:,} points, each a new system (map 0's a), after {WARM_UPDATES} untimed ones; "
        f"timed in headless {browser} (one page, the canvas painted after each update).",
        "Anchor: the explorer's own budget of 50 ms per update (no figure from the paper).",
        *args.note,
        _record.load_note(load),
    ]
    _record.record(args.json, ["draw mode", "median", "min - max", "budget"], rows, notes)


if __name__ == "__main__":
    main()
