"""Baselines (--co2-save, --co2-compare, --co2-compare-fail) and CI outputs (markdown, JUnit)."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from terminal_text import unwrapped

from pytest_co2.backends.base import Device, Method
from pytest_co2.carbon.emission import Emission
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.baseline import (
    Delta,
    FailSpec,
    check,
    compare_tests,
    parse_fail_specs,
    parse_save_name,
)
from pytest_co2.reporting.json_report import Report
from pytest_co2.reporting.markdown import render_markdown
from pytest_co2.reporting.model import Result, TestRecord
from pytest_co2.reporting.session import SessionInfo
from pytest_co2.reporting.storage import resolve_baseline

BASE = [
    "--co2-backend=constant:100",
    "--co2-pue=1",
    "--co2-region=SE",
    "--co2-extrapolate=1000",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
]

# The workload is 8 steps of 0.125 s x FACTOR (factor.txt) on the 100 W fake-clock device.
WORKLOAD = """
import pathlib
import pytest

FACTOR = float(pathlib.Path(__file__).with_name("factor.txt").read_text())

def test_train(co2_meter, clock):
    for _ in co2_meter.steps(8, name="train"):
        clock.advance(0.125 * FACTOR)

def test_steady(co2_meter, clock):
    with co2_meter.measure("sample", unit="sample"):
        clock.advance(1.0)
"""
TRAIN_KWH = 12.5 * 1000 / 3.6e6  # 12.5 J per iteration, projected to 1,000 iterations


def run(pytester: pytest.Pytester, factor: float, *args: str) -> pytest.RunResult:
    (pytester.path / "factor.txt").write_text(repr(factor))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "160")  # room for whole test ids in the comparison table
        return pytester.runpytest(*BASE, *args)


@pytest.fixture
def saved(fake_clock_pytester: pytest.Pytester) -> pytest.Pytester:
    fake_clock_pytester.makepyfile(WORKLOAD)
    result = run(fake_clock_pytester, 1.0, "--co2-save=base")
    assert result.ret == pytest.ExitCode.OK
    unwrapped(result).fnmatch_lines(["co2 baseline saved to *.co2*base.json"])
    data = json.loads((fake_clock_pytester.path / ".co2" / "base.json").read_text())
    assert data["schema_version"] == 1 and len(data["tests"]) == 2
    assert not list((fake_clock_pytester.path / ".co2").glob(".co2-*"))  # atomic write
    return fake_clock_pytester


def test_a_20_percent_regression_fails_the_session(saved: pytest.Pytester) -> None:
    result = run(saved, 1.2, "--co2-compare-fail=energy:10%", "--co2-json=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)  # the tests pass; the session fails
    unwrapped(result).fnmatch_lines(
        [
            "co2: comparing with *base.json; fail on energy:10%",
            "*co2 compared with *base.json*",
            "*test_train*train*0.00347*0.00417*+20.0%*+20.0%*",
            "*test_steady*sample*+0.0%*+0.0%*",
            "*co2 regressions*",
        ]
    )
    assert "test_steady [sample]" not in result.stdout.str().split("co2 regressions")[1]
    # the run ends with what failed it, after pytest's count of passed tests
    assert result.outlines[-2].strip("= ").startswith("2 passed")
    assert result.outlines[-1] == (
        "co2: FAILED: 1 regression (test_train [train] +20.0%, 95% +20.0% to +20.0%)"
    )
    comparison = json.loads((saved.path / "r.json").read_text())["comparison"]
    assert comparison["failures"] == [
        "test_a_20_percent_regression_fails_the_session.py::test_train [train]: energy 0.00347 -> "
        "0.00417 kWh exceeds --co2-compare-fail=energy:10%: regression: +20.0% "
        "(95% +20.0% to +20.0%) > 10%"
    ]
    (train,) = [d for d in comparison["deltas"] if d["name"] == "train"]
    assert train["energy_pct"] == pytest.approx(20.0, rel=1e-9)
    assert train["base_energy_kwh"] == pytest.approx(TRAIN_KWH, rel=1e-12)
    assert len(comparison["failures"]) == 1
    assert json.loads((saved.path / "r.json").read_text())["session"]["exit_status"] == 1


def test_a_5_percent_change_passes(saved: pytest.Pytester) -> None:
    result = run(saved, 1.05, "--co2-compare-fail=energy:10%,co2e:10%")
    assert result.ret == pytest.ExitCode.OK
    unwrapped(result).fnmatch_lines(["*test_train*train*+5.0%*+5.0%*no regression*"])
    assert "co2 regression" not in result.stdout.str()


def test_compare_by_name_and_path_latest_and_co2e(saved: pytest.Pytester) -> None:
    run(saved, 2.0, "--co2-save=double")
    # no value: the latest saved (double), so 1.2 is a 40% improvement
    result = run(saved, 1.2, "--co2-compare", "--co2-compare-fail=co2e:1%")
    assert result.ret == pytest.ExitCode.OK
    unwrapped(result).fnmatch_lines(["*test_train*train*-40.0%*-40.0%*"])
    result = run(saved, 1.2, "--co2-compare=base", "--co2-compare-fail=co2e:19%")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    unwrapped(result).fnmatch_lines(
        ["co2 regression: *test_train [[]train[]]: CO2e 2.43e-5 -> 2.92e-5 kg CO2e exceeds *"]
    )
    assert result.outlines[-1].startswith("co2: FAILED: 1 regression (test_train [train] +20.0%")
    result = run(saved, 1.2, f"--co2-compare={saved.path / '.co2' / 'double.json'}")
    unwrapped(result).fnmatch_lines(["*test_train*train*-40.0%*"])


def test_missing_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--co2-compare-fail=energy:10%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--co2-compare: no saved run in *.co2: save one first with --co2-save=NAME"]
    )
    result = pytester.runpytest("--co2-compare=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--co2-compare: no baseline 'nope'*"])


def test_markdown_and_junit(saved: pytest.Pytester) -> None:
    result = run(
        saved, 1.2, "--co2-compare=base", "--co2-markdown=out/summary.md", "--junitxml=junit.xml"
    )
    unwrapped(result).fnmatch_lines(["co2 markdown written to out/summary.md"])
    md = (saved.path / "out" / "summary.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "### CO2e of this test run"
    assert (
        "Region SE, 7 g CO2e/kWh; PUE 1; backend constant: simulated device at 100 W [simulated]"
        in md
    )
    assert (
        "| test | measurement | steps | projected to | kWh | kg CO2e ± std | method | budget | verdict | Δ energy | Δ CO2e |"
        in lines
    )
    assert (
        "| `test_markdown_and_junit.py::test_train` | train | 8 | 1,000 iteration | 0.00417 | 2.92e-5 ± 0 | simulated |  |  | +20.0% | +20.0% |"
        in lines
    )
    assert any(line.startswith("| **total** | 2 measurements |") for line in lines)
    root = ET.parse(saved.path / "junit.xml").getroot()
    props = {
        c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
        for c in root.iter("testcase")
    }
    train = props["test_train"]
    assert set(train) == {"co2e_kg", "energy_kwh", "method"}
    assert float(train["energy_kwh"]) == pytest.approx(TRAIN_KWH * 1.2, rel=1e-9)
    assert float(train["co2e_kg"]) == pytest.approx(TRAIN_KWH * 1.2 * 7 / 1000, rel=1e-9)
    assert train["method"] == "simulated"


def test_junit_totals_over_call_and_teardown_measurements(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(
        """
import pytest

@pytest.fixture
def measured_teardown(co2_meter, clock):
    yield
    with co2_meter.measure("teardown"):
        clock.advance(2.0)

def test_x(measured_teardown, co2_meter, clock):
    with co2_meter.measure("call"):
        clock.advance(1.0)
"""
    )
    fake_clock_pytester.runpytest(*BASE, "--junitxml=junit.xml").assert_outcomes(passed=1)
    root = ET.parse(fake_clock_pytester.path / "junit.xml").getroot()
    props = [(p.get("name"), p.get("value")) for p in root.iter("property")]
    assert [n for n, _ in props] == ["co2e_kg", "energy_kwh", "method"]  # once, not per phase
    assert float(dict(props)["energy_kwh"]) == pytest.approx(
        (100.0 + 200.0) * 1000 / 3.6e6, rel=1e-9
    )


# -- pure logic --------------------------------------------------------------------------------


def test_parse_fail_specs() -> None:
    assert parse_fail_specs("energy:10%") == (FailSpec("energy", 10.0),)
    assert parse_fail_specs(" CO2E: 2.5 % ,energy:0%") == (
        FailSpec("co2e", 2.5),
        FailSpec("energy", 0.0),
    )
    for bad in ("energy", "energy:10", "energy:-1%", "watts:5%", ","):
        with pytest.raises(ValueError, match="--co2-compare-fail"):
            parse_fail_specs(bad)
    assert parse_save_name("main.json") == "main" and parse_save_name("pr-12_a.b") == "pr-12_a.b"
    with pytest.raises(ValueError):
        parse_save_name("../x")


def _result(name: str, kwh: float, kg: float, n: int = 1000, measured: bool = False) -> Result:
    device = Device("cpu:process", "cpu", "cpu", Method.ESTIMATED, 0.0, False)
    per_unit_j = kwh * 3.6e6 / n  # three windows without spread
    m = Measurement(
        name=name, unit="call", steps=3, units=3.0, warmup=0, duration_s=1.0, energy_j=3 * per_unit_j,
        energy_per_unit_j=Stats(per_unit_j, 0.0, 0.0, 3), unit_energies_j=(per_unit_j,) * 3,
        method="estimated", devices=(DeviceEnergy(device, 3 * per_unit_j),), backend="estimate",
    )  # fmt: skip
    p = Projection(
        n=n, unit="call", energy_kwh=kwh, std_kwh=math.nan, ci95_kwh=math.nan, measured=measured
    )
    e = Emission("SE", None, 7.0, "test", 1.55, kwh, kwh * 1.55, kg, math.nan, math.nan)
    return Result(m, p, e)


def _test(
    nodeid: str, name: str, kwh: float, kg: float, n: int = 1000, measured: bool = False
) -> TestRecord:
    return TestRecord(nodeid, results=[_result(name, kwh, kg, n, measured)])


def test_compare_tests_and_checks() -> None:
    base = [
        _test("t::a", "m", 1.0, 2.0),
        _test("t::b", "m", 1.0, 2.0, n=500),
        _test("t::gone", "m", 1.0, 1.0),
    ]
    now = [
        _test("t::a", "m", 1.1, 2.0),
        _test("t::b", "m", 2.0, 4.0, n=1000),
        _test("t::new", "m", 5.0, 5.0),
    ]
    d = {x.nodeid: x for x in compare_tests(now, base)}
    assert d["t::a"].percent("energy") == pytest.approx(10.0) and d["t::a"].percent("co2e") == 0.0
    assert d["t::b"].per_unit and d["t::b"].percent("energy") == pytest.approx(
        0.0
    )  # 500 -> 1000 units
    assert d["t::new"].is_new and check(d["t::new"], FailSpec("energy", 0)) is None
    assert check(d["t::a"], FailSpec("energy", 10.0)) is None  # not more than 10%
    assert (
        check(d["t::a"], FailSpec("energy", 9.9))
        == "t::a [m]: energy 1.00 -> 1.10 kWh exceeds --co2-compare-fail=energy:9.9%: "
        "regression: +10.0% (95% +10.0% to +10.0%) > 9.9%"
    )
    zero = Delta("t::z", "m", 1.0, 1.0, 0.0, 0.0, samples=(5.0,) * 3, base_samples=(0.0,) * 3)
    assert math.isinf(zero.percent("energy")) and check(zero, FailSpec("energy", 1000)) is not None


def test_resolve_baseline(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no saved run"):
        resolve_baseline(None, tmp_path)
    (tmp_path / "a.json").write_text("{}")
    assert resolve_baseline("latest", tmp_path) == tmp_path / "a.json"
    assert resolve_baseline("a", tmp_path) == tmp_path / "a.json"
    assert resolve_baseline("a.json", tmp_path) == tmp_path / "a.json"
    with pytest.raises(ValueError, match="saved runs: a"):
        resolve_baseline("b", tmp_path)


def test_markdown_escapes_cells() -> None:
    session = SessionInfo.from_dict(
        {"settings": {"pue": 1.55}, "intensity": {"region": "SE", "g_per_kwh": 7.0}, "backend": "x"}
    )
    report = Report(
        session, [TestRecord("t.py::test[a|b]", results=[_result("m", 0.5, 0.1, 1, True)])]
    )
    md = render_markdown(report)
    assert (
        "| `t.py::test[a\\|b]` | m | 3 | 1 call (measured) | 0.500 | 0.100 | estimated |  |  |"
        in md
    )


def test_markdown_makes_user_strings_inert() -> None:
    session = SessionInfo.from_dict(
        {"settings": {"pue": 1.55}, "intensity": {"region": "SE", "g_per_kwh": 7.0}, "backend": "x"}
    )
    tests = [
        TestRecord("t.py::test[`x`]", results=[_result("<script>alert(1)</script>", 0.5, 0.1)]),
        TestRecord(
            "t.py::b",
            results=[_result("[click](http://evil) <img onerror=x> *b* _i_ ~~s~~", 0.4, 0.05)],
        ),
    ]
    md = render_markdown(Report(session, tests))
    assert "``t.py::test[`x`]``" in md  # a backtick in the id does not end its code span
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert "[click]\\(http://evil) \\<img onerror=x\\> \\*b\\* \\_i\\_ \\~\\~s\\~\\~" in md
    assert re.search(r"(?<!\\)<(script|img)", md) is None and "](" not in md
