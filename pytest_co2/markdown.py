"""A markdown table of a report, for a CI job summary or a pull-request comment (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .table import budget_text, fmt_count, fmt_num, fmt_pm, rows_from_tests, verdict


def _cell(text: Any) -> str:
    """Escape what would break a table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render_markdown(report: Mapping[str, Any], *, title: str = "CO2e of this test run") -> str:
    """The report (and its ``comparison`` block, if any) as markdown: a heading, the
    accounting used, one row per measurement, a total, regressions."""
    from .equivalents import format_equivalents

    session = report.get("session", {})
    settings = session.get("settings", {})
    intensity = session.get("intensity", {})
    comparison = report.get("comparison")
    budget_mode = settings.get("budget_mode", "fail")
    month = f" {settings['month']}" if settings.get("month") else ""
    lines = [f"### {title}", ""]
    g = intensity.get("g_per_kwh")
    pue = settings.get("pue")
    lines.append(
        f"Region {intensity.get('region', '?')}{month}, {'?' if g is None else format(g, 'g')} g CO2e/kWh; "
        f"PUE {'?' if pue is None else format(pue, 'g')}; backend {session.get('backend', '?')}"
    )
    if session.get("exclusive") and session["exclusive"].get("mode") != "not needed":
        lines.append("")
        lines.append(f"_{session['exclusive']['description']}_")
    lines.append("")
    headers = [
        "test",
        "measurement",
        "steps",
        "projected to",
        "kWh",
        "kg CO2e ± std",
        "method",
        "budget",
        "verdict",
    ]
    deltas: dict[tuple[str, str], Mapping[str, Any]] = {}
    if comparison:
        headers += ["Δ energy", "Δ CO2e"]
        deltas = {(d["nodeid"], d["name"]): d for d in comparison["deltas"]}
    lines.append(_row(headers))
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    tests = report.get("tests", [])
    for t, e in rows_from_tests(tests):
        p, em = e["projection"], e["emission"]
        cells = [
            f"`{t['nodeid']}`",
            e["name"] + ("" if e.get("complete", True) else " (partial)"),
            e["steps"],
            f"{fmt_count(p['n'])} {e['unit']}" + (" (measured)" if p.get("measured") else ""),
            fmt_num(p["energy_kwh"]),
            fmt_pm(em["co2e_kg"], em.get("std_kg")),
            e["method"],
            budget_text(t.get("budget")),
            verdict(t.get("budget"), budget_mode),
        ]
        if comparison:
            d = deltas.get((t["nodeid"], e["name"]))
            cells += [_pct(d, "energy_pct"), _pct(d, "co2e_pct")]
        lines.append(_row(cells))
    tot = report.get("totals") or {}
    if tot:
        cells = [
            "**total**",
            f"{tot.get('measurements', 0)} measurements",
            "",
            "",
            fmt_num(tot.get("energy_kwh")),
            fmt_pm(tot.get("co2e_kg"), tot.get("std_kg")),
            "",
            "",
            "",
        ]
        lines.append(_row(cells + (["", ""] if comparison else [])))
        lines += ["", format_equivalents(tot.get("co2e_kg", 0.0))]
    if comparison:
        lines += [
            "",
            f"Compared with `{comparison['baseline']}`"
            + (
                f" (started {comparison['baseline_started']})"
                if comparison.get("baseline_started")
                else ""
            )
            + ".",
        ]
        if comparison.get("failures"):
            lines += ["", "**Regressions:**", ""] + [
                f"- {_cell(f)}" for f in comparison["failures"]
            ]
    return "\n".join(lines) + "\n"


def _pct(d: Mapping[str, Any] | None, key: str) -> str:
    from .compare import fmt_pct

    if d is None:
        return ""
    value = d.get(key)
    if value == "inf":
        return "+inf%"
    return fmt_pct(value)
