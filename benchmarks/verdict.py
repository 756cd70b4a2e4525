"""The verdict against the paper: one line per finding, and our / paper ratio per config.

Pure functions of the session's results (:class:`~benchmarks.registry.Registry`): no torch,
no pytest. conftest.py prints :func:`render_terminal` after the emissions summary, puts
:func:`verdict_json` in the plugin's JSON report (``paper_verdict``) and the paper report
embeds :func:`render_markdown`.

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
import re
from dataclasses import asdict, dataclass
from typing import Any

from . import paper as P
from . import workloads as w
from .host import Contention
from .planner import steps_note
from .registry import Key, PaperAccounting, Registry, growth_check, synth_key, train_key

HELD = "held"
NOT_HELD = "did not hold"
HARDWARE = "hardware-dependent"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
NOT_JUDGED = "not judged"
#: Worst first: a finding made of several series takes its worst series' status.
SEVERITY = (NOT_HELD, INCONCLUSIVE, HARDWARE, HELD, NOT_JUDGED, NOT_RUN)
#: The size of an effect (a growth factor) agrees with the paper's within this factor.
FACTOR_TOLERANCE = 2.0
#: Fig. 3b: our largest monthly variation agrees with the paper's "up to 50%" within this.
MONTH_TOLERANCE = 0.15
#: Fig. 3a: our PL/SE ratio agrees with the paper's 405 / 4.3 within this fraction.
REGION_TOLERANCE = 0.05
#: Fig. 4a's "no significant reduction": distributing may not cut energy per batch by more.
MAX_DDP_REDUCTION = 0.20
WIDTH = 100

REASON_COMPUTE = (
    "a CPU is compute-bound: its cost follows the work of a step, where the paper's A100 was "
    "not saturated by the smaller configs"
)
REASON_MODELS = (
    "our models grow {steps} in parameters per size step (the paper's are unpublished) and a "
    "CPU's cost follows that work"
)
REASON_SMOKE = "smoke scale: fixed costs dominate tiny shapes (use --co2-scale=paper)"


@dataclass(frozen=True)
class Finding:
    """One line of the verdict: the paper's claim, ours, and whether it held."""

    figure: str  # "Fig. 1"
    claim: str  # "image size, 2D training"
    paper: str  # "x2.0 (0.40 to 0.79 kg)"
    ours: str  # "x7.7"
    status: str  # one of SEVERITY
    reason: str = ""


@dataclass(frozen=True)
class Ratio:
    """Our projected kg CO2e over the paper's for one config, both accounted like the paper."""

    label: str
    ours_kg: float
    paper_kg: float
    published: bool  # False: the paper gives no number; the reference is derived (paper.py)

    @property
    def ratio(self) -> float:
        return self.ours_kg / self.paper_kg if self.paper_kg > 0 else math.nan


def worst(statuses: list[str]) -> str:
    """The most severe status of several series (NOT_RUN when there are none)."""
    return min(statuses, key=SEVERITY.index) if statuses else NOT_RUN


def factor_status(ours: float, paper: float, tolerance: float = FACTOR_TOLERANCE) -> str:
    """HELD when ``ours`` is within ``tolerance`` times ``paper`` either way, else HARDWARE."""
    if not (ours > 0 and paper > 0):
        return NOT_HELD
    return HELD if 1 / tolerance <= ours / paper <= tolerance else HARDWARE


def ratio_check(
    a: PaperAccounting, b: PaperAccounting, expected: float, tolerance: float
) -> tuple[str, float, float]:
    """Is ``a / b`` within ``tolerance`` of ``expected``? (status, ratio, 95% half-width).

    The half-width is the ratio's relative 95% interval from both measurements' intervals
    (first-order propagation). Outside the tolerance by more than that: NOT_HELD; outside by
    less (or no interval with a single window): INCONCLUSIVE.
    """
    ratio = a.energy_kwh / b.energy_kwh
    rel = math.hypot(a.ci95_kwh / a.energy_kwh, b.ci95_kwh / b.energy_kwh)
    half = ratio * rel
    miss = abs(ratio - expected) - tolerance
    if miss <= 0:
        return HELD, ratio, half
    return (NOT_HELD if math.isfinite(half) and miss > half else INCONCLUSIVE), ratio, half


def _x(f: float) -> str:
    """``x0.41``, ``x7.7``, ``x61``: a factor with two significant digits (at least)."""
    return f"x{f:.0f}" if f >= 10 else f"x{f:.1f}" if f >= 1 else f"x{f:.2g}"


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
    if not all(runs.get(_run_id(k), {}).get("skipped") for k in missing):
        return None, why
    part = [(lb, registry.paper(k)) for k, lb in zip(keys, labels, strict=True) if k not in missing]
    series = [(lb, a) for lb, a in part if a is not None]
    return (series if len(series) >= 2 else None), why


def _direction(series: list[tuple[str, PaperAccounting]]) -> str | None:
    """NOT_HELD / INCONCLUSIVE when the series does not grow, None when it does."""
    bad, unsure = growth_check(series)
    return NOT_HELD if bad else INCONCLUSIVE if unsure else None


def _run_id(key: Key) -> str:
    """The job budget's id of the config that measured ``key`` (samplers share one)."""
    if key.variant == "samplers":
        return f"samplers/{key.model}/{key.image}"
    return key.id


def not_run_reason(registry: Registry, keys: list[Key]) -> str:
    """Why the first of ``keys`` without a result has none, where the job said why."""
    runs = registry.session.get("runs", {})
    for k in keys:
        if k not in registry.results:
            skipped = runs.get(_run_id(k), {}).get("skipped")
            if skipped:
                return f"{runs[_run_id(k)].get('label', k.id)} skipped, {skipped}"
    return ""


def load_during(registry: Registry, keys: list[Key]) -> Contention | None:
    """The worst CPU contention measured while ``keys`` ran (None: none was recorded)."""
    runs = registry.session.get("runs", {})
    out: Contention | None = None
    for k in keys:
        c = runs.get(_run_id(k), {}).get("contention")
        if c is not None:
            here = Contention(c.get("pressure"), c.get("steal"))
            out = here if out is None else out.worst(here)
    return out


def ddp_check(
    single: PaperAccounting, ddp: PaperAccounting, load: Contention | None
) -> tuple[str, str]:
    """Fig. 4a: (status, text). Distributing may not cut the energy per batch by more than
    MAX_DDP_REDUCTION. A larger cut fails only beyond both 95% intervals and on a CPU known
    not to be contended: other load slows the 2-thread single process more than 1-thread
    ranks (0.73 under load where quiet runs give 0.96-1.13), so under load or with the load
    unknown it is inconclusive, naming the contention."""
    ratio = ddp.energy_kwh / single.energy_kwh
    text = f"{ratio:.2f} x the single process's energy per batch"
    floor = 1.0 - MAX_DDP_REDUCTION
    if ratio >= floor:
        return HELD, text
    margin = math.hypot(single.ci95_kwh, ddp.ci95_kwh)
    shortfall = floor * single.energy_kwh - ddp.energy_kwh
    if not (math.isfinite(margin) and shortfall > margin):
        return INCONCLUSIVE, f"inconclusive: {text}, within the 95% intervals (±{margin:.3g} kWh)"
    loaded = None if load is None else load.loaded
    if loaded is None:
        where = load.describe() if load is not None else "no contention recorded"
        return INCONCLUSIVE, f"inconclusive, load unknown: {text} ({where})"
    if loaded:
        return INCONCLUSIVE, f"inconclusive under load: {text} ({load.describe()})"  # type: ignore[union-attr]
    return (
        NOT_HELD,
        f"{text}, beyond the 95% intervals (±{margin:.3g} kWh) on a quiet CPU ({load.describe()})",
    )  # type: ignore[union-attr]


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
            paper = f"{_x(paper_f)} {first}-{last}"
            labels = [w.IMAGE_SIZES[k].label for k in keys]
            series, why = _measured(registry, [make(model, k) for k in keys], labels)
            if series is None:
                out.append(Finding("Fig. 1", claim, paper, "", NOT_RUN, why))
                continue
            ours_f = series[-1][1].kg / series[0][1].kg
            ours = _x(ours_f) if not why else f"{_x(ours_f)} {series[0][0]}-{series[-1][0]}"
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
    paper_region = f"PL/SE {_x(paper_ratio)}"
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
        f"PL/SE {_x(ratio)} (666/7)",
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
    ours = f"{held}/{len(pairs)}, {_x(min(pairs))}-{_x(max(pairs))}"
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


# -- our / paper per configuration ----------------------------------------------------------------


def reference(key: Key) -> tuple[float, bool]:
    """The paper's kg CO2e for ``key``'s config at its N, and whether it is published.

    Published: the Fig. 1 value. Otherwise the derivation of ``paper.py`` (a range's ceiling,
    Fig. 2's growth, Fig. 4b's steps / 1000, Fig. 4a's single GPU), which is an upper bound.
    """
    size = w.MODELS[key.model].size
    if key.phase == "train":
        if key.variant.startswith("ddp-"):
            spec = P.ddp_budget(key.image)
        else:
            fig = P.fig1_figure("train", key.image) if size == "medium" else None
            if fig is not None:
                return fig.kg, True
            spec = P.model_budget("train", key.image, size)
        return spec.kg_eu27, False
    steps = key.sampler.split("-")[1]
    if key.variant == "samplers":
        return P.sampler_budget(key.image, int(steps)).kg_eu27, False
    fig = P.fig1_figure("synth", key.image) if size == "medium" else None
    if fig is not None:
        return fig.kg, True
    return P.model_budget("synth", key.image, size).kg_eu27, False


def key_label(key: Key, scale: str = "paper") -> str:
    """``train 3d-medium 192³``, ``synth 3d-medium 64³ DDIM 200``, ``... DDP gloo x2``."""
    image = w.scaled_label(w.IMAGE_SIZES[key.image], scale)
    label = f"{key.phase} {key.model} {image}"
    if key.variant == "samplers":
        kind, steps = key.sampler.split("-")
        label += f" {kind.upper()} {steps}"
    elif key.variant.startswith("ddp-"):
        _, backend, world = key.variant.split("-")
        label += f" DDP {backend} x{world}"
    elif key.variant == "single-process":
        label += " 1 process"
    return label


def _order(key: Key) -> tuple[Any, ...]:
    """Phase, dims, model size, image size, variant, fewer steps last (the paper's order)."""
    model = w.MODELS.get(key.model)
    images = list(w.IMAGE_SIZES)
    steps = -int(key.sampler.split("-")[1]) if key.sampler else 0
    return (
        key.phase != "train",
        model.dims if model else 0,
        w.MODEL_SIZES.index(model.size) if model else 0,
        images.index(key.image) if key.image in images else 0,
        key.variant,
        steps,
    )


def ratios(registry: Registry) -> list[Ratio]:
    """Ours / the paper's for every measured config, in the paper's order."""
    scale = registry.session.get("scale", "paper")
    out = []
    for key in sorted(registry.results, key=_order):
        acc = registry.paper(key)
        if acc is None or key.model not in w.MODELS:
            continue
        ref, published = reference(key)
        out.append(Ratio(key_label(key, scale), acc.kg, ref, published))
    return out


# -- what the job budget changed -------------------------------------------------------------------


def _rel_ci95(registry: Registry, run_id: str) -> float:
    """The 95% interval of the config's per-unit energy, relative to its mean."""
    for key in registry.results:
        if _run_id(key) == run_id:
            acc = registry.paper(key)
            if acc is not None and acc.energy_kwh > 0:
                return acc.ci95_kwh / acc.energy_kwh
    return math.nan


def budget_notes(registry: Registry) -> tuple[list[str], list[str]]:
    """(configs with fewer steps than the default, configs skipped) as ``label: note`` lines."""
    runs = registry.session.get("runs", {})
    fewer, skipped = [], []
    for run_id, r in runs.items():
        if r.get("skipped"):
            skipped.append(f"{r.get('label', run_id)}: {r['skipped']}")
        elif r.get("reduced") and r.get("steps", 0) < r.get("default_steps", 0):
            note = steps_note(r["steps"], r["default_steps"], _rel_ci95(registry, run_id))
            fewer.append(f"{r.get('label', run_id)}: {note}")
    return fewer, skipped


# -- rendering ------------------------------------------------------------------------------------


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
                _x(r.ratio) if math.isfinite(r.ratio) else "",
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
            f"{_x(r.ratio) if math.isfinite(r.ratio) else ''} |"
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
