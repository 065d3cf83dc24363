"""Explorer latency: one live update (chaos game, search-filter test, draw, PNG, widget) at 256 px.

    python benchmarks/bench_explorer.py [--n 15]

Prints the median and the range of ``Explorer.measure_latency`` beside the explorer's budget of
50 ms per update, in the three draw modes, after the numba warm-up. No kernel or browser needed.
The table is also written as a result document (``--json PATH``, default
``book/bench/explorer.json``) for the book's speed page.
"""

from __future__ import annotations

import argparse
import os
import statistics

import _record

from ofdb_study import explorer as ex

BUDGET_MS = 50.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=15, help="updates timed per draw mode")
    _record.add_json_option(ap, "explorer")
    args = ap.parse_args()
    load = os.getloadavg()
    ex.warm_up()
    view = ex.ViewSettings(size=256, n_points=100_000, a_weight=0.2)
    e = ex.Explorer(ex.ExplorerModel.from_ifs(ex.random_ifs(3), "random 3", view))
    print("| update at 256 px, 100k points | median | min - max | budget |")
    print("|---|---|---|---|")
    rows = []
    for mode in ("point", "patch", "color"):
        e.model.set_view(mode=mode)
        lat = e.measure_latency(n=args.n)
        print(
            f"| {mode} | {statistics.median(lat):.1f} ms | {min(lat):.1f} - {max(lat):.1f} ms | {BUDGET_MS:.0f} ms |"
        )
        rows.append(
            [
                mode,
                f"{statistics.median(lat):.1f} ms",
                f"{min(lat):.1f} - {max(lat):.1f} ms",
                f"{BUDGET_MS:.0f} ms",
            ]
        )
    notes = [
        f"{args.n} updates per draw mode at 256 px and 100,000 points, after the numba warm-up.",
        "Anchor: the explorer's own budget of 50 ms per update (no figure from the paper).",
        *args.note,
        _record.load_note(load),
    ]
    _record.record(args.json, ["draw mode", "median", "min - max", "budget"], rows, notes)


if __name__ == "__main__":
    main()
