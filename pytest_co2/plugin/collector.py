"""Collect each test's measurements as typed records, converted once.

A measurement recorded by a meter waits in ``pending`` until the phase's report is made;
then it becomes a :class:`Result` (projection, emission, what-ifs). In a single process the
records go straight into ``tests``; a pytest-xdist worker puts their dicts on the test
report instead, and the controller rebuilds them in ``pytest_runtest_logreport``: the same
records either way, serialized only at that boundary. A deferred call window (see
``runtest``) becomes its test's result when the records are first read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a first record comes: a run that measures nothing skips them
    from ..measure.assemble import Readings
    from ..measure.records import Measurement
    from ..reporting.model import BudgetVerdict, Numbers, Result, TestRecord, Totals
    from ..reporting.terminal import SummaryRow
    from .fixture import Co2Meter

ENTRIES_ATTR = "co2_entries"  # on a worker's TestReport: [Result.to_dict()]
BUDGET_ATTR = "co2_budget"  # on a worker's TestReport: BudgetVerdict.to_dict()
JUNIT_PROPERTIES = ("co2e_kg", "energy_kwh", "method")
#: A deferred window: its test's record, its place in the record's results, what the closed
#: window read, and the meter that makes its result.
Deferred = tuple["TestRecord", int, "Readings", "Co2Meter"]


class Collector:
    """Per-process store of the run's test records."""

    def __init__(self) -> None:
        self._tests: dict[str, TestRecord] = {}
        self.pending: list[Measurement] = []
        self._deferred: list[Deferred] = []  # assembled on read
        self._record_type: type[TestRecord] | None = None  # imported with the first record

    @property
    def tests(self) -> dict[str, TestRecord]:
        """Every test's record by node id, deferred windows assembled."""
        if self._deferred:
            self.settle()
        return self._tests

    @property
    def unsettled(self) -> int:
        """Deferred windows not yet assembled into results."""
        return len(self._deferred)

    def defer(self, nodeid: str, ended: Readings | None, meter: Co2Meter) -> None:
        """What a closed, deferred window of test ``nodeid`` read (None: nothing): its
        result is made on first read."""
        record = self._record(nodeid)
        if ended is not None:
            self._deferred.append((record, len(record.results), ended, meter))

    def settle(self) -> None:
        """Assemble the deferred windows into their tests' results, in their places."""
        deferred, self._deferred = self._deferred, []
        _insert(deferred)

    def summary_view(
        self, max_rows: int | None
    ) -> tuple[list[TestRecord], Totals | None, list[SummaryRow], int]:
        """What the summary shows: the records, the totals of every measurement, the rows to
        list (the first ``max_rows`` by emissions of every measurement, and every test over
        its budget after them) and how many measurements were left out of them. The rows of
        deferred windows are made from what they read, their records are not (see
        ``Co2Meter.summary_row``). A run that measured nothing imports nothing here."""
        if not self._tests:
            return [], None, [], 0
        from ..reporting.model import Totals, all_results
        from ..reporting.terminal import SummaryRow, listed_rows

        if max_rows is None or not self._deferred:
            tests = self.records()
            return tests, Totals.of(all_results(tests)), *listed_rows(tests, max_rows)
        numbers = self._numbers()
        self._settle_records({id(d[0]) for d in self._deferred if numbers[id(d[2])] is None})
        every = self._in_report_order(numbers)
        totals = Totals.summed([e[0] for e in every])
        keys = [-e[0][4] for e in every]
        order = sorted(range(len(every)), key=keys.__getitem__)  # as ranked(): stable
        listed = order[:max_rows] + [i for i in order[max_rows:] if _over(every[i][1])]
        rows = []
        for i in listed:
            figures, record, x = every[i]
            if isinstance(x, tuple):  # a deferred window: its row without its record
                rows.append(x[3].summary_row(record, x[2], figures))
            else:
                rows.append(SummaryRow.of(record, x))
        return self._listed(), totals, rows, len(every) - len(listed)

    def _in_report_order(
        self, numbers: dict[int, Numbers | None]
    ) -> list[tuple[Numbers, TestRecord, Result | Deferred]]:
        """Every measurement in report order, the deferred windows in their places: its
        figures (``numbers``: those of the deferred ones), its record, and itself."""
        waiting: dict[int, list[Deferred]] = {}
        for d in self._deferred:
            waiting.setdefault(id(d[0]), []).append(d)
        every: list[tuple[Numbers, TestRecord, Result | Deferred]] = []
        for record in self._tests.values():
            entries = waiting.get(id(record))
            if entries is None:
                every.extend((x.numbers(), record, x) for x in record.results)
                continue
            if not record.results and len(entries) == 1:  # the usual: a call window alone
                every.append((numbers[id(entries[0][2])], record, entries[0]))  # type: ignore[arg-type]
                continue
            items: list[Result | Deferred] = list(record.results)
            for d in reversed(entries):
                items.insert(d[1], d)
            for x in items:
                if isinstance(x, tuple):
                    every.append((numbers[id(x[2])], record, x))  # type: ignore[arg-type]
                else:
                    every.append((x.numbers(), record, x))
        return every

    def _numbers(self) -> dict[int, Numbers | None]:
        """The figures of each deferred window (by the id of its readings), from its meter
        (see ``Co2Meter.numbers_of``); None: its record must be made."""
        by_meter: dict[int, tuple[Co2Meter, list[Readings]]] = {}
        for _, _, ended, meter in self._deferred:
            by_meter.setdefault(id(meter), (meter, []))[1].append(ended)
        out: dict[int, Numbers | None] = {}
        for meter, read in by_meter.values():
            out.update(zip(map(id, read), meter.numbers_of(read), strict=True))
        return out

    def _settle_records(self, records: set[int]) -> None:
        """Assemble the deferred windows of ``records`` (ids) into their results."""
        if records:
            mine = [d for d in self._deferred if id(d[0]) in records]
            self._deferred = [d for d in self._deferred if id(d[0]) not in records]
            _insert(mine)

    def _record(self, nodeid: str) -> TestRecord:
        record = self._tests.get(nodeid)
        if record is None:
            make = self._record_type
            if make is None:  # once: a `from` import runs 8k instructions
                from ..reporting.model import TestRecord

                make = self._record_type = TestRecord
            record = self._tests[nodeid] = make(nodeid)
        return record

    def on_record(self, m: Measurement) -> None:
        """The meters' ``on_record`` callback."""
        self.pending.append(m)

    def mark_partial(self, measurements: Sequence[Measurement], reason: str) -> None:
        """Mark pending ``measurements`` partial with ``reason`` (the test raised in them)."""
        ids = {id(m) for m in measurements}
        self.pending[:] = [
            replace(m, complete=False, notes=(f"partial: {reason}", *m.notes))
            if id(m) in ids
            else m
            for m in self.pending
        ]

    def drain(self, to_result: Any) -> list[Result]:
        """The pending measurements as results (``to_result``: the test's meter.result_of)."""
        out = [to_result(m) for m in self.pending]
        self.pending.clear()
        return out

    def add(self, nodeid: str, results: Sequence[Result], verdict: BudgetVerdict | None) -> None:
        if not results and verdict is None and nodeid not in self._tests:
            return
        record = self._record(nodeid)
        record.results.extend(results)
        if verdict is not None:
            record.budget = verdict

    def attach(
        self, report: pytest.TestReport, results: Sequence[Result], verdict: BudgetVerdict | None
    ) -> None:
        """A worker's half: the records travel on the report, as dicts."""
        if results:
            setattr(report, ENTRIES_ATTR, [r.to_dict() for r in results])
        if verdict is not None:
            setattr(report, BUDGET_ATTR, verdict.to_dict())

    def receive(self, report: pytest.TestReport) -> bool:
        """The controller's half: rebuild what a worker attached; True if anything came."""
        entries = getattr(report, ENTRIES_ATTR, None)
        budget = getattr(report, BUDGET_ATTR, None)
        if not entries and budget is None:
            return False
        from ..reporting.model import BudgetVerdict, Result

        results = [Result.from_dict(e) for e in entries or ()]
        self.add(
            report.nodeid, results, None if budget is None else BudgetVerdict.from_dict(budget)
        )
        return True

    def outcome(self, report: pytest.TestReport) -> None:
        """Keep the test's outcome from its call report, or from a failed setup or teardown
        (an error, which wins); other reports change nothing."""
        when, outcome = report.when, report.outcome
        if when == "call" or outcome == "failed":
            record = self._tests.get(report.nodeid)
            if record is not None:
                record.outcome = "error" if when != "call" else outcome

    def records(self) -> list[TestRecord]:
        """The records with a result or a budget (deferred windows assembled)."""
        if self._deferred:
            self.settle()
        return self._listed()

    def _listed(self) -> list[TestRecord]:
        return [r for r in self._tests.values() if r.results or r.budget is not None]


def _over(record: TestRecord) -> bool:
    """Whether the test is over its budget: listed in the summary whatever its rank."""
    budget = record.budget
    return budget is not None and not budget.passed


def _insert(deferred: Sequence[Deferred]) -> None:
    """Each deferred window's result into its record's results, at its place."""
    from ..measure.assemble import assemble

    for record, at, ended, meter in reversed(deferred):  # later places first
        record.results.insert(at, meter.result_of(assemble(ended)))


def junit_properties(results: Sequence[Result]) -> list[tuple[str, Any]]:
    """Per-test totals for ``--junitxml``: ``co2e_kg``, ``energy_kwh``, ``method``."""
    methods = dict.fromkeys(r.measurement.method for r in results)
    return [
        ("co2e_kg", sum(r.emission.co2e_kg for r in results)),
        ("energy_kwh", sum(r.projection.energy_kwh for r in results)),
        ("method", "+".join(methods)),
    ]


def set_junit_properties(
    item: pytest.Item, report: pytest.TestReport, results: Sequence[Result]
) -> None:
    """junitxml reads the teardown report, which copies ``item.user_properties``; a
    teardown-phase measurement updates that report."""
    props = junit_properties(results)
    for target in (item.user_properties, report.user_properties):
        target[:] = [p for p in target if p[0] not in JUNIT_PROPERTIES] + props
