"""Everyday equivalents of a mass of CO2e (the scale of the paper's Fig. 1).

Factors come from ``data/equivalence_factors.csv`` (sources in that file).
"""

from __future__ import annotations

import csv
import math
from functools import cache

from ..frozen import Frozen, record

__all__ = ["Factor", "equivalents", "factors", "format_equivalents", "format_number"]


@record
class Factor(Frozen):
    """Grams of CO2e per unit of an everyday activity."""

    name: str
    g_per_unit: float
    unit_label: str
    source: str


@cache
def _factors() -> tuple[Factor, ...]:
    from importlib.resources import files

    text = files("pytest_co2").joinpath("data/equivalence_factors.csv").read_text(encoding="utf-8")
    return tuple(
        Factor(row["name"], float(row["value"]), row["unit"], row["source"])
        for row in csv.DictReader(text.splitlines())
    )


def factors() -> dict[str, Factor]:
    """Factors by name: car_km, smartphone_charge, flight_km, tree_seedling_10y,
    annual_budget_1p5c (a fresh dict each call)."""
    return {f.name: f for f in _factors()}


def equivalents(co2e_kg: float) -> dict[str, float]:
    """How many of each everyday unit emit ``co2e_kg`` (the budget as a percentage)."""
    if not (math.isfinite(co2e_kg) and co2e_kg >= 0):
        raise ValueError(f"invalid CO2e {co2e_kg!r}: expected a finite number of kg >= 0")
    f = factors()
    g = co2e_kg * 1000.0
    return {
        "car_km": g / f["car_km"].g_per_unit,
        "smartphone_charges": g / f["smartphone_charge"].g_per_unit,
        "flight_km": g / f["flight_km"].g_per_unit,
        "tree_seedlings_10y": g / f["tree_seedling_10y"].g_per_unit,
        "annual_budget_1p5c_pct": 100.0 * g / f["annual_budget_1p5c"].g_per_unit,
    }


def format_number(x: float) -> str:
    """Whole numbers with thousands separators from 100 up, else 3 significant digits
    without trailing zeros: 3348.4 -> "3,348", 6.0383 -> "6.04", 1.0 -> "1", 0.076 -> "0.076"."""
    if x == 0:
        return "0"
    if abs(x) >= 99.95:
        return f"{x:,.0f}"
    decimals = 2 - math.floor(math.log10(abs(x)))  # >= 1 below 99.95: the text has a "."
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".")


# Each equivalent in the units a person can read: the first unit in which the figure is
# at least 1, else the last unit if the figure there is at least 0.01, else it is left out
# (a billionth of a tree seedling says nothing). (label template, units per base unit[,
# the least figure shown in that unit when it is not 1]).
_YEAR_S = 365.25 * 86400.0
_NBSP = "\u00a0"  # "1.5 °C" is never split across lines by a wrap
_BUDGET = f"a person's annual 1.5{_NBSP}°C budget"
_Rung = tuple[str, float] | tuple[str, float, float]
_LADDERS: dict[str, tuple[_Rung, ...]] = {
    "car_km": (("{} km by car", 1.0), ("{} m by car", 1e3), ("{} mm by car", 1e6)),
    "smartphone_charges": (
        ("{} smartphone charge{s}", 1.0),
        ("{}% of a smartphone charge", 100.0),
    ),
    "flight_km": (("a {} km flight", 1.0), ("a {} m flight", 1e3), ("a {} mm flight", 1e6)),
    "tree_seedlings_10y": (
        ("{} tree seedling{s} grown 10 years", 1.0),
        ("{} day{s} of a tree seedling's growth", 10 * 365.25),
        ("{} hour{s} of a tree seedling's growth", 10 * 8766.0),
        ("{} minute{s} of a tree seedling's growth", 10 * 8766.0 * 60),
        ("{} second{s} of a tree seedling's growth", 10 * _YEAR_S),
    ),
    "annual_budget_1p5c_pct": (
        ("{}% of " + _BUDGET, 1.0, 0.1),  # 0.651% reads better than 57.1 hours
        ("{} hour{s} of " + _BUDGET, 8766.0 / 100.0),
        ("{} minute{s} of " + _BUDGET, 8766.0 * 60 / 100.0),
        ("{} second{s} of " + _BUDGET, _YEAR_S / 100.0),
    ),
}
_SMALLEST = 0.01  # in the last unit of a ladder; below it the equivalent is left out


def _readable(value: float, ladder: tuple[_Rung, ...]) -> str | None:
    """``value`` (in the ladder's first unit) in the first unit where it is >= 1."""
    for i, (template, per_unit, *least) in enumerate(ladder):
        x = value * per_unit
        if x >= (least[0] if least else 1.0) or (i == len(ladder) - 1 and x >= _SMALLEST):
            text = format_number(x)
            return template.format(text, s="" if text == "1" else "s")
    return None


def format_equivalents(co2e_kg: float) -> str:
    """One line in readable units, e.g. ``"= 3,348 km by car, 44,075 smartphone charges,
    a 1,500 km flight, ..."``; ``"= 76 m by car, ..."`` for small masses; an equivalent
    below 0.01 of its smallest unit is left out, and a mass below all of them says so."""
    e = equivalents(co2e_kg)
    if co2e_kg == 0:
        return "= nothing (0 g CO2e)"
    parts = [p for key, ladder in _LADDERS.items() if (p := _readable(e[key], ladder))]
    if not parts:
        return "= less than 0.01 mm by car (too little for an everyday equivalent)"
    return "= " + ", ".join(parts)
