"""Statistics of per-unit energies: mean, spread, standard error, Student's t (pure, stdlib only).

Student's t distribution (:func:`t_cdf`, :func:`t_quantile`) from the regularized incomplete
beta function, for the intervals here and the decisions in :mod:`.decisions`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..frozen import Frozen, record

# -- Student's t ----------------------------------------------------------------------------


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    # the first denominator is >= 2 / (a + b + 2): _beta_inc passes x <= (a + 1) / (a + b + 2)
    c, d = 1.0, 1.0 / (1.0 - (a + b) * x / (a + 1.0))
    frac = d
    for m in range(1, 500):
        for term in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + term * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + term / c
            c = c if abs(c) > tiny else tiny
            frac *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return frac


def _beta_inc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, may be fractional or inf) degrees of freedom."""
    if math.isinf(df):
        from statistics import NormalDist  # rarely needed: not imported at start-up

        return NormalDist().cdf(t)
    tail = 0.5 * _beta_inc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0.5 <= p < 1) of Student's t; NaN for df <= 0 or NaN."""
    if not (df > 0):
        return math.nan
    if math.isinf(df) or df > 1e7:
        from statistics import NormalDist

        return NormalDist().inv_cdf(p)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# Two-sided 97.5% quantiles of Student's t for df = 1..30, to 3 decimals (the usual table).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= len(_T975) else _t975_exact(df)


@functools.lru_cache(maxsize=256)
def _t975_exact(df: int) -> float:
    """Above the table: the exact quantile (2.040 at 31, 2.000 at 60; 1.96 only as df -> inf)."""
    return t_quantile(0.975, df)


@record
class Stats(Frozen):
    """Per-unit energy over the windows of a measurement (joules per unit).

    ``mean`` is total energy / total units. ``std`` is the sample standard deviation of
    the per-unit energies of the windows (NaN with fewer than 2 windows), ``sem`` its
    standard error (std / sqrt(windows)).
    """

    mean: float
    std: float
    sem: float
    n: int  # number of windows the spread rests on

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": json_num(self.std),
            "sem": json_num(self.sem),
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stats:
        return cls(
            mean=float(d["mean"]),
            std=num(d.get("std")),
            sem=num(d.get("sem")),
            n=int(d.get("n", 0)),
        )

    @classmethod
    def of(cls, per_unit_j: Sequence[float], total_j: float, total_units: float) -> Stats:
        n = len(per_unit_j)
        mean = total_j / total_units if total_units else math.nan
        if n < 2:
            return cls(mean=mean, std=math.nan, sem=math.nan, n=n)
        m = sum(per_unit_j) / n
        var = sum((x - m) ** 2 for x in per_unit_j) / (n - 1)
        std = math.sqrt(var)
        return cls(mean=mean, std=std, sem=std / math.sqrt(n), n=n)


def json_num(x: float | None) -> float | None:
    """A float for JSON: NaN and infinities (unknown) become null."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def num(x: Any) -> float:
    """The inverse of :func:`json_num`: null becomes NaN."""
    return math.nan if x is None else float(x)
