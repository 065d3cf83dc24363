"""Test settings and session fixtures shared by every test file.

Settings: offline hubs, no progress bars, a headless matplotlib, and a throw-away cache for the
exact category search (never ~/.cache). Fixtures, each built once per session:

* ``searched``: the first ``SEARCHED`` categories of the exact search (seed 1), written where the
  training engine caches its search, so training tests reuse it too.
* ``study_book``: the study notebooks run at ``smoke`` into a copy of the book, and the book built
  (``test_notebooks.py`` and the browser test ``test_book.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The searched-category cache of the training engine goes to a throw-away folder, not ~/.cache.
os.environ.setdefault("OFDB_STUDY_CACHE", tempfile.mkdtemp(prefix="ofdb-study-cache-"))

REPO = Path(__file__).resolve().parent.parent
#: Categories in the session's search: enough for every test (the published test vector has 20).
SEARCHED = 20
#: Where the engine caches the exact search (``fractals.search.first_categories`` without params).
SEARCH_DIR = Path(os.environ["OFDB_STUDY_CACHE"]) / "search-seed1"


@pytest.fixture(scope="session")
def searched():
    """``SearchResult`` of the first ``SEARCHED`` categories of the exact search (seed 1)."""
    from ofdb_study.fractals.search import search_to_dir

    return search_to_dir(SEARCH_DIR, SEARCHED, workers=2, resume=True)


@pytest.fixture(scope="session")
def fashion(tmp_path_factory) -> str:
    """A tiny Fashion-MNIST in the published IDX format (``fake_data.make_fashion``): its folder."""
    from fake_data import make_fashion

    return str(make_fashion(tmp_path_factory.mktemp("fm") / "fashion-mnist"))


@pytest.fixture(scope="session")
def searched_dir(searched) -> Path:
    """The folder of ``searched``: ``NNNNN.csv`` per category and the search state. Read only."""
    return SEARCH_DIR


@dataclass
class StudyBook:
    root: Path
    study_dir: Path
    html: Path
    data_root: Path
    run_root: Path


def _write_finetune_pilot(path: Path) -> None:
    """A fine-tuning pilot record for ``smoke`` (made up: two seeds, two arms, two lengths), so the
    results page's pilot cells run in the tests as they do at ``mini``."""
    rows = [
        {
            "arm": arm,
            "seed": seed,
            "steps": steps,
            "top1": top1 + lead,
            "final_loss": loss,
            "wall_seconds": 1.0,
        }
        for steps, top1, loss in ((2, 20.0, 2.2), (4, 25.0, 2.0))
        for seed in (100, 101)
        for arm, lead in (("scratch", 0.0), ("ofdb", 0.25))
    ]
    doc = {
        "profile": "smoke",
        "seeds": [100, 101],
        "machine": "a test fixture, not a measurement",
        "measured": "2026-12-07",
        "command": "tests/conftest.py (a made-up record)",
        "overrides": {},
        "wall_seconds": 8.0,
        "finetune": rows,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _smoke_book(root: Path, *, train: bool = True, profile: str = "smoke") -> Path:
    """Copy the book to ``root/book``, run every study notebook at ``profile`` (``smoke``, or
    ``smoke-readout`` for the readout study) into it (data and runs under ``root``; ``train=False``
    only reads finished runs) and build it; returns the book folder."""
    from ofdb_study import study

    book = root / "book"
    shutil.copytree(REPO / "book", book, ignore=shutil.ignore_patterns("_build", "study"))
    _write_finetune_pilot(book / "pilot" / "finetune-smoke-fixture.json")
    study.run_study(
        profile,
        out=book / "study",
        notebooks_dir=REPO / "notebooks",
        data_root=str(root / "data"),
        run_root=str(root / "runs"),
        train=train,
        log=lambda line: None,
    )
    study.build_book(book)
    return book


@pytest.fixture(scope="session")
def smoke_book_in():
    """``_smoke_book``: the smoke study's book built under a folder of the test's choosing."""
    return _smoke_book


@pytest.fixture(scope="session")
def study_book(tmp_path_factory) -> StudyBook:
    """Every study notebook run at ``smoke`` into a copy of the book, then the book built.

    Everything it writes lives under a temporary folder, so the repo's ``runs/``, ``data/`` and
    ``book/study/`` are never touched.
    """
    from ofdb_study.explorer.web import ensure_book_assets
    from ofdb_study.study.vendor import ensure_vendor

    try:
        ensure_vendor(REPO / "book")
        ensure_book_assets(REPO / "book", log=None)  # the explorer's data, searched once
    except RuntimeError as exc:  # first use needs the npm registry
        pytest.skip(f"book assets unavailable: {exc}")
    root = tmp_path_factory.mktemp("study")
    book = _smoke_book(root)
    return StudyBook(root, book / "study", book / "_build" / "html", root / "data", root / "runs")
