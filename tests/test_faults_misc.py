"""Regression tests for the smaller faults of the reliability battery (issue 12)."""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path

import pytest

from pytest_co2.files import write_text_atomic
from pytest_co2.reporting.model import Totals

STEADY = """
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.25)
"""
BASE = ["--co2-backend=constant:100", "--co2-region=SE", "-p", "no:cacheprovider"]


def test_a_malformed_baseline_is_a_usage_error_at_start(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    p = fake_clock_pytester
    p.makepyfile(STEADY)
    (p.path / ".co2").mkdir()
    (p.path / ".co2" / "bad.json").write_text(
        json.dumps({"schema_version": 1, "session": {}, "tests": [{"measurements": []}]})
    )
    result = p.runpytest(*BASE, "--co2-compare=bad", "--co2-compare-fail=energy:10%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: baseline '*bad.json': tests[[]0[]]: missing field 'nodeid'"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_baseline_that_cannot_be_saved_fails_the_run(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    p = fake_clock_pytester
    p.makepyfile(STEADY)
    (p.path / ".co2").write_text("a file where the folder should be")
    result = p.runpytest(*BASE, "--co2-save=main")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["pytest-co2: could not write *main.json*"])


def test_a_non_regular_report_target_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as no_reader:  # refused at once, never blocks
        write_text_atomic(fifo, "{}\n")
    assert no_reader.value.errno == errno.ENXIO
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the reader at the other end
    try:
        write_text_atomic(fifo, "{}\n")
        assert os.read(reader, 100) == b"{}\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe: not replaced by a file
    write_text_atomic("/dev/null", "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_unknown_spread_is_unknown_in_the_total() -> None:
    from test_compare import _result

    known, unknown = _result("a", 1.0, 1.0), _result("b", 1.0, 1.0)
    for r in (known, unknown):
        object.__setattr__(r.emission, "std_kg", 0.0)
    object.__setattr__(unknown.emission, "std_kg", math.nan)  # one window: spread unknown
    totals = Totals.of([known, unknown])
    assert math.isnan(totals.std_kg) and totals.to_dict()["std_kg"] is None
    assert Totals.of([known]).std_kg == 0.0  # a known zero stays zero


def test_a_budget_with_no_measurement_has_no_figure_not_a_zero() -> None:
    from pytest_co2.reporting.budget import evaluate, verdict_text
    from pytest_co2.reporting.model import Budget, BudgetVerdict

    verdict = evaluate(Budget(kg=1.0), [])
    d = verdict.to_dict()
    assert (d["energy_kwh"], d["co2e_kg"], d["passed"], d["outcome"]) == (
        None,
        None,
        False,
        "unmeasured",
    )
    assert d["message"] == "no measurement was recorded, so the budget cannot be checked"
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    back = BudgetVerdict.from_dict(d)
    assert math.isnan(back.energy_kwh) and back.outcome == "unmeasured"
    assert verdict_text(verdict, "fail") == "unmeasured"
