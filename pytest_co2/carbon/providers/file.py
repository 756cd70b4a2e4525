"""A local intensity file the user provides (``--co2-intensity-source=file:PATH``).

JSON: ``{"zone": "DE", "g_per_kwh": 312, "datetime": "2026-12-03T08:00Z", "forecast":
[{"from": ..., "to": ..., "g_per_kwh": ...}, ...]}`` (``carbonIntensity`` is accepted for
``g_per_kwh``, a forecast entry may give ``datetime`` instead of ``from``/``to``; zone and
forecast are optional). CSV: ``datetime,g_co2e_per_kwh`` rows, a time series: the current
value is the last row at or before now (else the first), every row is the forecast.
A file that cannot be used is a usage error naming the file (it is checked at start-up).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import os
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
    points_from_starts,
)


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class IntensityFile:
    """Reads the file once, when built (so that a bad file fails at start-up)."""

    name = "file"
    cacheable = False

    def __init__(
        self,
        path: str,
        zone: str | None = None,
        clock: Callable[[], _dt.datetime] = _utcnow,
        default_zone: str = "file",
    ) -> None:
        """``zone`` (--co2-intensity-zone) wins over the file's; ``default_zone`` is used when
        neither gives one (the session's region)."""
        self.path = path
        self.default_zone = default_zone
        self.clock = clock
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                text = fh.read()
        except OSError as exc:
            raise SourceError(
                f"cannot read intensity source file {path!r}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise SourceError(f"intensity source file {path!r} is not UTF-8 text") from None
        try:
            self.reading = (
                self._json(text, zone)
                if text.lstrip().startswith(("{", "["))
                else self._csv(text, zone)
            )
        except ProviderError as exc:
            raise SourceError(f"intensity source file {path!r}: {exc}") from None
        self.zone = self.reading.zone

    def fetch(self, timeout_s: float) -> Reading:
        return self.reading

    def _source(self) -> str:
        return f"intensity file {os.path.basename(self.path)}"

    def _json(self, text: str, zone: str | None) -> Reading:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProviderError(f"not JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ProviderError("expected a JSON object with g_per_kwh (and datetime, forecast)")
        value = data.get("g_per_kwh", data.get("carbonIntensity"))
        g = g_value(value, "'g_per_kwh'")
        when = data.get("datetime")
        at = parse_time(when, "'datetime'") if when is not None else self.clock()
        rows = data.get("forecast", [])
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise ProviderError("'forecast' is not a list of objects")
        if rows and all("from" in r for r in rows):
            forecast = tuple(ForecastPoint.from_dict(r) for r in rows)
        else:
            forecast = points_from_starts(
                [
                    (
                        parse_time(r.get("datetime"), "forecast 'datetime'"),
                        g_value(
                            r.get("g_per_kwh", r.get("carbonIntensity")), "forecast 'g_per_kwh'"
                        ),
                    )
                    for r in rows
                ]
            )
        name = zone or data.get("zone") or self.default_zone
        return Reading("file", str(name), None, g, iso(at), self._source(), forecast)

    def _csv(self, text: str, zone: str | None) -> Reading:
        reader = csv.DictReader(text.splitlines())
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        reader.fieldnames = fields
        if "datetime" not in fields or "g_co2e_per_kwh" not in fields:
            raise ProviderError("expected a CSV header datetime,g_co2e_per_kwh (or a JSON object)")
        rows: list[tuple[_dt.datetime, float]] = []
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            where = f"line {reader.line_num}"
            value: Any = (row.get("g_co2e_per_kwh") or "").strip()
            with contextlib.suppress(ValueError):
                value = float(value)
            rows.append(
                (
                    parse_time(row.get("datetime"), f"{where}: datetime"),
                    g_value(value, f"{where}: g_co2e_per_kwh"),
                )
            )
        if not rows:
            raise ProviderError("no rows")
        rows.sort(key=lambda r: r[0])
        now = self.clock()
        past = [r for r in rows if r[0] <= now]
        at, g = past[-1] if past else rows[0]
        forecast = points_from_starts(rows) if len(rows) > 1 else ()
        return Reading(
            "file", zone or self.default_zone, None, g, iso(at), self._source(), forecast
        )
