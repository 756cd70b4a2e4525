"""pytest wiring: options, the ``co2_meter`` fixture, the ``co2_budget`` marker, reports.

The entry point (``pytest11``: ``co2 = pytest_co2.plugin``). Hooks stay short; the work is
done by the modules beside this one:

- ``options``: command line, ini and environment into one frozen ``Settings``;
- ``provider``: which backend this process measures with (opened on first use, never by an
  xdist controller), its lock policy and idle power;
- ``fixture``: the ``co2_meter`` object; ``collector``: each test's typed records;
- ``progress``: the live line; ``writer``: JSON, baseline and markdown files;
- ``xdist``: where this process sits in a pytest-xdist run.

Each process (the single one, or every xdist worker) measures and evaluates its own tests;
workers send their records on the test reports and the controller collects them, so the
summary, the JSON and the budgets are the same with and without xdist.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from ..options import Settings
from . import xdist
from .options import add_options, resolve

if TYPE_CHECKING:
    from ..reporting.baseline import Baseline, Comparison
    from ..reporting.json_report import Report
    from ..reporting.model import Budget, BudgetVerdict, Result  # noqa: F401 (stash key types)
    from .fixture import Co2Meter

STATE_KEY = pytest.StashKey["Co2Plugin"]()
METER_KEY = pytest.StashKey["Co2Meter"]()
RESULTS_KEY = pytest.StashKey[list["Result"]]()  # every result of the item so far
VERDICT_KEY = pytest.StashKey["BudgetVerdict"]()
RUNTIME_KEY = pytest.StashKey[str]()
BUDGET_KEY = pytest.StashKey[object]()
_UNSET = object()
SUMMARY_ROWS = 40  # rows of the default summary (largest emitters; --co2-report=full: all)


class Co2BudgetWarning(UserWarning):
    """A test exceeded its co2_budget under ``--co2-budget-mode=warn``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Before any conftest imports torch: the quiet runtime (see ``runtime``)."""
    from . import runtime

    if runtime.wanted(args, os.environ):
        early_config.stash[RUNTIME_KEY] = runtime.apply()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    from ..constants import MARKER_HELP
    from .provider import check_backend_name

    config.addinivalue_line("markers", MARKER_HELP)
    settings = resolve(config)
    check_backend_name(config, settings.backend)
    if config.option.help:
        _list_backends_in_help(config)
    state = Co2Plugin(config, settings)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "pytest-co2-session")
    if xdist.role(config) == "controller" and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "pytest-co2-xdist")


def _list_backends_in_help(config: pytest.Config) -> None:
    """``--help`` names every backend, those of plugins and conftests included (the parser
    was built before they were loaded, so the help text is completed here)."""
    from .provider import backend_names

    optparser = getattr(getattr(config, "_parser", None), "optparser", None)
    for action in getattr(optparser, "_actions", ()):
        if "--co2-backend" in getattr(action, "option_strings", ()):
            action.help = (
                f"energy source, one of: {', '.join(backend_names(config))} (default auto)"
            )


@pytest.fixture
def co2_meter(request: pytest.FixtureRequest) -> Co2Meter:
    """Measure the energy of code regions in this test, step by step (see pytest_co2.meter)."""
    state = request.config.stash[STATE_KEY]
    meter = state.make_meter(request.node)
    request.node.stash[METER_KEY] = meter
    return meter


def _budget_of(item: pytest.Item) -> Budget | None:
    """The test's ``co2_budget`` (parsed once per test); ValueError for bad arguments."""
    cached = item.stash.get(BUDGET_KEY, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    mark = item.get_closest_marker("co2_budget")
    if mark is None:
        item.stash[BUDGET_KEY] = None
        return None
    from ..reporting.budget import budget_from_marker

    csv = item.config.stash[STATE_KEY].settings.intensity_file
    budget = budget_from_marker(mark.args, mark.kwargs, csv_path=csv)
    item.stash[BUDGET_KEY] = budget
    return budget


class _XdistHooks:
    """Controller-side pytest-xdist hooks (registered only where xdist is active)."""

    def __init__(self, state: Co2Plugin) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        from .provider import WORKER_FACTS_KEY

        node.workerinput[WORKER_FACTS_KEY] = self.state.provider.facts_for_workers()
        from .live_intensity import WORKER_KEY, for_workers

        live = for_workers(self.state.live)
        if live is not None:
            node.workerinput[WORKER_KEY] = live

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from .provider import WORKER_FACTS_KEY

        facts = getattr(node, "workeroutput", {}).get(WORKER_FACTS_KEY)
        if facts:
            worker = str(getattr(node, "gateway", None) and node.gateway.id)
            self.state.provider.worker_facts[worker] = facts


class Co2Plugin:
    """Per-process session state, registered as a plugin so its hooks can reach it."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from ..carbon.accounting import Accounting
        from .collector import Collector
        from .live_intensity import region_for, resolve_live
        from .progress import ProgressLine
        from .provider import BackendProvider
        from .writer import ReportWriter

        self.config = config
        self.settings = settings
        self.role = xdist.role(config)
        self.is_worker = self.role == "worker"
        self.started = _dt.datetime.now().astimezone()
        self.live = resolve_live(config, settings)  # --co2-intensity-source, once, at start
        self.accounting = Accounting(
            region_for(self.live, settings),
            settings.month,
            pue=settings.pue,
            intensity_g_per_kwh=settings.intensity,
            intensity_file=settings.intensity_file,
            whatif_regions=settings.regions,
            intensity=None if self.live is None else self.live.intensity,
            forecast=() if self.live is None else self.live.forecast,
        )
        self.provider = BackendProvider(config, settings)
        self.collector = Collector()
        self.progress = ProgressLine(config)
        self.provider.on_lock_wait = self.progress.lock_wait
        self.writer = ReportWriter()
        self.baseline_path, self.baseline = self._load_baseline()
        self.comparison: Comparison | None = None
        self._warned: set[str] = set()
        self.journal = None if self.is_worker else self._open_journal()
        self._sigterm = _install_sigterm() if not self.is_worker else None

    # -- journal ----------------------------------------------------------------------------
    def _open_journal(self) -> Any:
        """The journal beside the report (``--co2-json``, else the baseline being saved); a
        journal a killed run left there is recovered first, into ``<report>.recovered.json``."""
        from .writer import Journal, journal_path_for, read_journal

        target = self.settings.json or self._saved_path()
        if target is None:
            return None
        path = journal_path_for(target)
        self.recovered: str | None = None
        if os.path.exists(path):
            try:
                old = read_journal(path)
            except ValueError as exc:
                self.recovery_note = f"co2: a journal of an earlier run could not be read: {exc}"
            else:
                out = target[: -len(".json")] if target.endswith(".json") else target
                self.recovered = out + ".recovered.json"
                self.writer.json(self.recovered, old.to_dict())
                self.recovery_note = (
                    f"co2: an earlier run was killed: its {len(old.tests)} finished tests were "
                    f"recovered from {path} into {self.recovered}"
                )
                with contextlib.suppress(OSError):
                    os.unlink(path)
        return Journal(path)

    # -- baseline ----------------------------------------------------------------------------
    @property
    def storage_dir(self) -> str:
        from ..reporting.baseline import STORAGE_DIR

        return os.path.join(str(self.config.rootpath), STORAGE_DIR)

    def _load_baseline(self) -> tuple[str | None, Baseline | None]:
        """Load the ``--co2-compare`` run now (checked at start-up, before this run may save
        over it): a bad one is a usage error naming the file and the first bad field."""
        s = self.settings
        if self.is_worker or (s.compare is None and not s.compare_fail):
            return None, None
        from ..reporting.baseline import load_baseline, resolve_baseline

        try:
            path = resolve_baseline(s.compare, self.storage_dir)
            return os.fspath(path), load_baseline(path)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    # -- fixture ---------------------------------------------------------------------------
    def make_meter(self, item: pytest.Item) -> Co2Meter:
        from .fixture import Co2Meter

        backend = self.provider.backend
        for message in self.provider.take_warnings():
            _warn_at(item, message)
        try:
            budget = _budget_of(item)
        except ValueError:
            budget = None  # reported as a failure by pytest_runtest_call
        meter = Co2Meter(
            backend,
            self.accounting,
            self.settings,
            budget=budget,
            on_record=self.collector.on_record,
            progress=self.progress.update if self.progress.enabled() else None,
            idle_w=self.provider.idle_w if self.settings.subtract_idle else None,
        )
        meter.warn = self._warn_once
        policy, guard = self.provider.policy, self.provider.guard
        if policy is not None and guard is not None and (policy.mode == "lock" or policy.warning):
            meter.on_window_enter = guard.enter
            meter.on_window_exit = guard.exit
        return meter

    def _warn_once(self, message: str) -> None:
        """A warning per cause per session (not per test or per window)."""
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    # -- running tests -----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        error = None
        try:
            budget = _budget_of(item)
        except ValueError as exc:
            budget, error = None, str(exc)
        if error is not None:
            pytest.fail(error, pytrace=False)
        meter = item.stash.get(METER_KEY, None)
        window = None
        if meter is None and (budget is not None or self.settings.all):
            meter = self.make_meter(item)
            item.stash[METER_KEY] = meter
            window = meter.measure("call", unit="call")
            window.__enter__()
        try:
            result = yield
        except BaseException as exc:
            if window is not None:
                window.__exit__(type(exc), exc, exc.__traceback__)
            if meter is not None:  # loops the exception unwound are partial, not complete
                self.collector.mark_partial(meter.left_early, _RAISED)
            raise
        else:
            if window is not None:  # the call phase measured as one unit (--co2-all, budget)
                window.__exit__(None, None, None)
        finally:
            self.progress.clear()
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
        results.extend(self.collector.drain(meter.result_of))
        verdict = evaluate(budget, results)
        item.stash[VERDICT_KEY] = verdict
        if verdict.message is not None:
            if not verdict.passed and self.settings.budget_mode == "fail":
                pytest.fail(verdict.message, pytrace=False)
            _warn_at(item, Co2BudgetWarning(verdict.message))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Generator[None, Any, Any]:
        from .collector import set_junit_properties

        report = yield
        meter = item.stash.get(METER_KEY, None)
        results = item.stash.setdefault(RESULTS_KEY, [])
        if meter is not None:
            results.extend(self.collector.drain(meter.result_of))
        else:
            self.collector.pending.clear()
        sent = item.stash.get(_SENT_KEY, 0)  # results judged in the call hook are not sent yet
        new = results[sent:]
        item.stash[_SENT_KEY] = len(results)
        verdict = item.stash.get(VERDICT_KEY, None) if call.when == "call" else None
        if new:
            set_junit_properties(item, report, results)
        if self.is_worker:
            self.collector.attach(report, new, verdict)
        else:
            self.collector.add(item.nodeid, new, verdict)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        if self.role == "controller":
            self.collector.receive(report)
        self.collector.outcome(report)
        if report.when == "teardown" and self.journal is not None:
            record = self.collector.tests.get(report.nodeid)
            if record is not None and (record.results or record.budget is not None):
                self.journal.append(record.to_dict(), self._journal_session)

    def _journal_session(self) -> dict[str, Any]:
        return self._report(None, False, advice=False).session

    # -- reporting ---------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from ..backends import find_part
        from ..backends.estimate import EstimateBackend

        s, i = self.settings, self.accounting.intensity
        month = f" {s.month}" if s.month else ""
        lines = [
            f"co2: backend {self.provider.describe()}",
            f"co2: region {i.region}{month} {i.g_per_kwh:g} g CO2e/kWh ({i.source}"
            f"{'; ' + i.provenance_text if i.provenance_text else ''}); "
            f"PUE {s.pue:g}; extrapolate {s.extrapolate_text()}; budget mode {s.budget_mode}",
        ]
        from .live_intensity import header_lines

        lines += header_lines(self.live)
        if self.role != "controller":
            est = find_part(self.provider.backend, EstimateBackend)
            if est is not None and est.basis not in lines[0]:
                lines.append("co2: " + est.header_line())
            if s.idle:
                lines.append("co2: " + self.provider.idle_text())
            policy = self.provider.policy
            if policy is not None and (policy.mode != "not needed" or self.role != "single"):
                lines.append("co2: " + policy.describe())
        note = getattr(self, "recovery_note", None)
        if note:
            lines.append(note)
        runtime_note = config.stash.get(RUNTIME_KEY, None)
        if runtime_note:
            lines.append("co2: " + runtime_note)
        if self.baseline_path is not None:
            fail = (
                f"; fail on {', '.join(str(f) for f in s.compare_fail)}" if s.compare_fail else ""
            )
            lines.append(f"co2: comparing with {self.baseline_path}{fail}")
        if s.regions:
            whatif = ", ".join(
                f"{r} {v.g_per_kwh:g} g/kWh" for r, v in self.accounting.whatif.items()
            )
            lines.append("co2: what-if regions (yearly): " + whatif)
        from ..reporting.terminal import wrap

        width = _terminal_width(config.pluginmanager.get_plugin("terminalreporter"))
        return [part for line in lines for part in wrap(line, width, indent="co2:   ")]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        self._summary(terminalreporter)
        for message in self.writer.errors:
            terminalreporter.write_line(message, yellow=True)
        if self.comparison is not None and self.comparison.failures:
            terminalreporter.write_sep("=", "co2 regressions", red=True)
            for line in self.comparison.failures:
                terminalreporter.write_line("co2 regression: " + line, red=True)

    def _summary(self, tr: Any) -> None:
        if self.settings.report == "off":
            return
        from ..carbon.equivalents import format_equivalents
        from ..reporting.baseline import render_comparison
        from ..reporting.model import Totals, all_results
        from ..reporting.terminal import render_summary, wrap

        tests = self.collector.records()
        if not tests:
            return  # nothing measured: stay quiet in suites that do not use the plugin
        tr.write_sep("=", "co2 emissions summary")
        i, s = self.accounting.intensity, self.settings
        width = _terminal_width(tr)
        for line in wrap(
            f"region {i.region}{' ' + s.month if s.month else ''} {i.g_per_kwh:g} g CO2e/kWh"
            f"{' (' + i.source + '; ' + i.provenance_text + ')' if i.provenance_text else ''}"
            f", PUE {s.pue:g}; ± is the per-unit spread scaled "
            "to the projection (the paper's convention); method says how energy was obtained",
            width,
        ):
            tr.write_line(line)
        for line in self._worker_lines():
            tr.write_line(line)
        lock_line = None if self.provider.guard is None else self.provider.guard.summary()
        if lock_line:
            tr.write_line("co2: " + lock_line)
        for line in render_summary(
            tests,
            budget_mode=s.budget_mode,
            full=s.report == "full",
            whatif=tuple(self.accounting.whatif),
            max_rows=None if s.report == "full" else SUMMARY_ROWS,
            width=width,
        ):
            tr.write_line(line)
        for line in wrap(
            "total " + format_equivalents(Totals.of(all_results(tests)).co2e_kg), width
        ):
            tr.write_line(line)
        for line in self._advice_lines(width):
            tr.write_line(line)
        if self.comparison is not None:
            tr.write_line(
                f"co2 compared with {self.comparison.baseline} (Δ: change over the baseline)"
            )
            for line in render_comparison(self.comparison, width):
                tr.write_line(line)
            for line in self.comparison.inconclusive:
                what = "fails (--co2-compare-strict)" if s.compare_strict else "warning"
                tr.write_line(f"co2 inconclusive ({what}): {line}", yellow=True)
        for line in self._output_lines():
            tr.write_line(line)

    def _output_lines(self) -> list[str]:
        """Which files were written (a failed write says so among the errors instead)."""
        s, lines = self.settings, []
        if s.json and not self.writer.failed(s.json):
            lines.append(f"co2 report written to {s.json}")
        if s.save and not self.writer.failed(self._saved_path()):
            lines.append(f"co2 baseline saved to {self._saved_path()}")
        if s.markdown and not self.writer.failed(s.markdown):
            lines.append(f"co2 markdown written to {s.markdown}")
        return lines

    def _advice_lines(self, width: int) -> list[str]:
        from ..reporting.terminal import wrap

        advice = self._advice()
        return [] if advice is None else wrap("co2 advice: " + advice["session"]["text"], width)

    def _advice(self) -> dict[str, Any] | None:
        """The ``--co2-advise`` block for the records so far."""
        if not self.settings.advise or not self.collector.records():
            return None
        from ..reporting.advice import advise_run

        return advise_run(self.collector.records(), self.accounting, self.settings.regions)

    def _worker_lines(self) -> list[str]:
        """Under xdist, what the workers measured with (the controller opens nothing)."""
        facts = self.provider.worker_facts.values()
        backends = dict.fromkeys(f["backend"] for f in facts if f.get("backend"))
        policies = dict.fromkeys(f["exclusive"]["description"] for f in facts if f.get("exclusive"))
        lines = [f"co2: workers measured with {b}" for b in backends]
        locks = [f"co2: {f['lock_summary']}" for f in facts if f.get("lock_summary")]
        return lines + [f"co2: {p}" for p in policies] + locks

    def _saved_path(self) -> str | None:
        if not self.settings.save:
            return None
        from ..reporting.baseline import saved_path

        return os.fspath(saved_path(self.storage_dir, self.settings.save))

    def _report(self, exit_status: int | None, interrupted: bool, *, advice: bool = True) -> Report:
        from ..reporting.json_report import Report, finished_session, session_info

        s = self.settings
        info = session_info(
            s.to_dict(), None if self.role == "controller" else self.provider.backend,
            self.started, self.accounting,
        )  # fmt: skip
        if self.role == "controller":
            info["backend"] = self.provider.describe()
            info["workers"] = self.provider.worker_facts
            policies = [
                f["exclusive"] for f in self.provider.worker_facts.values() if f.get("exclusive")
            ]
            info["exclusive"] = (
                policies[0] if policies else None
            )  # the same decision in every worker
        else:
            info["exclusive"] = self.provider.exclusive_dict()
            if s.idle:
                info["idle"] = {
                    "seconds": s.idle,
                    "power_w": self.provider.facts()["idle_w"],
                    "subtracted": s.subtract_idle,
                }
        info["runtime"] = self.config.stash.get(RUNTIME_KEY, None)
        if self.live is not None and self.live.forecast:  # --co2-intensity-source's forecast
            info["intensity_forecast"] = [p.to_dict() for p in self.live.forecast]
        info["xdist_workers"] = (
            xdist.worker_count(self.config) if self.role == "controller" else None
        )
        session = finished_session(info, exit_status=exit_status, interrupted=interrupted)
        block = self._advice() if advice else None
        return Report(
            session=session,
            tests=self.collector.records(),
            comparison=self.comparison,
            extra={} if block is None else {"advice": block},
        )

    def _json_dict(self, report: Report) -> dict[str, Any]:
        data = report.to_dict()
        self.config.hook.pytest_co2_update_json(config=self.config, report=data)
        return data

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            from .provider import WORKER_FACTS_KEY

            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[WORKER_FACTS_KEY] = self.provider.facts()
            return
        status = int(exitstatus)
        interrupted = status == pytest.ExitCode.INTERRUPTED
        if self.baseline is not None and self.baseline_path is not None:
            from ..reporting.baseline import compare

            self.comparison = compare(
                self.baseline_path,
                self.baseline,
                self.collector.records(),
                self.settings.compare_fail,
                strict=self.settings.compare_strict,
            )
            if self.comparison.failures and status == pytest.ExitCode.OK:
                session.exitstatus = status = pytest.ExitCode.TESTS_FAILED
        s = self.settings
        if not (s.json or s.save or s.markdown):
            return
        report = self._report(status, interrupted)
        data = self._json_dict(report)
        written = True
        if s.json:
            written = self.writer.json(s.json, data)
        saved = self._saved_path()
        if saved and not interrupted and not self.writer.json(saved, data):
            written = written and not s.json  # the journal still holds the run
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = (
                    pytest.ExitCode.TESTS_FAILED
                )  # a baseline not saved is an error
        if s.markdown:
            self.writer.markdown(s.markdown, report)
        if self.journal is not None:
            self.journal.close(remove=written)
            if self.journal.error:
                self.writer.errors.append(self.journal.error)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.provider.close()
        if self._sigterm is not None:
            _restore_sigterm(self._sigterm)


def _warn_at(item: pytest.Item, warning: Warning) -> None:
    """A warning attributed to the user's test (its file and line), not to the plugin."""
    path, lineno, _ = item.location
    filename = str(item.config.rootpath / path)
    module = getattr(getattr(item, "module", None), "__name__", None) or path.rsplit("/", 1)[-1]
    warnings.warn_explicit(warning, type(warning), filename, (lineno or 0) + 1, module=module)


def _terminal_width(tr: Any) -> int:
    """The terminal's width as pytest sees it (``COLUMNS`` included), 100 when unknown."""
    width = getattr(getattr(tr, "_tw", None), "fullwidth", None)
    return int(width) if isinstance(width, int) and width > 0 else 100


def _install_sigterm() -> Any:
    """SIGTERM (a CI timeout, ``kill``) ends the run like Ctrl-C: pytest stops, the summary
    and the reports are written. Only where nobody else handles SIGTERM already."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    return signal.signal(signal.SIGTERM, on_sigterm)


def _restore_sigterm(previous: Any) -> None:
    import contextlib
    import signal

    with contextlib.suppress(ValueError, TypeError):  # not the main thread any more: leave it
        signal.signal(signal.SIGTERM, previous)


_SENT_KEY = pytest.StashKey[int]()
_RAISED = "the test ended before this measurement did (it raised inside it)"
