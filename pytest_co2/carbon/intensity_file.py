"""A user's intensity file (``--co2-intensity-file``): a CSV
``region,year,month,g_co2e_per_kwh[,source][,name]`` over the shipped tables.

It is read once per version of the file (path, inode, size, mtime, ctime), streaming, into a
compact :class:`~.intensity_tables.Table`; two rows for one region and period are an error
naming both lines unless they agree.
"""

from __future__ import annotations

import csv
import math
import os
import threading
from typing import Any

from .intensity_tables import Table, resolve_code, shipped_table
from .intensity_value import Intensity, IntensityError

_CACHE_SIZE = 4
_user_cache: dict[tuple[str, int, int, int, int, int], Table] = {}
_cache_lock = threading.Lock()


def read_user_csv(path: str | os.PathLike[str]) -> Table:
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


def _parse_user_csv(where: str) -> Table:
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


def _parse_rows(reader: Any, where: str) -> Table:  # noqa: PLR0912, PLR0915
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
    shipped = shipped_table()
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
                code = codes[region] = resolve_code(text) or text.upper()
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
    return Table(table_yearly, monthly, monthly_source, names, exceptions)


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
                if not region or (resolve_code(region) or region.upper()) != code:
                    continue
                y, m = fields.get("year", "").strip(), fields.get("month", "").strip()
                if (int(y) if y else None) == year and (int(m) if m else None) == month:
                    return reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None
    return None
