"""The study runner: execute the notebooks with papermill into the book, then build the book.

``run_study("mini")`` executes ``notebooks/NN_*.ipynb`` in order into ``book/study/`` with the
resolved parameters (profile, seeds, data and run roots), and writes them to
``book/study/parameters.json``, with the recipe page ``book/study/recipe.md`` (``ofdb_study.recipe``,
generated from ``config``). Training runs are cached by the experiments module (keyed by their
resolved config), and the data notebook caches its construction timings, so a second call only
re-plots. The helpers the notebooks call live in ``study_helpers`` and are re-exported here. A
failing cell raises ``NotebookFailed`` naming the notebook and the cell; papermill has already
written the partial notebook, which is kept for reading.

Widget state is stored in the executed notebooks (``store_widget_state``), so the widgets render
in the static book.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import get_profile
from ..errors import ParamError
from ..recipe import write_page
from .helpers import check_profile

#: Notebooks of the study, in the order they run; ``00_explorer`` belongs to the explorer.
NOTEBOOKS = (
    "00_explorer",
    "01_data",
    "02_instances_vs_augmentation",
    "03_category_scaling",
    "04_results",
)
PARAMETERS_FILE = "parameters.json"
#: The book's recipe page (every profile's values with their sources), written by ``run_study``.
RECIPE_PAGE = "recipe.md"
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


def default_seeds(profile: str) -> list[int]:
    """The profile's seeds (``config.PROFILES[...].study.seeds``), or ``[0]`` without the training side."""
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
    """The study notebooks in ``NOTEBOOKS`` order; ``only`` selects some by name or number prefix.

    Raises:
        ParamError: ``only`` names no study notebook, or a chosen notebook is not in the folder.
    """
    root = Path(notebooks_dir)
    chosen = list(NOTEBOOKS)
    if only:
        picked = set()
        for key in only:
            match = {n for n in NOTEBOOKS if key in (n, n.split("_", 1)[0], n.split("_", 1)[-1])}
            if not match:
                raise ParamError("only", f"no notebook named {key!r}; have {', '.join(NOTEBOOKS)}")
            picked |= match
        chosen = [n for n in NOTEBOOKS if n in picked]
    missing = [n for n in chosen if not (root / f"{n}.ipynb").is_file()]
    if missing:
        raise ParamError("notebooks", f"{root} lacks {', '.join(f'{n}.ipynb' for n in missing)}")
    return [root / f"{n}.ipynb" for n in chosen]


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
    out = Path(out)
    if out.resolve() == Path(notebooks_dir).resolve():
        raise ParamError("out", "must differ from the notebooks folder (the sources stay without outputs)")
    out.mkdir(parents=True, exist_ok=True)
    write_page(out / RECIPE_PAGE)  # the recipe page, value by value, generated from config
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


def build_book(book_dir: str | os.PathLike = "book", *, quiet: bool = True) -> Path:
    """Fetch the vendored scripts and write the explorer page's files if needed, then build the book
    offline with warnings as errors.

    Returns:
        The built ``index.html``.

    Raises:
        RuntimeError: the build failed (its output's tail is in the message).
    """
    import subprocess
    import sys

    from ..explorer.web import ensure_book_assets  # the book's explorer page runs the explorer's own files
    from .vendor import ensure_vendor

    book_dir = Path(book_dir)
    ensure_vendor(book_dir)
    ensure_book_assets(book_dir, log=None if quiet else print)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.is_file() else "jupyter-book", "build", str(book_dir), "-W", "-n", "--keep-going"]
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = ((done.stdout or "") + (done.stderr or ""))[-4000:]
        raise RuntimeError(f"jupyter-book build {book_dir} failed:\n{tail}")
    return book_dir / "_build" / "html" / "index.html"
