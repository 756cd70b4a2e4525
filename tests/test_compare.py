"""Baselines (--co2-save, --co2-compare, --co2-compare-fail) and CI outputs (markdown, JUnit)."""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from terminal_text import unwrapped

from pytest_co2.backends.base import Device, Method
from pytest_co2.carbon.emission import Emission
from pytest_co2.measure.decisions import CompareDecision
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.baseline import (
    Baseline,
    Comparison,
    check,
    compare,
    decided,
    failures,
    inconclusive,
    parse_fail_specs,
    parse_save_name,
    render_comparison,
    verdict_line,
)
from pytest_co2.reporting.delta import Delta, FailSpec, compare_tests, missing_from
from pytest_co2.reporting.json_report import Report
from pytest_co2.reporting.markdown import render_markdown
from pytest_co2.reporting.model import Result, TestRecord
from pytest_co2.reporting.session import SessionInfo
from pytest_co2.reporting.storage import load_baseline, resolve_baseline, saved_path, saved_runs

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


# -- exact values: data that exposes each rule ----------------------------------------
BAD_SPEC = (
    "expected FIELD:PERCENT% with FIELD energy or co2e, e.g. energy:10% or co2e:5% "
    "(comma-separated for several)"
)


def _sampled_result(
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


def _record_of(nodeid: str, *results: Result) -> TestRecord:
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
    tests = [_record_of("t::a", _sampled_result())]
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
    base = [_record_of("t::b", _sampled_result(kwh=1.0, kg=2.0, n=500))]
    now = [_record_of("t::b", _sampled_result(kwh=2.0, kg=3.0, n=1000))]
    (d,) = compare_tests(now, base)
    assert d.per_unit and d.base_energy_kwh == 2.0 and d.base_co2e_kg == 4.0
    assert d.percent("energy") == 0.0 and d.percent("co2e") == -25.0


def test_measured_counts_that_differ_compare_per_unit() -> None:
    # adaptive steps: 20 steps measured before, 10 now at twice the energy per step
    base = [_record_of("t::b", _sampled_result(kwh=1.0, kg=2.0, n=20, measured=True))]
    now = [_record_of("t::b", _sampled_result(kwh=1.0, kg=2.0, n=10, measured=True))]
    (d,) = compare_tests(now, base)
    assert d.per_unit and d.base_energy_kwh == 0.5 and d.percent("energy") == 100.0


@pytest.mark.parametrize(
    "now_measured, base_measured, base_n",
    [(True, False, 500), (False, True, 500), (False, False, 1000), (False, False, 0)],
)
def test_no_rescaling(now_measured: bool, base_measured: bool, base_n: int) -> None:
    base = [_record_of("t::b", _sampled_result(kwh=1.0, kg=2.0, n=base_n, measured=base_measured))]
    now = [_record_of("t::b", _sampled_result(kwh=2.0, kg=3.0, n=1000, measured=now_measured))]
    (d,) = compare_tests(now, base)
    assert not d.per_unit and d.base_energy_kwh == 1.0 and d.base_co2e_kg == 2.0


def test_compare_tests_carries_samples_means_and_intensities() -> None:
    base = [_record_of("t::a", _sampled_result(kwh=1.0, kg=0.36, samples=(4.0, 5.0), mean_j=4.5))]
    now = [
        _record_of("t::a", _sampled_result(kwh=2.0, kg=0.36, samples=(6.0, 7.0), mean_j=6.5)),
        _record_of("t::new", _sampled_result(kwh=5.0, kg=4.0)),
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
    base = [_record_of("t::a", _sampled_result(kwh=0.0, kg=0.0))]
    (d,) = compare_tests(base, base)
    assert d.kg_per_j == 0.0 and d.base_kg_per_j == 0.0
    tiny = [_record_of("t::a", _sampled_result(kwh=1e-7, kg=7e-10))]  # 0.36 J
    (d,) = compare_tests(tiny, tiny)
    assert d.kg_per_j == pytest.approx(7e-10 / 0.36, rel=1e-12)


def test_missing_from_lists_the_baseline_measurements_not_made_now() -> None:
    base = [
        _record_of("t::a", _sampled_result("m"), _sampled_result("gone")),
        _record_of("t::b", _sampled_result("m")),
        _record_of("t::c", _sampled_result("m")),
    ]
    now = [
        _record_of("t::a", _sampled_result("m")),
        _record_of("t::c", _sampled_result("m")),
        _record_of("t::d", _sampled_result("m")),
    ]
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
        _record_of("t::steady", _sampled_result(kwh=1.0, samples=(5.0, 5.01, 4.99, 5.0, 5.0))),
        _record_of("t::noisy", _sampled_result(kwh=1.0, samples=(3.0, 7.0, 4.0, 6.0, 5.0))),
        _record_of("t::gone", _sampled_result()),
    ]
    now = [
        _record_of("t::steady", _sampled_result(kwh=1.3, samples=(6.5, 6.51, 6.49, 6.5, 6.5))),
        _record_of("t::noisy", _sampled_result(kwh=1.3, samples=(3.9, 9.1, 5.2, 7.8, 6.5))),
        _record_of("t::new", _sampled_result()),
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
        assert len(set(names)) == 2  # a line is no wider, unless it is one word (a path)
        assert all(len(line) <= max(width, 60) or len(line.split()) == 1 for line in lines)
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
