"""The paper report: our figures beside the paper's, as markdown and PNG charts (Figs. 1-4).

Our numbers are projected to the paper's N (150,000 iterations, 10,000 samples) and put
through the paper's Eq. 1 with its accounting (CI_EU27 = 251 g/kWh, PUE 1.55), so they are
comparable with the published ones whatever ``--co2-region`` the run used; a second column
gives the same energy at the run's region and PUE. ``±`` is the paper's convention: the
per-unit spread scaled to N.
"""

from __future__ import annotations

import datetime as _dt
import os

from pytest_co2.files import write_text_atomic

from . import paper as P
from . import workloads as w
from .paper_charts import write_charts
from .paper_tables import (
    SMOKE_TITLE,
    costs_section,
    cpu_name,
    differs_from_paper,
    fig1_section,
    fig2_section,
    fig3_section,
    fig4_section,
    run_label,
)
from .registry import Registry

#: what a run writes beside its paper report (cleared first, so no older chart stays)
CHARTS = ("fig1", "fig2", "fig3", "fig4")


# -- entry point ----------------------------------------------------------------------------------


def render(registry: Registry) -> tuple[list[str], tuple[dict, dict, dict, dict]]:
    s = registry.session
    smoke = s.get("scale") == "smoke"
    lines = [
        *([f"**{SMOKE_TITLE}.**", ""] if smoke else []),
        "# Latent Pollution Model: this run beside the paper" + (" (smoke scale)" if smoke else ""),
        "",
        f"Generated {_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `pytest benchmarks` (pytest-co2).",
        "",
        f"- This run: {cpu_name()}, {s.get('threads', '?')} torch threads; scale `{s.get('scale', '?')}`; "
        f"energy from {s.get('backend', '?')} (method: {s.get('method', '?')}).",
        f"- The paper: {P.HARDWARE}.",
        f"- Ours are projected to the paper's N (150,000 training iterations, 10,000 samples of 1000 DDPM "
        f"steps + one decode, batch {w.BATCH_SIZE}) and accounted like the paper: CI_EU27 "
        f"{P.CI_EU27_G_PER_KWH:g} g/kWh, PUE {P.PAPER_PUE:g}. ± is the per-unit spread scaled to N (the "
        "paper's convention). Synthesis is projected from a few measured denoising steps (see README).",
        (
            f"- This run's accounting (Fig. 1's extra column): {run_label(registry)}."
            if differs_from_paper(registry)
            else "- This run used the paper's accounting (EU27, PUE 1.55)."
        ),
        "",
    ]
    if s.get("scale") == "smoke":
        lines += [
            "**Smoke scale: tiny shapes and widths; these numbers check the pipeline, not the paper.**",
            "",
        ]
    from .verdict import findings
    from .verdict_ratios import ratios
    from .verdict_render import render_markdown as verdict_markdown

    lines += verdict_markdown(findings(registry), ratios(registry), registry)
    lines += costs_section(registry)
    l1, f1 = fig1_section(registry)
    l2, f2 = fig2_section(registry)
    l3, f3 = fig3_section(registry)
    l4, f4 = fig4_section(registry)
    return lines + l1 + l2 + l3 + l4, (f1, f2, f3, f4)


def clear_outputs(path: str) -> list[str]:
    """Remove an earlier run's paper report and charts at ``path`` (what this run writes)."""
    stem = os.path.splitext(path)[0]
    removed = []
    for p in [path, *(f"{stem}-{c}.png" for c in CHARTS)]:
        try:
            os.remove(p)
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(p)
    return removed


def write_report(registry: Registry, path: str) -> list[str]:
    """Write the markdown to ``path`` (atomically) and the charts beside it; return the paths."""
    lines, figs = render(registry)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem = os.path.splitext(path)[0]
    charts: list[str] = []
    try:
        charts = write_charts(stem, registry, *figs)
    except ImportError:
        lines += ["Charts: matplotlib is not installed (`pip install matplotlib`)."]
    if charts:
        lines += (
            ["## Charts", ""]
            + [f"![{os.path.basename(c)}]({os.path.basename(c)})" for c in charts]
            + [""]
        )
    write_text_atomic(path, "\n".join(lines) + "\n")
    return [path, *charts]
