"""The terminal emissions summary and number formatting (pure: entries in, text out)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def fmt_num(x: float | None, sig: int = 3) -> str:
    """``sig`` significant digits, thousands separated: 1,760 / 12.3 / 0.00139; n/a for NaN."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        return f"{x:.{sig}g}".replace("e-0", "e-")
    decimals = max(0, sig - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def fmt_pm(x: float | None, std: float | None) -> str:
    if std is None or not math.isfinite(std):
        return fmt_num(x)
    return f"{fmt_num(x)} ± {fmt_num(std, 2)}"


def fmt_count(n: float) -> str:
    return f"{int(n):,}" if float(n).is_integer() else f"{n:,.2f}"


def verdict(budget: Mapping[str, Any] | None, mode: str) -> str:
    if not budget:
        return ""
    if budget.get("passed"):
        return "ok"
    return "OVER (warn)" if mode == "warn" else "OVER"


def budget_text(budget: Mapping[str, Any] | None) -> str:
    if not budget:
        return ""
    parts = []
    if budget.get("kg") is not None:
        parts.append(f"{fmt_num(budget['kg'])} kg")
    if budget.get("kwh") is not None:
        parts.append(f"{fmt_num(budget['kwh'])} kWh")
    return ", ".join(parts)


def rows_from_tests(
    tests: Iterable[Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(test, entry) pairs, sorted by projected emissions, largest first."""
    pairs = [(t, e) for t in tests for e in t["measurements"]]
    pairs.sort(key=lambda p: -p[1]["emission"]["co2e_kg"])
    return pairs


def totals(tests: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    entries = [e for t in tests for e in t["measurements"]]
    return {
        "measurements": len(entries),
        "duration_s": math.fsum(e["duration_s"] for e in entries),
        "energy_j": math.fsum(e["energy_j"] for e in entries),
        "energy_kwh": math.fsum(e["projection"]["energy_kwh"] for e in entries),
        "std_kwh": math.sqrt(math.fsum((e["projection"]["std_kwh"] or 0.0) ** 2 for e in entries)),
        "co2e_kg": math.fsum(e["emission"]["co2e_kg"] for e in entries),
        "std_kg": math.sqrt(math.fsum((e["emission"]["std_kg"] or 0.0) ** 2 for e in entries)),
        "whatif_co2e_kg": {
            r: math.fsum(e.get("whatif_co2e_kg", {}).get(r, 0.0) for e in entries)
            for r in dict.fromkeys(r for e in entries for r in e.get("whatif_co2e_kg", {}))
        },
    }


def render_summary(
    tests: Sequence[Mapping[str, Any]],
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
        "test",
        "measurement",
        "time s",
        "steps",
        "J/unit (mean ± std)",
        "projected to",
        "kWh",
        "kg CO2e ± std",
        "method",
        "budget",
        "verdict",
    ] + [f"kg {r}" for r in whatif]
    rows = []
    pairs = rows_from_tests(tests)
    if max_rows is not None and len(pairs) > max_rows:
        over = [
            (t, e) for t, e in pairs[max_rows:] if t.get("budget") and not t["budget"].get("passed")
        ]
        left_out = len(pairs) - max_rows - len(over)
        pairs = pairs[:max_rows] + over
    else:
        left_out = 0
    for t, e in pairs:
        p, em, s = e["projection"], e["emission"], e["energy_per_unit_j"]
        n_text = f"{fmt_count(p['n'])} {e['unit']}" + (" (measured)" if p.get("measured") else "")
        name = e["name"] + ("" if e.get("complete", True) else " (partial)")
        row = [
            t["nodeid"],
            name,
            fmt_num(e["duration_s"]),
            f"{e['steps']}" + (f"+{e['warmup']}w" if e.get("warmup") else ""),
            fmt_pm(s["mean"], s.get("std")),
            n_text,
            fmt_num(p["energy_kwh"]),
            fmt_pm(em["co2e_kg"], em.get("std_kg")),
            e["method"],
            budget_text(t.get("budget")),
            verdict(t.get("budget"), budget_mode),
        ]
        row += [fmt_num(e.get("whatif_co2e_kg", {}).get(r)) for r in whatif]
        rows.append(row)
    tot = totals(tests)
    rows.append(
        [
            "TOTAL",
            f"{tot['measurements']} measurements",
            fmt_num(tot["duration_s"]),
            "",
            "",
            "",
            fmt_num(tot["energy_kwh"]),
            fmt_pm(tot["co2e_kg"], tot["std_kg"]),
            "",
            "",
            "",
        ]
        + [fmt_num(tot["whatif_co2e_kg"].get(r)) for r in whatif]
    )
    lines = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True).splitlines()
    if left_out:
        lines.append(
            f"... and {left_out} smaller measurements, in the total "
            "(--co2-report=full or --co2-json lists every one)"
        )
    if full:
        for t, e in rows_from_tests(tests):
            devs = "; ".join(
                f"{d['label']} [{d['method']}] {fmt_num(d['energy_j'])} J" for d in e["devices"]
            )
            lines.append(f"{t['nodeid']} {e['name']}: {e['windows']} windows; devices: {devs}")
            for note in e.get("notes", ()):
                lines.append(f"    note: {note}")
    return lines
