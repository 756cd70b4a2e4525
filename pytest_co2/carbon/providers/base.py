"""The provider interface: one reading of the grid's carbon intensity, with its forecast."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any, Protocol

from ...frozen import Frozen, record


class IntensityWarning(UserWarning):
    """A live intensity could not be used: the shipped data (or a stale cache) was."""


class SourceError(ValueError):
    """A source, zone, token or file that cannot be used (a usage error, one line)."""


class ProviderError(Exception):
    """The provider did not give a usable answer (network, HTTP status, garbage)."""


def parse_time(text: Any, what: str) -> _dt.datetime:
    """An ISO 8601 datetime (``2026-12-03T08:00Z``, ``...:00.000Z``, ``+00:00``) as an aware
    datetime (naive ones are UTC); ProviderError naming the value otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ProviderError(f"{what} {text!r} is not an ISO datetime")
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        value = _dt.datetime.fromisoformat(t)
    except ValueError:
        raise ProviderError(f"{what} {text!r} is not an ISO datetime") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)


def iso(t: _dt.datetime) -> str:
    """``2026-12-03T08:00:00Z`` (UTC, seconds)."""
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def g_value(value: Any, what: str) -> float:
    """A carbon intensity in g/kWh from an answer: a finite number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderError(f"{what} {value!r} is not a number")
    x = float(value)
    if not (math.isfinite(x) and x >= 0):
        raise ProviderError(f"{what} {value!r} is not a number >= 0")
    return x


@record
class ForecastPoint(Frozen):
    """The forecast intensity over ``[start, end)``."""

    start: _dt.datetime
    end: _dt.datetime
    g_per_kwh: float

    def to_dict(self) -> dict[str, Any]:
        return {"from": iso(self.start), "to": iso(self.end), "g_per_kwh": self.g_per_kwh}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ForecastPoint:
        return cls(
            parse_time(d.get("from"), "forecast 'from'"),
            parse_time(d.get("to"), "forecast 'to'"),
            g_value(d.get("g_per_kwh"), "forecast 'g_per_kwh'"),
        )


def points_from_starts(
    starts: Sequence[tuple[_dt.datetime, float]], step: _dt.timedelta | None = None
) -> tuple[ForecastPoint, ...]:
    """Forecast points from values at start times (hourly series): each lasts until the next
    start; the last one as long as the step before it (``step``, else 1 h)."""
    ordered = sorted(starts, key=lambda p: p[0])
    out = []
    for i, (t, g) in enumerate(ordered):
        if i + 1 < len(ordered):
            end = ordered[i + 1][0]
        else:
            last = step or (t - ordered[i - 1][0] if i > 0 else _dt.timedelta(hours=1))
            end = t + last
        if end > t:
            out.append(ForecastPoint(t, end, g))
    return tuple(out)


@record
class Reading(Frozen):
    """What a provider answered: the current intensity of a zone and, if it has one, the
    forecast of the next hours."""

    provider: str  # "electricitymaps", "ukgrid", "file"
    zone: str  # "DE", "GB", "GB-13"
    zone_name: str | None  # "London" (UK regions), else None
    g_per_kwh: float
    at: str  # ISO datetime the value is for
    source: str  # "Electricity Maps (lifecycle)", "UK National Grid ESO (actual)"
    forecast: tuple[ForecastPoint, ...] = ()
    notes: tuple[str, ...] = field(default=())  # e.g. "no forecast: HTTP 403 ..."

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "zone": self.zone,
            "zone_name": self.zone_name,
            "g_per_kwh": self.g_per_kwh,
            "at": self.at,
            "source": self.source,
            "forecast": [p.to_dict() for p in self.forecast],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reading:
        """ProviderError (a bad cache entry) when a field is missing or of the wrong kind."""
        if not isinstance(d, Mapping):
            raise ProviderError("the reading is not an object")
        for key in ("provider", "zone", "at", "source"):
            if not isinstance(d.get(key), str):
                raise ProviderError(f"field {key!r} is missing or not text")
        forecast = d.get("forecast", [])
        if not isinstance(forecast, list) or not all(isinstance(p, Mapping) for p in forecast):
            raise ProviderError("field 'forecast' is not a list of objects")
        name = d.get("zone_name")
        return cls(
            provider=d["provider"],
            zone=d["zone"],
            zone_name=None if name is None else str(name),
            g_per_kwh=g_value(d.get("g_per_kwh"), "field 'g_per_kwh'"),
            at=iso(parse_time(d["at"], "field 'at'")),
            source=d["source"],
            forecast=tuple(ForecastPoint.from_dict(p) for p in forecast),
            notes=tuple(str(n) for n in d.get("notes", ()) or ()),
        )


class Provider(Protocol):
    """A source of live intensity for one zone."""

    name: str  # "electricitymaps", "ukgrid", "file"
    zone: str
    cacheable: bool  # False for a local file (read every session)

    def fetch(self, timeout_s: float) -> Reading:
        """The current reading (and forecast); ProviderError when there is no usable one."""
        ...
