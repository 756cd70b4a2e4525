"""The UK National Grid ESO carbon intensity API (api.carbonintensity.org.uk, no key).

National: ``GET /intensity`` -> ``{"data": [{"from", "to", "intensity": {"forecast",
"actual", "index"}}]}`` and ``GET /intensity/{from}/fw24h`` (48 half-hours of the same
shape). Regional (ids 1-17, e.g. 13 London): ``GET /regional/regionid/{id}`` -> ``{"data":
[{"regionid", "dnoregion", "shortname", "data": [{"from", "to", "intensity": {"forecast",
"index"}, "generationmix"}]}]}`` and ``GET /regional/intensity/{from}/fw24h/regionid/{id}``
-> ``{"data": {"regionid", "shortname", "data": [...]}}``. Errors: ``{"error": {"code",
"message"}}``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

from .base import (
    ForecastPoint,
    ProviderError,
    Reading,
    SourceError,
    g_value,
    iso,
    parse_time,
)
from .http import build_url, get_json

DEFAULT_URL = "https://api.carbonintensity.org.uk"
REGION_IDS = range(1, 18)  # 1 North Scotland .. 13 London .. 15 England, 16 Scotland, 17 Wales
SOURCE = "UK National Grid ESO carbon intensity API"


def check_zone(zone: str) -> str:
    """``GB`` (national) or a regional id ``GB-13`` / ``13`` (1-17) -> ``GB`` / ``GB-13``."""
    z = zone.strip().upper()
    if z in ("GB", "UK"):
        return "GB"
    rid = z[3:] if z.startswith("GB-") else z
    if rid.isdigit() and int(rid) in REGION_IDS:
        return f"GB-{int(rid)}"
    raise SourceError(
        f"unknown UK grid zone {zone!r}: expected GB (national) or a region id 1-17 as GB-N "
        "(e.g. GB-13 for London; api.carbonintensity.org.uk/regional lists them)"
    )


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _periods(rows: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise ProviderError(f"UK grid {what}: 'data' is not a non-empty list of periods")
    for r in rows:
        if not isinstance(r.get("intensity"), Mapping):
            raise ProviderError(f"UK grid {what}: a period has no 'intensity' object")
    return rows


def _forecast(rows: list[Mapping[str, Any]]) -> tuple[ForecastPoint, ...]:
    return tuple(
        ForecastPoint(
            parse_time(r.get("from"), "UK grid 'from'"),
            parse_time(r.get("to"), "UK grid 'to'"),
            g_value(r["intensity"].get("forecast"), "UK grid 'forecast'"),
        )
        for r in rows
    )


class UkGrid:
    """The UK grid provider for GB or one of its regions."""

    name = "ukgrid"
    cacheable = True

    def __init__(
        self,
        zone: str = "GB",
        base_url: str | None = None,
        clock: Callable[[], _dt.datetime] = _utcnow,
    ) -> None:
        self.zone = check_zone(zone)
        self.base_url = base_url or DEFAULT_URL
        self.clock = clock

    def _get(self, path: str, timeout_s: float) -> Any:
        data = get_json(build_url(self.base_url, path), timeout_s=timeout_s)
        if not isinstance(data, Mapping):
            raise ProviderError(f"UK grid answered {type(data).__name__}, not an object")
        if "error" in data and "data" not in data:
            err = data["error"]
            message = err.get("message") if isinstance(err, Mapping) else err
            raise ProviderError(f"UK grid: {message}")
        return data.get("data")

    def fetch(self, timeout_s: float) -> Reading:
        start = self.clock().astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        notes: list[str] = []
        if self.zone == "GB":
            now = _periods(self._get("intensity", timeout_s), "/intensity")[0]
            actual = now["intensity"].get("actual")
            kind = "actual" if actual is not None else "forecast"
            g = g_value(now["intensity"].get(kind), f"UK grid '{kind}'")
            name = None
            path = f"intensity/{start}/fw24h"
        else:
            rid = self.zone[3:]
            region = self._region(self._get(f"regional/regionid/{rid}", timeout_s))
            now = _periods(region.get("data"), "/regional")[0]
            kind = "forecast"  # regional values are forecasts only
            g = g_value(now["intensity"].get("forecast"), "UK grid 'forecast'")
            name = str(region.get("shortname") or region.get("dnoregion") or self.zone)
            path = f"regional/intensity/{start}/fw24h/regionid/{rid}"
        at = parse_time(now.get("from"), "UK grid 'from'")
        try:
            data = self._get(path, timeout_s)
            if self.zone != "GB":
                data = self._region(data).get("data")
            forecast = _forecast(_periods(data, "fw24h"))
        except ProviderError as exc:
            forecast = ()
            notes.append(f"no forecast: {exc}")
        return Reading(
            provider=self.name,
            zone=self.zone,
            zone_name=name,
            g_per_kwh=g,
            at=iso(at),
            source=f"{SOURCE} ({kind}{', ' + name if name else ''})",
            forecast=forecast,
            notes=tuple(notes),
        )

    def _region(self, data: Any) -> Mapping[str, Any]:
        """The region object of a regional answer (a one-element list, or the object)."""
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, Mapping):
            raise ProviderError("UK grid regional answer has no region object")
        rid = data.get("regionid")
        if rid is not None and str(rid) != self.zone[3:]:
            raise ProviderError(f"UK grid answered for region {rid!r}, not {self.zone[3:]}")
        return data
