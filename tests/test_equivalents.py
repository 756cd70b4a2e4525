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
        "6.04 tree seedlings grown 10 years, 33.7% of a person's annual 1.5\u00a0°C budget"
    )


def test_small_and_zero() -> None:
    assert format_equivalents(0) == "= nothing (0 g CO2e)"
    # 8.22 g: every figure in the first unit where it reaches 1
    assert format_equivalents(0.00822) == (
        "= 76 m by car, 1 smartphone charge, a 34 m flight, "
        "12 hours of a tree seedling's growth, "
        "4.02 minutes of a person's annual 1.5\u00a0°C budget"
    )


def test_tiny_masses_read_in_small_units_or_are_left_out() -> None:
    # 1 mg: 9.24 mm by car (1 g / 108.2 g per km), the budget's share of a year in seconds
    assert format_equivalents(1e-6) == (
        "= 9.24 mm by car, 0.0122% of a smartphone charge, a 4.14 mm flight, "
        "5.26 seconds of a tree seedling's growth, "
        "0.0294 seconds of a person's annual 1.5\u00a0°C budget"
    )
    # 0.1 mg: the phone (0.00122%) and the budget (0.00294 s) fall below 0.01 of their
    # last unit and are left out; never a figure such as 0.000000000000112 seedlings
    assert format_equivalents(1e-7) == (
        "= 0.924 mm by car, a 0.414 mm flight, 0.526 seconds of a tree seedling's growth"
    )
    # 1 ug: nothing left
    assert format_equivalents(1e-9) == (
        "= less than 0.01 mm by car (too little for an everyday equivalent)"
    )


@pytest.mark.parametrize(
    "kg,part",
    [
        (1.075, "0.1% of a person's annual"),  # the budget in % down to 0.1%
        (1.0, "8.15 hours of a person's annual"),  # then in hours of the year
        (0.01, "4.89 minutes of a person's annual"),
        (60.0 / 3652.5, "1 day of a tree seedling's growth"),  # singular
        (0.1082, "a 448 m flight, "),
        (0.1082, "= 1 km by car, "),
        (0.00822 / 2, "50% of a smartphone charge"),
    ],
)
def test_each_ladder_step(kg: float, part: str) -> None:
    assert part in format_equivalents(kg)


def test_the_budget_unit_is_never_split_by_a_wrap() -> None:
    import textwrap

    for width in range(20, 120):
        lines = textwrap.wrap(format_equivalents(362.3), width)
        assert not any(line.endswith("1.5") for line in lines)


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
