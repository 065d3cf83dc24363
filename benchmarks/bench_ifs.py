"""IFS engine benchmarks, printed beside their anchors: the paper's construction times (ICCV 2023,
construction-time comparison) and the public renderers timed on the 2-core development machine
(ryoo-nakamura/OFDB ``make_2dofdb.py`` and ``param_search/ifs_search.py``; Anderson & Farrell's
numba renderer, catalys1/fractal-pretraining).

    python benchmarks/bench_ifs.py            # full: the 1k search with 1 and 2 workers (~2 min)
    python benchmarks/bench_ifs.py --quick    # 200 categories, extrapolated, said so
    python benchmarks/bench_ifs.py --smoke    # seconds: checks the script, not the engine's speed

Writes the rows as a result document (``--json PATH``, default ``book/bench/ifs.json``) for the
book's speed page and prints the table from that document.

Times are wall clock. Per-image figures are the best of 5 x 30 calls spread over a few seconds;
the first call of every kernel (numba compilation or cache load) is excluded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import _record

from ofdb_study.fractals import render
from ofdb_study.fractals.build import build_ofdb
from ofdb_study.fractals.png import write_png_atomic
from ofdb_study.fractals.search import search

#: ``best_ms`` settings of a full or quick run, and of ``--smoke``.
TIMING = {"repeats": 30, "rounds": 5, "pause": 0.5}
SMOKE_TIMING = {"repeats": 3, "rounds": 1, "pause": 0.0}
SMOKE_CATEGORIES = 10


def best_ms(fn, repeats: int = 30, rounds: int = 5, pause: float = 0.5) -> float:
    """Best time of ``rounds`` x ``repeats`` calls, the rounds ``pause`` seconds apart.

    A shared virtual machine has slow spells lasting seconds; spreading the calls over a few
    seconds keeps one spell from setting the figure.
    """
    fn()
    times = []
    for r in range(rounds):
        if r:
            time.sleep(pause)
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return 1e3 * min(times)


COLUMNS = ["measurement", "ours", "anchor (paper; public code timed here)", "note"]
ROWS: list[list[str]] = []


def row(what: str, ours: str, anchor: str, note: str = "") -> None:
    """Add a row of the result document (the table is printed from the document at the end)."""
    print(f"measured: {what}", file=sys.stderr)
    ROWS.append([what, ours, anchor, note])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="search 200 categories and extrapolate")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help=f"seconds: {SMOKE_CATEGORIES} categories, one round of 3 calls per image, one worker "
        "unless --workers says otherwise (checks the script; the figures are not the engine's speed)",
    )
    ap.add_argument("--workers", type=int, nargs="+", default=None, help="worker counts (default 1 2)")
    _record.add_json_option(ap, "ifs")
    args = ap.parse_args()
    load = os.getloadavg()
    workers = args.workers or ([1] if args.smoke else [1, 2])
    n_search = SMOKE_CATEGORIES if args.smoke else 200 if args.quick else 1000
    timing = SMOKE_TIMING if args.smoke else TIMING

    def best(fn) -> float:
        return best_ms(fn, **timing)

    # Per-image figures first: they are per-core figures, and on the shared development machine
    # those taken right after a minute of both cores at full load came out up to 1.5x slower.
    cat = search(1, workers=1).categories[0]  # also compiles / loads the cache

    ms = best(lambda: render.render(cat))
    row(
        "OFDB image in memory (362 px, 200k points, patch)",
        f"{ms:.2f} ms",
        "public generator 3.2 s (with PNG)",
        f"{200_000 / ms / 1e3:.1f} M points/s",
    )
    img = render.render(cat)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        ms_png = best(lambda: write_png_atomic(path, render.render(cat)))
        row(
            "OFDB image written as PNG",
            f"{ms_png:.2f} ms",
            "public generator 3.2 s",
            f"PNG alone {best(lambda: write_png_atomic(path, img)):.2f} ms (PIL ~9 ms, OpenCV ~1.3 ms)",
        )
    ms_pt = best(lambda: render.render(cat, size=256, n_points=100_000, mode="point", a_weight=1.0))
    row(
        "256 px, 100k points, point mode",
        f"{ms_pt:.2f} ms",
        "Anderson & Farrell numba 5.3 ms; tight loop 0.23 ms",
        f"{100_000 / ms_pt / 1e3:.1f} M points/s",
    )
    pts = render.points(cat)
    ms_draw = best(lambda: render.draw(pts, mask_seed=7))
    row(
        "random-pattern re-draw of cached points (362 px, patch)",
        f"{ms_draw:.2f} ms",
        "-",
        "per training sample",
    )
    ms_cand = best(lambda: render.render(cat, size=512, n_points=100_000, mode="point", a_weight=1.0))
    row("one search candidate rendered alone (512 px, 100k)", f"{ms_cand:.2f} ms", "public code 80 ms", "")

    scale = 1000 / n_search
    for w in workers:
        t = time.perf_counter()
        result = search(n_search, workers=w)
        took = time.perf_counter() - t
        row(
            f"search, FractalDB-1k categories, {w} worker(s)",
            f"{took * scale:.1f} s",
            "public code ~57 min (42,655 candidates x 80 ms); plain numba loop ~90 s; paper 2.37 h",
            f"{result.n_candidates} candidates" + (f", extrapolated from {n_search}" if scale != 1 else ""),
        )
    n_build = n_search
    for w in workers:
        with tempfile.TemporaryDirectory() as tmp:
            params = Path(tmp) / "p"
            params.mkdir()
            from ofdb_study.fractals.ifs import write_csv

            for i, c in enumerate(result.categories[:n_build]):
                write_csv(params / f"{i:05d}.csv", c)
            t = time.perf_counter()
            build_ofdb(Path(tmp) / "ofdb", min(n_build, len(result.categories)), params=params, workers=w)
            took = (time.perf_counter() - t) * 1000 / min(n_build, len(result.categories))
        row(
            f"OFDB-1k render + PNG, {w} worker(s)",
            f"{took:.1f} s",
            "paper 0.41 h (1,476 s)",
            f"extrapolated from {n_build}" if n_build != 1000 else "",
        )
    notes = [
        f"Wall-clock times; per-image figures are the best of {timing['rounds']} x {timing['repeats']} "
        "calls after a warm-up call.",
        "Anchors: the paper's construction hours and the public renderers timed on a 2-core "
        "development machine, one core (ofdb-facts sections 5 and 9).",
    ]
    if args.smoke:
        notes.append(
            f"Smoke run (--smoke): the search and OFDB-1k rows are extrapolated from {n_search} "
            "categories to 1,000; a check of the script, not figures of the engine."
        )
    elif args.quick:
        notes.append(
            f"Quick run (--quick): the search and OFDB-1k rows are extrapolated from {n_search} "
            "categories to 1,000."
        )
    notes += [*args.note, _record.load_note(load)]
    _record.record(args.json, COLUMNS, ROWS, notes)


if __name__ == "__main__":
    main()
