"""pytest-xdist: workers measure, the controller reports every test once (exact numbers).

pytest serializes a test report as its ``__dict__`` and rebuilds it with the extra keys as
attributes, so the ``co2_entries`` / ``co2_budget`` a worker puts on its reports reach the
controller unchanged; the first test checks that mechanism directly, the others end to end.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from terminal_text import unwrapped

pytest.importorskip("xdist")

BASE = [
    "--co2-backend=constant:100",
    "--co2-pue=1",
    "--co2-region=SE",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
]

# Steps of k/8 s on a clock that starts at 1000.0 are exact in binary floating point, so
# 100 W gives exactly 12.5 J x k.
TWENTY_TESTS = """
import pytest

@pytest.mark.parametrize("k", range(1, 19))
def test_measured(co2_meter, clock, k):
    with co2_meter.measure("work") as m:
        clock.advance(0.125 * k)
        m.step()

@pytest.mark.co2_budget(kwh=19 * 12.5 / 3.6e6 * 0.999)
def test_over_budget(co2_meter, clock):
    with co2_meter.measure("work"):
        clock.advance(0.125 * 19)

@pytest.mark.co2_budget(kwh=20 * 12.5 / 3.6e6 * 1.001)
def test_within_budget(co2_meter, clock):
    with co2_meter.measure("work"):
        clock.advance(0.125 * 20)
"""


def test_report_serialization_carries_co2_attributes() -> None:
    """The transport xdist uses (TestReport._to_json/_from_json, then execnet) keeps them."""
    from _pytest.reports import TestReport

    entries = [
        {
            "name": "train",
            "energy_j": 12.5,
            "devices": [{"id": "sim:0", "shared": False}],
            "std": None,
        }
    ]
    budget = {"kg": 1.0, "passed": True, "message": None}
    report = TestReport(
        "t.py::test_x",
        ("t.py", 1, "test_x"),
        {},
        "passed",
        None,
        "call",
        user_properties=[("co2e_kg", 1e-6)],
    )
    report.co2_entries = entries
    report.co2_budget = budget
    data = report._to_json()
    execnet = pytest.importorskip("execnet")
    data = execnet.loads(execnet.dumps(data))  # what crosses the worker -> controller channel
    back = TestReport._from_json(data)
    assert back.co2_entries == entries and back.co2_budget == budget
    assert [tuple(p) for p in back.user_properties] == [("co2e_kg", 1e-6)]


def test_twenty_tests_on_two_workers(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(TWENTY_TESTS)
    result = fake_clock_pytester.runpytest(
        *BASE, "-n", "2", "--co2-json=r.json", "--junitxml=junit.xml", "-rf", "--co2-report=full"
    )
    result.assert_outcomes(passed=19, failed=1)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    ids = [t["nodeid"] for t in data["tests"]]
    assert len(ids) == 20 and len(set(ids)) == 20
    energies = {t["nodeid"]: t["measurements"][0]["energy_j"] for t in data["tests"]}
    expected = {
        f"test_twenty_tests_on_two_workers.py::test_measured[{k}]": 12.5 * k for k in range(1, 19)
    }
    expected["test_twenty_tests_on_two_workers.py::test_over_budget"] = 12.5 * 19
    expected["test_twenty_tests_on_two_workers.py::test_within_budget"] = 12.5 * 20
    assert energies == expected  # exact
    assert data["totals"]["measurements"] == 20
    assert data["totals"]["energy_j"] == 12.5 * 210 == sum(energies.values())
    assert data["session"]["xdist_workers"] == 2
    assert data["session"]["exclusive"]["mode"] == "not needed"  # simulated: not shared
    by_id = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    assert by_id["test_over_budget"]["outcome"] == "failed"
    assert by_id["test_over_budget"]["budget"]["passed"] is False
    assert by_id["test_within_budget"]["budget"]["passed"] is True

    out = result.stdout.str()
    summary = out[out.index("co2 emissions summary") : out.index("TOTAL")]
    for nodeid in expected:
        assert summary.count(nodeid + " ") == 1, nodeid
    unwrapped(result).fnmatch_lines(
        [
            "*_ test_over_budget _*",
            "projected 6.6e-5 kWh for 1 iteration in SE exceeds the budget of 6.59062e-05 kWh*",
            "*co2 emissions summary*",
            "TOTAL*20 measurements*",
        ]
    )

    # JUnit XML: per-test properties, carried from the workers as user_properties
    root = ET.parse(fake_clock_pytester.path / "junit.xml").getroot()
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in root.iter("testcase")
    }
    assert len(props) == 20
    p3 = props["test_measured[3]"]
    assert float(p3["energy_kwh"]) == 37.5 / 3.6e6
    assert float(p3["co2e_kg"]) == pytest.approx(37.5 / 3.6e6 * 7 / 1000, rel=1e-12)
    assert p3["method"] == "simulated"


def test_budget_fails_the_same_without_xdist(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(TWENTY_TESTS)
    result = fake_clock_pytester.runpytest(*BASE, "--co2-json=r.json")
    result.assert_outcomes(passed=19, failed=1)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    assert data["totals"]["energy_j"] == 12.5 * 210
    assert data["session"]["xdist_workers"] is None


# The backend's energy is read at its clock's last reading (the real clock): the idle
# measurement reads the clock, then the backend, so its 10 W is exact however long a busy
# runner paused the worker between the two.
OPEN_RECORDING_CONFTEST = """
import os
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
    role = "worker" if hasattr(config, "workerinput") else "controller"
    with open(os.path.join(str(config.rootpath), f"opened-{role}-{os.getpid()}"), "w"):
        pass
    return Latched(10.0, clock=LatchedClock())
"""


def test_the_xdist_controller_never_opens_a_backend(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OPEN_RECORDING_CONFTEST)
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.parametrize('k', range(4))\n"
        "def test_x(co2_meter, k):\n    with co2_meter.measure('m'):\n        pass\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "80")
        result = pytester.runpytest(
            "-n", "2", "--co2-backend=constant:10", "--co2-json=r.json", "--co2-idle=0.01"
        )
    result.assert_outcomes(passed=4)
    assert [line for line in result.outlines if line.startswith("co2") and len(line) > 80] == []
    opened = sorted(p.name.split("-")[1] for p in pytester.path.glob("opened-*"))
    assert opened == ["worker", "worker"]  # one backend per worker, none in the controller
    unwrapped(result).fnmatch_lines(
        [
            "co2: backend constant:10, opened by each pytest-xdist worker*",
            "co2: workers measured with constant*",
        ]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    workers = data["session"]["workers"]
    assert sorted(workers) == ["gw0", "gw1"]
    assert [w["idle_w"] for w in workers.values()] == [{"sim:0": pytest.approx(10.0, rel=1e-9)}] * 2
