"""Per-window estimates of a per-unit energy: mean or trimmed center with its standard error
(pure, stdlib only).

:class:`Estimate` is what every decision here starts from: the stopping rule
(:mod:`.stopping`), the compare (:mod:`.decisions`) and the paired A/B (:mod:`.paired`).
Intervals are two-sided 95% Student-t intervals.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ..frozen import Frozen, record
from .stats import num, t_quantile

LEVEL = 0.95  # every interval here is a two-sided 95% interval
Z975 = statistics.NormalDist().inv_cdf(0.975)  # 1.959964...
TRIM = 0.2  # fraction cut from each end by the trimmed mean (Yuen's 20%)
METHODS = ("mean", "trimmed")


# -- estimates ------------------------------------------------------------------------------


@record
class Estimate(Frozen):
    """A center of per-unit energies (J) with its standard error, as a t interval needs.

    ``method`` is ``mean`` (sample mean, se = std / sqrt(n), n - 1 degrees of freedom) or
    ``trimmed`` (Yuen's 20% trimmed mean, se from the winsorized variance, h - 1 degrees of
    freedom where h values are kept). ``mean`` and ``std`` are always the plain sample mean
    and standard deviation (the paper's mean +- std). ``se`` and ``df`` are NaN with one window.
    """

    method: str
    center_j: float
    se_j: float
    df: float
    n: int
    mean_j: float
    std_j: float

    @property
    def has_spread(self) -> bool:
        return self.n >= 2 and math.isfinite(self.se_j)

    def half_width_j(self) -> float:
        """Half-width of the 95% interval of the center (NaN without spread)."""
        return t_quantile(0.975, self.df) * self.se_j if self.has_spread else math.nan

    def relative_half_width(self) -> float:
        """Half-width / center: 0 for an all-zero sample, inf for a zero center with spread."""
        hw = self.half_width_j()
        if math.isnan(hw):
            return math.nan
        if self.center_j == 0:
            return 0.0 if hw == 0 else math.inf
        return hw / abs(self.center_j)

    def to_dict(self) -> dict[str, Any]:
        return {k: json_num_inf(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Estimate:
        return cls(
            method=str(d["method"]),
            center_j=num(d["center_j"]),
            se_j=num(d["se_j"]),
            df=num(d["df"]),
            n=int(d["n"]),
            mean_j=num(d["mean_j"]),
            std_j=num(d["std_j"]),
        )

    @classmethod
    def from_summary(cls, mean_j: float, std_j: float | None, n: int) -> Estimate:
        """From a stored mean, std and window count (baselines that kept no samples)."""
        std = math.nan if std_j is None or n < 2 else float(std_j)
        se = std / math.sqrt(n) if n >= 2 else math.nan
        return cls("mean", float(mean_j), se, n - 1 if n >= 2 else math.nan, n, float(mean_j), std)


def estimate(samples: Sequence[float], method: str = "mean", trim: float = TRIM) -> Estimate:
    """The :class:`Estimate` of per-window per-unit energies ``samples`` (at least one)."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("estimate: no samples: expected at least one per-window energy")
    if method not in METHODS:
        raise ValueError(f"invalid method {method!r}: expected one of {', '.join(METHODS)}")
    if not 0 <= trim < 0.5:
        raise ValueError(f"invalid trim {trim!r}: expected a fraction in [0, 0.5)")
    n = len(xs)
    mean = math.fsum(xs) / n
    std = statistics.stdev(xs) if n >= 2 else math.nan
    if n < 2:
        return Estimate(method, mean, math.nan, math.nan, n, mean, std)
    if method == "mean":
        return Estimate(method, mean, std / math.sqrt(n), n - 1, n, mean, std)
    g = math.floor(trim * n)
    h = n - 2 * g
    s = sorted(xs)
    center = math.fsum(s[g : n - g]) / h
    wins = [s[g]] * g + s[g : n - g] + [s[n - g - 1]] * g
    var_w = statistics.variance(wins)
    se = math.sqrt((n - 1) * var_w / (h * (h - 1))) if h >= 2 else math.nan
    return Estimate(method, center, se, h - 1 if h >= 2 else math.nan, n, mean, std)


def estimate_of_entry(entry: Mapping[str, Any], method: str = "mean") -> Estimate | float | None:
    """What a saved measurement (one JSON entry) offers for a decision.

    The per-window samples (``unit_energies_j``) when there are any; else an estimate from
    the stored ``energy_per_unit_j`` mean, std and window count; else the mean alone (a
    float: only a point compare is possible); None when the entry has no per-unit energy.
    """
    samples = entry.get("unit_energies_j")
    if samples:
        return estimate(samples, method)
    stats = entry.get("energy_per_unit_j")
    if not isinstance(stats, Mapping) or stats.get("mean") is None:
        return None
    n = int(stats.get("n") or 0)
    if stats.get("std") is not None and n >= 2:
        return Estimate.from_summary(float(stats["mean"]), float(stats["std"]), n)
    return float(stats["mean"])


def json_num_inf(x: Any) -> Any:
    """A float for JSON: NaN as None, infinities as "inf" / "-inf"."""
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else str(x)  # "inf" or "-inf"
    return x
