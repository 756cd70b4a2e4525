"""Carbon intensity of electricity (g CO2e per kWh) by region and, where shipped, by month.

Shipped data (see ``data/DATA_LICENSES.md``):

* ``data/intensity_yearly.csv``: one yearly value per region (the paper's Table 1, EEA 2022,
  OWID/Ember via carbontracker, US EPA eGRID2023 states as ``US-CA``, and ``WORLD``).
* ``data/de_monthly_intensity_2022_2023.csv``: monthly lifecycle values for Germany
  (Electricity Maps, ODbL).

Regions are selected by code (``SE``, ``eu27``, ``US-CA``) or English name (``sweden``), in any
case. The tables are read lazily, once, with the csv module.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from ..constants import DEFAULT_REGION

__all__ = [
    "Intensity",
    "IntensityError",
    "list_regions",
    "lookup",
    "monthly_coverage",
    "parse_month",
]

_HINT = "Use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"
# Extra spellings that resolve to a canonical code (keys are case-folded).
_ALIASES = {
    "eu": "EU27",
    "eu-27": "EU27",
    "european union": "EU27",
    "uk": "GB",
    "usa": "US",
    "united states of america": "US",
}


class IntensityError(ValueError):
    """A region, month, intensity value or intensity file that cannot be used (one-line message)."""


@dataclass(frozen=True)
class Intensity:
    """One carbon-intensity value and where it comes from."""

    region: str  # canonical code: "SE", "EU27", "US-CA", "WORLD", "custom"
    name: str  # "Sweden"
    g_per_kwh: float
    year: int | None
    month: int | None  # 1..12 when a monthly value was selected
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intensity:
        year, month = d.get("year"), d.get("month")
        return cls(
            region=str(d["region"]),
            name=str(d.get("name", d["region"])),
            g_per_kwh=float(d["g_per_kwh"]),
            year=None if year is None else int(year),
            month=None if month is None else int(month),
            source=str(d.get("source", "")),
        )

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


def format_g_per_kwh(value: float) -> str:
    """``7`` -> "7", ``535.0`` -> "535", ``492.7`` -> "492.7", ``0.123`` -> "0.123"."""
    if value == int(value):
        return f"{int(value)}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


_MONTH_RE = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


def parse_month(text: str) -> tuple[int, int]:
    """``"2022-12"`` -> ``(2022, 12)``; anything else raises IntensityError."""
    m = _MONTH_RE.match(str(text))
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise IntensityError(
            f"invalid month {str(text)!r}: use YYYY-MM with a month 01..12, e.g. 2022-12"
        )
    return int(m.group(1)), int(m.group(2))


# ----------------------------------------------------------------------------------- tables


@dataclass
class _Table:
    yearly: dict[str, Intensity]  # code -> yearly value
    monthly: dict[tuple[str, int, int], Intensity]  # (code, year, month) -> value
    names: dict[str, str]  # code -> display name


def _data_text(filename: str) -> str:
    from importlib.resources import files

    return (files("pytest_co2") / "data" / filename).read_text(encoding="utf-8")


@cache
def _shipped() -> _Table:
    yearly: dict[str, Intensity] = {}
    for row in csv.DictReader(io.StringIO(_data_text("intensity_yearly.csv"), newline="")):
        code = row["region"]
        yearly[code] = Intensity(
            code, row["name"], float(row["g_co2e_per_kwh"]), int(row["year"]), None, row["source"]
        )
    names = {code: it.name for code, it in yearly.items()}
    monthly: dict[tuple[str, int, int], Intensity] = {}
    for row in csv.DictReader(
        io.StringIO(_data_text("de_monthly_intensity_2022_2023.csv"), newline="")
    ):
        if not row["month"].isdigit():  # "year", "year_EEA", ...: comparison rows, not months
            continue
        code, year, month = row["region"], int(row["year"]), int(row["month"])
        monthly[(code, year, month)] = Intensity(
            code,
            names.get(code, code),
            float(row["g_co2e_per_kwh_lifecycle"]),
            year,
            month,
            f"{row['source']}; lifecycle value",
        )
    return _Table(yearly, monthly, names)


@cache
def _name_index() -> dict[str, str]:
    """Case-folded code, name or alias -> code. Countries win a name shared with a US state."""
    table = _shipped()
    index: dict[str, str] = {}
    for code, name in sorted(table.names.items(), key=lambda kv: kv[0].startswith("US-")):
        index.setdefault(name.casefold(), code)
        short = re.sub(r"\s*\(.*\)$", "", name)  # "European Union (27)" -> "European Union"
        index.setdefault(short.casefold(), code)
    for alias, code in _ALIASES.items():
        index.setdefault(alias, code)
    for code in table.names:  # codes last: a code always wins over a name
        index[code.casefold()] = code
    return index


def _resolve(region: str, extra: dict[str, str] | None = None) -> str | None:
    """Canonical code for a code, name or alias (any case); ``extra``: user code -> name."""
    key = " ".join(region.split()).casefold()
    index = _name_index()
    if key in index:
        return index[key]
    for code, name in (extra or {}).items():
        if key in (code.casefold(), name.casefold()):
            return code
    return None


def _unknown_region(region: str, extra: dict[str, str] | None = None) -> IntensityError:
    import difflib

    names = dict(_shipped().names)
    names.update(extra or {})
    candidates: dict[str, str] = {}
    for code, name in names.items():
        candidates.setdefault(code.casefold(), code)
        candidates.setdefault(name.casefold(), code)
    matches = difflib.get_close_matches(region.casefold(), list(candidates), n=6, cutoff=0.7)
    codes: list[str] = []
    for m in matches:
        if candidates[m] not in codes:
            codes.append(candidates[m])
    codes = codes[:3]
    if not codes:
        return IntensityError(f"unknown region {region!r}: {_HINT[0].lower()}{_HINT[1:]}")
    shown = [f"{c} ({names[c]})" for c in codes]
    guess = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return IntensityError(f"unknown region {region!r}: did you mean {guess}? {_HINT}")


# ------------------------------------------------------------------------------- user file


def _read_user_csv(path: str | os.PathLike[str]) -> _Table:
    """Parse a user CSV ``region,year,month,g_co2e_per_kwh[,source][,name]``."""
    where = os.fspath(path)
    try:
        with open(where, newline="", encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise IntensityError(f"cannot read intensity file {where!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise IntensityError(f"intensity file {where!r} is not UTF-8 text") from None

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise IntensityError(f"{where}, line 1: {exc}") from None
    required = ["region", "year", "g_co2e_per_kwh"]
    missing = [h for h in required if h not in header]
    if missing:
        raise IntensityError(
            f"{where}, line 1: header lacks {', '.join(missing)}; expected "
            "region,year,month,g_co2e_per_kwh (month and source optional)"
        )
    col = {h: i for i, h in enumerate(header)}
    shipped = _shipped()
    yearly: dict[str, Intensity] = {}
    monthly: dict[tuple[str, int, int], Intensity] = {}
    names: dict[str, str] = {}

    def bad(line: int, problem: str) -> IntensityError:
        return IntensityError(f"{where}, line {line}: {problem}")

    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise bad(reader.line_num, str(exc)) from None
        line_no = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) > len(header):
            raise bad(line_no, f"{len(fields)} fields but the header has {len(header)}")

        def get(name: str) -> str:
            i = col.get(name)
            return fields[i].strip() if i is not None and i < len(fields) else ""

        region = get("region")
        if not region:
            raise bad(line_no, "empty region")
        code = _resolve(region) or region.upper()
        year_text, month_text, value_text = get("year"), get("month"), get("g_co2e_per_kwh")
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise bad(line_no, f"g_co2e_per_kwh {value_text!r} is not a number >= 0")
        year: int | None = None
        if year_text:
            if not year_text.isdigit():
                raise bad(line_no, f"year {year_text!r} is not a year such as 2022")
            year = int(year_text)
        month: int | None = None
        if month_text:
            if not month_text.isdigit() or not 1 <= int(month_text) <= 12:
                raise bad(line_no, f"month {month_text!r} is not a month 1..12 (or empty)")
            if year is None:
                raise bad(line_no, "a month needs a year")
            month = int(month_text)
        name = get("name") or shipped.names.get(code) or names.get(code) or region
        names[code] = name
        source = get("source") or f"user file {os.path.basename(where)}"
        item = Intensity(code, name, value, year, month, source)
        if month is None:
            previous = yearly.get(code)
            if previous is None or (year or 0) >= (previous.year or 0):
                yearly[code] = item
        else:
            assert year is not None
            monthly[(code, year, month)] = item
    return _Table(yearly, monthly, names)


def _merged(csv_path: str | os.PathLike[str] | None) -> _Table:
    shipped = _shipped()
    if csv_path is None:
        return shipped
    user = _read_user_csv(csv_path)
    return _Table(
        {**shipped.yearly, **user.yearly},
        {**shipped.monthly, **user.monthly},
        {**shipped.names, **user.names},
    )


# ------------------------------------------------------------------------------- look-ups


def _month_ranges(months: Iterable[tuple[int, int]]) -> str:
    """``[(2022,1)..(2023,12)]`` -> ``"2022-01 to 2023-12"`` (runs of consecutive months)."""
    ordered = sorted(set(months))
    runs: list[list[tuple[int, int]]] = []
    for ym in ordered:
        if runs and (runs[-1][-1][0] * 12 + runs[-1][-1][1] + 1) == ym[0] * 12 + ym[1]:
            runs[-1].append(ym)
        else:
            runs.append([ym])
    text = [f"{r[0][0]:04d}-{r[0][1]:02d}" for r in runs]
    return ", ".join(
        t if len(r) == 1 else f"{t} to {r[-1][0]:04d}-{r[-1][1]:02d}"
        for t, r in zip(text, runs, strict=False)
    )


def lookup(
    region: str | None = DEFAULT_REGION,
    month: str | None = None,
    *,
    intensity_g_per_kwh: float | None = None,
    csv_path: str | os.PathLike[str] | None = None,
) -> Intensity:
    """The carbon intensity for a region (code or name, any case), optionally for one month.

    ``intensity_g_per_kwh`` overrides the data (source "user value"); ``csv_path`` adds or
    replaces values from a user CSV ``region,year,month,g_co2e_per_kwh[,source]``.
    """
    ym = parse_month(month) if month not in (None, "") else None

    if intensity_g_per_kwh is not None:
        try:
            value = float(intensity_g_per_kwh)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise IntensityError(
                f"invalid intensity {intensity_g_per_kwh!r}: "
                "give a carbon intensity in g CO2e/kWh, a number >= 0"
            )
        code, name = "custom", "custom"
        if region:
            code = _resolve(region) or region
            name = _shipped().names.get(code, code)
        return Intensity(
            code, name, value, ym[0] if ym else None, ym[1] if ym else None, "user value"
        )

    table = _merged(csv_path)
    region = DEFAULT_REGION if region is None else region
    if not str(region).strip():
        raise IntensityError(f"empty region: {_HINT[0].lower()}{_HINT[1:]}")
    resolved = _resolve(region, table.names)
    if resolved is None:
        raise _unknown_region(region, table.names if csv_path is not None else None)
    code = resolved

    if ym is None:
        if code not in table.yearly:
            months = _month_ranges((y, m) for (c, y, m) in table.monthly if c == code)
            raise IntensityError(
                f"no yearly value for {code}: only monthly data ({months}); give a month"
            )
        return table.yearly[code]

    hit = table.monthly.get((code, ym[0], ym[1]))
    if hit is not None:
        return hit
    available = [(y, m) for (c, y, m) in table.monthly if c == code]
    name = table.names.get(code, code)
    if not available:
        with_months = sorted({c for (c, _, _) in table.monthly})
        raise IntensityError(
            f"no monthly data for {code} ({name}): monthly intensities exist for "
            f"{', '.join(with_months) or 'no region'}; drop the month to use the yearly value"
        )
    raise IntensityError(
        f"no data for {code} in {ym[0]:04d}-{ym[1]:02d}: "
        f"available months {_month_ranges(available)}"
    )


def list_regions(
    month: str | None = None, *, csv_path: str | os.PathLike[str] | None = None
) -> list[Intensity]:
    """Every region's yearly value, or, with ``month``, every region with data for that month."""
    table = _merged(csv_path)

    def order(it: Intensity) -> tuple[int, str]:
        code = it.region
        return (0 if code in ("WORLD", "EU27") else 2 if code.startswith("US-") else 1, code)

    if month in (None, ""):
        return sorted(table.yearly.values(), key=order)
    year, mon = parse_month(month)
    return sorted(
        (it for (c, y, m), it in table.monthly.items() if (y, m) == (year, mon)), key=order
    )


def monthly_coverage(*, csv_path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Regions with monthly data and their months: ``{"DE": "2022-01 to 2023-12"}``."""
    table = _merged(csv_path)
    codes = sorted({c for (c, _, _) in table.monthly})
    return {
        code: _month_ranges((y, m) for (c, y, m) in table.monthly if c == code) for code in codes
    }


def normalize_month(text: str) -> str:
    """``"2022-3"`` or ``" 2022-03 "`` -> ``"2022-03"``; IntensityError (one line) otherwise."""
    year, month = parse_month(str(text).strip())
    return f"{year:04d}-{month:02d}"
