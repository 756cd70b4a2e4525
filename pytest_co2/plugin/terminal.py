"""The terminal's part of the plugin: the report header, the emissions summary, the advice,
the comparison and the xdist workers' lines.

Registered beside the session object (``session.Co2Session``), whose state it reads and never
changes; the live progress line is ``progress.ProgressLine``, which both share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..fmt import printable

if TYPE_CHECKING:
    from .session import Co2Session

SUMMARY_ROWS = 40  # rows of the default summary (largest emitters; --co2-report=full: all)


class Co2Terminal:
    """Header and summary lines of one process (an xdist worker shows no summary)."""

    def __init__(self, session: Co2Session) -> None:
        self.session = session
        self._header_deferred = False

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """The header, when the run is known to measure (``--co2-all``, ``--co2-profile``, an
        xdist controller); otherwise only a recovered journal's note now, and the rest after
        collection if a test measures (:meth:`pytest_report_collectionfinish`): a run whose
        tests measure nothing opens no backend and reads no table for its header."""
        if not self.session.measure_known():
            self._header_deferred = True
            note = self.session.recovery_note
            return self._wrapped(config, [note]) if note else []
        return self._header(config, with_note=True)

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        if not self._header_deferred or not self.session.measure_known():
            return []
        self._header_deferred = False
        return self._header(config, with_note=False)

    def _header(self, config: pytest.Config, *, with_note: bool) -> list[str]:
        from ..backends import find_part
        from ..backends.estimate import EstimateBackend
        from .live_intensity import header_lines

        state = self.session
        s, i, provider = state.settings, state.accounting.intensity, state.provider
        month = f" {s.month}" if s.month else ""
        lines = [
            f"co2: backend {provider.describe()}",
            f"co2: region {i.region}{month} {i.g_per_kwh:g} g CO2e/kWh ({i.source}"
            f"{'; ' + i.provenance_text if i.provenance_text else ''}); "
            f"PUE {s.pue:g}; "
            + (f"extrapolate {s.extrapolate_text()}; " if s.extrapolate else "")
            + f"budget mode {s.budget_mode}",
        ]
        lines += header_lines(state.live)
        if state.role != "controller":
            est = find_part(provider.backend, EstimateBackend)
            if est is not None and est.basis not in lines[0]:
                lines.append("co2: " + est.header_line())
            if s.idle:
                lines.append("co2: " + provider.idle_text())
            # one process without a shared counter device: "not needed" goes unsaid
            policy = None if state.role == "single" and provider.lock_free else provider.policy
            if policy is not None and (policy.mode != "not needed" or state.role != "single"):
                lines.append("co2: " + policy.describe())
        if state.recovery_note and with_note:
            lines.append(state.recovery_note)
        runtime_note = state.runtime_line()
        if runtime_note:
            lines.append("co2: " + runtime_note)
        if state.baseline_path is not None:
            fail = (
                f"; fail on {', '.join(str(f) for f in s.compare_fail)}" if s.compare_fail else ""
            )
            lines.append(f"co2: comparing with {state.baseline_path}{fail}")
        if s.regions:
            whatif = ", ".join(
                f"{r} {v.g_per_kwh:g} g/kWh" for r, v in state.accounting.whatif.items()
            )
            lines.append("co2: what-if regions (yearly): " + whatif)
        return self._wrapped(config, lines)

    @staticmethod
    def _wrapped(config: pytest.Config, lines: list[str]) -> list[str]:
        from ..fmt import wrap

        width = terminal_width(config.pluginmanager.get_plugin("terminalreporter"))
        return [printable(p) for line in lines for p in wrap(line, width, indent="co2:   ")]

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        state = self.session
        if state.is_worker:
            return
        terminalreporter = _Escaping(terminalreporter)  # names and reports print escaped
        self._summary(terminalreporter)
        if exitstatus == pytest.ExitCode.INTERRUPTED and state.collector.records():
            from ..fmt import wrap

            done = len(state.collector.records())
            for part in wrap(
                f"co2: the run was interrupted (Ctrl-C or SIGTERM): these figures cover the "
                f"{done} measured {'test' if done == 1 else 'tests'} that finished before it "
                "stopped (an interrupted run saves no baseline)",
                terminal_width(terminalreporter),
            ):
                terminalreporter.write_line(part, yellow=True)
        for message in [*state.writer.errors, *state.writer.notes]:
            terminalreporter.write_line(message, yellow=True)
        comparison = state.comparison
        if comparison is not None and comparison.failures:
            from ..fmt import wrap

            width = terminal_width(terminalreporter)
            terminalreporter.write_sep("=", "co2 regressions", red=True)
            for line in comparison.failures:
                for part in wrap("co2 regression: " + line, width):
                    terminalreporter.write_line(part, red=True)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The run's last line, after pytest's own count of passed tests: that the co2
        gate failed it, and why."""
        state = self.session
        comparison = state.comparison
        if state.is_worker or comparison is None or not comparison.failures:
            return
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        from ..reporting.baseline import verdict_line

        line = verdict_line(comparison, terminal_width(tr))
        if line:
            tr.write_line(line, red=True, bold=True)

    def _summary(self, tr: Any) -> None:
        state = self.session
        s = state.settings
        if s.report == "off":
            return
        tests, totals, rows, left_out = state.collector.summary_view(
            None if s.report == "full" else SUMMARY_ROWS
        )
        if totals is None or (not tests and not rows):
            return  # nothing measured: stay quiet in suites that do not use the plugin
        from ..carbon.equivalents import format_equivalents
        from ..fmt import wrap
        from ..reporting.terminal import render_summary

        tr.write_sep("=", "co2 emissions summary")
        i = state.accounting.intensity
        width = terminal_width(tr)
        for line in wrap(
            f"region {i.region}{' ' + s.month if s.month else ''} {i.g_per_kwh:g} g CO2e/kWh"
            f"{' (' + i.source + '; ' + i.provenance_text + ')' if i.provenance_text else ''}"
            f", PUE {s.pue:g}; ± is the per-unit spread scaled "
            "to the projection (the paper's convention); method says how energy was obtained",
            width,
        ):
            tr.write_line(line)
        lock_line = state.provider.lock_summary()
        for line in [*self._worker_lines(), *(["co2: " + lock_line] if lock_line else [])]:
            for part in wrap(line, width, indent="co2:   "):
                tr.write_line(part)
        for line in render_summary(
            tests,
            totals=totals,
            rows=rows,
            left_out=left_out,
            budget_mode=s.budget_mode,
            full=s.report == "full",
            whatif=tuple(state.accounting.whatif),
            max_rows=None if s.report == "full" else SUMMARY_ROWS,
            width=width,
        ):
            tr.write_line(line)
        for line in wrap("total " + format_equivalents(totals.co2e_kg), width):
            tr.write_line(line)
        for line in self._advice_lines(width):
            tr.write_line(line)
        self._comparison(tr, width)
        for line in self._output_lines():
            tr.write_line(line)

    def _comparison(self, tr: Any, width: int) -> None:
        """The comparison table and its inconclusive warnings, when comparing."""
        comparison = self.session.comparison
        if comparison is None:
            return
        from ..fmt import wrap
        from ..reporting.baseline import render_comparison

        head = f"co2 compared with {comparison.baseline} (Δ: change over the baseline)"
        for line in [*wrap(head, width), *render_comparison(comparison, width)]:
            tr.write_line(line)
        strict = self.session.settings.compare_strict
        what = "fails (--co2-compare-strict)" if strict else "warning"
        for line in comparison.inconclusive:
            for part in wrap(f"co2 inconclusive ({what}): {line}", width):
                tr.write_line(part, yellow=True)

    def _output_lines(self) -> list[str]:
        """Which files were written (a failed write says so among the errors instead)."""
        state = self.session
        s, writer, saved = state.settings, state.writer, state.saved_path()
        lines = []
        if s.json and not writer.failed(s.json):
            lines.append(f"co2 report written to {s.json}")
        if s.save and not writer.failed(saved):
            lines.append(f"co2 baseline saved to {saved}")
        if s.markdown and not writer.failed(s.markdown):
            lines.append(f"co2 markdown written to {s.markdown}")
        return lines

    def _advice_lines(self, width: int) -> list[str]:
        from ..fmt import wrap

        advice = self.session.advice()
        return [] if advice is None else wrap("co2 advice: " + advice["session"]["text"], width)

    def _worker_lines(self) -> list[str]:
        """Under xdist, what the workers measured with (the controller opens nothing)."""
        facts = self.session.provider.worker_facts.values()
        backends = dict.fromkeys(f.backend for f in facts if f.backend)
        policies = dict.fromkeys(f.exclusive.description for f in facts if f.exclusive)
        lines = [f"co2: workers measured with {b}" for b in backends]
        locks = [f"co2: {f.lock_summary}" for f in facts if f.lock_summary]
        return lines + [f"co2: {p}" for p in policies] + locks


class _Escaping:
    """The terminal reporter, with control characters in every line escaped (a measure
    name, a node id or a report's text must not drive the terminal)."""

    def __init__(self, tr: Any) -> None:
        self._tr = tr

    def write_line(self, line: str, **markup: Any) -> None:
        self._tr.write_line(printable(line), **markup)

    def write_sep(self, sep: str, title: str | None = None, **markup: Any) -> None:
        self._tr.write_sep(sep, None if title is None else printable(title), **markup)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tr, name)


def terminal_width(tr: Any) -> int:
    """The terminal's width as pytest sees it (``COLUMNS`` included), 100 when unknown."""
    width = getattr(getattr(tr, "_tw", None), "fullwidth", None)
    return int(width) if isinstance(width, int) and width > 0 else 100
