"""The co2_budget marker and its verdict, with data that exposes each rule: every
marker argument and form, the boundaries of each check, and the exact messages users read."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_co2.backends.base import Device, Method
from pytest_co2.carbon.emission import Emission
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.budget import (
    BudgetError,
    budget_from_marker,
    budget_text,
    evaluate,
    how_measured,
    verdict_text,
)
from pytest_co2.reporting.model import Budget, BudgetVerdict, Result

ACCEPTED = "accepted are kg, kwh, extrapolate, unit, region"


def _device(kind: str, method: Method) -> DeviceEnergy:
    return DeviceEnergy(Device(f"{kind}:0", kind, kind, method), 1.0)


def _result(
    *,
    kwh: float = 1.0,
    std_kwh: float = 0.0,
    ci_kwh: float = 0.0,
    kg: float = 1.0,
    std_kg: float = 0.0,
    ci_kg: float = 0.0,
    n: int = 1000,
    unit: str = "iteration",
    region: str = "SE",
    month: str | None = None,
    devices: tuple[DeviceEnergy, ...] = (),
    windows: tuple[float, ...] = (1.0, 1.0, 1.0),
) -> Result:
    m = Measurement(
        name="m", unit=unit, steps=3, units=3.0, warmup=0, duration_s=1.0, energy_j=3.0,
        energy_per_unit_j=Stats(1.0, 0.0, 0.0, 3), unit_energies_j=windows,
        method="simulated", devices=devices or (_device("simulated", Method.SIMULATED),),
        backend="constant",
    )  # fmt: skip
    p = Projection(n=n, unit=unit, energy_kwh=kwh, std_kwh=std_kwh, ci95_kwh=ci_kwh)
    e = Emission(region, month, 7.0, "test", 1.0, kwh, kwh, kg, std_kg, ci_kg)
    return Result(m, p, e)


# -- the marker -------------------------------------------------------------------------------


def test_positional_kg_alone_and_with_kwh() -> None:
    assert budget_from_marker((0.5,), {}) == Budget(kg=0.5)
    b = budget_from_marker((2,), {"kwh": 3})
    assert b == Budget(kg=2.0, kwh=3.0)
    assert type(b.kg) is float and type(b.kwh) is float  # ints become floats


def test_every_keyword_is_kept() -> None:
    b = budget_from_marker((), {"kwh": 0.25, "extrapolate": 1, "unit": "sample", "region": "de"})
    assert b == Budget(kg=None, kwh=0.25, extrapolate=1, unit="sample", region="DE")
    assert budget_from_marker((), {"kg": 1, "region": "germany"}).region == "DE"
    assert budget_from_marker((), {"kg": 1, "extrapolate": 7}).extrapolate == 7


@pytest.mark.parametrize(
    "args, kwargs, shown",
    [((0.5, 1.0), {}, "(0.5, 1.0)"), ((0.5,), {"kg": 1}, "(0.5,)")],
)
def test_positional_arguments_beyond_one_kg(
    args: tuple[float, ...], kwargs: dict[str, float], shown: str
) -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker(args, kwargs)
    assert str(exc.value) == (
        f"co2_budget: positional arguments {shown}: expected co2_budget(kg=..., kwh=...)"
    )


def test_unknown_arguments_are_named_sorted() -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker((), {"kg": 1, "zeta": 1, "alpha": 2})
    assert str(exc.value) == f"co2_budget: unknown argument(s) alpha, zeta: {ACCEPTED}"


@pytest.mark.parametrize("kwargs", [{}, {"extrapolate": 10}, {"kg": None, "kwh": None}])
def test_a_limit_is_needed(kwargs: dict[str, object]) -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker((), kwargs)
    assert str(exc.value) == (
        "co2_budget: needs kg= or kwh= (a number > 0), e.g. @pytest.mark.co2_budget(kg=0.5)"
    )


@pytest.mark.parametrize(
    "name, value, shown",
    [
        ("kg", 0, "0"),  # a zero budget is an error: nothing measured can be under it
        ("kg", 0.0, "0.0"),
        ("kwh", 0, "0"),
        ("kg", -1, "-1"),
        ("kwh", -0.5, "-0.5"),
        ("kg", True, "True"),
        ("kwh", False, "False"),
        ("kg", "1", "'1'"),
        ("kg", math.nan, "nan"),
        ("kwh", math.inf, "inf"),
        ("kg", [1], "[1]"),
    ],
)
def test_bad_limits(name: str, value: object, shown: str) -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker((), {name: value})
    assert str(exc.value) == f"co2_budget: invalid {name}={shown}: expected a number > 0"


def test_a_positional_zero_is_rejected_too() -> None:
    with pytest.raises(BudgetError, match=r"^co2_budget: invalid kg=0: expected a number > 0$"):
        budget_from_marker((0,), {})


@pytest.mark.parametrize("value", [1e-12, 0.5, 1, 2.5, 1e6])
def test_small_and_large_limits_are_accepted(value: float) -> None:
    assert budget_from_marker((), {"kg": value}).kg == float(value)
    assert budget_from_marker((), {"kwh": value}).kwh == float(value)


@pytest.mark.parametrize("n", [0, -3, True, False, 2.0, "5"])
def test_bad_extrapolate(n: object) -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker((), {"kg": 1, "extrapolate": n})
    assert str(exc.value) == (
        f"co2_budget: invalid extrapolate={n!r}: expected a whole number >= 1"
    )


@pytest.mark.parametrize("unit", ["", 5, b"iteration"])
def test_bad_unit(unit: object) -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker((), {"kg": 1, "unit": unit})
    assert str(exc.value) == (
        f"co2_budget: invalid unit={unit!r}: expected a unit name such as 'iteration'"
    )


def test_unknown_region_is_a_budget_error() -> None:
    with pytest.raises(BudgetError) as exc:
        budget_from_marker((), {"kg": 1, "region": "XX"})
    assert str(exc.value).startswith("co2_budget: unknown region 'XX': ")
    assert "\n" not in str(exc.value) and exc.value.__cause__ is None


def test_region_from_the_user_csv(tmp_path: Path) -> None:
    csv = tmp_path / "grid.csv"
    csv.write_text("region,year,month,g_co2e_per_kwh\nMARS,2022,,123\n")
    assert budget_from_marker((), {"kg": 1, "region": "MARS"}, csv_path=str(csv)).region == "MARS"
    with pytest.raises(BudgetError, match="unknown region 'MARS'"):
        budget_from_marker((), {"kg": 1, "region": "MARS"})


# -- how it was measured ----------------------------------------------------------------------


def test_how_measured_names_methods_and_kinds() -> None:
    mixed = (
        _device("gpu", Method.COUNTER),
        _device("dram", Method.COUNTER),
        _device("cpu", Method.ESTIMATED),
        _device("memory", Method.ESTIMATED),
    )
    assert how_measured([_result(devices=mixed)]) == "counter DRAM/GPU + estimated CPU/memory"
    assert how_measured([_result()]) == "simulated"
    # a simulated device shows no kind, the others of the same method do
    sim_cpu = (_device("simulated", Method.SIMULATED), _device("cpu", Method.SIMULATED))
    assert how_measured([_result(devices=sim_cpu)]) == "simulated CPU"
    # over several results, in order of first appearance
    gpu = (_device("gpu", Method.POLLED),)
    assert how_measured([_result(), _result(devices=gpu)]) == "simulated + polled GPU"
    assert how_measured([]) == "unmeasured"


def test_how_measured_without_devices() -> None:
    r = _result()
    bare = Result(replace(r.measurement, devices=()), r.projection, r.emission)
    assert how_measured([bare]) == "unmeasured"


# -- the verdict ------------------------------------------------------------------------------


def test_over_the_kg_budget_with_an_interval() -> None:
    r1 = _result(kwh=2.0, std_kwh=0.3, ci_kwh=0.6, kg=3.0, std_kg=0.3, ci_kg=0.3)
    r2 = _result(kwh=1.0, std_kwh=0.4, ci_kwh=0.8, kg=2.0, std_kg=0.4, ci_kg=0.4)
    v = evaluate(Budget(kg=4.0), [r1, r2])
    # totals: 3 kWh, 5 kg; spreads in quadrature: std 0.5 kWh / 0.5 kg, ci 1 kWh / 0.5 kg
    assert (v.energy_kwh, v.std_kwh, v.co2e_kg, v.std_kg) == (3.0, 0.5, 5.0, 0.5)
    assert (v.passed, v.outcome) == (False, "over")
    assert v.message == (
        "projected 5.00 +- 0.500 kg CO2e for 1,000 iterations in SE exceeds the budget of 4 kg "
        "(3.00 kWh, simulated); 95% interval 4.50 to 5.50"
    )


def test_over_the_kwh_budget() -> None:
    r = _result(kwh=3.0, std_kwh=0.2, ci_kwh=0.5, kg=0.25, std_kg=0.02, ci_kg=0.05, month="2022-12")
    v = evaluate(Budget(kg=10.0, kwh=2.0), [r])
    assert (v.passed, v.outcome) == (False, "over")
    assert v.message == (
        "projected 3.00 +- 0.200 kWh for 1,000 iterations in SE 2022-12 exceeds the budget of "
        "2 kWh (0.250 kg CO2e, simulated); 95% interval 2.50 to 3.50"
    )
    assert (v.energy_kwh, v.std_kwh, v.co2e_kg, v.std_kg) == (3.0, 0.2, 0.25, 0.02)


def test_both_over_names_the_kg_budget_first() -> None:
    v = evaluate(Budget(kg=0.5, kwh=0.5), [_result(kwh=1.0, kg=1.0)])
    assert v.message is not None and v.message.startswith("projected 1.00 +- 0 kg CO2e")


def test_identical_windows_show_no_interval() -> None:
    v = evaluate(Budget(kwh=0.5), [_result(kwh=1.0)])  # ci 0: low == high
    assert v.message == (
        "projected 1.00 +- 0 kWh for 1,000 iterations in SE exceeds the budget of 0.5 kWh "
        "(1.00 kg CO2e, simulated)"
    )


def test_one_window_decides_on_the_value_alone() -> None:
    nan = math.nan
    r = _result(kwh=1.0, std_kwh=nan, ci_kwh=nan, kg=1.0, std_kg=nan, ci_kg=nan)
    v = evaluate(Budget(kwh=0.5), [r])
    assert v.message == (
        "projected 1.00 kWh for 1,000 iterations in SE exceeds the budget of 0.5 kWh "
        "(1.00 kg CO2e, simulated)"
    )
    assert math.isnan(v.std_kwh) and v.outcome == "over"
    # exactly at the budget: not over (only a value above it fails)
    at = evaluate(Budget(kwh=1.0, kg=1.0), [r])
    assert (at.passed, at.outcome, at.message) == (True, "under", None)


def test_targets_are_listed_once_each() -> None:
    a = _result(kwh=1.0, kg=1.0)
    b = _result(kwh=1.0, kg=1.0, n=1, unit="call")
    c = _result(kwh=1.0, kg=1.0, n=10, unit="sample", region="DE")
    v = evaluate(Budget(kg=0.5), [a, b, a, c])
    assert v.message is not None
    assert v.message.startswith(
        "projected 4.00 +- 0 kg CO2e for 1,000 iterations + 1 call + 10 samples in SE exceeds"
    )


def test_too_close_to_call_in_kg() -> None:
    r = _result(kwh=3.0, std_kwh=0.1, ci_kwh=0.2, kg=5.0, std_kg=0.5, ci_kg=1.0)
    v = evaluate(Budget(kg=5.5, kwh=4.0), [r])
    assert (v.passed, v.outcome) == (True, "close")
    assert (v.energy_kwh, v.std_kwh, v.co2e_kg, v.std_kg) == (3.0, 0.1, 5.0, 0.5)
    assert v.message == (
        "too close to call: projected 5.00 kg CO2e for 1,000 iterations in SE has a 95% interval "
        "of 4.00 to 6.00, which holds the budget of 5.5 kg (simulated); measure more precisely "
        "(--co2-precision) to decide"
    )


def test_too_close_to_call_in_kwh() -> None:
    r = _result(kwh=3.0, std_kwh=0.1, ci_kwh=0.5, kg=5.0, std_kg=0.5, ci_kg=1.0)
    v = evaluate(Budget(kg=9.0, kwh=3.25), [r])
    assert v.outcome == "close"
    assert v.message == (
        "too close to call: projected 3.00 kWh for 1,000 iterations in SE has a 95% interval "
        "of 2.50 to 3.50, which holds the budget of 3.25 kWh (simulated); measure more precisely "
        "(--co2-precision) to decide"
    )


def test_windows_that_drifted_make_a_narrow_over_too_close() -> None:
    """Windows at 9 J then 11 J (a machine whose speed changed mid-run): block means drift
    ±9.7% beyond their scatter, so an "over" by the windows' interval alone (3.0 ± 0.1 kWh
    against 2.8) is too close to call; steady windows keep it over."""
    drifting = (9.0,) * 12 + (11.0,) * 12
    steady = (9.0, 11.0) * 12
    r = _result(kwh=3.0, ci_kwh=0.1, kg=5.0, ci_kg=0.1, windows=drifting)
    v = evaluate(Budget(kwh=2.8), [r])
    assert (v.passed, v.outcome) == (True, "close")
    assert v.message is not None and v.message.startswith(
        "too close to call: projected 3.00 kWh for 1,000 iterations in SE is over the budget of "
        "2.8 kWh only through the drift of the machine's speed within the run (±10% allowed)"
    )
    kept = evaluate(Budget(kwh=2.8), [_result(kwh=3.0, ci_kwh=0.1, kg=5.0, windows=steady)])
    assert kept.outcome == "over"


def test_over_wins_over_too_close() -> None:
    r = _result(kwh=3.0, ci_kwh=0.1, kg=5.0, ci_kg=1.0)
    v = evaluate(Budget(kg=5.5, kwh=2.0), [r])  # kg too close, kWh over
    assert v.outcome == "over" and v.message is not None
    assert v.message.startswith("projected 3.00 +- 0 kWh")


def test_a_budget_equal_to_an_exact_projection_is_too_close() -> None:
    # identical windows (interval of width 0) exactly at the budget: not over, not under
    v = evaluate(Budget(kg=1.0), [_result(kg=1.0)])
    assert v.outcome == "close" and v.message is not None
    assert "interval of 1.00 to 1.00, which holds the budget of 1 kg" in v.message


def test_under_the_budget() -> None:
    r = _result(kwh=1.0, std_kwh=0.1, ci_kwh=0.2, kg=1.0, std_kg=0.1, ci_kg=0.2)
    v = evaluate(Budget(kg=1.5, kwh=1.5), [r])
    assert v == BudgetVerdict(Budget(kg=1.5, kwh=1.5), 1.0, 0.1, 1.0, 0.1, True, None, "under")


def test_no_results_no_figure() -> None:
    v = evaluate(Budget(kwh=1.0), [])
    assert (v.passed, v.outcome) == (False, "unmeasured")
    assert math.isnan(v.energy_kwh) and math.isnan(v.std_kwh)
    assert math.isnan(v.co2e_kg) and math.isnan(v.std_kg)
    assert v.message == "no measurement was recorded, so the budget cannot be checked"


# -- summary cells ----------------------------------------------------------------------------


def _verdict(passed: bool, outcome: str, budget: Budget | None = None) -> BudgetVerdict:
    return BudgetVerdict(budget or Budget(kg=1.0), 1.0, 0.0, 1.0, 0.0, passed, None, outcome)


def test_verdict_text() -> None:
    assert verdict_text(None, "fail") == ""
    assert verdict_text(_verdict(True, "close"), "fail") == "too close"
    assert verdict_text(_verdict(False, "unmeasured"), "warn") == "unmeasured"
    assert verdict_text(_verdict(True, "under"), "warn") == "ok"
    assert verdict_text(_verdict(False, "over"), "fail") == "OVER"
    assert verdict_text(_verdict(False, "over"), "warn") == "OVER (warn)"


def test_budget_text() -> None:
    assert budget_text(None) == ""
    assert budget_text(_verdict(True, "under", Budget(kg=0.5))) == "0.500 kg"
    assert budget_text(_verdict(True, "under", Budget(kwh=1.2))) == "1.20 kWh"
    assert budget_text(_verdict(True, "under", Budget(kg=0.05, kwh=1200))) == "0.0500 kg, 1,200 kWh"


# -- end to end: every marker form --------------------------------------------------------------

FORMS = """
import pytest

# 12.5 J per step (0.125 s at 100 W): 1,000 iterations are 12,500 J, exactly
EXACT_KWH = 12500 / 3.6e6

@pytest.mark.co2_budget(EXACT_KWH * 7 / 1000 * 0.5)
def test_positional_kg(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.125)

@pytest.mark.co2_budget(kwh=1.0, extrapolate=100, unit="sample", region="DE")
def test_unit_and_region(co2_meter, clock):
    for _ in co2_meter.steps(4):  # iterations: the session's target, not the budget's
        clock.advance(0.125)
    for _ in co2_meter.steps(2, name="s", unit="sample"):
        clock.advance(0.125)

@pytest.mark.co2_budget(kwh=EXACT_KWH)
def test_one_window_exactly_at_the_budget(co2_meter, clock):
    with co2_meter.measure("once", unit="iteration"):
        clock.advance(0.125)

@pytest.mark.co2_budget(kg=0)
def test_zero(co2_meter):
    pass
"""


def test_marker_forms_end_to_end(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(FORMS)
    result = fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-pue=1", "--co2-region=SE", "--co2-extrapolate=1000",
        "--co2-precision=off", "--co2-json=r.json", "-p", "no:cacheprovider", "-p", "no:randomly",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*projected 2.43e-5 +- 0 kg CO2e for 1,000 iterations in SE exceeds the budget of "
            "1.21528e-05 kg (0.00347 kWh, simulated)",
            "*co2_budget: invalid kg=0: expected a number > 0*",
        ]
    )
    tests = {
        t["nodeid"].split("::")[1]: t
        for t in json.loads((fake_clock_pytester.path / "r.json").read_text())["tests"]
    }
    unit_region = tests["test_unit_and_region"]
    assert unit_region["budget"]["unit"] == "sample" and unit_region["budget"]["region"] == "DE"
    by_name = {m["name"]: m for m in unit_region["measurements"]}
    assert by_name["default"]["projection"]["n"] == 1000
    assert by_name["s"]["projection"]["n"] == 100
    assert {m["emission"]["region"] for m in unit_region["measurements"]} == {"DE"}
    assert unit_region["budget"]["outcome"] == "under"
    once = tests["test_one_window_exactly_at_the_budget"]["budget"]
    assert once["energy_kwh"] == once["kwh"] and once["outcome"] == "under"
