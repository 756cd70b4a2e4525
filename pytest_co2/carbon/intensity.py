"""Carbon intensity of electricity (g CO2e per kWh) by region and, where shipped, by month.

The look-ups: a region (code such as ``SE``, ``eu27``, ``US-CA``, or English name such as
``sweden``, in any case) and optionally a month, from the shipped tables
(:mod:`.intensity_tables`, sources in ``data/DATA_LICENSES.md``) overlaid by a user file
(``--co2-intensity-file``, :mod:`.intensity_file`); the value itself is an
:class:`~.intensity_value.Intensity`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from ..constants import DEFAULT_REGION
from .intensity_tables import (
    REGION_HINT,
    Overlay,
    Table,
    resolve_code,
    shipped_table,
    unknown_region,
)
from .intensity_value import (
    Intensity,
    IntensityError,
    parse_g_per_kwh,
    parse_month,
)

__all__ = [
    "list_regions",
    "lookup",
    "monthly_coverage",
    "monthly_values",
    "normalize_month",
    "paper_regions",
    "parse_region",
    "resolve_region",
]


def merged_table(csv_path: str | os.PathLike[str] | None) -> Table:
    """The shipped table, with the user file at ``csv_path`` over it when one is given (the
    user-file module is imported only then)."""
    if csv_path is None:
        return shipped_table()
    from .intensity_file import read_user_csv

    return Overlay(read_user_csv(csv_path), shipped_table())


_REGION_TEXT = r"^[^\x00-\x1f,;=]{1,80}$"  # compiled on first use (re keeps it)


def parse_region(text: str) -> str:
    """A region as given in an option, checked before the intensity file is known.

    A shipped code, name or alias gives its code (``"sweden"`` -> ``"SE"``); any other
    well-formed text is kept as written (stripped), so that a region defined only in
    ``--co2-intensity-file`` can be selected: :func:`lookup` with ``csv_path`` resolves it
    (or rejects it, with suggestions) once the file is known.
    """
    region = " ".join(str(text).split())
    if not region:
        raise IntensityError(f"empty region: {REGION_HINT[0].lower()}{REGION_HINT[1:]}")
    if not re.match(_REGION_TEXT, region):
        raise IntensityError(
            f"invalid region {str(text)!r}: expected a code or name of at most 80 characters, "
            f"without commas; {REGION_HINT[0].lower()}{REGION_HINT[1:]}"
        )
    return resolve_code(region) or region


def resolve_region(text: str, *, csv_path: str | os.PathLike[str] | None = None) -> str:
    """The canonical code of a region, shipped or defined in ``csv_path``; IntensityError if
    neither knows it (the message suggests the closest)."""
    region = parse_region(text)
    table = merged_table(csv_path)
    code = resolve_code(region, table.names)
    if code is None:
        raise unknown_region(region, table.names)
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
            code = resolve_code(region) or region
            name = shipped_table().names.get(code, code)
        return Intensity(
            code, name, value, ym[0] if ym else None, ym[1] if ym else None, "user value"
        )

    table = merged_table(csv_path)
    region = DEFAULT_REGION if region is None else region
    if not str(region).strip():
        raise IntensityError(f"empty region: {REGION_HINT[0].lower()}{REGION_HINT[1:]}")
    resolved = resolve_code(region, table.names)
    if resolved is None:
        raise unknown_region(region, table.names)
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
    table = merged_table(csv_path)

    def order(it: Intensity) -> tuple[int, str]:
        code = it.region
        return (0 if code in ("WORLD", "EU27") else 2 if code.startswith("US-") else 1, code)

    if month in (None, ""):
        return sorted(table.yearly.values(), key=order)
    year, mon = parse_month(month)
    return sorted(table.at(year, mon), key=order)


def monthly_coverage(*, csv_path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Regions with monthly data and their months: ``{"DE": "2022-01 to 2023-12"}``."""
    table = merged_table(csv_path)
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
    table = merged_table(csv_path)
    code = resolve_region(region, csv_path=csv_path)
    out = [table.month(code, y, m) for y, m in table.months_of(code)]
    return [it for it in out if it is not None]
