"""Statistics over seeds: Student's t distribution, mean and t-interval, paired differences.

Written without SciPy (the regularised incomplete beta function by its continued fraction), so the
results notebook and the book stay light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ParamError


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


def _clean(values: Sequence[float]) -> np.ndarray:
    """The values as floats, None and NaN left out."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    return x[~np.isnan(x)]


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of independent runs (seeds).

    Args:
        values: one number per seed; NaNs are ignored.
        level: confidence level of the interval.

    Returns:
        ``(mean, low, high)``; with one value the interval is undefined and both ends are NaN.
    """
    x = _clean(values)
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
        df: one row per run, e.g. from ``runs.instances_vs_augmentation``.
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


# ----------------------------------------------------------------------------------------------
# Tests of the pre-registered claims: paired one-sided t-tests, Welch intervals, Holm, power.


def one_sided_p(t: float, df: float) -> float:
    """P(T >= t) for Student's t with ``df`` degrees of freedom (the upper tail)."""
    return 1.0 - t_cdf(t, df)


def paired_t(diffs: Sequence[float], shift: float = 0.0) -> tuple[float, float, float, int]:
    """One-sample t statistic of ``diffs + shift`` against 0.

    Args:
        diffs: per-seed differences a - b (the same seed in both arms).
        shift: added to every difference; a non-inferiority margin m tests ``d > -m`` as
            ``d + m > 0``.

    Returns:
        ``(mean of diffs, standard deviation (ddof 1), t, n)``; t is NaN below two values, and
        +-inf when every difference is the same (no spread).
    """
    d = _clean(diffs)
    n = int(d.size)
    if n < 2:
        return (float(d.mean()) if n else math.nan), math.nan, math.nan, n
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        centre = mean + shift
        return mean, 0.0, (math.copysign(math.inf, centre) if centre else 0.0), n
    return mean, sd, (mean + shift) / (sd / math.sqrt(n)), n


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a minus mean of b with Welch's two-sided t-interval (arms treated as independent).

    Returns:
        ``(difference, low, high)``; NaN ends when either arm has fewer than two values.
    """
    x, y = _clean(a), _clean(b)
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return diff, math.nan, math.nan
    vx, vy = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(vx + vy)
    if se == 0.0:
        return diff, diff, diff
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = t_quantile(0.5 + level / 2.0, df) * se
    return diff, diff - half, diff + half


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    NaN p-values (claims that could not be tested) are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    live = [i for i in range(p.size) if not math.isnan(p[i])]
    order = sorted(live, key=lambda i: p[i])
    m = len(order)
    out = [math.nan] * p.size
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def holm_levels(pvalues: Sequence[float], alpha: float) -> list[float]:
    """The one-sided level of each hypothesis's confidence bound, consistent with Holm's decisions.

    A hypothesis Holm rejects gets the level of its step, ``alpha / (m - rank)`` (rank 0 for the
    smallest p); every other one the level of the step where Holm stopped. A bound at that level
    excludes the null exactly when Holm rejects the hypothesis, so the bounds shown and the verdicts
    cannot disagree. NaN p-values stay out of the family and get NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    live = sorted((i for i in range(p.size) if not math.isnan(p[i])), key=lambda i: p[i])
    m = len(live)
    out = [math.nan] * p.size
    stop = m
    for rank, i in enumerate(live):
        if not p[i] < alpha / (m - rank):
            stop = rank
            break
    for rank, i in enumerate(live):
        out[i] = alpha / (m - min(rank, stop))
    return out


def one_sided_bound(diffs: Sequence[float], level: float, upper: bool = False) -> float:
    """One-sided (1 - level) confidence bound of the mean of paired ``diffs`` (lower unless ``upper``).

    NaN below two values or at a NaN level; the mean itself when every difference is the same.
    """
    d = _clean(diffs)
    if d.size < 2 or math.isnan(level):
        return math.nan
    half = t_quantile(1.0 - level, d.size - 1) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return float(d.mean()) + (half if upper else -half)


def detectable_effect(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """Smallest true mean difference a one-sided paired t-test detects with the given power.

    The usual approximation ``(t_{1-alpha, n-1} + t_{power, n-1}) * sd / sqrt(n)`` (a central t in
    place of the noncentral one; slightly optimistic for very few seeds).

    Args:
        sd: standard deviation of the per-seed differences (points).
        n: number of seeds (pairs).
        alpha: one-sided level (after any multiplicity correction).
        power: probability of detecting an effect of the returned size.
    """
    if n < 2 or sd is None or math.isnan(sd):
        return math.nan
    df = n - 1
    return (t_quantile(1.0 - alpha, df) + t_quantile(power, df)) * sd / math.sqrt(n)


def slopes(df: pd.DataFrame, x: str, y: str, by: str = "seed", log2: bool = True) -> pd.Series:
    """Least-squares slope of ``y`` on ``x`` (or on log2 x) within each group ``by`` (each seed).

    Returns:
        One slope per group (points per doubling of ``x`` when ``log2``), indexed by the group.
    """
    out = {}
    for key, g in df.groupby(by, sort=True):
        xs = np.log2(g[x].to_numpy(dtype=float)) if log2 else g[x].to_numpy(dtype=float)
        ys = g[y].to_numpy(dtype=float)
        keep = ~np.isnan(ys)
        xs, ys = xs[keep], ys[keep]
        if xs.size < 2 or np.ptp(xs) == 0:
            out[key] = math.nan
            continue
        xc = xs - xs.mean()
        out[key] = float((xc * (ys - ys.mean())).sum() / (xc * xc).sum())
    return pd.Series(out, dtype=float)
