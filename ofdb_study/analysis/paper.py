"""The paper's published numbers as data, and our numbers put beside them.

Every table of the paper that the study compares against (Tables 1-3 of the ICCV 2023 paper and
its construction-time comparison) is built here from literal rows, so the book never types a published number by hand. The helpers put a summary
of runs (mean and 95 % t-interval over seeds, ``stats.summarize``) beside the paper's numbers;
the claims themselves are decided in ``claims``.

Nothing here imports torch: the results notebook and the book stay light.
"""

from __future__ import annotations

import math

import pandas as pd

from ..errors import ParamError
from .stats import format_ci, summarize

# ----------------------------------------------------------------------------------------------
# The paper's tables (ICCV 2023, arXiv 2307.14710). Top-1 in percent, times in hours.

#: Construction cost (ICCV 2023 paper, construction-time comparison), hours on the paper's machine.
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
#: What each column of Tables 2 and 3 holds, in words (the claims' citations name them).
COLUMN_LABELS = {
    "table2": {
        "C10": "CIFAR-10",
        "C100": "CIFAR-100",
        "Cars": "Stanford Cars",
        "Flowers": "Flowers",
        "VOC12": "VOC 2012",
        "P30": "Places-30",
        "IN100": "ImageNet-100",
        "avg": "average",
    },
    "table3": {"vit_t": "ImageNet-1k fine-tuning, ViT-T", "vit_b": "ImageNet-1k fine-tuning, ViT-B"},
}
#: The table names as the paper prints them.
TABLE_TITLES = {"table1": "Table 1", "table2": "Table 2", "table3": "Table 3"}
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

#: 1p-frac ("Scaling Backwards: Minimal Synthetic Pre-training?", ECCV 2024): CIFAR-100
#: fine-tuning top-1 of ViT-Tiny pre-trained with the OFDB recipe on 1,000 perturbations of one
#: fractal, each coefficient times uniform(1 - delta, 1 + delta); (delta, top-1).
ONEPFRAC_ROWS = [(0.01, 19.9), (0.05, 83.0), (0.1, 84.2), (0.2, 83.4)]
#: The sigma factor of the published table (the public generate.sh passes 4.0).
ONEPFRAC_SIGMA = 3.5
#: The delta of the headline number (and of the study's ``1p-frac`` row).
ONEPFRAC_DELTA = 0.1

#: Higher bars from later work: VisualAtom (CVPR 2023), average over Table 2's data sets; 1p-frac
#: (ECCV 2024, "Scaling Backwards"), CIFAR-100 fine-tuning.
LATER_WORK_ROWS = [
    ("VisualAtom-1k", "1M", "avg", 89.1),
    ("1p-frac", "1k", "C100", dict(ONEPFRAC_ROWS)[ONEPFRAC_DELTA]),
]

#: Which paper row each of the study's pre-training rows stands for (Table 2 naming).
STUDY_TO_TABLE2 = {
    "scratch": "scratch",
    "fractaldb": "FractalDB-1k",
    "ofdb": "2D-OFDB-1k",
    "ofdb-aug": "2D-OFDB-1k w/ Aug",
    "ofdb3d": "3D-OFDB-1k",
    "ofdb3d-aug": "3D-OFDB-1k w/ Aug",
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


def onepfrac_table() -> pd.DataFrame:
    """1p-frac's published sweep: columns delta, sigma, c100 (CIFAR-100 top-1, ViT-Tiny)."""
    df = pd.DataFrame(ONEPFRAC_ROWS, columns=["delta", "c100"])
    df.insert(1, "sigma", ONEPFRAC_SIGMA)
    return df


def onepfrac_vs_paper(sweep: pd.DataFrame, value: str = "top1_best") -> pd.DataFrame:
    """Our 1p-frac sweep (``runs.onepfrac_sweep``) beside the published numbers.

    Returns:
        Columns delta, n, ours (mean ± half), ours_mean, paper (NaN for a delta the paper lacks).
    """
    summary = summarize(sweep, "delta", value)
    paper = dict(ONEPFRAC_ROWS)
    rows = [
        (
            float(r["delta"]),
            int(r["n"]),
            format_ci(r["mean"], r["half"]),
            float(r["mean"]),
            float(paper.get(float(r["delta"]), math.nan)),
        )
        for _, r in summary.sort_values("delta").iterrows()
    ]
    return pd.DataFrame(rows, columns=["delta", "n", "ours", "ours_mean", "paper"])


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


#: Columns of the tables that set our rows beside a published column (Tables 2 and 3).
PAPER_GAP_COLUMNS = ("row", "paper_row", "ours", "ours_mean", "ours_gap", "paper", "paper_gap")


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

    def paper_row(r) -> str | None:
        key = r["pretrain"]
        if key in ("ofdb", "ofdb3d") and r["augment"] != "default":
            if r["augment"] != "pattern":
                return None  # Table 2's "w/ Aug" is the random-pattern row
            key = f"{key}-aug"
        return STUDY_TO_TABLE2.get(key)

    return _beside_paper(summary, table2().set_index("pretrain")[metric], paper_row)


def _beside_paper(summary: pd.DataFrame, paper: pd.Series, paper_row) -> pd.DataFrame:
    """Each row of ``summary`` that ``paper_row(r)`` maps to an entry of ``paper`` (a published
    column indexed by its row names, ``scratch`` among them; None: no counterpart), with its gap and
    the paper's gap against training from scratch. Columns ``PAPER_GAP_COLUMNS``."""
    scratch = summary.loc[summary["pretrain"] == "scratch", "mean"]
    ours_scratch = float(scratch.iloc[0]) if len(scratch) else math.nan
    rows = []
    for _, r in summary.iterrows():
        name = paper_row(r)
        if name is None:
            continue
        value = float(paper[name])
        rows.append(
            (
                r["row"],
                name,
                format_ci(r["mean"], r["half"]),
                r["mean"],
                r["mean"] - ours_scratch,
                value,
                value - float(paper["scratch"]),
            )
        )
    return pd.DataFrame(rows, columns=list(PAPER_GAP_COLUMNS))


#: Which Table 3 row each of the study's rows stands for at ``paper-21k`` (21k categories).
STUDY_TO_TABLE3 = {
    "scratch": "scratch",
    "fractaldb": "FractalDB-21k",
    "ofdb": "2D-OFDB-21k",
    "ofdb3d": "3D-OFDB-21k",
}


def published(table: str, row: str, column: str) -> float:
    """One published number: ``table`` (``table1``: the 2D-OFDB column ``ofdb2d`` or ``ofdb3d``,
    ``row`` an augmentation name; ``table2`` / ``table3``: ``row`` as the paper names it)."""
    frames = {"table1": (table1, "augment"), "table2": (table2, "pretrain"), "table3": (table3, "pretrain")}
    if table not in frames:
        raise ParamError("table", f"must be one of {', '.join(frames)}, got {table!r}")
    make, index = frames[table]
    df = make().set_index(index)
    if column not in df.columns or row not in df.index:
        raise ParamError("column", f"{table} has no entry for row {row!r}, column {column!r}")
    return float(df.loc[row, column])


def paper_row_name(table: str, study_row: str) -> str | None:
    """The row of Table 2 or 3 a study pre-training kind stands for (``STUDY_TO_TABLE2`` / ``3``)."""
    return (STUDY_TO_TABLE2 if table == "table2" else STUDY_TO_TABLE3).get(study_row)


def pretraining_vs_table3(summary: pd.DataFrame, column: str = "vit_b") -> pd.DataFrame:
    """Our ``paper-21k`` rows (ImageNet-1k fine-tuning) beside Table 3's ``vit_b`` (or ``vit_t``).

    Args:
        summary: ``summarize(df, ["row", "pretrain", "augment"])`` of the rows at ``paper-21k``;
            rows with an instance augmentation have no Table 3 counterpart and are left out.
        column: ``vit_b`` or ``vit_t``.

    Returns:
        Columns row, paper_row, ours, ours_mean, ours_gap (vs scratch), paper, paper_gap.
    """
    if column not in ("vit_t", "vit_b"):
        raise ParamError("column", f"must be vit_t or vit_b, got {column!r}")

    def paper_row(r) -> str | None:
        if r["pretrain"] != "scratch" and r["augment"] != "default":
            return None
        return STUDY_TO_TABLE3.get(r["pretrain"])

    return _beside_paper(summary, table3().set_index("pretrain")[column], paper_row)


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


def paper_reference(summary: pd.DataFrame, metric: str = "C100") -> pd.Series:
    """The paper's number for each of our rows, NaN if none: Table 1 for OFDB rows (and for 3D-OFDB
    rows on CIFAR-100), 1p-frac's headline number for its row, Table 2 otherwise."""
    t1 = table1().set_index("augment")
    t2 = table2().set_index("pretrain")[metric]
    out = []
    for _, r in summary.iterrows():
        if r["pretrain"] == "ofdb":
            out.append(float(t1["ofdb2d"].get(r["augment"], math.nan)))
        elif r["pretrain"] == "ofdb3d" and metric == "C100":
            out.append(float(t1["ofdb3d"].get(r["augment"], math.nan)))
        elif r["pretrain"] == "1pfrac" and metric == "C100":
            out.append(float(dict(ONEPFRAC_ROWS)[ONEPFRAC_DELTA]))
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


# ----------------------------------------------------------------------------------------------
# The study's own numbers: pre-training's own task, the claims table, the wall time.


def own_task(pretrain: pd.DataFrame) -> pd.DataFrame:
    """Pre-training's own-task top-1 per (row, categories): mean and 95 % interval over seeds.

    Args:
        pretrain: ``runs.pretraining`` output (row, categories, seed, own_top1, bar, ...).

    Returns:
        row, categories, n, mean, low, high, half, bar, chance (percent), learned (the mean
        reaches the bar), final_loss (mean), minutes (mean wall time per run).
    """
    if not len(pretrain):
        return pd.DataFrame(
            columns=["row", "categories", "n", "mean", "low", "high", "half", "bar", "chance", "learned"]
        )
    out = summarize(pretrain, ["row", "categories"], "own_top1")
    keyed = pretrain.groupby(["row", "categories"], sort=False)
    out["bar"] = keyed["bar"].first().to_numpy()
    out["chance"] = 100.0 / out["categories"].astype(float)
    out["learned"] = out["mean"] >= out["bar"]
    out["final_loss"] = keyed["final_loss"].mean().to_numpy()
    out["minutes"] = keyed["wall_seconds"].mean().to_numpy() / 60.0
    return out


def claims_table(evaluated: pd.DataFrame, detail: bool = False) -> pd.DataFrame:
    """The claims as the book shows them.

    Args:
        evaluated: ``claims.evaluate`` output (checked with ``claims.check_consistent`` first).
        detail: the tests instead of the statements.

    Returns:
        claim (written out), paper (the paper's evidence), ours (mean difference and its two
        one-sided bounds at the levels Holm used, ``[low, high]``; points, or points per doubling
        for the trend), verdict (with the reason where pairs were dropped); with ``detail``: claim
        (its key), test, pairs (tested of run), ours, levels (the bounds' one-sided levels), welch
        (Welch 95 %, arms as independent), p (one-sided, Holm-adjusted over both directions of the
        primary claims), verdict.
    """
    from .claims import check_consistent

    check_consistent(evaluated)
    rows = []
    for r in evaluated.itertuples():
        unit = " per doubling" if r.key == "more_categories_help" else ""
        bounds = "" if math.isnan(r.low) else f" [{r.low:+.2f}, {r.high:+.2f}]"
        ours = "-" if math.isnan(r.ours) else f"{r.ours:+.2f}{unit}{bounds}"
        if not detail:
            rows.append((r.claim, r.paper, ours, r.verdict + (f" ({r.why})" if r.why else "")))
            continue
        p = r.p_holm if r.primary else r.p
        rows.append(
            (
                r.key,
                ("primary, " if r.primary else "secondary, ") + r.test,
                f"{r.n} of {r.seeds}",
                ours,
                "-"
                if math.isnan(r.low)
                else f"{100 * (1 - r.level):.2f} % / {100 * (1 - r.level_opposite):.2f} %",
                "-" if math.isnan(r.welch_low) else f"[{r.welch_low:+.2f}, {r.welch_high:+.2f}]",
                f"{p:.3g}" if not math.isnan(p) else "-",
                r.verdict,
            )
        )
    columns = (
        ["claim", "test", "pairs", "ours", "levels", "welch", "p", "verdict"]
        if detail
        else ["claim", "paper", "ours", "verdict"]
    )
    return pd.DataFrame(rows, columns=columns)


def time_split(
    pretrain: pd.DataFrame, downstream: pd.DataFrame, summaries: list[dict], timing: dict
) -> pd.DataFrame:
    """Where the study's wall time went: training (steps, evaluation, set-up), then each notebook.

    The runs' own clocks (their summaries) say how a run's time divides; with several runs at once
    their sum exceeds the wall time, so the three training parts are the training call's wall time
    (``timing["training"]["seconds"]``) divided in the runs' proportions. Without that record (the
    runs were trained earlier), the runs' summed times are shown as they are.

    Args:
        pretrain, downstream: the study's runs (``runs.pretraining`` / ``downstream``).
        summaries: every finished run's summary.json (wall, set-up and evaluation seconds).
        timing: the runner's ``timing.json`` (notebook seconds, the training call's wall time).

    Returns:
        part, minutes, share (percent of the listed parts).
    """
    wall = sum(s.get("wall_seconds", 0.0) for s in summaries)
    setup = sum(s.get("setup_seconds", 0.0) for s in summaries)
    passes = sum(s.get("eval_seconds", 0.0) for s in summaries)
    prep = sum(s.get("eval_prep_seconds", 0.0) for s in summaries)
    parts = [
        ("training steps", wall - passes),
        ("evaluation (test-set transform and passes)", passes + prep),
        ("run set-up (data, search cache, model)", setup - prep),
    ]
    elapsed = timing.get("training", {}).get("seconds")
    if elapsed and timing["training"].get("trained") and wall + setup > 0:
        scale = elapsed / (wall + setup)
        parts = [(name + " (this build's wall time)", seconds * scale) for name, seconds in parts]
    else:
        parts = [(name + " (summed over the runs)", seconds) for name, seconds in parts]
    for name, seconds in timing.get("notebooks", {}).items():
        parts.append((f"notebook {name}", seconds))
    df = pd.DataFrame(parts, columns=["part", "seconds"])
    df["minutes"] = df["seconds"] / 60.0
    df["share"] = 100.0 * df["seconds"] / df["seconds"].sum()
    return df[["part", "minutes", "share"]]


#: A test vector of the public search (seed 1) that ``fractals.search`` reproduces: the 1,000th
#: category is accepted at candidate 42,655.
SEARCH_CANDIDATE_OF_1000TH = 42_655
#: The public search's acceptance rate over its first 1,000 categories (1,000 / 42,655, from the
#: test vector above; no public file states a rate).
PUBLIC_ACCEPTANCE_PCT = 100.0 * 1000 / SEARCH_CANDIDATE_OF_1000TH


def pilot_table(doc: dict) -> pd.DataFrame:
    """The pilot's runs as a table: row, categories, steps, own_top1, bar, learned, final_loss,
    cpu_seconds (one run), from the JSON of ``benchmarks/pilot.py --out``."""
    cols = ["row", "categories", "steps", "own_top1", "bar", "learned", "final_loss", "cpu_seconds"]
    return pd.DataFrame([{k: r[k] for k in cols} for r in doc["pretraining"]], columns=cols)
