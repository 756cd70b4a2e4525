"""A markdown table of a report, for a CI job summary or a pull-request comment (pure).

Every user-provided string (test ids, measurement names, notes, paths) goes through
:func:`md_text` or :func:`md_code`, so that no name can inject markup, HTML or links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..fmt import fmt_count, fmt_num, fmt_pct, fmt_pm, plural
from .budget import budget_text, verdict_text
from .json_report import Report
from .model import all_results
from .terminal import listed_rows

if TYPE_CHECKING:
    from ..carbon.intensity_value import Intensity

_SPECIAL = re.compile(r"([\\`*_<>|~&])")


def md_text(text: Any) -> str:
    """Plain text safe in a markdown table cell: markup characters escaped, one line."""
    escaped = _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return escaped.replace("](", "]\\(")  # no inline link or image can form


def md_code(text: Any) -> str:
    """Text as a code span (literal, no HTML) safe in a table cell, whatever backticks it has."""
    s = " ".join(str(text).split()).replace("|", "\\|")
    runs = [len(m) for m in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _provenance(intensity: Intensity | None) -> str:
    """`` (source; live, zone DE, at ...)`` for a --co2-intensity-source value, else ``""``."""
    if intensity is None or intensity.provenance == "shipped":
        return ""
    return f" ({md_text(intensity.source)}; {md_text(intensity.provenance_text)})"


def render_markdown(report: Report, *, title: str = "CO2e of this test run") -> str:
    """The report (and its comparison, if any) as markdown: a heading, the accounting used,
    one row per measurement, a total, regressions."""
    from ..carbon.equivalents import format_equivalents

    session = report.session
    intensity = session.intensity
    comparison = report.comparison
    budget_mode = session.setting("budget_mode", "fail")
    month = f" {md_text(session.setting('month'))}" if session.setting("month") else ""
    pue = session.setting("pue")
    region = "?" if intensity is None else intensity.region
    g = "?" if intensity is None else format(intensity.g_per_kwh, "g")
    lines = [f"### {md_text(title)}", ""]
    lines.append(
        f"Region {md_text(region)}{month}, {g} g CO2e/kWh{_provenance(intensity)}; "
        f"PUE {'?' if pue is None else format(pue, 'g')}; backend {md_text(session.backend or '?')}"
    )
    exclusive = session.exclusive
    if exclusive is not None and exclusive.needed:
        lines += ["", f"_{md_text(exclusive.description)}_"]
    lines.append("")
    headers = ["test", "measurement", "steps", "projected to", "kWh", "kg CO2e ± std", "method", "budget", "verdict"]  # fmt: skip
    deltas = {}
    if comparison is not None:
        headers += ["Δ energy", "Δ CO2e"]
        deltas = {(d.nodeid, d.name): d for d in comparison.deltas}
    lines.append(_row(headers))
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for row in listed_rows(report.tests, None)[0]:  # every measurement, largest first
        t = row.test
        cells = [
            md_code(t.nodeid),
            md_text(row.label()),
            str(row.steps),
            md_text(row.projected_to()),
            fmt_num(row.energy_kwh),
            fmt_pm(row.co2e_kg, row.std_kg),
            md_text(row.method),
            budget_text(t.budget),
            verdict_text(t.budget, budget_mode),
        ]
        if comparison is not None:
            d = deltas.get((t.nodeid, row.name))
            cells += (
                ["", ""]
                if d is None
                else [fmt_pct(d.percent("energy")), fmt_pct(d.percent("co2e"))]
            )
        lines.append(_row(cells))
    results = all_results(report.tests)
    if results:
        tot = report.totals
        cells = [
            "**total**", f"{tot.measurements} measurements", "", "",
            fmt_num(tot.energy_kwh), fmt_pm(tot.co2e_kg, tot.std_kg), "", "", "",
        ]  # fmt: skip
        lines.append(_row(cells + (["", ""] if comparison is not None else [])))
        lines += ["", format_equivalents(tot.co2e_kg)]
    advice = report.extra.get("advice")
    if isinstance(advice, Mapping) and isinstance(advice.get("session"), Mapping):
        lines += ["", f"Advice: {md_text(advice['session'].get('text', ''))}"]
    lines += _block_sections(report.extra)
    if comparison is not None:
        started = (
            f" (started {md_text(comparison.baseline_started)})"
            if comparison.baseline_started
            else ""
        )
        lines += ["", f"Compared with {md_code(comparison.baseline)}{started}."]
        if comparison.failures:
            lines += ["", "**Regressions:**", ""] + [f"- {md_text(f)}" for f in comparison.failures]
    return "\n".join(lines) + "\n"


def _block_sections(extra: Mapping[str, Any]) -> list[str]:
    """Short sections for the ``sci``, ``defer`` and ``profile`` blocks, when present."""
    from ..carbon.defer import decision_lines
    from .blocks import profile_of
    from .profile import TOP, top_lines
    from .sci import FORMULA

    lines: list[str] = []
    sci = extra.get("sci")
    if isinstance(sci, Mapping) and sci.get("measurements"):
        lines += ["", f"**SCI per unit** ({md_text(FORMULA)}, g CO2e, location-based; the "
                  "boundary is in the JSON report)", ""]  # fmt: skip
        head = ["test", "measurement", "SCI per unit", "E x I", "M", "projected", "market-based"]
        lines += [_row(head), "|" + "|".join("---" for _ in head) + "|"]
        for row in sci["measurements"]:
            market = row.get("market_based")
            unit, n = row["functional_unit"], row["projection"]["n"]
            lines.append(_row([
                md_code(row["nodeid"]), md_text(row["name"]),
                f"{fmt_num(row['sci_g_per_unit'])} g/{md_text(unit)}",
                fmt_num(row["operational_g_per_unit"]), fmt_num(row["embodied_g_per_unit"]),
                f"{fmt_num(row['projection']['sci_g'])} g for {fmt_count(n)} {md_text(plural(unit, n))}",
                "" if market is None else f"{fmt_num(market['total_g_per_unit'])} g/{md_text(unit)}",
            ]))  # fmt: skip
    defer = extra.get("defer")
    if isinstance(defer, Mapping):
        shards = defer.get("shards")
        groups = shards if isinstance(shards, list) else [defer]
        lines += ["", "**Carbon-aware deferral:**", ""]
        for g in groups:
            where = ", ".join(f"{k} {g[k]}" for k in ("shard", "rank") if g.get(k) is not None)
            where = where or (str(g["input"]) if g.get("input") else "")
            lead = f"{md_text(where)}: " if where else ""
            lines += [f"- {lead}{md_text(x)}" for x in decision_lines(dict(g.get("tests") or {}))]
    profile = extra.get("profile")
    if isinstance(profile, Mapping):
        top = top_lines(profile_of(profile), TOP)
        if top:
            lines += ["", f"**Energy profile:** {md_text(top[0])}", ""]
            lines += [f"- {md_text(x)}" for x in top[1:]]
    return lines
