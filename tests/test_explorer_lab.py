"""The explorer widget in a real JupyterLab (slow: a server, a kernel and the search to category 1000).

A notebook that displays ``ExplorerWidget`` runs in headless Chromium against a local JupyterLab;
the front end is the book page's JavaScript, loaded by anywidget. Typing category 1000 (past the
1,000 the book embeds) makes the kernel run the exact search that far; the canvas must then be the
package's render of that category, pixel for pixel.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("anywidget")
pytest.importorskip("jupyterlab")

import explorer_page as ep  # noqa: E402
from chromium import chromium, needs_chromium  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ofdb_study.explorer.model import search_category  # noqa: E402

pytestmark = [needs_chromium, pytest.mark.slow]
REPO = Path(__file__).resolve().parent.parent
FIND = "return [...document.querySelectorAll('.jp-OutputArea *')].find((e) => e.ofdbExplorer)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _jupyterlab(root: Path):
    """A JupyterLab server on localhost serving ``root``; yields its base URL (token ``t``)."""
    port = _free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        HF_HUB_OFFLINE="1",
        JUPYTER_CONFIG_DIR=str(root / ".config"),
        JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
    )
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1"]
    cmd += [f"--ServerApp.port={port}", "--IdentityProvider.token=t", f"--ServerApp.root_dir={root}"]
    cmd += ["--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]
    with open(root / "server.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api?token=t", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_widget_in_jupyterlab_searches_past_the_book(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell("from ofdb_study.explorer import ExplorerWidget\nExplorerWidget(5)")
    ]
    nbformat.write(nb, tmp_path / "explorer.ipynb")
    with _jupyterlab(tmp_path) as base, chromium(tmp_path / "profile", logs=("performance", "browser")) as d:
        d.get(f"{base}/lab/tree/explorer.ipynb?token=t")
        editor = ".jp-Notebook .jp-Cell .jp-InputArea-editor"
        WebDriverWait(d, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, editor))
        WebDriverWait(d, 120).until(
            lambda d: (
                "Idle" in d.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget, #jp-main-statusbar").text
            )
        )
        d.find_elements(By.CSS_SELECTOR, editor)[0].click()
        d.switch_to.active_element.send_keys(Keys.SHIFT, Keys.ENTER)
        WebDriverWait(d, 120).until(lambda d: d.execute_script(FIND + "?.ofdbExplorer.state();"))
        first = d.execute_script(FIND + ".ofdbExplorer.state();")
        assert first["category"] == 5
        ifs5, _ = search_category(5)
        want = ep.reference(first, {5: ifs5})
        assert np.array_equal(ep.canvas_pixels(d, ".jp-OutputArea"), want)
        # typing into the explorer reaches it (JupyterLab's shortcuts leave its fields alone)
        a0 = d.find_element(By.CSS_SELECTOR, '.jp-OutputArea tr.ofdb-x-map input[data-coef="a"]')
        d.execute_script("arguments[0].value = '';", a0)
        a0.send_keys("0.3")
        WebDriverWait(d, 30).until(
            lambda d: (d.execute_script(FIND + ".ofdbExplorer.state();")["maps"] or [[0]])[0][0] == 0.3
        )
        # past the book's data: the kernel searches to category 1000 on demand
        field = d.find_element(By.CSS_SELECTOR, '.jp-OutputArea [data-field="category"]')
        d.execute_script(
            "arguments[0].value = '1000'; arguments[0].dispatchEvent(new Event('change'));", field
        )
        WebDriverWait(d, 600, poll_frequency=1).until(
            lambda d: (d.execute_script(FIND + ".ofdbExplorer.state();") or {}).get("category") == 1000
        )
        state = d.execute_script(FIND + ".ofdbExplorer.state();")
        ifs, _ = search_category(1000)
        assert np.array_equal(ep.canvas_pixels(d, ".jp-OutputArea"), ep.reference(state, {1000: ifs}))
        assert not [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "ofdb" in e["message"]]
        urls = [
            json.loads(e["message"])["message"]["params"]["request"]["url"]
            for e in d.get_log("performance")
            if json.loads(e["message"])["message"].get("method") == "Network.requestWillBeSent"
        ]
        network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
        assert all(urlsplit(u).hostname in ("127.0.0.1", "localhost") for u in network), network
