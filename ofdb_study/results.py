"""The paper's published numbers as data, and the small statistics the study reports.

Every table of the paper that the study compares against (facts sections 5 and 8) is built here
from literal rows, so the book never types a published number by hand. The helpers turn a table
of runs (one row per seed) into mean and 95 % t-interval, and put our numbers beside the paper's.

Nothing here imports torch: the results notebook and the book stay light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ParamError

# ----------------------------------------------------------------------------------------------
# The paper's tables (ICCV 2023, arXiv 2307.14710). Top-1 in percent, times in hours.

#: Construction cost (facts section 5), hours on the paper's machine.
CONSTRUCTION_ROWS = [
    ("FractalDB-1k", 2.37, 16.86, 19.23),
    ("2D-OFDB-1k", 2.37, 0.41, 2.78),
    ("ExFractalDB-1k", 0.53, 5.43, 5.96),
    ("3D-OFDB-1k", 0.53, 0.04, 0.57),
]

#: Table 1: CIFAR-100 fine-tuning after OFDB-1k pre-training, one row per augmentation.
#: The keys are the study's augmentation names; ``None`` where the paper has no entry.
TABLE1_ROWS = [
    ("default", "default only", 84.0, 83.8),
    ("fluctuation", "+ IFS parameter fluctuation", 81.6, None),
    ("rotation", "+ rotation", 84.1, None),
    ("pattern", "+ random pattern", 85.3, 84.7),
    ("texture", "+ random texture", 84.8, 85.1),
    ("both", "+ both", 84.3, 85.1),
]

TABLE2_DATASETS = ("C10", "C100", "Cars", "Flowers", "VOC12", "P30", "IN100")
#: Table 2: fine-tuning on seven data sets and their average.
TABLE2_ROWS = [
    ("scratch", "-", 78.3, 57.7, 11.6, 77.1, 64.8, 75.7, 73.2, 62.6),
    ("FractalDB-1k", "1M", 96.8, 81.6, 86.0, 98.3, 80.6, 78.4, 88.3, 87.1),
    ("RCDB-1k", "1M", 97.0, 82.2, 86.5, 98.9, 80.9, 79.7, 88.5, 87.6),
    ("ImageNet-1k, 1 image per class", "1k", 94.3, 76.9, 57.3, 94.8, 73.8, 78.2, 84.3, 79.9),
    ("2D-OFDB-1k", "1k", 96.9, 84.0, 84.5, 97.1, 79.9, 79.9, 88.0, 87.2),
    ("2D-OFDB-1k w/ Aug", "1k", 97.2, 85.3, 87.6, 98.3, 81.4, 80.4, 89.5, 88.5),
    ("3D-OFDB-1k", "1k", 97.1, 83.8, 85.5, 98.4, 80.8, 80.0, 89.1, 87.8),
    ("3D-OFDB-1k w/ Aug", "1k", 97.0, 84.7, 85.6, 98.3, 81.2, 79.8, 88.9, 87.9),
]

#: Table 3: ImageNet-1k fine-tuning after 21k-category pre-training (ViT-B cost columns).
TABLE3_ROWS = [
    ("scratch", "-", 72.6, 79.8, None, None, None),
    ("ImageNet-21k", "14M", 74.1, 81.8, 3657, 8192, 300_000),
    ("FractalDB-21k", "21M", 73.0, 81.8, 5120, 8192, 300_000),
    ("ExFractalDB-21k", "21M", 73.6, 82.7, 5120, 8192, 300_000),
    ("RCDB-21k", "21M", 73.1, 82.4, 5120, 8192, 300_000),
    ("ImageNet-21k, 1 image per class", "21k", 71.0, 81.1, 1132, 1024, 300_000),
    ("2D-OFDB-21k", "21k", 73.8, 82.2, 1088, 1024, 300_000),
    ("3D-OFDB-21k", "21k", 73.7, 82.7, 1088, 1024, 300_000),
]

#: Higher bars from later work (facts section 8, last paragraph).
LATER_WORK_ROWS = [
    ("VisualAtom-1k", "1M", "avg", 89.1),
    ("1p-frac", "1k", "C100", 84.2),
]

#: Which paper row each of the study's pre-training rows stands for (Table 2 naming).
STUDY_TO_TABLE2 = {
    "scratch": "scratch",
    "fractaldb": "FractalDB-1k",
    "ofdb": "2D-OFDB-1k",
    "ofdb-aug": "2D-OFDB-1k w/ Aug",
    "ofdb3d": "3D-OFDB-1k",
}


def construction_table() -> pd.DataFrame:
    """The paper's construction cost: columns dataset, search_h, render_h, total_h."""
    return pd.DataFrame(CONSTRUCTION_ROWS, columns=["dataset", "search_h", "render_h", "total_h"])


def table1() -> pd.DataFrame:
    """Table 1: columns augment, label, ofdb2d, ofdb3d (CIFAR-100 top-1; NaN where absent)."""
    df = pd.DataFrame(TABLE1_ROWS, columns=["augment", "label", "ofdb2d", "ofdb3d"])
    return df.astype({"ofdb2d": float, "ofdb3d": float})


def table2() -> pd.DataFrame:
    """Table 2: columns pretrain, images, one per data set (``TABLE2_DATASETS``) and avg."""
    return pd.DataFrame(TABLE2_ROWS, columns=["pretrain", "images", *TABLE2_DATASETS, "avg"])


def table3() -> pd.DataFrame:
    """Table 3: columns pretrain, images, vit_t, vit_b, gpu_hours, batch, iterations."""
    df = pd.DataFrame(
        TABLE3_ROWS, columns=["pretrain", "images", "vit_t", "vit_b", "gpu_hours", "batch", "iterations"]
    )
    return df.astype({"gpu_hours": "Int64", "batch": "Int64", "iterations": "Int64"})


def later_work() -> pd.DataFrame:
    """Later work's bars: columns method, images, metric (``avg`` of Table 2 or ``C100``), top1."""
    return pd.DataFrame(LATER_WORK_ROWS, columns=["method", "images", "metric", "top1"])


def paper_bars(metric: str = "C100") -> pd.DataFrame:
    """Table 2's column ``metric`` plus the later-work bar on the same metric: method, top1, source."""
    if metric not in (*TABLE2_DATASETS, "avg"):
        raise ParamError("metric", f"must be one of {', '.join((*TABLE2_DATASETS, 'avg'))}, got {metric!r}")
    t2 = table2()
    rows = [(p, float(v), "Table 2") for p, v in zip(t2["pretrain"], t2[metric])]
    later = later_work()
    for _, r in later[later["metric"] == metric].iterrows():
        rows.append((r["method"], float(r["top1"]), "later work"))
    return pd.DataFrame(rows, columns=["method", "top1", "source"])


# ----------------------------------------------------------------------------------------------
# Statistics over seeds.


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast only on one side of the mean; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student-t cumulative distribution function with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: float) -> float:
    """Student-t quantile, by bisection on ``t_cdf`` (scipy is not a dependency of the package)."""
    if not 0.0 < q < 1.0:
        raise ParamError("q", f"must be strictly between 0 and 1, got {q}")
    if df <= 0:
        raise ParamError("df", f"must be positive, got {df}")
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of independent runs (seeds).

    Args:
        values: one number per seed; NaNs are ignored.
        level: confidence level of the interval.

    Returns:
        ``(mean, low, high)``; with one value the interval is undefined and both ends are NaN.
    """
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + level / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def summarize(
    df: pd.DataFrame, by: str | Sequence[str], value: str = "top1_best", level: float = 0.95
) -> pd.DataFrame:
    """Mean and t-interval of ``value`` over the seeds of each group.

    Args:
        df: one row per run, e.g. from ``experiments.instances_vs_augmentation``.
        by: the grouping column(s); the groups keep their first-appearance order.
        value: the column to summarise.
        level: confidence level.

    Returns:
        The ``by`` columns, then n, mean, low, high, half (half-width of the interval).
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, value] if c not in df.columns]
    if missing:
        raise ParamError("columns", f"missing {', '.join(missing)}; have {', '.join(map(str, df.columns))}")
    rows = []
    for key, group in df.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, low, high = mean_ci(group[value].tolist(), level)
        rows.append((*key, int(group[value].notna().sum()), mean, low, high, (high - low) / 2.0))
    return pd.DataFrame(rows, columns=[*keys, "n", "mean", "low", "high", "half"])


def format_ci(mean: float, half: float, digits: int = 1) -> str:
    """``'84.0 ± 0.3'``, or just the mean when the interval is undefined (one seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if half is None or math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


# ----------------------------------------------------------------------------------------------
# Side by side.


def augmentation_vs_table1(summary: pd.DataFrame) -> pd.DataFrame:
    """Our augmentation rows beside Table 1's 2D-OFDB column.

    Args:
        summary: ``summarize(df, ["row", "pretrain", "augment"])`` of the augmentation study.

    Returns:
        Columns augment, label, ours (mean ± half), ours_mean, ours_delta (vs our default),
        paper, paper_delta (vs the paper's default), one row per OFDB augmentation we ran.
    """
    t1 = table1().set_index("augment")
    ofdb = summary[summary["pretrain"] == "ofdb"]
    base = ofdb.loc[ofdb["augment"] == "default", "mean"]
    base = float(base.iloc[0]) if len(base) else math.nan
    rows = []
    for _, r in ofdb.iterrows():
        aug = r["augment"]
        paper = float(t1.loc[aug, "ofdb2d"]) if aug in t1.index else math.nan
        label = t1.loc[aug, "label"] if aug in t1.index else aug
        rows.append(
            (
                aug,
                label,
                format_ci(r["mean"], r["half"]),
                r["mean"],
                r["mean"] - base,
                paper,
                paper - float(t1.loc["default", "ofdb2d"]),
            )
        )
    return pd.DataFrame(
        rows, columns=["augment", "label", "ours", "ours_mean", "ours_delta", "paper", "paper_delta"]
    )


def pretraining_vs_table2(summary: pd.DataFrame, metric: str = "C100") -> pd.DataFrame:
    """Our pre-training rows (scratch, FractalDB, OFDB, OFDB with augmentation) beside Table 2.

    Args:
        summary: ``summarize(df, ["row", "pretrain", "augment"])``; the row named by ``row`` is
            matched to Table 2 through ``STUDY_TO_TABLE2`` (OFDB with ``pattern`` is "w/ Aug").
        metric: the Table 2 column to compare with (our downstream data set differs at small
            profiles; the comparison is of order and gaps, not of absolute numbers).

    Returns:
        Columns row, paper_row, ours, ours_mean, ours_gap (vs scratch), paper, paper_gap.
    """
    t2 = table2().set_index("pretrain")
    rows = []
    scratch = summary.loc[summary["pretrain"] == "scratch", "mean"]
    ours_scratch = float(scratch.iloc[0]) if len(scratch) else math.nan
    paper_scratch = float(t2.loc["scratch", metric])
    for _, r in summary.iterrows():
        key = r["pretrain"]
        if key == "ofdb" and r["augment"] != "default":
            if r["augment"] != "pattern":
                continue  # Table 2's "w/ Aug" is the random-pattern row
            key = "ofdb-aug"
        if key not in STUDY_TO_TABLE2:
            continue
        name = STUDY_TO_TABLE2[key]
        paper = float(t2.loc[name, metric])
        rows.append(
            (
                r["row"],
                name,
                format_ci(r["mean"], r["half"]),
                r["mean"],
                r["mean"] - ours_scratch,
                paper,
                paper - paper_scratch,
            )
        )
    return pd.DataFrame(
        rows, columns=["row", "paper_row", "ours", "ours_mean", "ours_gap", "paper", "paper_gap"]
    )


def construction_vs_paper(measured: pd.DataFrame) -> pd.DataFrame:
    """Our construction time (hours for the 1k data set) beside the paper's table.

    Args:
        measured: columns dataset (``FractalDB-1k`` / ``2D-OFDB-1k``), search_h, render_h,
            total_h, basis (how it was measured).

    Returns:
        dataset, ours_search_h, ours_render_h, ours_total_h, paper_search_h, paper_render_h,
        paper_total_h, ratio (FractalDB / OFDB total within each source, on the OFDB row too), basis.
    """
    paper = construction_table().set_index("dataset")
    out = measured.merge(paper, left_on="dataset", right_index=True, how="left", suffixes=("", "_p"))
    out = pd.DataFrame(
        {
            "dataset": out["dataset"],
            "ours_search_h": out["search_h"],
            "ours_render_h": out["render_h"],
            "ours_total_h": out["total_h"],
            "paper_search_h": out["search_h_p"],
            "paper_render_h": out["render_h_p"],
            "paper_total_h": out["total_h_p"],
            "basis": out["basis"],
        }
    )
    return out.reset_index(drop=True)


def scaling_summary(df: pd.DataFrame, value: str = "top1_best") -> pd.DataFrame:
    """Category scaling: mean and interval of ``value`` and mean pre-training seconds per size.

    Returns:
        categories, n, mean, low, high, half, pretrain_seconds.
    """
    summary = summarize(df, "categories", value)
    secs = df.groupby("categories", sort=False)["pretrain_seconds"].mean()
    summary["pretrain_seconds"] = summary["categories"].map(secs)
    return summary.sort_values("categories").reset_index(drop=True)


def verdict(
    ours_delta: float, low: float | None = None, high: float | None = None, paper_delta: float = 0.0
) -> str:
    """``agrees``, ``disagrees`` or ``inconclusive``: does our difference have the paper's sign?

    Args:
        ours_delta: our difference (e.g. OFDB minus FractalDB).
        low, high: our interval on the difference; an interval that covers 0, or none (one
            seed), is inconclusive.
        paper_delta: the paper's difference; a paper difference under 0.5 points counts as "no
            difference", which our interval agrees with when it covers 0.
    """
    if ours_delta is None or math.isnan(ours_delta):
        return "not run"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "inconclusive"  # one seed: no interval, so no claim either way
    covers_zero = low <= 0.0 <= high
    if abs(paper_delta) < 0.5:
        return "agrees" if covers_zero or abs(ours_delta) < 0.5 else "disagrees"
    if covers_zero:
        return "inconclusive"
    return "agrees" if math.copysign(1.0, ours_delta) == math.copysign(1.0, paper_delta) else "disagrees"


def difference_ci(
    df: pd.DataFrame, a: dict, b: dict, value: str = "top1_best", level: float = 0.95
) -> tuple[float, float, float]:
    """Mean and t-interval of ``a - b`` over the seeds both rows share (paired by seed).

    Args:
        df: one row per run with a ``seed`` column.
        a, b: column -> value filters selecting the two rows (e.g. ``{"pretrain": "ofdb"}``).
    """

    def pick(sel: dict) -> pd.Series:
        mask = np.ones(len(df), dtype=bool)
        for col, val in sel.items():
            mask &= (df[col] == val).to_numpy()
        return df[mask].groupby("seed")[value].mean()

    sa, sb = pick(a), pick(b)
    common = sa.index.intersection(sb.index)
    return mean_ci((sa[common] - sb[common]).tolist(), level)


#: What the paper reports in words (facts section 1) rather than in a table.
PAPER_ACCEPTANCE_PCT = 2.3
PAPER_CANDIDATE_OF_1000TH = 42_655


def claims(
    aug: pd.DataFrame | None,
    scaling: pd.DataFrame | None,
    construction: pd.DataFrame | None,
    value: str = "top1_best",
) -> pd.DataFrame:
    """The paper's claims, its evidence, ours (paired by seed, 95 % interval) and a verdict.

    Args:
        aug: the instances-vs-augmentation runs (one row per run; columns pretrain, augment, seed).
        scaling: the category-scaling runs (columns categories, seed).
        construction: ``construction_vs_paper`` output.
        value: the accuracy column.

    Returns:
        Columns claim, paper (the paper's difference), ours (mean ± half), ours_delta, low, high,
        verdict. Differences are in top-1 points, or a FractalDB/OFDB time ratio for construction.
    """
    t1 = table1().set_index("augment")["ofdb2d"]
    t2 = table2().set_index("pretrain")["C100"]
    rows = []

    def add(claim: str, paper: float, a: dict | None, b: dict | None, df: pd.DataFrame | None) -> None:
        if df is None or a is None or not len(df):
            mean = low = high = math.nan
        else:
            mean, low, high = difference_ci(df, a, b, value)
        rows.append(
            (
                claim,
                paper,
                format_ci(mean, (high - low) / 2),
                mean,
                low,
                high,
                verdict(mean, low, high, paper),
            )
        )

    ofdb = {"pretrain": "ofdb", "augment": "default"}
    add(
        "one image per category (OFDB) at least matches 1,000 instances (FractalDB); points",
        t2["2D-OFDB-1k"] - t2["FractalDB-1k"],
        ofdb,
        {"pretrain": "fractaldb"},
        aug,
    )
    add(
        "pre-training on OFDB beats training from scratch; points",
        t2["2D-OFDB-1k"] - t2["scratch"],
        ofdb,
        {"pretrain": "scratch"},
        aug,
    )
    add(
        "random-pattern augmentation helps OFDB; points",
        t1["pattern"] - t1["default"],
        {"pretrain": "ofdb", "augment": "pattern"},
        ofdb,
        aug,
    )
    add(
        "IFS parameter fluctuation (FractalDB's instances) hurts OFDB; points",
        t1["fluctuation"] - t1["default"],
        {"pretrain": "ofdb", "augment": "fluctuation"},
        ofdb,
        aug,
    )
    if scaling is not None and len(scaling):
        lo_c, hi_c = int(scaling["categories"].min()), int(scaling["categories"].max())
        t3 = table3().set_index("pretrain")["vit_t"]
        add(
            f"more categories help ({lo_c} -> {hi_c} here; the paper's 21k beats scratch on ImageNet-1k); points",
            t3["2D-OFDB-21k"] - t3["scratch"],
            {"categories": hi_c},
            {"categories": lo_c},
            scaling,
        )
    if construction is not None and len(construction):
        c = construction.set_index("dataset")
        ours = float(c.loc["FractalDB-1k", "ours_total_h"] / c.loc["2D-OFDB-1k", "ours_total_h"])
        paper = float(c.loc["FractalDB-1k", "paper_total_h"] / c.loc["2D-OFDB-1k", "paper_total_h"])
        rows.append(
            (
                "OFDB-1k is cheaper to build than FractalDB-1k; FractalDB / OFDB time ratio",
                paper,
                f"{ours:.1f}",
                ours,
                math.nan,
                math.nan,
                "agrees" if ours > 1.0 else "disagrees",
            )
        )
    return pd.DataFrame(rows, columns=["claim", "paper", "ours", "ours_delta", "low", "high", "verdict"])


def paper_reference(summary: pd.DataFrame, metric: str = "C100") -> pd.Series:
    """The paper's number for each of our rows (Table 1 for OFDB rows, Table 2 otherwise), NaN if none."""
    t1 = table1().set_index("augment")["ofdb2d"]
    t2 = table2().set_index("pretrain")[metric]
    out = []
    for _, r in summary.iterrows():
        if r["pretrain"] == "ofdb":
            out.append(float(t1.get(r["augment"], math.nan)))
        elif r["pretrain"] in STUDY_TO_TABLE2:
            out.append(float(t2[STUDY_TO_TABLE2[r["pretrain"]]]))
        else:
            out.append(math.nan)
    return pd.Series(out, index=summary.index, dtype=float)


def construction_numbers(construction: pd.DataFrame) -> dict[str, float]:
    """The key numbers of ``construction_vs_paper``: hours, FractalDB/OFDB ratios, search shares."""
    c = construction.set_index("dataset")
    f, o = c.loc["FractalDB-1k"], c.loc["2D-OFDB-1k"]
    return {
        "ours_ofdb_h": float(o["ours_total_h"]),
        "ours_fractaldb_h": float(f["ours_total_h"]),
        "ours_ratio": float(f["ours_total_h"] / o["ours_total_h"]),
        "paper_ratio": float(f["paper_total_h"] / o["paper_total_h"]),
        "ours_search_share": float(100 * o["ours_search_h"] / o["ours_total_h"]),
        "paper_search_share": float(100 * o["paper_search_h"] / o["paper_total_h"]),
    }
