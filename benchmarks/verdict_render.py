"""The verdict rendered: the terminal section (within a width), the paper report's markdown
tables and the JSON block (``paper_verdict``)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import Any

from .registry import Registry
from .verdict import findings
from .verdict_ratios import Ratio, budget_notes, ratios
from .verdict_rules import HARDWARE, INCONCLUSIVE, NOT_HELD, SEVERITY, Finding, factor_label

WIDTH = 100


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fit_middle(text: str, width: int) -> str:
    """Shortened in the middle, so that both ends (config and sampler) stay readable."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def _short_label(text: str, width: int) -> str:
    """A config label within ``width``: the smoke scale's ``(192³/4, w/8)`` goes first, then
    the middle of the label (text only: the numbers of a row are never cut)."""
    if len(text) > width and " (" in text:
        text = re.sub(r" \([^)]*/\d+, w/\d+\)", "", text)
    return _fit_middle(text, width)


#: a duration (``1 min 19 s``) or a count and its unit stay on one line when a sentence wraps
_KEEP = re.compile(
    r"\d+(?:\.\d+)? (?:h|min|s)\b(?: \d+ (?:min|s)\b)?|\d+ (?:warm-up|steps?|iterations?|rounds?)\b"
)


def _wrap(text: str, width: int, indent: str) -> list[str]:
    import textwrap

    keep = _KEEP.sub(lambda m: m.group(0).replace(" ", "\u00a0"), text)
    return [
        line.replace("\u00a0", " ")
        for line in textwrap.wrap(
            keep,
            width,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    ]


def _kg(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


#: shorter words for the verdict column where a row would not fit otherwise
_SHORT_STATUS = {HARDWARE: "hw-dependent", INCONCLUSIVE: "inconcl.", NOT_HELD: "not held"}


def render_terminal(  # noqa: PLR0912 - one block per section
    fs: list[Finding],
    rs: list[Ratio],
    width: int = WIDTH,
    fewer: list[str] | None = None,
    skipped: list[str] | None = None,
    interrupted: bool = False,
) -> list[str]:
    """The verdict section: ratios per config, then one line per finding, within ``width``
    columns where it can be: text columns are shortened, numbers never. ``interrupted``:
    the run was stopped (Ctrl-C, SIGTERM), which the last line says."""
    lines: list[str] = []
    if rs:
        lines += _wrap(
            "vs paper: ours / the paper's kg CO2e (EU27, PUE 1.55, the paper's N)", width, ""
        )
        pad = "" if all(r.published for r in rs) else " "
        cells = [
            (
                r.label,
                _kg(r.ours_kg),
                (pad if r.published else "≤") + _kg(r.paper_kg),
                factor_label(r.ratio) if math.isfinite(r.ratio) else "",
            )
            for r in rs
        ]
        w_ours, w_paper, w_ratio = (max(len(c[i]) for c in cells) for i in (1, 2, 3))
        numbers_w = 2 + 1 + w_ours + 3 + w_paper + 1 + w_ratio
        name_w = max(12, min(max(len(c[0]) for c in cells), width - numbers_w))
        for label, ours, paper, ratio in cells:
            lines.append(
                f"  {_short_label(label, name_w):<{name_w}} {ours:>{w_ours}} / "
                f"{paper:<{w_paper}} {ratio:>{w_ratio}}".rstrip()
            )
        if not all(r.published for r in rs):
            lines += _wrap(
                "  ≤: the paper gives no number; an upper bound derived from it", width, ""
            )
    reasons: dict[str, int] = {}
    rows = []
    for f in fs:
        mark = ""
        if f.reason:
            n = reasons.setdefault(f.reason, len(reasons) + 1)
            mark = f" ({n})"
        rows.append([f"{f.figure} {f.claim}", f.paper, f.ours or "-", f.status, mark])

    def verdict_w() -> int:
        return max(len(r[3] + r[4]) for r in rows)

    def total(cols: list[int]) -> int:
        return sum(widths[i] for i in cols) + 2 * len(cols) + verdict_w()

    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    cols = [0, 1, 2]  # finding, paper, ours; the verdict last
    # fit the width with the text: the finding column down to 18, shorter verdict words,
    # the finding column down to 8, then without the paper's column; never a number cut
    for step in ("finding", "words", "finding", "paper"):
        over = total(cols) - width
        if over <= 0:
            break
        if step == "finding":
            widths[0] = max(18 if widths[0] > 18 else 8, widths[0] - over)
        elif step == "words":
            for r in rows:
                r[3] = _SHORT_STATUS.get(r[3], r[3])
        else:
            cols = [0, 2]
            widths[0] = min(max(len(r[0]) for r in rows), widths[0] + widths[1] + 2)
            widths[0] = max(8, min(widths[0], width - widths[2] - 4 - verdict_w()))
    header = ["finding", "paper", "ours"]
    lines.append("  ".join(f"{header[i]:<{widths[i]}}" for i in cols) + "  verdict")
    for r in rows:
        cells = [(_fit(r[0], widths[0]) if i == 0 else r[i]).ljust(widths[i]) for i in cols]
        lines.append("  ".join(cells) + f"  {r[3]}{r[4]}")
    for reason, n in reasons.items():
        lines += _wrap(f"({n}) {reason}", width, "")
    if fewer:
        lines += _wrap("fewer measured steps than the default (the job budget):", width, "")
        for line in fewer:
            lines += _wrap(line, width, "  ")
    if skipped:
        lines += _wrap("skipped by the job:", width, "")
        for line in skipped:
            lines += _wrap(line, width, "  ")
    counts = {s: sum(f.status == s for f in fs) for s in SEVERITY}
    verdict = "verdict: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if interrupted:
        verdict += " (the run was interrupted: what it did not reach is not run, not failed)"
    lines += _wrap(verdict, width, "")
    return lines


def render_markdown(
    fs: list[Finding], rs: list[Ratio], registry: Registry | None = None
) -> list[str]:
    """The verdict as markdown tables (the paper report's first section)."""
    lines = [
        "## Verdict",
        "",
        "| finding | paper | ours | verdict | reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f.figure} {f.claim} | {f.paper} | {f.ours or '-'} | {f.status} | {f.reason} |"
        for f in fs
    ]
    lines.append("")
    fewer, skipped = budget_notes(registry) if registry is not None else ([], [])
    if fewer:
        lines += ["Fewer measured steps than the default (the job budget):", ""]
        lines += [f"- {x}" for x in fewer] + [""]
    if skipped:
        lines += ["Skipped by the job:", ""]
        lines += [f"- {x}" for x in skipped] + [""]
    if rs:
        lines += [
            "Ours / the paper's kg CO2e per config (both EU27, PUE 1.55, the paper's N; "
            "≤: the paper gives no number, an upper bound derived from it):",
            "",
            "| config | ours, kg | paper, kg | ours / paper |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r.label} | {_kg(r.ours_kg)} | {'' if r.published else '≤'}{_kg(r.paper_kg)} | "
            f"{factor_label(r.ratio) if math.isfinite(r.ratio) else ''} |"
            for r in rs
        ]
        lines.append("")
    return lines


def verdict_json(registry: Registry) -> dict[str, Any]:
    """JSON-safe verdict for the plugin's report (key ``paper_verdict``)."""
    fs, rs = findings(registry), ratios(registry)
    fewer, skipped = budget_notes(registry)
    return {
        "scale": registry.session.get("scale", "paper"),
        "budget_s": registry.session.get("budget_s"),
        "fewer_steps": fewer,
        "skipped": skipped,
        "findings": [asdict(f) for f in fs],
        "vs_paper": [
            {**asdict(r), "ratio": r.ratio if math.isfinite(r.ratio) else None} for r in rs
        ],
    }
