"""The typed result model: exact round trips, totals, ranking and the schema check's messages."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from pytest_co2.backends.base import Device, Method
from pytest_co2.carbon.emission import Emission
from pytest_co2.carbon.equivalents import equivalents
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.model import (
    Budget,
    BudgetVerdict,
    ReportError,
    Result,
    TestRecord,
    Totals,
    all_results,
    ranked,
    rss,
)
from pytest_co2.reporting.model import (
    tests_from_dicts as read_tests,
)


def _result(
    name: str = "train",
    *,
    energy_j: float = 6.0,
    duration_s: float = 2.0,
    kwh: float = 0.25,
    std_kwh: float = 0.5,
    co2e_kg: float = 0.125,
    std_kg: float = 0.0625,
    whatif: dict[str, float] | None = None,
) -> Result:
    device = Device("cpu:process", "cpu", "a CPU", Method.SIMULATED, 0.5, False)
    m = Measurement(
        name=name,
        unit="step",
        steps=3,
        units=6.0,
        warmup=1,
        duration_s=duration_s,
        energy_j=energy_j,
        energy_per_unit_j=Stats(1.0, 0.25, 0.125, 3),
        unit_energies_j=(0.75, 1.0, 1.25),
        method="simulated",
        devices=(DeviceEnergy(device, energy_j),),
        backend="constant",
        complete=False,
        ranks=2,
        nodes=1,
        notes=("a note",),
        extrapolate=100,
    )
    p = Projection(n=100, unit="step", energy_kwh=kwh, std_kwh=std_kwh, ci95_kwh=0.75)
    e = Emission("SE", None, 7.0, "Table 1", 1.5, kwh, kwh * 1.5, co2e_kg, std_kg, 0.5)
    return Result(m, p, e, whatif or {})


def test_result_round_trips_exactly_with_every_field() -> None:
    r = _result(whatif={"PL": 2.5, "SE": 0.03125})
    d = r.to_dict()
    assert d["name"] == "train"
    assert d["projection"] == {
        "n": 100,
        "unit": "step",
        "energy_kwh": 0.25,
        "std_kwh": 0.5,
        "ci95_kwh": 0.75,
        "measured": False,
    }
    assert d["emission"]["co2e_kg"] == 0.125
    assert d["whatif_co2e_kg"] == {"PL": 2.5, "SE": 0.03125}
    assert d["equivalents"] == equivalents(0.125)  # the emission's CO2e, not the energy's
    back = Result.from_dict(d)
    assert back == r
    assert back.name == back.key == "train"


def test_result_without_whatif_reads_back_empty() -> None:
    d = _result().to_dict()
    del d["whatif_co2e_kg"]
    assert Result.from_dict(d).whatif_co2e_kg == {}
    d["whatif_co2e_kg"] = None
    assert Result.from_dict(d).whatif_co2e_kg == {}
    d["whatif_co2e_kg"] = {"DE": "0.5"}
    assert Result.from_dict(d).whatif_co2e_kg == {"DE": 0.5}


def test_budget_round_trip_and_applies_to() -> None:
    b = Budget(kg=0.5, kwh=2.0, extrapolate=1000, unit="image", region="SE")
    assert b.to_dict() == {
        "kg": 0.5,
        "kwh": 2.0,
        "extrapolate": 1000,
        "unit": "image",
        "region": "SE",
    }
    assert Budget.from_dict(b.to_dict()) == b
    assert Budget.from_dict({"kg": "0.25", "extrapolate": "10"}) == Budget(kg=0.25, extrapolate=10)
    assert Budget.from_dict({}) == Budget()
    assert b.applies_to("image")
    assert not b.applies_to("step")
    assert Budget().applies_to("step")


def test_budget_verdict_outcomes_and_nulls() -> None:
    b = Budget(kg=1.0)
    over = BudgetVerdict(b, 2.0, 0.5, 1.5, 0.25, passed=False, message="over budget")
    d = over.to_dict()
    assert d == {
        "kg": 1.0,
        "kwh": None,
        "extrapolate": None,
        "unit": None,
        "region": None,
        "outcome": "over",
        "energy_kwh": 2.0,
        "std_kwh": 0.5,
        "co2e_kg": 1.5,
        "std_kg": 0.25,
        "passed": False,
        "message": "over budget",
    }
    assert BudgetVerdict.from_dict(d) == BudgetVerdict(
        b, 2.0, 0.5, 1.5, 0.25, passed=False, message="over budget", outcome="over"
    )
    under = BudgetVerdict(b, 0.5, math.nan, 0.25, math.nan, passed=True)
    du = under.to_dict()
    assert du["outcome"] == "under"
    assert du["std_kwh"] is None
    assert du["std_kg"] is None
    assert du["message"] is None
    back = BudgetVerdict.from_dict(du)
    assert back.outcome == "under"
    assert math.isnan(back.std_kwh)
    assert math.isnan(back.std_kg)
    assert back.message is None
    close = BudgetVerdict(b, 1.0, 0.1, 1.0, 0.1, passed=True, outcome="close")
    assert close.to_dict()["outcome"] == "close"
    unmeasured = BudgetVerdict(b, math.nan, math.nan, math.nan, math.nan, True, None, "unmeasured")
    du = unmeasured.to_dict()
    assert (du["energy_kwh"], du["co2e_kg"], du["outcome"]) == (None, None, "unmeasured")
    back = BudgetVerdict.from_dict(du)
    assert math.isnan(back.energy_kwh)
    assert math.isnan(back.co2e_kg)
    # version-1 files without the outcome field: from passed
    legacy = dict(d, outcome=None)
    assert BudgetVerdict.from_dict(legacy).outcome == "over"
    legacy = dict(du, outcome="", passed=True)
    assert BudgetVerdict.from_dict(legacy).outcome == "under"


def test_test_record_round_trip_and_defaults() -> None:
    verdict = BudgetVerdict(Budget(kwh=3.0), 1.0, 0.5, 0.5, 0.25, True, None, "under")
    t = TestRecord("t.py::a", "failed", [_result()], verdict)
    d = t.to_dict()
    assert d["nodeid"] == "t.py::a"
    assert d["outcome"] == "failed"
    assert len(d["measurements"]) == 1
    assert d["budget"]["kwh"] == 3.0
    assert TestRecord.from_dict(d) == t
    bare = TestRecord.from_dict({"nodeid": 7, "measurements": []})
    assert bare == TestRecord("7", "passed", [], None)
    assert TestRecord("x").to_dict()["budget"] is None
    assert TestRecord.from_dict({"nodeid": "x", "measurements": [], "budget": {}}).budget is None


def test_rss_is_the_root_sum_of_squares_and_nan_when_any_part_is_unknown() -> None:
    assert rss([3.0, 4.0]) == 5.0
    assert rss([]) == 0.0
    assert math.isnan(rss([3.0, math.nan]))


def test_totals_sum_every_measurement_and_add_spreads_in_quadrature() -> None:
    a = _result("a", energy_j=6.0, duration_s=2.0, kwh=0.25, std_kwh=3.0, co2e_kg=0.5, std_kg=0.75)
    b = _result("b", energy_j=10.0, duration_s=0.5, kwh=0.5, std_kwh=4.0, co2e_kg=1.0, std_kg=1.0)
    a = Result(a.measurement, a.projection, a.emission, {"PL": 2.0, "SE": 0.25})
    b = Result(b.measurement, b.projection, b.emission, {"SE": 0.5, "DE": 1.5})
    t = Totals.of([a, b])
    assert t == Totals(
        measurements=2,
        duration_s=2.5,
        energy_j=16.0,
        energy_kwh=0.75,
        std_kwh=5.0,
        co2e_kg=1.5,
        std_kg=1.25,
        whatif_co2e_kg={"PL": 2.0, "SE": 0.75, "DE": 1.5},
    )
    assert list(t.whatif_co2e_kg) == ["PL", "SE", "DE"]  # first-seen order
    assert t.to_dict() == {
        "measurements": 2,
        "duration_s": 2.5,
        "energy_j": 16.0,
        "energy_kwh": 0.75,
        "std_kwh": 5.0,
        "co2e_kg": 1.5,
        "std_kg": 1.25,
        "whatif_co2e_kg": {"PL": 2.0, "SE": 0.75, "DE": 1.5},
    }
    unknown = Totals.of([_result(std_kwh=math.nan, std_kg=math.nan)]).to_dict()
    assert unknown["std_kwh"] is None
    assert unknown["std_kg"] is None
    empty = Totals.of([])
    assert (empty.measurements, empty.energy_j, empty.std_kwh) == (0, 0.0, 0.0)


def test_ranked_puts_the_largest_emission_first_and_all_results_keeps_order() -> None:
    small, big, mid = (_result(n, co2e_kg=kg) for n, kg in (("s", 0.1), ("b", 2.0), ("m", 0.5)))
    t1, t2 = TestRecord("t1", results=[small, big]), TestRecord("t2", results=[mid])
    assert [(t.nodeid, r.name) for t, r in ranked([t1, t2])] == [
        ("t1", "b"),
        ("t2", "m"),
        ("t1", "s"),
    ]
    assert [r.name for r in all_results([t1, t2])] == ["s", "b", "m"]


def _report_tests() -> list[dict[str, Any]]:
    return [TestRecord("t.py::a", results=[_result()]).to_dict()]


def test_tests_from_dicts_reads_back_what_was_written() -> None:
    back = read_tests(_report_tests())
    assert back == [TestRecord("t.py::a", results=[_result()])]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: {"x": 1}, "tests: expected a list of tests"),
        (lambda d: [1], "tests[0]: expected an object"),
        (lambda d: [{"measurements": []}], "tests[0]: missing field 'nodeid'"),
        (lambda d: [{"nodeid": "a"}], "tests[0]: missing field 'measurements'"),
        (lambda d: [{"nodeid": "a", "measurements": {}}], "tests[0].measurements: expected a list"),
        (
            lambda d: [{"nodeid": "a", "measurements": ["x"]}],
            "tests[0].measurements[0]: expected an object",
        ),
    ],
)
def test_tests_from_dicts_names_the_first_bad_field(mutate: Any, message: str) -> None:
    with pytest.raises(ReportError) as exc:
        read_tests(mutate(_report_tests()))
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "key",
    [
        "name",
        "unit",
        "steps",
        "duration_s",
        "energy_j",
        "method",
        "energy_per_unit_j",
        "projection",
        "emission",
    ],
)
def test_a_missing_result_field_is_named(key: str) -> None:
    items = _report_tests()
    del items[0]["measurements"][0][key]
    with pytest.raises(ReportError) as exc:
        read_tests(items, where="baseline.tests")
    assert str(exc.value) == f"baseline.tests[0].measurements[0]: missing field {key!r}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", 3),
        ("unit", None),
        ("steps", 2.5),
        ("steps", True),
        ("duration_s", "2"),
        ("energy_j", False),
        ("method", 1),
        ("energy_per_unit_j", [1.0]),
        ("projection", "p"),
        ("emission", 0.5),
    ],
)
def test_a_result_field_of_the_wrong_type_is_named(key: str, value: Any) -> None:
    items = _report_tests()
    items[0]["measurements"][0][key] = value
    with pytest.raises(ReportError) as exc:
        read_tests(items)
    assert str(exc.value) == f"tests[0].measurements[0].{key}: unexpected value {value!r}"


def test_integer_durations_and_energies_are_accepted() -> None:
    items = _report_tests()
    items[0]["measurements"][0].update(duration_s=2, energy_j=6)
    assert read_tests(items)[0].results[0].measurement.energy_j == 6.0


@pytest.mark.parametrize(
    ("outer", "inner"),
    [
        ("projection", "n"),
        ("projection", "unit"),
        ("projection", "energy_kwh"),
        ("emission", "region"),
        ("emission", "intensity_g_per_kwh"),
        ("emission", "pue"),
        ("emission", "energy_kwh"),
        ("emission", "co2e_kg"),
        ("energy_per_unit_j", "mean"),
    ],
)
def test_a_missing_nested_field_is_named(outer: str, inner: str) -> None:
    items = _report_tests()
    del items[0]["measurements"][0][outer][inner]
    with pytest.raises(ReportError) as exc:
        read_tests(items)
    assert str(exc.value) == f"tests[0].measurements[0].{outer}: missing field {inner!r}"


def test_a_bad_value_deeper_down_is_a_report_error_naming_the_test() -> None:
    items = _report_tests()
    items.append(copy.deepcopy(items[0]))
    items[1]["measurements"][0]["projection"]["n"] = "many"
    with pytest.raises(ReportError) as exc:
        read_tests(items)
    assert str(exc.value) == (
        "tests[1]: bad value (ValueError: invalid literal for int() with base 10: 'many')"
    )
    items[1]["measurements"][0]["projection"]["n"] = 1
    items[1]["measurements"][0]["devices"] = [{"id": "x"}]
    with pytest.raises(ReportError) as exc:
        read_tests(items)
    assert str(exc.value) == "tests[1]: bad value (KeyError: 'kind')"
