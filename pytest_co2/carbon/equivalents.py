"""Everyday equivalents of a mass of CO2e (the scale of the paper's Fig. 1).

Factors come from ``data/equivalence_factors.csv`` (sources in that file).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache

__all__ = ["Factor", "equivalents", "factors", "format_equivalents", "format_number"]


@dataclass(frozen=True)
class Factor:
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


def format_equivalents(co2e_kg: float) -> str:
    """One line: ``"= 3,348 km by car, 44,075 smartphone charges, a 1,500 km flight, ..."``."""
    e = equivalents(co2e_kg)
    charges = format_number(e["smartphone_charges"])
    seedlings = format_number(e["tree_seedlings_10y"])
    return (
        f"= {format_number(e['car_km'])} km by car, "
        f"{charges} smartphone charge{'' if charges == '1' else 's'}, "
        f"a {format_number(e['flight_km'])} km flight, "
        f"{seedlings} tree seedling{'' if seedlings == '1' else 's'} grown 10 years, "
        f"{format_number(e['annual_budget_1p5c_pct'])}% of a person's annual 1.5 °C budget"
    )
