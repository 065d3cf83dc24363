"""2D iterated function systems: maps, probabilities, weights and the official CSV format.

An IFS category is N affine maps ``w_i(x, y) = (a x + b y + e, c x + d y + f)`` chosen with
probabilities ``p_i``. On disk one category is one CSV file with one row ``a,b,c,d,e,f,p`` per map,
written with NumPy's ``savetxt`` default ``%.18e`` (enough digits to round-trip every double), the
format of the published FractalDB / OFDB parameter files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParamError, check_positive_int
from ..files import atomic_write_text
from .defaults import FRACTALDB_ROWS, OFDB_A_WEIGHT

COEFFICIENTS = ("a", "b", "c", "d", "e", "f")
#: FractalDB's parameter-fluctuation factors, applied to one coefficient of every map at once.
FLUCTUATION_FACTORS = (0.2, 0.6, 1.4, 1.8)
#: Probabilities read from a CSV must sum to 1 within this tolerance.
PROB_TOLERANCE = 1e-6
_CSV_NAME = re.compile(r"^\d{5,}\.csv$")


def cumulative_probs(probs: np.ndarray) -> np.ndarray:
    """Running sum of ``probs`` (N,), accumulated one by one in map order as the public code does."""
    out = np.empty(len(probs), dtype=np.float64)
    total = 0.0
    for i, p in enumerate(probs):
        total += float(p)
        out[i] = total
    return out


@dataclass(frozen=True, eq=False)
class IFS:
    """One IFS category.

    Attributes:
        maps: float64 array of shape (N, 6), the coefficients ``a, b, c, d, e, f`` of each map.
        probs: float64 array of shape (N,), the map probabilities (sum 1), in map order.
    """

    maps: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        maps = np.ascontiguousarray(self.maps, dtype=np.float64)
        probs = np.ascontiguousarray(self.probs, dtype=np.float64)
        if maps.ndim != 2 or maps.shape[1] != 6 or maps.shape[0] < 1:
            raise ParamError("maps", f"must have shape (N, 6) with N >= 1, got {maps.shape}")
        if probs.shape != (maps.shape[0],):
            raise ParamError("probs", f"must have shape ({maps.shape[0]},), got {probs.shape}")
        object.__setattr__(self, "maps", maps)
        object.__setattr__(self, "probs", probs)

    @property
    def n_maps(self) -> int:
        return int(self.maps.shape[0])

    def cumulative(self) -> np.ndarray:
        """Cumulative probabilities accumulated in map order, as the chaos game compares them."""
        return cumulative_probs(self.probs)

    def weighted(self, weights) -> IFS:
        """Return a copy whose coefficients are multiplied column-wise by ``weights`` (6,).

        Probabilities are unchanged, as in the public generators.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (6,):
            raise ParamError("weights", f"must have 6 entries (a..f), got shape {w.shape}")
        return IFS(self.maps * w, self.probs.copy())

    def contraction_factors(self) -> np.ndarray:
        """Spectral norm of each map's linear part, shape (N,); all < 1 means contractive."""
        lin = self.maps[:, [0, 1, 2, 3]].reshape(-1, 2, 2)
        return np.linalg.norm(lin, ord=2, axis=(1, 2))

    def to_rows(self) -> np.ndarray:
        """The official table, shape (N, 7): ``a, b, c, d, e, f, p`` per row."""
        return np.column_stack([self.maps, self.probs])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IFS):
            return NotImplemented
        return np.array_equal(self.maps, other.maps) and np.array_equal(self.probs, other.probs)

    def __repr__(self) -> str:
        return f"IFS(n_maps={self.n_maps})"


def probabilities_from_determinants(maps: np.ndarray) -> np.ndarray:
    """``p_i = |a_i d_i - b_i c_i|`` normalised to sum 1, summed and divided in map order."""
    dets = np.abs(maps[:, 0] * maps[:, 3] - maps[:, 1] * maps[:, 2])
    total = 0.0
    for v in dets:
        total += float(v)
    return dets / total


def fluctuation_weights() -> np.ndarray:
    """FractalDB's 25 weight rows, shape (25, 6).

    Row 0 is the identity; rows 1..24 multiply one coefficient (a, then b, ..., f) by each of
    ``FLUCTUATION_FACTORS`` in turn: row ``1 + 4 * k + j`` scales coefficient ``k`` by factor ``j``.
    The OFDB generator's default (``a`` x 0.2) is row 1.
    """
    rows = [np.ones(6)]
    for k in range(6):
        for factor in FLUCTUATION_FACTORS:
            w = np.ones(6)
            w[k] = factor
            rows.append(w)
    return np.array(rows)


def fluctuation_label(row: int) -> str:
    """Human name of FractalDB weight row ``row`` (0..24): ``identity`` or e.g. ``b x 0.6``."""
    row = check_positive_int("row", row, minimum=0)
    if row >= FRACTALDB_ROWS:
        raise ParamError("row", f"must be between 0 and {FRACTALDB_ROWS - 1}, got {row}")
    if row == 0:
        return "identity"
    k, j = divmod(row - 1, len(FLUCTUATION_FACTORS))
    return f"{COEFFICIENTS[k]} x {FLUCTUATION_FACTORS[j]}"


def a_weights(a_weight: float = OFDB_A_WEIGHT) -> np.ndarray:
    """Weight row (6,) that scales only ``a``: the public 2D-OFDB generator renders with 0.2."""
    w = np.ones(6)
    w[0] = float(a_weight)
    return w


def format_rows(system) -> str:
    """The CSV text of a category (any system with ``to_rows()``, 2D or 3D), identical to
    ``np.savetxt(f, rows, delimiter=',')``."""
    return "".join(",".join(f"{v:.18e}" for v in row) + "\n" for row in system.to_rows())


def write_csv(path: str | os.PathLike, system) -> None:
    """Write one category atomically (``files.atomic_write_text``)."""
    atomic_write_text(path, format_rows(system))


def read_table(path: str | os.PathLike, n_values: int, layout: str) -> np.ndarray:
    """Read a category CSV as a (N, n_values) float64 table whose last column is probabilities.

    Raises:
        ParamError: the file is missing, a row does not have ``n_values`` finite numbers (named
            by ``layout``, e.g. ``a,b,c,d,e,f,p``), a probability is negative, or the
            probabilities do not sum to 1 (within ``PROB_TOLERANCE``).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamError("params", f"no such CSV file: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise ParamError("params", f"{path}:{lineno}: not a row of numbers") from None
        if len(values) != n_values:
            raise ParamError(
                "params", f"{path}:{lineno}: expected {n_values} values {layout}, got {len(values)}"
            )
        rows.append(values)
    if not rows:
        raise ParamError("params", f"{path}: no maps in file")
    table = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise ParamError("params", f"{path}: values must be finite")
    probs = table[:, -1]
    if np.any(probs < 0):
        raise ParamError("params", f"{path}: probabilities must be >= 0")
    if abs(probs.sum() - 1.0) > PROB_TOLERANCE:
        raise ParamError("params", f"{path}: probabilities sum to {probs.sum():.9g}, must sum to 1")
    return table


def read_csv(path: str | os.PathLike) -> IFS:
    """Read one 2D category CSV (rows ``a,b,c,d,e,f,p``); see ``read_table`` for the errors."""
    table = read_table(path, 7, "a,b,c,d,e,f,p")
    return IFS(table[:, :6], table[:, 6])


def list_csvs(directory: str | os.PathLike, param: str = "params") -> list[Path]:
    """The category CSVs (``NNNNN.csv``) of a parameter folder, sorted by name; ParamError (naming
    ``param``) for no folder, no CSV, one that is not a plain file (a FIFO would block its read) or
    a name past the five digits."""
    from .defaults import MAX_CATEGORIES

    directory = Path(directory)
    if not directory.is_dir():
        raise ParamError(param, f"not a folder: {directory}")
    files = sorted(p for p in directory.iterdir() if _CSV_NAME.match(p.name))
    if not files:
        raise ParamError(param, f"no NNNNN.csv category files in {directory}")
    odd = [p for p in files if not p.is_file()]
    if odd:
        raise ParamError(param, f"{odd[0]} is not a plain file")
    late = [p for p in files if int(p.stem) >= MAX_CATEGORIES]
    if late:
        raise ParamError(param, f"{late[0]}: categories are named 00000-{MAX_CATEGORIES - 1:05d}")
    return files


def read_dir(directory: str | os.PathLike, limit: int | None = None, reader=None) -> list:
    """Read the first ``limit`` (default all) categories of a parameter folder, in order, with
    ``reader`` (default ``read_csv``; the 3D module passes its own)."""
    files = list_csvs(directory)
    if limit is not None:
        if limit > len(files):
            raise ParamError("categories", f"asked for {limit}, {directory} holds {len(files)}")
        files = files[:limit]
    return [(reader or read_csv)(p) for p in files]


def check_categories(n, param: str = "categories") -> int:
    """``n`` as an int between 1 and ``MAX_CATEGORIES`` (the five-digit names); ParamError otherwise."""
    from .defaults import MAX_CATEGORIES

    n = check_positive_int(param, n)
    if n > MAX_CATEGORIES:
        raise ParamError(
            param, f"must be at most {MAX_CATEGORIES:,} (categories are named 00000-99999), got {n:,}"
        )
    return n


def category_name(index: int) -> str:
    """Zero-padded category name: 0 -> '00000'."""
    return f"{index:05d}"
