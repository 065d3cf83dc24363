"""The study's claims, stated before the runs: direction, test, margin and the paper's number.

Each ``Claim`` names the two study rows it compares (or the category sweep), the direction the
paper reports, the test that decides it and the paper's number it stands beside (table and
column). The four ``primary`` claims are tested one-sided, paired by seed (the same seed
pre-trains and fine-tunes both rows on the same drawn training subset):

* **agrees**: the Holm-adjusted p-value in the paper's direction is below 0.05;
* **disagrees**: the Holm-adjusted p-value in the opposite direction is below 0.05: our data show
  the opposite effect, or, for non-inferiority, an inferiority larger than the margin;
* **inconclusive**: neither; the interval is reported, never read as agreement;
* **point estimate (one seed)**: a one-seed profile's difference, shown beside the paper's number;
  one pair tests nothing;
* **not interpretable**: fewer than two thirds of the claim's seeds gave a usable pair: a seed's
  pair is dropped when a pre-training of it missed its learning bar (``learning_bar``) in that
  seed or a fine-tuning of it failed (``failed_finetunes``). Such a claim is not tested and never
  counted as agreeing.

The family is one: both directions of every tested primary claim, Holm at 5 %; each bound shown
is one-sided at the level Holm gave it, so it excludes the null exactly when the verdict says so.
Secondary claims are reported with unadjusted one-sided 5 % tests as exploratory. The endpoint is
the last-step top-1 of each fine-tuning run on the whole downstream test set (``top1_last``),
evaluated once at the end; the secondary endpoint is the linear probe of the pre-trained features
on the same training images (``probe_top1``, ``PROBE_CLAIMS``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pandas as pd

from ..errors import ParamError
from . import paper as published
from .stats import (
    detectable_effect,
    holm,
    holm_levels,
    one_sided_bound,
    one_sided_p,
    paired_t,
    slopes,
    welch_interval,
)

#: Family-wise level of the primary claims (one-sided tests, Holm).
ALPHA = 0.05
#: Power of the pre-registration's prospective statement (``planned_effect``).
POWER = 0.8
#: The rule for failed fine-tunings (``failed_finetunes``): final training loss above the row's
#: median by more than this many scaled MADs ...
FAILED_LOSS_MADS = 3.0
#: ... and by at least this much (nats).
FAILED_LOSS_MIN = 0.1
#: A claim is read only on at least this fraction of its seeds' pairs.
MIN_PAIRS_FRACTION = 2 / 3
#: Pre-training learning bars on each row's own task (held-out renders), as in the study's design:
#: a one-image row (OFDB under any option but fluctuation, 3D, 1p-frac) must reach this top-1 ...
OFDB_BAR = 50.0
#: ... and a row whose instances vary the system (FractalDB's 1,000; OFDB with IFS fluctuation, which
#: draws FractalDB's 25 weight rows) this multiple of chance.
FRACTALDB_CHANCE_MULTIPLE = 3.0
#: Rows whose own task is FractalDB's kind of instances.
VARIED_ROWS = ("fractaldb", "ofdb+fluctuation", "ofdb+fluctuation+aug")
TESTS = ("superiority", "non-inferiority", "trend", "interaction")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper as this study tests it.

    Attributes:
        key: short name.
        text: the claim written out in full.
        test: ``superiority`` (a > b), ``non-inferiority`` (a > b - margin), ``trend``
            (positive slope of top-1 per doubling of categories, over the scaling sweep) or
            ``interaction`` ((a - b) - (c - d) > 0, paired by seed).
        a, b: the study rows compared (``config.ROWS`` names); None for a trend.
        c, d: the second pair of an interaction (its difference is subtracted).
        margin: non-inferiority margin in top-1 points.
        why_margin: why that margin.
        paper: the paper's evidence: table, column and the two numbers.
        paper_delta: the paper's difference a - b in points (None where it gives none).
        differs: where this study's question differs from the paper's.
        primary: in the Holm family.
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
    c: str | None = None
    d: str | None = None

    @property
    def rows(self) -> tuple[str, ...]:
        """The study rows the claim reads (none for a trend)."""
        return tuple(r for r in (self.a, self.b, self.c, self.d) if r is not None)


# ---- the paper's evidence, read from the tables of ``analysis.paper`` at a profile's table ---------
#: The study rows' instance augmentation (Table 1's row names), for the Table 1 claims.
_AUGMENT = {
    "ofdb": "default",
    "ofdb+pattern": "pattern",
    "ofdb+fluctuation": "fluctuation",
    "ofdb+rotation": "rotation",
    "ofdb+texture": "texture",
    "ofdb+both": "both",
}
#: Each claim's evidence: ``main`` (its two rows on the profile's table and column), ``pattern``
#: (OFDB w/ Aug against FractalDB), ``table1`` (Table 1's 2D-OFDB column, CIFAR-100 only),
#: ``probe`` (no probe in the paper; the profile's fine-tuning table), ``probe_table1``, or a fixed
#: text (the category sweep, which no table measures).
_EVIDENCE = {
    "ofdb_beats_scratch": ("main", "ofdb", "scratch"),
    "pattern_noninferior_to_fractaldb": ("pattern", "ofdb-aug", "fractaldb"),
    "fluctuation_hurts": ("table1", "ofdb", "ofdb+fluctuation"),
    "more_categories_help": (
        "fixed",
        "No table of the paper varies the category count at fixed data set; its scaling from "
        "1k to 21k categories (Table 3, ImageNet-1k) points this way but against other baselines",
    ),
    "pattern_helps": ("table1", "ofdb+pattern", "ofdb"),
    "texture_helps": ("table1", "ofdb+texture", "ofdb"),
    "both_help": ("table1", "ofdb+both", "ofdb"),
    "rotation_is_a_control": ("table1", "ofdb+rotation", "ofdb"),
    "aug_noninferior_to_instances": ("pattern", "ofdb-aug", "fractaldb"),
    "instances_matter_less_with_aug": (
        "fixed",
        "No table of the paper runs its rows without the recipe's augmentation; its premise is that "
        "with augmentation one instance per category does what FractalDB's 1,000 do",
    ),
    "aug_helps_ofdb": (
        "fixed",
        "No table of the paper removes the recipe's augmentation from OFDB; every row trains with it",
    ),
    "probe_ofdb_beats_random": ("probe", "its fine-tuning tables ({table}) point this way"),
    "probe_pattern_vs_fractaldb": ("probe", "{table} for fine-tuning"),
    "probe_fluctuation_hurts": ("probe_table1", "Table 1 for fine-tuning"),
}


def _num(x: float) -> str:
    return f"{x:.1f}"


def evidence(key: str, table: str = "table2", column: str = "C100") -> dict:
    """The paper's evidence for claim ``key`` at a profile's published table and column
    (``StudyPlan.paper_table`` / ``paper_column``): ``{"paper": text, "paper_delta": a - b or None}``,
    every number read from ``analysis.paper``'s tables.

    Table 1 (the augmentation ablation) exists only for CIFAR-100 after OFDB-1k: where the
    profile's table is another, its claims cite Table 1 and say so. Table 3 has no random-pattern
    row, so at ``table3`` the non-inferiority claim cites the 21k rows without augmentation.
    """
    if key not in _EVIDENCE:
        raise ParamError("claim", f"no evidence recorded for claim {key!r}")
    if table not in ("table2", "table3"):
        raise ParamError("table", f"must be table2 or table3, got {table!r}")
    labels = published.COLUMN_LABELS[table]
    if column not in labels:
        raise ParamError("column", f"{table} has no column {column!r}; choose from {', '.join(labels)}")
    title, label = published.TABLE_TITLES[table], labels[column]
    kind, *args = _EVIDENCE[key]
    if kind == "fixed":
        return {"paper": args[0], "paper_delta": None}
    if kind in ("probe", "probe_table1"):
        return {"paper": "No probe in the paper; " + args[0].format(table=title), "paper_delta": None}
    if kind == "table1":
        a, b = (_AUGMENT[r] for r in args)
        va, vb = (published.published("table1", x, "ofdb2d") for x in (a, b))
        names = dict((r[0], r[1]) for r in published.TABLE1_ROWS)
        na, nb = ("default" if x == "default" else names[x] for x in (a, b))
        text = f"Table 1, 2D-OFDB column: {na} {_num(va)} against {nb} {_num(vb)}"
        if table != "table2" or column != "C100":
            text += " (CIFAR-100 after OFDB-1k pre-training; no other table of the paper has these rows)"
        return {"paper": text, "paper_delta": round(va - vb, 1)}
    row_a, row_b = args
    if kind == "pattern" and table == "table3":
        row_a = "ofdb"  # Table 3 has no "w/ Aug" row
    na, nb = (published.paper_row_name(table, r) for r in (row_a, row_b))
    if kind == "main" or table == "table3":
        va, vb = (published.published(table, n, column) for n in (na, nb))
        text = f"{title}, {label} column: {na} {_num(va)} against {nb} {_num(vb)}"
        if kind == "pattern":
            text += " (Table 3 has no random-pattern row: 2D-OFDB-21k uses the default augmentation)"
        return {"paper": text, "paper_delta": round(va - vb, 1)}
    # pattern at Table 2: the average of its seven data sets, with the profile's column beside it
    va, vb = (published.published(table, n, "avg") for n in (na, nb))
    text = f"{title}, average of its seven data sets: {na} {_num(va)} against {nb} {_num(vb)}"
    if column != "avg":
        ca, cb = (published.published(table, n, column) for n in (na, nb))
        text += f" ({label}: {_num(ca)} against {_num(cb)})"
    return {"paper": text, "paper_delta": round(va - vb, 1)}


def _at_table2(key: str) -> dict:
    """``evidence`` at Table 2's CIFAR-100 column (``mini``, ``paper``): the claims as defined."""
    return evidence(key)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="ofdb_beats_scratch",
        text="Pre-training on OFDB (one image per category, the default augmentation) gives a higher "
        "downstream top-1 than training from scratch.",
        test="superiority",
        a="ofdb",
        b="scratch",
        **_at_table2("ofdb_beats_scratch"),
        differs="Fashion-MNIST with 50 labels per class at 32 px after minutes of pre-training, not "
        "CIFAR-100 at 224 px after 240k steps. At `mini` the endpoint is read after 1,600 fine-tuning "
        "steps without random crops, where the training loss is at its floor; the fine-tuning pilots "
        "(in the book) saw OFDB's lead shrink as scratch caught up (with crops, +5.6-7.8 points at 150 "
        "steps and +0.5-0.8 at 1,200; without, +1.6 at 400 and -0.2 at 1,600), so this claim asks "
        "whether any head start outlasts a fine-tuning to the loss floor.",
    ),
    Claim(
        key="pattern_noninferior_to_fractaldb",
        text="OFDB with random pattern is non-inferior to FractalDB at equal pre-training steps: its "
        "downstream top-1 is lower by less than the margin (1 point), or higher.",
        test="non-inferiority",
        a="ofdb+pattern",
        b="fractaldb",
        margin=1.0,
        why_margin="1 point: smaller than the paper's own gap in OFDB's favour (+1.4 on the average "
        "of Table 2's seven data sets), so a real deficit of the size the paper reports the other "
        "way cannot pass as agreement.",
        **_at_table2("pattern_noninferior_to_fractaldb"),
        differs="The paper's FractalDB-1k row was pre-trained for about 1.17M iterations against "
        "OFDB's 240k; here both run the same number of steps. The claim is read only on the seeds "
        "where FractalDB learned its own task; where it did not, the claim is not interpretable. "
        "`mini` does not run the FractalDB row (it missed its own-task bar in every seed of the "
        "design before), so the claim is not tested there.",
    ),
    Claim(
        key="fluctuation_hurts",
        text="IFS parameter fluctuation (one of FractalDB's 25 weight rows drawn per sample) lowers "
        "OFDB's downstream top-1.",
        test="superiority",
        a="ofdb",
        b="ofdb+fluctuation",
        **_at_table2("fluctuation_hurts"),
    ),
    Claim(
        key="more_categories_help",
        text="More pre-training categories give a higher downstream top-1 (a positive slope per "
        "doubling of the number of OFDB categories, at equal steps).",
        test="trend",
        a=None,
        b=None,
        **_at_table2("more_categories_help"),
        differs="Equal steps for every category count, so larger counts see fewer images per category.",
    ),
    Claim(
        key="pattern_helps",
        text="Random pattern raises OFDB's downstream top-1 over the default augmentation.",
        test="superiority",
        a="ofdb+pattern",
        b="ofdb",
        **_at_table2("pattern_helps"),
        primary=False,
    ),
    Claim(
        key="texture_helps",
        text="Random texture raises OFDB's downstream top-1 over the default augmentation.",
        test="superiority",
        a="ofdb+texture",
        b="ofdb",
        **_at_table2("texture_helps"),
        differs="Random texture is this package's own operator (the paper's code has none).",
        primary=False,
    ),
    Claim(
        key="both_help",
        text="Random pattern and texture together raise OFDB's downstream top-1 over the default.",
        test="superiority",
        a="ofdb+both",
        b="ofdb",
        **_at_table2("both_help"),
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
        **_at_table2("rotation_is_a_control"),
        differs="`mini` pre-trains without random flips (the pilot: with them OFDB + fluctuation did "
        "not learn its own task), so there this row adds the four flips instead of repeating them.",
        primary=False,
    ),
)


#: The secondary endpoint: the linear probe of the frozen pre-trained features (random features for
#: scratch), on the same training images, against the same test set. Exploratory, unadjusted.
PROBE_CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="probe_ofdb_beats_random",
        text="A linear probe of OFDB's pre-trained features classifies the downstream images better "
        "than one of a randomly initialised model's features.",
        test="superiority",
        a="ofdb",
        b="scratch",
        **_at_table2("probe_ofdb_beats_random"),
        primary=False,
    ),
    Claim(
        key="probe_pattern_vs_fractaldb",
        text="A linear probe of OFDB + random pattern's features is non-inferior (margin 1 point) to "
        "one of FractalDB's.",
        test="non-inferiority",
        a="ofdb+pattern",
        b="fractaldb",
        margin=1.0,
        why_margin="the primary claim's margin",
        **_at_table2("probe_pattern_vs_fractaldb"),
        primary=False,
    ),
    Claim(
        key="probe_fluctuation_hurts",
        text="IFS parameter fluctuation lowers the linear probe of OFDB's features.",
        test="superiority",
        a="ofdb",
        b="ofdb+fluctuation",
        **_at_table2("probe_fluctuation_hurts"),
        primary=False,
    ),
)


#: The claims of a readout study (``StudyPlan.endpoint == "readout"``): the paper's variable as a
#: 2x2 of instances (OFDB's one image per category; the instances of OFDB with IFS fluctuation,
#: FractalDB's 25 weight rows per category) x augmentation (minimal; the paper's), read on the
#: frozen features (the profile's primary readout), one Holm family.
_INSTANCES = (
    "The instances are FractalDB's 25 IFS weight rows of each category (OFDB with IFS fluctuation), "
    "not FractalDB's 1,000 (25 rows x 10 renders x 4 flips): in the pilot FractalDB missed its "
    "own-task bar at four times OFDB's steps, and the fluctuation row reached it at OFDB's."
)
READOUT_CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="aug_noninferior_to_instances",
        text="With the paper's augmentation, OFDB's one image per category is non-inferior to "
        "FractalDB's instances of the same categories: the readout of OFDB's features is lower than "
        "the instances' by less than the margin (1 point), or higher.",
        test="non-inferiority",
        a="ofdb+aug",
        b="ofdb+fluctuation+aug",
        margin=1.0,
        why_margin="1 point: below the paper's own gap in OFDB's favour (+1.4 on the average of "
        "Table 2's seven data sets), so a deficit of the size the paper reports the other way cannot "
        "pass as agreement.",
        **_at_table2("aug_noninferior_to_instances"),
        differs=_INSTANCES + " The frozen features are read on 10 labels per class of "
        "Fashion-MNIST, not fine-tuned on CIFAR-100; the paper's augmentation without Mixup / CutMix "
        "(with them OFDB did not learn its own task in the pilot); OFDB with the default option, not "
        "random pattern (which a 32 px render erases).",
    ),
    Claim(
        key="instances_matter_less_with_aug",
        text="Instances matter less under the paper's augmentation: the instances' lead over OFDB "
        "shrinks when the augmentation is turned on ((instances - OFDB) with the minimal augmentation "
        "minus (instances - OFDB) with the paper's is above 0).",
        test="interaction",
        a="ofdb+fluctuation",
        b="ofdb",
        c="ofdb+fluctuation+aug",
        d="ofdb+aug",
        **_at_table2("instances_matter_less_with_aug"),
        differs=_INSTANCES,
    ),
    Claim(
        key="aug_helps_ofdb",
        text="The paper's augmentation raises the readout of OFDB's features over the minimal "
        "augmentation (crops of 80-100 %).",
        test="superiority",
        a="ofdb+aug",
        b="ofdb",
        **_at_table2("aug_helps_ofdb"),
    ),
    Claim(
        key="more_categories_help",
        text="More pre-training categories give a higher readout (a positive slope per doubling of "
        "the number of OFDB categories with the paper's augmentation, at equal steps).",
        test="trend",
        a=None,
        b=None,
        **_at_table2("more_categories_help"),
        differs="A proxy of Table 3's 1k to 21k scaling, not Table 3: equal steps at every count.",
        primary=False,
    ),
)


def for_table(claims: tuple[Claim, ...], table: str, column: str) -> tuple[Claim, ...]:
    """``claims`` with the paper's evidence (``paper``, ``paper_delta``) read at ``table`` and
    ``column``; keys, rows, tests, margins and primary flags unchanged."""
    return tuple(dataclasses.replace(c, **evidence(c.key, table, column)) for c in claims)


def for_profile(claims: tuple[Claim, ...], profile: str) -> tuple[Claim, ...]:
    """``claims`` citing the published table and column a profile's numbers go beside
    (``StudyPlan.paper_table`` / ``paper_column``: Table 2's CIFAR-100 at ``mini`` and ``paper``,
    Table 3's ViT-B ImageNet-1k column at ``paper-21k``)."""
    from ..config import get_profile

    plan = get_profile(profile).study
    return for_table(claims, plan.paper_table, plan.paper_column)


def by_key(key: str) -> Claim:
    for c in CLAIMS + PROBE_CLAIMS + READOUT_CLAIMS:
        if c.key == key:
            return c
    raise ParamError(
        "claim",
        f"unknown claim {key!r}; choose from {', '.join(c.key for c in CLAIMS + PROBE_CLAIMS + READOUT_CLAIMS)}",
    )


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


def failed_finetunes(runs: pd.DataFrame) -> pd.Series:
    """The pre-registered rule for failed fine-tunings: True where a run failed.

    A fine-tuning fails when its final training loss is missing or above its row's median (over the
    seeds, per row and category count) by more than ``FAILED_LOSS_MADS`` scaled median absolute
    deviations and at least ``FAILED_LOSS_MIN``: it stopped far short of where its siblings got.
    Its pair is dropped from every test that reads it. Indexed like ``runs``.
    """
    if not len(runs) or "final_loss" not in runs.columns:
        return pd.Series(False, index=runs.index)
    keys = ["row", "categories"] if "categories" in runs.columns else ["row"]
    loss = runs["final_loss"].astype(float)
    grouped = loss.groupby([runs[k].fillna(-1) for k in keys])
    median = grouped.transform("median")
    mad = (loss - median).abs().groupby([runs[k].fillna(-1) for k in keys]).transform("median")
    limit = median + (FAILED_LOSS_MADS * 1.4826 * mad).clip(lower=FAILED_LOSS_MIN)
    return loss.isna() | (loss > limit)


def _gate(pretrain: pd.DataFrame | None, row: str, categories: int | None) -> pd.Series | None:
    """Per seed: did (row, categories)'s pre-training reach its bar? None when it has no pre-training."""
    if pretrain is None or not len(pretrain) or row == "scratch":
        return None
    sel = pretrain[pretrain["row"] == row]
    if categories is not None:
        sel = sel[sel["categories"] == categories]
    if not len(sel):
        return None
    return (sel["own_top1"] >= sel["bar"]).groupby(sel["seed"]).all()


def _usable_seeds(
    runs: pd.DataFrame, pretrain: pd.DataFrame | None, keys: list[tuple[str, int | None]]
) -> tuple[list[int], list[str]]:
    """Seeds whose every run of ``keys`` finished, did not fail and (pre-training) passed its bar.

    Returns:
        (usable seeds, one reason per (row, categories) that lost seeds).
    """
    failed = failed_finetunes(runs)
    seeds = set(runs["seed"].unique())
    notes = []
    for row, categories in keys:
        sel = runs["row"] == row
        if categories is not None and "categories" in runs.columns and row != "scratch":
            sel &= runs["categories"] == categories
        ok_runs = set(runs.loc[sel & ~failed, "seed"])
        n_failed = int((sel & failed).sum())
        size = f" ({categories} categories)" if categories is not None and row != "scratch" else ""
        if n_failed:
            notes.append(f"{row}{size}: {n_failed} failed fine-tuning(s) dropped")
        gate = _gate(pretrain, row, categories)
        if gate is not None:
            passed = set(gate[gate].index)
            if len(passed) < len(gate):
                mean = float(pretrain.loc[(pretrain["row"] == row), "own_top1"].mean())
                notes.append(
                    f"{row}{size} passed its own-task bar in {len(passed)} of {len(gate)} seeds "
                    f"(mean {mean:.1f} %)"
                )
            ok_runs &= passed
        seeds &= ok_runs
    return sorted(seeds), notes


def _keys(runs: pd.DataFrame, rows: list[str]) -> list[tuple[str, int | None]]:
    out = []
    for r in rows:
        if "categories" not in runs.columns or r == "scratch":
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
        "shift": shift,
        "welch_low": welch[1],
        "welch_high": welch[2],
        "p": p_fwd,
        "p_opposite": p_back,
        "diffs": [float(x) for x in diffs.tolist()],
    }


def _min_pairs(n_seeds: int) -> int:
    return max(2, math.ceil(MIN_PAIRS_FRACTION * n_seeds))


def evaluate(
    runs: pd.DataFrame,
    scaling: pd.DataFrame | None = None,
    pretrain: pd.DataFrame | None = None,
    value: str = "top1_last",
    claims: tuple[Claim, ...] = CLAIMS,
    profile: str | None = None,
) -> pd.DataFrame:
    """Test every claim whose rows ran; one row per claim.

    The pre-registered rules: a seed's pair is dropped from a claim when a fine-tuning of it failed
    (``failed_finetunes``) or a pre-training of it missed its own-task bar in that seed; a claim
    left with fewer than ``MIN_PAIRS_FRACTION`` of its seeds is not interpretable (not tested, out
    of the Holm family). The primary claims that are tested form one Holm family over both
    directions (2 hypotheses each) at ``ALPHA``; every bound shown is one-sided at the level Holm
    used for it (``stats.holm_levels``), so a verdict and its bound always agree.

    Args:
        runs: the instances-vs-augmentation runs (columns row, seed, ``value``, final_loss).
        scaling: the category-scaling runs (columns categories, seed, ``value``), for the trend.
        pretrain: own-task results of the pre-training runs (columns row, categories, seed,
            own_top1, bar).
        value: the endpoint column (``top1_last``; ``probe_top1`` for the linear probe).
        claims: the claims to test (``CLAIMS``; ``PROBE_CLAIMS`` for the probe).
        profile: the profile the runs are of: the paper's numbers come from the table its numbers
            go beside (``for_profile``); None keeps each claim's own (Table 2, CIFAR-100).

    Returns:
        Columns claim, key, test, primary, paper, paper_delta, n (pairs tested), seeds (pairs
        run), ours (mean difference, or mean slope in points per doubling for the trend), sd,
        shift (the margin for non-inferiority), welch_low/high (Welch 95 %, arms as independent),
        p, p_opposite (one-sided), p_holm, p_holm_opposite, level, level_opposite (the bounds'
        one-sided levels), low (lower bound: agrees when above -shift), high (upper bound:
        disagrees when below -shift), verdict, why.
    """
    if profile is not None:
        claims = for_profile(claims, profile)
    out = []
    for c in claims:
        if c.test not in TESTS:
            raise ParamError(
                "test", f"claim {c.key}: unknown test {c.test!r}; choose from {', '.join(TESTS)}"
            )
        if c.test == "trend":
            if scaling is None or not len(scaling) or scaling["categories"].nunique() < 2:
                continue
            sizes = sorted(int(n) for n in scaling["categories"].unique())
            keys = [("ofdb", n) for n in sizes]
            use, notes = _usable_seeds(scaling.assign(row="ofdb"), pretrain, keys)
            s = slopes(scaling[scaling["seed"].isin(use)], "categories", value)
            row = _row(c, s, (math.nan, math.nan, math.nan), 0.0)
            n_seeds = int(scaling["seed"].nunique())
        else:
            if runs is None or not len(runs) or not set(c.rows) <= set(runs["row"]):
                continue
            use, notes = _usable_seeds(runs, pretrain, _keys(runs, list(c.rows)))
            arms = [_per_seed(runs, r, value) for r in c.rows]
            arms = [x[x.index.isin(use)] for x in arms]
            common = arms[0].index
            for x in arms[1:]:
                common = common.intersection(x.index)
            a, b = arms[0], arms[1]
            diffs = a[common] - b[common]
            welch = welch_interval(a.tolist(), b.tolist())
            if c.test == "interaction":
                diffs = diffs - (arms[2][common] - arms[3][common])
                welch = (math.nan, math.nan, math.nan)
            shift = c.margin if c.test == "non-inferiority" else 0.0
            row = _row(c, diffs, welch, shift)
            n_seeds = int(runs.loc[runs["row"].isin(c.rows), "seed"].nunique())
        row["seeds"] = n_seeds
        row["learned"] = row["n"] >= _min_pairs(n_seeds)
        row["why"] = "; ".join(notes)
        if n_seeds == 1 and row["n"] == 1:
            row["why"] = "; ".join(
                ["one seed: a point estimate beside the paper's number, not a test", *notes]
            )
            row["p"] = row["p_opposite"] = math.nan
        elif not row["learned"]:
            row["why"] = (
                f"{row['n']} of {n_seeds} pairs usable (at least {_min_pairs(n_seeds)} needed): " + row["why"]
            )
            row["p"] = row["p_opposite"] = math.nan
        out.append(row)
    df = pd.DataFrame(out)
    if not len(df):
        return df
    prim = df["primary"].to_numpy()
    m = int(prim.sum())
    family = df.loc[prim, "p"].tolist() + df.loc[prim, "p_opposite"].tolist()
    adjusted, levels = holm(family), holm_levels(family, ALPHA)
    k = len(family) // 2
    df["p_holm"] = df["p_holm_opposite"] = math.nan
    df["level"] = df["level_opposite"] = ALPHA
    df.loc[prim, "p_holm"], df.loc[prim, "p_holm_opposite"] = adjusted[:k], adjusted[k:]
    df.loc[prim, "level"], df.loc[prim, "level_opposite"] = levels[:k], levels[k:]
    df["low"] = [one_sided_bound(r.diffs, r.level) for r in df.itertuples()]
    df["high"] = [one_sided_bound(r.diffs, r.level_opposite, upper=True) for r in df.itertuples()]
    df["verdict"] = [_verdict(r) for r in df.itertuples()]
    df.attrs["family"] = 2 * m
    return df.drop(columns=["diffs"])


def planned_effect(sd: float, n: int, hypotheses: int, power: float = POWER) -> float:
    """The effect a primary claim detects with ``power`` at ``n`` pairs and spread ``sd``, at the
    first Holm step of a family of ``hypotheses`` (``ALPHA / hypotheses``, the hardest one): the
    prospective power statement of the pre-registration."""
    return detectable_effect(sd, n, ALPHA / hypotheses, power)


#: The verdict of a claim at a one-seed profile: its difference is shown beside the paper's number
#: as a point estimate; one pair cannot test it, so it is neither inconclusive nor agreement.
POINT_ESTIMATE = "point estimate (one seed)"


def _verdict(r) -> str:
    if r.seeds == 1 and r.n == 1:
        return POINT_ESTIMATE
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


def check_consistent(evaluated: pd.DataFrame) -> None:
    """Raise if a verdict disagrees with its displayed bound (agrees: low above -shift; disagrees:
    high below -shift); the claims table calls it before it shows anything."""
    for r in evaluated.itertuples():
        if r.verdict in ("not interpretable", POINT_ESTIMATE) or math.isnan(r.low):
            continue
        agrees, disagrees = r.low > -r.shift, r.high < -r.shift
        expected = "agrees" if agrees else "disagrees" if disagrees else "inconclusive"
        if r.verdict != expected:
            raise AssertionError(f"claim {r.key}: verdict {r.verdict} but bounds [{r.low}, {r.high}]")
