"""The README is the short front door: the two commands, one command per task, links; the manual
is the book's user guide, whose pages are all in the table of contents."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from ofdb_study.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _toc_files(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                found.add(value)
            else:
                found |= _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found |= _toc_files(item)
    return found


def test_readme_is_short_and_types_no_study_numbers():
    assert len(README.splitlines()) <= 100
    assert not re.search(r"\d(\.\d+)? ?%", README), "study or speed figures belong to the book"
    assert "make study" in README and "make test" in README


def test_every_readme_command_parses():
    commands = [ln.split("#", 1)[0] for ln in README.splitlines() if ln.startswith("python -m ofdb_study ")]
    assert len(commands) >= 7
    parser = build_parser()
    for line in commands:
        parser.parse_args(shlex.split(line)[3:])  # argparse exits on an unknown command or option


def test_readme_links_point_at_files_that_exist():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert links
    for link in links:
        if not link.startswith("http"):
            assert (REPO / link).is_file(), link


def test_every_guide_page_is_in_the_table_of_contents():
    toc = _toc_files(yaml.safe_load((REPO / "book" / "_toc.yml").read_text()))
    pages = {
        p.relative_to(REPO / "book").with_suffix("").as_posix()
        for p in (REPO / "book" / "guide").glob("*.md")
    }
    assert pages and pages <= toc
