"""End-to-end tests of the plugin through pytester, on a simulated 100 W device and a fake clock."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
from terminal_text import header, unwrapped

STEADY_TEST = """
def test_train(co2_meter, clock):
    with co2_meter.measure("train") as m:
        for _ in range(10):
            clock.advance(0.05)
            m.step()
"""

BASE = [
    "--co2-backend=constant:100",
    "--co2-pue=1",
    "--co2-region=SE",
    "--co2-extrapolate=1000",
    "-p",
    "no:cacheprovider",
]


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    result = pytester.runpytest(*BASE, "--co2-json=r.json", *args)
    with open(pytester.path / "r.json") as f:
        return result, json.load(f)


def test_done_when_figures_are_exact(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(passed=1)
    assert data["schema_version"] == 1
    (test,) = data["tests"]
    assert test["nodeid"] == "test_done_when_figures_are_exact.py::test_train"
    assert test["outcome"] == "passed"
    (m,) = test["measurements"]
    assert m["name"] == "train" and m["unit"] == "iteration"
    assert m["steps"] == 10 and m["warmup"] == 0 and m["windows"] == 10
    assert m["duration_s"] == pytest.approx(0.5, rel=1e-9)
    assert m["energy_j"] == pytest.approx(50.0, rel=1e-9)
    assert m["mean_power_w"] == pytest.approx(100.0, rel=1e-9)
    assert m["energy_per_unit_j"]["mean"] == pytest.approx(5.0, rel=1e-9)
    assert m["energy_per_unit_j"]["std"] == pytest.approx(0.0, abs=1e-9)
    assert m["method"] == "simulated"
    assert m["devices"][0]["method"] == "simulated"
    p = m["projection"]
    assert p["n"] == 1000 and p["unit"] == "iteration"
    assert p["energy_kwh"] == pytest.approx(5000 / 3.6e6, rel=1e-9)  # 0.001389 kWh
    e = m["emission"]
    assert e["region"] == "SE" and e["intensity_g_per_kwh"] == 7 and e["pue"] == 1
    assert e["co2e_kg"] == pytest.approx(5000 / 3.6e6 * 7 / 1000, rel=1e-9)  # 0.00972 g
    assert "Table 1" in e["source"]
    assert m["equivalents"]["car_km"] == pytest.approx(e["co2e_kg"] * 1000 / 108.2, rel=1e-9)
    assert data["totals"]["co2e_kg"] == pytest.approx(e["co2e_kg"], rel=1e-12)
    assert data["session"]["backend"].startswith("constant")
    assert data["session"]["settings"]["region"] == "SE"


def test_spread_follows_the_papers_convention(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_train(co2_meter, clock):
    with co2_meter.measure("train") as m:
        for dt in (0.04, 0.06, 0.04, 0.06):
            clock.advance(dt)
            m.step()
"""
    )
    _, data = run_json(fake_clock_pytester)
    m = data["tests"][0]["measurements"][0]
    std = math.sqrt(4 * 1.0 / 3)  # per-unit energies 4, 6, 4, 6 J
    assert m["energy_per_unit_j"]["mean"] == pytest.approx(5.0)
    assert m["energy_per_unit_j"]["std"] == pytest.approx(std)
    assert m["energy_per_unit_j"]["sem"] == pytest.approx(std / 2)
    assert m["projection"]["std_kwh"] == pytest.approx(std * 1000 / 3.6e6)
    assert m["projection"]["ci95_kwh"] == pytest.approx(3.182 * std / 2 * 1000 / 3.6e6)
    assert m["emission"]["std_kg"] == pytest.approx(std * 1000 / 3.6e6 * 7 / 1000)


def test_summary_table(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    result = fake_clock_pytester.runpytest(*BASE, "--co2-regions=PL,DE", "--co2-report=full")
    unwrapped(result).fnmatch_lines(
        [
            "*co2 emissions summary*",
            "region SE 7 g CO2e/kWh, PUE 1;*",
            "test*measurement*J/unit (mean ± std)*kg CO2e ± std*method*kg PL*kg DE*",
            "test_summary_table.py::test_train*train*0.500*10*5.00 ± 0*1,000 iteration*0.00139*9.72e-6 ± 0*simulated*0.000925*0.000508*",
            "TOTAL*1 measurements*0.00139*9.72e-6*",
            "total = 89.9 mm by car, 0.118% of a smartphone charge, * of a person's annual 1.5\u00a0°C budget",
        ]
    )


def test_header(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    result = fake_clock_pytester.runpytest(*BASE)
    assert header(result)[:2] == [
        "co2: backend constant: simulated device at 100 W [simulated]",
        "co2: region SE 7 g CO2e/kWh (EEA 2022, as given in Table 1 of the paper); PUE 1; "
        "extrapolate 1,000 iterations; budget mode fail",
    ]


@pytest.mark.parametrize("columns", [40, 60, 200])
def test_the_header_wraps_to_the_terminal_and_reads_the_same_unwrapped(
    fake_clock_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    args = (*BASE, "--co2-regions=PL,DE", "--co2-json=r.json")
    wide = header(fake_clock_pytester.runpytest(*args))
    monkeypatch.setenv("COLUMNS", str(columns))
    result = fake_clock_pytester.runpytest(*args)
    raw = [line for line in result.outlines if line.startswith("co2:")]
    assert max(len(line) for line in raw) <= columns  # wrapped (40: the narrowest wrap)
    if columns < 80:
        assert len(raw) > len(wide)  # more lines than entries: some wrapped
    assert header(result) == wide


BUDGET_TEST = """
import pytest

@pytest.mark.co2_budget(kg={kg})
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(10):
        clock.advance(0.05)
"""
PROJECTED_KG = 5000 / 3.6e6 * 7 / 1000


def test_budget_just_under_the_projection_fails(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(BUDGET_TEST.format(kg=PROJECTED_KG * 0.999))
    result = fake_clock_pytester.runpytest(*BASE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "projected 9.72e-6 +- 0 kg CO2e for 1,000 iterations in SE exceeds the budget of "
            "9.7125e-06 kg (0.00139 kWh, simulated)",
            "*OVER*",
        ]
    )


def test_budget_just_over_the_projection_passes(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(BUDGET_TEST.format(kg=PROJECTED_KG * 1.001))
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(passed=1)
    budget = data["tests"][0]["budget"]
    assert budget["passed"] is True and budget["kg"] == pytest.approx(PROJECTED_KG * 1.001)
    assert budget["co2e_kg"] == pytest.approx(PROJECTED_KG)


def test_budget_warn_mode_passes_and_reports(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(BUDGET_TEST.format(kg=PROJECTED_KG / 2))
    result, data = run_json(fake_clock_pytester, "--co2-budget-mode=warn")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*Co2BudgetWarning: projected 9.72e-6*exceeds the budget*", "*OVER (warn)*"]
    )
    assert data["tests"][0]["budget"]["passed"] is False


def test_budget_in_kwh_and_marker_extrapolate(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
import pytest

@pytest.mark.co2_budget(kwh=0.01, extrapolate=10000)
def test_marker_target(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.05)

@pytest.mark.co2_budget(kwh=0.01, extrapolate=10000)
def test_own_target_wins(co2_meter, clock):
    for _ in co2_meter.steps(4, extrapolate=5000):
        clock.advance(0.05)
"""
    )
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(failed=1, passed=1)  # 10,000 x 5 J = 0.0139 kWh > 0.01; 5,000 -> 0.00694
    by_id = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    assert by_id["test_marker_target"]["measurements"][0]["projection"]["n"] == 10000
    assert by_id["test_own_target_wins"]["measurements"][0]["projection"]["n"] == 5000
    result.stdout.fnmatch_lines(
        ["*projected 0.0139 +- 0 kWh for 10,000 iterations in SE exceeds the budget of 0.01 kWh*"]
    )


def test_marked_test_without_fixture_is_measured_as_one_unit(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(
        """
import pytest
from conftest import CLOCK

@pytest.mark.co2_budget(kg=1)
def test_plain():
    CLOCK.advance(2.0)
"""
    )
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(passed=1)
    (m,) = data["tests"][0]["measurements"]
    assert (m["name"], m["unit"], m["steps"], m["energy_j"]) == (
        "call",
        "call",
        1,
        pytest.approx(200.0),
    )
    assert m["projection"]["n"] == 1 and m["projection"]["measured"] is True


def test_co2_all_measures_every_test(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
from conftest import CLOCK

def test_a():
    CLOCK.advance(1.0)

def test_b():
    CLOCK.advance(3.0)
"""
    )
    result, data = run_json(fake_clock_pytester, "--co2-all")
    result.assert_outcomes(passed=2)
    energies = sorted(t["measurements"][0]["energy_j"] for t in data["tests"])
    assert energies == [pytest.approx(100.0), pytest.approx(300.0)]
    assert data["totals"]["energy_j"] == pytest.approx(400.0)
    assert all(t["measurements"][0]["complete"] for t in data["tests"])  # passed: complete


def test_several_measurements_and_warmup(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_two(co2_meter, clock):
    for _ in co2_meter.steps(3, warmup=2, name="train"):
        clock.advance(0.1)
    with co2_meter.measure("sample", unit="sample", extrapolate=10) as m:
        clock.advance(1.0)
        m.step()
        clock.advance(1.0)
        m.step()
    assert m.projection.energy_kwh == 10 * 100 / 3.6e6
    assert abs(m.emission.co2e_kg - 10 * 100 / 3.6e6 * 7 / 1000) < 1e-15
    assert [x.name for x in co2_meter.measurements] == ["train", "sample"]
"""
    )
    result, data = run_json(fake_clock_pytester, "--co2-extrapolate=1000,sample=99")
    result.assert_outcomes(passed=1)
    train, sample = data["tests"][0]["measurements"]
    assert (train["steps"], train["warmup"], train["energy_j"]) == (3, 2, pytest.approx(30.0))
    assert train["projection"]["n"] == 1000
    assert (sample["steps"], sample["projection"]["n"]) == (2, 10)


def test_partial_results_survive_a_failing_test(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_crash(co2_meter, clock):
    with co2_meter.measure("train") as m:
        for i in range(5):
            clock.advance(0.1)
            m.step()
            if i == 2:
                raise RuntimeError("boom")
"""
    )
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(failed=1)
    test = data["tests"][0]
    assert test["outcome"] == "failed"
    (m,) = test["measurements"]
    assert m["complete"] is False and m["steps"] == 3 and m["energy_j"] == pytest.approx(30.0)


def test_report_survives_ctrl_c(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_first(co2_meter, clock):
    with co2_meter.measure("train") as m:
        clock.advance(1.0)
        m.step()

def test_interrupted():
    raise KeyboardInterrupt
"""
    )
    result = fake_clock_pytester.runpytest_subprocess(*BASE, "--co2-json=r.json")
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert data["session"]["interrupted"] is True
    assert data["tests"][0]["measurements"][0]["energy_j"] == pytest.approx(100.0)
    assert not list(fake_clock_pytester.path.glob(".co2-*.tmp"))


def test_bad_marker_arguments_fail_the_test(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
import pytest

@pytest.mark.co2_budget(kg=-1)
def test_negative(co2_meter):
    pass

@pytest.mark.co2_budget(tonnes=1)
def test_unknown():
    pass
"""
    )
    result = fake_clock_pytester.runpytest(*BASE)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*co2_budget: invalid kg=-1: expected a number > 0*",
            "*co2_budget: unknown argument(s) tonnes: accepted are kg, kwh, extrapolate, unit, region*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    "arg, message",
    [
        ("--co2-region=Atlantis", "*--co2-region: unknown region 'Atlantis'*"),
        ("--co2-pue=0", "*argument --co2-pue: invalid PUE '0'*>= 1.0*"),
        (
            "--co2-extrapolate=-5",
            "*argument --co2-extrapolate: invalid count '-5'*expected a whole number >= 1*",
        ),
        ("--co2-backend=constant:x", "*argument --co2-backend: invalid power 'x' in 'constant:x'*"),
        (
            "--co2-backend=gpu",
            "*--co2-backend: unknown backend 'gpu': expected one of auto, nvml*",
        ),
        ("--co2-month=2022-13", "*argument --co2-month: invalid month '2022-13'*"),
        ("--co2-budget-mode=maybe", "*invalid budget mode 'maybe': expected one of fail, warn*"),
        (
            "--co2-compare-fail=energy:ten",
            "*argument --co2-compare-fail: invalid --co2-compare-fail 'energy:ten': expected FIELD:PERCENT%*",
        ),
        ("--co2-compare-fail=time:10%", "*invalid --co2-compare-fail 'time:10%'*"),
        ("--co2-save=a/b", "*argument --co2-save: invalid --co2-save name 'a/b'*"),
        (
            "--co2-cpu-watts-per-thread=2,1",
            "*argument --co2-cpu-watts-per-thread: invalid watts per thread '2,1': expected*IDLE,FULL*",
        ),
        (
            "--co2-extrapolate==5",
            "*argument --co2-extrapolate: invalid unit '' in --co2-extrapolate='=5'*",
        ),
        (
            "--co2-extrapolate=sample=10,sample=20",
            "*unit 'sample' given twice in --co2-extrapolate='sample=10,sample=20'*",
        ),
        (
            "--co2-idle=1e9",
            "*invalid idle measurement time '1e9': expected a number >= 0 and <= 600*",
        ),
        ("--co2-lock-timeout=-1", "*argument --co2-lock-timeout: *-1*"),
        (
            "--co2-idle=-1",
            "*argument --co2-idle: invalid idle measurement time '-1': expected a number >= 0*",
        ),
    ],
)
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, arg: str, message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(arg)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_month_without_monthly_data_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--co2-region=SE", "--co2-month=2022-12")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no monthly data for SE*"])


def test_cli_beats_env_beats_ini(
    fake_clock_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_clock_pytester.makeini(
        "[pytest]\nco2_region = PL\nco2_pue = 1.2\nco2_backend = constant:100\n"
    )
    fake_clock_pytester.makepyfile(STEADY_TEST)
    monkeypatch.setenv("PYTEST_CO2_REGION", "DE")
    result = fake_clock_pytester.runpytest("--co2-json=r.json", "--co2-pue=1.5")
    result.assert_outcomes(passed=1)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    s = data["session"]["settings"]
    assert (s["region"], s["pue"], s["backend"]) == ("DE", 1.5, "constant:100")
    assert s["sources"] == {
        "region": "PYTEST_CO2_REGION",
        "pue": "command line",
        "backend": "ini co2_backend",
        "json": "command line",
    }
    monkeypatch.delenv("PYTEST_CO2_REGION")
    fake_clock_pytester.runpytest("--co2-json=r.json")
    assert (
        json.loads((fake_clock_pytester.path / "r.json").read_text())["session"]["settings"][
            "region"
        ]
        == "PL"
    )


def test_bad_env_and_ini_values_are_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_x(): pass")
    monkeypatch.setenv("PYTEST_CO2_PUE", "0.5")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PYTEST_CO2_PUE: invalid PUE '0.5'*"])
    monkeypatch.delenv("PYTEST_CO2_PUE")
    pytester.makeini("[pytest]\nco2_extrapolate = lots\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini co2_extrapolate: invalid count 'lots'*"])


def test_help_and_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "energy and carbon (pytest-co2): measuring:",
            "*--co2-extrapolate=N[[],UNIT=N[]]*",
            "energy and carbon (pytest-co2): carbon accounting:",
            "*--co2-region=REGION*",
            "energy and carbon (pytest-co2): reports, baselines and gates:",
            "*--co2-budget-mode=MODE*",
            "*co2_region (string):*",
        ]
    )
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.co2_budget(kg=None, kwh=None, extrapolate=None, unit=None, region=None):*"]
    )


def test_report_off_prints_no_summary(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    result = fake_clock_pytester.runpytest(*BASE, "--co2-report=off")
    result.assert_outcomes(passed=1)
    assert "co2 emissions summary" not in result.stdout.str()


def test_report_full_lists_devices(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    result = fake_clock_pytester.runpytest(*BASE, "--co2-report=full")
    result.stdout.fnmatch_lines(
        [
            "*::test_train train: 10 windows; devices: simulated device at 100 W [[]simulated[]] 50.0 J"
        ]
    )


def test_real_clock_constant_backend(pytester: pytest.Pytester) -> None:
    """Without the fake clock (a smoke test: the exact figures are the fake-clock tests').

    What the OS promises: ``sleep(0.5)`` lasts at least 0.5 s, and nothing more; the meter
    reads the clock, then the backend reads it, so the energy's interval and the duration
    both hold the sleep, and differ by two scheduling gaps, each up to ~100 ms when a busy
    runner deschedules this process (a quiet machine shows microseconds).
    """
    pytester.makepyfile(
        """
import time

def test_sleep(co2_meter):
    with co2_meter.measure("w") as m:
        time.sleep(0.5)
    energy_j, duration_s = m.measurement.energy_j, m.measurement.duration_s
    assert duration_s >= 0.5 and energy_j >= 300 * 0.5
    assert abs(energy_j - 300 * duration_s) <= 300 * 2 * 0.1
"""
    )
    pytester.runpytest("--co2-backend=constant:300").assert_outcomes(passed=1)


def test_import_is_light() -> None:
    code = (
        "import sys, pytest_co2, pytest_co2.plugin, pytest_co2.meter; "
        "heavy = {'torch', 'monai', 'pynvml', 'carbontracker'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_live_progress_on_a_terminal(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makeconftest(
        (fake_clock_pytester.path / "conftest.py").read_text()
        + """

class Yes:  # pytest's terminal reporter has a callable boolean `isatty`
    def __bool__(self):
        return True

    def __call__(self):
        return True


def pytest_sessionstart(session):
    session.config.pluginmanager.get_plugin("terminalreporter").isatty = Yes()  # pretend
"""
    )
    fake_clock_pytester.makepyfile(
        """
def test_long(co2_meter, clock):
    for _ in co2_meter.steps(6, name="train"):
        clock.advance(1.0)
"""
    )
    result = fake_clock_pytester.runpytest(*BASE)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "co2 train: 3/6 iterations, 3 s, 300 J so far" in out
    assert "co2 train: 6/6 iterations, 6 s, 600 J so far" in out
    assert "co2 train: 2/6" not in out  # nothing before 3 s
    quiet = fake_clock_pytester.runpytest(*BASE, "-q")
    assert "so far" not in quiet.stdout.str()


def test_progress_lines_in_a_ci_log(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_long(co2_meter, clock):
    for _ in co2_meter.steps(60, name="train"):
        clock.advance(1.0)
"""
    )
    out = fake_clock_pytester.runpytest(*BASE, "--co2-precision=off").stdout.str()
    lines = [x for x in out.splitlines() if x.startswith("co2 train:")]
    assert lines == [  # not a terminal: a line after 10 s, then one every 30 s
        "co2 train: 10/60 iterations, 10 s, 1,000 J so far, about 50 s left",
        "co2 train: 40/60 iterations, 40 s, 4,000 J so far, about 20 s left",
    ]
    assert "so far" not in fake_clock_pytester.runpytest(*BASE, "-q").stdout.str()


# The real clock, but the simulated energy is read at the clock's last reading: the idle
# measurement and the meter read the clock, then the backend, so energy and duration agree
# to the last bit however long a busy runner deschedules this process between the two.
LATCHED_CLOCK_CONFTEST = """
import time
from pytest_co2.backends.constant import ConstantBackend


class LatchedClock:
    def __init__(self):
        self.last = time.perf_counter()

    def __call__(self):
        self.last = time.perf_counter()
        return self.last


class Latched(ConstantBackend):
    def read_j(self):
        return ((self.clock.last - self._t0) * self.power_w,)


def pytest_co2_make_backend(config, spec):
    if spec.startswith("constant:"):
        return Latched(float(spec.split(":", 1)[1]), clock=LatchedClock())
    return None
"""


def test_idle_power_in_header_json_and_subtracted(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LATCHED_CLOCK_CONFTEST)
    pytester.makepyfile(
        """
import time

def test_sleep(co2_meter):
    with co2_meter.measure("w") as m:
        time.sleep(0.2)
    assert m.measurement.duration_s >= 0.2
    assert abs(m.measurement.energy_j) < 1e-9  # 300 W device, 300 W idle: 0 left
"""
    )
    result = pytester.runpytest(
        "--co2-backend=constant:300", "--co2-idle=0.2", "--co2-subtract-idle", "--co2-json=r.json"
    )
    result.assert_outcomes(passed=1)
    assert (
        "co2: idle power over 0.2 s at start: simulated device at 300 W [simulated] 300 W "
        "(subtracted from every measurement)"
    ) in header(result)
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["session"]["idle"]["power_w"]["sim:0"] == pytest.approx(300.0, rel=1e-9)
    notes = data["tests"][0]["measurements"][0]["notes"]
    idle = [
        re.match(r"idle power ([0-9.]+) W \(measured at start\) subtracted: ", n) for n in notes
    ]
    assert [float(m.group(1)) for m in idle if m] == [pytest.approx(300.0, rel=1e-9)]


def test_subtract_idle_needs_idle(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--co2-subtract-idle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--co2-subtract-idle needs the idle power measured first: add --co2-idle=SECONDS*"]
    )


def test_summary_lists_the_largest_and_every_test_over_budget(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(
        """
import pytest

@pytest.mark.parametrize("i", range(45))
def test_many(co2_meter, clock, i):
    with co2_meter.measure("m") as m:
        clock.advance(1.0 + i)
        m.step()

@pytest.mark.co2_budget(kwh=1e-9)
def test_tiny_but_over(co2_meter, clock):
    with co2_meter.measure("m") as m:
        clock.advance(0.001)
        m.step()
"""
    )
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(passed=45, failed=1)
    out = result.stdout.str()
    assert "test_many[44]" in out and "test_many[5]" in out  # the 40 largest: 44 down to 5
    assert "test_many[4] " not in out and "test_many[0] " not in out
    assert "test_tiny_but_over" in out  # over budget: always listed
    unwrapped(result).fnmatch_lines(
        [
            "TOTAL*46 measurements*",
            "... and 5 smaller measurements, in the total (--co2-report=full or --co2-json "
            "lists every one)",
        ]
    )
    assert len(data["tests"]) == 46
    full = fake_clock_pytester.runpytest(*BASE, "--co2-report=full")
    assert "test_many[0] " in full.stdout.str() and "smaller measurements" not in full.stdout.str()


def test_unwritable_report_is_a_usage_error_or_a_line_not_a_traceback(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(STEADY_TEST)
    result = fake_clock_pytester.runpytest(*BASE, f"--co2-json={fake_clock_pytester.path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*argument --co2-json: cannot write '*': it is a folder, expected a file name"]
    )
    # A write that fails at the end (disk full, folder gone) is reported in one line. In a
    # new process: in-process runs share module objects with earlier tests, and a package an
    # earlier test imported keeps an earlier run's submodule (the writer's ``storage``) whose
    # ``files`` is not the one a patch here would reach.
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(
        conftest.read_text()
        + "\nimport pytest_co2.files\n\n"
        + "def _full(path, text):\n    raise OSError(28, 'No space left on device')\n\n"
        + "pytest_co2.files.write_text_atomic = _full\n"
    )
    result = fake_clock_pytester.runpytest_subprocess(*BASE, "--co2-json=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["pytest-co2: could not write r.json: [[]Errno 28[]] No space left on device"]
    )
    assert "co2 report written" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


PLUGIN_BACKEND_CONFTEST = """
from pytest_co2.backends.constant import ConstantBackend


def pytest_co2_backend_names(config):
    return ["wallplug"]


def pytest_co2_make_backend(config, spec):
    if spec == "wallplug":
        backend = ConstantBackend(42.0)
        backend.name = "wallplug"
        return backend
    return None
"""


def test_a_backend_registered_by_a_conftest_hook_is_selectable(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PLUGIN_BACKEND_CONFTEST)
    pytester.makepyfile("def test_x(co2_meter):\n    with co2_meter.measure('m'):\n        pass\n")
    result = pytester.runpytest("--co2-backend=wallplug", "--co2-json=r.json")
    result.assert_outcomes(passed=1)
    assert header(result)[0].startswith("co2: backend wallplug") and "42 W" in header(result)[0]
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["tests"][0]["measurements"][0]["backend"] == "wallplug"
    assert data["session"]["settings"]["backend"] == "wallplug"
    help_text = pytester.runpytest("--help").stdout.str()
    assert (
        "one of: auto, nvml, amdsmi, rapl, estimate, carbontracker, constant:<watts>, wallplug"
        in " ".join(help_text.split())
    )
    result = pytester.runpytest("--co2-backend=wallplugg")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --co2-backend: unknown backend 'wallplugg': expected one of auto, nvml, *, wallplug*"
        ]
    )


def test_cpu_watts_per_thread_override_reaches_the_estimate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(co2_meter):\n    with co2_meter.measure('m'):\n        pass\n")
    result = pytester.runpytest(
        "--co2-backend=estimate", "--co2-cpu-watts-per-thread=0.5,2", "--co2-json=r.json"
    )
    result.assert_outcomes(passed=1)
    assert header(result)[0] == (
        "co2: backend estimate: estimated: bare metal, AMD EPYC 9654 96-Core Processor (Zen 4), "
        "user --co2-cpu-watts-per-thread: 0.50 W idle / 2.00 W full per thread, 4 threads held "
        "[estimated], process memory: in the CPU figure (SPECpower whole-server watts) "
        "[estimated]"
    )  # the fake host (tests/conftest.py), on every machine
    est = json.loads((pytester.path / "r.json").read_text())["session"]["cpu_estimate"]
    assert (est["idle_w_per_thread"], est["full_w_per_thread"]) == (0.5, 2.0)


def test_a_test_raising_inside_steps_keeps_its_own_partial_record(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_raises(co2_meter, clock):
    for k in co2_meter.steps(10, name="loop"):
        clock.advance(1.0)
        if k == 3:
            raise RuntimeError("boom")

def test_next(co2_meter, clock):
    with co2_meter.measure("next"):
        clock.advance(2.0)
"""
    )
    result = fake_clock_pytester.runpytest(*BASE, "--co2-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    by_test = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    (loop,) = by_test["test_raises"]["measurements"]
    assert (loop["name"], loop["steps"], loop["complete"], loop["energy_j"]) == (
        "loop",
        3,
        False,
        300.0,
    )
    assert (
        "partial: the test ended before this measurement did (it raised inside it)" in loop["notes"]
    )
    assert [m["name"] for m in by_test["test_next"]["measurements"]] == ["next"]
    assert by_test["test_raises"]["outcome"] == "failed"


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_the_summary_fits_the_terminal(
    fake_clock_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    fake_clock_pytester.makepyfile(
        """
import pytest

@pytest.mark.parametrize("i", range(3))
def test_a_test_with_a_rather_long_name_that_would_wrap_a_narrow_terminal(co2_meter, clock, i):
    for _ in co2_meter.steps(4, name="training loop"):
        clock.advance(0.25 * (i + 1))
"""
    )
    monkeypatch.setenv("COLUMNS", str(columns))
    result = fake_clock_pytester.runpytest(*BASE, "--co2-regions=PL,DE")
    out = result.stdout.str()
    lines = out[out.index("co2 emissions summary") :].splitlines()[1:]
    summary = lines[: next(i for i, x in enumerate(lines) if x.startswith("=="))]
    assert len(summary) >= 7 and max(len(line) for line in summary) <= columns
    result.stdout.fnmatch_lines(["*kWh*kg CO2e ± std*method*", "TOTAL*0.0417*0.000292 ± 0*"])
    if columns >= 200:  # room for every column
        result.stdout.fnmatch_lines(
            ["*method*kg PL*kg DE*measurement*projected to*steps*J/unit (mean ± std)*time s*"]
        )
    else:
        assert "J/unit" not in out  # no room: the compact columns only
        # the file and the measurement name go before the test's own name is cut
        result.stdout.fnmatch_lines(["test_a_test_with_a_rather_long_name_*2[]]  0.0208 *"])


def test_a_failed_tests_measurement_is_in_every_total(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    """One test fails after its measurement: the terminal TOTAL, the markdown total and the
    JSON totals agree, and all count it (100 + 200 + 400 J, each block one unit x 1,000)."""
    from pytest_co2.fmt import fmt_num, fmt_pm

    fake_clock_pytester.makepyfile(
        """
def test_a(co2_meter, clock):
    with co2_meter.measure("a"):
        clock.advance(1.0)

def test_fails(co2_meter, clock):
    with co2_meter.measure("f"):
        clock.advance(2.0)
    assert False, "fails after its measurement"

def test_c(co2_meter, clock):
    with co2_meter.measure("c"):
        clock.advance(4.0)
"""
    )
    result, data = run_json(fake_clock_pytester, "--co2-markdown=summary.md")
    result.assert_outcomes(passed=2, failed=1)
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in data["tests"]}
    assert outcomes == {"test_a": "passed", "test_fails": "failed", "test_c": "passed"}
    totals = data["totals"]
    kwh = 1000 * 700.0 / 3.6e6  # 0.194 kWh; without the failed test 0.139
    assert (totals["measurements"], totals["energy_j"]) == (3, 700.0)
    assert totals["energy_kwh"] == pytest.approx(kwh, rel=1e-12)
    assert totals["co2e_kg"] == pytest.approx(kwh * 7 / 1000, rel=1e-12)
    energy, co2e = fmt_num(totals["energy_kwh"]), fmt_pm(totals["co2e_kg"], totals["std_kg"])
    assert (energy, co2e) == ("0.194", "0.00136")  # one-unit blocks: no spread
    (terminal,) = [line for line in unwrapped(result).lines if line.startswith("TOTAL")]
    assert terminal.split() == ["TOTAL", energy, *co2e.split(), "3", "measurements"]
    md = (fake_clock_pytester.path / "summary.md").read_text().splitlines()
    (total_row,) = [line for line in md if line.startswith("| **total** |")]
    cells = [c.strip() for c in total_row.strip("|").split("|")]
    assert cells[:6] == ["**total**", "3 measurements", "", "", energy, co2e]


def test_windows_left_open_are_closed_at_the_end_of_their_test(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    """A steps() loop the test leaves by raising (its iterator kept in a variable, so nothing
    closes it), and a measure() block entered by hand and never exited: each is recorded,
    partial, for its own test, and the next test's measurement is its own."""
    fake_clock_pytester.makepyfile(
        """
def test_loop_left_by_raising(co2_meter, clock):
    it = co2_meter.steps(10, name="loop")
    for k in it:
        clock.advance(1.0)
        if k == 3:
            raise RuntimeError("boom")

def test_block_never_exited(co2_meter, clock):
    block = co2_meter.measure("block")
    block.__enter__()
    clock.advance(2.0)

def test_next(co2_meter, clock):
    clock.advance(8.0)  # between windows: no one's energy
    with co2_meter.measure("next"):
        clock.advance(4.0)
"""
    )
    result, data = run_json(fake_clock_pytester)
    result.assert_outcomes(passed=2, failed=1)
    records = {
        t["nodeid"].split("::")[1]: [
            (m["name"], m["steps"], m["complete"], m["energy_j"]) for m in t["measurements"]
        ]
        for t in data["tests"]
    }
    assert records == {
        "test_loop_left_by_raising": [("loop", 3, False, 300.0)],  # 3 whole steps of 4
        "test_block_never_exited": [("block", 1, False, 200.0)],
        "test_next": [("next", 1, True, 400.0)],
    }
    assert data["totals"]["energy_j"] == 900.0
