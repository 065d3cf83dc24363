"""The readout study's book at ``smoke-readout``: every notebook runs, the book builds, and the
results page shows the assay (calibration and gate) before the claims, in tables for people."""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="module")
def readout_site(tmp_path_factory, smoke_book_in):
    from conftest import REPO

    from ofdb_study.explorer.web import ensure_book_assets
    from ofdb_study.study.vendor import ensure_vendor

    try:
        ensure_vendor(REPO / "book")
        ensure_book_assets(REPO / "book", log=None)
    except RuntimeError as exc:  # first use needs the npm registry
        pytest.skip(f"book assets unavailable: {exc}")
    book = smoke_book_in(tmp_path_factory.mktemp("readout"), profile="smoke-readout")
    return book / "_build" / "html"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_results_page_shows_the_assay_before_the_claims(readout_site):
    page = _text((readout_site / "results.html").read_text())
    assert "The assay gate" in page and "positive control" in page and "mimetic init" in page
    assert page.index("The assay") < page.index("The claims")
    for pixel in ("raw pixels, logistic regression", "PCA of the pixels", "random projection of the pixels"):
        assert pixel in page
    assert "NaN" not in page and " nan " not in page


def test_the_readout_pages_show_the_2x2_the_gate_and_the_history(readout_site):
    two = _text((readout_site / "study" / "02_instances_vs_augmentation.html").read_text())
    assert "minimal augmentation" in two and "paper's augmentation" in two and "IFS weight rows" in two
    four = (readout_site / "study" / "04_results.html").read_text()
    text = _text(four)
    assert "gate" in text and "Earlier designs" in text and "What this study measures" in text
    assert "NaN" not in text
    assert 'class="blank level0"' not in four, "tables are shown without their index column"
