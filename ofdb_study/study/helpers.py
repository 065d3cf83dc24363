"""Helpers the study notebooks call: the data notebook's construction timings, the scaling sweep,
the recipe gap to the paper, labels and glue names. ``ofdb_study.study`` re-exports them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import DataPlan, get_profile
from ..errors import ParamError
from ..files import atomic_write_text, usable_cpus
from ..fractals.defaults import FRACTALDB_FLIPS, FRACTALDB_INSTANCES, FRACTALDB_ROWS, OFDB_POINTS, OFDB_SIZE

if TYPE_CHECKING:
    import pandas as pd


def check_profile(profile: str) -> str:
    """``profile`` if it names one of ``config.PROFILES``, else a ParamError listing them."""
    return get_profile(profile).name


# ----------------------------------------------------------------------------------------------
# Helpers of the data notebook: a construction-time measurement, cached by its plan.

#: The 1k data sets the construction times are scaled to (OFDB-1k, FractalDB-1k).
FULL_CATEGORIES = 1000


def data_plan(profile: str, **overrides) -> DataPlan:
    """The profile's ``config.DataPlan`` with ``overrides`` (None values keep the profile's)."""
    plan = get_profile(profile).data
    clean = {k: v for k, v in overrides.items() if v is not None}
    for key, value in clean.items():
        if key not in DataPlan.__dataclass_fields__:
            raise ParamError(key, f"unknown data setting; known: {', '.join(DataPlan.__dataclass_fields__)}")
        if int(value) < 1:
            raise ParamError(key, f"must be >= 1, got {value}")
    return DataPlan(**{**asdict(plan), **{k: int(v) for k, v in clean.items()}})


def construction_dir(data_root: str | os.PathLike, plan: DataPlan) -> Path:
    return (
        Path(data_root)
        / "construction"
        / (f"s{plan.search}-o{plan.ofdb}-f{plan.fractaldb}x{plan.fractaldb_renders}")
    )


def measure_construction(
    data_root: str | os.PathLike, plan: DataPlan, *, workers: int | None = None, remeasure: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Time the search and the builds of OFDB and FractalDB here; extrapolate to 1k categories.

    The search is timed per accepted category and scaled to 1,000; OFDB's render per image and
    scaled to 1,000 images; FractalDB's per image and scaled to 1,000,000 (1,000 categories x 25
    fluctuations x 10 renders x 4 flips). Numba compilation is done before timing. The result is
    cached in ``<data_root>/construction/<plan>/timing.json``; ``remeasure`` times again.

    Returns:
        ``(table, raw)``: table columns dataset, search_h, render_h, total_h, basis; raw holds the
        measured seconds, counts and the machine.
    """
    import pandas as pd

    from ..fractals.build import build_fractaldb, build_ofdb
    from ..fractals.search import SearchSettings, search, search_to_dir

    root = construction_dir(data_root, plan)
    timing = root / "timing.json"
    if timing.is_file() and not remeasure:
        raw = json.loads(timing.read_text())
    else:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        search(1, SearchSettings(), workers=1)  # compile the numba kernels before timing
        t0 = time.perf_counter()
        result = search_to_dir(root / "search", plan.search, SearchSettings(), workers=workers)
        t_search = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_ofdb(root / "ofdb", plan.ofdb, params=root / "search", workers=workers)
        t_ofdb = time.perf_counter() - t0
        fdb_images = plan.fractaldb * FRACTALDB_ROWS * plan.fractaldb_renders * FRACTALDB_FLIPS
        t0 = time.perf_counter()
        build_fractaldb(
            root / "fractaldb",
            plan.fractaldb,
            params=root / "search",
            renders=plan.fractaldb_renders,
            workers=workers,
        )
        t_fdb = time.perf_counter() - t0
        raw = {
            "plan": asdict(plan),
            "search_seconds": t_search,
            "search_categories": plan.search,
            "n_candidates": result.n_candidates,
            "ofdb_seconds": t_ofdb,
            "ofdb_images": plan.ofdb,
            "fractaldb_seconds": t_fdb,
            "fractaldb_images": fdb_images,
            "cpus": usable_cpus(),
            "workers": workers,
            "machine": platform.processor() or platform.machine(),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_text(timing, json.dumps(raw, indent=2) + "\n")
        # The images were only built to be timed; keep the search (figures read it), drop the rest.
        shutil.rmtree(root / "fractaldb", ignore_errors=True)
    search_h = raw["search_seconds"] / raw["search_categories"] * FULL_CATEGORIES / 3600
    ofdb_h = raw["ofdb_seconds"] / raw["ofdb_images"] * FULL_CATEGORIES / 3600
    fdb_h = raw["fractaldb_seconds"] / raw["fractaldb_images"] * FULL_CATEGORIES * FRACTALDB_INSTANCES / 3600

    def basis(done: int, full: int, what: str) -> str:
        if done >= full:
            return f"measured in full ({full:,} {what})"
        return f"extrapolated from {done:,} of {full:,} {what}"

    search_basis = basis(raw["search_categories"], FULL_CATEGORIES, "categories searched")
    table = pd.DataFrame(
        [
            (
                "FractalDB-1k",
                search_h,
                fdb_h,
                search_h + fdb_h,
                f"{search_basis}; {basis(raw['fractaldb_images'], FULL_CATEGORIES * FRACTALDB_INSTANCES, 'images')}",
            ),
            (
                "2D-OFDB-1k",
                search_h,
                ofdb_h,
                search_h + ofdb_h,
                f"{search_basis}; {basis(raw['ofdb_images'], FULL_CATEGORIES, 'images')}",
            ),
        ],
        columns=["dataset", "search_h", "render_h", "total_h", "basis"],
    )
    return table, raw


def load_search(data_root: str | os.PathLike, plan: DataPlan):
    """The search the construction measurement timed (its histogram, candidates and fill rates)."""
    from ..fractals.search import load_search as _load

    return _load(construction_dir(data_root, plan) / "search")


def sample_images(n_show: int, fractaldb_category: int = 0, size: int = OFDB_SIZE // 2):
    """Images for the data figures: one OFDB image per category, FractalDB's variations of one.

    The categories are the first of the exact search (``fractals.search.first_categories``, cached)
    and the images are the datasets' own (``fractals.datasets``, seed 0), drawn at a smaller size.

    Args:
        n_show: OFDB categories to show (the first ones).
        fractaldb_category: the category whose FractalDB instances are shown.
        size: render size (half of 362 keeps the figure light; the points scale with the area).

    Returns:
        ``(ofdb_images, ofdb_titles, fdb_images, fdb_titles)``; FractalDB's are the 25 fluctuation
        rows of render 0, unflipped, then the four flips of the identity row.
    """
    from ..fractals import datasets, render
    from ..fractals.ifs import category_name, fluctuation_label
    from ..fractals.search import first_categories

    categories = first_categories(max(n_show, fractaldb_category + 1))
    n_points = OFDB_POINTS * size * size // (OFDB_SIZE * OFDB_SIZE)
    ofdb = [
        datasets.ofdb_image(render.points(c, size=size, n_points=n_points), i)
        for i, c in enumerate(categories[:n_show])
    ]
    ofdb_titles = [category_name(i) for i in range(len(ofdb))]
    system = categories[fractaldb_category]
    fdb, fdb_titles = [], []
    for w in range(FRACTALDB_ROWS):
        pts = datasets.fractaldb_points(system, w, size=size, n_points=n_points)
        fdb += datasets.fractaldb_images(pts, fractaldb_category, w, 0, ("none",))
        fdb_titles.append(fluctuation_label(w))
        if w == 0:
            flips = datasets.fractaldb_images(pts, fractaldb_category, 0, 0, render.FLIPS)
    fdb += flips
    fdb_titles += [f"flip {f}" for f in render.FLIPS]
    return ofdb, ofdb_titles, fdb, fdb_titles


# ----------------------------------------------------------------------------------------------
# Helpers of the experiment notebooks.


def _show(key: str, value) -> str:
    if value is not None:
        return str(value)
    return {"depth": "model default", "embed_dim": "model default", "train_per_class": "all"}.get(key, "none")


def scale_gap(profile: str) -> pd.DataFrame:
    """Our profile's recipe beside the paper's: why absolute numbers differ (scale, data, steps)."""
    import pandas as pd

    ours, paper = get_profile(check_profile(profile)), get_profile("paper")
    rows = []
    for phase in ("pretrain", "finetune"):
        a, b = getattr(ours, phase), getattr(paper, phase)
        for key in (
            "model",
            "img_size",
            "patch_size",
            "depth",
            "embed_dim",
            "categories",
            "dataset",
            "train_per_class",
            "batch_size",
            "steps",
            "scale",
            "hflip",
            "vflip",
            "auto_augment",
            "re_prob",
            "mixup",
            "cutmix",
        ):
            if phase == "pretrain" and key in ("dataset", "train_per_class"):
                continue
            if phase == "finetune" and key == "categories":
                continue
            rows.append((phase, key, _show(key, getattr(a, key)), _show(key, getattr(b, key))))
    return pd.DataFrame(rows, columns=["phase", "setting", profile, "paper"])


def glue_key(text: str) -> str:
    """A glue name from a row name (``ofdb+pattern`` -> ``ofdb_pattern``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(text))
