"""Do the two pipelines give the same study? Pre-train (and fine-tune) a row with each, several seeds.

    python benchmarks/pipeline_check.py --profile mini --rows ofdb ofdb+pattern --seeds 0 1 2 3

For every row and seed it pre-trains with ``--pipeline loader`` and with ``--pipeline batched``
(the same sample keys, other random draws), fine-tunes each on the profile's downstream set, and
prints per pipeline the own-task top-1 and the downstream top-1 (mean and standard deviation over
seeds) with the paired difference's 95 % interval: the two pipelines agree when it covers 0 and is
narrow next to the seed spread. The runs live in a temporary folder and are removed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ofdb_study.analysis.stats import mean_ci  # noqa: E402
from ofdb_study.config import ROWS  # noqa: E402
from ofdb_study.study import plan as experiments  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini")
    p.add_argument("--rows", nargs="+", default=["ofdb"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="ofdb-pipelines-"))
    try:
        for row in args.rows:
            data, augment = ROWS[row]
            table = {}
            for pipeline in ("loader", "batched"):
                own, down = [], []
                for seed in args.seeds:
                    pre = experiments.pretrain_spec(
                        args.profile,
                        data,
                        augment,
                        seed=seed,
                        root=root / pipeline,
                        row=row,
                        pipeline=pipeline,
                    )
                    own.append(experiments.train_spec(pre)["top1_last"])
                    fine = experiments.finetune_spec(args.profile, pre, seed, root / pipeline)
                    down.append(experiments.train_spec(fine)["top1_last"])
                table[pipeline] = (np.array(own), np.array(down))
                print(
                    f"{row} {pipeline:8s} own task {np.mean(own):5.1f} +- {np.std(own, ddof=1):4.1f} %, "
                    f"downstream {np.mean(down):5.1f} +- {np.std(down, ddof=1):4.1f} %  ({len(own)} seeds)",
                    flush=True,
                )
            for k, name in enumerate(("own task", "downstream")):
                diff = table["batched"][k] - table["loader"][k]
                mean, low, high = mean_ci(diff.tolist())
                print(
                    f"{row} batched - loader, {name}: {mean:+.2f} [{low:+.2f}, {high:+.2f}] (paired by seed)"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
