"""The built book in a real headless Chromium, served from localhost with no network.

Uses the book that the ``study_book`` fixture (conftest.py) builds once per session. Checks that
the figures load, that the widgets render from the saved state and react in the browser (the
slider drives the stack through ``jslink``), that MathJax typesets from the local copy, and that
no page asks for anything outside localhost (the performance resource entries and Chromium's own
network log). Screenshots go to the pytest temporary folder.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

webdriver = pytest.importorskip("selenium.webdriver")

from chromium import chromium, needs_chromium, serve  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

LOCAL = ("127.0.0.1", "localhost")
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(study_book):
    """(base URL, html folder) of the built book behind a local HTTP server."""
    with serve(study_book.html) as url:
        yield url, study_book.html


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile"), logs=("performance", "browser")) as driver:
        yield driver


def _traffic(driver) -> tuple[list[str], list[str]]:
    """(every URL the page asked for, those answered with an HTTP error) since the last call.

    The URLs are the resource timing entries plus the DevTools network log; the failures come from
    the log's responses (a missing icon font shows up only there).
    """
    urls = list(
        driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);"
        )
    )
    failed = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
        elif msg.get("method") == "Network.responseReceived":
            response = msg["params"]["response"]
            # Chromium asks every site for /favicon.ico on its own; the book has none.
            if int(response.get("status", 0)) >= 400 and not response["url"].endswith("/favicon.ico"):
                failed.append(f"{response['status']} {response['url']}")
    return urls, failed


def _requested(driver) -> list[str]:
    return _traffic(driver)[0]


def _outside(urls: list[str]) -> list[str]:
    bad = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in (
            "data",
            "blob",
            "about",
            "chrome",
            "chrome-extension",
            "chrome-untrusted",
            "devtools",
        ):
            # browser-internal resources, never the network
            continue
        if parts.hostname not in LOCAL:
            bad.append(url)
    return bad


def _uncaught(driver) -> list[str]:
    """JavaScript exceptions the page raised (a broken widget view shows up here)."""
    return [e["message"] for e in driver.get_log("browser") if "Uncaught" in e["message"]]


def _open(driver, url: str) -> None:
    driver.get_log("performance")  # drop the previous page's entries
    driver.get_log("browser")
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def test_data_page_figures_and_widgets(site, browser, tmp_path):
    base, _ = site
    _open(browser, f"{base}/study/01_data.html")
    # figures: every image in the article decoded
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "const imgs = [...document.querySelectorAll('main img')];"
            "return imgs.length >= 3 && imgs.every(i => i.complete && i.naturalWidth > 0);"
        )
    )
    # widgets: the html manager replaced the saved state with live views
    handle = WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    )[0]
    shown = (
        "return [...document.querySelectorAll('.widget-image')].filter(i => i.offsetParent !== null)"
        ".map(i => [i.naturalWidth, i.parentElement.innerText.trim()]);"
    )
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(shown) and d.execute_script(shown)[0][0] > 0)
    first = browser.execute_script(shown)
    assert len(first) == 1 and first[0][1] == "category 00000"  # the stack shows one frame at a time
    # moving the slider turns the page in the browser alone (jslink), with no kernel behind it
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(shown) != first)
    assert browser.execute_script(shown)[0][1] == "category 00001"
    assert not _uncaught(browser)
    browser.save_screenshot(str(tmp_path / "01_data.png"))
    assert (tmp_path / "01_data.png").stat().st_size > 10_000
    urls, failed = _traffic(browser)
    assert not _outside(urls)
    assert not failed


def test_math_and_results_pages_stay_local(site, browser, tmp_path):
    base, _ = site
    _open(browser, f"{base}/data.html")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "mjx-container"))
    assert not _outside(_requested(browser))
    for page in (
        "results.html",
        "study/02_instances_vs_augmentation.html",
        "study/04_results.html",
        "intro.html",
    ):
        _open(browser, f"{base}/{page}")
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script(
                "return [...document.querySelectorAll('main img')].every(i => i.complete && i.naturalWidth > 0);"
            )
        )
        assert not _outside(_requested(browser)), page
    browser.save_screenshot(str(tmp_path / "intro.png"))


def test_explorer_page_runs_offline(site, browser, tmp_path):
    """The explorer page draws from the book's own files; its modules load on no other page."""
    base, html = site
    _open(browser, f"{base}/explorer.html#c=417&mode=point")
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.getElementById('ofdb-explorer').dataset.ready === 'true'")
    )
    lit = browser.execute_script(
        "const c = document.querySelector('.ofdb-x-canvas');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 0; return n;"
    )
    assert lit > 1000
    # it spans the margin (class full-width) and nothing scrolls sideways
    assert browser.execute_script(
        "const d = document.documentElement; return d.scrollWidth <= d.clientWidth;"
    )
    # stepping works in the browser alone
    browser.find_element(By.CSS_SELECTOR, '[data-step="1"]').click()
    assert "search category 00418" in browser.find_element(By.CSS_SELECTOR, ".ofdb-x-source").text
    browser.save_screenshot(str(tmp_path / "explorer.png"))
    assert not _uncaught(browser)
    urls, failed = _traffic(browser)
    assert any(u.endswith("/_static/explorer/categories.json") for u in urls)
    assert not _outside(urls)
    assert not failed
    # Jupyter Book would add every script under _static to every page; the modules stay on theirs
    assert "_static/explorer/" not in (html / "intro.html").read_text()
