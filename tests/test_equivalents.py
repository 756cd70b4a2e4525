"""Everyday equivalents (pytest_co2.carbon.equivalents)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_co2.carbon.equivalents import (
    Factor,
    equivalents,
    factors,
    format_equivalents,
    format_number,
)


def test_factors_from_the_csv() -> None:
    f = factors()
    assert {k: v.g_per_unit for k, v in f.items()} == {
        "car_km": 108.2,
        "smartphone_charge": 8.22,
        "tree_seedling_10y": 60000.0,
        "flight_km": 241.5,
        "annual_budget_1p5c": 1075000.0,
    }
    assert f["car_km"] == Factor("car_km", 108.2, "g CO2 per km", f["car_km"].source)
    assert all(v.source for v in f.values())
    f.clear()  # a fresh dict each call
    assert len(factors()) == 5


def test_paper_figure_362_kg() -> None:
    e = equivalents(362.3)
    assert e == {
        "car_km": pytest.approx(362300 / 108.2),
        "smartphone_charges": pytest.approx(362300 / 8.22),
        "flight_km": pytest.approx(362300 / 241.5),
        "tree_seedlings_10y": pytest.approx(362300 / 60000),
        "annual_budget_1p5c_pct": pytest.approx(100 * 362300 / 1075000),
    }
    assert round(e["car_km"]) == 3348  # the abstract: "up to 3345 km"
    assert round(e["annual_budget_1p5c_pct"], 1) == 33.7  # Fig. 1
    assert round(e["flight_km"]) == 1500  # Fig. 1: a 1500 km flight
    assert round(e["tree_seedlings_10y"], 2) == 6.04
    assert format_equivalents(362.3) == (
        "= 3,348 km by car, 44,075 smartphone charges, a 1,500 km flight, "
        "6.04 tree seedlings grown 10 years, 33.7% of a person's annual 1.5 °C budget"
    )


def test_small_and_zero() -> None:
    assert format_equivalents(0) == (
        "= 0 km by car, 0 smartphone charges, a 0 km flight, "
        "0 tree seedlings grown 10 years, 0% of a person's annual 1.5 °C budget"
    )
    assert format_equivalents(0.00822) == (
        "= 0.076 km by car, 1 smartphone charge, a 0.034 km flight, "
        "0.000137 tree seedlings grown 10 years, 0.000765% of a person's annual 1.5 °C budget"
    )


@pytest.mark.parametrize(
    "x,text",
    [
        (0, "0"),
        (1, "1"),
        (6.0383, "6.04"),
        (33.702, "33.7"),
        (99.96, "100"),
        (100, "100"),
        (1234.5, "1,234"),
        (44075.4, "44,075"),
        (0.000123, "0.000123"),
        (12.0, "12"),
        (9.3, "9.3"),
    ],
)
def test_format_number(x: float, text: str) -> None:
    assert format_number(x) == text


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_rejects(bad: float) -> None:
    with pytest.raises(ValueError):
        equivalents(bad)


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=1e-3, max_value=1e3))
def test_linear(kg: float, a: float) -> None:
    base, scaled = equivalents(kg), equivalents(a * kg)
    for key in base:
        assert scaled[key] == pytest.approx(a * base[key], rel=1e-12, abs=1e-300)
    assert "\n" not in format_equivalents(kg)
