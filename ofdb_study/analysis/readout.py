"""The readout study's analysis: the calibration table, the assay gate and the claims' inputs.

A readout study (``StudyPlan.endpoint == "readout"``; ``study.readouts`` makes its numbers) reads
every arm's frozen features on few labels. Before any claim is read, the assay must show it can see
pre-training (``gate``): on the primary readout (``StudyPlan.primary_readout``), the positive control
(supervised pre-training on real images) and OFDB with the paper's augmentation must each beat the
best *free* alternative (random init, mimetic init, and every pixel baseline, at the same label
budget) by ``GATE_MARGIN`` points, judged by the one-sided 95 % lower bound of the paired mean
difference over seeds. If the gate fails, the study makes no claims.

Everything here reads the long table of ``study.readouts.table``; nothing trains or reads images.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..study.readouts import FREE_ARMS, PIXEL_BASELINES
from .stats import mean_ci, one_sided_bound

#: The gate's margin (points of top-1) over the best free alternative, at one-sided 95 %.
GATE_MARGIN = 1.0
#: The gate's one-sided level.
GATE_LEVEL = 0.05
#: The arms the gate requires to pass: the positive control and OFDB with the paper's augmentation.
GATED_ARMS = ("supervised", "ofdb+aug")
#: How the book names the arms.
ARM_TITLES = {
    "random": "random init",
    "mimetic": "mimetic init",
    "supervised": "supervised on real images (positive control)",
    "ofdb": "OFDB, minimal augmentation",
    "ofdb+aug": "OFDB, paper's augmentation",
    "ofdb+fluctuation": "instances (IFS fluctuation), minimal augmentation",
    "ofdb+fluctuation+aug": "instances (IFS fluctuation), paper's augmentation",
    "pixels-probe": "raw pixels, logistic regression",
    "pixels-1nn": "raw pixels, 1-NN",
    "pca-probe": "PCA of the pixels, logistic regression",
    "randproj-probe": "random projection of the pixels, logistic regression",
}
#: Each arm's role in the calibration table.
ROLES = {
    "random": "free",
    "mimetic": "free",
    "supervised": "positive control",
    **{k: "pixel baseline" for k in PIXEL_BASELINES},
}


def free_alternatives() -> tuple[str, ...]:
    """The arms a gated arm must beat: the free initialisations and the pixel baselines."""
    return (*FREE_ARMS, *PIXEL_BASELINES)


def at(table: pd.DataFrame, readout: str, categories: int | None = None) -> pd.DataFrame:
    """One value per (arm, seed): every arm at ``readout`` (the pixel baselines at their own), the
    pre-trained arms at ``categories`` (the free arms and the positive control at theirs).

    Returns:
        Columns arm, seed, top1.
    """
    if not len(table):
        return pd.DataFrame(columns=["arm", "seed", "top1"])
    pick = (table["readout"] == readout) | (table["readout"] == "pixels")
    sel = table[pick]
    if categories is not None:
        fixed = sel["arm"].isin([*free_alternatives(), "supervised"])
        sel = sel[fixed | (sel["categories"] == categories)]
    return sel[["arm", "seed", "top1"]].reset_index(drop=True)


def _wide(values: pd.DataFrame) -> pd.DataFrame:
    return values.pivot_table(index="seed", columns="arm", values="top1", aggfunc="mean")


def best_free(values: pd.DataFrame) -> str | None:
    """The free alternative with the highest mean over seeds (None when none was read)."""
    wide = _wide(values)
    free = [a for a in free_alternatives() if a in wide.columns]
    return max(free, key=lambda a: wide[a].mean()) if free else None


def gate(values: pd.DataFrame, margin: float = GATE_MARGIN) -> pd.DataFrame:
    """The assay gate: each of ``GATED_ARMS`` against the best free alternative, paired by seed.

    Returns:
        One row per gated arm: arm, against, pairs, mean (difference, points), low (one-sided 95 %
        lower bound), margin, passed.
        ``df.attrs["passed"]``: every gated arm passed (False when one was not read).
    """
    wide = _wide(values)
    against = best_free(values)
    out = []
    for arm in GATED_ARMS:
        if against is None or arm not in wide.columns:
            out.append(
                dict(
                    arm=arm,
                    against=against,
                    pairs=0,
                    mean=math.nan,
                    low=math.nan,
                    margin=margin,
                    passed=False,
                )
            )
            continue
        diffs = (wide[arm] - wide[against]).dropna()
        low = one_sided_bound(diffs.tolist(), GATE_LEVEL) if len(diffs) > 1 else math.nan
        out.append(
            dict(
                arm=arm,
                against=against,
                pairs=len(diffs),
                mean=float(diffs.mean()) if len(diffs) else math.nan,
                low=low,
                margin=margin,
                passed=bool(len(diffs) > 1 and low > margin),
            )
        )
    df = pd.DataFrame(out)
    df.attrs["passed"] = bool(len(df) and df["passed"].all())
    return df


def calibration(values: pd.DataFrame) -> pd.DataFrame:
    """Every arm's mean readout over seeds with its 95 % interval, and its role.

    Returns:
        Columns arm, role, seeds, mean, half (the 95 % half-width), ordered free, pixel baselines,
        positive control, then the 2x2.
    """
    order = [
        *FREE_ARMS,
        *PIXEL_BASELINES,
        "supervised",
        "ofdb",
        "ofdb+aug",
        "ofdb+fluctuation",
        "ofdb+fluctuation+aug",
    ]
    out = []
    for arm, sel in values.groupby("arm"):
        mean, low, high = mean_ci(sel["top1"].tolist())
        out.append(
            dict(arm=arm, role=ROLES.get(arm, "2x2"), seeds=len(sel), mean=mean, half=(high - low) / 2)
        )
    df = pd.DataFrame(out, columns=["arm", "role", "seeds", "mean", "half"])
    rank = {a: i for i, a in enumerate(order)}
    return df.sort_values("arm", key=lambda s: s.map(lambda a: rank.get(a, len(order)))).reset_index(
        drop=True
    )


def claim_runs(values: pd.DataFrame) -> pd.DataFrame:
    """The claims' input (``claims.evaluate``'s ``runs``): columns row, seed, top1."""
    return values.rename(columns={"arm": "row"})


def scaling_runs(table: pd.DataFrame, readout: str, row: str) -> pd.DataFrame:
    """The category sweep's input (``claims.evaluate``'s ``scaling``): the sweep row's readout at
    each count; columns categories, seed, top1."""
    sel = table[(table["arm"] == row) & (table["readout"] == readout)]
    return sel[["categories", "seed", "top1"]].astype({"categories": int}).reset_index(drop=True)


def format_points(mean: float, half: float | None = None, digits: int = 1) -> str:
    """``"57.2 ± 0.8"`` (or ``"57.2"``); an empty cell for a missing number."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if half is None or (isinstance(half, float) and math.isnan(half)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def calibration_for_people(values: pd.DataFrame) -> pd.DataFrame:
    """``calibration`` as the book shows it: named arms, role, seeds and "mean ± 95 % half-width"."""
    cal = calibration(values)
    return pd.DataFrame(
        {
            "arm": [ARM_TITLES.get(a, a) for a in cal["arm"]],
            "role": cal["role"],
            "seeds": cal["seeds"].astype(int),
            "top-1 % (mean ± 95 % interval)": [format_points(m, h) for m, h in zip(cal["mean"], cal["half"])],
        }
    )


def gate_for_people(g: pd.DataFrame) -> pd.DataFrame:
    """``gate`` as the book shows it."""
    return pd.DataFrame(
        {
            "arm": [ARM_TITLES.get(a, a) for a in g["arm"]],
            "against the best free alternative": [ARM_TITLES.get(a, a) if a else "–" for a in g["against"]],
            "pairs": g["pairs"].astype(int),
            "difference, points": [format_points(m) for m in g["mean"]],
            "one-sided 95 % lower bound": [format_points(x) for x in g["low"]],
            "needs above": [f"{m:g}" for m in g["margin"]],
            "passed": ["yes" if p else "no" for p in g["passed"]],
        }
    )


def draws_sd(table: pd.DataFrame, readout: str) -> float:
    """The mean within-seed sd of an arm's draws at ``readout`` (how much the subset draw moves a
    readout), for the record."""
    sel = table[table["readout"] == readout]
    sds = [float(np.std(d, ddof=1)) for d in sel["draws"] if len(d) > 1]
    return float(np.mean(sds)) if sds else math.nan


# ---- the book's tables and statements --------------------------------------------------------
def own_task_for_people(own: pd.DataFrame) -> pd.DataFrame:
    """``paper.own_task`` as the book shows it: arm, categories, seeds, top-1 ± interval, bar, learned."""
    return pd.DataFrame(
        {
            "arm": [ARM_TITLES.get(a, a) for a in own["row"]],
            "categories": own["categories"].astype(int),
            "seeds": own["n"].astype(int),
            "own-task top-1 % (mean ± 95 % interval)": [
                format_points(m, h) for m, h in zip(own["mean"], own["half"])
            ],
            "bar, %": [f"{b:.1f}" for b in own["bar"]],
            "learned (mean at its bar)": ["yes" if x else "no" for x in own["learned"]],
        }
    )


def _cell(sel: pd.Series) -> str:
    mean, low, high = mean_ci(sel.tolist())
    return format_points(mean, (high - low) / 2)


def two_by_two(values: pd.DataFrame) -> pd.DataFrame:
    """The 2x2 of the primary readout: instances (rows) x augmentation (columns), mean ± 95 %."""
    cells = {}
    for data, title in (
        ("ofdb", "OFDB (one image per category)"),
        ("ofdb+fluctuation", "instances (25 IFS weight rows per category)"),
    ):
        cells[title] = {
            "minimal augmentation": _cell(values.loc[values["arm"] == data, "top1"]),
            "paper's augmentation": _cell(values.loc[values["arm"] == f"{data}+aug", "top1"]),
        }
    return pd.DataFrame(cells).T.rename_axis("instances").reset_index()


def every_readout(table: pd.DataFrame, categories: int) -> pd.DataFrame:
    """Every arm (at ``categories`` for the pre-trained ones) on every readout, mean ± 95 %."""
    if not len(table):
        return pd.DataFrame()
    fixed = table["arm"].isin([*free_alternatives(), "supervised"])
    sel = table[fixed | (table["categories"] == categories)]
    order = list(ARM_TITLES)
    out = {}
    for (arm, name), group in sel.groupby(["arm", "readout"]):
        out.setdefault(arm, {})[name] = _cell(group["top1"])
    df = pd.DataFrame(out).T
    df = df.loc[sorted(df.index, key=lambda a: order.index(a) if a in order else len(order))]
    df.index = [ARM_TITLES.get(a, a) for a in df.index]
    return df.fillna("–").rename_axis("arm").reset_index()


def gate_statement(g: pd.DataFrame, profile: str, plain: bool = False) -> str:
    """The gate's verdict, generated from its table: a heading sentence and one line per gated arm
    (Markdown), or one paragraph of plain text (``plain``, for a page that pastes it as text)."""
    if not len(g) or g["pairs"].max() < 2:
        head = "The assay gate could not be judged: fewer than two seeds were read."
        return head if plain else f"**{head}**"
    parts = []
    for r in g.itertuples():
        what = ARM_TITLES.get(r.arm, r.arm)
        parts.append(
            f"{what}: {format_points(r.mean)} points over {ARM_TITLES.get(r.against, r.against)} "
            f"(lower bound {format_points(r.low)}, needs above {r.margin:g}): "
            + ("passed" if r.passed else "failed")
        )
    verdict, why = (
        ("The assay gate passed", "this readout can tell pre-training from none, and the claims are read.")
        if g.attrs.get("passed")
        else (
            "The assay gate failed",
            f"at the {profile} profile this readout cannot show that the pre-training registers "
            "beyond what a free alternative gives, so this build makes no claims; the claims are left "
            "to the GPU profiles, and the numbers are shown for the record, not read.",
        )
    )
    if plain:
        return f"{verdict}: {why} " + "; ".join(parts) + "."
    return f"**{verdict}**: {why}\n\n" + "\n".join(f"- {p}" for p in parts)


def _excludes(r) -> str:
    """What a claim's bounds rule out, in words."""
    if math.isnan(r.low) and math.isnan(r.high):
        return "–"
    bits = []
    if not math.isnan(r.high):
        bits.append(f"a difference above {r.high:+.2f}")
    if not math.isnan(r.low):
        bits.append(f"one below {r.low:+.2f}")
    return "excludes " + " and ".join(bits)


def claims_for_people(evaluated: pd.DataFrame, gate_passed: bool) -> pd.DataFrame:
    """The claims table as the book shows it: claim, primary, pairs, ours [bounds], what the bounds
    exclude, verdict (``not read: the gate failed`` when it did), the paper's number."""
    if not len(evaluated):
        return pd.DataFrame(
            columns=["claim", "role", "pairs", "ours [one-sided bounds]", "bounds", "verdict", "paper"]
        )
    unit = lambda r: " per doubling" if r.test == "trend" else ""  # noqa: E731
    return pd.DataFrame(
        {
            "claim": evaluated["key"],
            "role": ["primary" if p else "secondary" for p in evaluated["primary"]],
            "test": evaluated["test"],
            "pairs": [f"{n}/{s}" for n, s in zip(evaluated["n"], evaluated["seeds"])],
            "ours [one-sided bounds]": [
                f"{r.ours:+.2f}{unit(r)} [{r.low:+.2f}, {r.high:+.2f}]" if not math.isnan(r.ours) else "–"
                for r in evaluated.itertuples()
            ],
            "bounds": [_excludes(r) for r in evaluated.itertuples()],
            "verdict": [
                r.verdict if gate_passed else f"not read: the gate failed ({r.verdict} as measured)"
                for r in evaluated.itertuples()
            ],
            "paper": evaluated["paper"],
        }
    )


def claims_statement(evaluated: pd.DataFrame, gate_passed: bool, profile: str, n_seeds: int) -> str:
    """One paragraph on the claims: how many were tested and how they came out, generated."""
    primary = evaluated[evaluated["primary"]] if len(evaluated) else evaluated
    if not gate_passed:
        return (
            f"No claim is read at the {profile} profile: the assay gate failed. The table keeps what "
            "each claim's test gave, marked as not read."
        )
    counts = primary["verdict"].value_counts() if len(primary) else {}
    return (
        f"Of the {len(primary)} primary claims tested at {profile} with {n_seeds} seed(s), "
        f"{int(counts.get('agrees', 0))} agree with the paper, {int(counts.get('disagrees', 0))} disagree, "
        f"{int(counts.get('inconclusive', 0))} are inconclusive (reported by what their bounds exclude) and "
        f"{int(counts.get('not interpretable', 0))} are not interpretable (a row missed its own-task bar in "
        "too many seeds); one Holm family over both directions."
    )


def scope_statement(profile: str) -> str:
    """What the profile's readout study measures and cannot, generated from its design."""
    from ..config import get_profile, phase_config

    prof = get_profile(profile)
    plan, pre = prof.study, prof.pretrain
    ft = phase_config(profile, "finetune")
    steps = {r: phase_config(profile, "pretrain", **plan.settings_of(r)).steps for r in plan.rows}
    lines = [
        f"- The endpoint is the frozen features of a {pre.depth}-layer, {pre.embed_dim}-wide ViT at "
        f"{pre.img_size} px, read by `{plan.primary_readout}` on {plan.readout_per_class} labelled "
        f"{plan.dataset} images per class ({plan.readout_draws} draws per seed), scored on the whole "
        "test set: what the representation holds, not what a fine-tune reaches.",
        f"- Pre-training: {plan.categories} categories of the exact search; "
        + ", ".join(f"{ARM_TITLES.get(r, r)} {n:,} steps" for r, n in steps.items())
        + f" at batch {pre.batch_size}; the paper pre-trains a ViT-Tiny at 224 px for 240k steps "
        "(FractalDB about 4.9 times longer).",
        "- The paper's augmentation is its recipe's crops, flips, RandAugment and erasing, not its "
        "Mixup / CutMix (see the pilot); random pattern is not tested (a 32 px render erases it).",
        f"- The positive control pre-trains on {plan.control_pool_per_class:,} real {plan.dataset} "
        "images per class that no labelled subset holds: an in-domain bound on what pre-training can "
        "give this readout, not a comparison the paper makes.",
        f"- The fine-tuning recipe ({ft.steps:,} steps) is not run at this profile; the paper's "
        "fine-tuning numbers are beside the claims for their direction only.",
    ]
    return "\n".join(lines)


def pilot_statement(profile: str, folder) -> str:
    """The readout pilots kept with the book (``readout-PROFILE*.json``), each in one paragraph."""
    import json
    from pathlib import Path

    paths = sorted(Path(folder).glob(f"readout-{profile}*.json"))
    if not paths:
        return f"No readout pilot is kept for the `{profile}` profile."
    out = []
    for path in paths:
        doc = json.loads(path.read_text())
        out.append(
            f"**`{path.name}`**, measured {doc['measured']} on {doc['machine']} with `{doc['command']}`, "
            f"seeds {', '.join(map(str, doc['seeds']))}: {doc['summary']}"
        )
    return "\n\n".join(out)


def for_book(df: pd.DataFrame):
    """A table as the book shows it: no index column, numbers already formatted as text."""
    return df.style.hide(axis="index")
