"""The paper this package reproduces and the package's own licence, for model cards and READMEs.

``CITATION.cff`` at the repository root says the same for citation tools; a test checks that the
two agree.
"""

from __future__ import annotations

PAPER_TITLE = "Pre-training Vision Transformers with Very Limited Synthesized Images"
PAPER_AUTHORS = (
    ("Ryo", "Nakamura"),
    ("Hirokatsu", "Kataoka"),
    ("Sora", "Takashima"),
    ("Edgar Josafat", "Martinez-Noriega"),
    ("Rio", "Yokota"),
    ("Nakamasa", "Inoue"),
)
PAPER_VENUE = "IEEE/CVF International Conference on Computer Vision (ICCV)"
PAPER_YEAR = 2023
PAPER_ARXIV = "2307.14710"
PACKAGE_LICENSE = "MIT"

BIBTEX = f"""@inproceedings{{nakamura2023ofdb,
  title     = {{{PAPER_TITLE}}},
  author    = {{{" and ".join(f"{last}, {first}" for first, last in PAPER_AUTHORS)}}},
  booktitle = {{Proceedings of the {PAPER_VENUE}}},
  year      = {{{PAPER_YEAR}}},
  eprint    = {{{PAPER_ARXIV}}},
  archivePrefix = {{arXiv}}
}}"""


def paper_line() -> str:
    """One line: authors, title, venue, year and arXiv id."""
    names = ", ".join(f"{first} {last}" for first, last in PAPER_AUTHORS)
    return f'{names}. "{PAPER_TITLE}." ICCV {PAPER_YEAR}. arXiv:{PAPER_ARXIV}.'
