"""The terminal emissions summary (pure: test records in, lines out), fitted to a width.

The default is compact: test, projected kWh, kg CO2e ± std, method and verdict fit 100
columns; a wider terminal gets more columns (measurement, steps, projection target, J/unit,
time, budget, what-if regions), ``full`` gets every column whatever the width. Long test ids
are shortened in the middle, never wrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..fmt import fmt_count, fmt_num, fmt_pm, row_labels, shared_dropped_width, wrap
from .model import Result, TestRecord, Totals, all_results, ranked

DEFAULT_WIDTH = 100
MIN_TEST_WIDTH = 24
GAP = 2  # tabulate's "simple" format puts two spaces between columns


class SummaryRow:
    """What the summary shows of one measurement: its test's record and its figures, from
    its :class:`Result` (:meth:`of`) or, for a deferred window whose record was not made,
    from what it read (``Co2Meter.summary_row``)."""

    __slots__ = (
        "co2e_kg", "complete", "duration_s", "energy_kwh", "measured", "method", "n", "name",
        "per_unit_j", "per_unit_std_j", "std_kg", "steps", "test", "unit", "warmup", "whatif",
    )  # fmt: skip

    def __init__(
        self,
        test: TestRecord,
        name: str,
        complete: bool,
        method: str,
        unit: str,
        steps: int,
        warmup: int,
        per_unit_j: float,
        per_unit_std_j: float,
        duration_s: float,
        n: int,
        measured: bool,
        energy_kwh: float,
        co2e_kg: float,
        std_kg: float,
        whatif: Mapping[str, float],
    ) -> None:
        self.test, self.name, self.complete, self.method = test, name, complete, method
        self.unit, self.steps, self.warmup = unit, steps, warmup
        self.per_unit_j, self.per_unit_std_j, self.duration_s = (
            per_unit_j,
            per_unit_std_j,
            duration_s,
        )
        self.n, self.measured, self.energy_kwh = n, measured, energy_kwh
        self.co2e_kg, self.std_kg, self.whatif = co2e_kg, std_kg, whatif

    @classmethod
    def of(cls, test: TestRecord, r: Result) -> SummaryRow:
        m, p, e = r.measurement, r.projection, r.emission
        return cls(
            test, m.name, m.complete, m.method, m.unit, m.steps, m.warmup,
            m.energy_per_unit_j.mean, m.energy_per_unit_j.std, m.duration_s,
            p.n, p.measured, p.energy_kwh, e.co2e_kg, e.std_kg, r.whatif_co2e_kg,
        )  # fmt: skip

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__ if k != "test")
        return f"SummaryRow({self.test.nodeid!r}, {shown})"

    def label(self) -> str:
        """The measurement's name, ``(partial)`` where it is."""
        return self.name + ("" if self.complete else " (partial)")

    def projected_to(self) -> str:
        """``150,000 iteration`` or ``5 sample (measured)``."""
        return f"{fmt_count(self.n)} {self.unit}" + (" (measured)" if self.measured else "")


def listed_rows(tests: Sequence[TestRecord], max_rows: int | None) -> tuple[list[SummaryRow], int]:
    """The summary's rows of ``tests``, largest emissions first: the first ``max_rows`` and
    every test over its budget after them; and how many measurements were left out."""
    pairs = ranked(tests)
    left_out = 0
    if max_rows is not None and len(pairs) > max_rows:
        over = [(t, r) for t, r in pairs[max_rows:] if t.budget is not None and not t.budget.passed]
        left_out = len(pairs) - max_rows - len(over)
        pairs = pairs[:max_rows] + over
    return [SummaryRow.of(t, r) for t, r in pairs], left_out


Column = tuple[str, Callable[[SummaryRow], str], Callable[[Totals], str]]


def _budget_cell(t: TestRecord, mode: str | None) -> str:
    """The verdict (``mode``: the budget mode) or the budget column's cell; the budget module
    is imported only where a test has a budget (else both columns are left out)."""
    from .budget import budget_text, verdict_text

    return budget_text(t.budget) if mode is None else verdict_text(t.budget, mode)


def _columns(budget_mode: str, whatif: Sequence[str]) -> tuple[list[Column], list[Column]]:
    """(the compact columns, the optional ones in the order they are added)."""

    def blank(_: Totals) -> str:
        return ""

    compact: list[Column] = [
        ("kWh", lambda r: fmt_num(r.energy_kwh), lambda x: fmt_num(x.energy_kwh)),
        (
            "kg CO2e ± std",
            lambda r: fmt_pm(r.co2e_kg, r.std_kg),
            lambda x: fmt_pm(x.co2e_kg, x.std_kg),
        ),
        ("method", lambda r: r.method, blank),
        ("verdict", lambda r: _budget_cell(r.test, budget_mode), blank),
    ]
    optional: list[Column] = [
        ("measurement", SummaryRow.label, lambda x: f"{x.measurements} measurements"),
        ("projected to", SummaryRow.projected_to, blank),
        ("steps", lambda r: f"{r.steps}" + (f"+{r.warmup}w" if r.warmup else ""), blank),
        ("J/unit (mean ± std)", lambda r: fmt_pm(r.per_unit_j, r.per_unit_std_j), blank),
        ("time s", lambda r: fmt_num(r.duration_s), lambda x: fmt_num(x.duration_s)),
        ("budget", lambda r: _budget_cell(r.test, None), blank),
    ]
    regions: list[Column] = [
        (
            f"kg {w}",
            lambda r, w=w: fmt_num(r.whatif.get(w)),  # type: ignore[misc]
            lambda x, w=w: fmt_num(x.whatif_co2e_kg.get(w)),  # type: ignore[misc]
        )
        for w in whatif
    ]
    return compact, regions + optional  # the regions asked for come first


def simple_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[str]:
    """``tabulate(rows, headers, tablefmt="simple", disable_numparse=True)``'s lines for
    single-line text cells, without importing tabulate (several ms at start-up): cells
    stripped and left-aligned, a column as wide as its widest cell or its header plus 2,
    columns two spaces apart, a dashed line under the headers, rows right-stripped. Widths as
    tabulate measures them: ``wcwidth`` where installed, imported only when some cell is not
    printable ASCII (the width of printable ASCII is its length)."""
    table = [[str(h).strip() for h in headers], *([str(c).strip() for c in r] for r in rows)]
    width_of: Callable[[str], int] = len
    every = "".join(map("".join, table))
    if not (every.isascii() and every.isprintable()):
        try:
            from wcwidth import wcswidth  # type: ignore[import-not-found,unused-ignore]

            width_of = wcswidth
        except ImportError:  # pragma: no cover - tabulate measures with len() then too
            pass
    widths = [
        max(width_of(col[0]) + 2, *(width_of(c) for c in col[1:]))
        for col in zip(*table, strict=True)
    ]

    def line(cells: Sequence[str]) -> str:
        text = "  ".join(c + " " * (w - width_of(c)) for c, w in zip(cells, widths, strict=True))
        return text.rstrip()  # as tabulate ends its rows

    return [line(table[0]), "  ".join("-" * w for w in widths), *(line(r) for r in table[1:])]


class _Cells:
    """The table's cells for some columns: the header row, a row per pair, the total row.
    Each column's cells and width are made once, however often the width fitting asks."""

    def __init__(self, rows: Sequence[SummaryRow], tot: Totals) -> None:
        self.rows, self.tot = rows, tot
        self.made: dict[str, list[str]] = {}
        self._widths: dict[str, int] = {}

    def column(self, col: Column) -> list[str]:
        head, get, total = col
        cells = self.made.get(head)
        if cells is None:
            cells = [head, *map(get, self.rows), total(self.tot)]
            self.made[head] = cells
        return cells

    def width(self, cols: Sequence[Column]) -> int:
        """The columns' widths as tabulate's "simple" format makes them (a header gets 2
        spaces more), summed, with the gaps before each."""
        total = 0
        for col in cols:
            w = self._widths.get(col[0])
            if w is None:
                cells = self.column(col)
                w = self._widths[col[0]] = max(len(cells[0]) + 2, *map(len, cells[1:]))
            total += w + GAP
        return total

    def __call__(self, cols: Sequence[Column]) -> list[list[str]]:
        if not cols:
            return [[] for _ in range(len(self.rows) + 2)]
        return [list(row) for row in zip(*map(self.column, cols), strict=True)]


def render_summary(
    tests: Sequence[TestRecord],
    *,
    budget_mode: str = "fail",
    full: bool = False,
    whatif: Sequence[str] = (),
    max_rows: int | None = None,
    width: int = DEFAULT_WIDTH,
    totals: Totals | None = None,
    rows: Sequence[SummaryRow] | None = None,
    left_out: int = 0,
) -> list[str]:
    """The summary table's lines (tabulate's "simple" format), a total row, and notes when ``full``.

    With ``max_rows``, only the largest emitters are listed (and every test over its budget);
    the total still covers every measurement and a line says how many rows were left out.
    ``totals``: those of ``tests`` where the caller has them already. ``rows``: the rows to
    list, chosen and ranked by the caller (see ``Collector.summary_view``), with ``left_out``
    smaller measurements that are in ``totals`` but not listed; by default those of ``tests``
    (:func:`listed_rows`).
    """
    if rows is None:
        rows, left_out = listed_rows(tests, max_rows)
    tot = Totals.of(all_results(tests)) if totals is None else totals
    compact, optional = _columns(budget_mode, whatif)
    if not any(r.test.budget is not None for r in rows):
        compact = [c for c in compact if c[0] != "verdict"]
        optional = [c for c in optional if c[0] != "budget"]
    cells = _Cells(rows, tot)

    ids_width = shared_dropped_width([f"{r.test.nodeid} [{r.name}]" for r in rows]) or 4
    keep_test = max(MIN_TEST_WIDTH, min(ids_width, 48))  # the test column comes first
    chosen = list(compact)
    missing: list[str] = []  # what-if regions asked for that do not fit
    if full:
        order = ["measurement", "time s", "steps", "J/unit (mean ± std)", "projected to", "kWh",
                 "kg CO2e ± std", "method", "budget", "verdict"]  # fmt: skip
        by_name = {c[0]: c for c in compact + optional}
        chosen = [by_name[h] for h in order if h in by_name]
        chosen += [c for c in optional if c[0].startswith("kg ")]
    else:
        for col in optional:  # add columns while the table still fits
            trial = [*chosen, col]
            if cells.width(chosen) + len(col[0]) + 2 + GAP + keep_test > width:
                continue  # its header alone does not fit: its cells are not made
            if cells.width(trial) + keep_test <= width:
                chosen = trial
        shown = {h for h, _, _ in chosen}
        missing = [h[3:] for h, _, _ in optional if h.startswith("kg ") and h not in shown]
    table = cells(chosen)
    named = any(h == "measurement" for h, _, _ in chosen)
    suffixes = ["" if named or r.name in ("default", "call") else f" [{r.label()}]" for r in rows]
    ids = [r.test.nodeid + x for r, x in zip(rows, suffixes, strict=True)]
    dropped = ""
    if full:
        names = ids
    else:
        test_width = max(MIN_TEST_WIDTH, width - cells.width(chosen))
        test_width = max(test_width, len("TOTAL (0 measurements)") + 4)
        names, dropped = row_labels(ids, test_width, suffixes)
    body = [[n, *row] for n, row in zip(names, table[1:-1], strict=True)]
    body.append(["TOTAL" if named else f"TOTAL ({tot.measurements} measurements)", *table[-1]])
    lines = simple_table(body, ["test", *table[0]])
    if missing:
        wanted = [*chosen, *(c for c in optional if c[0] in {f"kg {m}" for m in missing})]
        need = cells.width(wanted) + keep_test
        lines += wrap(
            f"what-if columns {', '.join(missing)} left out at {width} columns: "
            f"--co2-report=full or COLUMNS={need} shows them (--co2-json has every figure)",
            width,
        )
    return lines + _notes(dropped, left_out, width) + (_device_lines(tests) if full else [])


def _notes(dropped: str, left_out: int, width: int) -> list[str]:
    """What the table's rows leave out: parts of the test ids, the smaller measurements."""
    lines = []
    if dropped:
        lines += wrap(f"test names without their {dropped} (--co2-report=full: whole ids)", width)
    if left_out:
        lines += wrap(
            f"... and {left_out} smaller measurements, in the total "
            "(--co2-report=full or --co2-json lists every one)",
            width,
        )
    return lines


def _device_lines(tests: Sequence[TestRecord]) -> list[str]:
    """``--co2-report=full``: each measurement's windows, devices and notes."""
    lines = []
    for t, r in ranked(tests):
        devs = "; ".join(
            f"{d.device.label} [{d.device.method.value}] {fmt_num(d.energy_j)} J"
            for d in r.measurement.devices
        )
        lines.append(f"{t.nodeid} {r.name}: {r.measurement.windows} windows; devices: {devs}")
        lines.extend(f"    note: {note}" for note in r.measurement.notes)
    return lines
