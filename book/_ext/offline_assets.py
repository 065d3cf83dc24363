"""Keep the built book offline: no vendor file on every page, no CDN URL anywhere.

Jupyter Book adds every ``.js``/``.css`` found under ``_static`` to ``html_js_files`` /
``html_css_files``, which would put MathJax's hundred components and the widget bundle on every
page. The vendor files are loaded where they are needed instead (``mathjax_path`` on pages with
maths, ``nb_ipywidgets_js`` on pages with widgets), and the explorer's ES modules only by its own
page (as plain scripts elsewhere they would not even parse), so this extension drops both folders
from both lists, and refuses any remote URL left in the configuration.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

#: Folders under ``_static`` whose files only the pages that need them load.
LOCAL_ONLY = ("vendor/", "explorer/")


def _path(entry) -> str:
    return entry[0] if isinstance(entry, (tuple, list)) else str(entry)


def _is_remote(path: str) -> bool:
    return "://" in path or path.startswith("//")


def _clean(app: Sphinx, config: Config) -> None:
    for name in ("html_js_files", "html_css_files"):
        entries = [e for e in getattr(config, name) if not _path(e).startswith(LOCAL_ONLY)]
        remote = [_path(e) for e in entries if _is_remote(_path(e))]
        if remote:
            raise ConfigError(f"{name} names remote files {remote}; serve them from _static/vendor")
        setattr(config, name, entries)
    for path in [config.mathjax_path, *config.nb_ipywidgets_js]:
        if path and _is_remote(path):
            raise ConfigError(
                f"{path} is remote; run `python -m ofdb_study vendor --book book` and point at _static/vendor"
            )


def _drop_thebe(app: Sphinx, env, docnames) -> None:
    # sphinx-thebe (always on in Jupyter Book) writes an inline script holding the thebe CDN URL on
    # every page, even with thebe switched off. This book has no live kernel; drop both its scripts.
    def keep(js) -> bool:
        name = getattr(js, "filename", "") or ""
        body = (getattr(js, "attributes", {}) or {}).get("body", "") or ""
        return "thebe" not in name and "THEBE_JS_URL" not in body

    builder = getattr(app, "builder", None)
    for attr in ("_js_files", "script_files"):  # the name changed in Sphinx 7.2
        files = getattr(builder, attr, None) if builder is not None else None
        if isinstance(files, list):
            files[:] = [js for js in files if keep(js)]
    app.registry.js_files[:] = [
        (name, attrs)
        for name, attrs in app.registry.js_files
        if "thebe" not in (name or "") and "THEBE_JS_URL" not in str(attrs.get("body", ""))
    ]


#: The theme's Font Awesome script swaps every ``<i class="fa ...">`` for an ``<svg>``. The widgets'
#: Play button looks its icon up as an ``<i>`` whenever its value changes; without it the view throws,
#: and the exception stops the other listeners of a linked slider (a static page stops turning).
#: "nest" puts the svg inside the ``<i>`` instead. It must be set before the theme's script loads.
FONTAWESOME_CONFIG = (
    "window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {autoReplaceSvg: 'nest'});"
)


def setup(app: Sphinx) -> dict:
    app.add_js_file(None, body=FONTAWESOME_CONFIG, priority=100)
    app.connect("config-inited", _clean, priority=900)
    app.connect("env-before-read-docs", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
