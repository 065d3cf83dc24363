"""Compare someone's category parameters (a folder of ``NNNNN.csv``) with a reference, category by category.

The reference is the exact search run here (the default), another parameter folder, or a dataset
(tree or shards) whose manifest holds its categories' parameters. Each category is

* ``identical``: the same maps, every value equal (within ``tolerance``, default 0: bit for bit);
* ``different``: another number of maps, or values that differ (the largest absolute difference
  is given), or a file that does not parse;
* ``missing``: in the reference but not in the folder (among categories 0 .. the folder's last);
* ``extra``: in the folder but not in the reference.

Their CSV rows are read as plain numbers (``a,b,c,d,e,f,p`` for FractalDB/OFDB; the 3D layout
compares the same way); our search writes them with ``%.18e``, which round-trips exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ParamError
from .ifs import category_name, list_csvs


@dataclass
class Comparison:
    """Per-category result: ``status[name]`` is identical | different | missing | extra."""

    reference: str
    status: dict[str, str] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)

    def names(self, status: str) -> list[str]:
        return sorted(n for n, s in self.status.items() if s == status)

    @property
    def ok(self) -> bool:
        return all(s == "identical" for s in self.status.values())

    def lines(self) -> list[str]:
        """One line per category that is not identical, then a count of each status."""
        out = [
            f"{s}: {n}" + (f" ({self.detail[n]})" if n in self.detail else "")
            for n, s in sorted(self.status.items())
            if s != "identical"
        ]
        counts = ", ".join(
            f"{len(self.names(s))} {s}" for s in ("identical", "different", "missing", "extra")
        )
        return out + [f"{counts} (against {self.reference})"]


def _read_rows(path: Path) -> np.ndarray:
    rows = [[float(v) for v in ln.split(",")] for ln in path.read_text().splitlines() if ln.strip()]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("rows of unequal length" if rows else "no rows")
    return np.array(rows, dtype=np.float64)


def read_params_folder(folder: str | os.PathLike) -> dict[str, Path]:
    """Category name (``00000``) -> CSV path, for every ``NNNNN.csv`` in ``folder`` (``list_csvs``)."""
    return {category_name(int(p.stem)): p for p in list_csvs(folder, param="against")}


def reference_params(reference: str | os.PathLike | None, count: int, workers: int | None = None):
    """``(description, {category name: rows (N, 7)})`` of the reference (see the module doc)."""
    if reference is None:
        from .search import search

        systems = search(count, workers=workers).categories
        return f"the exact search, categories 00000-{category_name(count - 1)}", {
            category_name(i): s.to_rows() for i, s in enumerate(systems)
        }
    from .build import MANIFEST, load_manifest

    ref = Path(reference)
    if (ref / MANIFEST).is_file():
        params = load_manifest(ref).get("params")
        if not params:
            raise ParamError("dir", f"{ref}/manifest.json lists no category parameters")
        return f"the parameters in {ref}/manifest.json", {
            k: np.asarray(v, dtype=np.float64) for k, v in params.items()
        }
    rows = {}
    for name, path in read_params_folder(ref).items():
        try:
            rows[name] = _read_rows(path)
        except ValueError as exc:
            raise ParamError("dir", f"{path}: {exc}") from None
    return f"the parameter folder {ref}", rows


def compare_params(
    theirs: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    *,
    tolerance: float = 0.0,
    workers: int | None = None,
) -> Comparison:
    """Compare the folder ``theirs`` with ``reference`` (None: the exact search); see the module doc."""
    if not tolerance >= 0:
        raise ParamError("tolerance", f"must be >= 0, got {tolerance}")
    files = read_params_folder(theirs)
    last = max(int(n) for n in files)
    described, ref = reference_params(reference, last + 1, workers)
    result = Comparison(described)
    for name in sorted(set(files) | {n for n in ref if int(n) <= last}):
        if name not in files:
            result.status[name] = "missing"
        elif name not in ref:
            result.status[name] = "extra"
        else:
            try:
                got = _read_rows(files[name])
            except ValueError as exc:
                result.status[name], result.detail[name] = "different", f"does not parse: {exc}"
                continue
            want = ref[name]
            if got.shape != want.shape:
                result.status[name] = "different"
                result.detail[name] = (
                    f"{got.shape[0]} maps x {got.shape[1]} values, reference {want.shape[0]} x {want.shape[1]}"
                )
                continue
            diff = float(np.max(np.abs(got - want)))
            if diff <= tolerance:
                result.status[name] = "identical"
            else:
                result.status[name], result.detail[name] = "different", f"max abs difference {diff:.3g}"
    return result
