"""Carbon intensity of electricity (g CO2e per kWh) by region and, where shipped, by month.

Shipped data (see ``data/DATA_LICENSES.md``):

* ``data/intensity_yearly.csv``: one yearly value per region (the paper's Table 1, EEA 2022,
  OWID/Ember via carbontracker, US EPA eGRID2023 states as ``US-CA``, and ``WORLD``).
* ``data/de_monthly_intensity_2022_2023.csv``: monthly lifecycle values for Germany
  (Electricity Maps, ODbL).

Regions are selected by code (``SE``, ``eu27``, ``US-CA``) or English name (``sweden``), in any
case. The tables are read lazily, once, with the csv module; a user file
(``--co2-intensity-file``) is read once per version of the file (path, size, mtime), streaming.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import threading
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
    "parse_g_per_kwh",
    "parse_month",
    "parse_region",
    "resolve_region",
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


def _ym(year: int, month: int) -> int:
    return year * 12 + month - 1


class _Table:
    """Yearly values, monthly values and names. Monthly values are kept compactly (a float
    per month, the source once per region) so that a large user file stays small in memory."""

    def __init__(
        self,
        yearly: dict[str, Intensity],
        monthly: dict[str, dict[int, float]],  # code -> {year*12 + month-1: g/kWh}
        monthly_source: dict[str, str],  # code -> the source of its months
        names: dict[str, str],  # code -> display name
        source_exceptions: dict[tuple[str, int], str] | None = None,  # months of another source
    ) -> None:
        self.yearly = yearly
        self.monthly = monthly
        self.monthly_source = monthly_source
        self.names = names
        self.source_exceptions = source_exceptions or {}

    def month(self, code: str, year: int, month: int) -> Intensity | None:
        values = self.monthly.get(code)
        key = _ym(year, month)
        if values is None or key not in values:
            return None
        source = self.source_exceptions.get((code, key)) or self.monthly_source[code]
        return Intensity(code, self.names.get(code, code), values[key], year, month, source)

    def months_of(self, code: str) -> list[tuple[int, int]]:
        return [(k // 12, k % 12 + 1) for k in self.monthly.get(code, {})]

    def monthly_codes(self) -> list[str]:
        return sorted(c for c, v in self.monthly.items() if v)

    def at(self, year: int, month: int) -> list[Intensity]:
        out = []
        for code in self.monthly_codes():
            it = self.month(code, year, month)
            if it is not None:
                out.append(it)
        return out


class _Overlay(_Table):
    """A user table over the shipped one: the user's rows win, key by key."""

    def __init__(self, user: _Table, shipped: _Table) -> None:
        names = {**shipped.names, **user.names}
        super().__init__({**shipped.yearly, **user.yearly}, {}, {}, names)
        self.user, self.shipped = user, shipped

    def month(self, code: str, year: int, month: int) -> Intensity | None:
        hit = self.user.month(code, year, month)
        if hit is None:
            hit = self.shipped.month(code, year, month)
            if hit is not None and code in self.user.names:
                hit = Intensity(code, self.names[code], hit.g_per_kwh, year, month, hit.source)
        return hit

    def months_of(self, code: str) -> list[tuple[int, int]]:
        return sorted(set(self.user.months_of(code)) | set(self.shipped.months_of(code)))

    def monthly_codes(self) -> list[str]:
        return sorted(set(self.user.monthly_codes()) | set(self.shipped.monthly_codes()))


def _data_text(filename: str) -> str:
    from importlib.resources import files

    return files("pytest_co2").joinpath(f"data/{filename}").read_text(encoding="utf-8")


@cache
def _shipped() -> _Table:
    yearly: dict[str, Intensity] = {}
    for row in csv.DictReader(io.StringIO(_data_text("intensity_yearly.csv"), newline="")):
        code = row["region"]
        yearly[code] = Intensity(
            code, row["name"], float(row["g_co2e_per_kwh"]), int(row["year"]), None, row["source"]
        )
    names = {code: it.name for code, it in yearly.items()}
    monthly: dict[str, dict[int, float]] = {}
    sources: dict[str, str] = {}
    exceptions: dict[tuple[str, int], str] = {}
    for row in csv.DictReader(
        io.StringIO(_data_text("de_monthly_intensity_2022_2023.csv"), newline="")
    ):
        if not row["month"].isdigit():  # "year", "year_EEA", ...: comparison rows, not months
            continue
        code, key = row["region"], _ym(int(row["year"]), int(row["month"]))
        monthly.setdefault(code, {})[key] = float(row["g_co2e_per_kwh_lifecycle"])
        source = f"{row['source']}; lifecycle value"
        if sources.setdefault(code, source) != source:
            exceptions[(code, key)] = source
    return _Table(yearly, monthly, sources, names, exceptions)


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


def _unknown_region(region: str, names: dict[str, str]) -> IntensityError:
    """The error for an unknown region, suggesting up to three of ``names`` (code -> name)."""
    import difflib

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


_CACHE_SIZE = 4
_user_cache: dict[tuple[str, int, int, int, int, int], _Table] = {}
_cache_lock = threading.Lock()


def _read_user_csv(path: str | os.PathLike[str]) -> _Table:
    """The parsed user CSV, read once per file version (path, inode, size, mtime, ctime)."""
    where = os.fspath(path)
    try:
        st = os.stat(where)
    except OSError as exc:
        raise IntensityError(f"cannot read intensity file {where!r}: {exc.strerror}") from None
    key = (
        os.path.realpath(where),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,  # a file system with coarse mtimes still changes ctime on a rewrite
    )
    with _cache_lock:
        hit = _user_cache.get(key)
        if hit is not None:
            return hit
        table = _parse_user_csv(where)
        if len(_user_cache) >= _CACHE_SIZE:
            _user_cache.pop(next(iter(_user_cache)))
        _user_cache[key] = table
        return table


def _parse_user_csv(where: str) -> _Table:
    """Parse a user CSV ``region,year,month,g_co2e_per_kwh[,source][,name]``, streaming.

    Blank lines are skipped; a UTF-8 byte-order mark is allowed; of several yearly rows for
    one region the latest year wins; two rows for one region and period (a year, or a
    month) are an error naming both lines unless they agree.
    """
    try:
        with open(where, newline="", encoding="utf-8-sig") as fh:
            return _parse_rows(csv.reader(fh), where)
    except OSError as exc:
        raise IntensityError(f"cannot read intensity file {where!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise IntensityError(f"intensity file {where!r} is not UTF-8 text") from None


def _parse_rows(reader: Any, where: str) -> _Table:  # noqa: PLR0912, PLR0915
    def bad(line: int, problem: str) -> IntensityError:
        return IntensityError(f"{where}, line {line}: {problem}")

    header: list[str] = []
    try:
        for first in reader:
            if first and any(f.strip() for f in first):
                header = [h.strip().lower() for h in first]
                break
    except csv.Error as exc:
        raise bad(reader.line_num, str(exc)) from None
    required = ["region", "year", "g_co2e_per_kwh"]
    missing = [h for h in required if h not in header]
    if missing:
        raise bad(
            max(reader.line_num, 1),
            f"header lacks {', '.join(missing)}; expected "
            "region,year,month,g_co2e_per_kwh (month and source optional)",
        )
    n_cols = len(header)
    col = {h: i for i, h in enumerate(header)}
    i_region, i_year, i_value = col["region"], col["year"], col["g_co2e_per_kwh"]
    i_month, i_source, i_name = col.get("month"), col.get("source"), col.get("name")
    shipped = _shipped()
    default_source = f"user file {os.path.basename(where)}"
    yearly: dict[str, tuple[int | None, float, str]] = {}
    monthly: dict[str, dict[int, float]] = {}
    monthly_source: dict[str, str] = {}
    exceptions: dict[tuple[str, int], str] = {}
    names: dict[str, str] = {}
    codes: dict[str, str] = {}  # region text as written -> code
    years: dict[str, int | None] = {}  # year text -> year (checked once per distinct text)
    months: dict[str, int] = {}
    keys: dict[int, int] = {}  # one int object per month key

    stripped: dict[str, str] = {}  # name and source texts as written -> stripped
    try:
        for row in reader:
            fields = row
            n = len(fields)
            if n < n_cols:  # a short row (a blank line is skipped at its empty region)
                fields = [*row, *[""] * (n_cols - n)]
            elif n > n_cols:
                if not any(f.strip() for f in fields):
                    continue
                raise bad(reader.line_num, f"{n} fields but the header has {n_cols}")
            region = fields[i_region]
            code = codes.get(region)
            if code is None:
                text = region.strip()
                if not text:
                    if not any(f.strip() for f in fields):
                        continue
                    raise bad(reader.line_num, "empty region")
                code = codes[region] = _resolve(text) or text.upper()
                names.setdefault(code, shipped.names.get(code) or text)
            value_text = fields[i_value]
            try:
                value = float(value_text)
            except ValueError:
                value = math.nan
            if not (value >= 0 and value != math.inf):  # NaN fails the first test
                raise bad(
                    reader.line_num, f"g_co2e_per_kwh {value_text.strip()!r} is not a number >= 0"
                )
            value += 0.0  # -0.0 -> 0.0
            year_text = fields[i_year]
            year = years.get(year_text)
            if year is None and year_text not in years:
                t = year_text.strip()
                if t and not (t.isascii() and t.isdigit()):
                    raise bad(reader.line_num, f"year {t!r} is not a year such as 2022")
                year = int(t) if t else None
                years[year_text] = year
            month_text = fields[i_month] if i_month is not None else ""
            if i_name is not None:
                name = stripped.get(fields[i_name]) or stripped.setdefault(
                    fields[i_name], fields[i_name].strip()
                )
                if name:
                    names[code] = name
            source = default_source
            if i_source is not None:
                raw = fields[i_source]
                source = (
                    stripped.get(raw) or stripped.setdefault(raw, raw.strip()) or default_source
                )
            if not month_text or not month_text.strip():
                previous = yearly.get(code)
                if previous is not None and previous[0] == year and previous[1] != value:
                    raise _conflict(where, reader.line_num, code, year, None, previous[1], value)
                if previous is None or (year or 0) >= (previous[0] or 0):
                    yearly[code] = (year, value, source)
                continue
            month = months.get(month_text)
            if month is None:
                t = month_text.strip()
                if not (t.isascii() and t.isdigit() and 1 <= int(t) <= 12):
                    raise bad(reader.line_num, f"month {t!r} is not a month 1..12 (or empty)")
                month = months[month_text] = int(t)
            if year is None:
                raise bad(reader.line_num, "a month needs a year")
            key = year * 12 + month - 1
            key = keys.setdefault(key, key)
            values = monthly.get(code)
            if values is None:
                values = monthly[code] = {}
                monthly_source[code] = source
            if values.setdefault(key, value) != value:
                raise _conflict(where, reader.line_num, code, year, month, values[key], value)
            if source != monthly_source[code]:
                exceptions[(code, key)] = source
            elif exceptions:
                exceptions.pop((code, key), None)
    except csv.Error as exc:
        raise bad(reader.line_num, str(exc)) from None
    table_yearly = {
        code: Intensity(code, names[code], value, year, None, source)
        for code, (year, value, source) in yearly.items()
    }
    return _Table(table_yearly, monthly, monthly_source, names, exceptions)


def _conflict(
    where: str,
    line: int,
    code: str,
    year: int | None,
    month: int | None,
    first: float,
    second: float,
) -> IntensityError:
    """Two rows giving one region and period different values: an error naming both lines
    (the first is found again by a second pass, so the parse keeps no line numbers)."""
    period = f"{year}-{month:02d}" if month is not None else f"year {year or '(blank)'}"
    earlier = _first_line(where, code, year, month)
    at = f"line {earlier}" if earlier is not None else "an earlier line"
    return IntensityError(
        f"{where}, line {line}: {code} {period} is {second:g} g/kWh here but {first:g} g/kWh "
        f"at {at}: expected one value per region and period (remove one of the rows)"
    )


def _first_line(where: str, code: str, year: int | None, month: int | None) -> int | None:
    """The line of the first row of ``code`` for that year and month (None: not found)."""
    try:
        with open(where, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header: list[str] = []
            for row in reader:
                if not header:
                    header = [h.strip().lower() for h in row] if any(f.strip() for f in row) else []
                    continue
                fields = dict(zip(header, row, strict=False))
                region = fields.get("region", "").strip()
                if not region or (_resolve(region) or region.upper()) != code:
                    continue
                y, m = fields.get("year", "").strip(), fields.get("month", "").strip()
                if (int(y) if y else None) == year and (int(m) if m else None) == month:
                    return reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None
    return None


def _merged(csv_path: str | os.PathLike[str] | None) -> _Table:
    shipped = _shipped()
    if csv_path is None:
        return shipped
    return _Overlay(_read_user_csv(csv_path), shipped)


_REGION_TEXT = re.compile(r"^[^\x00-\x1f,;=]{1,80}$")


def parse_region(text: str) -> str:
    """A region as given in an option, checked before the intensity file is known.

    A shipped code, name or alias gives its code (``"sweden"`` -> ``"SE"``); any other
    well-formed text is kept as written (stripped), so that a region defined only in
    ``--co2-intensity-file`` can be selected: :func:`lookup` with ``csv_path`` resolves it
    (or rejects it, with suggestions) once the file is known.
    """
    region = " ".join(str(text).split())
    if not region:
        raise IntensityError(f"empty region: {_HINT[0].lower()}{_HINT[1:]}")
    if not _REGION_TEXT.match(region):
        raise IntensityError(
            f"invalid region {str(text)!r}: expected a code or name of at most 80 characters, "
            f"without commas; {_HINT[0].lower()}{_HINT[1:]}"
        )
    return _resolve(region) or region


def resolve_region(text: str, *, csv_path: str | os.PathLike[str] | None = None) -> str:
    """The canonical code of a region, shipped or defined in ``csv_path``; IntensityError if
    neither knows it (the message suggests the closest)."""
    region = parse_region(text)
    table = _merged(csv_path)
    code = _resolve(region, table.names)
    if code is None:
        raise _unknown_region(region, table.names)
    return code


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

    def run_text(run: list[tuple[int, int]]) -> str:
        first = f"{run[0][0]:04d}-{run[0][1]:02d}"
        return first if len(run) == 1 else f"{first} to {run[-1][0]:04d}-{run[-1][1]:02d}"

    return ", ".join(run_text(r) for r in runs)


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
        value = parse_g_per_kwh(intensity_g_per_kwh)
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
        raise _unknown_region(region, table.names)
    code = resolved

    if ym is None:
        if code not in table.yearly:
            months = _month_ranges(table.months_of(code))
            raise IntensityError(
                f"no yearly value for {code}: only monthly data ({months}); give a month"
            )
        return table.yearly[code]

    hit = table.month(code, ym[0], ym[1])
    if hit is not None:
        return hit
    available = table.months_of(code)
    if not available:  # (the shipped data has months, so the list is never empty)
        raise IntensityError(
            f"no monthly data for {code} ({table.names[code]}): monthly intensities exist for "
            f"{', '.join(table.monthly_codes())}; drop the month to use the yearly value"
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
    return sorted(table.at(year, mon), key=order)


def monthly_coverage(*, csv_path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Regions with monthly data and their months: ``{"DE": "2022-01 to 2023-12"}``."""
    table = _merged(csv_path)
    return {code: _month_ranges(table.months_of(code)) for code in table.monthly_codes()}


def normalize_month(text: str) -> str:
    """``"2022-3"`` or ``" 2022-03 "`` -> ``"2022-03"``; IntensityError (one line) otherwise."""
    year, month = parse_month(str(text).strip())
    return f"{year:04d}-{month:02d}"


def paper_regions() -> list[str]:
    """The regions of the paper's Table 1 (EU27 and the member states it lists)."""
    return [it.region for it in list_regions() if "Table 1" in it.source]


def monthly_values(
    region: str, *, csv_path: str | os.PathLike[str] | None = None
) -> list[Intensity]:
    """Every monthly value of ``region`` (none for most regions), oldest first."""
    table = _merged(csv_path)
    code = resolve_region(region, csv_path=csv_path)
    out = [table.month(code, y, m) for y, m in table.months_of(code)]
    return [it for it in out if it is not None]
