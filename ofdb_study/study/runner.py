"""The study runner: train the plan, execute the notebooks with papermill into the book, build the book.

``run_study("mini")`` first trains every run of the profile's plan that is not finished
(``plan.plan`` and ``run_plan``: one line of progress per run, in the terminal), then
executes ``notebooks/NN_*.ipynb`` in order into ``book/study/`` with the resolved parameters
(profile, seeds, data, run and downstream roots), and writes them to ``book/study/parameters.json``,
the wall-time record to ``book/study/timing.json`` and the recipe page ``book/study/recipe.md``
(``config.recipe``, generated from ``config``). Training runs are cached by their resolved
config, and the data notebook caches its construction timings, so a second call only re-plots. A
failing cell raises ``NotebookFailed`` naming the notebook and the cell; papermill has already
written the partial notebook, which is kept for reading.

Widget state is stored in the executed notebooks (``store_widget_state``), so the widgets render
in the static book.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import get_profile
from ..config.recipe import write_page
from ..errors import ParamError, check_positive_int
from ..files import atomic_write_text
from .helpers import check_profile

#: Notebooks of the study, in the order they run; ``00_explorer`` belongs to the explorer.
NOTEBOOKS = (
    "00_explorer",
    "01_data",
    "02_instances_vs_augmentation",
    "03_category_scaling",
    "04_results",
)
#: Notebooks whose tables read training runs: the runner trains the plan before the first of them.
TRAINING_NOTEBOOKS = ("02_instances_vs_augmentation", "03_category_scaling", "04_results")
PARAMETERS_FILE = "parameters.json"
#: Where the wall time of the last ``run_study`` goes (training, each notebook; the book build adds
#: its own), for the book's timing table.
TIMING_FILE = "timing.json"
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
    profile: str,
    seeds: list[int] | None = None,
    data_root: str = "data",
    run_root: str = "runs",
    downstream_root: str | None = None,
) -> dict:
    """The parameters every study notebook receives (each takes the ones its parameters cell names).

    ``downstream_root`` is where the fine-tuning data set lives (``--data-root`` of ``finetune``;
    None: its default place, e.g. Debian's Fashion-MNIST).
    """
    check_profile(profile)
    seeds = default_seeds(profile) if not seeds else [int(s) for s in seeds]
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ParamError("seeds", f"must be distinct integers >= 0, got {seeds}")
    return {
        "profile": profile,
        "seeds": seeds,
        "data_root": str(data_root),
        "run_root": str(run_root),
        "downstream_root": None if downstream_root is None else str(downstream_root),
    }


def plan_of(params: dict) -> list:
    """The ``plan.plan`` of a study's parameters (``resolve_parameters``): profile, seeds and run
    root, the fine-tunings reading ``downstream_root`` where one is given."""
    from . import plan

    overrides = {"data_root": params["downstream_root"]} if params.get("downstream_root") else {}
    return plan.plan(params["profile"], params["seeds"], params["run_root"], **overrides)


#: The loaders' advice to pass ``--download``, a flag of ``finetune`` the study does not have.
_DOWNLOAD_HINT = re.compile(r"(,? or|,)? (add|with) --download to fetch [^,;]+")


@contextlib.contextmanager
def downstream_errors():
    """Re-raise a fine-tuning's error about its data folder in the study's own words.

    The study hands ``--downstream-root`` to every fine-tuning as its ``data_root``; the data
    loaders name ``data_root`` and ``--data-root``, which the study's user never typed. Inside
    this context such an error names ``downstream_root`` and ``--downstream-root`` instead (any
    other ``ParamError`` that mentions ``--data-root`` keeps its parameter and says
    ``--downstream-root``), without the loaders' advice to add ``--download``.
    """
    try:
        yield
    except ParamError as exc:
        if exc.param != "data_root" and "--data-root" not in exc.message:
            raise
        param = "downstream_root" if exc.param == "data_root" else exc.param
        message = _DOWNLOAD_HINT.sub("", exc.message).replace("--data-root", "--downstream-root")
        raise ParamError(param, message) from None


def check_downstream(specs: list) -> None:
    """Read the downstream data set before anything is trained or written, when a fine-tuning
    of the plan is still to run and reads a ``--downstream-root``, so a folder that does not hold
    the data is refused up front (the loader caches what it read, for the runs of this process).
    Without ``--downstream-root`` the fine-tunings read the data set's usual place, checked when
    the first of them starts.

    Args:
        specs: the study's plan (``plan_of``).

    Raises:
        ParamError: ``downstream_root`` (or ``dataset``) naming what is missing.
    """
    from ..train.downstream import load_downstream

    tuning = next((s for s in specs if s.phase == "finetune" and not s.finished), None)
    if tuning is None or not tuning.cfg.data_root:
        return
    cfg = tuning.cfg
    root = Path(cfg.data_root)
    if not root.is_dir() and not cfg.download:
        what = "is not a folder" if root.exists() else "does not exist"
        raise ParamError(
            "downstream_root", f"--downstream-root {root} {what}; pass the folder that holds {cfg.dataset}"
        )
    with downstream_errors():
        load_downstream(cfg.dataset, data_root=cfg.data_root, download=cfg.download)


def check_finished(params: dict) -> None:
    """Refuse to run the notebooks without training when the plan has unfinished runs (they would
    fail on a missing result), naming how many and the first.

    Raises:
        ParamError: ``no_train``, with the count of unfinished runs and the run root.
    """
    specs = plan_of(params)
    todo = [s for s in specs if not s.finished]
    if todo:
        raise ParamError(
            "no_train",
            f"{len(todo)} of {len(specs)} runs of the {params['profile']} plan are not finished under "
            f"{params['run_root']} (first: {todo[0].path.name}); train them (drop --no-train) or "
            "unpack a results archive there",
        )


def train_plan(params: dict, *, workers: int = 1, log=print) -> dict:
    """Train every run of the profile's plan that is not finished, then make the raw-pixel
    baselines and linear probes it needs (``baselines.compute``); returns the timing record.

    Returns:
        ``{"runs": n, "trained": k, "seconds": wall, "baselines": {...}}`` for this call (seconds
        covers the training; the baselines' record has its own).

    Raises:
        ParamError: a run cannot start; an error about the fine-tunings' data folder names
            ``--downstream-root`` (``downstream_errors``).
    """
    from . import baselines, plan

    specs = plan_of(params)
    todo = [s for s in specs if not s.finished]
    log(
        f"[study] training: {len(todo)} of {len(specs)} runs to train"
        + (f", {workers} at a time" if workers > 1 and todo else "")
    )
    t0 = time.perf_counter()
    with downstream_errors():
        plan.run_plan(specs, log=lambda line: log(f"[study] {line}"), workers=workers)
        seconds = round(time.perf_counter() - t0, 1)
        line = lambda text: log(f"[study] {text}")  # noqa: E731
        if get_profile(params["profile"]).study.endpoint == "readout":
            from . import readouts

            made = readouts.compute(
                specs,
                params["profile"],
                params["run_root"],
                data_root=params.get("downstream_root"),
                workers=workers,
                log=line,
            )
        else:
            made = baselines.compute(specs, params["run_root"], workers=workers, log=line)
    return {"runs": len(specs), "trained": len(todo), "seconds": seconds, "baselines": made}


#: The folder (under the notebooks folder) of a readout study's own versions of the training
#: notebooks (``StudyPlan.endpoint == "readout"``): the same names, so the book's pages stay.
READOUT_NOTEBOOKS = "readout"


def find_notebooks(
    notebooks_dir: str | os.PathLike = "notebooks", only: list[str] | None = None, endpoint: str = "finetune"
) -> list[Path]:
    """The study notebooks in ``NOTEBOOKS`` order; ``only`` selects some by name or number prefix.
    At a readout study (``endpoint="readout"``) a notebook of ``READOUT_NOTEBOOKS`` replaces the one
    of the same name.

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
        raise ParamError(
            "notebooks",
            f"{root} lacks {', '.join(f'{n}.ipynb' for n in missing)}; run from the repository's root "
            "or pass --notebooks DIR (and --out DIR/book/study)",
        )
    readout = root / READOUT_NOTEBOOKS
    return [
        readout / f"{n}.ipynb"
        if endpoint == "readout" and (readout / f"{n}.ipynb").is_file()
        else root / f"{n}.ipynb"
        for n in chosen
    ]


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
    hide_parameters(output)
    return time.perf_counter() - start, params


#: Cells the book leaves out entirely: the parameters and papermill's injected ones (the resolved
#: parameters are listed in ``parameters.json`` and on the results page).
HIDDEN_TAGS = ("parameters", "injected-parameters")


def hide_parameters(path: Path) -> None:
    """Tag the parameter cells of an executed notebook ``remove-cell`` so the book shows results."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if any(t in HIDDEN_TAGS for t in tags) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def run_study(
    profile: str,
    *,
    only: list[str] | None = None,
    seeds: list[int] | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    notebooks_dir: str | os.PathLike = "notebooks",
    data_root: str = "data",
    run_root: str = "runs",
    downstream_root: str | None = None,
    kernel_name: str | None = None,
    progress: bool = False,
    train: bool = True,
    workers: int | None = None,
    log=print,
) -> StudyReport:
    """Train the plan, execute the study notebooks in order into ``out``, record parameters and times.

    Args:
        profile: ``smoke`` (seconds), ``mini`` (the study on 2 CPU cores) or ``paper``.
        only: notebook names or number prefixes to run (default: all present).
        seeds: training seeds (default: the profile's).
        out: folder of the executed notebooks (the book reads ``book/study``).
        notebooks_dir: folder of the source notebooks.
        data_root, run_root: where data and training runs are cached (relative to the cwd).
        downstream_root: where the fine-tuning data set lives (None: its default place).
        kernel_name: Jupyter kernel (default ``python3``, this interpreter).
        progress: papermill's per-cell progress bar.
        train: train the plan's missing runs before the notebooks (False: the notebooks read only
            what is finished, e.g. after ``results unpack``).
        workers: runs trained at once (default: the profile's ``StudyPlan.workers``).
        log: called with one line per run and per notebook.

    Raises:
        NotebookFailed: the first failing notebook; later notebooks do not run.
    """
    params = resolve_parameters(profile, seeds, data_root, run_root, downstream_root)
    workers = check_positive_int(
        "workers", get_profile(profile).study.workers if workers is None else workers
    )
    params["study_dir"] = str(Path(out))
    books = find_notebooks(notebooks_dir, only, get_profile(profile).study.endpoint)
    out = Path(out)
    if out.resolve() == Path(notebooks_dir).resolve():
        raise ParamError("out", "must differ from the notebooks folder (the sources stay without outputs)")
    if not train and any(nb.stem in TRAINING_NOTEBOOKS for nb in books):
        check_finished(params)
    if train and any(nb.stem in TRAINING_NOTEBOOKS for nb in books):
        check_downstream(plan_of(params))  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    write_page(out / RECIPE_PAGE)  # the recipe page, value by value, generated from config
    report = StudyReport(out=str(out), parameters=params)
    record_path = out / PARAMETERS_FILE
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    timing = {"profile": profile, "started": time.time(), "machine": machine(), "notebooks": {}}
    if train and any(nb.stem in TRAINING_NOTEBOOKS for nb in books):
        timing["training"] = train_plan(params, workers=workers, log=log)
    atomic_write_text(out / TIMING_FILE, json.dumps(timing, indent=2) + "\n")  # the notebooks read it
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
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
        timing["notebooks"][nb.stem] = round(seconds, 1)
        atomic_write_text(out / TIMING_FILE, json.dumps(timing, indent=2) + "\n")
        log(f"[study] {nb.stem}: done in {seconds:.1f} s -> {target}")
    return report


def machine() -> str:
    """The hardware in words: processor and usable CPUs, and the CUDA device when there is one."""
    from ..files import usable_cpus

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    text = f"{cpu}, {usable_cpus()} CPU core(s)"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


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
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = ((done.stdout or "") + (done.stderr or ""))[-4000:]
        raise RuntimeError(f"jupyter-book build {book_dir} failed:\n{tail}")
    timing_path = book_dir / "study" / TIMING_FILE
    if timing_path.is_file():  # the build's own time, for the record (the page shows it by itself)
        timing = json.loads(timing_path.read_text())
        timing["book_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(timing_path, json.dumps(timing, indent=2) + "\n")
    return book_dir / "_build" / "html" / "index.html"
