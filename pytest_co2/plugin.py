"""pytest wiring: options, the ``co2_meter`` fixture, the ``co2_budget`` marker, reports.

Hooks stay short; the logic lives in ``session.py``, ``table.py``, ``report.py``,
``exclusive.py``, ``compare.py`` and ``markdown.py``.
Each process (the single one, or every pytest-xdist worker) measures and evaluates its own
tests and puts JSON-safe entries on the test reports; the controlling process collects them
in ``pytest_runtest_logreport``, so the summary, the JSON and the budgets are the same with
and without xdist (pytest's report serialization carries the extra attributes, see
``xdist.py``). Baselines, the markdown table and the JSON are written by the controller.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import xdist
from .accounting import Accounting
from .budget import MARKER, MARKER_HELP, Budget, BudgetError
from .options import Settings, add_options, resolve

if TYPE_CHECKING:  # the meter and session modules are imported when first needed
    from .exclusive import Policy
    from .session import Co2Meter, TestResult

STATE_KEY = pytest.StashKey["Co2Plugin"]()
METER_KEY = pytest.StashKey["Co2Meter"]()
PROGRESS_AFTER_S = 3.0  # live progress only for measurements that run longer than this
SUMMARY_ROWS = 40  # rows of the default summary (largest emitters; --co2-report=full: all)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    state = Co2Plugin(config, resolve(config))
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "pytest-co2-session")


@pytest.fixture
def co2_meter(request: pytest.FixtureRequest) -> Co2Meter:
    """Measure the energy of code regions in this test, step by step (see pytest_co2.meter)."""
    state = request.config.stash[STATE_KEY]
    meter = state.make_meter(request.node)
    request.node.stash[METER_KEY] = meter
    return meter


def _budget_of(item: pytest.Item) -> Budget | None:
    mark = item.get_closest_marker(MARKER)
    return None if mark is None else Budget.from_marker(mark.args, mark.kwargs)


class Co2Plugin:
    """Per-process session state, registered as a plugin so its hooks can reach it."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.role = xdist.role(config)
        self.is_worker = self.role == "worker"
        self.started = _dt.datetime.now().astimezone()
        self.accounting = Accounting(settings)
        self.baseline_path, self.baseline = self._load_baseline()
        self._backend: Any = None  # opened on first use: see `backend`
        self.idle_w: tuple[float, ...] = ()  # per device, with --co2-idle
        self._deferred_warnings: list[Any] = []
        self.results: dict[str, TestResult] = {}
        self.comparison: dict[str, Any] | None = None
        self._pending: list[Any] = []  # measurements of the running phase
        self._last_write = 0.0
        self._progress_shown = False
        self._progress_width = 0
        self._write_errors: list[str] = []  # shown in the terminal summary

    # -- baseline ----------------------------------------------------------------------------
    @property
    def storage_dir(self) -> str:
        from .compare import STORAGE_DIR

        return os.path.join(str(self.config.rootpath), STORAGE_DIR)

    def _load_baseline(self) -> tuple[str | None, dict[str, Any] | None]:
        """Load the ``--co2-compare`` run now, before this run may save over it."""
        s = self.settings
        if self.is_worker or (s.compare is None and not s.compare_fail):
            return None, None
        from .compare import load_baseline, resolve_baseline

        try:
            path = resolve_baseline(s.compare, self.storage_dir)
            return os.fspath(path), load_baseline(path)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    # -- backend ---------------------------------------------------------------------------
    @property
    def backend(self) -> Any:
        """The energy backend, opened on first use (the header, the first measurement, the
        JSON), so that a run that measures nothing and prints no header (``-q``) never
        touches the hardware (NVML's init alone can take a noticeable fraction of a second)."""
        if self._backend is None:
            self._backend = self._open_backend()
            from .exclusive import WindowGuard, decide

            self.policy: Policy = decide(
                self.settings.exclusive,
                self._backend.devices,
                concurrent=xdist.under_xdist(self.config),
                source=self.settings.sources.get("exclusive"),
                lock_dir=self.settings.lock_dir,
            )
            self.guard = WindowGuard(self.policy)
            if self.policy.warning and self.role != "controller":
                self._deferred_warnings.append(UserWarning(self.policy.warning))
            if self.settings.idle:
                from .meter import measure_idle_w

                self.idle_w = measure_idle_w(self._backend, self.settings.idle)
        return self._backend

    def idle_text(self) -> str:
        """e.g. "idle power over 2 s at start: NVIDIA A100 [counter] 61.2 W (not subtracted)"."""
        devs = ", ".join(
            f"{d.label} [{d.method.value}] {w:.3g} W"
            for d, w in zip(self.backend.devices, self.idle_w, strict=False)
        )
        what = (
            "subtracted from every measurement" if self.settings.subtract_idle else "not subtracted"
        )
        return f"idle power over {self.settings.idle:g} s at start: {devs} ({what})"

    def _open_backend(self) -> Any:
        from .backends import BackendError, BackendWarning, make_backend

        spec = self.settings.backend
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend = self.config.hook.pytest_co2_make_backend(config=self.config, spec=spec)
            if backend is None:
                try:
                    backend = make_backend(spec, cpu_tdp_w=self.settings.cpu_tdp)
                except BackendError as exc:
                    warnings.warn(
                        f"pytest-co2: backend {spec!r} is unusable here ({exc}); falling back to the "
                        "CPU-time estimate",
                        BackendWarning,
                        stacklevel=1,
                    )
                    backend = make_backend("estimate", cpu_tdp_w=self.settings.cpu_tdp)
                    backend.notes.insert(0, f"requested backend {spec!r} failed: {exc}")
        # Shown when the first measurement is made (so a run that measures nothing stays
        # quiet); they are also in the backend's notes, the report header and the JSON.
        self._deferred_warnings.extend(w.message for w in caught)
        return backend

    # -- fixture ---------------------------------------------------------------------------
    def make_meter(self, item: pytest.Item) -> Co2Meter:
        from .session import Co2Meter

        backend = self.backend
        while self._deferred_warnings:
            message = self._deferred_warnings.pop(0)
            warnings.warn(
                message if isinstance(message, Warning) else UserWarning(str(message)), stacklevel=2
            )
        try:
            budget = _budget_of(item)
        except BudgetError:
            budget = None  # reported as a failure by pytest_runtest_call
        meter = Co2Meter(
            backend,
            self.accounting,
            self.settings,
            budget=budget,
            on_record=self._pending.append,
            progress=self._progress if self._show_progress() else None,
            idle_w=self.idle_w if self.settings.subtract_idle else None,
        )
        if self.policy.mode == "lock" or self.policy.warning:
            meter.on_window_enter = self.guard.enter
            meter.on_window_exit = self.guard.exit
        return meter

    def _show_progress(self) -> bool:
        if self.is_worker or self.config.get_verbosity() < 0:
            return False
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        return tr is not None and getattr(tr, "isatty", False)

    def _progress(self, window: Any) -> None:
        if window.elapsed_s < PROGRESS_AFTER_S:
            return
        from .table import fmt_num

        total = f"/{window.total}" if window.total else ""
        line = (
            f"co2 {window.name}: {window.steps_done}{total} {window.unit}s, "
            f"{window.elapsed_s:.0f} s, {fmt_num(window.energy_so_far_j)} J so far"
        )
        self._write_progress(" " + line)
        self._progress_shown = True

    def _write_progress(self, text: str) -> None:
        """Rewrite the terminal's current line as pytest left it plus ``text``, bypassing
        output capture and the terminal writer's own line book-keeping."""
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if tr is None:
            return
        tw = tr._tw
        prefix = getattr(tw, "_current_line", "")
        out = getattr(tw, "_file", None)
        if out is None:
            return
        with capman.global_and_fixture_disabled() if capman is not None else _nullcontext():
            out.write(
                "\r" + prefix + text.ljust(self._progress_width) + ("" if text else "\r" + prefix)
            )
            out.flush()
        self._progress_width = max(self._progress_width, len(text))

    # -- running tests -----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        try:
            budget = _budget_of(item)
        except BudgetError as exc:
            pytest.fail(str(exc), pytrace=False)
        meter = item.stash.get(METER_KEY, None)
        window = None
        if meter is None and (budget is not None or self.settings.all):
            meter = self.make_meter(item)
            item.stash[METER_KEY] = meter
            window = meter.measure("call", unit="call").__enter__()
        try:
            result = yield
        except BaseException:
            if window is not None:
                window.__exit__(*sys.exc_info())
            raise
        finally:
            if self._progress_shown:
                self._write_progress("")  # blank the progress, keep pytest's line
                self._progress_shown = False
        if window is not None:
            window.__exit__(None, None, None)
        if budget is not None and meter is not None:
            from .session import check_budget, entry_for

            entries = [entry_for(meter, m) for m in self._pending]
            record, message = check_budget(budget, meter, entries)
            item.stash[_BUDGET_KEY] = record
            if message is not None:
                if self.settings.budget_mode == "fail":
                    pytest.fail(message, pytrace=False)
                warnings.warn(Co2BudgetWarning(message))
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Generator[None, Any, Any]:
        report = yield
        meter = item.stash.get(METER_KEY, None)
        if self._pending and meter is not None:
            from .session import entry_for

            report.co2_entries = [entry_for(meter, m) for m in self._pending]
            self._pending.clear()
            _add_junit_properties(item, report, report.co2_entries)
        elif self._pending:
            self._pending.clear()
        budget = item.stash.get(_BUDGET_KEY, None)
        if budget is not None and call.when == "call":
            report.co2_budget = budget
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entries = getattr(report, "co2_entries", None)
        budget = getattr(report, "co2_budget", None)
        if not entries and budget is None and report.nodeid not in self.results:
            return
        from .session import TestResult

        result = self.results.setdefault(report.nodeid, TestResult(report.nodeid))
        if entries:
            result.entries.extend(entries)
        if budget is not None:
            result.budget = budget
        if report.when == "call" or report.failed:
            result.outcome = "error" if report.failed and report.when != "call" else report.outcome
        if self.settings.json and not self.is_worker and time.monotonic() - self._last_write > 2.0:
            self._write_json(exit_status=None, interrupted=False)

    # -- reporting ---------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from .report import _find_part

        s, i = self.settings, self.accounting.intensity
        month = f" {s.month}" if s.month else ""
        lines = [
            f"co2: backend {self.backend.describe()}",
            f"co2: region {i.region}{month} {i.g_per_kwh:g} g CO2e/kWh ({i.source}); PUE {s.pue:g}; "
            f"extrapolate {s.extrapolate_text()}; budget mode {s.budget_mode}",
        ]
        est = _find_part(self.backend, "tdp_w")
        if est is not None:
            lines.append(f"co2: CPU {est.cpu_model_name}, TDP {est.tdp_w:g} W ({est.tdp_source})")
        if self.settings.idle:
            lines.append("co2: " + self.idle_text())
        if self.policy.mode != "not needed" or self.role != "single":
            lines.append("co2: " + self.policy.describe())
        if self.baseline_path is not None:
            fail = (
                f"; fail on {', '.join(str(f) for f in s.compare_fail)}" if s.compare_fail else ""
            )
            lines.append(f"co2: comparing with {self.baseline_path}{fail}")
        if s.regions:
            lines.append(
                "co2: what-if regions (yearly): "
                + ", ".join(f"{r} {v.g_per_kwh:g} g/kWh" for r, v in self.accounting.whatif.items())
            )
        return lines

    def tests_as_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results.values() if r.entries or r.budget]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        self._summary(terminalreporter)
        for message in self._write_errors:
            terminalreporter.write_line(message, yellow=True)
        if self.comparison is not None and self.comparison["failures"]:
            terminalreporter.write_sep("=", "co2 regressions", red=True)
            for line in self.comparison["failures"]:
                terminalreporter.write_line("co2 regression: " + line, red=True)

    def _summary(self, tr: Any) -> None:
        if self.settings.report == "off":
            return
        from .equivalents import format_equivalents
        from .table import render_summary, totals

        tests = self.tests_as_dicts()
        if not tests:
            return  # nothing measured: stay quiet in suites that do not use the plugin
        tr.write_sep("=", "co2 emissions summary")
        i = self.accounting.intensity
        tr.write_line(
            f"region {i.region}{' ' + self.settings.month if self.settings.month else ''} "
            f"{i.g_per_kwh:g} g CO2e/kWh, PUE {self.settings.pue:g}; ± is the per-unit spread scaled "
            "to the projection (the paper's convention); method says how energy was obtained"
        )
        for line in render_summary(
            tests,
            budget_mode=self.settings.budget_mode,
            full=self.settings.report == "full",
            whatif=tuple(self.accounting.whatif),
            max_rows=None if self.settings.report == "full" else SUMMARY_ROWS,
        ):
            tr.write_line(line)
        tr.write_line("total " + format_equivalents(totals(tests)["co2e_kg"]))
        if self.comparison is not None:
            tr.write_line(
                f"co2 compared with {self.comparison['baseline']} (Δ: change over the baseline)"
            )
            for line in _comparison_lines(self.comparison):
                tr.write_line(line)
        if self.settings.json:
            if not any(self.settings.json in m for m in self._write_errors):
                tr.write_line(f"co2 report written to {self.settings.json}")
        if self.settings.save:
            tr.write_line(f"co2 baseline saved to {self._saved_path()}")
        if self.settings.markdown:
            tr.write_line(f"co2 markdown written to {self.settings.markdown}")

    def _saved_path(self) -> str | None:
        from .compare import saved_path

        return (
            None
            if not self.settings.save
            else os.fspath(saved_path(self.storage_dir, self.settings.save))
        )

    def _build_report(self, exit_status: int | None, interrupted: bool) -> dict[str, Any]:
        from .report import build_report, session_info

        info = session_info(self.settings.to_dict(), self.backend, self.started, self.accounting)
        info["exclusive"] = self.policy.to_dict()
        if self.settings.idle:
            info["idle"] = {
                "seconds": self.settings.idle,
                "power_w": {
                    d.id: w for d, w in zip(self.backend.devices, self.idle_w, strict=False)
                },
                "subtracted": self.settings.subtract_idle,
            }
        info["xdist_workers"] = (
            xdist.worker_count(self.config) if self.role == "controller" else None
        )
        data = build_report(
            info, self.tests_as_dicts(), exit_status=exit_status, interrupted=interrupted
        )
        if self.comparison is not None:
            data["comparison"] = self.comparison
        self.config.hook.pytest_co2_update_json(config=self.config, report=data)
        return data

    def _write_json(self, exit_status: int | None, interrupted: bool) -> None:
        from .report import write_atomic

        self._write(write_atomic, self.settings.json, self._build_report(exit_status, interrupted))
        self._last_write = time.monotonic()

    def _write(self, writer: Any, path: Any, data: Any) -> None:
        """Write a report; a failure (disk full, folder removed) is a warning, not a traceback."""
        try:
            writer(path, data)
        except OSError as exc:
            message = f"pytest-co2: could not write {path}: {exc}"
            if message not in self._write_errors:
                self._write_errors.append(message)  # printed in the terminal summary

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        from .report import write_atomic, write_text_atomic

        status = int(exitstatus)
        interrupted = status == pytest.ExitCode.INTERRUPTED
        if self.baseline is not None:
            from .compare import comparison_block

            self.comparison = comparison_block(
                self.baseline_path,
                self.baseline,
                self.tests_as_dicts(),
                self.settings.compare_fail,  # type: ignore[arg-type]
            )
            if self.comparison["failures"] and status == pytest.ExitCode.OK:
                session.exitstatus = status = pytest.ExitCode.TESTS_FAILED
        if not (self.settings.json or self.settings.save or self.settings.markdown):
            return
        data = self._build_report(status, interrupted)
        if self.settings.json:
            self._write(write_atomic, self.settings.json, data)
        if self.settings.save and not interrupted:
            self._write(write_atomic, self._saved_path(), data)
        if self.settings.markdown:
            from .markdown import render_markdown

            self._write(write_text_atomic, self.settings.markdown, render_markdown(data))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._backend is not None:
            self._backend.close()


_BUDGET_KEY = pytest.StashKey[dict]()


def _nullcontext() -> Any:
    import contextlib

    return contextlib.nullcontext()


_JUNIT_KEY = pytest.StashKey[dict]()
JUNIT_PROPERTIES = ("co2e_kg", "energy_kwh", "method")


def _add_junit_properties(
    item: pytest.Item, report: pytest.TestReport, entries: list[dict[str, Any]]
) -> None:
    """Per-test totals as ``user_properties`` (``co2e_kg``, ``energy_kwh``, ``method``), so
    ``--junitxml`` writes them as ``<property>`` elements. junitxml reads the teardown report,
    which copies ``item.user_properties``; a teardown-phase measurement updates that report."""
    acc = item.stash.setdefault(_JUNIT_KEY, {"co2e_kg": 0.0, "energy_kwh": 0.0, "method": {}})
    acc["co2e_kg"] += sum(e["emission"]["co2e_kg"] for e in entries)
    acc["energy_kwh"] += sum(e["projection"]["energy_kwh"] for e in entries)
    acc["method"].update(dict.fromkeys(e["method"] for e in entries))
    props = [
        ("co2e_kg", acc["co2e_kg"]),
        ("energy_kwh", acc["energy_kwh"]),
        ("method", "+".join(acc["method"])),
    ]
    for target in (item.user_properties, report.user_properties):
        target[:] = [p for p in target if p[0] not in JUNIT_PROPERTIES] + props


def _comparison_lines(block: dict[str, Any]) -> list[str]:
    from .compare import render_comparison

    return render_comparison(block)


class Co2BudgetWarning(UserWarning):
    """A test exceeded its co2_budget under ``--co2-budget-mode=warn``."""
