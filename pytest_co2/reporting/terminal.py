"""The terminal emissions summary (pure: test records in, lines out)."""

from __future__ import annotations

from collections.abc import Sequence

from .budget import budget_text, verdict_text
from .fmt import fmt_count, fmt_num, fmt_pm
from .model import Result, TestRecord, Totals, all_results, ranked


def projected_to(r: Result) -> str:
    """``150,000 iteration`` or ``5 sample (measured)``."""
    p = r.projection
    return f"{fmt_count(p.n)} {r.measurement.unit}" + (" (measured)" if p.measured else "")


def measurement_name(r: Result) -> str:
    return r.measurement.name + ("" if r.measurement.complete else " (partial)")


def render_summary(
    tests: Sequence[TestRecord],
    *,
    budget_mode: str = "fail",
    full: bool = False,
    whatif: Sequence[str] = (),
    max_rows: int | None = None,
) -> list[str]:
    """The summary table's lines (tabulate), a total row, and notes when ``full``.

    With ``max_rows``, only the largest emitters are listed (and every test over its budget);
    the total still covers every measurement and a line says how many rows were left out.
    """
    from tabulate import tabulate

    headers = [
        "test", "measurement", "time s", "steps", "J/unit (mean ± std)", "projected to",
        "kWh", "kg CO2e ± std", "method", "budget", "verdict",
    ] + [f"kg {r}" for r in whatif]  # fmt: skip
    pairs = ranked(tests)
    left_out = 0
    if max_rows is not None and len(pairs) > max_rows:
        over = [(t, r) for t, r in pairs[max_rows:] if t.budget is not None and not t.budget.passed]
        left_out = len(pairs) - max_rows - len(over)
        pairs = pairs[:max_rows] + over
    rows = []
    for t, r in pairs:
        m, s = r.measurement, r.measurement.energy_per_unit_j
        rows.append(
            [
                t.nodeid,
                measurement_name(r),
                fmt_num(m.duration_s),
                f"{m.steps}" + (f"+{m.warmup}w" if m.warmup else ""),
                fmt_pm(s.mean, s.std),
                projected_to(r),
                fmt_num(r.projection.energy_kwh),
                fmt_pm(r.emission.co2e_kg, r.emission.std_kg),
                m.method,
                budget_text(t.budget),
                verdict_text(t.budget, budget_mode),
            ]
            + [fmt_num(r.whatif_co2e_kg.get(w)) for w in whatif]
        )
    tot = Totals.of(all_results(tests))
    rows.append(
        ["TOTAL", f"{tot.measurements} measurements", fmt_num(tot.duration_s), "", "", "",
         fmt_num(tot.energy_kwh), fmt_pm(tot.co2e_kg, tot.std_kg), "", "", ""]
        + [fmt_num(tot.whatif_co2e_kg.get(w)) for w in whatif]
    )  # fmt: skip
    lines = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True).splitlines()
    if left_out:
        lines.append(
            f"... and {left_out} smaller measurements, in the total "
            "(--co2-report=full or --co2-json lists every one)"
        )
    if full:
        for t, r in ranked(tests):
            devs = "; ".join(
                f"{d.device.label} [{d.device.method.value}] {fmt_num(d.energy_j)} J"
                for d in r.measurement.devices
            )
            lines.append(f"{t.nodeid} {r.name}: {r.measurement.windows} windows; devices: {devs}")
            lines.extend(f"    note: {note}" for note in r.measurement.notes)
    return lines
