"""Gates that decide with the uncertainty they measured: the stopping rule of steps(), the
three outcomes of a baseline comparison and of a budget. Simulated device, fake clock:
every figure is exact."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from pytest_co2.backends.constant import ConstantBackend
from pytest_co2.meter import Meter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def meter(**kw: object) -> tuple[Meter, Clock]:
    clock = Clock()
    return Meter(ConstantBackend(100.0, clock=clock), sync=lambda: None, **kw), clock  # type: ignore[arg-type]


def run_steps(m: Meter, clock: Clock, durations: object, n: int, **kw: object) -> object:
    it = iter(durations)  # type: ignore[call-overload]
    for _ in m.steps(n, **kw):  # type: ignore[arg-type]
        clock.t += next(it)
    return m.measurements[-1]


def test_without_a_precision_exactly_n_steps() -> None:
    m, clock = meter()
    rec = run_steps(m, clock, itertools.cycle([0.09, 0.11]), 4)
    assert rec.steps == 4  # type: ignore[attr-defined]


def test_precision_goes_on_until_the_interval_is_tight() -> None:
    m, clock = meter(precision=0.05, max_time_s=100.0)
    # per-step energy alternates 9 J / 11 J (+-10%): 4 steps are not enough for +-5%
    rec = run_steps(m, clock, itertools.cycle([0.09, 0.11]), 4)
    assert rec.steps == 44  # type: ignore[attr-defined]
    note = [n for n in rec.notes if n.startswith("precision reached")]  # type: ignore[attr-defined]
    assert note == ["precision reached: 95% CI ±5.0% of the trimmed mean after 44 windows"]


def test_the_time_cap_ends_a_noisy_measurement_and_says_so() -> None:
    m, clock = meter(precision=0.01, max_time_s=2.0)
    rec = run_steps(m, clock, itertools.cycle([0.05, 0.15, 0.10, 0.30]), 2)
    assert rec.duration_s == pytest.approx(2.0) and rec.steps == 14  # type: ignore[attr-defined]
    (note,) = [n for n in rec.notes if n.startswith("time cap")]  # type: ignore[attr-defined]
    assert note.startswith("time cap 2 s reached at ±") and note.endswith("(target ±1.0%)")


def test_identical_windows_stop_at_n() -> None:
    m, clock = meter(precision=0.05)
    rec = run_steps(m, clock, itertools.cycle([0.1]), 3)
    assert rec.steps == 3 and "no spread: 3 identical windows" in rec.notes  # type: ignore[attr-defined]


def test_time_budget_is_the_cap_of_the_precision_loop() -> None:
    m, clock = meter(precision=0.001)
    rec = run_steps(m, clock, itertools.cycle([0.2, 0.3]), 2, time_budget_s=1.0)
    assert rec.steps == 4 and rec.duration_s == pytest.approx(1.0)  # type: ignore[attr-defined]


BUDGET_TEST = """
import itertools, pytest

@pytest.mark.co2_budget(kwh=BUDGET, extrapolate=1000)
def test_train(co2_meter, clock):
    durations = itertools.cycle([0.09, 0.11])
    for _ in co2_meter.steps(6):
        clock.advance(next(durations))
"""


@pytest.mark.parametrize(
    "budget_kwh, outcome",
    [(0.0024, "over"), (0.0028, "close"), (0.0032, "under")],
)
def test_budget_verdicts_with_the_interval(
    fake_clock_pytester: pytest.Pytester, budget_kwh: float, outcome: str
) -> None:
    # 9 J / 11 J per iteration over 6 windows: 1,000 iterations = 0.00278 kWh, std 1.095 J,
    # 95% interval +- 2.571 x 1.095 / sqrt(6) J = 0.00246 to 0.00310 kWh: 0.0024 is below
    # it, 0.0028 inside, 0.0032 above
    fake_clock_pytester.makepyfile(BUDGET_TEST.replace("BUDGET", repr(budget_kwh)))
    result = fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-region=SE", "--co2-pue=1", "--co2-precision=off",
        "--co2-json=r.json", "-p", "no:cacheprovider",
    )  # fmt: skip
    verdict = json.loads((fake_clock_pytester.path / "r.json").read_text())["tests"][0]["budget"]
    assert verdict["outcome"] == outcome
    if outcome == "over":
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*projected 0.00278 +- 0.000304 kWh for 1,000 iterations in SE exceeds the budget of "
             "0.0024 kWh (1.94e-5 kg CO2e, simulated); 95% interval 0.00246 to 0.00310"]
        )  # fmt: skip
    elif outcome == "close":
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(
            ["*Co2BudgetWarning: too close to call: projected 0.00278 kWh for 1,000 iterations in "
             "SE has a 95% interval of 0.00246 to 0.00310, which holds the budget of 0.0028 kWh "
             "(simulated); measure more precisely (--co2-precision) to decide",
             "*test_train*too close*"]
        )  # fmt: skip
    else:
        result.assert_outcomes(passed=1)
        assert verdict["passed"] is True and verdict["message"] is None


COMPARE_TEST = """
import itertools, pathlib

def test_train(co2_meter, clock):
    factor = float(pathlib.Path("factor.txt").read_text())
    durations = itertools.cycle(DURATIONS)
    for _ in co2_meter.steps(8):
        clock.advance(factor * next(durations))
"""


def compare_run(
    p: pytest.Pytester, factor: float, durations: list[float], *args: str
) -> pytest.RunResult:
    (p.path / "factor.txt").write_text(repr(factor))
    p.makepyfile(COMPARE_TEST.replace("DURATIONS", repr(durations)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "160")
        return p.runpytest(
            "--co2-backend=constant:100", "--co2-precision=off", "-p", "no:cacheprovider", *args
        )


def test_three_compare_outcomes(fake_clock_pytester: pytest.Pytester) -> None:
    quiet = [0.099, 0.101]  # +-1% per window: a 12% change is a confident regression
    noisy = [0.06, 0.14]  # +-40%: the same change cannot be told from noise
    p = fake_clock_pytester
    compare_run(p, 1.0, quiet, "--co2-save=quiet").assert_outcomes(passed=1)
    r = compare_run(p, 1.12, quiet, "--co2-compare=quiet", "--co2-compare-fail=energy:10%")
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    # the default measurement is not named; the run's last line says what failed it
    assert r.outlines[-1].startswith("co2: FAILED: 1 regression (test_train +12.0%, 95% +")
    r = compare_run(p, 1.02, quiet, "--co2-compare=quiet", "--co2-compare-fail=energy:10%")
    assert r.ret == pytest.ExitCode.OK
    r.stdout.fnmatch_lines(["*test_train*+2.0%*no regression, 95% +*"])

    compare_run(p, 1.0, noisy, "--co2-save=noisy").assert_outcomes(passed=1)
    r = compare_run(
        p, 1.12, noisy, "--co2-compare=noisy", "--co2-compare-fail=energy:10%", "--co2-json=r.json"
    )
    assert r.ret == pytest.ExitCode.OK  # inconclusive: a warning, not a failure
    r.stdout.fnmatch_lines(["co2 inconclusive (warning): *test_train*"])
    assert "co2: FAILED" not in r.stdout.str()
    (line,) = json.loads((p.path / "r.json").read_text())["comparison"]["inconclusive"]
    assert line.startswith(
        "test_three_compare_outcomes.py::test_train: energy 2.22e-5 -> 2.49e-5 kWh is too noisy "
        "to judge against --co2-compare-fail=energy:10%: inconclusive: +12.0% (95% "
    )
    assert re.search(r"; to decide, measure both runs to ±\S+% \(--co2-precision=\S+%, ", line)
    r = compare_run(
        p,
        1.12,
        noisy,
        "--co2-compare=noisy",
        "--co2-compare-fail=energy:10%",
        "--co2-compare-strict",
    )
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    assert r.outlines[-1] == "co2: FAILED: 1 too noisy to judge (--co2-compare-strict)"


@pytest.mark.parametrize("bad", ["0", "150%", "abc", "-3%"])
def test_bad_precision_is_a_usage_error(pytester: pytest.Pytester, bad: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"--co2-precision={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*argument --co2-precision: invalid --co2-precision '{bad}': expected the 95% interval's"
         " half-width relative to the mean, between 0 and 100% exclusive, e.g. 3% or 0.03*"]
    )  # fmt: skip
