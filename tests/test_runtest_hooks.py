"""The per-test hooks are registered only once some test measures: a suite that does not
use the plugin pays nothing per test, and a meter asked for at run time still measures."""

from __future__ import annotations

import json

import pytest

BASE = ["--co2-backend=constant:100", "--co2-json=r.json", "-p", "no:cacheprovider"]

PROBE = """
import pytest

def pytest_sessionfinish(session):
    registered = session.config.pluginmanager.has_plugin("pytest-co2-runtest")
    session.config.rootpath.joinpath("registered.txt").write_text(str(registered))
"""


def _registered(pytester: pytest.Pytester) -> str:
    return (pytester.path / "registered.txt").read_text()


def test_a_suite_that_measures_nothing_registers_no_per_test_hooks(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + PROBE)
    fake_clock_pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    fake_clock_pytester.runpytest(*BASE).assert_outcomes(passed=2)
    assert _registered(fake_clock_pytester) == "False"
    assert json.loads((fake_clock_pytester.path / "r.json").read_text())["tests"] == []
    fake_clock_pytester.runpytest(*BASE, "--co2-all").assert_outcomes(passed=2)
    assert _registered(fake_clock_pytester) == "True"


def test_a_budget_or_the_fixture_registers_them(fake_clock_pytester: pytest.Pytester) -> None:
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + PROBE)
    fake_clock_pytester.makepyfile(
        """
import pytest

def test_plain():
    pass

@pytest.mark.co2_budget(kg=1.0)
def test_budget(clock):
    clock.advance(2.0)
"""
    )
    fake_clock_pytester.runpytest(*BASE).assert_outcomes(passed=2)
    assert _registered(fake_clock_pytester) == "True"
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    assert [t["nodeid"] for t in data["tests"]] == [
        "test_a_budget_or_the_fixture_registers_them.py::test_budget"
    ]
    assert data["tests"][0]["measurements"][0]["energy_j"] == 200.0


def test_a_meter_asked_for_at_run_time_measures(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        """
def test_plain():
    pass

def test_dynamic(request, clock):
    meter = request.getfixturevalue("co2_meter")
    with meter.measure("late", unit="sample"):
        clock.advance(1.5)
"""
    )
    fake_clock_pytester.runpytest(*BASE).assert_outcomes(passed=2)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    (test,) = data["tests"]
    assert test["nodeid"].endswith("::test_dynamic")
    assert [(m["name"], m["energy_j"]) for m in test["measurements"]] == [("late", 150.0)]
