"""One carbon-intensity value: the :class:`Intensity` record (region, g CO2e/kWh, year or
month, source and provenance), its error, how its figures read, and the month and value
parsers that every look-up shares."""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import Any

from ..frozen import Frozen, record


class IntensityError(ValueError):
    """A region, month, intensity value or intensity file that cannot be used (one-line message)."""


@record
class Intensity(Frozen):
    """One carbon-intensity value and where it comes from."""

    region: str  # canonical code: "SE", "EU27", "US-CA", "WORLD", "custom"
    name: str  # "Sweden"
    g_per_kwh: float
    year: int | None
    month: int | None  # 1..12 when a monthly value was selected
    source: str
    # Where a value of --co2-intensity-source came from (the defaults: shipped data, as before).
    provenance: str = "shipped"  # shipped | live | cached | file | fallback
    zone: str | None = None  # the provider's zone ("DE", "GB", "GB-13")
    at: str | None = None  # ISO datetime the value is for
    fetched_at: str | None = None  # ISO datetime it was fetched (live, cached)
    age_s: float | None = None  # age of a cached value when it was used
    reason: str | None = None  # why the live value was not used (fallback, stale cache)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in _PROVENANCE_FIELDS:  # shipped data: exactly the record of before
            if d[key] is None or (key == "provenance" and d[key] == "shipped"):
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intensity:
        year, month = d.get("year"), d.get("month")
        age = d.get("age_s")

        def text(key: str) -> str | None:
            return None if d.get(key) is None else str(d[key])

        return cls(
            region=str(d["region"]),
            name=str(d.get("name", d["region"])),
            g_per_kwh=float(d["g_per_kwh"]),
            year=None if year is None else int(year),
            month=None if month is None else int(month),
            source=str(d.get("source", "")),
            provenance=str(d.get("provenance") or "shipped"),
            zone=text("zone"),
            at=text("at"),
            fetched_at=text("fetched_at"),
            age_s=None if age is None else float(age),
            reason=text("reason"),
        )

    @property
    def provenance_text(self) -> str:
        """``""`` for shipped data, else e.g. ``"live, zone DE, 2026-12-03T08:00Z"``,
        ``"cached 12 min ago, zone GB, ..."`` or ``"fallback to shipped data: <reason>"``."""
        if self.provenance == "shipped":
            return ""
        if self.provenance == "fallback":
            return f"fallback to shipped data: {self.reason or 'no reason recorded'}"
        what = self.provenance
        if self.provenance == "cached" and self.age_s is not None:
            what = f"cached {format_age(self.age_s)} ago"
        parts = [what]
        if self.zone:
            parts.append(f"zone {self.zone}")
        if self.at:
            parts.append(f"at {self.at}")
        text = ", ".join(parts)
        return f"{text} ({self.reason})" if self.reason else text

    @property
    def month_text(self) -> str | None:
        """``"2022-12"`` when a monthly value was selected, else None."""
        if self.month is None or self.year is None:
            return None
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """Short label: ``"SE 7 g/kWh (2022)"``, ``"DE 2022-12 535 g/kWh"``."""
        value = f"{format_g_per_kwh(self.g_per_kwh)} g/kWh"
        if self.month_text is not None:
            return f"{self.region} {self.month_text} {value}"
        if self.year is not None:
            return f"{self.region} {value} ({self.year})"
        return f"{self.region} {value}"


_PROVENANCE_FIELDS = ("provenance", "zone", "at", "fetched_at", "age_s", "reason")


def format_age(seconds: float) -> str:
    """``42`` -> "42 s", ``700`` -> "12 min", ``7300`` -> "2.0 h", ``200000`` -> "2.3 days"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def format_g_per_kwh(value: float) -> str:
    """``7`` -> "7", ``535.0`` -> "535", ``492.7`` -> "492.7", ``0.123`` -> "0.123";
    ``199.99999999999997`` (a mean of 200s over a forecast window) -> "200"."""
    if abs(value - round(value)) <= 1e-9 * max(1.0, abs(value)):  # float noise of a mean
        return f"{round(value)}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


_MONTH = r"^\s*(\d{4})-(\d{1,2})\s*$"  # compiled on first use (re keeps it)


def parse_month(text: str) -> tuple[int, int]:
    """``"2022-12"`` -> ``(2022, 12)``; anything else raises IntensityError."""
    m = re.match(_MONTH, str(text))
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise IntensityError(
            f"invalid month {str(text)!r}: use YYYY-MM with a month 01..12, e.g. 2022-12"
        )
    return int(m.group(1)), int(m.group(2))


#: The largest intensity accepted (g CO2e/kWh): ten times the dirtiest grid's.
MAX_G_PER_KWH = 10000.0


def parse_g_per_kwh(value: str | float) -> float:
    """A carbon intensity in g CO2e/kWh: a number >= 0 and <= 10000 (coal is about 1000),
    else IntensityError (one line)."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and x >= 0):
        raise IntensityError(
            f"invalid intensity {value!r}: give a carbon intensity in g CO2e/kWh, a number >= 0"
        )
    if x > MAX_G_PER_KWH:
        raise IntensityError(
            f"invalid intensity {value!r}: give a carbon intensity in g CO2e/kWh, at most "
            f"{MAX_G_PER_KWH:g}"
        )
    return x
