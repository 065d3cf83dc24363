"""The paper's tables (``results``) and the small statistics the notebooks rest on (``stats``,
re-exported by ``results``): t quantiles, confidence intervals, summaries, the claims' verdicts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ofdb_study.analysis import paper as results
from ofdb_study.analysis import stats


def test_paper_tables_hold_the_published_values():
    t2 = results.table2().set_index("pretrain")
    assert t2.loc["2D-OFDB-1k w/ Aug", "C100"] == 85.3 and t2.loc["FractalDB-1k", "avg"] == 87.1
    # each row's average is the mean of its seven data sets, to the paper's rounding
    for _, row in t2.iterrows():
        assert abs(row[list(results.TABLE2_DATASETS)].mean() - row["avg"]) < 0.1, row.name
    c = results.construction_table().set_index("dataset")
    assert (abs(c["search_h"] + c["render_h"] - c["total_h"]) < 1e-9).all()
    assert math.isnan(results.table1().set_index("augment").loc["rotation", "ofdb3d"])
    assert results.table3().set_index("pretrain").loc["2D-OFDB-21k", "gpu_hours"] == 1088
    assert set(results.later_work()["method"]) == {"VisualAtom-1k", "1p-frac"}


@pytest.mark.parametrize("df,q", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantile(df, q):
    assert abs(stats.t_quantile(0.975, df) - q) < 1e-3


def test_summaries_and_claims():
    rows = []
    for seed, (o, f, s, p) in enumerate([(70, 65, 50, 72), (71, 66, 51, 73), (72, 64, 52, 74)]):
        rows += [
            {"row": "ofdb", "pretrain": "ofdb", "augment": "default", "seed": seed, "top1_best": o},
            {"row": "fractaldb", "pretrain": "fractaldb", "augment": "default", "seed": seed, "top1_best": f},
            {"row": "scratch", "pretrain": "scratch", "augment": None, "seed": seed, "top1_best": s},
            {"row": "ofdb+pattern", "pretrain": "ofdb", "augment": "pattern", "seed": seed, "top1_best": p},
        ]
    runs = pd.DataFrame(rows)
    summary = stats.summarize(runs, ["row", "pretrain", "augment"])
    ofdb = summary.set_index("row").loc["ofdb"]
    assert ofdb["n"] == 3 and ofdb["mean"] == 71 and abs(ofdb["half"] - 4.3027 * 1 / math.sqrt(3)) < 1e-3
    t1 = results.augmentation_vs_table1(summary).set_index("augment")
    assert t1.loc["pattern", "ours_delta"] == 2 and abs(t1.loc["pattern", "paper_delta"] - 1.3) < 1e-9
    t2 = results.pretraining_vs_table2(summary).set_index("paper_row")
    assert t2.loc["FractalDB-1k", "ours_gap"] == 14 and "2D-OFDB-1k w/ Aug" in t2.index
    # the claims' tests live in test_claims.py; their table shows every claim that ran
    from ofdb_study.analysis import claims

    runs["top1_last"] = runs["top1_best"]
    table = results.claims_table(claims.evaluate(runs))
    assert len(table) == 3 and set(table.columns) >= {"claim", "paper", "ours", "verdict"}
    assert stats.format_ci(84.04, math.nan) == "84.0"
