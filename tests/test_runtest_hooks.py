"""The per-test hooks are registered only once some test measures: a suite that does not
use the plugin pays nothing per test, and a meter asked for at run time still measures."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_co2.backends.base import Backend, Device, Method
from pytest_co2.carbon.accounting import Accounting
from pytest_co2.measure.assemble import Readings, assemble, plain_energy
from pytest_co2.measure.window import Window
from pytest_co2.options import Settings
from pytest_co2.plugin.collector import Collector
from pytest_co2.plugin.fixture import Co2Meter
from pytest_co2.reporting.model import TestRecord, Totals, all_results, ranked
from pytest_co2.reporting.terminal import SummaryRow, listed_rows, render_summary

BASE = ["--co2-backend=constant:100", "--co2-json=r.json", "-p", "no:cacheprovider"]
#: --co2-all, in the order of the file, without a report file
ALL_ARGS = [
    "--co2-backend=constant:100",
    "--co2-all",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
]

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


def test_a_run_that_measures_nothing_imports_no_measuring_or_report_module(
    pytester: pytest.Pytester,
) -> None:
    """From start to its last hook, a run whose tests measure nothing (the plugin loaded, no
    output asked for) imports nothing to measure or report with: its cost is the options'."""
    pytester.makeconftest(
        """
import sys

def pytest_unconfigure(config):
    prefixes = tuple(f"pytest_co2.{p}" for p in ("backends", "measure", "reporting", "carbon"))
    names = sorted(m for m in sys.modules if m.startswith(prefixes))
    config.rootpath.joinpath("modules.txt").write_text(" ".join(names))
"""
    )
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "modules.txt").read_text() == ""


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


def test_a_budget_marker_added_after_collection_is_judged(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    """Under --co2-all the items without a budget are noted when collected; a budget a
    fixture adds to its test (``request.applymarker``) or a later hook adds is still found."""
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(
        conftest.read_text()
        + """
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "test_hook":
            item.add_marker(pytest.mark.co2_budget(kwh=1e-9))

@pytest.fixture
def tight(request):
    request.applymarker(pytest.mark.co2_budget(kwh=1e-9))
"""
    )
    fake_clock_pytester.makepyfile(
        """
def test_fixture(tight, clock):
    clock.advance(1.0)

def test_hook(clock):
    clock.advance(1.0)

def test_free(clock):
    clock.advance(1.0)
"""
    )
    result = fake_clock_pytester.runpytest(*BASE, "--co2-all")
    result.assert_outcomes(passed=1, failed=2)
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    verdicts = {t["nodeid"].split("::")[1]: (t["outcome"], t["budget"]) for t in data["tests"]}
    assert {k: (o, b is not None and b["passed"]) for k, (o, b) in verdicts.items()} == {
        "test_fixture": ("failed", False),
        "test_hook": ("failed", False),
        "test_free": ("passed", False),
    }
    assert verdicts["test_free"][1] is None


CALLS = """
from conftest import CLOCK

def test_a():
    CLOCK.advance(1.0)

def test_b():
    CLOCK.advance(2.0)
    raise AssertionError("boom")

def test_c():
    CLOCK.advance(0.5)
"""

DUMP = """
import json
from pytest_co2.plugin import STATE_KEY


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        with open("seen.jsonl", "a") as f:
            f.write(json.dumps([report.nodeid, report.user_properties]) + "\\n")


def pytest_sessionfinish(session):
    unsettled = session.config.stash[STATE_KEY].collector.unsettled  # before the report reads
    session.config.rootpath.joinpath("unsettled.txt").write_text(str(unsettled))


def pytest_co2_update_json(config, report):
    config.rootpath.joinpath("dumped.json").write_text(json.dumps(report["tests"]))
"""


def _run(pytester: pytest.Pytester, *args: str) -> tuple[list, int, list]:
    for name in ("seen.jsonl", "dumped.json", "unsettled.txt"):
        (pytester.path / name).unlink(missing_ok=True)
    pytester.runpytest(*BASE[:1], "-p", "no:cacheprovider", "--co2-all", *args).assert_outcomes(
        passed=2, failed=1
    )
    seen = [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]
    return (
        json.loads((pytester.path / "dumped.json").read_text()),
        int((pytester.path / "unsettled.txt").read_text()),
        [props for _, props in seen],
    )


def test_co2_all_defers_the_records_and_they_come_out_the_same(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    """Under --co2-all a test without a budget or the fixture pays two backend reads: its
    record is assembled when the report reads it. With a journal (--co2-json) each record is
    made when its test ends. Both give the same records."""
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + DUMP)
    fake_clock_pytester.makepyfile(CALLS)
    at_once, unsettled, props = _run(fake_clock_pytester, "--co2-json=r.json")
    assert unsettled == 0
    assert props == [[], [], []]  # no JUnit properties without --junitxml
    deferred, unsettled, props = _run(fake_clock_pytester, "--co2-markdown=r.md")
    assert unsettled == 3  # every call window waited for the report
    assert deferred == at_once
    rows = [
        (t["nodeid"].split("::")[1], t["outcome"], m["name"], m["energy_j"], m["complete"])
        for t in deferred
        for m in t["measurements"]
    ]
    assert rows == [
        ("test_a", "passed", "call", 100.0, True),
        ("test_b", "failed", "call", 200.0, False),
        ("test_c", "passed", "call", 50.0, True),
    ]
    assert any(n.startswith("incomplete: ") for n in deferred[1]["measurements"][0]["notes"])
    assert props == [[], [], []]  # no JUnit properties without --junitxml


def test_a_summary_without_report_files_lists_the_same_rows_and_total(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    """45 deferred call windows: without a report file the summary lists 40 rows from their
    figures and makes no record; with one every record is made first. The table is the same."""
    tests = "\n".join(
        f"def test_{i}(clock):\n    clock.advance({(7 * i) % 45 + 1} / 100)\n" for i in range(45)
    )
    fake_clock_pytester.makepyfile(tests)
    args = ALL_ARGS

    def table(result: pytest.RunResult) -> list[str]:
        lines = result.outlines
        start = next(i for i, line in enumerate(lines) if line.startswith("test "))
        end = next(i for i, line in enumerate(lines) if line.startswith("TOTAL"))
        return lines[start : end + 1]

    lazy = fake_clock_pytester.runpytest(*args)
    lazy.assert_outcomes(passed=45)
    made = fake_clock_pytester.runpytest(*args, "--co2-json=r.json")
    made.assert_outcomes(passed=45)
    assert table(lazy) == table(made)
    assert len(table(lazy)) == 2 + 40 + 1  # header, rule, 40 rows, TOTAL
    for result in (lazy, made):
        assert any(line.startswith("... and 5 smaller measurements") for line in result.outlines)
    totals = json.loads((fake_clock_pytester.path / "r.json").read_text())["totals"]
    assert totals["measurements"] == 45 and totals["energy_j"] == pytest.approx(100 * 10.35)


def test_junit_properties_are_made_with_junitxml(fake_clock_pytester: pytest.Pytester) -> None:
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + DUMP)
    fake_clock_pytester.makepyfile(CALLS)
    _, unsettled, props = _run(fake_clock_pytester, "--co2-markdown=r.md", "--junitxml=j.xml")
    assert unsettled == 0  # each test's record is made at once, for its properties
    assert [[(k, v) for k, v in p if k == "energy_kwh"] for p in props] == [
        [("energy_kwh", 100.0 / 3.6e6)],
        [("energy_kwh", 200.0 / 3.6e6)],
        [("energy_kwh", 50.0 / 3.6e6)],
    ]


class AssertionRewritingHook:
    """A stand-in for pytest's hook: the same class name and private attributes."""

    def __init__(self) -> None:
        self._must_rewrite = {"pytest_co2", "other_plugin"}
        self._marked_for_rewrite_cache = {"pytest_co2.measure": True, "other_plugin.x": True}


def test_the_plugin_package_is_taken_off_the_rewrite_list_and_nothing_else() -> None:
    from pytest_co2.plugin import skip_assertion_rewriting

    hook = AssertionRewritingHook()
    lookalike = type("OtherFinder", (), {})()
    lookalike._must_rewrite = {"pytest_co2"}  # type: ignore[attr-defined]
    skip_assertion_rewriting([object(), lookalike, hook])
    assert hook._must_rewrite == {"other_plugin"}
    assert hook._marked_for_rewrite_cache == {}  # looked up again, without the package
    assert lookalike._must_rewrite == {"pytest_co2"}  # type: ignore[attr-defined]


def test_the_plugins_modules_load_without_pytests_rewrite_hook(pytester: pytest.Pytester) -> None:
    """End to end, in a new process, installed as a wheel installs it (a ``pytest11`` entry
    point in a distribution that lists ``pytest_co2/``: pytest marks the package for
    rewriting; an editable install lists no package): the modules the first measured test
    imports still load through Python's own loader."""
    dist_info = pytester.mkdir("pytest_co2-0.1.0.dist-info")
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-co2\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[pytest11]\nco2 = pytest_co2.plugin\n")
    (dist_info / "RECORD").write_text("pytest_co2/__init__.py,,\npytest_co2/plugin/__init__.py,,\n")
    pytester.makepyfile(
        """
import sys

def test_first():
    pass

def test_loaders():
    window = sys.modules["pytest_co2.measure.window"]
    rewriters = [f for f in sys.meta_path if type(f).__name__ == "AssertionRewritingHook"]
    assert rewriters, "no rewrite hook: the test proves nothing"
    assert type(window.__loader__).__name__ == "SourceFileLoader"
"""
    )
    result = pytester.runpytest_subprocess(
        "--co2-all", "--co2-backend=constant:1", "-p", "no:randomly", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)


def test_the_header_waits_for_a_test_that_measures(fake_clock_pytester: pytest.Pytester) -> None:
    """Without --co2-all the header is shown after collection, and only if a test measures:
    a suite that does not use the plugin opens no backend for it. (The files' names are this
    test's own: an in-process run would find the suite's test_meter module.)"""
    p = fake_clock_pytester
    p.makepyfile(test_hdr_plain="def test_a():\n    pass\n")
    p.makepyfile(
        test_hdr_meter="def test_m(co2_meter):\n    with co2_meter.measure('m'):\n        pass\n"
    )
    plain = p.runpytest("--co2-backend=constant:100", "-p", "no:cacheprovider", "test_hdr_plain.py")
    plain.assert_outcomes(passed=1)
    assert not [line for line in plain.outlines if line.startswith("co2")]
    both = p.runpytest("--co2-backend=constant:100", "-p", "no:cacheprovider")
    both.assert_outcomes(passed=2)
    collected = both.outlines.index("collected 2 items")
    assert both.outlines[collected + 1].startswith("co2: backend constant")
    assert not [line for line in both.outlines[:collected] if line.startswith("co2")]
    early = p.runpytest("--co2-backend=constant:100", "-p", "no:cacheprovider", "--co2-all")
    early.assert_outcomes(passed=2)
    assert early.outlines.index("collected 2 items") > next(
        i for i, line in enumerate(early.outlines) if line.startswith("co2: backend constant")
    )


MARKED_PROBE = """
import pytest
from pytest_co2.plugin.runtest import marked

def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "test_late":
            item.add_marker(pytest.mark.co2_budget(kwh=1.0))

def pytest_collection_finish(session):
    items = session.items
    got = marked(items, "co2_budget")
    want = [i.get_closest_marker("co2_budget") is not None for i in items]
    rows = [f"{i.name} {g} {w}" for i, g, w in zip(items, got, want)]
    session.config.rootpath.joinpath("marked.txt").write_text("\\n".join(rows))
"""


def test_marked_items_are_those_with_the_marker_on_them_or_a_parent(
    pytester: pytest.Pytester,
) -> None:
    """``marked`` looks at each parent chain once: the same answers as
    ``get_closest_marker`` for markers on a module, a class, a function, a parameter and
    one a plugin adds."""
    pytester.makeconftest(MARKED_PROBE)
    pytester.makepyfile(
        test_module="""
        import pytest
        pytestmark = pytest.mark.co2_budget(kwh=1.0)

        def test_in_marked_module():
            pass
        """,
        test_other="""
        import pytest

        @pytest.mark.co2_budget(kwh=1.0)
        class TestMarked:
            def test_in_class(self):
                pass

        class TestPlain:
            def test_plain_in_class(self):
                pass

        @pytest.mark.co2_budget(kwh=1.0)
        def test_function():
            pass

        @pytest.mark.parametrize("x", [1, pytest.param(2, marks=pytest.mark.co2_budget(kwh=1.0))])
        def test_param(x):
            pass

        def test_late():
            pass

        def test_plain():
            pass
        """,
    )
    pytester.runpytest("--collect-only", "-q")
    rows = (pytester.path / "marked.txt").read_text().splitlines()
    assert sorted(rows) == [
        "test_function True True",
        "test_in_class True True",
        "test_in_marked_module True True",
        "test_late True True",
        "test_param[1] False False",
        "test_param[2] True True",
        "test_plain False False",
        "test_plain_in_class False False",
    ]


# -- the summary of deferred windows: their rows from their figures, their records not made ---


class Scripted(Backend):
    """Devices whose cumulative readings and clock are given, a reading per window edge."""

    name = "scripted"

    def __init__(self, devices: int) -> None:
        super().__init__()
        self.t, self.reading = 0.0, (0.0,) * devices
        self.devices = tuple(
            Device(f"sim:{i}", "simulated", f"device {i}", Method.SIMULATED) for i in range(devices)
        )

    def clock(self) -> float:
        return self.t

    def read_j(self) -> Sequence[float]:
        return self.reading


def _meter(backend: Backend, settings: Settings, **kw: Any) -> Co2Meter:
    accounting = Accounting(settings.region, pue=settings.pue, whatif_regions=settings.regions)
    return Co2Meter(backend, accounting, settings, **kw)


def _deferred(meter: Co2Meter, edges: Sequence[tuple[float, Sequence[float]]], units: float = 1):
    """A closed, deferred call window read at ``edges``: (time, readings) at its start and
    end; ``units``: one step() of that many units, else the block is one unit."""
    backend = meter.backend
    assert isinstance(backend, Scripted)
    window = Window(meter, "call", "call", 0, None, None)
    window.deferred = True
    (backend.t, backend.reading), end = edges
    with window:
        backend.t, backend.reading = end
        if units != 1:
            window.step(units)
    return window


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (an unknown spread)."""
    return repr(a) == repr(b)


readings = st.lists(st.floats(0, 1e6, allow_subnormal=False), min_size=1, max_size=3)


@given(
    start=readings,
    rises=st.lists(st.floats(-1.0, 1e4, allow_subnormal=False), min_size=3, max_size=3),
    t0=st.floats(0, 1e5),
    duration_s=st.floats(0, 1e3),
    units=st.sampled_from([1, 2.5, 64]),
    extrapolate=st.sampled_from([{}, {"call": 150_000}, {"iteration": 7}]),
    pue=st.sampled_from([1.0, 1.58]),
    idle=st.booleans(),
)
def test_a_deferred_windows_numbers_are_those_of_its_record(
    start: list[float],
    rises: list[float],
    t0: float,
    duration_s: float,
    units: float,
    extrapolate: dict[str, int],
    pue: float,
    idle: bool,
) -> None:
    """The summary ranks and totals deferred windows by ``numbers_of``, without their records:
    the very figures of the record made from them (or None: the record is made)."""
    settings = Settings(region="SE", pue=pue, extrapolate=extrapolate, regions=["DE", "FR"])
    backend = Scripted(len(start))
    meter = _meter(backend, settings, idle_w=[0.5] * len(start) if idle else None)
    end = tuple(a + b for a, b in zip(start, rises, strict=False))
    window = _deferred(meter, [(t0, tuple(start)), (t0 + duration_s, end)], units)
    assert window.ended is not None
    (numbers,) = meter.numbers_of([window.ended])
    plain = not idle and all(b >= a for a, b in zip(start, end, strict=True))
    assert (numbers is not None) == plain
    m = assemble(window.ended)
    if numbers is not None:
        assert _same(numbers, meter.result_of(m).numbers())
        test = TestRecord("test_x.py::test_a")  # and its summary row, without the record
        row = meter.summary_row(test, window.ended, numbers)
        assert repr(row) == repr(SummaryRow.of(test, meter.result_of(m)))  # every field


INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    "first, last, plain",
    [
        ((1.0, 2.0), (3.0, 2.0), True),
        ((0.0, 0.0), (0.0, 0.0), True),
        ((1.0, 2.0), (0.5, 3.0), False),  # a counter went down: assemble freezes it
        ((1.0, NAN), (2.0, NAN), False),
        ((1.0, 2.0), (INF, 3.0), False),
        ((1.0, INF), (2.0, INF), False),
        ((-INF, 2.0), (INF, 3.0), False),
        ((1e308, 1e308), (1.5e308, 1.5e308), False),  # too large to sum: the record is made
        ((1.0,), (2.0, 3.0), False),
    ],
)
def test_only_finite_readings_that_go_up_are_plain(
    first: tuple[float, ...], last: tuple[float, ...], plain: bool
) -> None:
    """A deferred window's figures are worked out without its record only where they are
    assemble's exactly: every reading finite and none going down; else None (made)."""
    backend = Scripted(len(last))
    readings = Readings(
        "call", "call", 0, 0, None, (10.0, 12.5), (first, last), (1,), None, None, None, None,
        backend.devices, (), None, True, (), False, backend,
    )  # fmt: skip
    got = plain_energy(readings)
    assert (got is not None) == plain
    if got is not None:
        assert got == (2.5, math.fsum(last) - math.fsum(first), 1.0)
        assert got[1] == assemble(readings).energy_j


def _collector_with(energies_j: Sequence[float], per_test: Callable[[int], int]) -> Collector:
    """A collector of deferred call windows of ``energies_j``; test ``i`` has
    ``per_test(i)`` results of its own before its call window (the fixture's)."""
    settings = Settings(region="SE", regions=["DE"])
    backend = Scripted(1)
    meter = _meter(backend, settings)
    collector = Collector()
    for i, energy_j in enumerate(energies_j):
        nodeid = f"test_x.py::test_{i}"
        with meter.measure(f"own{i}") as own:
            backend.t += 1.0
            backend.reading = (backend.reading[0] + 3.0 * i,)
        assert own.measurement is not None
        collector.add(nodeid, [meter.result_of(own.measurement)] * per_test(i), None)
        t, (r,) = backend.t, backend.reading
        window = _deferred(meter, [(t, (r,)), (t + 0.5, (r + energy_j,))])
        collector.defer(nodeid, window.ended, meter)
    return collector


@pytest.mark.parametrize("own", [0, 1])
def test_the_summary_of_deferred_windows_is_that_of_their_records(own: int) -> None:
    """50 deferred call windows (two of them equal, one read backwards: not plain), with or
    without results of their own every third test: the summary's lines, rows and totals
    are those of every record made; only the record of the window that is not plain is made."""
    energies = [float((7 * i) % 50) for i in range(50)]
    energies[10] = energies[11]  # a tie keeps report order, as ranked() does
    every_third = lambda i: own if i % 3 == 0 else 0  # noqa: E731

    lazy = _collector_with(energies, every_third)
    lazy._deferred[20][2].readings = (lazy._deferred[20][2].readings[0], (-1.0,))
    tests, totals, rows, left_out = lazy.summary_view(40)

    made = _collector_with(energies, every_third)
    made._deferred[20][2].readings = (made._deferred[20][2].readings[0], (-1.0,))
    every = made.records()
    assert _same(totals, Totals.of(all_results(every)))
    assert totals.measurements == 50 + own * 17
    shown = render_summary(tests, totals=totals, rows=rows, left_out=left_out, width=120)
    assert shown == render_summary(every, max_rows=40, width=120)
    assert list(map(repr, rows)) == list(map(repr, listed_rows(every, 40)[0]))
    assert left_out == 50 + own * 17 - 40
    # only the one window not plain was made: the rows of the others come from their figures
    beyond = {t.nodeid for t, r in ranked(every)[40:] if r.name == "call"}
    assert "test_x.py::test_20" in beyond  # read backwards: 0 J, yet made
    assert lazy.unsettled == 49 and len(lazy._tests["test_x.py::test_20"].results) == 1
    assert [t.nodeid for t in lazy.records()] == [t.nodeid for t in every]  # made on read
    assert _same([t.results for t in lazy.records()], [t.results for t in every])


def test_few_windows_leave_none_out_and_the_full_summary_makes_every_record() -> None:
    lazy = _collector_with([1.0, 2.0, 3.0], lambda i: 0)
    tests, totals, rows, left_out = lazy.summary_view(40)
    assert (tests, [r.test.nodeid for r in rows], left_out, lazy.unsettled) == (
        [], [f"test_x.py::test_{i}" for i in (2, 1, 0)], 0, 3,
    )  # fmt: skip
    lazy = _collector_with([float(i) for i in range(50)], lambda i: 0)
    tests, totals, rows, left_out = lazy.summary_view(None)
    assert (len(tests), len(rows), left_out, lazy.unsettled, totals.measurements) == (
        50, 50, 0, 0, 50,
    )  # fmt: skip


OUTCOMES = """
import pytest

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown")

def test_passes(clock):
    clock.advance(1.0)

def test_fails(clock):
    clock.advance(2.0)
    assert False

def test_skips(clock):
    clock.advance(3.0)
    pytest.skip("no")

def test_errs_at_teardown(clock, broken_teardown):
    clock.advance(4.0)
"""

LOG_PROBE = """

def pytest_sessionfinish(session):
    registered = session.config.pluginmanager.has_plugin("pytest-co2-reports-log")
    session.config.rootpath.joinpath("registered.txt").write_text(str(registered))
"""


def test_outcomes_are_kept_where_a_report_says_them(fake_clock_pytester: pytest.Pytester) -> None:
    """A report file says each test's outcome (from its reports: failed, skipped, an error
    at teardown); a run whose only output is the terminal summary registers no report hook,
    and its summary still lists every test."""
    conftest = fake_clock_pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + LOG_PROBE)
    fake_clock_pytester.makepyfile(OUTCOMES)
    args = ALL_ARGS
    result = fake_clock_pytester.runpytest(*args, "--co2-json=r.json")
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1)
    assert _registered(fake_clock_pytester) == "True"
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    said = {
        t["nodeid"].rsplit("::", 1)[1]: (t["outcome"], t["measurements"][0]["energy_j"])
        for t in data["tests"]
    }
    assert said == {
        "test_passes": ("passed", 100.0),
        "test_fails": ("failed", 200.0),
        "test_skips": ("skipped", 300.0),
        "test_errs_at_teardown": ("error", 400.0),
    }
    result = fake_clock_pytester.runpytest(*args)
    assert _registered(fake_clock_pytester) == "False"
    text = "\n".join(result.outlines)
    assert "4 measurements" in text
    for name in ("passes", "fails", "skips", "errs_at_teardown"):
        assert f"test_{name}" in text
