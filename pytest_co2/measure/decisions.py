"""Decisions that account for the noise they measured (pure, stdlib only).

:func:`compare_decision` / :class:`CompareDecision` (``to_dict``/``from_dict``, a one-line
``describe()`` for the terminal): regression, no regression or inconclusive, from the
relative change of the per-unit energy and its 95% interval (Welch's t on the log of the
means, delta method; optionally scaled by a reference workload measured in both runs to
cancel machine drift). The estimates are :mod:`.estimates`; the stopping rule is
:mod:`.stopping`; the budget verdict :mod:`.budget_decision`; the paired A/B :mod:`.paired`.

Intervals are two-sided 95% Student-t intervals. Rules, so that a reader can check them:

- regression: the interval's lower bound exceeds the threshold; no regression: its upper
  bound is below the threshold (a one-sided test at 2.5% each way, as in equivalence
  testing); inconclusive: the interval contains the threshold.
- the between-run spread of a machine (run-to-run drift that the windows of one run do not
  see) enters as ``between_run_cv``: each run's mean is taken to carry an extra independent
  relative error of that size. 0 means "the windows of a run tell the whole story".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ..fmt import fmt_pct, fmt_rel_pm, fmt_sig
from ..frozen import Frozen, record
from .estimates import Z975, Estimate, estimate, json_num_inf
from .stats import num, t_quantile

REGRESSION = "regression"
NO_REGRESSION = "no regression"
INCONCLUSIVE = "inconclusive"


@record
class CompareDecision(Frozen):
    """One measurement against its baseline. Fractions: ``change`` 0.052 is +5.2%.

    ``low``/``high`` bound the 95% interval of the change (NaN for a point compare);
    ``basis`` says what the decision rests on; ``needed_precision`` is the relative 95%
    half-width per run (the ``--co2-precision`` both runs would need) that would decide an
    inconclusive case, 0 when no precision can (the change sits on the threshold, or the
    between-run spread alone is too large), None when the case is decided.
    """

    outcome: str
    change: float
    low: float
    high: float
    threshold: float
    basis: str
    mean_j: float
    base_mean_j: float
    n: int
    base_n: int
    method: str
    between_run_cv: float
    reference_change: float | None
    needed_precision: float | None
    # what was compared (e.g. "CPU work": the energy less the estimate's wall-time idle
    # share), the relative widening of the interval for a difference in contention between
    # the runs (see measure.contention), and why; "" / 0 / None in reports before them
    quantity: str = "energy"
    allowance: float = 0.0
    contention: str | None = None
    # the two-sided level of the interval: 0.95, less than 1 - 0.05 only for one of several
    # looks of a sequential paired A/B (measure.paired); 0.95 in reports before it
    level: float = 0.95

    @property
    def failed(self) -> bool:
        return self.outcome == REGRESSION

    def describe(self) -> str:
        """One line, e.g. ``regression: +24.9% (95% +18.2% to +32.0%) > 10%``."""
        if math.isnan(self.low):
            head = f"{self.outcome}: {fmt_pct(self.change * 100)} ({self.basis})"
        else:
            lvl = f"{self.level * 100:.4g}%"
            head = f"{self.outcome}: {fmt_pct(self.change * 100)} ({lvl} {fmt_pct(self.low * 100)} to {fmt_pct(self.high * 100)})"
        rel = {REGRESSION: ">", NO_REGRESSION: "<"}.get(self.outcome, "vs")
        if self.allowance > 0 and not math.isnan(self.low):
            lo, hi = _widen(self.low, self.high, self.allowance)
            head += f", widened to {fmt_pct(lo * 100)} to {fmt_pct(hi * 100)} for contention"
        text = f"{head} {rel} {fmt_sig(self.threshold * 100)}%"
        if self.quantity != "energy":
            text += f" ({self.quantity})"
        if self.reference_change is not None:
            text += f", scaled by the reference workload ({fmt_pct(self.reference_change * 100)})"
        if self.contention is not None:
            text += f"; {self.contention}"
        if self.needed_precision is not None and self.contention is None:
            if self.needed_precision > 0:
                text += f"; needs {fmt_rel_pm(self.needed_precision)} per run to decide"
            elif self.between_run_cv == 0:
                text += "; the change equals the threshold: no precision decides it"
            else:
                text += "; the between-run spread alone is too large to decide it"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {k: json_num_inf(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompareDecision:
        return cls(
            outcome=str(d["outcome"]),
            change=num(d["change"]),
            low=num(d["low"]),
            high=num(d["high"]),
            threshold=float(d["threshold"]),
            basis=str(d["basis"]),
            mean_j=num(d["mean_j"]),
            base_mean_j=num(d["base_mean_j"]),
            n=int(d["n"]),
            base_n=int(d["base_n"]),
            method=str(d["method"]),
            between_run_cv=float(d["between_run_cv"]),
            reference_change=None
            if d.get("reference_change") is None
            else num(d["reference_change"]),
            needed_precision=None
            if d.get("needed_precision") is None
            else float(d["needed_precision"]),
            quantity=str(d.get("quantity") or "energy"),
            allowance=float(d.get("allowance") or 0.0),
            contention=None if d.get("contention") is None else str(d["contention"]),
            level=float(d.get("level") or 0.95),
        )


def _widen(low: float, high: float, allowance: float) -> tuple[float, float]:
    """The change's interval widened by a relative ``allowance`` on each side (as ratios)."""
    return (1 + low) / (1 + allowance) - 1, (1 + high) * (1 + allowance) - 1


def _as_estimate(x: Estimate | Sequence[float] | float, method: str) -> Estimate | float:
    if isinstance(x, Estimate):
        return x
    if isinstance(x, (int, float)):
        return float(x)
    return estimate(x, method)


def _center(x: Estimate | float) -> float:
    return x.center_j if isinstance(x, Estimate) else x


def _n(x: Estimate | float) -> int:
    return x.n if isinstance(x, Estimate) else 0


def compare_decision(
    base: Estimate | Sequence[float] | float,
    current: Estimate | Sequence[float] | float,
    threshold: float,
    *,
    method: str = "mean",
    between_run_cv: float = 0.0,
    reference_base: Estimate | Sequence[float] | None = None,
    reference_current: Estimate | Sequence[float] | None = None,
    point_guard: float = 1.0,
    quantity: str = "energy",
    allowance: float = 0.0,
    contention: str | None = None,
    refuse: bool = False,
) -> CompareDecision:
    """Regression, no regression or inconclusive for the per-unit energy of one measurement.

    ``base``/``current``: per-window per-unit energies (J), an :class:`Estimate`, or a bare
    mean (float: the run kept no samples). ``threshold``: the allowed relative increase
    (0.10 for ``energy:10%``).

    The change is ``current / base - 1`` of the centers. Its interval comes from the log
    ratio, ``log(c) - log(b)``, whose standard error by the delta method is
    ``sqrt((se_c/c)^2 + (se_b/b)^2 + 2 cv^2)`` (cv: ``between_run_cv``), with Welch-
    Satterthwaite degrees of freedom (the between-run term counts as known): the interval is
    ``exp(log ratio +- t975 x se) - 1``, never below -100%, asymmetric as ratios are. A
    bootstrap was not chosen: with 5-20 windows its percentile intervals are too narrow,
    and a seeded resample still depends on the seed.

    With a reference workload measured in both runs, the change is that of
    ``test / reference``: the reference's change (machine drift) is divided out and its
    uncertainty added.

    Without an interval (one window on either side, and no between-run spread), the point
    estimate decides only when it is far from the threshold: regression above
    ``threshold x (1 + point_guard)``, no regression below ``threshold x (1 - point_guard)``,
    inconclusive between. (With ``between_run_cv`` > 0 a side without spread contributes
    only that term.) A side given as a bare mean (an old baseline without samples)
    gets the plain point compare (regression above the threshold), labelled so. A zero
    baseline: no regression if the current is zero too; regression when the current's
    interval (or, without one, its value) is above zero; else inconclusive.

    Contention (see :mod:`.contention`): ``allowance`` widens the interval on each side by
    that relative amount before it is held against the threshold (the change that unlike
    contention of the runs could make by itself); ``refuse`` makes the outcome inconclusive
    whatever the interval (the runs are too differently contended to compare);
    ``contention`` is the reason, shown on the line. ``quantity`` names what was compared.
    """
    _check_compare_args(threshold, between_run_cv, reference_base, reference_current)
    if not (math.isfinite(allowance) and allowance >= 0):
        raise ValueError(f"invalid allowance {allowance!r}: expected a fraction >= 0")
    b, c = _as_estimate(base, method), _as_estimate(current, method)
    cb, cc = _center(b), _center(c)
    nan = math.nan

    def make(
        outcome: str,
        change: float,
        basis: str,
        low: float = nan,
        high: float = nan,
        ref: float | None = None,
        needed: float | None = None,
    ) -> CompareDecision:
        return CompareDecision(
            outcome=outcome,
            change=change,
            low=low,
            high=high,
            threshold=threshold,
            basis=basis,
            mean_j=c.mean_j if isinstance(c, Estimate) else cc,
            base_mean_j=b.mean_j if isinstance(b, Estimate) else cb,
            n=_n(c),
            base_n=_n(b),
            method=method,
            between_run_cv=between_run_cv,
            reference_change=ref,
            needed_precision=needed,
            quantity=quantity,
            allowance=allowance,
            contention=contention
            if outcome == INCONCLUSIVE or allowance > 0 or between_run_cv > 0
            else None,
        )

    if cb <= 0 or cc <= 0:
        return make(*_zero_case(b, c))

    terms: list[Estimate | float] = [c, b]
    log_ratio = math.log(cc) - math.log(cb)
    ref_change: float | None = None
    if reference_base is not None and reference_current is not None:
        rb, rc = _as_estimate(reference_base, method), _as_estimate(reference_current, method)
        if _center(rb) <= 0 or _center(rc) <= 0:
            raise ValueError("reference workload: its per-unit energy must be > 0 in both runs")
        ref_log = math.log(_center(rc)) - math.log(_center(rb))
        ref_change = math.expm1(ref_log)
        log_ratio -= ref_log
        terms += [rc, rb]
    change = math.expm1(log_ratio)
    gap = abs(log_ratio - math.log1p(threshold))

    ests = [t for t in terms if isinstance(t, Estimate)]
    if len(ests) < len(terms) or (any(not e.has_spread for e in ests) and between_run_cv == 0):
        outcome, basis = _point(change, threshold, point_guard, len(ests) < len(terms))
        needed = None
        if refuse:
            outcome = INCONCLUSIVE
        elif outcome == INCONCLUSIVE:
            needed = _needed(gap, len(ests), between_run_cv)
        return make(outcome, change, basis, ref=ref_change, needed=needed)

    half = _log_half_width(ests, between_run_cv)
    low, high = math.expm1(log_ratio - half), math.expm1(log_ratio + half)
    wide_low, wide_high = _widen(low, high, allowance)
    if refuse:
        outcome, needed_p = INCONCLUSIVE, None
    elif wide_low > threshold:
        outcome, needed_p = REGRESSION, None
    elif wide_high < threshold:
        outcome, needed_p = NO_REGRESSION, None
    else:
        outcome, needed_p = INCONCLUSIVE, _needed(gap, len(ests), between_run_cv)
    return make(outcome, change, "interval", low, high, ref_change, needed_p)


def _point(
    change: float, threshold: float, point_guard: float, no_samples: bool
) -> tuple[str, str]:
    """(outcome, basis) of a compare without an interval (see compare_decision)."""
    if no_samples:
        return REGRESSION if change > threshold else NO_REGRESSION, "point: no per-window samples"
    basis = "point: one window, no spread"
    if change > threshold * (1 + point_guard):
        return REGRESSION, basis
    if change < threshold * (1 - point_guard):
        return NO_REGRESSION, basis
    return INCONCLUSIVE, basis


def _check_compare_args(
    threshold: float, between_run_cv: float, reference_base: object, reference_current: object
) -> None:
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"invalid threshold {threshold!r}: expected a fraction >= 0, e.g. 0.10")
    if not (math.isfinite(between_run_cv) and between_run_cv >= 0):
        raise ValueError(f"invalid between_run_cv {between_run_cv!r}: expected a fraction >= 0")
    if (reference_base is None) != (reference_current is None):
        raise ValueError(
            "reference workload: give both reference_base and reference_current, or neither"
        )


def _zero_case(b: Estimate | float, c: Estimate | float) -> tuple[str, float, str]:
    """(outcome, change, basis) when the baseline or the current center is zero."""
    if _center(b) <= 0:
        if _center(c) <= 0:
            return NO_REGRESSION, 0.0, "zero baseline and zero now"
        hw = c.half_width_j() if isinstance(c, Estimate) else math.nan
        if math.isnan(hw) or _center(c) - hw > 0:
            return REGRESSION, math.inf, "zero baseline"
        return INCONCLUSIVE, math.inf, "zero baseline; the current interval includes 0"
    return NO_REGRESSION, -1.0, "zero now"


def _log_half_width(ests: Sequence[Estimate], between_run_cv: float) -> float:
    """t975 x se of the log ratio: delta-method relative variances plus 2 cv^2, on
    Welch-Satterthwaite degrees of freedom (the between-run term taken as known)."""
    terms = [((e.se_j / e.center_j) ** 2, e.df) for e in ests if e.has_spread]
    var = math.fsum(v for v, _ in terms) + 2 * between_run_cv**2
    denom = math.fsum(v * v / d for v, d in terms)
    df = var * var / denom if denom > 0 else math.inf
    return t_quantile(0.975, df) * math.sqrt(var)


def _needed(gap: float, k: int, between_run_cv: float) -> float:
    """The per-run relative 95% half-width p (equal for all ``k`` estimates) that decides.

    The interval's log half-width is about ``sqrt(k p^2 + 2 (z cv)^2)``; it must be below
    the distance ``gap`` of the log change from the log threshold. 0: no p is small enough.
    """
    room = gap * gap - 2 * (Z975 * between_run_cv) ** 2
    return math.sqrt(room / k) if room > 0 and gap > 1e-9 else 0.0
