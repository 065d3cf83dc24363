"""The study's claims, stated before the runs: direction, test, margin and the paper's number.

Each ``Claim`` names the two study rows it compares (or the category sweep), the direction the
paper reports, the test that decides it and the paper's number it stands beside (table and
column). The four ``primary`` claims are tested one-sided in the paper's direction, paired by seed
(the same seed pre-trains and fine-tunes both rows), with Holm's correction over the four at a
family-wise level of 5 %:

* **agrees**: the Holm-adjusted p-value in the paper's direction is below 0.05;
* **disagrees**: the one-sided test in the opposite direction is (Holm-adjusted over the same
  family) below 0.05: our data show the opposite effect, or, for non-inferiority, an inferiority
  larger than the margin;
* **inconclusive**: neither; the interval is reported, never read as agreement;
* **not interpretable**: a row's pre-training did not reach its learning bar
  (``learning_bar``), so its downstream effect is not read; a claim may instead say what it
  decides without that row (``Claim.if_unlearned``: FractalDB, whose 1,000 varied instances per
  category take far longer to learn), and its verdict then carries that restatement.

Secondary claims are reported with unadjusted p-values as exploratory. The endpoint is the
last-step top-1 of each fine-tuning run on the whole downstream test set (``top1_last``), evaluated
once at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..errors import ParamError
from .stats import detectable_effect, holm, mean_ci, one_sided_p, paired_t, slopes, welch_interval

#: Family-wise level of the primary claims (one-sided tests, Holm).
ALPHA = 0.05
#: Power at which ``detectable_effect`` is reported.
POWER = 0.8
#: Pre-training learning bars on each row's own task (held-out renders), as in the study's design:
#: a one-image row (OFDB under any option but fluctuation, 3D, 1p-frac) must reach this top-1 ...
OFDB_BAR = 50.0
#: ... and a row whose instances vary the system (FractalDB's 1,000; OFDB with IFS fluctuation, which
#: draws FractalDB's 25 weight rows) this multiple of chance.
FRACTALDB_CHANCE_MULTIPLE = 3.0
#: Rows whose own task is FractalDB's kind of instances.
VARIED_ROWS = ("fractaldb", "ofdb+fluctuation")
TESTS = ("superiority", "non-inferiority", "trend")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper as this study tests it.

    Attributes:
        key: short name.
        text: the claim written out in full.
        test: ``superiority`` (a > b), ``non-inferiority`` (a > b - margin) or ``trend``
            (positive slope of top-1 per doubling of categories, over the scaling sweep).
        a, b: the study rows compared (``experiments.ROWS`` names); None for a trend.
        margin: non-inferiority margin in top-1 points.
        why_margin: why that margin.
        paper: the paper's evidence: table, column and the two numbers.
        paper_delta: the paper's difference a - b in points (None where it gives none).
        differs: where this study's question differs from the paper's.
        primary: in the Holm family.
        if_unlearned: row -> what the claim decides when that row did not learn its own task; the
            claim is then tested and its verdict restated (without an entry, such a row makes the
            claim not interpretable).
    """

    key: str
    text: str
    test: str
    a: str | None
    b: str | None
    paper: str
    paper_delta: float | None = None
    margin: float = 0.0
    why_margin: str = ""
    differs: str = ""
    primary: bool = True
    if_unlearned: tuple[tuple[str, str], ...] = ()


CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="ofdb_beats_scratch",
        text="Pre-training on OFDB (one image per category, the default augmentation) gives a higher "
        "downstream top-1 than training from scratch.",
        test="superiority",
        a="ofdb",
        b="scratch",
        paper="Table 2, CIFAR-100 column: 2D-OFDB-1k 84.0 against scratch 57.7",
        paper_delta=26.3,
        differs="Fashion-MNIST with few labels at 32 px after minutes of pre-training, not CIFAR-100 "
        "at 224 px after 240k steps.",
    ),
    Claim(
        key="pattern_noninferior_to_fractaldb",
        text="OFDB with random pattern is non-inferior to FractalDB at equal pre-training steps: its "
        "downstream top-1 is lower by less than 2 points, or higher.",
        test="non-inferiority",
        a="ofdb+pattern",
        b="fractaldb",
        margin=2.0,
        why_margin="2 points is below every gap the paper reports between pre-training data it calls "
        "different (its smallest, Table 2's average 2D-OFDB-1k w/ Aug 88.5 against RCDB-1k 87.6, is "
        "0.9; FractalDB-1k against 1-image-per-class ImageNet-1k is 7.2) and above the spread "
        "the paper treats as equal (Table 1's rotation, 84.1 against 84.0).",
        paper="Table 2, average of its seven data sets: 2D-OFDB-1k w/ Aug 88.5 against FractalDB-1k "
        "87.1 (CIFAR-100: 85.3 against 81.6)",
        paper_delta=1.4,
        differs="The paper's FractalDB-1k row was pre-trained for about 1.17M iterations against "
        "OFDB's 240k; here both run the same number of steps, so the question is data efficiency "
        "at equal compute.",
        if_unlearned=(
            (
                "fractaldb",
                "FractalDB did not learn its own task in this budget: the claim decided is data "
                "efficiency at equal small compute, not representation quality",
            ),
        ),
    ),
    Claim(
        key="fluctuation_hurts",
        text="IFS parameter fluctuation (one of FractalDB's 25 weight rows drawn per sample) lowers "
        "OFDB's downstream top-1.",
        test="superiority",
        a="ofdb",
        b="ofdb+fluctuation",
        paper="Table 1, 2D-OFDB column: default 84.0 against + IFS parameter fluctuation 81.6",
        paper_delta=2.4,
    ),
    Claim(
        key="more_categories_help",
        text="More pre-training categories give a higher downstream top-1 (a positive slope per "
        "doubling of the number of OFDB categories, at equal steps).",
        test="trend",
        a=None,
        b=None,
        paper="No table of the paper varies the category count at fixed data set; its scaling from "
        "1k to 21k categories (Table 3, ImageNet-1k) points this way but against other baselines",
        paper_delta=None,
        differs="Equal steps for every category count, so larger counts see fewer images per category.",
    ),
    Claim(
        key="pattern_helps",
        text="Random pattern raises OFDB's downstream top-1 over the default augmentation.",
        test="superiority",
        a="ofdb+pattern",
        b="ofdb",
        paper="Table 1, 2D-OFDB column: + random pattern 85.3 against default 84.0",
        paper_delta=1.3,
        primary=False,
    ),
    Claim(
        key="texture_helps",
        text="Random texture raises OFDB's downstream top-1 over the default augmentation.",
        test="superiority",
        a="ofdb+texture",
        b="ofdb",
        paper="Table 1, 2D-OFDB column: + random texture 84.8 against default 84.0",
        paper_delta=0.8,
        differs="Random texture is this package's own operator (the paper's code has none).",
        primary=False,
    ),
    Claim(
        key="both_help",
        text="Random pattern and texture together raise OFDB's downstream top-1 over the default.",
        test="superiority",
        a="ofdb+both",
        b="ofdb",
        paper="Table 1, 2D-OFDB column: + both 84.3 against default 84.0",
        paper_delta=0.3,
        differs="Random texture is this package's own operator (the paper's code has none).",
        primary=False,
    ),
    Claim(
        key="rotation_is_a_control",
        text="FractalDB's four flips (none, top-bottom, left-right, both) do not change OFDB's "
        "downstream top-1. Under a recipe whose random horizontal and vertical flips already draw the "
        "same four (the paper's), this row is an A/A control and the interval should cover 0.",
        test="superiority",
        a="ofdb+rotation",
        b="ofdb",
        paper="Table 1, 2D-OFDB column: + rotation 84.1 against default 84.0",
        paper_delta=0.1,
        differs="`mini` pre-trains without random flips (the pilot: with them OFDB + fluctuation did "
        "not learn its own task), so there this row adds the four flips instead of repeating them.",
        primary=False,
    ),
)


def by_key(key: str) -> Claim:
    for c in CLAIMS:
        if c.key == key:
            return c
    raise ParamError("claim", f"unknown claim {key!r}; choose from {', '.join(c.key for c in CLAIMS)}")


def learning_bar(row: str, categories: int) -> float:
    """The own-task top-1 (percent, held-out renders) a pre-training row must reach to be read.

    One-image rows (OFDB under every option but fluctuation, 3D, 1p-frac): ``OFDB_BAR``, or, with
    so few categories that 50 % is not above twice chance (2 or 3), halfway from chance to 100 %;
    rows whose instances vary the system (``VARIED_ROWS``): three times chance.
    """
    chance = 100.0 / categories
    if row in VARIED_ROWS:
        return FRACTALDB_CHANCE_MULTIPLE * chance
    return OFDB_BAR if 2 * chance <= OFDB_BAR else (100.0 + chance) / 2


def _per_seed(runs: pd.DataFrame, row: str, value: str) -> pd.Series:
    sel = runs[runs["row"] == row]
    return sel.groupby("seed")[value].mean()


def _learned(
    pretrain: pd.DataFrame | None, keys: list[tuple[str, int | None]], restated: dict[str, str] | None = None
) -> tuple[bool, str]:
    """Whether the claim can be read: every pre-training (row, categories) reached its bar (mean over
    seeds), or the claim says what it decides without that row (``restated``). Returns the reason."""
    if pretrain is None or not len(pretrain):
        return True, ""
    short, notes = [], []
    for row, categories in keys:
        sel = pretrain[pretrain["row"] == row]
        if categories is not None:
            sel = sel[sel["categories"] == categories]
        if not len(sel):
            continue
        mean, bar = float(sel["own_top1"].mean()), float(sel["bar"].iloc[0])
        if not mean >= bar:
            size = f" ({categories} categories)" if categories is not None else ""
            text = f"{row}{size} reached {mean:.1f} % on its own task (bar {bar:.1f} %)"
            if restated and row in restated:
                notes.append(f"{text}; {restated[row]}")
            else:
                short.append(text)
    return (not short), "; ".join(short or notes)


def _keys(runs: pd.DataFrame, rows: list[str]) -> list[tuple[str, int | None]]:
    out = []
    for r in rows:
        if r == "scratch":
            continue
        if "categories" not in runs.columns:
            out.append((r, None))
            continue
        cats = runs.loc[runs["row"] == r, "categories"].dropna().unique()
        out += [(r, int(c)) for c in cats] or [(r, None)]
    return out


def _row(claim: Claim, diffs: pd.Series, welch: tuple[float, float, float], shift: float) -> dict:
    mean, sd, t_fwd, n = paired_t(diffs.tolist(), shift)
    _, _, t_back, _ = paired_t((-diffs).tolist(), -shift)
    df = max(n - 1, 1)
    p_fwd = one_sided_p(t_fwd, df) if not math.isnan(t_fwd) else math.nan
    p_back = one_sided_p(t_back, df) if not math.isnan(t_back) else math.nan
    _, low, high = mean_ci(diffs.tolist())
    return {
        "claim": claim.text,
        "key": claim.key,
        "test": claim.test + (f" (margin {claim.margin:g})" if claim.test == "non-inferiority" else ""),
        "primary": claim.primary,
        "paper": claim.paper,
        "paper_delta": claim.paper_delta if claim.paper_delta is not None else math.nan,
        "n": n,
        "ours": mean,
        "sd": sd,
        "paired_low": low,
        "paired_high": high,
        "welch_low": welch[1],
        "welch_high": welch[2],
        "p": p_fwd,
        "p_opposite": p_back,
    }


def evaluate(
    runs: pd.DataFrame,
    scaling: pd.DataFrame | None = None,
    pretrain: pd.DataFrame | None = None,
    value: str = "top1_last",
    claims: tuple[Claim, ...] = CLAIMS,
) -> pd.DataFrame:
    """Test every claim whose rows ran; one row per claim.

    Args:
        runs: the instances-vs-augmentation runs (columns row, seed, ``value``).
        scaling: the category-scaling runs (columns categories, seed, ``value``), for the trend.
        pretrain: own-task results of the pre-training runs (columns row, seed, own_top1, bar); rows
            below their bar make a claim "not interpretable".
        value: the endpoint column.

    Returns:
        Columns claim, key, test, primary, paper, paper_delta, n, ours (mean difference, or mean
        slope in points per doubling for the trend), sd, paired_low/high (two-sided 95 % paired
        t-interval), welch_low/high (Welch, arms as independent), p (one-sided, the paper's
        direction), p_opposite, p_holm, p_holm_opposite, detectable (effect detectable with 80 %
        power at the claim's level), verdict, why.
    """
    out = []
    for c in claims:
        if c.test not in TESTS:
            raise ParamError(
                "test", f"claim {c.key}: unknown test {c.test!r}; choose from {', '.join(TESTS)}"
            )
        if c.test == "trend":
            if scaling is None or not len(scaling) or scaling["categories"].nunique() < 2:
                continue
            s = slopes(scaling, "categories", value)
            row = _row(c, s, (math.nan, math.nan, math.nan), 0.0)
            ok, why = _learned(pretrain, [("ofdb", int(n)) for n in sorted(scaling["categories"].unique())])
        else:
            if runs is None or not {c.a, c.b} <= set(runs["row"]):
                continue
            a, b = _per_seed(runs, c.a, value), _per_seed(runs, c.b, value)
            common = a.index.intersection(b.index)
            shift = c.margin if c.test == "non-inferiority" else 0.0
            row = _row(c, a[common] - b[common], welch_interval(a.tolist(), b.tolist()), shift)
            ok, why = _learned(pretrain, _keys(runs, [c.a, c.b]), dict(c.if_unlearned))
        row["learned"], row["why"] = ok, why
        out.append(row)
    df = pd.DataFrame(out)
    if not len(df):
        return df
    prim = df["primary"].to_numpy()
    df["p_holm"] = math.nan
    df["p_holm_opposite"] = math.nan
    df.loc[prim, "p_holm"] = holm(df.loc[prim, "p"].tolist())
    df.loc[prim, "p_holm_opposite"] = holm(df.loc[prim, "p_opposite"].tolist())
    m = int(prim.sum())
    df["detectable"] = [
        detectable_effect(r.sd, int(r.n), ALPHA / m if r.primary else ALPHA, POWER) for r in df.itertuples()
    ]
    df["verdict"] = [_verdict(r) for r in df.itertuples()]
    return df


def _verdict(r) -> str:
    if not r.learned:
        return "not interpretable"
    p = r.p_holm if r.primary else r.p
    p_back = r.p_holm_opposite if r.primary else r.p_opposite
    if p is None or math.isnan(p):
        return "inconclusive"
    if p < ALPHA:
        return "agrees"
    if p_back < ALPHA:
        return "disagrees"
    return "inconclusive"
