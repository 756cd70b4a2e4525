"""The paper report's markdown sections: Figs. 1-4 and the measured costs, ours beside the
paper's (projected to the paper's N and accounted like the paper; see paper_report.py)."""

from __future__ import annotations

import math
import os
import platform
from typing import Any

from . import paper as P
from . import workloads as w
from .planner import fmt_duration
from .registry import PaperAccounting, Registry, synth_key, train_key

SMOKE_TITLE = "SMOKE SCALE: tiny shapes and widths, a pipeline check, not a result"
PHASE_TITLE = {"train": "Training (150,000 iterations)", "synth": "Synthesis (10,000 samples)"}


# -- small helpers --------------------------------------------------------------------------------


def _kg(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _pm(value: float, std: float) -> str:
    return _kg(value) if std is None or not math.isfinite(std) else f"{_kg(value)} ± {_kg(std)}"


DISTURBED_NOTE = (
    "† spread between measured windows above 20% of the mean: likely disturbed by other "
    "load on the machine; rerun on a quiet machine or with a longer --co2-time-budget."
)


def _ours(acc: PaperAccounting | None) -> str:
    if acc is None:
        return "not run"
    return _pm(acc.kg, acc.std_kg) + (" †" if acc.disturbed else "")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def _at_run(registry: Registry, acc: PaperAccounting) -> float:
    """The same projected energy at the run's region (and month) and PUE."""
    s = registry.session
    try:
        from pytest_co2.carbon.intensity import lookup

        g = lookup(s.get("region", "EU27"), s.get("month")).g_per_kwh
    except Exception:
        return math.nan
    return acc.energy_kwh * s.get("pue", P.PAPER_PUE) * g / 1000.0


def differs_from_paper(registry: Registry) -> bool:
    """Does the run account differently from the paper (region, month or PUE)?"""
    s = registry.session
    return (
        s.get("region", "EU27") != "EU27"
        or bool(s.get("month"))
        or s.get("pue", P.PAPER_PUE) != P.PAPER_PUE
    )


def run_label(registry: Registry) -> str:
    s = registry.session
    month = f" {s['month']}" if s.get("month") else ""
    return f"kg CO2e at {s.get('region', 'EU27')}{month}, PUE {s.get('pue', P.PAPER_PUE):g}"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the sections ---------------------------------------------------------------------------------


def fig1_section(registry: Registry) -> tuple[list[str], dict[str, Any]]:
    lines = ["## Fig. 1: image size (medium model)", ""]
    rows, data = [], {}
    run_column = differs_from_paper(registry)
    for phase in ("train", "synth"):
        for key, image in w.IMAGE_SIZES.items():
            model = w.model_for(image.dims, w.IMAGE_SIZE_MODEL).key
            k = train_key(model, key) if phase == "train" else synth_key(model, key)
            acc = registry.paper(k)
            fig = P.fig1_figure(phase, key)
            data[(phase, key)] = (acc, fig)
            row = [phase, f"{image.dims}D {image.label}", model, _ours(acc)]
            if run_column:
                row.append(_kg(_at_run(registry, acc)) if acc else "")
            row += [
                fig.text() if fig else "(in the range below)",
                f"{acc.kg / fig.kg:.2g}x" if acc and fig else "",
            ]
            rows.append(row)
    headers = ["phase", "image", "model", "ours, kg CO2e (EU27, PUE 1.55)"]
    if run_column:
        headers.append(f"ours, {run_label(registry)}")
    lines += _table([*headers, "paper, kg CO2e", "ours / paper"], rows)
    if any(a and a.disturbed for a, _ in data.values()):
        lines += [DISTURBED_NOTE, ""]
    lines.append(
        "The paper's ranges (section 3.1, smallest to largest size): 2D training 0.40 ± 0.16 to "
        "0.79 ± 0.20 kg; 3D training 0.74 ± 0.22 to 9.0 ± 0.9 kg; 2D synthesis 3.83 ± 0.07 to "
        "18.2 ± 0.3 kg; 3D synthesis 5.95 ± 0.17 to 362.3 ± 1.0 kg CO2e."
    )
    lines.append("")
    for phase in ("train", "synth"):
        for dims in (2, 3):
            accs = [data[(phase, k)][0] for k, i in w.IMAGE_SIZES.items() if i.dims == dims]
            if all(accs):
                (_, lo), (_, hi) = P.FIG1[(phase, dims)]
                lines.append(
                    f"- {dims}D {phase}: ours {_kg(accs[0].kg)} to {_kg(accs[-1].kg)} kg "
                    f"(x{accs[-1].kg / accs[0].kg:.1f} from smallest to largest); "
                    f"paper {lo.kg:g} to {hi.kg:g} kg (x{hi.kg / lo.kg:.1f})."
                )
    lines.append("")
    return lines, data


def fig2_section(registry: Registry) -> tuple[list[str], dict[str, Any]]:
    lines = ["## Fig. 2: model size (2D 256², 3D 192³)", ""]
    rows, data = [], {}
    for phase in ("train", "synth"):
        lo, hi = P.FIG2_GROWTH[phase]
        for dims, image_key in w.MODEL_SIZE_IMAGES.items():
            prev = None
            for size in w.MODEL_SIZES:
                model = w.model_for(dims, size)
                k = (
                    train_key(model.key, image_key)
                    if phase == "train"
                    else synth_key(model.key, image_key)
                )
                acc = registry.paper(k)
                data[(phase, dims, size)] = acc
                growth = f"{acc.kg / prev.kg - 1:+.0%}" if acc and prev else ""
                rows.append(
                    [
                        phase,
                        f"{dims}D {w.IMAGE_SIZES[image_key].label}",
                        f"{size} ({model.params_m})",
                        _ours(acc),
                        growth,
                        f"+{lo:.0%} to +{hi:.0%}" if size != "small" else "",
                    ]
                )
                prev = acc
    lines += _table(
        [
            "phase",
            "image",
            "model (params)",
            "ours, kg CO2e (EU27, PUE 1.55)",
            "ours, growth vs smaller",
            "paper, growth",
        ],
        rows,
    )
    if any(a and a.disturbed for a in data.values()):
        lines += [DISTURBED_NOTE, ""]
    lines.append(
        "The paper: training emissions rise by about 30-40% with model complexity, synthesis "
        "by 60-80% (section 3.2). Its architectures are not published; ours are the reference "
        "configs of benchmarks/workloads.py (parameter counts in the table), so the steps in "
        "size differ from the paper's."
    )
    lines.append("")
    return lines, data


def fig3_section(registry: Registry) -> tuple[list[str], dict[str, Any]]:
    lines = ["## Table 1 and Fig. 3: region and month", ""]
    fig3 = registry.figures.get("fig3")
    from pytest_co2.carbon.intensity import lookup

    rows = [[r, f"{g:g}", f"{lookup(r).g_per_kwh:g}"] for r, g in P.TABLE1.items()]
    lines += _table(["region", "paper Table 1, g CO2e/kWh", "shipped, g CO2e/kWh"], rows)
    if not fig3:
        return [*lines, "Not run (test_region_month.py).", ""], {}
    lines.append(
        f"One measurement ({fig3['source']}), projected to the paper's N and rendered for every "
        f"region and month without measuring again (PUE {fig3['pue']:g})."
    )
    lines.append("")
    phases = list(fig3["regions"])
    rows = [[r] + [_pm(*fig3["regions"][ph][r]) for ph in phases] for r in P.TABLE1]
    lines += _table(["region"] + [f"ours, {ph}, kg CO2e" for ph in phases], rows)
    syn = fig3["regions"]["synth"]
    lines.append(
        f"- Sweden vs Poland: ours {_kg(syn['SE'][0])} vs {_kg(syn['PL'][0])} kg "
        f"(x{syn['PL'][0] / syn['SE'][0]:.1f} = 666/7); paper {P.FIG3_SE_KG:g} vs {P.FIG3_PL_KG:g} kg "
        f'(x{P.FIG3_PL_KG / P.FIG3_SE_KG:.0f}, "up to 94 times").'
    )
    rows = [[mo, f"{v[2]:g}", _pm(v[0], v[1])] for mo, v in fig3["months"].items()]
    lines += ["", *_table(["month (DE)", "g CO2e/kWh (shipped)", "ours, synthesis, kg CO2e"], rows)]
    lines.append(
        f"- December vs February 2022: ours x{fig3['dec_over_feb']:.2f} "
        f'(+{fig3["dec_over_feb"] - 1:.0%}); paper "up to 50%".'
    )
    lines.append("")
    return lines, fig3


def fig4_section(registry: Registry) -> tuple[list[str], dict[str, Any]]:
    lines = ["## Fig. 4: distributed training and fewer inference steps (3D)", ""]
    model, image = w.DISTRIBUTED_CONFIG
    single = registry.paper(train_key(model, image, "single-process"))
    ddp = {
        k.variant: registry.paper(k)
        for k in sorted(registry.results)
        if k.variant.startswith("ddp-") and k.image == image and k.model == model
    }
    rows = [["1 process (all threads)", _ours(single), "1"]]
    for variant, acc in ddp.items():
        ratio = f"{acc.kg / single.kg:.2f}" if single else ""
        rows.append([variant, _ours(acc), ratio])
    lines.append(
        f"(a) {model} {w.IMAGE_SIZES[image].label}, same batch per process, projected to the same "
        "number of batches:"
    )
    lines.append("")
    lines += _table(["run", "ours, kg CO2e (EU27, PUE 1.55)", "ratio to 1 process"], rows)
    lines.append(
        f"The paper: {P.FIG4A_GPUS} GPUs vs 1, same batch per GPU: no significant reduction."
    )
    lines.append("")
    model, image = w.INFERENCE_CONFIG
    samplers = {
        (k, n): registry.paper(synth_key(model, image, k, n, "samplers")) for k, n in w.SAMPLERS
    }
    base = samplers.get(("ddpm", 1000))
    rows = []
    for (k, n), acc in samplers.items():
        rows.append(
            [
                f"{k.upper()} {n}",
                _ours(acc),
                f"{acc.kg / base.kg:.3f}" if acc and base else "",
                f"{n / 1000:.2f}",
            ]
        )
    lines.append(f"(b) {model} {w.IMAGE_SIZES[image].label} synthesis:")
    lines.append("")
    lines += _table(
        ["sampler", "ours, kg CO2e (EU27, PUE 1.55)", "ours / DDPM 1000", "steps / 1000"], rows
    )
    lines.append(
        "The paper: 200 inference steps instead of 1000 reduce emissions by 80% (ratio 0.20)."
    )
    lines.append("")
    return lines, {"single": single, "ddp": ddp, "samplers": samplers}


def costs_section(registry: Registry) -> list[str]:
    """What each config cost this run: the job budget's plan and the measured time and memory."""
    runs = registry.session.get("runs", {})
    if not runs:
        return []
    budget = registry.session.get("budget_s")
    head = (
        f"## This run's configs (job budget {fmt_duration(budget)})"
        if budget
        else "## This run's configs (no job budget)"
    )
    rows = []
    for r in runs.values():
        if r.get("skipped"):
            rows.append([r.get("label", ""), "skipped: " + r["skipped"], "", "", "", "", "", ""])
            continue
        c = r.get("contention") or {}
        p = c.get("pressure")
        rows.append(
            [
                r.get("label", ""),
                f"{r.get('steps')}" + (" (cut by the budget)" if r.get("reduced") else ""),
                f"{r.get('planned_steps')}",
                f"{r.get('fixed_s')}",
                f"{r.get('step_s')}",
                f"{r.get('wall_s')}",
                f"{r.get('peak_rss_gb')}" if r.get("peak_rss_gb") is not None else "n/a",
                f"{p:.0%}" if p is not None else "unknown",
            ]
        )
    lines = [head, ""]
    lines += _table(
        [
            "config (run order)",
            "measured steps",
            "planned",
            "s besides the steps (warm-up, build, decode)",
            "s per step",
            "s in all",
            "peak RSS, GB",
            "CPU pressure (some)",
        ],
        rows,
    )
    lines.append(
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs. CPU pressure: the share of the config's "
        "time that runnable tasks waited for a CPU (/proc/pressure/cpu), i.e. other load."
    )
    lines.append("")
    return lines
