"""``pytest-co2 history`` as text: the runs in order, then one table per measurement, every
line within the terminal's width (columns left out before a line is cut)."""

from __future__ import annotations

import datetime as _dt
import math

from ..fmt import fmt_num, fmt_pct, wrap
from .history import NO_CHANGE, History, Point, SavedRun, Series

_SHORT = {NO_CHANGE: "no change"}


def _utc(when: _dt.datetime | None) -> str:
    return "?" if when is None else when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def run_label(run: SavedRun) -> str:
    """``base (abc1234*)`` or ``old (no commit)``."""
    return f"{run.name} ({'no commit' if run.vcs is None else run.vcs.label()})"


def _table(
    headers: list[str], rows: list[list[str]], width: int, drop: tuple[int, ...]
) -> list[str]:
    """A left-aligned table; columns in ``drop`` are left out, in that order, until it fits."""
    keep = list(range(len(headers)))

    def widths(cols: list[int]) -> list[int]:
        return [max([len(headers[i]), *(len(r[i]) for r in rows)]) for i in cols]

    for i in drop:
        if sum(widths(keep)) + 2 * (len(keep) - 1) + 2 <= width:
            break
        keep.remove(i)
    ws = widths(keep)
    out = []
    for row in [headers, *rows]:
        cells = [row[i].ljust(w) for i, w in zip(keep, ws, strict=True)]
        out.append(("  " + "  ".join(cells)).rstrip()[:width])
    return out


def render_runs(h: History, width: int) -> list[str]:
    """The runs in order, with their commits."""
    lines = wrap(
        f"{len(h.runs)} saved {'run' if len(h.runs) == 1 else 'runs'} in {h.storage_dir}, "
        "in commit order (the commit time, "
        "then the save time):",
        width,
    )
    rows = []
    for i, run in enumerate(h.runs, 1):
        vcs = run.vcs
        rows.append(
            [
                str(i),
                run.name,
                "-" if vcs is None else vcs.label(),
                "-" if vcs is None or vcs.branch is None else vcs.branch,
                f"saved {_utc(run.saved)}" if vcs is None else _utc(vcs.committed_at),
            ]
        )
    lines += _table(["#", "run", "commit", "branch", "committed (UTC)"], rows, width, (3,))
    notes = []
    if any(r.vcs is not None and r.vcs.dirty for r in h.runs):
        notes.append("*: the work tree had uncommitted changes")
    bare = [r.name for r in h.runs if r.vcs is None]
    if bare:
        notes.append(
            f"{len(bare)} {'run has' if len(bare) == 1 else 'runs have'} no commit (saved "
            f"before commits were recorded, or outside git), placed by save time: "
            + ", ".join(bare)
        )
    for note in notes:
        lines += wrap(note, width)
    return lines


def _change(p: Point) -> str:
    d = p.decision
    if d is None:
        return ""
    text = fmt_pct(d.change * 100)
    if not math.isnan(d.low):
        text += f" ({fmt_pct(d.low * 100)} to {fmt_pct(d.high * 100)})"
    return text


def render_series(h: History, s: Series, width: int) -> list[str]:
    """One measurement: per-unit energy, 95% interval, change against the reference."""
    unit = s.points[-1].unit if s.points else "unit"
    lines = wrap(
        f"{s.label}: J per {unit} (95% interval); the change against the reference run: "
        f"a regression or improvement beyond {h.spec.percent:g}% is significant",
        width,
    )
    rows = []
    for p in s.points:
        interval = "n/a" if math.isnan(p.low_j) else f"{fmt_num(p.low_j)} to {fmt_num(p.high_j)}"
        verdict = (
            "reference" if p.reference is None else _SHORT.get(p.verdict or "", p.verdict or "")
        )
        rows.append(
            [
                str(p.run + 1),
                fmt_num(p.mean_j),
                interval,
                _change(p),
                "" if p.reference is None else str(p.reference + 1),
                verdict,
            ]
        )
    headers = ["#", f"J/{unit}", "95%", "change (95%)", "vs #", "verdict"]
    lines += _table(headers, rows, width, (2, 4))
    first = s.first_change
    if len(s.points) < 2:
        tail = "one run: nothing to compare yet"
    elif first is None:
        tail = f"no significant change (beyond {h.spec.percent:g}%) over {len(s.points)} runs"
    else:
        what = "" if first.decision is None else f": {first.decision.describe()}"
        tail = f"first significant change at #{first.run + 1} {run_label(h.runs[first.run])}{what}"
    lines += wrap(tail, width)
    return lines


def render_history(h: History, width: int) -> list[str]:
    """The whole history as lines of at most ``width`` columns."""
    lines = render_runs(h, width)
    if not h.series:
        lines.append("no measurement matches")
    for s in h.series:
        lines.append("")
        lines += render_series(h, s, width)
    return lines
