"""The shipped intensity tables and the region names that select them.

* ``data/intensity_yearly.csv``: one yearly value per region;
* ``data/de_monthly_intensity_2022_2023.csv``: monthly lifecycle values for Germany.

Both are read lazily, once, with the csv module. :class:`Table` keeps yearly values, monthly
values and names; :class:`Overlay` lays a user table over the shipped one. A region is
selected by code, English name or alias, in any case (:func:`resolve_code`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from functools import cache

from .intensity_value import Intensity, IntensityError

REGION_HINT = "Use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"
# Extra spellings that resolve to a canonical code (keys are case-folded).
_ALIASES = {
    "eu": "EU27",
    "eu-27": "EU27",
    "european union": "EU27",
    "uk": "GB",
    "usa": "US",
    "united states of america": "US",
}


def _ym(year: int, month: int) -> int:
    return year * 12 + month - 1


class Table:
    """Yearly values, monthly values and names. Monthly values are kept compactly (a float
    per month, the source once per region) so that a large user file stays small in memory."""

    def __init__(
        self,
        yearly: Mapping[str, Intensity],
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


class Overlay(Table):
    """A user table over the shipped one: the user's rows win, key by key."""

    def __init__(self, user: Table, shipped: Table) -> None:
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


def data_text(filename: str) -> str:
    from importlib.resources import files

    return files("pytest_co2").joinpath(f"data/{filename}").read_text(encoding="utf-8")


class Yearly(Mapping[str, Intensity]):
    """The shipped yearly values, each made from its CSV line when first looked up: a run
    converts with one region (and its what-ifs), not with all of them."""

    def __init__(self, lines: dict[str, str], header: list[str]) -> None:
        self._lines = lines  # code -> its line
        col = {name: i for i, name in enumerate(header)}
        self._cols = col["region"], col["name"], col["g_co2e_per_kwh"], col["year"], col["source"]
        self._made: dict[str, Intensity] = {}

    def __getitem__(self, code: str) -> Intensity:
        made = self._made.get(code)
        if made is None:
            cells = next(csv.reader([self._lines[code]]))
            c_region, c_name, c_g, c_year, c_source = self._cols
            made = self._made[code] = Intensity(
                cells[c_region],
                cells[c_name],
                float(cells[c_g]),
                int(cells[c_year]),
                None,
                cells[c_source],
            )
        return made

    def __contains__(self, code: object) -> bool:
        return code in self._lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def yearly_lines(text: str) -> tuple[Yearly, dict[str, str]]:
    """The yearly values (made on look-up) and every region's name. A line whose code and
    name hold no quote is split by its commas; any other goes through the csv module."""
    lines = text.splitlines()
    header = next(csv.reader(lines[:1]))
    by_code: dict[str, str] = {}
    names: dict[str, str] = {}
    c_region, c_name = header.index("region"), header.index("name")
    fast = (c_region, c_name) == (0, 1)
    for line in lines[1:]:
        head = line.split(",", 2)
        if fast and len(head) == 3 and '"' not in head[0] and '"' not in head[1]:
            code, name = head[0], head[1]
        elif not line.strip():
            continue
        else:
            cells = next(csv.reader([line]))
            code, name = cells[c_region], cells[c_name]
        by_code[code], names[code] = line, name
    return Yearly(by_code, header), names


@cache
def shipped_table() -> Table:
    yearly, names = yearly_lines(data_text("intensity_yearly.csv"))
    monthly: dict[str, dict[int, float]] = {}
    sources: dict[str, str] = {}
    exceptions: dict[tuple[str, int], str] = {}
    for row in csv.DictReader(
        io.StringIO(data_text("de_monthly_intensity_2022_2023.csv"), newline="")
    ):
        if not row["month"].isdigit():  # "year", "year_EEA", ...: comparison rows, not months
            continue
        code, key = row["region"], _ym(int(row["year"]), int(row["month"]))
        monthly.setdefault(code, {})[key] = float(row["g_co2e_per_kwh_lifecycle"])
        source = f"{row['source']}; lifecycle value"
        if sources.setdefault(code, source) != source:
            exceptions[(code, key)] = source
    return Table(yearly, monthly, sources, names, exceptions)


@cache
def _name_index() -> dict[str, str]:
    """Case-folded code, name or alias -> code. Countries win a name shared with a US state."""
    table = shipped_table()
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


def resolve_code(region: str, extra: dict[str, str] | None = None) -> str | None:
    """Canonical code for a code, name or alias (any case); ``extra``: user code -> name."""
    key = " ".join(region.split()).casefold()
    names = shipped_table().names
    if region in names:  # a code as written (the usual case): no need for the name index
        return region
    index = _name_index()
    if key in index:
        return index[key]
    for code, name in (extra or {}).items():
        if key in (code.casefold(), name.casefold()):
            return code
    return None


def unknown_region(region: str, names: dict[str, str]) -> IntensityError:
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
        return IntensityError(
            f"unknown region {region!r}: {REGION_HINT[0].lower()}{REGION_HINT[1:]}"
        )
    shown = [f"{c} ({names[c]})" for c in codes]
    guess = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return IntensityError(f"unknown region {region!r}: did you mean {guess}? {REGION_HINT}")
