"""The JavaScript explorer in headless Chromium, served from localhost: the book page's own markup
and files (``explorer_page``), every pixel checked against ``ofdb_study``'s renderer.

Point, patch and colour modes, fluctuation rows, flips and edited systems give the package's image
exactly; the state survives a trip through the URL and the system one through the CSV format; bad
input leaves a message beside its field and the last good picture; the console stays clean and no
request leaves localhost. The update time at 256 px and 100,000 points is measured and printed.
"""

from __future__ import annotations

import json
import statistics
from urllib.parse import urlsplit

import numpy as np
import pytest

webdriver = pytest.importorskip("selenium.webdriver")

import explorer_page as ep  # noqa: E402
from chromium import QuietHandler, chromium, needs_chromium, serve  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from ofdb_study.explorer import web  # noqa: E402
from ofdb_study.explorer.model import ExplorerModel, ViewSettings  # noqa: E402
from ofdb_study.fractals import mt, render  # noqa: E402
from ofdb_study.fractals.ifs import IFS, format_rows  # noqa: E402

pytestmark = needs_chromium


class _Recording(QuietHandler):
    seen: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        self.seen.append((self.path, int(getattr(code, "value", code))))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(base URL, the embedded categories, their search records) of the pages behind a local server."""
    root = tmp_path_factory.mktemp("explorer-site")
    folder = ep.write_site(root)
    cats, lit = web.read_categories_document(json.loads((folder / web.DATA_FILE).read_text()))
    with serve(root, _Recording) as url:
        yield url, cats, lit


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(
        tmp_path_factory.mktemp("profile"), window="1300,1400", logs=("performance", "browser")
    ) as d:
        yield d


@pytest.fixture(autouse=True)
def clean_console(browser):
    """Every test ends with no console error and nothing asked for outside localhost."""
    browser.get_log("browser")
    browser.get_log("performance")
    yield
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    urls = []
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert all(urlsplit(u).hostname in ("127.0.0.1", "localhost") for u in network), network
    assert not [(p, c) for p, c in _Recording.seen if c >= 400]


def _open(browser, base, hash_=""):
    ep.open_page(browser, f"{base}/explorer.html{hash_}")


def _same_as_package(browser, cats, host="#ofdb-explorer"):
    got = ep.canvas_pixels(browser)
    want = ep.reference(ep.state(browser, host), cats)
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"{np.count_nonzero(np.any(got != want, axis=2))} pixels differ"
    return got


def test_the_test_data_is_the_exact_search(site):
    _, cats, lit = site
    assert len(cats) == web.BOOK_CATEGORIES
    from ofdb_study.explorer.model import search_category

    for k in (0, 4):
        ifs, fill = search_category(k)
        assert cats[k] == ifs and lit[k] == round(fill * 512**2)  # the log keeps 6 digits: enough


@pytest.mark.parametrize(
    "hash_",
    [
        "#c=0&mode=point",
        "#c=4&mode=point",
        "#c=417&mode=point",
        "#c=999&mode=point",
        "#c=4&mode=point&size=362&points=200000",  # the OFDB image: 37,868 lit pixels (facts)
        "#c=417&mode=point&row=7",  # b x 1.4
        "#c=417&mode=point&row=24&a=1",  # f x 1.8, plain a
        "#c=4&mode=point&flip=tb",
        "#c=4&mode=point&flip=lr",
        "#c=999&mode=point&flip=both&size=200&points=30000",
    ],
)
def test_point_mode_is_the_package_render(site, browser, hash_):
    base, cats, _ = site
    _open(browser, base, hash_)
    px = _same_as_package(browser, cats)
    if "size=362" in hash_:
        assert np.count_nonzero(px[:, :, 0]) == 37_868


@pytest.mark.parametrize(
    "hash_",
    ["#c=417&mode=patch&seed=0", "#c=0&mode=patch&seed=9007199254740991&row=3", "#c=999&mode=color&flip=lr"],
)
def test_patch_and_colour_modes_are_the_package_render(site, browser, hash_):
    base, cats, _ = site
    _open(browser, base, hash_)
    _same_as_package(browser, cats)


def test_nothing_is_clipped_and_the_page_does_not_scroll_sideways(site, browser):
    base, _, _ = site
    _open(browser, base, "#c=417")
    for width in (1300, 760):
        browser.set_window_size(width, 1400)
        assert browser.execute_script(
            "const d = document.documentElement; return d.scrollWidth <= d.clientWidth;"
        ), width
        clipped = browser.execute_script(
            "return [...document.querySelectorAll('.ofdb-x-label, .ofdb-x-readouts th, legend, button, select')]"
            ".filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent);"
        )
        assert not clipped, (width, clipped)
    browser.set_window_size(1300, 1400)


def test_readouts_are_the_models(site, browser):
    base, cats, lit = site
    _open(browser, base, "#c=417&mode=point")
    model = ExplorerModel.from_ifs(cats[417], view=ViewSettings(mode="point"))
    r = model.readouts()
    filt = ep.readout(browser, "filter")
    assert f"{round(r.filter_fill * 512**2):,} of 262,144 px" in filt
    assert ("passes" in filt) == r.passes
    assert f"the search recorded {lit[417] / 512**2:.4f} ({lit[417]:,} of" in filt
    assert f"{round(r.fill_rate * 256**2):,} of 65,536 px" in ep.readout(browser, "fill")
    assert ", ".join(f"{f:.3f}" for f in r.contraction) in ep.readout(browser, "contraction")


def _cell(browser, row: int, coef: str):
    return browser.find_elements(By.CSS_SELECTOR, "tr.ofdb-x-map")[row].find_element(
        By.CSS_SELECTOR, f'input[data-coef="{coef}"]'
    )


def _type(element, value: str) -> None:
    """Type into a field as a person does (every keystroke is an update)."""
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.BACKSPACE)
    if value:
        element.send_keys(value)


def _set(browser, element, value: str) -> None:
    """Put ``value`` in a field at once (one update), as a paste does."""
    browser.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", element, value
    )


def test_edited_system_is_the_package_render(site, browser):
    base, cats, _ = site
    _open(browser, base, "#c=4&mode=point")
    model = ExplorerModel.from_ifs(cats[4], view=ViewSettings(mode="point"))
    _type(_cell(browser, 1, "b"), "-0.25")
    model.set_coefficient(1, "b", -0.25)
    _type(_cell(browser, 0, "p"), "0.5")  # probabilities are weights, normalised when drawing
    model.set_probability(0, 0.5)
    browser.find_element(By.CSS_SELECTOR, '[data-action="add-map"]').click()
    browser.find_element(By.CSS_SELECTOR, '[data-action="remove-map"]').click()  # map 0 goes
    model.add_map([0.5, 0, 0, 0.5, 0, 0.5], float(model.weights.mean()))
    model.remove_map(0)
    state = ep.state(browser)
    assert state["maps"] is not None and len(state["maps"]) == model.n_maps
    assert np.array_equal(np.array(state["maps"])[:, :6], model.maps)
    assert np.array_equal(np.array(state["maps"])[:, 6], model.weights)
    got = ep.canvas_pixels(browser)
    assert np.array_equal(got, ep.as_rgba(np.ascontiguousarray(model.image())))
    assert "edited" in browser.find_element(By.CSS_SELECTOR, ".ofdb-x-source").text


def test_url_round_trip(site, browser):
    base, cats, _ = site
    _open(browser, base)
    category = browser.find_element(By.CSS_SELECTOR, '[data-field="category"]')
    _type(category, "417")
    category.send_keys(Keys.ENTER)
    Select(browser.find_element(By.CSS_SELECTOR, '[data-field="row"]')).select_by_value("11")
    Select(browser.find_element(By.CSS_SELECTOR, '[data-field="flip"]')).select_by_value("lr")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-field="seed"]'), "31")
    _type(browser.find_element(By.CSS_SELECTOR, '[data-field="size"]'), "300")
    _type(_cell(browser, 2, "e"), "0.123456789012345678")
    state = ep.state(browser)
    assert state["category"] == 417 and state["row"] == 11 and state["seed"] == 31 and state["size"] == 300
    assert state["maps"][2][4] == 0.123456789012345678
    url = ep.settled_url(browser)
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="link"]').get_attribute("value") == url
    before = _same_as_package(browser, cats)
    ep.open_page(browser, url)
    assert ep.state(browser) == state
    assert np.array_equal(ep.canvas_pixels(browser), before)


def test_csv_export_and_import(site, browser):
    base, cats, _ = site
    _open(browser, base, "#c=999&mode=point")
    exported = browser.find_element(By.CSS_SELECTOR, '[data-field="csv-out"]').get_attribute("value")
    assert exported == format_rows(cats[999])
    downloaded = browser.execute_async_script(
        "const done = arguments[0], a = document.querySelector('.ofdb-x-download');"
        "a.addEventListener('click', (e) => e.preventDefault(), {once: true});"  # no file on disk
        "a.click(); fetch(a.href).then((r) => r.text()).then((t) => done([a.download, t]));"
    )
    assert downloaded == ["00999.csv", exported]
    # import another system, written by the package
    other = IFS(cats[5].maps * [1, 1, 1, 1, 0.9, 1.1], cats[5].probs)
    box = browser.find_element(By.CSS_SELECTOR, '[data-field="csv-in"]')
    browser.execute_script("arguments[0].value = arguments[1];", box, format_rows(other))
    browser.find_element(By.CSS_SELECTOR, '[data-action="import"]').click()
    state = ep.state(browser)
    assert state["category"] is None
    assert np.array_equal(np.array(state["maps"]), other.to_rows())
    model = ExplorerModel.from_ifs(other, view=ViewSettings(mode="point"))
    assert np.array_equal(ep.canvas_pixels(browser), ep.as_rgba(np.ascontiguousarray(model.image())))
    assert browser.find_element(By.CSS_SELECTOR, '[data-field="csv-out"]').get_attribute("value") == (
        model.csv_text()
    )
    # and back: the export of category 999 imports to the same picture
    browser.execute_script("arguments[0].value = arguments[1];", box, exported)
    browser.find_element(By.CSS_SELECTOR, '[data-action="import"]').click()
    _same_as_package(browser, cats)


def _unchanged(browser, pixels, url):
    assert np.array_equal(ep.canvas_pixels(browser), pixels)
    assert ep.settled_url(browser) == url
    assert "last good" in browser.find_element(By.CSS_SELECTOR, ".ofdb-x-status").text


def test_bad_input_keeps_the_last_good_picture(site, browser):
    base, cats, _ = site
    _open(browser, base, "#c=4&mode=point")
    pixels, url = ep.canvas_pixels(browser), ep.settled_url(browser)
    points = browser.find_element(By.CSS_SELECTOR, '[data-field="points"]')
    _set(browser, points, "12x")
    assert "whole number" in ep.message(browser, "points")
    _unchanged(browser, pixels, url)
    _set(browser, points, "100000")
    assert ep.message(browser, "points") == ""
    a0 = _cell(browser, 0, "a")
    _set(browser, a0, "")
    assert "map 0, a: not a number" in ep.message(browser, "maps")
    _unchanged(browser, pixels, url)
    _set(browser, a0, "90")  # points run off to infinity
    assert "diverges" in ep.message(browser, "maps")
    _unchanged(browser, pixels, url)
    _set(browser, a0, repr(float(cats[4].maps[0, 0])))  # the category again: drawn, the message gone
    assert ep.settled_url(browser) == url and ep.message(browser, "maps") == ""
    assert browser.find_element(By.CSS_SELECTOR, ".ofdb-x-status").text == ""
    for _ in range(3):
        browser.find_element(By.CSS_SELECTOR, '[data-action="remove-map"]').click()
    pixels, url = ep.canvas_pixels(browser), ep.settled_url(browser)  # one map left, drawn
    browser.find_element(By.CSS_SELECTOR, '[data-action="remove-map"]').click()
    assert "empty system" in ep.message(browser, "maps")
    _unchanged(browser, pixels, url)
    box = browser.find_element(By.CSS_SELECTOR, '[data-field="csv-in"]')
    browser.execute_script("arguments[0].value = '1,2,3\\n';", box)
    browser.find_element(By.CSS_SELECTOR, '[data-action="import"]').click()
    assert "expected 7 values" in ep.message(browser, "csv-in")
    category = browser.find_element(By.CSS_SELECTOR, '[data-field="category"]')
    _type(category, "1000")
    category.send_keys(Keys.ENTER)
    assert "embeds the first 1,000" in ep.message(browser, "category")
    _unchanged(browser, pixels, url)


def test_renderer_functions_match_numpy_and_numba(site, browser):
    """The modules' pieces on their own: the MT stream, the masks, diverging systems (the NaN
    rule), the ``%.18e`` format with its ties, the embedded data, the normalised probabilities."""
    base, cats, _ = site
    _open(browser, base)
    script = """
const done = arguments[arguments.length - 1];
const [cases, numbers, weights] = [arguments[0], arguments[1], arguments[2]];
const at = (f) => new URL('_static/explorer/' + f, location.href).href;
Promise.all([import(at('ifs-core.js')), import(at('ifs-text.js')), import(at('ifs-book.js')),
             fetch(at('categories.json')).then((r) => r.json())]).then(([core, text, book, doc]) => {
  const cats = book.decodeCategories(doc);
  const rows = Array.from({length: cats.count}, (_, k) => cats.rows(k));
  const sums = weights.map((w) => Array.from(core.normalise(w)));
  const rng = new core.MT19937(100);
  const key = Array.from(rng.key.subarray(0, 8));
  const masks = [0, 1, 2 ** 40 + 3].map((s) => Array.from({length: 50}, (_, i) => core.maskOf(core.maskKey(s), i)));
  const renders = cases.map((c) => {
    const r = core.render(c.maps, Float64Array.from(c.probs), core.viewWeights(c.a, c.row, [0.2, 0.6, 1.4, 1.8]),
      {size: 128, nPoints: 30000, pad: 6, chaosSeed: 100, mode: 'point', flip: true});
    return [Array.from(r.image), r.kept, r.diverged];
  });
  done({key, masks, renders, formatted: numbers.map(text.formatE18), rows, sums});
});
"""
    diverging = [(0, 16, 0.2), (0, 4, 1.0), (2, 16, 1.0)]
    cases = [
        {"maps": cats[c].maps.tolist(), "probs": cats[c].probs.tolist(), "row": row, "a": a}
        for c, row, a in diverging
    ]
    rs = np.random.RandomState(3)
    numbers = [float(v) for v in rs.standard_normal(300) * 10.0 ** rs.randint(-300, 300, 300)]
    numbers += [0.0, -0.0, 5e-324, 2.0**-40, 3 * 2.0**-30, 1e23, 0.1, 1.7976931348623157e308]
    weights = [rs.uniform(0, 1, n) * 10.0 ** rs.uniform(-3, 3, n) for n in (3, 7, 9, 20, 150)]
    weights.append(cats[3].probs)  # sums to 1 within 1e-12: left as it is
    got = browser.execute_async_script(script, cases, numbers, [w.tolist() for w in weights])
    # the embedded categories decode to the search's, probabilities (the |det| rule) included
    assert all(np.array_equal(np.array(r), c.to_rows()) for r, c in zip(got["rows"], cats, strict=True))
    # relative weights normalise as ExplorerModel.probabilities does (NumPy's pairwise sum)
    for w, p in zip(weights, got["sums"], strict=True):
        assert np.array_equal(p, ExplorerModel(np.zeros((len(w), 6)), w).probabilities())
    assert got["key"] == mt.legacy_state(100)[:8].tolist()
    from ofdb_study.fractals.kernels import patch_mask

    assert got["masks"] == [[int(patch_mask(s, i)) for i in range(50)] for s in (0, 1, 2**40 + 3)]
    from ofdb_study.fractals.ifs import fluctuation_weights

    for (c, row, a), (image, kept, diverged) in zip(diverging, got["renders"]):
        want = render.render(
            cats[c], size=128, n_points=30_000, mode="point", a_weight=a, weights=fluctuation_weights()[row]
        )
        assert diverged and 0 < kept < 30_000
        assert np.array_equal(np.array(image, dtype=np.uint8).reshape(128, 128), want)
    assert got["formatted"] == [f"{v:.18e}" for v in numbers]


def test_update_time_at_256_px_and_100k_points(site, browser):
    """Prints the median update time (no assertion on it: a benchmark, not a test of speed)."""
    base, cats, _ = site
    _open(browser, base, "#c=0&mode=point&size=256&points=100000")
    script = """
const next = document.querySelector('[data-step="1"]');
const a = document.querySelector('[data-field="a"]');
const mode = document.querySelector('[data-field="mode"]');
const time = (fn) => { const t = performance.now(); fn(); return performance.now() - t; };
const out = {step: [], a: [], patch: [], color: []};
for (let i = 0; i < 30; i++) out.step.push(time(() => next.click()));
for (let i = 0; i < 30; i++) out.a.push(time(() => { a.value = String(0.2 + 0.001 * (i % 7)); a.dispatchEvent(new Event('input')); }));
mode.value = 'patch'; mode.dispatchEvent(new Event('change'));
for (let i = 0; i < 30; i++) out.patch.push(time(() => { a.value = String(0.2 + 0.001 * (i % 7)); a.dispatchEvent(new Event('input')); }));
mode.value = 'color'; mode.dispatchEvent(new Event('change'));
for (let i = 0; i < 30; i++) out.color.push(time(() => { a.value = String(0.2 + 0.001 * (i % 7)); a.dispatchEvent(new Event('input')); }));
return out;
"""
    times = browser.execute_script(script)
    for name, what in (
        ("step", "next category (chaos game, draw and the 512 px search filter)"),
        ("a", "a weight changed (chaos game and draw; filter cached)"),
        ("patch", "a weight changed in patch mode"),
        ("color", "a weight changed in colour mode"),
    ):
        t = times[name]
        print(
            f"explorer update at 256 px, 100k points, {what}: median {statistics.median(t):.1f} ms, "
            f"min {min(t):.1f}, max {max(t):.1f} ms over {len(t)}"
        )
    assert ep.state(browser)["category"] == 30 and ep.state(browser)["mode"] == "color"
    _same_as_package(browser, cats)


def _serve_widget(browser, widget, until) -> None:
    """Answer the front end's requests with the kernel side's ``answer`` until ``until(browser)``."""

    def step(d):
        for msg in d.execute_script("const s = window.sent; window.sent = []; return s;"):
            d.execute_script("window.deliver(arguments[0]);", widget.answer(msg))
        return until(d)

    WebDriverWait(browser, 60, poll_frequency=0.1).until(step)


def test_widget_front_end_with_the_kernel_as_host(site, browser):
    """The anywidget bundle against a stand-in for anywidget's model; the kernel side's real
    ``answer`` supplies the categories and the augmentation previews."""
    pytest.importorskip("anywidget")
    from ofdb_study.explorer.webwidget import ExplorerWidget, model_from_state

    base, cats, _ = site
    widget = ExplorerWidget(3)
    browser.get("about:blank")
    browser.get(f"{base}/widget.html")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.sent && window.sent.length > 0")
    )
    assert browser.execute_script("return window.sent[0]") == {"kind": "category", "index": 3, "id": 1}
    _serve_widget(browser, widget, lambda d: d.execute_script("return window.values.hash.includes('mode=')"))
    state = ep.state(browser, "#widget")
    assert state["category"] == 3 and browser.execute_script("return window.values.state") == state
    model = model_from_state(state)
    assert model.ifs() == cats[3]
    assert np.array_equal(ep.canvas_pixels(browser), ep.as_rgba(np.ascontiguousarray(model.image())))
    # the kernel moves the view (a category past the book's 1,000 comes the same way)
    browser.execute_script("window.setTrait('hash', arguments[0]);", "#c=2&mode=color&size=128&flip=tb")
    _serve_widget(
        browser, widget, lambda d: d.execute_script("return window.values.hash.startsWith('#c=2&')")
    )
    _same_as_package(browser, cats, "#widget")
    # augmentation previews rendered by the kernel
    browser.find_element(By.CSS_SELECTOR, '[data-action="augment"]').click()
    _serve_widget(browser, widget, lambda d: d.find_elements(By.CSS_SELECTOR, ".ofdb-x-tiles img"))
    titles = [f.text for f in browser.find_elements(By.CSS_SELECTOR, ".ofdb-x-tiles figcaption")]
    assert titles[:2] == ["patch (fixed)", "pattern 0"]
    assert browser.execute_script(
        "return [...document.querySelectorAll('.ofdb-x-tiles img')].every(i => i.complete && i.naturalWidth > 0)"
    )


def test_widget_opens_a_folder_category_and_a_random_system(site, browser, tmp_path):
    """The hashes of ``ExplorerWidget.from_folder`` and ``load`` draw the package's pixels of the
    system they carry (no category: nothing is asked of the kernel)."""
    pytest.importorskip("anywidget")
    from ofdb_study.explorer.model import random_ifs
    from ofdb_study.explorer.webwidget import ExplorerWidget
    from ofdb_study.fractals.ifs import write_csv

    base, cats, _ = site
    edited = IFS(cats[7].maps * [1, 1, 1, 1, 0.9, 1.1], cats[7].probs)
    write_csv(tmp_path / "00000.csv", cats[6])
    write_csv(tmp_path / "00001.csv", edited)
    view = ViewSettings(size=128, n_points=30_000, mode="patch", mask_seed=5, row=3)
    widget = ExplorerWidget.from_folder(tmp_path, 1, view)
    browser.get("about:blank")
    browser.get(f"{base}/widget.html")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return window.sent && window.sent.length > 0")
    )
    _serve_widget(browser, widget, lambda d: d.execute_script("return window.values.hash.includes('mode=')"))
    for ifs in (edited, random_ifs(11)):
        if ifs is not edited:
            widget.load(ifs)
        browser.execute_script("window.setTrait('hash', arguments[0]);", widget.hash)
        _serve_widget(
            browser,
            widget,
            lambda d, ifs=ifs: np.array_equal(
                np.array((ep.state(d, "#widget") or {}).get("maps") or []), ifs.to_rows()
            ),
        )
        state = ep.state(browser, "#widget")
        assert state["category"] is None and state["size"] == 128 and state["row"] == 3
        model = ExplorerModel.from_ifs(ifs, view=view)
        assert np.array_equal(ep.canvas_pixels(browser), ep.as_rgba(np.ascontiguousarray(model.image())))


def test_a_link_with_too_many_maps_is_refused_at_once(site, browser):
    """A hash of 60,000 maps is not split into 60,000 rows: the explorer keeps its limit, says so
    and draws none of them, at once."""
    import time

    base, _, _ = site
    maps = ";".join(["0.5,0,0,0.5,0,0,1"] * 60_000)
    started = time.monotonic()
    _open(browser, base, f"#c=&maps={maps}")
    assert time.monotonic() - started < 30
    status = browser.find_element(By.CSS_SELECTOR, ".ofdb-x-status").text
    assert "maps: the link holds more than 64; ignored" in status
    drawn = ep.state(browser)  # None: nothing to draw (no category, no maps taken)
    assert drawn is None or len(drawn["maps"] or []) <= 64
