"""Carbon-aware deferral of heavy tests: ``@pytest.mark.co2_defer(above=300)`` and
``--co2-defer-above=300``.

Which tests: every test marked ``co2_defer``; with ``--co2-defer-above``, also every test that
uses ``co2_meter`` or has a ``co2_budget`` marker (the tests that declare their energy matters;
``--co2-all`` does not widen this). A marker's ``above`` wins over the option.

The intensity is the session's ``--co2-intensity-source`` value, looked up once at start: under
pytest-xdist by the controller, which hands it (and its forecast) to every worker; each
worker decides for its tests from that value and makes no request. The decision
(``carbon.defer``) is made once per threshold and process, at collection; a deferred test
gets a ``skip`` marker with the reason (its fixtures never run); why each
targeted test was deferred or ran is in the summary and the JSON report (``defer``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from ..constants import DEFER_MARKER as MARKER
from .runtest import has_marker, marked

if TYPE_CHECKING:
    from ..carbon.defer import Deferral
    from .session import Co2Session

ATTR = "co2_defer"  # on the setup report of a targeted test: Deferral.to_dict() (or an error)
_DECISION_KEY: pytest.StashKey[Deferral] = pytest.StashKey()
#: A bad co2_defer marker's message: the test fails in its setup.
_ERROR_KEY: pytest.StashKey[str] = pytest.StashKey()


def _utcnow() -> _dt.datetime:
    """The time the best start is counted from (a module function: tests replace it)."""
    return _dt.datetime.now(_dt.timezone.utc)


def threshold(
    item: pytest.Item,
    default: float | None,
    *,
    has_mark: bool | None = None,
    has_budget: bool | None = None,
) -> float | None:
    """The test's threshold in g CO2e/kWh (None: not deferred); ValueError (one line) for a
    bad marker. ``has_mark``, ``has_budget``: whether the item has the defer marker or a
    budget, where the caller knows (see ``runtest.marked``)."""
    if has_mark is None:
        has_mark = has_marker(item, MARKER)
    mark = item.get_closest_marker(MARKER) if has_mark else None
    if mark is None:
        if default is None:
            return None
        fixtures = getattr(item, "fixturenames", ())
        if "co2_meter" in fixtures:
            return default
        if has_budget is None:
            has_budget = has_marker(item, "co2_budget")
        return default if has_budget else None
    unknown = sorted(set(mark.kwargs) - {"above"})
    if unknown or len(mark.args) > 1 or (mark.args and "above" in mark.kwargs):
        raise ValueError(
            f"{MARKER}: unexpected arguments {mark.args!r} {mark.kwargs!r}: expected "
            f"{MARKER}(above=G_PER_KWH), e.g. {MARKER}(above=300)"
        )
    value = mark.kwargs.get("above", mark.args[0] if mark.args else None)
    if value is None:
        if default is None:
            raise ValueError(
                f"{MARKER} needs a threshold: give {MARKER}(above=G_PER_KWH) or "
                "--co2-defer-above=G_PER_KWH"
            )
        return default
    from ..carbon.defer import parse_defer_above

    try:
        return parse_defer_above(value)
    except ValueError as exc:
        raise ValueError(f"{MARKER}(above={value!r}): {exc}") from None


class DeferHooks:
    """Registered in every process: workers and single processes decide at collection; the
    per-test hooks (:class:`DeferRuntest`) are registered only where some test is targeted
    (and in an xdist controller, which keeps what the workers decided)."""

    def __init__(self, state: Co2Session) -> None:
        self.state = state
        self.tests: dict[str, dict[str, Any]] = {}  # nodeid -> the ATTR entry
        self._decisions: dict[float, Deferral] = {}
        self._runtest: DeferRuntest | None = None
        if state.role == "controller":
            self._register()

    def _register(self) -> None:
        if self._runtest is None:
            self._runtest = DeferRuntest(self)
            self.state.config.pluginmanager.register(self._runtest, "pytest-co2-defer-runtest")

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Decide for each targeted test now (the session's intensity is fixed): a deferred
        one gets a ``skip`` marker, so that pytest reports it at the test's own line."""
        default = self.state.settings.defer_above
        with_mark = marked(items, MARKER)
        if default is None and not any(with_mark):
            return  # no test is targeted
        # whether a test has a budget matters only with --co2-defer-above
        with_budget: list[bool | None] = [None] * len(items)
        if default is not None:
            with_budget[:] = marked(items, "co2_budget")
        for item, has_mark, has_budget in zip(items, with_mark, with_budget, strict=True):
            try:
                above = threshold(item, default, has_mark=has_mark, has_budget=has_budget)
            except ValueError as exc:
                item.stash[_ERROR_KEY] = str(exc)
                self._register()
                continue
            if above is None:
                continue
            self._register()
            deferral = item.stash[_DECISION_KEY] = self.decision(above)
            if deferral.defer:
                item.add_marker(pytest.mark.skip(reason=deferral.reason))

    def decision(self, above: float) -> Deferral:
        """The decision for ``above``, made once (the session's intensity is fixed)."""
        if above not in self._decisions:
            from ..carbon.defer import decide

            live = self.state.live
            self._decisions[above] = decide(
                None if live is None else live.intensity,
                () if live is None else live.forecast,
                above,
                _utcnow(),
            )
        return self._decisions[above]

    # -- what the run says -------------------------------------------------------------------
    def block(self) -> dict[str, Any] | None:
        """The JSON report's ``defer`` block (None: no test was targeted)."""
        if not self.tests:
            return None
        deferred = [n for n, e in self.tests.items() if e.get("deferred")]
        return {
            "deferred": len(deferred),
            "ran": len(self.tests) - len(deferred),
            "tests": dict(self.tests),
        }

    def lines(self) -> list[str]:
        """One summary line per distinct decision: how many tests, deferred or ran, and why."""
        if not self.tests:
            return []  # no test targeted: nothing to say (and nothing to import)
        from ..carbon.defer import decision_lines

        return [f"co2 defer: {line}" for line in decision_lines(self.tests)]

    def pytest_co2_update_json(self, config: pytest.Config, report: dict[str, Any]) -> None:
        block = self.block()
        if block is not None:
            report["defer"] = block

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.state.is_worker or self.state.settings.report == "off":
            return
        from ..fmt import printable, wrap
        from .terminal import terminal_width

        width = terminal_width(terminalreporter)
        for line in self.lines():
            for part in wrap(line, width, indent="co2:   "):
                terminalreporter.write_line(printable(part), yellow="deferred" in line)


class DeferRuntest:
    """The per-test hooks: a bad marker fails its test; each targeted test's decision travels
    on its setup report (across xdist) to the process that reports."""

    def __init__(self, hooks: DeferHooks) -> None:
        self.hooks = hooks

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        error = item.stash.get(_ERROR_KEY, None)
        if error is not None:
            pytest.fail(error, pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Generator[None, Any, Any]:
        report = yield
        deferral = item.stash.get(_DECISION_KEY, None)
        if deferral is not None and call.when == "setup":
            setattr(report, ATTR, deferral.to_dict())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = getattr(report, ATTR, None)
        if entry and not self.hooks.state.is_worker:
            self.hooks.tests[report.nodeid] = dict(entry)
