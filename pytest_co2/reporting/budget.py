"""``co2_budget``: parse the marker, and judge a test's projected total against its budget."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..constants import MARKER, MARKER_HELP  # noqa: F401  (re-exported)
from ..fmt import fmt_count, fmt_num, fmt_pm, plural, region_text
from .model import Budget, BudgetVerdict, Result, rss

_ALLOWED = ("kg", "kwh", "extrapolate", "unit", "region")
KG, KWH = "kg CO2e", "kWh"  # the quantities of the two limits
_LIMIT_UNIT = {KG: "kg", KWH: "kWh"}  # as a budget is written: "a budget of 0.5 kg"


class BudgetError(ValueError):
    """Bad marker arguments: the message names the bad value and what is accepted."""


def budget_from_marker(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], *, csv_path: str | None = None
) -> Budget:
    """The :class:`Budget` of ``@pytest.mark.co2_budget(...)``; BudgetError (one line) if bad."""
    if args:
        if len(args) > 1 or "kg" in kwargs:
            raise BudgetError(
                f"{MARKER}: positional arguments {args!r}: expected co2_budget(kg=..., kwh=...)"
            )
        kwargs = {"kg": args[0], **kwargs}
    unknown = sorted(set(kwargs) - set(_ALLOWED))
    if unknown:
        raise BudgetError(
            f"{MARKER}: unknown argument(s) {', '.join(unknown)}: accepted are {', '.join(_ALLOWED)}"
        )
    kg = _limit("kg", kwargs.get("kg"))
    kwh = _limit("kwh", kwargs.get("kwh"))
    if kg is None and kwh is None:
        raise BudgetError(
            f"{MARKER}: needs kg= or kwh= (a number > 0), e.g. @pytest.mark.co2_budget(kg=0.5)"
        )
    n = kwargs.get("extrapolate")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise BudgetError(f"{MARKER}: invalid extrapolate={n!r}: expected a whole number >= 1")
    unit = kwargs.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit):
        raise BudgetError(
            f"{MARKER}: invalid unit={unit!r}: expected a unit name such as 'iteration'"
        )
    region = kwargs.get("region")
    if region is not None:
        from ..carbon.intensity import resolve_region

        try:
            region = resolve_region(str(region), csv_path=csv_path)
        except ValueError as exc:
            raise BudgetError(f"{MARKER}: {exc}") from None
    return Budget(kg=kg, kwh=kwh, extrapolate=n, unit=unit, region=region)


def _limit(name: str, value: Any) -> float | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
    if not ok:
        raise BudgetError(f"{MARKER}: invalid {name}={value!r}: expected a number > 0")
    return float(value)


def how_measured(results: Sequence[Result]) -> str:
    """e.g. "estimated CPU", "counter GPU + estimated CPU", "simulated"."""
    parts: dict[str, set[str]] = {}
    for r in results:
        for d in r.measurement.devices:
            kind = d.device.kind
            label = (
                ""
                if kind == "simulated"
                else kind.upper()
                if kind in ("cpu", "gpu", "dram")
                else kind
            )
            parts.setdefault(d.device.method.value, set()).add(label)
    out = []
    for method, kinds in parts.items():
        ks = "/".join(sorted(k for k in kinds if k))
        out.append(f"{method} {ks}".strip())
    return " + ".join(out) or "unmeasured"


def evaluate(budget: Budget, results: Sequence[Result]) -> BudgetVerdict:
    """The test's projected total (all its measurements) against ``budget``, decided with
    the projection's 95% interval: over (the interval lies above the budget: fails), under,
    or too close to call (the budget is inside the interval: a warning, not a failure)."""
    if not results:
        return BudgetVerdict(  # no figure at all: NaN (null in the JSON), never a silent 0
            budget, math.nan, math.nan, math.nan, math.nan, passed=False,
            message="no measurement was recorded, so the budget cannot be checked",
            outcome="unmeasured",
        )  # fmt: skip
    from ..measure.budget_decision import OVER, TOO_CLOSE, budget_verdict
    from ..measure.contention import between_run_cv
    from ..measure.drift import MENTION_CV, drift_cv

    energy = math.fsum(r.projection.energy_kwh for r in results)
    co2e = math.fsum(r.emission.co2e_kg for r in results)
    std_e = rss(r.projection.std_kwh for r in results)
    std_c = rss(r.emission.std_kg for r in results)
    ci_e = rss(r.projection.ci95_kwh for r in results)
    ci_c = rss(r.emission.ci95_kg for r in results)
    targets = dict.fromkeys(
        f"{fmt_count(r.projection.n)} {plural(r.measurement.unit, r.projection.n)}" for r in results
    )
    first = results[0].emission
    what = f"for {' + '.join(targets)} in {region_text(first.region, first.month)}"
    how = how_measured(results)
    checks = []
    if budget.kg is not None:
        checks.append(budget_verdict(co2e, ci_c, budget.kg, quantity=KG))
    if budget.kwh is not None:
        checks.append(budget_verdict(energy, ci_e, budget.kwh, quantity=KWH))
    over = [v for v in checks if v.verdict == OVER]
    close = [v for v in checks if v.verdict == TOO_CLOSE]
    waited = contended_share(results)
    cv = between_run_cv(*(r.measurement.contention for r in results))
    drift = max((drift_cv(r.measurement.unit_energies_j) or 0.0 for r in results), default=0.0)
    if drift < MENTION_CV:
        drift = 0.0
    cv = max(cv, drift)
    if over and (waited > 0 or cv > 0):
        # the same rule as a comparison: no confident "over" that only the idle power
        # charged while the process waited for a CPU (a co-tenant's doing), or the
        # run-to-run spread of a run that waited, puts there
        kept = 1.0 - waited
        again = [
            budget_verdict(
                v.value * kept,
                (v.high - v.value) * kept if not math.isnan(v.low) else math.nan,
                v.budget,
                quantity=v.quantity,
                between_run_cv=cv,
            )
            for v in over
        ]
        if not any(v.verdict == OVER for v in again):
            v, w = over[0], again[0]
            why = [
                f"the idle power charged while this process waited for a CPU ({waited:.0%} of "
                "the figure)"
            ] if waited > 0 else []  # fmt: skip
            if cv > 0 and drift >= cv:
                why.append(f"the drift of the machine's speed within the run (±{cv:.0%} allowed)")
            elif cv > 0:
                why.append(f"the run-to-run spread of a run beside other jobs (±{cv:.0%} allowed)")
            message = (
                f"too close to call: projected {fmt_num(v.value)} {v.quantity} {what} is over "
                f"the budget of {v.budget:g} {_LIMIT_UNIT[v.quantity]} only through "
                f"{' and '.join(why)} ({contention_text(results)}): {fmt_num(w.value)} "
                f"without the waiting charge ({how}); rerun on a quieter runner to decide"
            )
            return BudgetVerdict(budget, energy, std_e, co2e, std_c, True, message, "close")
    if over:
        v = over[0]
        message = _over_message(budget, v.quantity, energy, std_e, co2e, std_c, what, how)
        if v.low != v.high and not math.isnan(v.low):
            message += f"; 95% interval {fmt_num(v.low)} to {fmt_num(v.high)}"
        return BudgetVerdict(budget, energy, std_e, co2e, std_c, False, message, "over")
    if close:
        v = close[0]
        message = (
            f"too close to call: projected {fmt_num(v.value)} {v.quantity} {what} has a 95% "
            f"interval of {fmt_num(v.low)} to {fmt_num(v.high)}, which holds the budget of "
            f"{v.budget:g} {_LIMIT_UNIT[v.quantity]} ({how}); measure more precisely "
            "(--co2-precision) to decide"
        )
        return BudgetVerdict(budget, energy, std_e, co2e, std_c, True, message, "close")
    return BudgetVerdict(budget, energy, std_e, co2e, std_c, True, None, "under")


def contended_share(results: Sequence[Result]) -> float:
    """The share of the results' projected energy that is idle power charged while the
    main thread waited for a CPU: per measurement of an estimate (work part known), the
    idle share (energy less work) x the main thread's wait / wall time; 0 without them."""
    total = math.fsum(r.projection.energy_kwh for r in results)
    if not total > 0:
        return 0.0
    part = 0.0
    for r in results:
        m = r.measurement
        c = m.contention
        wait = None if c is None else c.main_wait_fraction
        if m.work_energy_j is None or wait is None or not m.energy_j > 0:
            continue
        idle_share = max(m.energy_j - m.work_energy_j, 0.0) / m.energy_j
        part += r.projection.energy_kwh * idle_share * wait
    return min(part / total, 1.0)


def contention_text(results: Sequence[Result]) -> str:
    """The first measured contention of the results, in words."""
    for r in results:
        if r.measurement.contention is not None:
            return r.measurement.contention.describe()
    return "contention unknown"


def _over_message(
    budget: Budget, quantity: str, energy_kwh: float, std_kwh: float, co2e_kg: float,
    std_kg: float, what: str, how: str,
) -> str:  # fmt: skip
    if quantity == KG:
        return (
            f"projected {fmt_pm(co2e_kg, std_kg, '+-')} kg CO2e {what} exceeds the budget of "
            f"{budget.kg:g} kg ({fmt_num(energy_kwh)} kWh, {how})"
        )
    return (
        f"projected {fmt_pm(energy_kwh, std_kwh, '+-')} kWh {what} exceeds the budget of "
        f"{budget.kwh:g} kWh ({fmt_num(co2e_kg)} kg CO2e, {how})"
    )


def verdict_text(verdict: BudgetVerdict | None, mode: str) -> str:
    """The summary's verdict cell: ok, OVER or OVER (warn)."""
    if verdict is None:
        return ""
    if verdict.outcome == "close":
        return "too close"
    if verdict.outcome == "unmeasured":
        return "unmeasured"
    if verdict.passed:
        return "ok"
    return "OVER (warn)" if mode == "warn" else "OVER"


def budget_text(verdict: BudgetVerdict | None) -> str:
    """The summary's budget cell: ``0.05 kg``, ``1.2 kWh``."""
    if verdict is None:
        return ""
    b = verdict.budget
    parts = []
    if b.kg is not None:
        parts.append(f"{fmt_num(b.kg)} kg")
    if b.kwh is not None:
        parts.append(f"{fmt_num(b.kwh)} kWh")
    return ", ".join(parts)
