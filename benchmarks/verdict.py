"""The verdict against the paper: one line per finding, and our / paper ratio per config.

Pure functions of the session's results (:class:`~benchmarks.registry.Registry`): no torch,
no pytest. This module judges each finding (:func:`findings`); the rules are in
:mod:`.verdict_rules`, our / the paper's kg CO2e per config in :mod:`.verdict_ratios`,
and :mod:`.verdict_render` renders it all: conftest.py prints
:func:`~.verdict_render.render_terminal` after the emissions summary, puts
:func:`~.verdict_render.verdict_json` in the plugin's JSON report (``paper_verdict``) and
the paper report embeds :func:`~.verdict_render.render_markdown`.

A finding is *held* when ours agrees with the paper's claim, *did not hold* when it
contradicts it beyond our measurements' 95% intervals, *inconclusive* when the difference is
within them, and *hardware-dependent* when the direction holds but the size of the effect
differs by more than :data:`FACTOR_TOLERANCE` from the paper's: the reason is then the
hardware (a CPU is compute-bound, so its cost follows the work of a step, where the paper's
A100 was not saturated by the smaller configs).
"""

from __future__ import annotations

import itertools
import math

from . import paper as P
from . import workloads as w
from .registry import Key, PaperAccounting, Registry, growth_check, synth_key, train_key
from .verdict_rules import (
    HARDWARE,
    HELD,
    INCONCLUSIVE,
    MONTH_TOLERANCE,
    NOT_HELD,
    NOT_JUDGED,
    NOT_RUN,
    REASON_COMPUTE,
    REASON_MODELS,
    REASON_SMOKE,
    REGION_TOLERANCE,
    Finding,
    config_run_id,
    ddp_check,
    factor_label,
    factor_status,
    load_during,
    not_run_reason,
    ratio_check,
    worst,
)


def _series(
    registry: Registry, keys: list[Key], labels: list[str]
) -> list[tuple[str, PaperAccounting]] | None:
    accs = [registry.paper(k) for k in keys]
    if any(a is None for a in accs):
        return None
    return [(label, a) for label, a in zip(labels, accs, strict=True) if a is not None]


def _measured(
    registry: Registry, keys: list[Key], labels: list[str]
) -> tuple[list[tuple[str, PaperAccounting]] | None, str]:
    """The series, or the part of it that was measured when the rest was skipped by the job
    (budget or memory: the reason comes along); None where a point is missing otherwise or
    fewer than two were measured."""
    full = _series(registry, keys, labels)
    if full is not None:
        return full, ""
    why = not_run_reason(registry, keys)
    runs = registry.session.get("runs", {})
    missing = [k for k in keys if k not in registry.results]
    if not all(runs.get(config_run_id(k), {}).get("skipped") for k in missing):
        return None, why
    part = [(lb, registry.paper(k)) for k, lb in zip(keys, labels, strict=True) if k not in missing]
    series = [(lb, a) for lb, a in part if a is not None]
    return (series if len(series) >= 2 else None), why


def _direction(series: list[tuple[str, PaperAccounting]]) -> str | None:
    """NOT_HELD / INCONCLUSIVE when the series does not grow, None when it does."""
    bad, unsure = growth_check(series)
    return NOT_HELD if bad else INCONCLUSIVE if unsure else None


def _fig1(registry: Registry, smoke: bool) -> list[Finding]:
    out = []
    for phase, title in (("train", "train"), ("synth", "synth")):
        for dims in (2, 3):
            keys = [k for k, i in w.IMAGE_SIZES.items() if i.dims == dims]
            model = w.model_for(dims, w.IMAGE_SIZE_MODEL).key
            make = train_key if phase == "train" else synth_key
            (_, lo), (_, hi) = P.FIG1[(phase, dims)]
            paper_f = hi.kg / lo.kg
            first, last = w.IMAGE_SIZES[keys[0]].label, w.IMAGE_SIZES[keys[-1]].label
            claim = f"{dims}D {title}"
            paper = f"{factor_label(paper_f)} {first}-{last}"
            labels = [w.IMAGE_SIZES[k].label for k in keys]
            series, why = _measured(registry, [make(model, k) for k in keys], labels)
            if series is None:
                out.append(Finding("Fig. 1", claim, paper, "", NOT_RUN, why))
                continue
            ours_f = series[-1][1].kg / series[0][1].kg
            ours = (
                factor_label(ours_f)
                if not why
                else f"{factor_label(ours_f)} {series[0][0]}-{series[-1][0]}"
            )
            if smoke:
                out.append(Finding("Fig. 1", claim, paper, ours, NOT_JUDGED, REASON_SMOKE))
                continue
            if why:  # a size skipped by the job: the growth so far, the size of it unknown
                status = _direction(series) or INCONCLUSIVE
                out.append(Finding("Fig. 1", claim, paper, ours, status, why))
                continue
            status = _direction(series) or factor_status(ours_f, paper_f)
            reason = REASON_COMPUTE if status == HARDWARE else ""
            out.append(Finding("Fig. 1", claim, paper, ours, status, reason))
    return out


def _param_steps() -> str:
    steps = []
    for dims in (2, 3):
        params = [w.model_for(dims, s).params for s in w.MODEL_SIZES]
        steps += [b / a for a, b in itertools.pairwise(params)]
    return f"x{min(steps):.1f} to x{max(steps):.0f}"


def _fig2(registry: Registry, smoke: bool) -> list[Finding]:
    out = []
    for phase, title in (("train", "train"), ("synth", "synth")):
        lo, hi = P.FIG2_GROWTH[phase]
        claim = title
        paper = f"+{lo:.0%} to +{hi:.0%}/size"
        growths: list[float] = []
        statuses = []
        why = ""
        for dims, image_key in w.MODEL_SIZE_IMAGES.items():
            make = train_key if phase == "train" else synth_key
            keys = [make(w.model_for(dims, s).key, image_key) for s in w.MODEL_SIZES]
            series, skipped = _measured(registry, keys, list(w.MODEL_SIZES))
            why = why or skipped
            if series is None:
                statuses.append(NOT_RUN)
                continue
            growths += [b.kg / a.kg - 1 for (_, a), (_, b) in itertools.pairwise(series)]
            # a size skipped by the job: the series grows so far, whether it goes on is unknown
            statuses.append(_direction(series) or (INCONCLUSIVE if skipped else HELD))
        if NOT_RUN in statuses or not growths:
            out.append(Finding("Fig. 2", claim, paper, "", NOT_RUN, why))
            continue
        ours = f"{min(growths):+.0%} to {max(growths):+.0%}"
        if smoke:
            out.append(Finding("Fig. 2", claim, paper, ours, NOT_JUDGED, REASON_SMOKE))
            continue
        status = worst(statuses)
        if status == HELD:  # grows: does it grow by about the paper's amount?
            status = worst([factor_status(g, (lo + hi) / 2) for g in growths])
        reason = REASON_MODELS.format(steps=_param_steps()) if status == HARDWARE else ""
        reason = why if status == INCONCLUSIVE and why else reason
        out.append(Finding("Fig. 2", claim, paper, ours, status, reason))
    return out


def _fig3(registry: Registry) -> list[Finding]:
    fig3 = registry.figures.get("fig3")
    paper_ratio = P.FIG3_PL_KG / P.FIG3_SE_KG
    paper_region = f"PL/SE {factor_label(paper_ratio)}"
    paper_month = f"up to +{P.FIG3_MONTH_VARIATION:.0%}"
    if not fig3:
        return [
            Finding("Fig. 3", "region", paper_region, "", NOT_RUN),
            Finding("Fig. 3", "month DE", paper_month, "", NOT_RUN),
        ]
    syn = fig3["regions"]["synth"]
    ratio = syn["PL"][0] / syn["SE"][0]
    ok = abs(ratio / paper_ratio - 1) <= REGION_TOLERANCE
    region = Finding(
        "Fig. 3",
        "region",
        paper_region,
        f"PL/SE {factor_label(ratio)} (666/7)",
        HELD if ok else NOT_HELD,
        "" if ok else "the intensities differ from the paper's Table 1",
    )
    kg = [v[0] for v in fig3["months"].values()]
    variation = max(kg) / min(kg) - 1
    ok = abs(variation - P.FIG3_MONTH_VARIATION) <= MONTH_TOLERANCE
    month = Finding(
        "Fig. 3",
        "month DE",
        paper_month,
        f"+{variation:.0%} max/min",
        HELD if ok else NOT_HELD,
        "" if ok else "the shipped monthly intensities differ from the paper's source",
    )
    return [region, month]


def _fig4a(registry: Registry, smoke: bool) -> Finding:
    model, image = w.DISTRIBUTED_CONFIG
    claim = "DDP"
    paper = f"{P.FIG4A_GPUS} GPUs: no cut"
    single = registry.paper(train_key(model, image, "single-process"))
    ddp = [
        (k.variant, registry.paper(k))
        for k in sorted(registry.results)
        if k.variant.startswith("ddp-") and (k.model, k.image) == (model, image)
    ]
    if single is None or not ddp:
        why = not_run_reason(
            registry,
            [train_key(model, image, "single-process"), train_key(model, image, "ddp-gloo-2")],
        )
        return Finding("Fig. 4a", claim, paper, "", NOT_RUN, why)
    variant, acc = ddp[-1]
    assert acc is not None
    ratio = acc.energy_kwh / single.energy_kwh
    ours = f"{variant.rsplit('-', 1)[-1]} procs: x{ratio:.2f}"
    if smoke:
        return Finding("Fig. 4a", claim, paper, ours, NOT_JUDGED, REASON_SMOKE)
    keys = [train_key(model, image, "single-process"), train_key(model, image, variant)]
    status, text = ddp_check(single, acc, load_during(registry, keys))
    return Finding("Fig. 4a", claim, paper, ours, status, "" if status == HELD else text)


def _fig4b(registry: Registry) -> Finding:
    model, image = w.INFERENCE_CONFIG
    expected = 1.0 - P.FIG4B_REDUCTION_AT_200
    claim = "DDIM 200"
    paper = f"{expected:.2f} x DDPM 1000"
    ddpm = registry.paper(synth_key(model, image, "ddpm", 1000, "samplers"))
    ddim = registry.paper(synth_key(model, image, "ddim", 200, "samplers"))
    if ddpm is None or ddim is None:
        why = not_run_reason(
            registry,
            [
                synth_key(model, image, "ddpm", 1000, "samplers"),
                synth_key(model, image, "ddim", 200, "samplers"),
            ],
        )
        return Finding("Fig. 4b", claim, paper, "", NOT_RUN, why)
    status, ratio, half = ratio_check(ddim, ddpm, expected, P.DDIM_RATIO_TOLERANCE)
    ours = f"{ratio:.3f} ± {half:.3f}" if math.isfinite(half) else f"{ratio:.3f}"
    reason = "within the 95% interval: too noisy to tell" if status == INCONCLUSIVE else ""
    return Finding("Fig. 4b", claim, paper, ours, status, reason)


def _synth_vs_train(registry: Registry) -> Finding:
    claim = "synth > train"
    paper = "at every size"
    pairs = []
    for key, image in w.IMAGE_SIZES.items():
        model = w.model_for(image.dims, w.IMAGE_SIZE_MODEL).key
        t, s = registry.paper(train_key(model, key)), registry.paper(synth_key(model, key))
        if t is not None and s is not None:
            pairs.append(s.energy_kwh / t.energy_kwh)
    if not pairs:
        return Finding("Sec. 3.1", claim, paper, "", NOT_RUN)
    held = sum(r > 1 for r in pairs)
    ours = f"{held}/{len(pairs)}, {factor_label(min(pairs))}-{factor_label(max(pairs))}"
    return Finding("Sec. 3.1", claim, paper, ours, HELD if held == len(pairs) else NOT_HELD)


def findings(registry: Registry) -> list[Finding]:
    """Every finding of the paper, judged on this session's results."""
    smoke = registry.session.get("scale") == "smoke"
    return [
        *_fig1(registry, smoke),
        *_fig2(registry, smoke),
        *_fig3(registry),
        _fig4a(registry, smoke),
        _fig4b(registry),
        _synth_vs_train(registry),
    ]
