"""Statistics of per-unit energies: mean, spread, standard error, Student's t (pure)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .decisions import t_quantile

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


@dataclass(frozen=True)
class Stats:
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
