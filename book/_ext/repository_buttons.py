"""The book's repository and launch buttons, all from one setting: ``repository.url``.

``repository.url`` in ``_config.yml`` is the one setting. While it is empty, every repository
button (repository, issues, suggest edit) and every launch button (Binder, Colab) is hidden; once it
names a repository, all of them are shown. The environment variable ``OFDB_BOOK_REPOSITORY_URL``,
when set, takes the setting's place (the hosted-CI workflow sets it to the repository it runs in).

Jupyter Book would translate ``repository`` and ``launch_buttons`` into the theme's options, but
this book sets ``sphinx.config.html_theme_options`` (search bar, navigation depth), which replaces
that translation whole; so this extension reads both sections from ``_config.yml`` itself.

The study pages are notebooks executed into ``book/study/`` at build time; the repository holds
their sources in ``notebooks/``, so the launch and edit links of those pages point there.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from sphinx.application import Sphinx
from sphinx.config import Config

ENV = "OFDB_BOOK_REPOSITORY_URL"
BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button")
LAUNCH = {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"}
STUDY = "study/"  # the executed notebooks' folder in the book
SOURCES = "notebooks/"  # their sources in the repository


def book_settings(srcdir: str | os.PathLike) -> tuple[dict, dict]:
    """``(repository, launch_buttons)`` sections of the book's ``_config.yml`` ({} where absent)."""
    path = Path(srcdir) / "_config.yml"
    doc = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return dict(doc.get("repository") or {}), dict(doc.get("launch_buttons") or {})


def repository_url(repository: dict) -> str:
    """The repository URL in force: the environment variable, else ``repository.url``; "" if none."""
    return (os.environ.get(ENV) or str(repository.get("url") or "")).strip().rstrip("/")


def _configure(app: Sphinx, config: Config) -> None:
    repository, launch = book_settings(app.srcdir)
    url = repository_url(repository)
    opts = dict(config.html_theme_options or {})
    for key in ("repository_url", "path_to_docs", "repository_branch"):
        opts.pop(key, None)
    if url:
        opts["repository_url"] = url
        opts["path_to_docs"] = str(repository.get("path_to_book", "")).strip("/")
        opts["repository_branch"] = str(repository.get("branch", "main"))
    for key in BUTTONS:
        opts[key] = bool(url)
    launch.update({key: (value if url else "") for key, value in LAUNCH.items()})
    opts["launch_buttons"] = launch
    config.html_theme_options = opts


def _point_at_sources(url: str, docs: str) -> str:
    old = f"/{docs}/{STUDY}" if docs else f"/{STUDY}"
    head, sep, tail = url.rpartition(old)  # the page's path comes last in every button's URL
    return f"{head}/{SOURCES}{tail}" if sep else url


def _study_sources(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if not pagename.startswith(STUDY):
        return
    docs = str(app.config.html_theme_options.get("path_to_docs", "")).strip("/")

    def fix(buttons: list) -> None:
        for button in buttons:
            url = button.get("url")
            if isinstance(url, str) and url.startswith("http"):
                button["url"] = _point_at_sources(url, docs)
            fix(button.get("buttons", []))

    fix(context.get("header_buttons", []))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=100)  # before the theme reads its options
    app.connect("html-page-context", _study_sources, priority=900)  # after the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
