"""The paper's Eq. 1 and unit conversions (pytest_co2.carbon)."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timezone
from pathlib import Path

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
from pytest_co2.carbon.accounting import Accounting
from pytest_co2.carbon.equivalents import equivalents, format_equivalents, format_number
from pytest_co2.carbon.intensity import (
    _month_ranges,
    list_regions,
    lookup,
    monthly_coverage,
    monthly_values,
    normalize_month,
    paper_regions,
    parse_region,
    resolve_region,
)
from pytest_co2.carbon.intensity_value import (
    Intensity,
    IntensityError,
    format_age,
    format_g_per_kwh,
)
from pytest_co2.carbon.providers.base import ForecastPoint
from pytest_co2.measure.records import Projection

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


# -- exact values: data that exposes each rule ----------------------------------------
# ------------------------------------------------------------------------------ emission


def _it(g_per_kwh: float = 500.0, **kw: object) -> Intensity:
    return Intensity("XX", "Nowhere", g_per_kwh, 2024, None, "test data", **kw)  # type: ignore[arg-type]


def test_eq1_with_distinct_factors() -> None:
    # 4 kWh x PUE 1.25 x 250 g/kWh = 1250 g: every factor and the /1000 matter
    assert co2e_kg(4.0, 250.0, 1.25) == 1.25
    assert co2e_kg(2.0, 0.0, 2.0) == 0.0  # a zero intensity is accepted


@pytest.mark.parametrize(
    "args,message",
    [
        ((-0.5, 250.0, 1.25), "invalid energy_kwh -0.5: expected a finite number >= 0"),
        ((math.inf, 250.0, 1.25), "invalid energy_kwh inf: expected a finite number >= 0"),
        ((1.0, -2.0, 1.25), "invalid intensity_g_per_kwh -2.0: expected a finite number >= 0"),
        ((1.0, math.nan, 1.25), "invalid intensity_g_per_kwh nan: expected a finite number >= 0"),
        (
            (1.0, 250.0, 0.5),
            "invalid PUE '0.5': a power usage effectiveness is a number >= 1.0 "
            "(the paper uses 1.55)",
        ),
    ],
)
def test_eq1_messages(args: tuple[float, float, float], message: str) -> None:
    with pytest.raises(ValueError) as exc:
        co2e_kg(*args)
    assert str(exc.value) == message


@pytest.mark.parametrize("bad", [True, False, None, [1.5]])
def test_parse_pue_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError) as exc:
        parse_pue(bad)  # type: ignore[arg-type]
    assert str(exc.value) == (
        f"invalid PUE {str(bad)!r}: a power usage effectiveness is a number >= 1.0 "
        "(the paper uses 1.55)"
    )


@pytest.mark.parametrize("bad", [True, None, -0.25, math.inf])
def test_parse_energy_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError) as exc:
        parse_energy_kwh(bad)  # type: ignore[arg-type]
    assert str(exc.value) == f"invalid energy {str(bad)!r}: give the energy in kWh, a number >= 0"


def test_parse_accepts_numbers_and_padded_text() -> None:
    assert parse_pue(1.0) == 1.0 and parse_pue(" 1.25\n") == 1.25
    assert parse_energy_kwh(0.0) == 0.0 and parse_energy_kwh("\t0.5 ") == 0.5


def test_emission_every_field() -> None:
    em = emission(4.0, _it(250.0), 1.25, std_kwh=0.5, ci95_kwh=2.0)
    assert em == Emission(
        region="XX",
        month=None,
        intensity_g_per_kwh=250.0,
        source="test data",
        pue=1.25,
        energy_kwh=4.0,
        facility_energy_kwh=5.0,
        co2e_kg=1.25,
        std_kg=0.15625,
        ci95_kg=0.625,
    )
    assert em.to_dict() == {
        "region": "XX",
        "month": None,
        "intensity_g_per_kwh": 250.0,
        "source": "test data",
        "pue": 1.25,
        "energy_kwh": 4.0,
        "facility_energy_kwh": 5.0,
        "co2e_kg": 1.25,
        "std_kg": 0.15625,
        "ci95_kg": 0.625,
    }


def test_emission_of_a_monthly_intensity_records_the_month() -> None:
    it = Intensity("DE", "Germany", 512.0, 2023, 1, "monthly test")
    em = emission(2.0, it, 1.5)
    assert (em.month, em.co2e_kg, em.std_kg, em.ci95_kg) == ("2023-01", 1.536, 0.0, 0.0)


def test_unknown_spread_stays_nan_and_is_null_in_the_record() -> None:
    em = emission(4.0, _it(250.0), 1.25, std_kwh=math.nan, ci95_kwh=math.nan)
    assert math.isnan(em.std_kg) and math.isnan(em.ci95_kg)
    assert em.co2e_kg == 1.25
    d = em.to_dict()
    assert (d["std_kg"], d["ci95_kg"]) == (None, None)
    back = Emission.from_dict(d)
    assert math.isnan(back.std_kg) and math.isnan(back.ci95_kg)
    assert dataclasses.replace(back, std_kg=0.0, ci95_kg=0.0) == dataclasses.replace(
        em, std_kg=0.0, ci95_kg=0.0
    )
    only_std = emission(4.0, _it(250.0), 1.25, std_kwh=math.nan, ci95_kwh=2.0)
    assert math.isnan(only_std.std_kg) and only_std.ci95_kg == 0.625
    only_ci = emission(4.0, _it(250.0), 1.25, std_kwh=0.5, ci95_kwh=math.nan)
    assert only_ci.std_kg == 0.15625 and math.isnan(only_ci.ci95_kg)


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"std_kwh": -0.5}, "invalid std_kwh -0.5: expected a finite number >= 0"),
        ({"std_kwh": math.inf}, "invalid std_kwh inf: expected a finite number >= 0"),
        ({"ci95_kwh": -0.5}, "invalid ci95_kwh -0.5: expected a finite number >= 0"),
        ({"ci95_kwh": math.inf}, "invalid ci95_kwh inf: expected a finite number >= 0"),
    ],
)
def test_emission_rejects_a_bad_spread(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as exc:
        emission(4.0, _it(250.0), 1.25, **kw)
    assert str(exc.value) == message


def test_emission_from_a_minimal_dict() -> None:
    em = Emission.from_dict(
        {
            "region": "XX",
            "intensity_g_per_kwh": "250",
            "pue": "1.25",
            "energy_kwh": 4,
            "facility_energy_kwh": 5,
            "co2e_kg": "1.25",
        }
    )
    assert dataclasses.replace(em, std_kg=0.0, ci95_kg=0.0) == Emission(
        "XX", None, 250.0, "", 1.25, 4.0, 5.0, 1.25, 0.0, 0.0
    )
    assert math.isnan(em.std_kg) and math.isnan(em.ci95_kg)
    assert em.source == "" and em.month is None and em.provenance is None
    assert Emission.from_dict({**em.to_dict(), "month": 202301}).month == "202301"


def test_emission_with_a_live_intensity_keeps_its_provenance() -> None:
    it = _it(250.0, provenance="live", zone="DE-1", at="2026-12-03T08:00Z", reason="why")
    em = emission(4.0, it, 1.25)
    assert (em.provenance, em.zone, em.at, em.reason) == (
        "live",
        "DE-1",
        "2026-12-03T08:00Z",
        "why",
    )
    d = em.to_dict()
    assert (d["provenance"], d["zone"], d["at"], d["reason"]) == (
        "live",
        "DE-1",
        "2026-12-03T08:00Z",
        "why",
    )
    assert Emission.from_dict(d) == em
    partial = emission(4.0, _it(250.0, provenance="fallback", reason="offline"), 1.25)
    d = partial.to_dict()
    assert (d["provenance"], d["reason"]) == ("fallback", "offline")
    assert "zone" not in d and "at" not in d
    assert Emission.from_dict(d) == partial
    shipped = emission(4.0, _it(250.0), 1.25).to_dict()
    assert not {"provenance", "zone", "at", "reason"} & set(shipped)


# ---------------------------------------------------------------------------- accounting


def _user_file(tmp_path: Path) -> Path:
    path = tmp_path / "ci.csv"
    path.write_text(
        "region,year,month,g_co2e_per_kwh,source\n"
        "AAA,2024,,256,grid a\n"
        "BBB,2024,,512,grid b\n"
        "AAA,2024,3,128,grid a monthly\n",
        encoding="utf-8",
    )
    return path


def _projection(energy_kwh: float, std_kwh: float, ci95_kwh: float) -> Projection:
    return Projection(n=8, unit="step", energy_kwh=energy_kwh, std_kwh=std_kwh, ci95_kwh=ci95_kwh)


def test_accounting_binds_region_month_pue_and_file(tmp_path: Path) -> None:
    path = _user_file(tmp_path)
    acc = Accounting("aaa", "2024-03", pue=1.25, intensity_file=str(path), whatif_regions=["BBB"])
    assert (acc.region, acc.month, acc.pue, acc.intensity_file) == (
        "aaa",
        "2024-03",
        1.25,
        str(path),
    )
    assert acc.intensity == Intensity("AAA", "AAA", 128.0, 2024, 3, "grid a monthly")
    assert acc.forecast == ()
    assert list(acc.whatif) == ["BBB"]
    assert acc.whatif["BBB"] == Intensity("BBB", "BBB", 512.0, 2024, None, "grid b")
    em = acc.emission(_projection(4.0, 0.5, 2.0))
    assert (em.region, em.month, em.pue, em.co2e_kg, em.std_kg, em.ci95_kg) == (
        "AAA",
        "2024-03",
        1.25,
        0.64,
        0.08,
        0.32,
    )
    assert em.facility_energy_kwh == 5.0
    # the what-if regions use their yearly value and the session's PUE
    assert acc.whatif_of(_projection(4.0, 0.5, 2.0).energy_kwh) == {"BBB": 2.56}


def test_accounting_defaults_and_overrides() -> None:
    acc = Accounting()
    assert (acc.region, acc.month, acc.pue, acc.intensity_file) == ("EU27", None, 1.55, None)
    assert acc.intensity == lookup("EU27")
    assert acc.whatif == {} and acc.whatif_of(_projection(1.0, 0.0, 0.0).energy_kwh) == {}
    custom = Accounting("SE", intensity_g_per_kwh=250.0, pue=1.25)
    assert custom.intensity == Intensity("SE", "Sweden", 250.0, None, None, "user value")
    assert custom.emission(_projection(4.0, 0.0, 0.0)).co2e_kg == 1.25
    given = Intensity("GB", "United Kingdom", 64.0, 2026, None, "provider", provenance="live")
    point = ForecastPoint(
        datetime(2026, 12, 3, 8, tzinfo=timezone.utc),
        datetime(2026, 12, 3, 9, tzinfo=timezone.utc),
        32.0,
    )
    live = Accounting("GB", intensity=given, forecast=[point])
    assert live.intensity is given and live.forecast == (point,)
    assert live.emission(_projection(2.0, 0.0, 0.0)).provenance == "live"


def test_accounting_intensity_for_other_regions_and_months(tmp_path: Path) -> None:
    path = _user_file(tmp_path)
    acc = Accounting("BBB", pue=1.0, intensity_file=str(path))
    assert acc.intensity_for() is acc.intensity
    march = acc.intensity_for("AAA", "2024-03")
    assert march.g_per_kwh == 128.0
    assert acc.intensity_for("AAA", "2024-03") is march  # looked up once
    assert acc.intensity_for("AAA").g_per_kwh == 256.0  # the file's yearly value
    assert acc.intensity_for("DE", "2022-12").g_per_kwh == 535.0  # shipped months still there
    de = Accounting("DE")
    assert de.intensity_for(None, "2022-12") == lookup("DE", "2022-12")  # the session region
    em = acc.emission(_projection(4.0, math.nan, math.nan), "AAA", "2024-03")
    assert em.co2e_kg == 0.512 and math.isnan(em.std_kg) and math.isnan(em.ci95_kg)
    assert acc.emission(_projection(4.0, 0.0, 0.0), "AAA").co2e_kg == 1.024


# --------------------------------------------------------------------------- equivalents


def test_each_equivalent_uses_its_own_factor() -> None:
    # 60 kg: exactly one tree seedling (60,000 g); the budget is 100 x g / 1,075,000 g
    e = equivalents(60.0)
    assert e == {
        "car_km": 60000.0 / 108.2,
        "smartphone_charges": 60000.0 / 8.22,
        "flight_km": 60000.0 / 241.5,
        "tree_seedlings_10y": 1.0,
        "annual_budget_1p5c_pct": 100.0 * 60000.0 / 1075000.0,
    }
    assert format_equivalents(60.0) == (
        "= 555 km by car, 7,299 smartphone charges, a 248 km flight, "
        "1 tree seedling grown 10 years, 5.58% of a person's annual 1.5\u00a0°C budget"
    )
    assert format_equivalents(10.75) == (
        "= 99.4 km by car, 1,308 smartphone charges, a 44.5 km flight, "
        "654 days of a tree seedling's growth, 1% of a person's annual 1.5\u00a0°C budget"
    )


@pytest.mark.parametrize("bad", [-0.5, math.nan, math.inf])
def test_equivalents_message(bad: float) -> None:
    with pytest.raises(ValueError) as exc:
        equivalents(bad)
    assert str(exc.value) == f"invalid CO2e {bad!r}: expected a finite number of kg >= 0"


@pytest.mark.parametrize(
    "x,text",
    [
        (99.95, "100"),
        (99.94, "99.9"),
        (9.995, "9.99"),
        (10.0, "10"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (1000.5, "1,000"),
        (100.4, "100"),
        (-5.0, "-5"),
        (-150.0, "-150"),
        (1e-07, "0.0000001"),
    ],
)
def test_format_number_edges(x: float, text: str) -> None:
    assert format_number(x) == text


# ----------------------------------------------------------------------------- intensity

HINT = "use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"


@pytest.mark.parametrize(
    "seconds,text",
    [
        (0, "0 s"),
        (42, "42 s"),
        (89.25, "89 s"),
        (90, "2 min"),
        (700, "12 min"),
        (5399, "90 min"),
        (5400, "1.5 h"),
        (7300, "2.0 h"),
        (172799, "48.0 h"),
        (172800, "2.0 days"),
        (200000, "2.3 days"),
    ],
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


@pytest.mark.parametrize(
    "value,text",
    [
        (7, "7"),
        (535.0, "535"),
        (0.0, "0"),
        (10.0, "10"),
        (492.75, "492.8"),
        (9.875, "9.88"),
        (199.99999999999997, "200"),  # float noise of a forecast window's mean
        (200.0001, "200.0"),
    ],
)
def test_format_g_per_kwh(value: float, text: str) -> None:
    assert format_g_per_kwh(value) == text


@pytest.mark.parametrize(
    "kw,text",
    [
        (
            {"provenance": "live", "zone": "DE", "at": "2026-12-03T08:00Z"},
            "live, zone DE, at 2026-12-03T08:00Z",
        ),
        ({"provenance": "cached", "age_s": 42.0, "zone": "GB"}, "cached 42 s ago, zone GB"),
        ({"provenance": "cached"}, "cached"),
        ({"provenance": "file", "reason": "stale"}, "file (stale)"),
        ({"provenance": "fallback"}, "fallback to shipped data: no reason recorded"),
        ({"provenance": "fallback", "reason": "offline"}, "fallback to shipped data: offline"),
        ({}, ""),
    ],
)
def test_provenance_text_and_record(kw: dict[str, object], text: str) -> None:
    it = _it(1.0, **kw)
    assert it.provenance_text == text
    d = it.to_dict()
    extra = {k: v for k, v in kw.items() if v is not None and k != "provenance"}
    base = {"region": "XX", "name": "Nowhere", "g_per_kwh": 1.0, "year": 2024, "month": None}
    expected = {**base, "source": "test data", **({"provenance": kw["provenance"]} if kw else {})}
    assert d == {**expected, **extra}
    assert Intensity.from_dict(d) == it


def test_intensity_from_a_sparse_dict() -> None:
    assert Intensity.from_dict({"region": "XX", "g_per_kwh": "2.5"}) == Intensity(
        "XX", "XX", 2.5, None, None, ""
    )
    full = Intensity.from_dict(
        {
            "region": "XX",
            "g_per_kwh": 2.5,
            "year": "2024",
            "month": "3",
            "age_s": "12",
            "zone": 7,
            "at": "t",
            "fetched_at": "f",
            "reason": "r",
            "provenance": "",
        }
    )
    assert full == Intensity("XX", "XX", 2.5, 2024, 3, "", "shipped", "7", "t", "f", 12.0, "r")
    assert full.label == "XX 2024-03 2.5 g/kWh"
    assert Intensity("XX", "X", 2.5, None, 3, "s").month_text is None


def test_month_ranges_with_gaps() -> None:
    months = [(2023, 6), (2022, 12), (2023, 1), (2023, 3), (2023, 5), (2023, 7), (2023, 1)]
    assert _month_ranges(months) == "2022-12 to 2023-01, 2023-03, 2023-05 to 2023-07"


def test_unknown_region_messages() -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("Austri")
    assert str(exc.value) == (
        "unknown region 'Austri': did you mean AT (Austria), AU (Australia) or "
        f"US-RI (Rhode Island)? {HINT[0].upper()}{HINT[1:]}"
    )
    with pytest.raises(IntensityError) as exc:
        parse_region("a,b")
    assert str(exc.value) == (
        "invalid region 'a,b': expected a code or name of at most 80 characters, "
        f"without commas; {HINT}"
    )
    with pytest.raises(IntensityError) as exc:
        parse_region("  ")
    assert str(exc.value) == f"empty region: {HINT}"
    assert parse_region("z" * 80) == "z" * 80


def test_unknown_region_suggests_a_user_region(tmp_path: Path) -> None:
    path = tmp_path / "ci.csv"
    path.write_text("region,year,g_co2e_per_kwh,name\nMYDC1,2024,42,Basement\n", "utf-8")
    with pytest.raises(IntensityError) as exc:
        lookup("basemnt", csv_path=path)
    assert str(exc.value) == (
        f"unknown region 'basemnt': did you mean MYDC1 (Basement)? {HINT[0].upper()}{HINT[1:]}"
    )
    with pytest.raises(IntensityError) as exc:
        resolve_region("basemnt", csv_path=path)
    assert "did you mean MYDC1 (Basement)?" in str(exc.value)
    assert resolve_region("BASEMENT", csv_path=path) == "MYDC1"


def test_normalize_month_monthly_values_and_paper_regions() -> None:
    assert normalize_month(" 2022-3 ") == "2022-03"
    with pytest.raises(IntensityError):
        normalize_month("2022-0")
    values = monthly_values("germany")
    assert len(values) == 24 and [v.g_per_kwh for v in values[:2]] == [480.9, 370.7]
    assert (values[0].month_text, values[-1].month_text) == ("2022-01", "2023-12")
    assert monthly_values("SE") == []
    regions = paper_regions()
    assert regions[0] == "EU27" and "SE" in regions and "US" in regions and len(regions) == 31
    assert "NO" not in regions


def test_list_regions_orders_world_and_eu_then_countries_then_states() -> None:
    codes = [it.region for it in list_regions()]
    assert codes[:3] == ["EU27", "WORLD", "AE"]
    assert codes[-52:-50] == ["ZW", "US-AK"]


def _csv(tmp_path: Path, text: str, name: str = "ci.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_csv_rows_after_a_blank_line_are_read(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "region,year,month,g_co2e_per_kwh\nAAA,2024,,8\n\n,,\n  , ,\nBBB,2024,1,16\n , , , \n"
        "CCC,2024,12,32\n",
    )
    assert lookup("AAA", csv_path=path).g_per_kwh == 8.0
    assert lookup("BBB", "2024-01", csv_path=path).g_per_kwh == 16.0  # January
    assert lookup("CCC", "2024-12", csv_path=path).g_per_kwh == 32.0  # December
    assert monthly_coverage(csv_path=path) == {
        "BBB": "2024-01",
        "CCC": "2024-12",
        "DE": "2022-01 to 2023-12",
    }


def test_user_csv_latest_yearly_row_wins_and_zeros(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "region,year,month,g_co2e_per_kwh\n"
        "AAA,,,1\nAAA,2023,,2\nAAA,2022,,4\nAAA,,,8\n"  # an undated row never beats a dated one
        "BBB,2024,,0\nBBB,2024,,0.0\n"
        "CCC,,,64\n",
    )
    aaa = lookup("AAA", csv_path=path)
    assert (aaa.g_per_kwh, aaa.year) == (2.0, 2023)
    assert lookup("BBB", csv_path=path).g_per_kwh == 0.0
    ccc = lookup("CCC", csv_path=path)
    assert (ccc.g_per_kwh, ccc.year, ccc.label) == (64.0, None, "CCC 64 g/kWh")


def test_user_csv_names_sources_and_their_exceptions(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "region,year,month,g_co2e_per_kwh,source,name\n"
        "AAA,2024,1,8, grid a ,  Site A \n"
        "AAA,2024,2,16,grid b,\n"
        "AAA,2024,3,32,,\n"
        "AAA,2024,2,16, grid a ,\n"  # February again, same value: back to the region's source
        "DE,2024,1,128,,Deutschland\n"
        "SE,2030,,4,,\n",
    )
    jan = lookup("aaa", "2024-01", csv_path=path)
    assert jan == Intensity("AAA", "Site A", 8.0, 2024, 1, "grid a")
    assert lookup("Site A", "2024-02", csv_path=path) == Intensity(
        "AAA", "Site A", 16.0, 2024, 2, "grid a"
    )
    assert lookup("AAA", "2024-03", csv_path=path).source == "user file ci.csv"
    de = lookup("DE", "2022-12", csv_path=path)  # a shipped month under the user's name
    assert (de.name, de.g_per_kwh) == ("Deutschland", 535.0)
    assert lookup("DE", "2024-01", csv_path=path).source == "user file ci.csv"
    se = lookup("SE", csv_path=path)
    assert (se.name, se.g_per_kwh, se.year, se.source) == ("Sweden", 4.0, 2030, "user file ci.csv")
    assert [it.region for it in list_regions("2024-01", csv_path=path)] == ["AAA", "DE"]


def test_user_csv_short_rows_are_padded(tmp_path: Path) -> None:
    path = _csv(tmp_path, "region,year,g_co2e_per_kwh,source,name\nAAA,2024,8\n")
    it = lookup("AAA", csv_path=path)
    assert (it.name, it.source, it.g_per_kwh) == ("AAA", "user file ci.csv", 8.0)


@pytest.mark.parametrize(
    "text,problem",
    [
        ("", "line 1: header lacks region, year, g_co2e_per_kwh; expected"),
        ("\n\nregion,year\n", "line 3: header lacks g_co2e_per_kwh; expected"),
        ("region,year,g_co2e_per_kwh\nAAA,2024,inf\n", "line 2: g_co2e_per_kwh 'inf' is not"),
        ("region,year,g_co2e_per_kwh\nAAA,2024, nan \n", "line 2: g_co2e_per_kwh 'nan' is not"),
        ("region,year,month,g_co2e_per_kwh\nAAA,2024,0,1\n", "line 2: month '0' is not a month"),
        ("region,year,month,g_co2e_per_kwh\nAAA,2024,x,1\n", "line 2: month 'x' is not a month"),
        ("region,year,month,g_co2e_per_kwh\nAAA,2024,١,1\n", "line 2: month '١' is not a month"),
        ("region,year,g_co2e_per_kwh\nAAA,٢٠٢٤,1\n", "line 2: year '٢٠٢٤' is not a year"),
        ("region,year,g_co2e_per_kwh\nAAA,2024,1\n , , ,x\n", "line 3: 4 fields but the header"),
        ("region,year,g_co2e_per_kwh\n , 2024,1\n", "line 2: empty region"),
        pytest.param(
            "region,year,g_co2e_per_kwh\nAAA,2024,1\nBBB,2024," + "9" * 140000 + "\n",
            "line 3: field larger than field limit (131072)",
            id="huge-field",
        ),
        pytest.param(
            "region," + "y" * 140000 + "\n",
            "line 1: field larger than field limit (131072)",
            id="huge-header",
        ),
    ],
)
def test_user_csv_problems(tmp_path: Path, text: str, problem: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(IntensityError) as exc:
        lookup("SE", csv_path=path)
    assert str(exc.value).startswith(f"{path}, {problem}")
    assert "\n" not in str(exc.value)


def test_user_csv_that_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "ci.csv"
    path.write_bytes(b"region,year,g_co2e_per_kwh\nAAA,2024,\xff\n")
    with pytest.raises(IntensityError) as exc:
        lookup("SE", csv_path=path)
    assert str(exc.value) == f"intensity file {str(path)!r} is not UTF-8 text"
    with pytest.raises(IntensityError) as exc:
        lookup("SE", csv_path=tmp_path)
    assert str(exc.value) == f"cannot read intensity file {str(tmp_path)!r}: Is a directory"


def test_month_errors_name_the_data(tmp_path: Path) -> None:
    path = _csv(tmp_path, "region,year,month,g_co2e_per_kwh\nAAA,2024,3,8\nAAA,2024,5,8\n")
    with pytest.raises(IntensityError) as exc:
        lookup("AAA", "2024-04", csv_path=path)
    assert str(exc.value) == "no data for AAA in 2024-04: available months 2024-03, 2024-05"
    with pytest.raises(IntensityError) as exc:
        lookup("PL", "2024-04", csv_path=path)
    assert str(exc.value) == (
        "no monthly data for PL (Poland): monthly intensities exist for AAA, DE; "
        "drop the month to use the yearly value"
    )
    assert lookup("PL", "", csv_path=path).g_per_kwh == 666.0  # an empty month: the yearly value
