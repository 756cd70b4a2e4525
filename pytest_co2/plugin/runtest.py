"""The per-test hooks: a meter for tests that measure, the budget verdict, each phase's
records (sent by an xdist worker, collected elsewhere) and the journal.

Registered only once some test measures (``--co2-all``, a ``co2_budget`` marker, the
``co2_meter`` fixture): a run whose tests measure nothing pays nothing per test. A test that
measures only because of ``--co2-all`` (no budget, no fixture) pays two backend reads: its
call window is deferred (one meter for all of them), and what it read is kept until the
run's records are first read, unless an output needs its record at once (an xdist worker's
report, ``--junitxml``, the journal). The terminal summary ranks, totals and lists the
deferred windows by their figures and makes no record; a report file makes every record.
The report hook (:class:`LogReports`: outcomes, a worker's records, the journal) is
registered only where a report says them.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ..options import Settings

if TYPE_CHECKING:
    from typing import Protocol

    from ..measure.window import Window
    from ..reporting.model import Budget, BudgetVerdict, Result
    from ..reporting.session import SessionInfo
    from ..reporting.storage import Journal
    from .collector import Collector
    from .fixture import Co2Meter
    from .progress import ProgressLine

    class State(Protocol):  # for the type checker only: a Protocol costs to define
        """What the hooks use of the session object (``session.Co2Session``)."""

        @property
        def config(self) -> pytest.Config: ...
        @property
        def settings(self) -> Settings: ...
        @property
        def role(self) -> str: ...
        @property
        def is_worker(self) -> bool: ...
        @property
        def progress(self) -> ProgressLine: ...
        @property
        def journal(self) -> Journal | None: ...
        @property
        def collector(self) -> Collector: ...

        def make_meter(self, item: pytest.Item) -> Co2Meter: ...

        def session_info(self) -> SessionInfo: ...


METER_KEY: pytest.StashKey[Co2Meter] = pytest.StashKey()
#: Every result of the item so far; of them, those already sent or collected (a count).
RESULTS_KEY: pytest.StashKey[list[Result]] = pytest.StashKey()
VERDICT_KEY: pytest.StashKey[BudgetVerdict] = pytest.StashKey()
BUDGET_KEY: pytest.StashKey[object] = pytest.StashKey()
_SENT_KEY: pytest.StashKey[int] = pytest.StashKey()
_UNSET = object()
#: A journal line is fsync'd after a test that measured this long or has a budget; shorter
#: tests' lines are written at once (a killed process keeps them) and synced with the next.
JOURNAL_SYNC_S = 1.0
_RAISED = "the test ended before this measurement did (it raised inside it)"


class Co2BudgetWarning(UserWarning):
    """A test exceeded its co2_budget under ``--co2-budget-mode=warn``."""


def measures(items: Sequence[pytest.Item], settings: Settings) -> bool:
    """Whether any of ``items`` measures: ``--co2-all``, a budget or the fixture."""
    if settings.all:
        return True
    if any("co2_meter" in getattr(item, "fixturenames", ()) for item in items):
        return True
    return any(marked(items, "co2_budget"))


def marked(items: Sequence[pytest.Item], name: str) -> list[bool]:
    """Whether each item or one of its parents has the marker ``name`` (as
    ``get_closest_marker(name) is not None``). This runs over every collected item: a
    parent's chain (module, class, package) is looked at once for all its items, and an
    item's own markers (function, parametrization) after that."""
    parents: dict[int, bool] = {}
    out = []
    for item in items:
        parent = item.parent
        hit = parents.get(id(parent))
        if hit is None:
            hit = parent is not None and parent.get_closest_marker(name) is not None
            parents[id(parent)] = hit
        own = item.own_markers
        out.append(hit or (bool(own) and any(m.name == name for m in own)))
    return out


def has_marker(item: pytest.Item, name: str) -> bool:
    """Whether ``item`` or a parent has the marker ``name`` (see :func:`marked`)."""
    return marked([item], name)[0]


def unmarked(items: Sequence[pytest.Item]) -> dict[int, int]:
    """The items without a ``co2_budget`` marker, all at once (see :func:`marked`): by
    ``id(item)``, how many markers of its own each had (one added since, as by
    ``request.applymarker``, is looked for again). The budget of each is then known without a
    marker lookup per test."""
    return {
        id(item): len(item.own_markers)
        for item, has in zip(items, marked(items, "co2_budget"), strict=True)
        if not has
    }


class RuntestHooks:
    """The hooks of each test's phases, for the session object ``state``."""

    def __init__(self, state: State) -> None:
        self.state = state
        # the meter shared by the deferred call windows, and a factory of its windows
        self._shared: tuple[Co2Meter, Callable[[], Window]] | None = None
        self._defer: bool | None = None  # whether call windows may be deferred (once)
        self._reports: PhaseReports | None = None
        #: the collected items without a budget marker (see :func:`unmarked`)
        self.unmarked: dict[int, int] = {}

    def report_phases(self) -> None:
        """Register the makereport hook (once): a test has a meter of its own."""
        if self._reports is None:
            self._reports = PhaseReports(self.state)
            self.state.config.pluginmanager.register(self._reports, "pytest-co2-reports")

    def _may_defer(self, item: pytest.Item) -> bool:
        """Whether call windows may be deferred (worked out once): ``--co2-all``, and no
        output needs a record per test (an xdist worker's report, ``--junitxml``, the
        journal)."""
        if self._defer is None:
            junit = getattr(item.config.option, "xmlpath", None)
            state = self.state
            self._defer = state.settings.all and not (
                state.is_worker or junit or state.journal is not None
            )
        return self._defer

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        if (
            self.unmarked.get(id(item), -1) == len(item.own_markers)
            and (self._defer or (self._defer is None and self._may_defer(item)))
            and item.stash.get(METER_KEY, None) is None
        ):
            # --co2-all only (no budget, no fixture): a deferred ``call`` window on the shared
            # meter, two backend reads now, the record when it is first read
            shared = self._shared
            if shared is None:  # the first (a `from` import runs 8k instructions)
                shared = self._share(item)
            meter, new_window = shared
            window = new_window()
            window.deferred = True
            window.__enter__()
            try:
                result = yield
            except BaseException as exc:
                window.__exit__(type(exc), exc, exc.__traceback__)
                raise
            else:
                window.__exit__(None, None, None)
            finally:
                self.state.progress.clear()
                self.state.collector.defer(item.nodeid, window.ended, meter)
            return result
        return (yield from self._call(item))

    def _share(self, item: pytest.Item) -> tuple[Co2Meter, Callable[[], Window]]:
        """The meter shared by the deferred call windows, made once, and a factory of its
        windows."""
        from ..measure.window import Window

        meter = self.state.make_meter(item)
        self._shared = meter, functools.partial(Window, meter, "call", "call", 0, None, None)
        return self._shared

    def _call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """The call phase of a test with a budget, a meter of its own, or a record needed at
        once: a ``call`` window on its own meter (``--co2-all``, a budget) and the verdict."""
        error = None
        try:
            budget = budget_of(item, self.state.settings, self.unmarked)
        except ValueError as exc:
            budget, error = None, str(exc)
        if error is not None:
            pytest.fail(error, pytrace=False)
        meter = item.stash.get(METER_KEY, None)
        window = None
        if meter is None and (budget is not None or self.state.settings.all):
            meter = self.state.make_meter(item)
            item.stash[METER_KEY] = meter
            self.report_phases()
            window = meter.measure("call", unit="call")
            window.__enter__()
        try:
            result = yield
        except BaseException as exc:
            if window is not None:
                window.__exit__(type(exc), exc, exc.__traceback__)
            if meter is not None:  # loops the exception unwound are partial, not complete
                self.state.collector.mark_partial(meter.left_early, _RAISED)
            raise
        else:
            if window is not None:  # the call phase measured as one unit (--co2-all, budget)
                window.__exit__(None, None, None)
        finally:
            self.state.progress.clear()
            if meter is not None:  # a steps() loop the test left by raising ends here
                meter.close_open(_RAISED)
                meter.left_early.clear()
        if budget is not None and meter is not None:
            self._judge(item, meter, budget)
        return result

    def _judge(self, item: pytest.Item, meter: Co2Meter, budget: Budget) -> None:
        """The budget verdict over every measurement of the test so far."""
        from ..reporting.budget import evaluate

        results = item.stash.setdefault(RESULTS_KEY, [])
        results.extend(self.state.collector.drain(meter.result_of))
        verdict = evaluate(budget, results)
        item.stash[VERDICT_KEY] = verdict
        if verdict.message is not None:
            if not verdict.passed and self.state.settings.budget_mode == "fail":
                pytest.fail(verdict.message, pytrace=False)
            warn_at(item, Co2BudgetWarning(verdict.message))


class LogReports:
    """Each phase's report: a worker's records received (xdist controller), the test's
    outcome kept, the journal's line. Registered beside :class:`RuntestHooks` only where a
    report says the outcomes (see ``Co2Session.reports_outcomes``): in a run whose only
    output is the terminal summary, which does not, a test costs no report hook."""

    def __init__(self, state: State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state  # never a worker's (see Co2Session.reports_outcomes)
        if state.role == "controller":
            state.collector.receive(report)
        when = report.when
        if when == "call" or report.outcome == "failed":  # what decides a test's outcome
            state.collector.outcome(report)
        if when == "teardown" and state.journal is not None:
            record = state.collector.tests.get(report.nodeid)
            if record is not None and (record.results or record.budget is not None):
                measured_s = sum(r.measurement.duration_s for r in record.results)
                state.journal.append(
                    record.to_dict(),
                    state.session_info,
                    sync=record.budget is not None or measured_s >= JOURNAL_SYNC_S,
                )


class PhaseReports:
    """Each phase's records onto its report (registered by :meth:`RuntestHooks.report_phases`
    once some test has a meter of its own: a run whose only measurements are deferred call
    windows makes no makereport call of the plugin's)."""

    def __init__(self, state: State) -> None:
        self.state = state

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Generator[None, Any, Any]:
        report = yield
        meter = item.stash.get(METER_KEY, None)
        if meter is None:  # nothing measured in this phase, or a deferred call window
            self.state.collector.pending.clear()
            return report
        results = item.stash.setdefault(RESULTS_KEY, [])
        results.extend(self.state.collector.drain(meter.result_of))
        sent = item.stash.get(_SENT_KEY, 0)  # results judged in the call hook are not sent yet
        new = results[sent:]
        item.stash[_SENT_KEY] = len(results)
        verdict = item.stash.get(VERDICT_KEY, None) if call.when == "call" else None
        if new and getattr(item.config.option, "xmlpath", None):
            from .collector import set_junit_properties

            set_junit_properties(item, report, results)
        if self.state.is_worker:
            self.state.collector.attach(report, new, verdict)
        else:
            self.state.collector.add(item.nodeid, new, verdict)
        return report


def budget_of(
    item: pytest.Item, settings: Settings, unmarked: Mapping[int, int] | None = None
) -> Budget | None:
    """The test's ``co2_budget`` (parsed once per test); ValueError for bad arguments.
    ``unmarked``: the items known to have none (see :func:`unmarked`)."""
    if unmarked is not None and unmarked.get(id(item), -1) == len(item.own_markers):
        return None  # no marker when collected, and none of its own added since
    stash = item.stash
    cached = stash.get(BUDGET_KEY, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    mark = item.get_closest_marker("co2_budget")
    if mark is None:
        item.stash[BUDGET_KEY] = None
        return None
    from ..reporting.budget import budget_from_marker

    budget = budget_from_marker(mark.args, mark.kwargs, csv_path=settings.intensity_file)
    item.stash[BUDGET_KEY] = budget
    return budget


def warn_at(item: pytest.Item, warning: Warning) -> None:
    """A warning attributed to the user's test (its file and line), not to the plugin."""
    path, lineno, _ = item.location
    filename = str(item.config.rootpath / path)
    module = getattr(getattr(item, "module", None), "__name__", None) or path.rsplit("/", 1)[-1]
    warnings.warn_explicit(warning, type(warning), filename, (lineno or 0) + 1, module=module)
