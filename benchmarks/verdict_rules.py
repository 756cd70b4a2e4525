"""The rules a finding of the verdict is judged by: the status words and their severity, the
tolerances, a factor's and a ratio's check against the paper's, Fig. 4a's check of
distributed training, and what the job said about configs it did not run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .host import Contention
from .registry import Key, PaperAccounting, Registry

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


def factor_label(f: float) -> str:
    """``x0.41``, ``x7.7``, ``x61``: a factor with two significant digits (at least)."""
    return f"x{f:.0f}" if f >= 10 else f"x{f:.1f}" if f >= 1 else f"x{f:.2g}"


def config_run_id(key: Key) -> str:
    """The job budget's id of the config that measured ``key`` (samplers share one)."""
    if key.variant == "samplers":
        return f"samplers/{key.model}/{key.image}"
    return key.id


def not_run_reason(registry: Registry, keys: list[Key]) -> str:
    """Why the first of ``keys`` without a result has none, where the job said why."""
    runs = registry.session.get("runs", {})
    for k in keys:
        if k not in registry.results:
            skipped = runs.get(config_run_id(k), {}).get("skipped")
            if skipped:
                return f"{runs[config_run_id(k)].get('label', k.id)} skipped, {skipped}"
    return ""


def load_during(registry: Registry, keys: list[Key]) -> Contention | None:
    """The worst CPU contention measured while ``keys`` ran (None: none was recorded)."""
    runs = registry.session.get("runs", {})
    out: Contention | None = None
    for k in keys:
        c = runs.get(config_run_id(k), {}).get("contention")
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
