"""The paper report's PNG charts (Figs. 1-4, ours beside the paper's), drawn with matplotlib
(imported when the charts are drawn)."""

from __future__ import annotations

import math
import os
from typing import Any

from . import paper as P
from . import workloads as w
from .paper_tables import PHASE_TITLE, SMOKE_TITLE
from .registry import PaperAccounting, Registry


def _bar(
    ax: Any,
    x: float,
    acc: PaperAccounting | None,
    color: str,
    width: float = 0.8,
    label: str | None = None,
) -> None:
    if acc is None:
        return
    err = acc.std_kg if math.isfinite(acc.std_kg) else 0.0
    ax.bar(x, acc.kg, width, yerr=err, color=color, capsize=3, label=label)


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend where the axes have labelled artists (none when nothing was measured)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def write_charts(  # noqa: PLR0915 - one block per figure
    path_stem: str, registry: Registry, f1: dict, f2: dict, f3: dict, f4: dict
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pytest_co2.carbon.equivalents import factors

    written: list[str] = []
    ours, theirs = "#2a7ab9", "black"
    car_g = factors()["car_km"].g_per_unit

    smoke = registry.session.get("scale") == "smoke"

    def save(fig: Any, name: str) -> None:
        out = f"{path_stem}-{name}.png"
        if smoke:  # a chart taken out of the folder must not pass for a result
            fig.suptitle(SMOKE_TITLE, color="#b00000", fontweight="bold")
            fig.text(
                0.5,
                0.5,
                "SMOKE",
                fontsize=90,
                color="#b00000",
                alpha=0.12,
                ha="center",
                va="center",
                rotation=25,
            )
        fig.tight_layout()
        fig.savefig(out + ".tmp.png", dpi=110)
        os.replace(out + ".tmp.png", out)
        plt.close(fig)
        written.append(out)

    # Fig. 1: bars per image size, log scale, the paper's published values as diamonds.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    keys = list(w.IMAGE_SIZES)
    for ax, phase in zip(axes, ("train", "synth"), strict=False):
        for i, key in enumerate(keys):
            acc, pub = f1.get((phase, key), (None, None))
            dims = w.IMAGE_SIZES[key].dims
            first = key == next(k for k in keys if w.IMAGE_SIZES[k].dims == dims)
            _bar(
                ax,
                i,
                acc,
                ours if dims == 2 else "#d9822b",
                label=f"ours {dims}D" if first else None,
            )
            if pub is not None:
                ax.errorbar(
                    i,
                    pub.kg,
                    yerr=pub.std_kg,
                    fmt="D",
                    color=theirs,
                    capsize=3,
                    label="paper (A100)" if i == 0 else None,
                )
        ax.set_xticks(
            range(len(keys)),
            [f"{w.IMAGE_SIZES[k].dims}D {w.IMAGE_SIZES[k].label}" for k in keys],
            rotation=30,
        )
        ax.set_yscale("log")
        ax.set_ylabel("kg CO2e (EU27, PUE 1.55)")
        ax.set_title(PHASE_TITLE[phase])
        sec = ax.secondary_yaxis(
            "right", functions=(lambda kg: kg * 1000 / car_g, lambda km: km * car_g / 1000)
        )
        sec.set_ylabel("km by car")
        _legend(ax, loc="upper left")
    save(fig, "fig1")

    # Fig. 2: small/medium/large per dimensionality.
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = {"small": "#9ecae1", "medium": "#4292c6", "large": "#08519c"}
    for ax, phase in zip(axes, ("train", "synth"), strict=False):
        for d, dims in enumerate((2, 3)):
            for s, size in enumerate(w.MODEL_SIZES):
                _bar(
                    ax,
                    d + (s - 1) * 0.27,
                    f2.get((phase, dims, size)),
                    colors[size],
                    0.25,
                    label=size if d == 0 else None,
                )
        ax.set_xticks(
            [0, 1],
            [
                f"2D {w.IMAGE_SIZES[w.MODEL_SIZE_IMAGES[2]].label}",
                f"3D {w.IMAGE_SIZES[w.MODEL_SIZE_IMAGES[3]].label}",
            ],
        )
        ax.set_yscale("log")
        ax.set_ylabel("kg CO2e (EU27, PUE 1.55)")
        ax.set_title(PHASE_TITLE[phase])
        _legend(ax)
    save(fig, "fig2")

    # Fig. 3: regions (log) and German months.
    if f3:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        regions = list(P.TABLE1)
        phases = list(f3["regions"])
        for p, phase in enumerate(phases):
            vals = [f3["regions"][phase][r] for r in regions]
            xs = [i + (p - (len(phases) - 1) / 2) * 0.4 for i in range(len(regions))]
            axes[0].bar(
                xs,
                [v[0] for v in vals],
                0.38,
                yerr=[v[1] if v[1] is not None and math.isfinite(v[1]) else 0 for v in vals],
                capsize=3,
                label=phase,
                color=ours if phase == "synth" else "#d9822b",
            )
        axes[0].set_xticks(range(len(regions)), regions)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("kg CO2e")
        axes[0].set_title("(a) regions (yearly intensity, Table 1)")
        _legend(axes[0])
        months = list(f3["months"])
        vals = [f3["months"][m] for m in months]
        axes[1].bar(
            range(len(months)),
            [v[0] for v in vals],
            color=ours,
            yerr=[v[1] if v[1] is not None and math.isfinite(v[1]) else 0 for v in vals],
            capsize=3,
        )
        axes[1].set_xticks(range(len(months)), [m[5:] for m in months])
        axes[1].set_xlabel("month of 2022")
        axes[1].set_ylabel("kg CO2e")
        axes[1].set_title("(b) synthesis in Germany by month")
        save(fig, "fig3")

    # Fig. 4: distributed and samplers.
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    runs = [("1 process", f4.get("single")), *list(f4.get("ddp", {}).items())]
    for i, (_label, acc) in enumerate(runs):
        _bar(axes[0], i, acc, ours)
    axes[0].set_xticks(range(len(runs)), [r[0] for r in runs])
    axes[0].set_ylabel("kg CO2e (EU27, PUE 1.55)")
    axes[0].set_title("(a) training: one process vs DDP")
    samplers = list(f4.get("samplers", {}).items())
    for i, (_, acc) in enumerate(samplers):
        _bar(axes[1], i, acc, ours)
    axes[1].set_xticks(range(len(samplers)), [f"{k.upper()} {n}" for (k, n), _ in samplers])
    axes[1].set_ylabel("kg CO2e (EU27, PUE 1.55)")
    axes[1].set_title("(b) synthesis: inference steps")
    save(fig, "fig4")
    return written
