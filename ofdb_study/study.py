"""The study runner: execute the notebooks with papermill into the book, plus the data notebook's helpers.

``run_study("mini")`` executes ``notebooks/NN_*.ipynb`` in order into ``book/study/`` with the
resolved parameters (profile, seeds, data and run roots), and writes them to
``book/study/parameters.json``. Training runs are cached by the experiments module (keyed by their
resolved config), and the data notebook caches its construction timings here, so a second call
only re-plots. A failing cell raises ``NotebookFailed`` naming the notebook and the cell; papermill
has already written the partial notebook, which is kept for reading.

Widget state is stored in the executed notebooks (``store_widget_state``), so the widgets render
in the static book.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ParamError

#: Notebooks of the study, in the order they run; ``00_explorer`` belongs to the explorer.
NOTEBOOKS = (
    "00_explorer",
    "01_data",
    "02_instances_vs_augmentation",
    "03_category_scaling",
    "04_results",
)
PROFILE_NAMES = ("smoke", "mini", "paper")
PARAMETERS_FILE = "parameters.json"
DEFAULT_OUT = "book/study"


class NotebookFailed(RuntimeError):
    """A cell raised while papermill executed a notebook."""

    def __init__(self, notebook: str, cell: int | None, exec_count: int | None, error: str, output: Path):
        where = f"cell {cell}" if cell is not None else "before any cell ran"
        if exec_count is not None:
            where += f" (execution count {exec_count})"
        super().__init__(f"notebook {notebook} failed at {where}: {error}; partial notebook kept at {output}")
        self.notebook, self.cell, self.exec_count, self.error, self.output = (
            notebook,
            cell,
            exec_count,
            error,
            output,
        )


# ----------------------------------------------------------------------------------------------
# Parameters.


def check_profile(profile: str) -> str:
    if profile not in PROFILE_NAMES:
        raise ParamError("profile", f"must be one of {', '.join(PROFILE_NAMES)}, got {profile!r}")
    return profile


def default_seeds(profile: str) -> list[int]:
    """The profile's seeds (``config.PROFILES[...].study.seeds``), or ``[0]`` without the training side."""
    check_profile(profile)
    try:
        from .config import get_profile
    except ImportError:  # the data-only install has no training config
        return [0]
    return [int(s) for s in get_profile(profile).study.seeds]


def resolve_parameters(
    profile: str, seeds: list[int] | None = None, data_root: str = "data", run_root: str = "runs"
) -> dict:
    """The parameters every study notebook receives (each takes the ones its parameters cell names)."""
    check_profile(profile)
    seeds = default_seeds(profile) if not seeds else [int(s) for s in seeds]
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ParamError("seeds", f"must be distinct integers >= 0, got {seeds}")
    return {"profile": profile, "seeds": seeds, "data_root": str(data_root), "run_root": str(run_root)}


def find_notebooks(
    notebooks_dir: str | os.PathLike = "notebooks", only: list[str] | None = None
) -> list[Path]:
    """The study notebooks present, in order; ``only`` selects some by name or number prefix."""
    root = Path(notebooks_dir)
    present = [root / f"{name}.ipynb" for name in NOTEBOOKS if (root / f"{name}.ipynb").is_file()]
    if not only:
        return present
    chosen = []
    for key in only:
        match = [
            p
            for p in present
            if p.stem == key or p.stem.split("_", 1)[0] == key or p.stem.split("_", 1)[-1] == key
        ]
        if not match:
            names = ", ".join(p.stem for p in present)
            raise ParamError("only", f"no notebook named {key!r}; have {names}")
        chosen.extend(m for m in match if m not in chosen)
    return [p for p in present if p in chosen]


# ----------------------------------------------------------------------------------------------
# Running.


@dataclass
class NotebookRun:
    name: str
    output: str
    parameters: dict
    seconds: float


@dataclass
class StudyReport:
    out: str
    parameters: dict
    notebooks: list[NotebookRun] = field(default_factory=list)


def execute(
    notebook: Path,
    output: Path,
    parameters: dict,
    *,
    cwd: str | os.PathLike | None = None,
    kernel_name: str | None = None,
    progress: bool = False,
    timeout: float | None = None,
) -> tuple[float, dict]:
    """Execute one notebook with papermill, passing only the parameters its parameters cell names.

    Returns:
        ``(wall seconds, the parameters passed)``.

    Raises:
        NotebookFailed: a cell raised; ``output`` holds the partial notebook.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    declared = pm.inspect_notebook(str(notebook))
    params = {k: v for k, v in parameters.items() if k in declared}
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # Training shows tqdm bars; in a notebook those become widgets whose state would be stored in
    # the book. The kernel inherits this environment, so switch them off unless asked for.
    saved = os.environ.get("TQDM_DISABLE")
    if not progress:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=params,
            cwd=str(cwd or Path.cwd()),
            kernel_name=kernel_name or "python3",
            progress_bar=progress,
            log_output=False,
            execution_timeout=timeout,
            store_widget_state=True,
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            notebook.stem, exc.cell_index, exc.exec_count, f"{exc.ename}: {exc.evalue}", output
        ) from None
    except Exception as exc:  # the kernel died or would not start: no cell to name
        raise NotebookFailed(notebook.stem, None, None, f"{type(exc).__name__}: {exc}", output) from exc
    finally:
        if saved is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved
    return time.perf_counter() - start, params


def run_study(
    profile: str,
    *,
    only: list[str] | None = None,
    seeds: list[int] | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    notebooks_dir: str | os.PathLike = "notebooks",
    data_root: str = "data",
    run_root: str = "runs",
    kernel_name: str | None = None,
    progress: bool = False,
    log=print,
) -> StudyReport:
    """Execute the study notebooks in order into ``out`` and record the resolved parameters.

    Args:
        profile: ``smoke`` (seconds), ``mini`` (the study on 2 CPU cores) or ``paper``.
        only: notebook names or number prefixes to run (default: all present).
        seeds: training seeds (default: the profile's).
        out: folder of the executed notebooks (the book reads ``book/study``).
        notebooks_dir: folder of the source notebooks.
        data_root, run_root: where data and training runs are cached (relative to the cwd).
        kernel_name: Jupyter kernel (default ``python3``, this interpreter).
        progress: papermill's per-cell progress bar.
        log: called with one line per notebook.

    Raises:
        NotebookFailed: the first failing notebook; later notebooks do not run.
    """
    params = resolve_parameters(profile, seeds, data_root, run_root)
    books = find_notebooks(notebooks_dir, only)
    if not books:
        raise ParamError("notebooks", f"no study notebooks in {notebooks_dir}")
    out = Path(out)
    if out.resolve() == Path(notebooks_dir).resolve():
        raise ParamError("out", "must differ from the notebooks folder (the sources stay without outputs)")
    out.mkdir(parents=True, exist_ok=True)
    report = StudyReport(out=str(out), parameters=params)
    record_path = out / PARAMETERS_FILE
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for nb in books:
        target = out / nb.name
        log(f"[study] {nb.stem}: running ({profile})")
        seconds, used = execute(nb, target, params, kernel_name=kernel_name, progress=progress)
        report.notebooks.append(NotebookRun(nb.stem, str(target), used, round(seconds, 1)))
        record.setdefault("notebooks", {})[nb.stem] = {
            "parameters": used,
            "seconds": round(seconds, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        record.update(
            {
                "profile": profile,
                "seeds": params["seeds"],
                "data_root": data_root,
                "run_root": run_root,
                "cwd": str(Path.cwd()),
                "python": platform.python_version(),
            }
        )
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        log(f"[study] {nb.stem}: done in {seconds:.1f} s -> {target}")
    return report


# ----------------------------------------------------------------------------------------------
# Helpers of the data notebook: a construction-time measurement, cached by its plan.


@dataclass(frozen=True)
class DataPlan:
    """What the data notebook builds and times at a profile.

    Attributes:
        search: categories searched (the search is timed per accepted category).
        ofdb: OFDB categories built (one image each) and timed.
        fractaldb: FractalDB categories built and timed.
        fractaldb_renders: patch renders per fluctuation row (10 in the full recipe).
        show: categories shown in the figures.
    """

    search: int
    ofdb: int
    fractaldb: int
    fractaldb_renders: int
    show: int = 10


#: smoke: seconds; mini: OFDB-1k in full, FractalDB on 10 categories; paper: both in full.
DATA_PLANS = {
    "smoke": DataPlan(search=10, ofdb=10, fractaldb=1, fractaldb_renders=2, show=10),
    "mini": DataPlan(search=1000, ofdb=1000, fractaldb=10, fractaldb_renders=10, show=10),
    "paper": DataPlan(search=1000, ofdb=1000, fractaldb=1000, fractaldb_renders=10, show=10),
}
FULL_CATEGORIES = 1000
FRACTALDB_IMAGES_PER_CATEGORY = 25 * 10 * 4


def data_plan(profile: str, **overrides) -> DataPlan:
    """The profile's ``DataPlan`` with ``overrides`` (None values keep the profile's)."""
    plan = DATA_PLANS[check_profile(profile)]
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
    from .datasets import build_fractaldb, build_ofdb
    from .search import SearchSettings, search, search_to_dir

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
        fdb_images = plan.fractaldb * 25 * plan.fractaldb_renders * 4
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
            "cpus": len(os.sched_getaffinity(0)),
            "workers": workers,
            "machine": platform.processor() or platform.machine(),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        timing.write_text(json.dumps(raw, indent=2) + "\n")
        # The images were only built to be timed; keep the search (figures read it), drop the rest.
        shutil.rmtree(root / "fractaldb", ignore_errors=True)
    search_h = raw["search_seconds"] / raw["search_categories"] * FULL_CATEGORIES / 3600
    ofdb_h = raw["ofdb_seconds"] / raw["ofdb_images"] * FULL_CATEGORIES / 3600
    fdb_h = (
        raw["fractaldb_seconds"]
        / raw["fractaldb_images"]
        * FULL_CATEGORIES
        * FRACTALDB_IMAGES_PER_CATEGORY
        / 3600
    )

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
                f"{search_basis}; {basis(raw['fractaldb_images'], FULL_CATEGORIES * FRACTALDB_IMAGES_PER_CATEGORY, 'images')}",
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
    """The search result the construction measurement wrote (categories, histogram, fill rates)."""
    from .search import load_search as _load

    return _load(construction_dir(data_root, plan) / "search")


def sample_images(categories, n_show: int, fractaldb_category: int = 0, size: int = 181):
    """Images for the data figures: one OFDB image per category, FractalDB's variations of one.

    Args:
        categories: IFS systems (``SearchResult.categories``).
        n_show: OFDB categories to show.
        fractaldb_category: the category whose FractalDB instances are shown.
        size: render size (half of 362 keeps the figure light; the points scale with the area).

    Returns:
        ``(ofdb_images, ofdb_titles, fdb_images, fdb_titles)``; FractalDB's are the 25 fluctuation
        rows of render 0, unflipped, then the four flips of the identity row.
    """
    from .datasets import FLIPS, derive_seed
    from .ifs import COEFFICIENTS, FLUCTUATION_FACTORS, category_name, fluctuation_weights
    from .render import draw, points, render

    n_points = 200_000 * size * size // (362 * 362)
    ofdb = [render(c, size=size, n_points=n_points) for c in categories[:n_show]]
    ofdb_titles = [category_name(i) for i in range(len(ofdb))]
    system = categories[fractaldb_category]
    rows = fluctuation_weights()
    fdb, fdb_titles = [], []
    for w, row in enumerate(rows):
        pts = points(system, size=size, n_points=n_points, a_weight=1.0, weights=row)
        fdb.append(draw(pts, mask_seed=derive_seed(0, fractaldb_category, w, 0)))
        if w == 0:
            fdb_titles.append("identity")
        else:
            k, j = divmod(w - 1, len(FLUCTUATION_FACTORS))
            fdb_titles.append(f"{COEFFICIENTS[k]} x {FLUCTUATION_FACTORS[j]}")
    base = fdb[0]
    flips = {"none": base, "tb": base[::-1], "lr": base[:, ::-1], "both": base[::-1, ::-1]}
    for f in FLIPS:
        fdb.append(np.ascontiguousarray(flips[f]))
        fdb_titles.append(f"flip {f}")
    return ofdb, ofdb_titles, fdb, fdb_titles


# ----------------------------------------------------------------------------------------------
# Helpers of the experiment notebooks.


def scaling_categories(profile: str, categories: list[int] | None = None) -> list[int]:
    """The category-scaling sweep: ``categories`` if given, else the profile's plan."""
    if categories:
        return [int(c) for c in categories]
    from .config import get_profile

    return [int(c) for c in get_profile(check_profile(profile)).study.scaling_categories]


def _show(key: str, value) -> str:
    if value is not None:
        return str(value)
    return {"depth": "model default", "embed_dim": "model default", "train_per_class": "all"}.get(key, "none")


def scale_gap(profile: str) -> pd.DataFrame:
    """Our profile's recipe beside the paper's: why absolute numbers differ (scale, data, steps)."""
    from .config import get_profile

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
            "auto_augment",
            "mixup",
            "cutmix",
        ):
            if phase == "pretrain" and key in ("dataset", "train_per_class"):
                continue
            if phase == "finetune" and key == "categories":
                continue
            rows.append((phase, key, _show(key, getattr(a, key)), _show(key, getattr(b, key))))
    return pd.DataFrame(rows, columns=["phase", "setting", profile, "paper"])


def run_labels(runs: pd.DataFrame, column: str, label: str = "row") -> dict[str, str]:
    """Run folder name -> label, for ``plots.learning_curves`` (its ``run`` column is the folder name)."""
    return {Path(p).name: str(r) for p, r in zip(runs[column], runs[label]) if p is not None and p == p}


def glue_key(text: str) -> str:
    """A glue name from a row name (``ofdb+pattern`` -> ``ofdb_pattern``)."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(text))


def build_book(book_dir: str | os.PathLike = "book", *, quiet: bool = True) -> Path:
    """Fetch the vendored scripts if needed and build the book offline with warnings as errors.

    Returns:
        The built ``index.html``.

    Raises:
        RuntimeError: the build failed (its output's tail is in the message).
    """
    import subprocess
    import sys

    from .vendor import ensure_vendor

    ensure_vendor()
    book_dir = Path(book_dir)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else "jupyter-book", "build", str(book_dir), "-W", "-n", "--keep-going"]
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = ((done.stdout or "") + (done.stderr or ""))[-4000:]
        raise RuntimeError(f"jupyter-book build {book_dir} failed:\n{tail}")
    return book_dir / "_build" / "html" / "index.html"
