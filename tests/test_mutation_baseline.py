"""Baselines and the compare, with data that exposes each rule (issue 16): CO2e rescaling,
zero baselines, co2e fail specs, which saved run is the latest, what the baseline measured
that this run did not, and the exact lines users read."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from pytest_co2.backends.base import Device, Method
from pytest_co2.carbon.emission import Emission
from pytest_co2.measure.decisions import CompareDecision
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.baseline import (
    Baseline,
    Comparison,
    Delta,
    FailSpec,
    check,
    compare,
    compare_tests,
    decided,
    failures,
    inconclusive,
    missing_from,
    parse_fail_specs,
    parse_save_name,
    render_comparison,
    verdict_line,
)
from pytest_co2.reporting.json_report import Report
from pytest_co2.reporting.model import Result, TestRecord
from pytest_co2.reporting.session import SessionInfo
from pytest_co2.reporting.storage import load_baseline, resolve_baseline, saved_path, saved_runs

BAD_SPEC = (
    "expected FIELD:PERCENT% with FIELD energy or co2e, e.g. energy:10% or co2e:5% "
    "(comma-separated for several)"
)


def _result(
    name: str = "m",
    *,
    kwh: float = 1.0,
    kg: float = 1.0,
    n: int = 1000,
    measured: bool = False,
    samples: tuple[float, ...] = (5.0, 5.0, 5.0),
    mean_j: float = 5.0,
) -> Result:
    device = Device("cpu:process", "cpu", "cpu", Method.ESTIMATED, 0.0, False)
    m = Measurement(
        name=name, unit="call", steps=3, units=3.0, warmup=0, duration_s=1.0, energy_j=3 * mean_j,
        energy_per_unit_j=Stats(mean_j, 0.0, 0.0, 3), unit_energies_j=samples,
        method="estimated", devices=(DeviceEnergy(device, 3 * mean_j),), backend="estimate",
    )  # fmt: skip
    p = Projection(
        n=n, unit="call", energy_kwh=kwh, std_kwh=math.nan, ci95_kwh=math.nan, measured=measured
    )
    e = Emission("SE", None, 7.0, "test", 1.0, kwh, kwh, kg, math.nan, math.nan)
    return Result(m, p, e)


def _test(nodeid: str, *results: Result) -> TestRecord:
    return TestRecord(nodeid, results=list(results))


# -- --co2-compare-fail and --co2-save --------------------------------------------------------


def test_fail_specs_parse() -> None:
    assert parse_fail_specs("energy:10%,,co2e:5%") == (
        FailSpec("energy", 10.0),
        FailSpec("co2e", 5.0),
    )
    assert parse_fail_specs(" , ENERGY:0.5% , ") == (FailSpec("energy", 0.5),)
    assert parse_fail_specs("co2e:0%") == (FailSpec("co2e", 0.0),)
    assert parse_fail_specs("energy:1e1%") == (FailSpec("energy", 10.0),)
    assert parse_fail_specs("Co2E:1E1%") == (FailSpec("co2e", 10.0),)
    assert (
        str(FailSpec("co2e", 2.5)) == "co2e:2.5%" and str(FailSpec("energy", 10.0)) == "energy:10%"
    )


@pytest.mark.parametrize("part", ["energy:1.2.3%", "energy:1e999%", "power:5%", "energy:5", "5%"])
def test_bad_fail_spec_names_the_part(part: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_fail_specs(f"co2e:1%,{part}")
    assert str(exc.value) == f"invalid --co2-compare-fail {part!r}: {BAD_SPEC}"


@pytest.mark.parametrize("text", ["", " , ", ","])
def test_empty_fail_spec(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_fail_specs(text)
    assert str(exc.value) == f"empty --co2-compare-fail={text!r}: expected e.g. energy:10%"


def test_save_names() -> None:
    assert parse_save_name(" main ") == "main"
    assert parse_save_name("a.json.json") == "a.json"
    assert parse_save_name("_x-1.2") == "_x-1.2"
    assert parse_save_name("Main-2.JSON") == "Main-2.JSON" and parse_save_name("PR7") == "PR7"
    for bad in ("", ".hidden", "-a", "a/b", "a b", ".json"):
        with pytest.raises(ValueError) as exc:
            parse_save_name(bad)
        assert str(exc.value) == (
            f"invalid --co2-save name {bad!r}: expected letters, digits, '.', '_' or '-' "
            "(saved as .co2/NAME.json)"
        )


# -- storage ----------------------------------------------------------------------------------


def _touch(path: Path, mtime_ns: int) -> Path:
    path.write_text("{}")
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_saved_runs_oldest_first_by_time_then_name(tmp_path: Path) -> None:
    assert saved_runs(tmp_path / "nope") == []
    newest = _touch(tmp_path / "a.json", 3_000_000_000)
    oldest = _touch(tmp_path / "z.json", 1_000_000_000)
    tie_b = _touch(tmp_path / "c.json", 2_000_000_000)
    tie_a = _touch(tmp_path / "b.json", 2_000_000_000)
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert saved_runs(tmp_path) == [oldest, tie_a, tie_b, newest]
    assert saved_path(tmp_path, "b") == tie_a


def test_the_latest_is_the_newest_not_the_last_name(tmp_path: Path) -> None:
    newest = _touch(tmp_path / "a.json", 3_000_000_000)
    _touch(tmp_path / "z.json", 1_000_000_000)
    for value in (None, "", "latest"):
        assert resolve_baseline(value, tmp_path) == newest


def test_resolve_by_name_then_path(tmp_path: Path) -> None:
    store = tmp_path / ".co2"
    store.mkdir()
    named = _touch(store / "main.json", 1_000_000_000)
    assert resolve_baseline("main", store) == named
    assert resolve_baseline("main.json", store) == named
    elsewhere = _touch(tmp_path / "other.json", 1_000_000_000)
    assert resolve_baseline(str(elsewhere), store) == elsewhere
    assert isinstance(resolve_baseline(str(elsewhere), store), Path)
    report = _touch(tmp_path / "report.txt", 1_000_000_000)  # not NAME.json: only as a path
    assert resolve_baseline(str(report), store) == report
    (store / "adir.json").mkdir()  # a folder is no baseline
    with pytest.raises(ValueError) as exc:
        resolve_baseline("adir", store)
    assert str(exc.value) == (
        f"--co2-compare: no baseline 'adir': neither {store / 'adir.json'} nor a file 'adir' "
        "exists (saved runs: main)"
    )


def test_no_baseline_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        resolve_baseline(None, tmp_path)
    assert str(exc.value) == (
        f"--co2-compare: no saved run in {tmp_path}: save one first with --co2-save=NAME"
    )
    with pytest.raises(ValueError) as exc:
        resolve_baseline("b.json", tmp_path)
    assert str(exc.value) == (
        f"--co2-compare: no baseline 'b.json': neither {tmp_path / 'b.json'} nor a file "
        "'b.json' exists (saved runs: none)"
    )
    _touch(tmp_path / "y.json", 2_000_000_000)
    _touch(tmp_path / "x.json", 1_000_000_000)
    with pytest.raises(ValueError, match=r"\(saved runs: x, y\)$"):
        resolve_baseline("b", tmp_path)


def test_load_baseline(tmp_path: Path) -> None:
    tests = [_test("t::a", _result())]
    path = tmp_path / "base.json"
    path.write_text(json.dumps(Report(SessionInfo(started="2026-01-01"), tests).to_dict()))
    b = load_baseline(path)
    assert b.session.started == "2026-01-01"
    assert [t.nodeid for t in b.tests] == ["t::a"]
    assert b.tests[0].results[0].projection.energy_kwh == 1.0
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match=r"^baseline '.*bad\.json' is not a pytest-co2 report"):
        load_baseline(tmp_path / "bad.json")


# -- deltas -----------------------------------------------------------------------------------


def test_delta_values_and_percent() -> None:
    d = Delta("t", "m", 5.0, 3.0, 4.0, 4.0)
    assert d.values("energy") == (5.0, 4.0) and d.values("co2e") == (3.0, 4.0)
    assert d.percent("energy") == 25.0 and d.percent("co2e") == -25.0
    assert not d.is_new
    new = Delta("t", "m", 5.0, 3.0, None, None)
    assert new.is_new and new.percent("energy") is None and new.percent("co2e") is None
    zero = Delta("t", "m", 0.0, 1.0, 0.0, 0.0)
    assert zero.percent("energy") == 0.0 and zero.percent("co2e") == math.inf
    with pytest.raises(ValueError, match=r"^unknown field 'kwh': expected energy or co2e$"):
        d.values("kwh")


def test_delta_to_dict() -> None:
    d = Delta("t::a", "m", 2.0, 3.0, 1.0, 4.0, per_unit=True)
    assert d.to_dict() == {
        "nodeid": "t::a",
        "name": "m",
        "energy_kwh": 2.0,
        "base_energy_kwh": 1.0,
        "energy_pct": 100.0,
        "co2e_kg": 3.0,
        "base_co2e_kg": 4.0,
        "co2e_pct": -25.0,
        "per_unit": True,
        "decisions": {},
    }
    inf = Delta("t::a", "m", 2.0, 1.0, 0.0, None).to_dict()
    assert inf["energy_pct"] == "inf" and inf["co2e_pct"] is None
    decision = Delta("t", "m", 5.5, 1, 5.0, 1, samples=(5.5,) * 3, base_samples=(5.0,) * 3)
    spec = FailSpec("energy", 20)
    with_decision = decided([decision], [spec])[0]
    dec = with_decision.decide(spec)
    assert dec is not None
    assert with_decision.to_dict()["decisions"] == {"energy:20%": dec.to_dict()}


def test_decide_energy_with_spread() -> None:
    d = Delta(
        "t::a", "m", 1.2, 1.2, 1.0, 1.0,
        samples=(12.0, 12.1, 11.9, 12.0, 12.05), base_samples=(10.0, 10.1, 9.9, 10.0, 10.05),
    )  # fmt: skip
    dec = d.decide(FailSpec("energy", 10))
    assert dec is not None and dec.outcome == "regression" and dec.method == "trimmed"
    assert dec.threshold == 0.1 + 1e-12
    # the 20% trimmed means: the middle three of five windows
    assert dec.change == pytest.approx(36.05 / 30.05 - 1, rel=1e-12)
    assert (dec.n, dec.base_n, dec.basis) == (5, 5, "interval")
    assert (
        Delta("t", "m", 1.0, 1.0, None, None, samples=(1.0,)).decide(FailSpec("energy", 1)) is None
    )


def test_a_change_equal_to_the_threshold_is_no_regression() -> None:
    # 5.5 / 5 - 1 is 0.10000000000000014 in floats: still "not more than 10%"
    d = Delta("t", "m", 5.5, 1, 5.0, 1, samples=(5.5,) * 3, base_samples=(5.0,) * 3)
    dec = d.decide(FailSpec("energy", 10))
    assert dec is not None and dec.outcome == "no regression"
    assert check(d, FailSpec("energy", 10)) is None
    below = d.decide(FailSpec("energy", 9.99))
    assert below is not None and below.outcome == "regression"


def test_one_window_each_needs_a_clear_margin() -> None:
    # no spread: a regression only above 1.5 x the threshold, no regression below 0.5 x
    def outcome(cur: float, pct: float = 10) -> str:
        d = Delta("t", "m", cur, 1, 10.0, 1, samples=(cur,), base_samples=(10.0,))
        dec = d.decide(FailSpec("energy", pct))
        assert dec is not None
        return dec.outcome

    assert outcome(11.2) == "inconclusive"
    assert outcome(11.6) == "regression"
    assert outcome(10.4) == "no regression"
    assert outcome(10.6) == "inconclusive"


def test_decide_co2e_scales_each_run_by_its_own_intensity() -> None:
    # the same joules per unit, but this run's grid is twice as dirty: CO2e +100%
    d = Delta(
        "t", "m", 1.0, 2.0, 1.0, 1.0, samples=(5.0, 5.0, 5.0), base_samples=(5.0, 5.0, 5.0),
        kg_per_j=2e-7, base_kg_per_j=1e-7,
    )  # fmt: skip
    co2e = d.decide(FailSpec("co2e", 50))
    energy = d.decide(FailSpec("energy", 50))
    assert co2e is not None and energy is not None
    assert co2e.outcome == "regression" and co2e.change == pytest.approx(1.0, rel=1e-12)
    assert co2e.mean_j == pytest.approx(1e-6) and co2e.base_mean_j == pytest.approx(5e-7)
    assert energy.outcome == "no regression" and energy.change == 0.0


def test_decide_from_means_without_samples() -> None:
    # a baseline without samples: its mean alone (a point compare), in J and in kg
    d = Delta(
        "t", "m", 1.0, 1.0, 1.0, 1.0, samples=(6.0, 6.0, 6.0), base_mean_j=5.0,
        kg_per_j=1e-7, base_kg_per_j=2e-7,
    )  # fmt: skip
    energy = d.decide(FailSpec("energy", 10))
    assert energy is not None and energy.outcome == "regression"
    assert energy.change == pytest.approx(0.2) and energy.basis == "point: no per-window samples"
    co2e = d.decide(FailSpec("co2e", 10))  # 6e-7 kg now against 1e-6 kg: -40%
    assert co2e is not None and co2e.outcome == "no regression"
    assert co2e.change == pytest.approx(-0.4)
    # neither run kept samples: both means, each in its own kg per J
    both = Delta("t", "m", 1.0, 1.0, 1.0, 1.0, mean_j=6.0, base_mean_j=5.0, kg_per_j=1e-7,
                 base_kg_per_j=2e-7)  # fmt: skip
    co2e = both.decide(FailSpec("co2e", 10))
    assert co2e is not None and co2e.change == pytest.approx(-0.4)
    assert co2e.mean_j == pytest.approx(6e-7) and co2e.base_mean_j == pytest.approx(1e-6)


def test_decide_a_zero_baseline() -> None:
    # nothing measured before (no samples, no mean: 0): any energy now is a regression
    d = Delta("t", "m", 1.0, 1.0, 0.0, 0.0, samples=(5.0, 5.0, 5.0))
    dec = d.decide(FailSpec("energy", 10))
    assert dec is not None and dec.outcome == "regression" and dec.change == math.inf
    assert dec.basis == "zero baseline"
    line = check(d, FailSpec("energy", 10))
    assert line == (
        "t [m]: energy 0 -> 1.00 kWh exceeds --co2-compare-fail=energy:10%: "
        "regression: +inf% (zero baseline) > 10%"
    )
    zero_now = Delta("t", "m", 0.0, 0.0, 0.0, 0.0)  # zero before and now: no regression
    dec = zero_now.decide(FailSpec("energy", 0))
    assert dec is not None and dec.outcome == "no regression" and dec.change == 0.0


# -- compare_tests ----------------------------------------------------------------------------


def test_per_unit_rescaling_scales_energy_and_co2e() -> None:
    base = [_test("t::b", _result(kwh=1.0, kg=2.0, n=500))]
    now = [_test("t::b", _result(kwh=2.0, kg=3.0, n=1000))]
    (d,) = compare_tests(now, base)
    assert d.per_unit and d.base_energy_kwh == 2.0 and d.base_co2e_kg == 4.0
    assert d.percent("energy") == 0.0 and d.percent("co2e") == -25.0


def test_measured_counts_that_differ_compare_per_unit() -> None:
    # adaptive steps: 20 steps measured before, 10 now at twice the energy per step
    base = [_test("t::b", _result(kwh=1.0, kg=2.0, n=20, measured=True))]
    now = [_test("t::b", _result(kwh=1.0, kg=2.0, n=10, measured=True))]
    (d,) = compare_tests(now, base)
    assert d.per_unit and d.base_energy_kwh == 0.5 and d.percent("energy") == 100.0


@pytest.mark.parametrize(
    "now_measured, base_measured, base_n",
    [(True, False, 500), (False, True, 500), (False, False, 1000), (False, False, 0)],
)
def test_no_rescaling(now_measured: bool, base_measured: bool, base_n: int) -> None:
    base = [_test("t::b", _result(kwh=1.0, kg=2.0, n=base_n, measured=base_measured))]
    now = [_test("t::b", _result(kwh=2.0, kg=3.0, n=1000, measured=now_measured))]
    (d,) = compare_tests(now, base)
    assert not d.per_unit and d.base_energy_kwh == 1.0 and d.base_co2e_kg == 2.0


def test_compare_tests_carries_samples_means_and_intensities() -> None:
    base = [_test("t::a", _result(kwh=1.0, kg=0.36, samples=(4.0, 5.0), mean_j=4.5))]
    now = [
        _test("t::a", _result(kwh=2.0, kg=0.36, samples=(6.0, 7.0), mean_j=6.5)),
        _test("t::new", _result(kwh=5.0, kg=4.0)),
    ]
    new_first = list(reversed(now))
    new, a = compare_tests(new_first, base)
    assert (a.nodeid, a.name, a.energy_kwh, a.co2e_kg) == ("t::a", "m", 2.0, 0.36)
    assert (a.samples, a.base_samples, a.mean_j, a.base_mean_j) == (
        (6.0, 7.0),
        (4.0, 5.0),
        6.5,
        4.5,
    )
    assert a.kg_per_j == pytest.approx(0.36 / 7.2e6) and a.base_kg_per_j == pytest.approx(1e-7)
    assert new == Delta("t::new", "m", 5.0, 4.0, None, None)


def test_kg_per_j_of_a_zero_energy_is_zero() -> None:
    base = [_test("t::a", _result(kwh=0.0, kg=0.0))]
    (d,) = compare_tests(base, base)
    assert d.kg_per_j == 0.0 and d.base_kg_per_j == 0.0
    tiny = [_test("t::a", _result(kwh=1e-7, kg=7e-10))]  # 0.36 J
    (d,) = compare_tests(tiny, tiny)
    assert d.kg_per_j == pytest.approx(7e-10 / 0.36, rel=1e-12)


def test_missing_from_lists_the_baseline_measurements_not_made_now() -> None:
    base = [
        _test("t::a", _result("m"), _result("gone")),
        _test("t::b", _result("m")),
        _test("t::c", _result("m")),
    ]
    now = [_test("t::a", _result("m")), _test("t::c", _result("m")), _test("t::d", _result("m"))]
    assert missing_from(now, base) == [("t::a", "gone"), ("t::b", "m")]


# -- checks and lines -------------------------------------------------------------------------


def _decision(outcome: str, low: float = 0.15, high: float = 0.25) -> CompareDecision:
    return CompareDecision(
        outcome=outcome, change=0.2, low=low, high=high, threshold=0.1, basis="interval",
        mean_j=6.0, base_mean_j=5.0, n=5, base_n=5, method="trimmed", between_run_cv=0.0,
        reference_change=None, needed_precision=None if outcome != "inconclusive" else 0.02,
    )  # fmt: skip


def test_check_uses_the_stored_decision() -> None:
    # the samples say no change, the stored decision (made once, in decided()) says regression
    spec = FailSpec("co2e", 10)
    d = Delta(
        "t::a", "m", 1.2, 0.6, 1.0, 0.5, per_unit=True, samples=(5.0,) * 3,
        base_samples=(5.0,) * 3, decisions=(("co2e:10%", _decision("regression")),),
    )  # fmt: skip
    assert check(d, spec) == (
        "t::a [m]: CO2e 0.500 -> 0.600 kg CO2e, per unit exceeds "
        "--co2-compare-fail=co2e:10%: regression: +20.0% (95% +15.0% to +25.0%) > 10%"
    )
    assert check(d, FailSpec("energy", 10)) is None  # no stored decision: decided afresh
    assert failures([d], [FailSpec("energy", 10), spec]) == [check(d, spec)]


def test_inconclusive_lines() -> None:
    spec = FailSpec("energy", 10)
    d = Delta(
        "t::a", "m", 1.2, 0.6, 1.0, 0.5, decisions=(("energy:10%", _decision("inconclusive", 0.05)),),
    )  # fmt: skip
    assert inconclusive([d], [spec]) == [
        "t::a [m]: energy 1.00 -> 1.20 kWh is too noisy to judge against "
        "--co2-compare-fail=energy:10%: inconclusive: +20.0% (95% +5.0% to +25.0%) vs 10%; "
        "to decide, measure both runs to ±2.0% (--co2-precision=2%, more steps or a longer "
        "--co2-max-time)"
    ]
    assert check(d, spec) is None and failures([d], [spec]) == []
    regression = Delta(
        "t::a", "m", 1.2, 0.6, 1.0, 0.5, decisions=(("energy:10%", _decision("regression")),)
    )
    assert inconclusive([regression], [spec]) == []
    assert inconclusive([Delta("t::n", "m", 1.0, 1.0, None, None)], [spec]) == []
    # no stored decision: decided here, from noisy windows (+-40%) and a +12% change
    noisy = Delta(
        "t::b", "m", 1.12, 1.12, 1.0, 1.0,
        samples=(0.672, 1.568) * 3, base_samples=(0.6, 1.4) * 3,
    )  # fmt: skip
    (line,) = inconclusive([noisy], [spec])
    assert line.startswith(
        "t::b [m]: energy 1.00 -> 1.12 kWh is too noisy to judge against "
        "--co2-compare-fail=energy:10%: inconclusive: +12.0% (95% "
    )


def test_decided_skips_new_measurements() -> None:
    specs = [FailSpec("energy", 10), FailSpec("co2e", 10)]
    old = Delta("t::a", "m", 1, 1, 1, 1, samples=(5.0, 5.0), base_samples=(5.0, 5.0))
    new = Delta("t::n", "m", 1, 1, None, None)
    d_old, d_new = decided([old, new], specs)
    assert [s for s, _ in d_old.decisions] == ["energy:10%", "co2e:10%"]
    assert all(dec.outcome == "no regression" for _, dec in d_old.decisions)
    assert d_new.decisions == () and d_new == new


# -- the comparison ---------------------------------------------------------------------------


def _noisy_and_steady() -> tuple[list[TestRecord], list[TestRecord]]:
    base = [
        _test("t::steady", _result(kwh=1.0, samples=(5.0, 5.01, 4.99, 5.0, 5.0))),
        _test("t::noisy", _result(kwh=1.0, samples=(3.0, 7.0, 4.0, 6.0, 5.0))),
        _test("t::gone", _result()),
    ]
    now = [
        _test("t::steady", _result(kwh=1.3, samples=(6.5, 6.51, 6.49, 6.5, 6.5))),
        _test("t::noisy", _result(kwh=1.3, samples=(3.9, 9.1, 5.2, 7.8, 6.5))),
        _test("t::new", _result()),
    ]
    return now, base


def test_compare_strict_and_not() -> None:
    now, base = _noisy_and_steady()
    intensity = {
        "region": "SE", "name": "Sweden", "g_per_kwh": 7.0, "year": 2022, "month": None,
        "source": "s",
    }  # fmt: skip
    session = SessionInfo.from_dict({"started": "2026-01-01T00:00:00", "intensity": intensity})
    baseline = Baseline(session, base)
    specs = [FailSpec("energy", 10)]
    c = compare(Path("x") / "base.json", baseline, now, specs)
    assert c.baseline == os.path.join("x", "base.json")
    assert c.baseline_started == "2026-01-01T00:00:00"
    assert c.baseline_intensity == intensity
    assert [d.nodeid for d in c.deltas] == ["t::steady", "t::noisy", "t::new"]
    assert [s for s, _ in c.deltas[0].decisions] == ["energy:10%"]
    assert c.missing == (("t::gone", "m"),) and c.fail_specs == (FailSpec("energy", 10),)
    assert len(c.failures) == 1 and c.failures[0].startswith(
        "t::steady [m]: energy 1.00 -> 1.30 kWh"
    )
    assert len(c.inconclusive) == 1 and c.inconclusive[0].startswith(
        "t::noisy [m]: energy 1.00 -> 1.30 kWh"
    )
    strict = compare("base.json", baseline, now, specs, strict=True)
    assert strict.failures == c.failures + c.inconclusive
    plain = compare("base.json", Baseline(SessionInfo(), base), now)
    assert plain.failures == () and plain.inconclusive == () and plain.baseline_started is None
    assert plain.deltas[0].decisions == ()


def test_comparison_to_dict() -> None:
    d = Delta("t::a", "m", 2.0, 1.0, 1.0, 1.0)
    c = Comparison(
        baseline="b.json", baseline_started="s", baseline_intensity={"region": "DE"},
        deltas=(d,), missing=(("t::x", "y"),), fail_specs=(FailSpec("co2e", 5),),
        failures=("f",), inconclusive=("i",),
    )  # fmt: skip
    assert c.to_dict() == {
        "baseline": "b.json",
        "baseline_started": "s",
        "baseline_intensity": {"region": "DE"},
        "deltas": [d.to_dict()],
        "missing": [{"nodeid": "t::x", "name": "y"}],
        "fail_specs": ["co2e:5%"],
        "failures": ["f"],
        "inconclusive": ["i"],
    }
    bare = Comparison("b.json", None, None, (), (), (), ())
    assert bare.to_dict()["baseline_intensity"] is None and bare.to_dict()["inconclusive"] == []


def test_render_comparison() -> None:
    point = _decision("no regression", math.nan, math.nan)
    deltas = (
        Delta(
            "t::a", "m", 1.2, 0.6, 1.0, 0.4, decisions=(("energy:10%", _decision("regression")),)
        ),
        Delta("t::b", "m", 1.0, 1.05, 1.0, 1.0, per_unit=True, decisions=(("energy:10%", point),)),
        Delta("t::new", "m", 5.0, 5.0, None, None),
    )
    c = Comparison(
        "b.json", None, None, deltas, (("t::x", "y"), ("t::z", "y")), (FailSpec("energy", 10),), ()
    )
    assert render_comparison(c, width=120) == [
        "test        kWh before    kWh now    Δ energy    Δ CO2e            decision (energy:10%)",
        "----------  ------------  ---------  ----------  ----------------  "
        "--------------------------------",
        "t::a [m]    1.00          1.20       +20.0%      +50.0%            "
        "regression, 95% +15.0% to +25.0%",
        "t::b [m]    1.00          1.00       +0.0%       +5.0% (per unit)  "
        "no regression (no interval)",
        "t::new [m]  -             5.00       new         new",
        "not measured in this run: 2 measurement(s) of the baseline",
    ]
    assert render_comparison(c) == render_comparison(c, width=120)  # 99 columns: it fits 100
    # narrower, the figure before goes first, then Δ CO2e, then kWh now
    assert render_comparison(c, width=80)[:3] == [
        "test        kWh now    Δ energy    decision (energy:10%)",
        "----------  ---------  ----------  --------------------------------",
        "t::a [m]    1.20       +20.0%      regression, 95% +15.0% to +25.0%",
    ]
    assert render_comparison(c, width=60)[0] == "test        Δ energy    decision (energy:10%)"
    plain = Comparison("b.json", None, None, deltas[2:], (), (), ())
    lines = render_comparison(plain)
    assert lines == [
        "test        kWh before    kWh now    Δ energy    Δ CO2e    decision",
        "----------  ------------  ---------  ----------  --------  ----------",
        "t::new [m]  -             5.00       new         new",
    ]


def test_render_comparison_keeps_long_ids_distinct() -> None:
    deep = "tests/" + "deep/" * 12
    ids = [f"{deep}test_x.py::test_long[a]", f"{deep}test_y.py::test_long[a]"]
    c = Comparison("b.json", None, None, tuple(Delta(n, "m", 1, 1, 1, 1) for n in ids), (), (), ())
    full = [f"{n} [m]" for n in ids]
    # the other columns: 12 + 9 + 10 + 8 + 10 wide, 2 apart: 59 of the width
    fits = render_comparison(c, width=59 + len(full[0]))
    assert [line.split("  ")[0] for line in fits[2:4]] == full and len(fits) == 4
    # a column less: the common directory goes, and a line says so
    cut = render_comparison(c, width=58 + len(full[0]))
    assert [line.split("  ")[0] for line in cut[2:4]] == [
        "test_x.py::test_long[a] [m]",
        "test_y.py::test_long[a] [m]",
    ]
    assert cut[4:] == [f"test names without their directory {deep}"]
    for width in (80, 40):
        lines = render_comparison(c, width=width)
        names = [line.split("  ")[0] for line in lines[2:4]]
        assert len(set(names)) == 2 and all(len(line) <= max(width, 60) for line in lines)
    narrow = render_comparison(c, width=10)
    assert [line.split("  ")[0] for line in narrow[2:4]] == [
        "test_x.py::test_long[a]…",  # 24 wide, the parameters whole
        "test_y.py::test_long[a]…",
    ]


def test_verdict_line_fits_the_width_and_counts_what_it_leaves_out() -> None:
    reg = (("energy:10%", _decision("regression")),)
    deltas = tuple(
        Delta(f"tests/test_x.py::test_{k}", name, 1.2, 0.6, 1.0, 0.5, decisions=reg)
        for k, name in (("a", "default"), ("b", "train"), ("c", "default"))
    )
    ok = Delta(
        "t::ok", "m", 1.0, 1.0, 1.0, 1.0, decisions=(("energy:10%", _decision("no regression")),)
    )
    c = Comparison("b.json", None, None, (*deltas, ok), (), (FailSpec("energy", 10),), ("f",) * 3)
    assert verdict_line(c, 200) == (
        "co2: FAILED: 3 regressions (test_a +20.0%, 95% +15.0% to +25.0%; test_b [train] +20.0%, "
        "95% +15.0% to +25.0%; test_c +20.0%, 95% +15.0% to +25.0%)"
    )
    assert verdict_line(c, 80) == (
        "co2: FAILED: 3 regressions (test_a +20.0%, 95% +15.0% to +25.0%; 2 more)"
    )
    assert verdict_line(c, 40) == "co2: FAILED: 3 regressions (3 more)"
    assert verdict_line(c, 20) == "co2: FAILED: 3 regre"  # never over the width
    # --co2-compare-strict: a too-noisy comparison among the failures
    unsure = Comparison("b.json", None, None, (ok,), (), (FailSpec("energy", 10),), ("i",))
    assert verdict_line(unsure) == "co2: FAILED: 1 too noisy to judge (--co2-compare-strict)"
    assert verdict_line(Comparison("b.json", None, None, (ok,), (), (), ())) is None
