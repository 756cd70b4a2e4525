"""``--co2-profile``: the tree of phases, fixtures and regions, exact on a simulated 100 W
device and a fake clock (1 s = 100 J = 100,000,000 µJ), and its exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from terminal_text import unwrapped

from pytest_co2.reporting.profile import Node, Profile

BASE = ["--co2-backend=constant:100", "-p", "no:cacheprovider"]
J = 1_000_000  # µJ

TESTS = """
import pytest


@pytest.fixture
def data(clock):
    clock.advance(0.5)  # 50 J
    return 1


@pytest.fixture
def model(data, clock):
    clock.advance(2)  # 200 J
    yield data
    clock.advance(0.25)  # 25 J in the teardown


def test_a(model, co2_meter, clock):
    clock.advance(1)  # 100 J of the call itself
    with co2_meter.measure("train") as m:
        for _ in range(3):
            clock.advance(0.1)  # 30 J
            m.step()
    for _ in co2_meter.steps(2, name="eval", precision=None):
        clock.advance(0.2)  # 40 J


def test_b(clock):
    clock.advance(0.01)  # 1 J
"""


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest(*BASE, "--co2-profile=p.folded", "--co2-json=r.json", *args)
    return result, json.loads((pytester.path / "r.json").read_text())


def by_name(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in node["children"]}


def check_sums(node: dict[str, Any]) -> None:
    """A node's energy is its children's plus its own, all the way down."""
    assert node["energy_uj"] == node["self_uj"] + sum(c["energy_uj"] for c in node["children"])
    assert node["self_uj"] >= 0 and node["method"] == "simulated"
    for child in node["children"]:
        check_sums(child)


@pytest.fixture
def profiled(fake_clock_pytester: pytest.Pytester) -> tuple[pytest.RunResult, dict[str, Any]]:
    fake_clock_pytester.makepyfile(test_x=TESTS)
    result, data = run(fake_clock_pytester)
    result.assert_outcomes(passed=2)
    return result, data


def test_the_tree_nests_phases_fixtures_and_regions_with_exact_sums(
    profiled: tuple[pytest.RunResult, dict[str, Any]],
) -> None:
    _, data = profiled
    profile = data["profile"]
    assert profile["unit"] == "uJ" and profile["methods"] == ["simulated"]
    (a, b) = profile["processes"]["main"]
    assert (a["name"], a["kind"], b["name"]) == ("test_x.py::test_a", "test", "test_x.py::test_b")
    assert [c["name"] for c in a["children"]] == ["setup", "call", "teardown"]
    setup, call, teardown = (by_name(a)[p] for p in ("setup", "call", "teardown"))
    fixtures = by_name(setup)
    assert {n: f["energy_uj"] for n, f in fixtures.items()} == {
        "clock": 0,
        "data": 50 * J,
        "model": 200 * J,
        "co2_meter": 0,
    }
    assert all(f["kind"] == "fixture" and f["scope"] == "function" for f in fixtures.values())
    assert (setup["energy_uj"], setup["self_uj"]) == (250 * J, 0)
    regions = by_name(call)
    assert {n: (r["kind"], r["energy_uj"]) for n, r in regions.items()} == {
        "train": ("region", 30 * J),
        "eval": ("region", 40 * J),
    }
    assert (call["energy_uj"], call["self_uj"]) == (170 * J, 100 * J)
    assert (teardown["energy_uj"], teardown["children"]) == (25 * J, [])
    assert (a["energy_uj"], a["self_uj"]) == (445 * J, 0)
    assert by_name(b)["call"]["energy_uj"] == b["energy_uj"] == 1 * J
    assert profile["total_uj"] == 446 * J
    assert call["duration_s"] == pytest.approx(1.7, abs=1e-9)
    check_sums(a)
    check_sums(b)
    # the regions are the measurements the test recorded: the same energy
    (measured,) = [t for t in data["tests"] if t["nodeid"] == "test_x.py::test_a"]
    assert {m["name"]: round(m["energy_j"] * J) for m in measured["measurements"]} == {
        "train": 30 * J,
        "eval": 40 * J,
    }


def test_collapsed_stacks_one_line_per_node_with_its_own_energy(
    profiled: tuple[pytest.RunResult, dict[str, Any]], fake_clock_pytester: pytest.Pytester
) -> None:
    lines = (fake_clock_pytester.path / "p.folded").read_text().splitlines()
    a, b = "test_x.py::test_a", "test_x.py::test_b"
    setup = sorted(line for line in lines if line.startswith(f"{a};setup;"))
    assert setup == [
        f"{a};setup;clock 0",
        f"{a};setup;co2_meter 0",
        f"{a};setup;data 50000000",
        f"{a};setup;model 200000000",
    ]
    rest = [line for line in lines if line not in setup]
    assert rest == [
        f"{a} 0",
        f"{a};setup 0",
        f"{a};call 100000000",
        f"{a};call;[train] 30000000",
        f"{a};call;[eval] 40000000",
        f"{a};teardown 25000000",
        f"{b} 0",
        f"{b};setup 0",
        f"{b};setup;clock 0",
        f"{b};call 1000000",
        f"{b};teardown 0",
    ]
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == 446 * J


def test_speedscope_file_is_an_evented_profile_on_the_energy_axis(
    profiled: tuple[pytest.RunResult, dict[str, Any]], fake_clock_pytester: pytest.Pytester
) -> None:
    doc = json.loads((fake_clock_pytester.path / "p.speedscope.json").read_text())
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = [f["name"] for f in doc["shared"]["frames"]]
    assert len(frames) == len(set(frames))  # a fixture of two tests is one frame
    (prof,) = doc["profiles"]
    assert prof["type"] == "evented" and prof["unit"] == "none"
    assert "µJ" in prof["name"] and "simulated" in prof["name"]
    assert prof["endValue"] - prof["startValue"] == 446 * J
    stack: list[tuple[int, int]] = []
    last = prof["startValue"]
    opened: dict[str, int] = {}
    for event in prof["events"]:
        assert event["at"] >= last  # speedscope requires non-decreasing values
        last = event["at"]
        if event["type"] == "O":
            stack.append((event["frame"], event["at"]))
        else:
            frame, at = stack.pop()
            assert event["type"] == "C" and event["frame"] == frame  # balanced
            opened[frames[frame]] = opened.get(frames[frame], 0) + event["at"] - at
    assert not stack
    assert opened["model"] == 200 * J and opened["[eval]"] == 40 * J
    assert opened["call"] == 171 * J  # both tests' call phases


def test_the_top_five_by_own_energy_in_the_summary_and_the_report(
    profiled: tuple[pytest.RunResult, dict[str, Any]],
) -> None:
    result, data = profiled
    top = data["profile"]["top"]
    assert [(e["path"][-1], e["kind"], e["self_uj"]) for e in top] == [
        ("model", "fixture", 200 * J),
        ("call", "phase", 100 * J),
        ("data", "fixture", 50 * J),
        ("[eval]", "region", 40 * J),
        ("[train]", "region", 30 * J),
    ]
    assert top[0]["path"] == ["test_x.py::test_a", "setup", "model"]
    assert top[0]["method"] == "simulated"
    unwrapped(result).fnmatch_lines(
        [
            "*= co2 energy profile =*",
            "top 5 of 13 phases, fixtures and regions by their own energy (children excluded);"
            " 446 J in 2 tests (simulated)",
            "200 J 45% test_x.py::test_a > setup > model (fixture, simulated)",
            "100 J 22% test_x.py::test_a > call (phase, simulated)",
            "50 J 11% test_x.py::test_a > setup > data (fixture, simulated)",
            "40 J 9% test_x.py::test_a > call > [eval] (region, simulated)",
            "30 J 7% test_x.py::test_a > call > [train] (region, simulated)",
            "co2 profile written to p.folded and p.speedscope.json",
        ]
    )


def test_without_the_option_nothing_is_profiled(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(test_x=TESTS)
    result = fake_clock_pytester.runpytest(*BASE, "--co2-json=r.json")
    result.assert_outcomes(passed=2)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    assert "profile" not in data and data["session"]["settings"]["profile"] is None
    assert "co2 energy profile" not in result.stdout.str()
    assert not list(fake_clock_pytester.path.glob("*.folded"))


def test_without_a_value_the_default_files(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(test_x="def test_b(clock):\n    clock.advance(0.5)\n")
    result = fake_clock_pytester.runpytest(*BASE, "--co2-report=off", "test_x.py", "--co2-profile")
    result.assert_outcomes(passed=1)
    text = result.stdout.str()  # --co2-report=off: the files' names, not the top entries
    assert "co2 profile written to co2-profile.folded and co2-profile.speedscope.json" in text
    assert "phases, fixtures and regions" not in text
    folded = (fake_clock_pytester.path / "co2-profile.folded").read_text().splitlines()
    assert "test_x.py::test_b;call 50000000" in folded
    assert (fake_clock_pytester.path / "co2-profile.speedscope.json").is_file()


def test_a_folder_is_a_usage_error(fake_clock_pytester: pytest.Pytester) -> None:
    result = fake_clock_pytester.runpytest(*BASE, "--co2-profile=.")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--co2-profile*cannot write '.': it is a folder*"])


def test_a_test_file_after_the_option_is_never_overwritten(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(test_x="def test_b(clock):\n    clock.advance(0.5)\n")
    source = (fake_clock_pytester.path / "test_x.py").read_text()
    result = fake_clock_pytester.runpytest(*BASE, "--co2-profile", "test_x.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--co2-profile*'test_x.py' looks like a source or config file*--co2-profile=PATH*"]
    )
    assert (fake_clock_pytester.path / "test_x.py").read_text() == source


def test_xdist_workers_send_their_trees(fake_clock_pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    fake_clock_pytester.makepyfile(test_x=TESTS)
    result, data = run(fake_clock_pytester, "-n", "2")
    result.assert_outcomes(passed=2)
    processes = data["profile"]["processes"]
    assert sorted(processes) == ["gw0", "gw1"]
    roots = {r["name"]: r for roots in processes.values() for r in roots}
    assert {n: r["energy_uj"] for n, r in roots.items()} == {
        "test_x.py::test_a": 445 * J,
        "test_x.py::test_b": 1 * J,
    }
    doc = json.loads((fake_clock_pytester.path / "p.speedscope.json").read_text())
    assert len(doc["profiles"]) == 2


class _Provider:
    def __init__(self, backend: Any) -> None:
        self.backend = backend


class _Failing:
    """A backend whose third reading fails."""

    method = "counter"

    def __init__(self) -> None:
        self.reads = 0

    def read_j(self) -> list[float]:
        self.reads += 1
        if self.reads == 3:
            raise OSError("device lost")
        return [float(self.reads)]


def test_a_failed_reading_stops_the_profile_with_a_note() -> None:
    from pytest_co2.plugin.profile import ProfileRecorder

    profile = Profile()
    rec = ProfileRecorder(_Provider(_Failing()), profile, "main")  # type: ignore[arg-type]
    test = rec.open("t", "test")
    phase = rec.open("call", "phase")
    rec.close(phase)  # the third reading fails
    rec.close(test)
    assert rec.open("u", "test") is None  # nothing more is read
    assert profile.notes == [
        "the energy backend failed (OSError: device lost); the profile stops there"
    ]
    (root,) = profile.tests()  # what was open ends at its last reading: 2 J
    assert (root.name, root.energy_uj, root.children[0].energy_uj) == ("t", 1 * J, 0)


def test_a_node_left_open_is_closed_with_its_parent() -> None:
    from pytest_co2.plugin.profile import ProfileRecorder

    class Counter:
        method = "counter"
        reads = 0

        def read_j(self) -> list[float]:
            self.reads += 1
            return [self.reads * 1.5]

    profile = Profile()
    rec = ProfileRecorder(_Provider(Counter()), profile, "main")  # type: ignore[arg-type]
    test = rec.open("t", "test")  # 1.5 J
    rec.open("left", "region")  # 3 J, never closed
    rec.close(test)  # 4.5 J
    (root,) = profile.tests()
    assert (root.energy_uj, root.self_uj, root.children[0].energy_uj) == (
        3 * J,
        1_500_000,
        1_500_000,
    )
    assert len(profile.notes) == 1 and "still open" in profile.notes[0]


def test_a_tree_round_trips_through_its_dict() -> None:
    root = Node("t", "test", 10, "estimated", end_uj=110, duration_s=0.5)
    root.children.append(Node("f;x\n", "fixture", 20, "estimated", end_uj=60, scope="module"))
    profile = Profile()
    profile.add("gw0", [root.to_dict()])
    (back,) = profile.tests()
    assert back.to_dict() == root.to_dict()
    assert profile.collapsed() == ["t 60", "t;f,x  40"]  # ';' and control characters replaced


def test_a_report_with_a_profile_loads(
    profiled: tuple[pytest.RunResult, dict[str, Any]], fake_clock_pytester: pytest.Pytester
) -> None:
    from pytest_co2.reporting.storage import load_report

    report = load_report(Path(fake_clock_pytester.path / "r.json"))
    assert [t.nodeid for t in report.tests] == ["test_x.py::test_a"]


def test_a_file_that_cannot_be_written_is_said(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(test_x="def test_b(clock):\n    clock.advance(0.5)\n")
    (fake_clock_pytester.path / "p.speedscope.json").mkdir()
    result = fake_clock_pytester.runpytest(*BASE, "--co2-profile=p.folded")
    assert result.ret == pytest.ExitCode.OK
    unwrapped(result).fnmatch_lines(
        [
            "co2 profile written to p.folded",
            "co2: could not write the profile to p.speedscope.json: *",
        ]
    )
    assert (fake_clock_pytester.path / "p.folded").read_text() == (
        "test_x.py::test_b 0\ntest_x.py::test_b;setup 0\ntest_x.py::test_b;setup;clock 0\n"
        "test_x.py::test_b;call 50000000\ntest_x.py::test_b;teardown 0\n"
    )
