"""``pytest-co2 history --plot PATH.png``: each measurement's energy per unit over the saved
runs, one line per measurement with its 95% intervals as error bars, the flagged runs
ringed. matplotlib (the ``plot`` extra) is imported here only, and drawn without pyplot (no
global backend or figure state)."""

from __future__ import annotations

import io
import math
import os

from ..files import write_bytes_atomic
from .history import History

#: What to install when matplotlib is missing.
EXTRA = "pip install 'pytest-co2[plot]'"


class PlotError(ValueError):
    """The plot cannot be made (matplotlib missing): one line saying what to install."""


def run_tick(h: History, index: int) -> str:
    """``#2 abc1234*`` (the run's number and commit) or ``#2 name`` without a commit."""
    run = h.runs[index]
    return f"#{index + 1} {run.name if run.vcs is None else run.vcs.label()}"


def plot_history(h: History, path: str | os.PathLike[str]) -> None:
    """Draw ``h`` as a PNG at ``path`` (written atomically); PlotError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"--plot needs matplotlib: {EXTRA}") from None

    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(h.runs)), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    means = []
    for s in h.series:
        xs = [p.run for p in s.points]
        ys = [p.mean_j for p in s.points]
        means += [y for y in ys if y > 0]
        low = [0.0 if math.isnan(p.low_j) else p.mean_j - p.low_j for p in s.points]
        high = [0.0 if math.isnan(p.high_j) else p.high_j - p.mean_j for p in s.points]
        unit = s.points[-1].unit if s.points else "unit"
        bars = ax.errorbar(
            xs, ys, yerr=[low, high], marker="o", capsize=3, label=f"{s.label} (J/{unit})"
        )
        flagged = [(p.run, p.mean_j) for p in s.points if p.flagged]
        if flagged:
            ax.scatter(
                [x for x, _ in flagged],
                [y for _, y in flagged],
                s=160,
                facecolors="none",
                edgecolors=bars.lines[0].get_color(),
                linewidths=1.5,
                zorder=3,
            )
    if means and max(means) > 20 * min(means):
        ax.set_yscale("log")
    ax.set_xticks(range(len(h.runs)), [run_tick(h, i) for i in range(len(h.runs))], rotation=30)
    ax.set_xlabel("saved runs in commit order (ringed: a significant change)")
    ax.set_ylabel("energy per unit (J), 95% interval")
    ax.set_title(f"pytest-co2 history (a change beyond {h.spec.percent:g}% is significant)")
    if h.series:
        ax.legend(fontsize="small", loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_bytes_atomic(path, buf.getvalue())
