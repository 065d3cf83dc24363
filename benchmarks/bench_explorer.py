"""Explorer latency: one live update (chaos game, search-filter test, draw, PNG, widget) at 256 px.

    python benchmarks/bench_explorer.py [--n 15]

Prints the median and the range of ``Explorer.measure_latency`` beside the explorer's budget of
50 ms per update, in the three draw modes, after the numba warm-up. No kernel or browser needed.
"""

from __future__ import annotations

import argparse
import statistics

from ofdb_study import explorer as ex

BUDGET_MS = 50.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=15, help="updates timed per draw mode")
    args = ap.parse_args()
    ex.warm_up()
    view = ex.ViewSettings(size=256, n_points=100_000, a_weight=0.2)
    e = ex.Explorer(ex.ExplorerModel.from_ifs(ex.random_ifs(3), "random 3", view))
    print("| update at 256 px, 100k points | median | min - max | budget |")
    print("|---|---|---|---|")
    for mode in ("point", "patch", "color"):
        e.model.set_view(mode=mode)
        lat = e.measure_latency(n=args.n)
        print(
            f"| {mode} | {statistics.median(lat):.1f} ms | {min(lat):.1f} - {max(lat):.1f} ms | {BUDGET_MS:.0f} ms |"
        )


if __name__ == "__main__":
    main()
