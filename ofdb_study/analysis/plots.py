"""Figure functions for the study: each returns a matplotlib ``Figure`` and never shows it.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so a notebook displays each
one exactly once (``display(fig)``) and nothing leaks between figures. ``flipbook`` is the one
widget: a slider linked in the browser to a stack of images, so it works in the static book.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ParamError
from ..fractals.defaults import SEARCH_RATE, SEARCH_SIZE

#: Colours: ours in blue, the paper in grey, later work in orange (colour-blind safe pairs).
OURS = "#1f77b4"
PAPER = "#7f7f7f"
LATER = "#ff7f0e"


def montage(images: Sequence[np.ndarray], ncols: int, gap: int = 4) -> np.ndarray:
    """Tile equal-sized images (H, W) or (H, W, 3) into one RGB array with white gaps."""
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    h, w = images[0].shape[:2]
    out = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        tile = img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile[:h, :w]
    return out


def _grid(fig_or_sub, images: Sequence[np.ndarray], titles: Sequence[str] | None, ncols: int) -> None:
    # One imshow of a montage instead of one axis per image: dozens of axes under a constrained
    # layout take seconds to draw, a single image milliseconds.
    ax = fig_or_sub.subplots()
    gap = 4
    h, w = images[0].shape[:2]
    ax.imshow(montage(images, ncols, gap), interpolation="nearest")
    ax.set_axis_off()
    if titles is not None:
        for i, t in enumerate(titles):
            r, c = divmod(i, ncols)
            ax.text(
                c * (w + gap) + w / 2,
                r * (h + gap) + h - 2,
                t,
                ha="center",
                va="bottom",
                fontsize=6,
                color="w",
                bbox={"facecolor": "k", "alpha": 0.5, "pad": 0.5, "lw": 0},
            )


def ofdb_vs_fractaldb(
    ofdb_images: Sequence[np.ndarray],
    fractaldb_images: Sequence[np.ndarray],
    ofdb_titles: Sequence[str] | None = None,
    fractaldb_titles: Sequence[str] | None = None,
    ncols: int = 5,
) -> Figure:
    """Two panels: one image for each of several OFDB categories, and the instance variations
    FractalDB makes of one category (its fluctuation rows, renders and flips)."""
    rows = max(1, math.ceil(len(fractaldb_images) / ncols))
    left_cols = max(1, math.ceil(len(ofdb_images) / rows))  # same number of rows on both sides
    fig = Figure(figsize=(1.3 * (ncols + left_cols) + 0.4, 1.3 * rows + 0.6), layout="constrained")
    left, right = fig.subfigures(1, 2, wspace=0.04, width_ratios=[left_cols, ncols])
    _grid(left, ofdb_images, ofdb_titles, left_cols)
    left.suptitle(f"OFDB: {len(ofdb_images)} categories,\none image each", fontsize=10)
    _grid(right, fractaldb_images, fractaldb_titles, ncols)
    right.suptitle(f"FractalDB: {len(fractaldb_images)} instances of category 00000", fontsize=10)
    return fig


def fill_rate_histogram(
    histogram: Sequence[int], threshold: float = SEARCH_RATE, accepted: Sequence[float] | None = None
) -> Figure:
    """The search's fill-rate distribution over all candidates (bins over [0, 1]), log counts.

    Args:
        histogram: counts per equal bin over [0, 1] (``SearchResult.histogram``).
        threshold: the acceptance threshold, drawn as a line.
        accepted: the accepted categories' fill rates, drawn as a second histogram when given.
    """
    counts = np.asarray(histogram, dtype=float)
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PAPER, label="all candidates")
    if accepted is not None and len(accepted):
        ax.hist(accepted, bins=edges, color=OURS, label="accepted")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel(f"fill rate (share of lit pixels, {SEARCH_SIZE} px)")
    ax.set_ylabel("candidates")
    ax.set_xlim(0, max(0.6, float(edges[np.nonzero(counts)[0].max() + 1]) if counts.any() else 0.6))
    ax.legend(frameon=False)
    return fig


def construction_bars(table: pd.DataFrame) -> Figure:
    """Hours to build each data set, ours beside the paper's (``paper.construction_vs_paper``)."""
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(table))
    ax.bar(
        x - 0.2, table["ours_total_h"], 0.4, color=OURS, label="measured here (1k, extrapolated where noted)"
    )
    ax.bar(x + 0.2, table["paper_total_h"], 0.4, color=PAPER, label="paper")
    ax.set_xticks(x, table["dataset"])
    ax.set_yscale("log")
    ax.set_ylabel("hours (search + render)")
    ax.legend(frameon=False, fontsize=8)
    return fig


def learning_curves(curves: pd.DataFrame, labels: dict | None = None, title: str | None = None) -> Figure:
    """Loss (and top-1 where logged) against optimizer step, one line per run.

    Args:
        curves: ``runs.learning_curves`` output: columns run, step, loss, lr, top1.
        labels: run -> legend label (default: the run folder's name).
        title: figure title.
    """
    has_top1 = "top1" in curves.columns and curves["top1"].notna().any()
    fig = Figure(figsize=(10 if has_top1 else 6, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if has_top1 else 1))
    for run, group in curves.groupby("run", sort=False):
        label = (labels or {}).get(run, str(run).rstrip("/").split("/")[-1])
        g = group.sort_values("step")
        loss = g.dropna(subset=["loss"])
        line = axes[0].plot(loss["step"], loss["loss"], lw=1, label=label)[0]
        if has_top1:
            top = g.dropna(subset=["top1"])
            axes[1].plot(
                top["step"], top["top1"], marker="o", ms=3, lw=1, color=line.get_color(), label=label
            )
    axes[0].set_xlabel("optimizer step")
    axes[0].set_ylabel("training loss")
    if has_top1:
        axes[1].set_xlabel("optimizer step")
        axes[1].set_ylabel("top-1 (%)")
    handles, names = axes[0].get_legend_handles_labels()
    if len(names) <= 12:
        axes[-1].legend(handles, names, frameon=False, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def bars_with_intervals(
    summary: pd.DataFrame,
    label: str,
    reference: pd.Series | None = None,
    reference_label: str = "paper",
    ylabel: str = "top-1 (%)",
    title: str | None = None,
    baselines: dict[str, float] | None = None,
) -> Figure:
    """Our means with 95 % intervals as bars; an optional reference value per bar as a marker.

    Args:
        summary: ``stats.summarize`` output (mean, low, high; NaN interval for one seed).
        label: the column naming each bar.
        reference: values aligned with ``summary``'s rows (e.g. the paper's numbers), NaN to skip.
        reference_label: legend label of the markers.
        ylabel, title: axis label and title.
        baselines: name -> top-1 on our axis (e.g. the raw-pixel classifiers on the same images),
            drawn as horizontal lines across the bars.
    """
    fig = Figure(figsize=(max(5, 0.9 * len(summary) + 2), 3.4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(summary))
    mean = summary["mean"].to_numpy(dtype=float)
    low = summary["low"].to_numpy(dtype=float)
    high = summary["high"].to_numpy(dtype=float)
    err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    ax.bar(x, mean, color=OURS, label="ours (mean, 95 % interval)")
    ax.errorbar(x, mean, yerr=err, fmt="none", ecolor="k", capsize=3, lw=1)
    for k, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, color="0.35", ls=("--", ":", "-.", (0, (1, 3)))[k % 4], lw=1.2, label=name)
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        ok = ~np.isnan(ref)
        ax2 = ax.twinx()  # the paper's scale (CIFAR-100 at 224 px) is not ours; own axis
        ax2.plot(x[ok], ref[ok], "D", color=PAPER, label=reference_label)
        ax2.set_ylabel(f"{reference_label} top-1 (%)", color=PAPER)
        ax2.legend(loc="upper right", frameon=False, fontsize=8)
    ax.set_xticks(x, summary[label].astype(str), rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    finite = mean[~np.isnan(mean)]
    if finite.size:
        lo = float(np.nanmin(np.where(np.isnan(low), mean, low)))
        lo = min([lo, *(baselines or {}).values()])
        ax.set_ylim(max(0.0, lo - 5.0), None)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def accuracy_vs_categories(summary: pd.DataFrame, paper: pd.DataFrame | None = None) -> Figure:
    """Downstream top-1 and pre-training cost against the number of categories (log x).

    Args:
        summary: ``paper.scaling_summary`` output (categories, mean, low, high, pretrain_seconds).
        paper: optional points (categories, top1) from the paper, drawn on their own axis.
    """
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax, ax_cost = fig.subplots(1, 2)
    c = summary["categories"].to_numpy(dtype=float)
    mean = summary["mean"].to_numpy(dtype=float)
    low = np.where(np.isnan(summary["low"]), mean, summary["low"])
    high = np.where(np.isnan(summary["high"]), mean, summary["high"])
    ax.fill_between(c, low, high, color=OURS, alpha=0.2, lw=0)
    ax.plot(c, mean, "o-", color=OURS, label="ours (mean, 95 % interval)")
    ax.set_xscale("log")
    ax.set_xlabel("pre-training categories (one image each)")
    ax.set_ylabel("downstream top-1 (%)")
    if paper is not None and len(paper):
        ax2 = ax.twinx()
        ax2.plot(paper["categories"], paper["top1"], "D--", color=PAPER, label="paper")
        ax2.set_ylabel("paper top-1 (%)", color=PAPER)
        ax2.legend(loc="lower right", frameon=False, fontsize=8)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax_cost.plot(c, summary["pretrain_seconds"], "s-", color=OURS)
    ax_cost.set_xscale("log")
    ax_cost.set_xlabel("pre-training categories")
    ax_cost.set_ylabel("pre-training wall time (s)")
    return fig


def paper_bars(bars: pd.DataFrame, ours: pd.DataFrame | None = None, title: str | None = None) -> Figure:
    """The paper's numbers and later work's as horizontal bars (``paper.paper_bars``)."""
    fig = Figure(figsize=(7, 0.35 * len(bars) + 1.2), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(bars))[::-1]
    colors = [LATER if s == "later work" else PAPER for s in bars["source"]]
    ax.barh(y, bars["top1"], color=colors)
    for yi, v in zip(y, bars["top1"]):
        ax.text(v + 0.3, yi, f"{v:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, bars["method"])
    ax.set_xlim(max(0.0, float(bars["top1"].min()) - 10.0), float(bars["top1"].max()) + 4.0)
    ax.set_xlabel("top-1 (%)")
    if title:
        ax.set_title(title)
    return fig


def _png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image))
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def flipbook(images: Sequence[np.ndarray], labels: Sequence[str], description: str = "category"):
    """A widget to page through images that works without a kernel (the static book).

    The slider is linked to the stack's index in the browser (``jslink``), so moving it needs no
    Python; every frame is stored in the widget state.

    Returns:
        An ``ipywidgets.VBox``.
    """
    import ipywidgets as w

    if len(images) != len(labels) or not len(images):
        raise ParamError("images", "need as many labels as images, and at least one")
    frames = [
        w.VBox([w.Image(value=_png_bytes(img), format="png", layout=w.Layout(width="181px")), w.Label(lab)])
        for img, lab in zip(images, labels)
    ]
    stack = w.Stack(frames, selected_index=0)
    slider = w.IntSlider(value=0, min=0, max=len(frames) - 1, description=description)
    # A slider alone: it needs nothing but the link. (A Play button also works in this book, but
    # only because book/_ext keeps the theme's Font Awesome script from removing its icon element.)
    w.jslink((slider, "value"), (stack, "selected_index"))
    return w.VBox([slider, stack])


def own_task(own: pd.DataFrame, title: str | None = None) -> Figure:
    """Pre-training's own-task top-1 per row (mean, 95 % interval) with each row's learning bar.

    Args:
        own: ``paper.own_task`` output (row, categories, mean, low, high, bar, chance, learned).
        title: figure title.
    """
    labels = [
        f"{r} ({c})" if own["row"].tolist().count(r) > 1 else r for r, c in zip(own["row"], own["categories"])
    ]
    fig = Figure(figsize=(max(5, 0.9 * len(own) + 2), 3.4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(own))
    mean = own["mean"].to_numpy(dtype=float)
    low = np.where(np.isnan(own["low"]), mean, own["low"])
    high = np.where(np.isnan(own["high"]), mean, own["high"])
    colours = [OURS if ok else LATER for ok in own["learned"]]
    ax.bar(x, mean, color=colours)
    ax.errorbar(x, mean, yerr=np.vstack([mean - low, high - mean]), fmt="none", ecolor="k", capsize=3, lw=1)
    for xi, bar, chance in zip(x, own["bar"], own["chance"]):
        ax.hlines(bar, xi - 0.4, xi + 0.4, colors="k", linestyles="--", lw=1)
        ax.hlines(chance, xi - 0.4, xi + 0.4, colors=PAPER, linestyles=":", lw=1)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("own-task top-1, held-out (%)")
    ax.set_ylim(0, 100)
    ax.plot([], [], "k--", lw=1, label="learning bar")
    ax.plot([], [], ":", color=PAPER, lw=1, label="chance")
    ax.bar([], [], color=LATER, label="below its bar")
    ax.legend(loc="upper right", frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def pilot_curves(doc: dict, title: str | None = None) -> Figure:
    """The pilot's own-task top-1 against steps, one panel per (categories, steps) setting.

    Args:
        doc: the JSON written by ``benchmarks/pilot.py --out`` (``pretraining``: rows with row,
            categories, steps, bar and ``curve`` = [(step, loss, top1), ...]).
        title: figure title.
    """
    runs = doc["pretraining"]
    settings = sorted({(r["categories"], r["steps"]) for r in runs})
    fig = Figure(figsize=(4.2 * len(settings), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(settings), sharey=True))
    for ax, (n, steps) in zip(axes, settings):
        for r in (r for r in runs if (r["categories"], r["steps"]) == (n, steps)):
            curve = [(s, t) for s, _, t in r["curve"] if t is not None]
            if curve:
                line = ax.plot(*zip(*curve), marker="o", ms=3, lw=1, label=r["row"])[0]
                ax.axhline(r["bar"], color=line.get_color(), ls="--", lw=0.8)
        ax.axhline(100.0 / n, color=PAPER, ls=":", lw=1)
        ax.set_title(f"{n} categories, {steps} steps", fontsize=9)
        ax.set_xlabel("optimizer step")
    axes[0].set_ylabel("own-task top-1, held-out (%)")
    axes[0].set_ylim(0, 100)
    axes[-1].legend(frameon=False, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def finetune_pilot(doc: dict, baselines: dict[str, float] | None = None, title: str | None = None) -> Figure:
    """The fine-tuning length pilot: endpoint top-1 against fine-tuning steps, one line per arm and
    seed (``benchmarks/finetune_pilot.py``'s record), with raw-pixel baselines as horizontal lines."""
    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.subplots()
    runs = pd.DataFrame(doc["finetune"])
    for (arm, seed), g in runs.groupby(["arm", "seed"]):
        g = g.sort_values("steps")
        ax.plot(g["steps"], g["top1"], "o-" if arm == "scratch" else "s--", label=f"{arm}, seed {seed}")
    for k, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, color="0.35", ls=(":", "-.")[k % 2], lw=1.2, label=f"{name} (raw pixels)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("fine-tuning steps (each a full schedule)")
    ax.set_ylabel("endpoint top-1 (%)")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    if title:
        ax.set_title(title)
    return fig


def two_by_two(values: pd.DataFrame, title: str | None = None) -> Figure:
    """The readout study's 2x2: instances (lines) across augmentation (x), mean and 95 % interval
    over seeds, with the positive control and the best free alternative as horizontal lines.

    Args:
        values: ``analysis.readout.at`` output (arm, seed, top1).
    """
    from .readout import ARM_TITLES, best_free
    from .stats import mean_ci

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.array([0.0, 1.0])
    for k, (arm, color) in enumerate((("ofdb", OURS), ("ofdb+fluctuation", "#ff7f0e"))):
        stats = [mean_ci(values.loc[values["arm"] == a, "top1"].tolist()) for a in (arm, f"{arm}+aug")]
        mean = np.array([s[0] for s in stats])
        err = np.array([[m - s[1] for m, s in zip(mean, stats)], [s[2] - m for m, s in zip(mean, stats)]])
        ax.errorbar(
            x + 0.04 * (k - 0.5),
            mean,
            yerr=np.nan_to_num(err),
            fmt="o-",
            color=color,
            capsize=3,
            label=ARM_TITLES[arm].split(",")[0],
        )
    lines = {"positive control": "supervised", "best free alternative": best_free(values)}
    for k, (label, arm) in enumerate(lines.items()):
        if arm is not None and (values["arm"] == arm).any():
            ax.axhline(
                values.loc[values["arm"] == arm, "top1"].mean(),
                color="0.35",
                ls=("--", ":")[k],
                lw=1.2,
                label=f"{label} ({ARM_TITLES.get(arm, arm)})" if label != "positive control" else label,
            )
    ax.set_xticks(x, ["minimal augmentation", "paper's augmentation"])
    ax.set_xlim(-0.4, 1.4)
    ax.set_ylabel("readout top-1 (%)")
    ax.legend(frameon=False, fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    return fig
