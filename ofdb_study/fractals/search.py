"""The exact FractalDB / 2D-OFDB category search (public script: ryoo-nakamura/OFDB,
``2d-ofdb-generator/param_search/ifs_search.py``).

The public search draws everything from NumPy's legacy global Mersenne Twister, seeded once:
per candidate ``N = randint(2, 8)``, six ``uniform(-1, 1)`` per map, then ``random(100000)``
for the chaos game, always drawn in full. A candidate is kept when its 100,000-point chaos game,
rescaled into a 512 px square with 6 px padding, lights at least 20 % of the pixels.

How we make it fast without changing a bit:

* A *producer* walks the stream: it draws the maps of a batch of candidates, snapshots the
  generator state where each candidate's uniforms begin and skips the 200,000 words of those
  uniforms without tempering them (the stream layout does not depend on the uniforms' values).
* *Workers* take the snapshots and run the chaos games, regenerating their own uniforms. They
  are numba ``nogil`` kernels on threads, so a batch is scored while the producer draws the next.
* Each chaos game runs as interleaved segments with checked seams (``kernels.chaos_interleaved``),
  which gives the sequential game's points bit for bit in about a third of the time.

The accepted categories and their order are the same for every number of workers.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numba as nb
import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import (
    COMMON_FILES,
    OUTPUT_KINDS,
    atomic_write_text,
    check_fits,
    prepare_output,
    release_output,
    resolve_workers,
)
from . import mt
from .defaults import (
    POINT_BYTES,
    SEARCH_PAD,
    SEARCH_POINTS,
    SEARCH_RATE,
    SEARCH_SEED,
    SEARCH_SIZE,
)
from .ifs import (
    IFS,
    category_name,
    check_categories,
    probabilities_from_determinants,
    read_csv,
    read_dir,
    write_csv,
)
from .kernels import chaos_game, nan_rule_and_rescale

MAX_MAPS = 7
STATE_FILE = "search_state.json"
LOG_FILE = "search_log.csv"
#: What a search folder owns (``files.prepare_output``): its categories, log, state, temporaries.
SEARCH_FILES = (*OUTPUT_KINDS["search"]["files"], *COMMON_FILES)
HIST_BINS = 100


@dataclass(frozen=True)
class SearchSettings:
    """What defines a search; two searches with equal settings give equal categories."""

    seed: int = SEARCH_SEED
    rate: float = SEARCH_RATE
    points: int = SEARCH_POINTS
    size: int = SEARCH_SIZE
    pad: int = SEARCH_PAD

    def validate(self) -> SearchSettings:
        check_positive_int("seed", self.seed, minimum=0)
        if self.seed > 2**32 - 1:
            raise ParamError("seed", f"must be between 0 and 2**32 - 1, got {self.seed}")
        if not (0.0 <= float(self.rate) <= 1.0):
            raise ParamError("rate", f"must be between 0 and 1, got {self.rate}")
        check_positive_int("points", self.points, minimum=2)
        check_positive_int("size", self.size, minimum=1)
        check_positive_int("pad", self.pad, minimum=0)
        if self.size - 2 * self.pad < 1:
            raise ParamError("size", f"must exceed 2 * pad = {2 * self.pad}, got {self.size}")
        check_fits("points", self.points * POINT_BYTES, f"{self.points:,} points")
        check_fits("size", self.size * self.size, f"a {self.size:,} px canvas")
        return self


@dataclass
class SearchResult:
    """Accepted categories and the bookkeeping of the walk through the stream.

    Attributes:
        categories: the accepted systems, in order.
        candidates: for each category, its 1-based candidate number.
        fill_rates: for each category, its fill rate.
        n_candidates: candidates drawn so far (accepted or not).
        histogram: counts of all candidates' fill rates in ``HIST_BINS`` equal bins over [0, 1].
        state: generator state (625 uint32) after the last accepted candidate's uniforms.
    """

    settings: SearchSettings
    categories: list[IFS] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    fill_rates: list[float] = field(default_factory=list)
    n_candidates: int = 0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, dtype=np.int64))
    state: np.ndarray | None = None

    @property
    def acceptance_rate(self) -> float:
        return len(self.categories) / max(self.n_candidates, 1)


@nb.njit(cache=True, nogil=True)
def _draw_batch(state, n, n_words_uniforms, maps_out, nmaps_out, states_out):
    """Draw ``n`` candidates' maps; snapshot the state where each one's uniforms begin."""
    for k in range(n):
        n_maps = mt.randint_masked(state, 2, 8)
        nmaps_out[k] = n_maps
        for i in range(n_maps):
            for j in range(6):
                maps_out[k, i, j] = -1.0 + 2.0 * mt.next_double(state)
        states_out[k, :] = state
        mt.skip(state, n_words_uniforms)


@nb.njit(cache=True, nogil=True)
def _score(maps_all, nmaps, states, index, n_points, size, pad, fills):
    """Fill rate of the candidates ``index`` (a shard of the batch)."""
    xs = np.empty(n_points, dtype=np.float64)
    ys = np.empty(n_points, dtype=np.float64)
    px = np.empty(n_points, dtype=np.uint16)
    py = np.empty(n_points, dtype=np.uint16)
    uniforms = np.empty(n_points)
    choice = np.empty(n_points, dtype=np.uint8)
    stats = np.zeros(5)
    canvas = np.zeros(size * size, dtype=np.uint8)
    state = np.empty(states.shape[1], dtype=np.uint32)
    side = np.uint64(size)
    for k in index:
        n_maps = nmaps[k]
        maps = maps_all[k, :n_maps, :]
        dets = np.empty(n_maps)
        total = 0.0
        for i in range(n_maps):
            dets[i] = abs(maps[i, 0] * maps[i, 3] - maps[i, 1] * maps[i, 2])
            total += dets[i]
        cum = np.empty(n_maps)
        acc = 0.0
        for i in range(n_maps):
            acc += dets[i] / total
            cum[i] = acc
        state[:] = states[k]
        mt.fill_doubles(state, uniforms, n_points - 1)
        chaos_game(maps, cum, uniforms, n_points, xs, ys, stats, choice)
        n_kept = nan_rule_and_rescale(xs, ys, n_points, n_points, size, pad, px, py, stats)
        lit = 0
        for i in range(n_kept):  # branch-free: whether a pixel is new is a coin toss
            x = np.uint64(px[i])
            y = np.uint64(py[i])
            if (x < side) & (y < side):
                cell = y * side + x
                lit += 1 - canvas[cell]
                canvas[cell] = 1
        canvas[:] = 0
        fills[k] = lit / (size * size)


def scan(
    draw, score, take, accepted, wanted: int, *, batch: int, workers: int, progress: bool, desc: str
) -> None:
    """The driver of the searches (2D here, 3D in ``ofdb3d``): score one batch while drawing the next.

    ``draw()`` draws the next batch of candidates from the one stream, in the calling thread, and
    returns it with the arrays its scores go into; ``score(drawn, shard)`` scores the candidates
    ``shard`` (indices) of a batch on one of ``workers`` threads (``nogil`` kernels);
    ``take(drawn)`` then reads the scored batch in candidate order. Batches go on until
    ``accepted()`` reaches ``wanted``, so the result does not depend on ``workers``; a batch is
    always drawn ahead of the one scored.

    Args:
        draw, score, take, accepted: as above.
        wanted: categories wanted in all.
        batch: candidates per batch.
        workers: scoring threads.
        progress: show a tqdm bar named ``desc``.
    """
    shards = [np.arange(w, batch, workers) for w in range(workers)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=wanted, initial=accepted(), unit="cat", desc=desc)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            ahead = draw()
            while accepted() < wanted:
                drawn = ahead
                jobs = [pool.submit(score, drawn, shard) for shard in shards]
                ahead = draw()
                for job in jobs:
                    job.result()
                before = accepted()
                take(drawn)
                if bar is not None:
                    bar.update(accepted() - before)
    finally:
        if bar is not None:
            bar.close()


def search(
    n_categories: int,
    settings: SearchSettings | None = None,
    *,
    workers: int | None = None,
    resume_from: SearchResult | None = None,
    batch: int = 1024,
    progress: bool = False,
    on_batch=None,
) -> SearchResult:
    """Run the category search until ``n_categories`` systems are accepted.

    Args:
        n_categories: total number of categories wanted (including those in ``resume_from``).
        settings: seed, fill-rate threshold, points, image size, padding.
        workers: scoring threads (default: ``files.usable_cpus()``). Does not change the result.
        resume_from: a partial result to continue (its ``state`` must be set).
        batch: candidates drawn per producer step.
        progress: show a tqdm bar.
        on_batch: called with the result after each batch that accepted something (checkpointing).

    Returns:
        The result, holding exactly the first ``n_categories`` accepted categories.
    """
    settings = (settings or SearchSettings()).validate()
    n_categories = check_categories(n_categories)
    workers = resolve_workers(workers)
    if resume_from is not None:
        result = resume_from
        if result.settings != settings:
            raise ParamError("resume", f"settings differ from the saved search: {result.settings}")
        state = result.state.copy()
    else:
        result = SearchResult(settings=settings)
        state = mt.legacy_state(settings.seed)
    words = 2 * settings.points
    bins = np.linspace(0.0, 1.0, HIST_BINS + 1)

    def draw():
        drawn = (
            np.zeros((batch, MAX_MAPS, 6)),
            np.zeros(batch, dtype=np.int64),
            np.zeros((batch, mt.STATE_LEN), dtype=np.uint32),
        )
        _draw_batch(state, batch, words, *drawn)
        return (*drawn, np.zeros(batch), state.copy())  # fill rates; the state after the batch

    def score(drawn, shard):
        maps, nmaps, states, fills, _ = drawn
        _score(maps, nmaps, states, shard, settings.points, settings.size, settings.pad, fills)

    def take(drawn):
        maps, nmaps, states, fills, after_batch = drawn
        accepted_before = len(result.categories)
        for k in range(batch):
            result.n_candidates += 1
            result.histogram[min(np.searchsorted(bins, fills[k], side="right") - 1, HIST_BINS - 1)] += 1
            if fills[k] >= settings.rate:
                m = maps[k, : nmaps[k]].copy()
                result.categories.append(IFS(m, probabilities_from_determinants(m)))
                result.candidates.append(result.n_candidates)
                result.fill_rates.append(float(fills[k]))
                if len(result.categories) == n_categories:
                    st = states[k].copy()
                    mt.skip(st, words)
                    result.state = st
                    break
        else:
            result.state = after_batch
        if on_batch is not None and len(result.categories) > accepted_before:
            on_batch(result)

    scan(
        draw,
        score,
        take,
        lambda: len(result.categories),
        n_categories,
        batch=batch,
        workers=workers,
        progress=progress,
        desc="search",
    )
    return result


# ----------------------------------------------------------------------------------------------
# On disk: NNNNN.csv per category, a log of accepted candidates, and the state to resume from.


def _save_state(out: Path, result: SearchResult, written: int) -> int:
    """Write the categories not yet on disk, then the state file (atomically); returns count."""
    for i in range(written, len(result.categories)):
        write_csv(out / f"{category_name(i)}.csv", result.categories[i])
    log = out / LOG_FILE
    lines = ["category,candidate,n_maps,fill_rate\n"] + [
        f"{category_name(i)},{c},{ifs.n_maps},{f:.6f}\n"
        for i, (ifs, c, f) in enumerate(zip(result.categories, result.candidates, result.fill_rates))
    ]
    atomic_write_text(log, "".join(lines))
    doc = {
        "settings": result.settings.__dict__,
        "n_categories": len(result.categories),
        "n_candidates": result.n_candidates,
        "histogram": result.histogram.tolist(),
        "state": result.state.tolist(),
        "complete_for": None,
    }
    atomic_write_text(out / STATE_FILE, json.dumps(doc))
    return len(result.categories)


def load_search(out: str | os.PathLike) -> SearchResult:
    """Read a search folder back (categories, log and state) to resume or inspect it."""
    out = Path(out)
    path = out / STATE_FILE
    if not path.is_file():
        raise ParamError("out", f"{out} holds no {STATE_FILE}: not a search folder")
    doc = json.loads(path.read_text())
    settings = SearchSettings(**doc["settings"])
    result = SearchResult(settings=settings)
    result.n_candidates = int(doc["n_candidates"])
    result.histogram = np.array(doc["histogram"], dtype=np.int64)
    result.state = np.array(doc["state"], dtype=np.uint32)
    rows = (out / LOG_FILE).read_text().splitlines()[1:]
    for i in range(int(doc["n_categories"])):
        name, cand, _, fill = rows[i].split(",")
        result.categories.append(read_csv(out / f"{name}.csv"))
        result.candidates.append(int(cand))
        result.fill_rates.append(float(fill))
    return result


def search_to_dir(
    out: str | os.PathLike,
    n_categories: int,
    settings: SearchSettings | None = None,
    *,
    workers: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    batch: int = 1024,
    wait: bool = False,
) -> SearchResult:
    """Search and write ``out/NNNNN.csv``; ``resume`` continues an interrupted or shorter search.

    A folder that holds a search (``SEARCH_FILES``) is refused unless ``resume`` (same settings,
    continue) or ``force`` (remove those files first); see ``files.prepare_output``. Another
    process writing ``out`` is refused, or waited for with ``wait`` (the shared cache).
    """
    settings = (settings or SearchSettings()).validate()
    n_categories = check_categories(n_categories)
    if workers is not None:
        check_positive_int("workers", workers)
    out = Path(out)
    previous = None
    if prepare_output(out, owned="search", resume=resume, force=force, lock=True, wait=wait):
        if not (out / STATE_FILE).is_file():
            raise ParamError("resume", f"{out} holds no {STATE_FILE} to resume from")
        previous = load_search(out)
        if previous.settings != settings:
            raise ParamError("resume", f"{out} was searched with {previous.settings}, not {settings}")
    if previous is not None and len(previous.categories) >= n_categories:
        release_output(out)
        return previous
    out.mkdir(parents=True, exist_ok=True)
    written = len(previous.categories) if previous else 0

    def checkpoint(result: SearchResult) -> None:
        nonlocal written
        written = _save_state(out, result, written)

    result = search(
        n_categories,
        settings,
        workers=workers,
        resume_from=previous,
        batch=batch,
        progress=progress,
        on_batch=checkpoint,
    )
    written = _save_state(out, result, written)
    release_output(out)
    return result


# ----------------------------------------------------------------------------------------------
# The first N categories of the default search, searched once per machine.


def cache_root() -> Path:
    """Where searched categories are cached: ``$OFDB_STUDY_CACHE`` or ``~/.cache/ofdb-study``."""
    return Path(os.environ.get("OFDB_STUDY_CACHE", Path.home() / ".cache" / "ofdb-study"))


_cache_lock = threading.Lock()
_cached: dict[str, SearchResult] = {}


def searched(
    n: int, *, cache_dir: str | os.PathLike | None = None, workers: int | None = None
) -> SearchResult:
    """The default search (seed 1) holding at least its first ``n`` categories, cached.

    The result lives in ``cache_dir`` (default ``cache_root() / "search-seed1"``), written with
    ``search_to_dir`` and resumed there when more categories are asked for, and is kept in this
    process, so each category is searched once per machine. Thread-safe; processes that need it at
    once take turns (the second waits for the first, then reads or extends what it wrote).

    Returns:
        A ``SearchResult`` with ``len(categories) >= n`` (shared: do not modify it).
    """
    n = check_categories(n)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / f"search-seed{SEARCH_SEED}"
    key = str(folder.resolve())
    with _cache_lock:
        result = _cached.get(key)
        if result is None or len(result.categories) < n:
            result = search_to_dir(folder, n, resume=True, workers=workers, wait=True)
            _cached[key] = result
        return result


def first_categories(
    n: int,
    params: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
) -> list[IFS]:
    """The first ``n`` categories: read from ``params`` (a folder of NNNNN.csv), else ``searched``."""
    n = check_categories(n)
    if params is not None:
        return read_dir(params, limit=n)
    return list(searched(n, cache_dir=cache_dir, workers=workers).categories[:n])
