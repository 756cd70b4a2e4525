"""Carbon accounting: the paper's Eq. 1, grid intensities by region and month, equivalents.

Pure; reads the shipped data in ``pytest_co2/data``. ``from pytest_co2.carbon import
emission`` keeps working: the Eq. 1 names are re-exported from :mod:`.emission`.
"""

from __future__ import annotations

from .emission import (
    DEFAULT_PUE,
    J_PER_KWH,
    Emission,
    co2e_kg,
    emission,
    g_to_kg,
    j_to_kwh,
    kg_to_g,
    kwh_to_j,
    parse_energy_kwh,
    parse_pue,
)

__all__ = [
    "DEFAULT_PUE",
    "J_PER_KWH",
    "Emission",
    "co2e_kg",
    "emission",
    "g_to_kg",
    "j_to_kwh",
    "kg_to_g",
    "kwh_to_j",
    "parse_energy_kwh",
    "parse_pue",
]
