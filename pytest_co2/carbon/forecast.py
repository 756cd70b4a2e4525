"""The best start time from a forecast (pure): for a run of a given length, the start in the
next hours whose forecast intensity, averaged over the run, is the lowest.

The forecast is piecewise constant (each point holds over ``[start, end)``), so the mean
over a window ``[t, t + d]`` is piecewise linear in ``t`` with its corners where ``t`` or
``t + d`` meets a boundary: the minimum is at one of those starts, which are all tried.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

from ..frozen import Frozen, record
from .providers.base import ForecastPoint, iso

DEFAULT_HORIZON_S = 24 * 3600.0
MIN_DURATION_S = 1.0


@record
class StartTime(Frozen):
    """The lowest-emission start of a run and its comparison with starting now."""

    start: _dt.datetime
    duration_s: float
    mean_g_per_kwh: float  # forecast mean over the run started then
    now_g_per_kwh: float | None  # forecast mean over the run started now (None: not covered)

    @property
    def saving(self) -> float | None:
        """Relative change of CO2e against starting now, e.g. -0.25 for 25% less."""
        if self.now_g_per_kwh is None or self.now_g_per_kwh <= 0:
            return None
        return self.mean_g_per_kwh / self.now_g_per_kwh - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "duration_s": self.duration_s,
            "mean_g_per_kwh": self.mean_g_per_kwh,
            "now_g_per_kwh": self.now_g_per_kwh,
            "saving": self.saving,
        }


def _series(
    points: Sequence[ForecastPoint], now: _dt.datetime, current_g_per_kwh: float | None
) -> list[ForecastPoint]:
    ordered = sorted((p for p in points if p.end > now), key=lambda p: p.start)
    if current_g_per_kwh is not None and (not ordered or ordered[0].start > now):
        end = ordered[0].start if ordered else now + _dt.timedelta(hours=1)
        ordered.insert(0, ForecastPoint(now, end, current_g_per_kwh))
    return ordered


def window_mean(
    points: Sequence[ForecastPoint], start: _dt.datetime, duration_s: float
) -> float | None:
    """The time-weighted mean intensity over ``[start, start + duration_s]``; None when the
    forecast does not cover the whole window (a gap, or it ends too early)."""
    end = start + _dt.timedelta(seconds=max(duration_s, MIN_DURATION_S))
    d = (end - start).total_seconds()  # the window as timedelta rounds it (microseconds)
    covered_to = start
    first: float | None = None
    excess = 0.0  # time-weighted excess over the first piece: a constant mean stays exact
    for p in sorted(points, key=lambda p: p.start):
        if p.end <= covered_to or p.start >= end:
            continue
        if p.start > covered_to:
            return None  # a gap
        upto = min(p.end, end)
        if first is None:
            first = p.g_per_kwh
        excess += (p.g_per_kwh - first) * (upto - covered_to).total_seconds()
        covered_to = upto
        if covered_to >= end:
            return first + excess / d
    return None


def best_start(
    points: Sequence[ForecastPoint],
    duration_s: float,
    now: _dt.datetime,
    *,
    horizon_s: float = DEFAULT_HORIZON_S,
    current_g_per_kwh: float | None = None,
) -> StartTime | None:
    """The start in ``[now, now + horizon_s]`` with the lowest forecast mean over a run of
    ``duration_s`` (the earliest of equal ones), or None when no such window is covered.
    ``current_g_per_kwh`` (the live value) covers the time from now to the first point."""
    if not math.isfinite(duration_s):
        return None
    series = _series(points, now, current_g_per_kwh)
    d = _dt.timedelta(seconds=max(duration_s, MIN_DURATION_S))
    last = now + _dt.timedelta(seconds=horizon_s)
    candidates = {now}
    for p in series:
        for b in (p.start, p.end):
            for t in (b, b - d):
                if now <= t <= last:
                    candidates.add(t)
    best: tuple[float, _dt.datetime] | None = None
    for t in sorted(candidates):
        mean = window_mean(series, t, duration_s)
        if mean is not None and (best is None or mean < best[0] - 1e-9 * max(1.0, best[0])):
            best = (mean, t)
    if best is None:
        return None
    return StartTime(best[1], duration_s, best[0], window_mean(series, now, duration_s))
