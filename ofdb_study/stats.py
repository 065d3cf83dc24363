"""Statistics over seeds: Student's t distribution, mean and t-interval, paired differences.

Written without SciPy (the regularised incomplete beta function by its continued fraction), so the
results notebook and the book stay light. ``ofdb_study.results`` re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ParamError


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast only on one side of the mean; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student-t cumulative distribution function with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: float) -> float:
    """Student-t quantile, by bisection on ``t_cdf`` (scipy is not a dependency of the package)."""
    if not 0.0 < q < 1.0:
        raise ParamError("q", f"must be strictly between 0 and 1, got {q}")
    if df <= 0:
        raise ParamError("df", f"must be positive, got {df}")
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of independent runs (seeds).

    Args:
        values: one number per seed; NaNs are ignored.
        level: confidence level of the interval.

    Returns:
        ``(mean, low, high)``; with one value the interval is undefined and both ends are NaN.
    """
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + level / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def summarize(
    df: pd.DataFrame, by: str | Sequence[str], value: str = "top1_best", level: float = 0.95
) -> pd.DataFrame:
    """Mean and t-interval of ``value`` over the seeds of each group.

    Args:
        df: one row per run, e.g. from ``experiments.instances_vs_augmentation``.
        by: the grouping column(s); the groups keep their first-appearance order.
        value: the column to summarise.
        level: confidence level.

    Returns:
        The ``by`` columns, then n, mean, low, high, half (half-width of the interval).
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, value] if c not in df.columns]
    if missing:
        raise ParamError("columns", f"missing {', '.join(missing)}; have {', '.join(map(str, df.columns))}")
    rows = []
    for key, group in df.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, low, high = mean_ci(group[value].tolist(), level)
        rows.append((*key, int(group[value].notna().sum()), mean, low, high, (high - low) / 2.0))
    return pd.DataFrame(rows, columns=[*keys, "n", "mean", "low", "high", "half"])


def format_ci(mean: float, half: float, digits: int = 1) -> str:
    """``'84.0 ± 0.3'``, or just the mean when the interval is undefined (one seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if half is None or math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def difference_ci(
    df: pd.DataFrame, a: dict, b: dict, value: str = "top1_best", level: float = 0.95
) -> tuple[float, float, float]:
    """Mean and t-interval of ``a - b`` over the seeds both rows share (paired by seed).

    Args:
        df: one row per run with a ``seed`` column.
        a, b: column -> value filters selecting the two rows (e.g. ``{"pretrain": "ofdb"}``).
    """

    def pick(sel: dict) -> pd.Series:
        mask = np.ones(len(df), dtype=bool)
        for col, val in sel.items():
            mask &= (df[col] == val).to_numpy()
        return df[mask].groupby("seed")[value].mean()

    sa, sb = pick(a), pick(b)
    common = sa.index.intersection(sb.index)
    return mean_ci((sa[common] - sb[common]).tolist(), level)
