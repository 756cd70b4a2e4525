"""Electricity Maps API v3: the latest carbon intensity of a zone and its forecast.

``GET {base}/carbon-intensity/latest?zone=Z`` and ``.../forecast?zone=Z`` with the header
``auth-token``. The latest answer is ``{"zone", "carbonIntensity", "datetime", "updatedAt",
"emissionFactorType", "isEstimated", ...}``; the forecast ``{"zone", "forecast":
[{"carbonIntensity", "datetime"}, ...], "updatedAt"}`` (hourly values). Errors are an HTTP
status with ``{"error": "..."}`` (e.g. 401 ``Invalid auth-token``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .base import ProviderError, Reading, SourceError, g_value, iso, parse_time, points_from_starts
from .http import build_url, get_json

DEFAULT_URL = "https://api.electricitymap.org/v3"
TOKEN_ENV = "ELECTRICITYMAPS_TOKEN"
_ZONE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,3}$")


def check_zone(zone: str) -> str:
    """An Electricity Maps zone key such as ``DE``, ``US-CAL-CISO``, ``IN-NO`` (upper case)."""
    z = zone.strip().upper()
    if not _ZONE.match(z):
        raise SourceError(
            f"invalid Electricity Maps zone {zone!r}: expected a zone key such as DE, FR, "
            "US-CAL-CISO (see the Electricity Maps zone list)"
        )
    return z


class ElectricityMaps:
    """The Electricity Maps provider for one zone (token from ``ELECTRICITYMAPS_TOKEN``)."""

    name = "electricitymaps"
    cacheable = True

    def __init__(self, zone: str, token: str | None = None, base_url: str | None = None) -> None:
        self.zone = check_zone(zone)
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if not token.strip():
            raise SourceError(
                f"--co2-intensity-source=electricitymaps needs an API token: set {TOKEN_ENV} "
                "(free tier at https://www.electricitymaps.com)"
            )
        self.token = token.strip()
        self.base_url = base_url or DEFAULT_URL

    def _get(self, path: str, timeout_s: float) -> Mapping[str, Any]:
        url = build_url(self.base_url, path, {"zone": self.zone})
        data = get_json(url, timeout_s=timeout_s, headers={"auth-token": self.token})
        if not isinstance(data, Mapping):
            raise ProviderError(f"Electricity Maps answered {type(data).__name__}, not an object")
        return data

    def fetch(self, timeout_s: float) -> Reading:
        latest = self._get("carbon-intensity/latest", timeout_s)
        if latest.get("carbonIntensity") is None and "error" in latest:
            raise ProviderError(f"Electricity Maps: {latest['error']}")
        g = g_value(latest.get("carbonIntensity"), "Electricity Maps 'carbonIntensity'")
        at = parse_time(latest.get("datetime"), "Electricity Maps 'datetime'")
        zone = latest.get("zone")
        if isinstance(zone, str) and zone.upper() != self.zone:
            raise ProviderError(f"Electricity Maps answered for zone {zone!r}, not {self.zone!r}")
        factor = latest.get("emissionFactorType")
        details = [str(factor) if isinstance(factor, str) else "lifecycle"]
        if latest.get("isEstimated") is True:
            details.append("estimated")
        notes: list[str] = []
        try:
            forecast = self._forecast(timeout_s)
        except ProviderError as exc:  # a tier without forecasts still gives the live value
            forecast = ()
            notes.append(f"no forecast: {exc}")
        return Reading(
            provider=self.name,
            zone=self.zone,
            zone_name=None,
            g_per_kwh=g,
            at=iso(at),
            source=f"Electricity Maps ({', '.join(details)})",
            forecast=forecast,
            notes=tuple(notes),
        )

    def _forecast(self, timeout_s: float) -> Any:
        data = self._get("carbon-intensity/forecast", timeout_s)
        rows = data.get("forecast")
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise ProviderError("Electricity Maps forecast has no 'forecast' list")
        starts = [
            (
                parse_time(r.get("datetime"), "forecast 'datetime'"),
                g_value(r.get("carbonIntensity"), "forecast 'carbonIntensity'"),
            )
            for r in rows
        ]
        return points_from_starts(starts)
