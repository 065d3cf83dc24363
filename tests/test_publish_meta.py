"""The package's licence and citation, the book's repository buttons, and the hosted-CI workflow."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from ofdb_study.config import citation

REPO = Path(__file__).resolve().parent.parent
CFF_REQUIRED = ("cff-version", "message", "title", "authors")
REFERENCE_REQUIRED = ("type", "title", "authors")


def _project(key: str) -> str:
    """A ``[project]`` string of pyproject.toml (``license`` is ``{ text = "..." }``); no tomllib in 3.10."""
    text = (REPO / "pyproject.toml").read_text()
    return re.search(rf'^{key} = (?:\{{ text = )?"([^"]+)"', text, flags=re.M).group(1)


def test_licence_matches_pyproject_and_data_terms_sit_beside_it():
    text = (REPO / "LICENSE").read_text()
    assert _project("license") == citation.PACKAGE_LICENSE == "MIT"
    assert text.startswith("MIT License\n") and "the ofdb-study authors" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    data = (REPO / "DATA_LICENSE.md").read_text()
    assert "CC BY 4.0" in data and "cite the paper" in data.lower() and citation.PAPER_ARXIV in data


def test_citation_cff_is_valid_and_agrees_with_the_package():
    doc = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert doc["cff-version"] == "1.2.0"
    assert all(doc.get(k) for k in CFF_REQUIRED), [k for k in CFF_REQUIRED if not doc.get(k)]
    assert all("name" in a or "family-names" in a for a in doc["authors"])
    assert doc["version"] == _project("version") and doc["license"] == _project("license")
    paper = doc["references"][0]
    assert all(paper.get(k) for k in REFERENCE_REQUIRED)
    assert paper["title"] == citation.PAPER_TITLE and paper["year"] == citation.PAPER_YEAR
    names = [(a["given-names"], a["family-names"]) for a in paper["authors"]]
    assert names == list(citation.PAPER_AUTHORS)
    assert citation.PAPER_ARXIV in paper["doi"] and "ICCV" in paper["collection-title"]


# ---- the book's buttons ------------------------------------------------------------------------
def _tiny_book(tmp_path: Path) -> Path:
    """The book's _config.yml and _ext with one page and one notebook under study/."""
    book = tmp_path / "book"
    (book / "study").mkdir(parents=True)
    shutil.copy(REPO / "book" / "_config.yml", book)
    shutil.copytree(REPO / "book" / "_ext", book / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: study/00_demo\n")
    (book / "intro.md").write_text("# Intro\n\nA page.\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo"), nbformat.v4.new_code_cell("1 + 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "study" / "00_demo.ipynb")
    return book


def _links(book: Path, url: str | None) -> dict[str, set[str]]:
    env = {k: v for k, v in os.environ.items() if k != "OFDB_BOOK_REPOSITORY_URL"}
    if url:
        env["OFDB_BOOK_REPOSITORY_URL"] = url
    shutil.rmtree(book / "_build", ignore_errors=True)
    exe = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run(
        [str(exe), "build", str(book), "-W", "-n", "--keep-going"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    html = book / "_build" / "html"
    return {
        page: set(re.findall(r'href="(https?://[^"]+)"', (html / page).read_text()))
        for page in ("intro.html", "study/00_demo.html")
    }


def test_book_buttons_follow_the_one_repository_setting(tmp_path):
    config = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
    assert config["repository"]["url"] == ""  # no public repository yet: buttons hidden
    book = _tiny_book(tmp_path)
    hidden = _links(book, None)
    assert hidden == {"intro.html": set(), "study/00_demo.html": set()}
    repo = "https://github.com/example/ofdb-study"
    shown = _links(book, repo)
    assert {repo, f"{repo}/edit/main/book/intro.md"} <= shown["intro.html"]
    study = shown["study/00_demo.html"]
    # the study pages' launch and edit links point at the committed sources in notebooks/
    assert f"{repo}/edit/main/notebooks/00_demo.ipynb" in study
    assert (
        "https://mybinder.org/v2/gh/example/ofdb-study/main?urlpath=lab/tree/notebooks/00_demo.ipynb" in study
    )
    assert (
        "https://colab.research.google.com/github/example/ofdb-study/blob/main/notebooks/00_demo.ipynb"
        in study
    )
    # the setting in _config.yml is read the same way (the variable only takes its place)
    sys.path.insert(0, str(book / "_ext"))
    try:
        import repository_buttons as rb
    finally:
        sys.path.pop(0)
    assert rb.repository_url(rb.book_settings(book)[0]) == ""
    text = (book / "_config.yml").read_text().replace('  url: ""', f"  url: {repo}/")
    (book / "_config.yml").write_text(text)
    repository, launch = rb.book_settings(book)
    assert rb.repository_url(repository) == repo and repository["path_to_book"] == "book"
    assert launch["notebook_interface"] == "jupyterlab"


# ---- the hosted-CI workflow ----------------------------------------------------------------------
def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M))


def _check_command(line: str, targets: set[str]) -> None:
    words = shlex.split(line)
    if words[0] == "make":
        goals = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        assert goals and set(goals) <= targets, f"{line!r}: not Makefile targets ({sorted(targets)})"
        return
    script = REPO / words[0]
    assert script.is_file() and os.access(script, os.X_OK), f"{line!r}: neither make nor a script here"


def test_workflow_builds_the_smoke_book_with_the_makefiles_steps():
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in triggers
    build = doc["jobs"]["build"]
    uses = [s["uses"].split("@")[0] for s in build["steps"] if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-node", "actions/upload-pages-artifact"]
    assert build["container"].startswith("python:3.11")
    runs = [s["run"] for s in build["steps"] if "run" in s]
    lines = [
        ln.strip() for r in runs for ln in r.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    targets = _make_targets()
    for line in lines:
        _check_command(line, targets)
    assert lines == ["make setup", "make study PROFILE=smoke"]
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "book/_build/html"
    assert "--book" in (REPO / "Makefile").read_text().split("\nstudy:", 1)[1].split("\n\n")[0]
    deploy = doc["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


@pytest.mark.parametrize("line", ["make nonsense", "rm -rf /", "python -c 1"])
def test_workflow_check_rejects_other_commands(line):
    with pytest.raises(AssertionError):
        _check_command(line, _make_targets())
