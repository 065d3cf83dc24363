"""The book's JavaScript from npm, served locally so the built site works with no network.

``ensure_vendor(book)`` installs pinned npm packages (MathJax 3, RequireJS and the ipywidgets HTML
manager that matches ipywidgets 8) into ``<book>/_build/vendor-npm`` and copies the files the
built book loads into ``<book>/_static/vendor``. Both are ignored by git. It is idempotent: a stamp
of the pins in each folder skips work already done, so only the first call needs the npm registry.

``python -m ofdb_study vendor --book book`` runs it. The book's configuration points
``mathjax_path`` and ``nb_ipywidgets_js`` at the ``*_STATIC`` paths below (relative to ``_static``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ..errors import ParamError
from ..files import atomic_write_text

#: Exact versions; ``@jupyter-widgets/html-manager`` 1.0.x renders ipywidgets 8 state (controls 2.0).
PINS = {
    "mathjax": "3.2.2",
    "requirejs": "2.3.8",
    "@jupyter-widgets/html-manager": "1.0.15",
}

#: Paths relative to the book's ``_static`` folder, as Sphinx and myst-nb want them.
MATHJAX_STATIC = "vendor/mathjax/tex-mml-chtml.js"
REQUIRE_STATIC = "vendor/requirejs/require.js"
HTML_MANAGER_STATIC = "vendor/html-manager/embed-amd.js"
#: Our RequireJS configuration, loaded between RequireJS and the manager (see ``AMD_PATHS_SOURCE``).

#: Each module of the AMD html-manager bundle sets its webpack public path to the folder of its own
#: RequireJS URL, which by default is ``<page folder>/@jupyter-widgets/...``: the icon fonts of the
#: Play buttons would be asked for there and get a 404. This points the module names into the
#: folder of this script, where the fonts are copied. Nothing is fetched for the modules: they
#: are all inline in ``embed-amd.js``. The folder is found at run time, so pages at any depth work.
AMD_PATHS_SOURCE = """\
// Written by ofdb_study.study.vendor: the ipywidgets html manager finds its icon fonts beside this file.
(function () {
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  var names = ["base", "base7", "controls", "controls7", "html-manager"];
  var paths = {"@jupyter-widgets/html-manager/dist": here.slice(0, -1)};
  names.forEach(function (name) { paths["@jupyter-widgets/" + name] = here + name; });
  require.config({paths: paths});
})();
"""

_STAMP = ".pins.json"
# MathJax: the one combined component the page loads, plus what it fetches at run time (fonts,
# TeX extensions, the menu and accessibility parts); the other combined bundles are not needed.
_MATHJAX_DIRS = ("input", "output", "ui", "a11y", "adaptors", "sre")
_FONT_SUFFIXES = (".woff", ".woff2", ".ttf", ".eot", ".svg")


def _stamp_ok(folder: Path) -> bool:
    stamp = folder / _STAMP
    return stamp.is_file() and json.loads(stamp.read_text()) == PINS


def _write_stamp(folder: Path) -> None:
    atomic_write_text(folder / _STAMP, json.dumps(PINS, indent=2) + "\n")


def npm_install(npm_dir: Path, npm: str = "npm") -> Path:
    """Install ``PINS`` into ``npm_dir/node_modules`` unless that exact set is already there."""
    if _stamp_ok(npm_dir) and (npm_dir / "node_modules").is_dir():
        return npm_dir / "node_modules"
    if shutil.which(npm) is None:
        raise RuntimeError(f"{npm} not found: install Node.js (npm) to fetch the book's JavaScript")
    npm_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        npm_dir / "package.json",
        json.dumps({"name": "ofdb-study-vendor", "private": True, "dependencies": PINS}, indent=2) + "\n",
    )
    # --ignore-scripts: nothing here needs a build step (font-awesome's postinstall only prints).
    cmd = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    done = subprocess.run(cmd, cwd=npm_dir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"npm install failed in {npm_dir}:\n{done.stderr.strip()}")
    _write_stamp(npm_dir)
    return npm_dir / "node_modules"


def _write_amd_paths(vendor_dir: Path) -> None:
    path = vendor_dir / "html-manager" / "amd-paths.js"
    if not path.is_file() or path.read_text() != AMD_PATHS_SOURCE:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, AMD_PATHS_SOURCE)


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def copy_assets(node_modules: Path, vendor_dir: Path) -> Path:
    """Copy what the built book loads from ``node_modules`` into ``vendor_dir`` (replacing it)."""
    if vendor_dir.exists():
        shutil.rmtree(vendor_dir)
    mj = node_modules / "mathjax" / "es5"
    _copy_file(mj / "tex-mml-chtml.js", vendor_dir / "mathjax" / "tex-mml-chtml.js")
    for name in _MATHJAX_DIRS:
        if (mj / name).is_dir():
            shutil.copytree(mj / name, vendor_dir / "mathjax" / name)
    _copy_file(node_modules / "requirejs" / "require.js", vendor_dir / "requirejs" / "require.js")
    hm = node_modules / "@jupyter-widgets" / "html-manager" / "dist"
    _copy_file(hm / "embed-amd.js", vendor_dir / "html-manager" / "embed-amd.js")
    # The bundle's CSS refers to its icon fonts relative to the script, so they travel with it.
    for font in hm.iterdir():
        if font.suffix in _FONT_SUFFIXES:
            _copy_file(font, vendor_dir / "html-manager" / font.name)
    _write_amd_paths(vendor_dir)
    for pkg in ("mathjax", "requirejs", "@jupyter-widgets/html-manager"):
        lic = node_modules / pkg / "LICENSE"
        if lic.is_file():
            _copy_file(lic, vendor_dir / "licenses" / f"{pkg.replace('/', '_')}.LICENSE")
    _write_stamp(vendor_dir)
    return vendor_dir


def static_dir(book: str | Path) -> Path:
    """The book's ``_static`` folder, where the ``*_STATIC`` paths above are resolved."""
    return Path(book) / "_static"


def ensure_vendor(book: str | Path) -> Path:
    """Make sure ``<book>/_static/vendor`` holds the pinned MathJax, RequireJS and HTML manager.

    Idempotent. The npm packages are cached in ``<book>/_build/vendor-npm``.

    Returns:
        The vendor folder.

    Raises:
        RuntimeError: npm is missing or the install failed (the first call needs the registry).
    """
    book = Path(book)
    if not (book / "_config.yml").is_file():
        raise ParamError("book", f"{book} is not a Jupyter Book folder (no _config.yml)")
    vendor_dir = static_dir(book) / "vendor"
    npm_dir = book / "_build" / "vendor-npm"
    needed = (
        vendor_dir / "mathjax" / "tex-mml-chtml.js",
        vendor_dir / "requirejs" / "require.js",
        vendor_dir / "html-manager" / "embed-amd.js",
    )
    if _stamp_ok(vendor_dir) and all(p.is_file() for p in needed):
        _write_amd_paths(vendor_dir)
        return vendor_dir
    return copy_assets(npm_install(npm_dir), vendor_dir)
