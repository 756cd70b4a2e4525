"""Carbon-aware deferral (pure): whether a heavy test runs now, from the session's live
intensity, its forecast, the time and a threshold, with the sentence that says why.

A test is deferred (skipped) only on a live value: one a provider answered (``live``), a
fresh cache entry of such an answer (``cached`` without a reason) or the user's own file
(``file``). Without a source, on the shipped data, or on a fallback or stale cache entry (the
provider could not answer), the test runs: a test is never skipped for lack of data.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..constants import DEFER_MARKER, DEFER_MARKER_HELP
from ..frozen import Frozen, record
from .forecast import MIN_DURATION_S, StartTime, best_start
from .intensity_value import MAX_G_PER_KWH, Intensity, format_age, format_g_per_kwh
from .providers.base import ForecastPoint

MARKER = DEFER_MARKER
MARKER_HELP = DEFER_MARKER_HELP
#: Provenances that are a live value (see ``Intensity.provenance``); a cached one only
#: without a reason (a stale entry used because the provider failed has one).
LIVE_PROVENANCES = ("live", "cached", "file")


def parse_defer_above(value: Any) -> float:
    """A deferral threshold in g CO2e/kWh: a number >= 0 and <= 10000 (not a bool), else
    ValueError (one line)."""
    try:
        x = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and 0 <= x <= MAX_G_PER_KWH):
        raise ValueError(
            f"invalid deferral threshold {value!r}: expected a carbon intensity in g CO2e/kWh, "
            f"a number >= 0 and <= {MAX_G_PER_KWH:g} (e.g. 300)"
        )
    return x


def not_live_reason(intensity: Intensity | None) -> str | None:
    """Why ``intensity`` is no live value to defer on (None: it is one)."""
    if intensity is None or intensity.provenance == "shipped":
        return "no live intensity: --co2-intensity-source is not given"
    if intensity.provenance == "fallback":
        return f"no live intensity: the provider did not answer ({intensity.reason})"
    if intensity.provenance not in LIVE_PROVENANCES or intensity.reason:
        return f"no live intensity: only a stale cached value ({intensity.provenance_text})"
    return None


@record
class Deferral(Frozen):
    """The decision for one threshold: ``defer`` or run, and why (``reason``)."""

    defer: bool
    reason: str  # the skip reason ("defer: ...") or why the test ran
    above_g_per_kwh: float
    now_g_per_kwh: float | None  # None: no live value
    best: StartTime | None = None  # the lowest forecast start (when deferred with a forecast)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deferred": self.defer,
            "reason": self.reason,
            "above_g_per_kwh": self.above_g_per_kwh,
            "now_g_per_kwh": self.now_g_per_kwh,
            "best_start": None if self.best is None else self.best.to_dict(),
        }


def _clock_text(t: _dt.datetime, now: _dt.datetime) -> str:
    """``13:00 UTC``, ``13:00 UTC tomorrow`` or ``2026-12-09 13:00 UTC``."""
    t, now = t.astimezone(_dt.timezone.utc), now.astimezone(_dt.timezone.utc)
    days = (t.date() - now.date()).days
    when = f"{t:%H:%M} UTC"
    if days == 0:
        return when
    return f"{when} tomorrow" if days == 1 else f"{t:%Y-%m-%d} {when}"


def _best_text(best: StartTime | None, above: float, now: _dt.datetime) -> str:
    if best is None or best.start <= now:
        return "no later start in the next 24 h has a lower forecast"
    value = format_g_per_kwh(best.mean_g_per_kwh)
    when = f"{_clock_text(best.start, now)} (in {format_age((best.start - now).total_seconds())})"
    if best.mean_g_per_kwh > above:
        return f"the forecast stays above it: lowest {value} g/kWh at {when}"
    return f"{value} g/kWh expected at {when}"


def decide(
    intensity: Intensity | None,
    forecast: Sequence[ForecastPoint],
    above_g_per_kwh: float,
    now: _dt.datetime,
) -> Deferral:
    """Defer when the live ``intensity`` is above ``above_g_per_kwh``; the best start is the
    lowest forecast value in the next 24 h (``forecast.best_start`` for a 1 s run: a test's
    length is not known before it runs)."""
    above = format_g_per_kwh(above_g_per_kwh)
    why = not_live_reason(intensity)
    if intensity is None or why is not None:
        return Deferral(False, f"ran: {why}", above_g_per_kwh, None)
    g = intensity.g_per_kwh
    where = intensity.zone or intensity.region
    now_text = f"{where} {format_g_per_kwh(g)} g/kWh now ({intensity.source}; "
    now_text += f"{intensity.provenance_text})"
    if g <= above_g_per_kwh:
        return Deferral(False, f"ran: {now_text} is not above {above} g/kWh", above_g_per_kwh, g)
    best = best_start(forecast, MIN_DURATION_S, now, current_g_per_kwh=g) if forecast else None
    reason = f"defer: {now_text} is above {above} g/kWh; {_best_text(best, above_g_per_kwh, now)}"
    return Deferral(True, reason, above_g_per_kwh, g, best)


def decision_lines(tests: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per distinct decision over ``tests`` (test id -> ``Deferral.to_dict()``): how
    many tests, deferred or ran, and why."""
    groups: dict[tuple[bool, str], int] = {}
    for entry in tests.values():
        key = (bool(entry.get("deferred")), str(entry.get("reason", "")))
        groups[key] = groups.get(key, 0) + 1
    out = []
    for (deferred, reason), n in groups.items():
        count = f"{n} {'test' if n == 1 else 'tests'}"
        why = reason.split(": ", 1)[1] if ": " in reason else reason
        what = "deferred (skipped)" if deferred else "subject to deferral ran"
        out.append(f"{count} {what}: {why}")
    return out
