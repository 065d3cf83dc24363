"""The static explorer in headless Chromium: saved widget state only, served from localhost.

The page is built with ``ipywidgets.embed.embed_minimal_html`` against the book's vendored copy of
the ipywidgets HTML manager (``ofdb_study.study.vendor``, as the built book loads it). The
test moves the row slider with the keyboard and the category slider through its readout, runs the
rows' Play button, checks that the frame shown changes each time, that no request leaves localhost
and none fails, and saves a screenshot.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
webdriver = pytest.importorskip("selenium.webdriver")

from chromium import QuietHandler, chromium, needs_chromium, serve  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ofdb_study import explorer as ex  # noqa: E402
from ofdb_study.fractals.ifs import IFS  # noqa: E402
from ofdb_study.study import vendor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def assets() -> tuple[Path, list[str]]:
    """(folder to serve as ``assets/``, scripts to load from it in order): the book's own files.

    RequireJS, the paths shim that lets the manager find its icon fonts, then the AMD html manager,
    as the built book loads them.
    """
    try:
        folder = vendor.ensure_vendor(REPO / "book")
    except RuntimeError as exc:  # the first call needs the npm registry
        pytest.skip(f"book assets unavailable: {exc}")
    static = vendor.static_dir(REPO / "book")
    scripts = [vendor.REQUIRE_STATIC, vendor.AMD_PATHS_STATIC, vendor.HTML_MANAGER_STATIC]
    return folder, [str((static / s).relative_to(folder)) for s in scripts]


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>{{title}}</title>
<link rel="icon" href="data:,">
{scripts}
</head><body>
{{snippet}}
</body></html>
"""


def _page(directory: Path, assets: tuple[Path, list[str]]) -> Path:
    """Write the static explorer (2 categories x 3 rows) as an offline page into ``directory``."""
    from ipywidgets.embed import dependency_state, embed_minimal_html

    tri = np.array(
        [[0.5, 0.2, 0.1, 0.5, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5, 0.25, 0.5]]
    )
    fern = np.array(
        [
            [0.0, 0.0, 0.0, 0.16, 0.0, 0.0],
            [0.85, 0.04, -0.04, 0.85, 0.0, 1.6],
            [0.2, -0.26, 0.23, 0.22, 0.0, 1.6],
            [-0.15, 0.28, 0.26, 0.24, 0.0, 0.44],
        ]
    )
    cats = [IFS(tri, np.full(3, 1 / 3)), IFS(fern, np.array([0.01, 0.85, 0.07, 0.07]))]
    box = ex.static_explorer(
        cats, rows=[0, 3, 17], labels=["tri", "fern"], size=96, n_points=20_000, a_weight=1.0
    )
    # The links are not children of the box; their state must be embedded too.
    state = dependency_state([box, *box.links], drop_defaults=True)
    folder, scripts = assets
    # Serve the whole asset folder: the manager's icon fonts sit beside its script.
    (directory / "assets").symlink_to(folder, target_is_directory=True)
    *before, manager = scripts
    head = [f'<script src="assets/{s}"></script>' for s in before]
    # embed_minimal_html formats the template again: protect the scripts' braces.
    template = _TEMPLATE.format(scripts="\n".join(head).replace("{", "{{").replace("}", "}}"))
    page = directory / "index.html"
    embed_minimal_html(
        page,
        views=[box],
        state=state,
        requirejs=False,
        cors=False,
        embed_url=f"assets/{manager}",
        title="static explorer",
        template=template,
    )
    return page


class _Recording(QuietHandler):
    """Serves quietly and records (path, status) of every request."""

    seen: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        self.seen.append((self.path, int(getattr(code, "value", code))))


@pytest.fixture(scope="module")
def served(tmp_path_factory, assets):
    root = tmp_path_factory.mktemp("static-explorer")
    _page(root, assets)
    with serve(root, _Recording) as url:
        yield url, root


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), window="1000,900") as driver:
        yield driver


def _frame(driver):
    """(sha256 of the visible frame's pixels as a screenshot, caption text) of the shown frame."""
    imgs = [i for i in driver.find_elements(By.CSS_SELECTOR, ".widget-image") if i.is_displayed()]
    assert len(imgs) == 1, f"expected one visible frame, found {len(imgs)}"
    # The caption is the Label beside the image in the same frame box.
    caption = imgs[0].find_element(By.XPATH, "following-sibling::*[contains(@class, 'widget-label')]").text
    return hashlib.sha256(imgs[0].screenshot_as_png).hexdigest(), caption


def _slider(driver, description: str):
    for s in driver.find_elements(By.CSS_SELECTOR, ".widget-slider"):
        labels = s.find_elements(By.CSS_SELECTOR, ".widget-label")
        if labels and labels[0].text.strip() == description:
            return s
    raise AssertionError(f"no slider {description!r}")


def _wait_for(driver, predicate, timeout=30):
    WebDriverWait(driver, timeout).until(lambda d: predicate(d))


def test_static_explorer_in_chromium(served, browser, tmp_path_factory):
    base, _ = served
    browser.get(f"{base}/index.html")
    _wait_for(
        browser, lambda d: any(i.is_displayed() for i in d.find_elements(By.CSS_SELECTOR, ".widget-image"))
    )
    first = _frame(browser)
    assert first[1].startswith("category tri, row 0 (identity)")

    # Row slider: focus its handle and press the right arrow key (noUiSlider's keyboard support).
    handle = _slider(browser, "row").find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)
    _wait_for(browser, lambda d: _frame(d)[1] != first[1])
    second = _frame(browser)
    assert second[1].startswith("category tri, row 3 (a x 1.4)")
    assert second[0] != first[0]

    # Category slider: type a value into its editable readout.
    readout = _slider(browser, "category").find_element(By.CSS_SELECTOR, ".widget-readout")
    readout.click()
    readout.send_keys(Keys.CONTROL, "a")
    readout.send_keys("1", Keys.ENTER)
    _wait_for(browser, lambda d: _frame(d)[1].startswith("category fern"))
    third = _frame(browser)
    # the row stays where the row slider is: its link drives every category's stack
    assert third[1].startswith("category fern, row 3 (a x 1.4)")
    assert third[0] not in (first[0], second[0])

    # The rows' Play button (second Play widget: play, stop, repeat) steps through rows by itself.
    row_play = browser.find_elements(By.CSS_SELECTOR, ".widget-play")[1]
    row_play.find_elements(By.TAG_NAME, "button")[0].click()
    _wait_for(browser, lambda d: "row 3 " not in _frame(d)[1])
    row_play.find_elements(By.TAG_NAME, "button")[1].click()  # stop
    assert _frame(browser)[1].startswith("category fern, row ")

    shot = tmp_path_factory.mktemp("screenshots") / "static_explorer.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000
    print(f"screenshot: {shot}")

    # Nothing but the local server (and in-page data/blob URLs) was asked for.
    urls = []
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert any(u.startswith(f"{base}/assets/") for u in urls), "the performance log missed the scripts"
    # chrome://, data:, blob: are in-browser; anything over the network must go to the local server.
    network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    outside = [u for u in network if urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert not outside, f"requests outside localhost: {outside}"
    failed = [(path, code) for path, code in _Recording.seen if code >= 400]
    assert not failed, f"local requests that failed: {failed}"
