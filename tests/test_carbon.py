"""The paper's Eq. 1 and unit conversions (pytest_co2.carbon)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_co2.carbon import (
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
from pytest_co2.carbon.intensity import Intensity, lookup

energies = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
intensities = st.floats(min_value=0, max_value=2000, allow_nan=False, allow_infinity=False)
pues = st.floats(min_value=1.0, max_value=5.0, allow_nan=False, allow_infinity=False)
scales = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
REL = 1e-12


def test_constants() -> None:
    assert J_PER_KWH == 3.6e6
    assert DEFAULT_PUE == 1.55


def test_unit_conversions() -> None:
    assert j_to_kwh(3.6e6) == 1.0
    assert kwh_to_j(2.5) == 9.0e6
    assert g_to_kg(1500.0) == 1.5
    assert kg_to_g(0.25) == 250.0


def test_eq1_exact_values() -> None:
    assert co2e_kg(1000, 7, 1) == 7.0  # Sweden
    assert co2e_kg(1000, 666, 1) == 666.0  # Poland
    assert co2e_kg(1000, 251) == 389.05  # EU27 with the paper's PUE
    assert co2e_kg(0, 251) == 0.0
    # the paper's largest figure: 362.3 kg at CI_EU27 is 1443.4 kWh at the facility
    assert co2e_kg(1443.4, 251, 1.0) == pytest.approx(362.2934, rel=REL)


@pytest.mark.parametrize(
    "args",
    [(-1, 251, 1.55), (1, -1, 1.55), (1, 251, 0.9), (math.nan, 251, 1.55), (1, math.inf, 1.55)],
)
def test_eq1_rejects_bad_input(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        co2e_kg(*args)


@pytest.mark.parametrize("text,value", [("1.55", 1.55), ("1", 1.0), (1.2, 1.2), (" 2 ", 2.0)])
def test_parse_pue(text: str | float, value: float) -> None:
    assert parse_pue(text) == value


@pytest.mark.parametrize("text", ["0.9", "0", "-1", "nan", "inf", "abc", ""])
def test_parse_pue_rejects(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_pue(text)
    assert str(exc.value) == (
        f"invalid PUE {text!r}: a power usage effectiveness is a number >= 1.0 "
        "(the paper uses 1.55)"
    )


@pytest.mark.parametrize("text,value", [("0", 0.0), ("1443", 1443.0), (2.5, 2.5), ("1e3", 1000.0)])
def test_parse_energy_kwh(text: str | float, value: float) -> None:
    assert parse_energy_kwh(text) == value


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "x", ""])
def test_parse_energy_kwh_rejects(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_energy_kwh(text)
    assert str(exc.value) == f"invalid energy {text!r}: give the energy in kWh, a number >= 0"


def test_emission_record() -> None:
    em = emission(1000.0, lookup("DE", "2022-12"), 1.5, std_kwh=10.0, ci95_kwh=20.0)
    assert em == Emission(
        region="DE",
        month="2022-12",
        intensity_g_per_kwh=535.0,
        source=lookup("DE", "2022-12").source,
        pue=1.5,
        energy_kwh=1000.0,
        facility_energy_kwh=1500.0,
        co2e_kg=802.5,
        std_kg=8.025,
        ci95_kg=16.05,
    )
    assert Emission.from_dict(json.loads(json.dumps(em.to_dict()))) == em
    yearly = emission(1000.0, lookup("SE"), 1.0)
    assert (yearly.month, yearly.co2e_kg, yearly.std_kg, yearly.ci95_kg) == (None, 7.0, 0.0, 0.0)
    assert emission(1.0, lookup("EU27")).pue == DEFAULT_PUE


def test_emission_rejects_negative_std() -> None:
    with pytest.raises(ValueError):
        emission(1.0, lookup("SE"), std_kwh=-1.0)


# --------------------------------------------------------------------------- properties


@settings(deadline=None)
@given(energies, intensities, pues, scales)
def test_linear_in_energy(e: float, ci: float, pue: float, a: float) -> None:
    assert co2e_kg(a * e, ci, pue) == pytest.approx(a * co2e_kg(e, ci, pue), rel=REL, abs=1e-300)


@settings(deadline=None)
@given(energies, intensities, pues, scales)
def test_linear_in_intensity(e: float, ci: float, pue: float, a: float) -> None:
    assert co2e_kg(e, a * ci, pue) == pytest.approx(a * co2e_kg(e, ci, pue), rel=REL, abs=1e-300)


@settings(deadline=None)
@given(energies, intensities, pues, st.floats(min_value=1.0, max_value=10.0))
def test_linear_in_pue(e: float, ci: float, pue: float, a: float) -> None:
    assert co2e_kg(e, ci, a * pue) == pytest.approx(a * co2e_kg(e, ci, pue), rel=REL, abs=1e-300)


@settings(deadline=None)
@given(energies, intensities, pues)
def test_eq1_is_the_product(e: float, ci: float, pue: float) -> None:
    assert co2e_kg(e, ci, pue) == pytest.approx(e * pue * ci / 1000.0, rel=REL, abs=1e-300)


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_j_kwh_round_trip(x: float) -> None:
    assert kwh_to_j(j_to_kwh(x)) == pytest.approx(x, rel=REL, abs=1e-300)
    assert j_to_kwh(kwh_to_j(x)) == pytest.approx(x, rel=REL, abs=1e-300)


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_g_kg_round_trip(x: float) -> None:
    assert kg_to_g(g_to_kg(x)) == pytest.approx(x, rel=REL, abs=1e-300)
    assert g_to_kg(kg_to_g(x)) == pytest.approx(x, rel=REL, abs=1e-300)


@settings(deadline=None)
@given(energies, intensities, pues, st.floats(min_value=0, max_value=1e6), scales)
def test_emission_uncertainty_carried_linearly(
    e: float, ci: float, pue: float, std: float, a: float
) -> None:
    it = Intensity("X", "X", ci, 2022, None, "test")
    em = emission(e, it, pue, std_kwh=std, ci95_kwh=1.96 * std)
    assert em.std_kg == pytest.approx(std * pue * ci / 1000.0, rel=REL, abs=1e-300)
    assert em.ci95_kg == pytest.approx(1.96 * em.std_kg, rel=REL, abs=1e-300)
    assert em.facility_energy_kwh == pytest.approx(e * pue, rel=REL, abs=1e-300)
    scaled = emission(a * e, it, pue, std_kwh=a * std)
    assert scaled.std_kg == pytest.approx(a * em.std_kg, rel=REL, abs=1e-300)
    assert scaled.co2e_kg == pytest.approx(a * em.co2e_kg, rel=REL, abs=1e-300)
