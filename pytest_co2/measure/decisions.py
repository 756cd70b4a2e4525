"""Decisions that account for the noise they measured (pure, stdlib only).

Three decisions, each a frozen dataclass with ``to_dict``/``from_dict`` and a one-line
``describe()`` for the terminal:

- :class:`StopRule` / :class:`StopDecision`: adaptive precision. After each measured window
  the meter asks whether the 95% interval of the per-unit energy is within the target
  (``--co2-precision``), or a time cap or step cap ended the measurement.
- :func:`compare_decision` / :class:`CompareDecision`: regression, no regression or
  inconclusive, from the relative change of the per-unit energy and its 95% interval
  (Welch's t on the log of the means, delta method; optionally scaled by a reference
  workload measured in both runs to cancel machine drift).
- :func:`budget_verdict` / :class:`BudgetDecision`: over, under or too close to call.

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
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..constants import DEFAULT_MAX_TIME_S
from ..fmt import fmt_pct, fmt_rel_pm, fmt_sig, plural
from .stats import num, t_quantile

LEVEL = 0.95  # every interval here is a two-sided 95% interval
Z975 = statistics.NormalDist().inv_cdf(0.975)  # 1.959964...

#: Fewer windows than this never stop a measurement on precision. With 4 degrees of freedom
#: t975 is 2.776 (12.706 with 1, 4.303 with 2) and the chance that the sample standard
#: deviation of normal data is below half the true one is 9.0% (22% with 2 degrees of
#: freedom): stopping on a lucky, too-small spread is what a sequential rule must avoid.
#: Each extra window costs one step, little against the time cap. Simulated (normal windows,
#: CV 4%, target 3%, 2,000 measurements): the final interval covers the true mean 88.2% of
#: the time with a minimum of 2 windows, 90.8% with 3, 92.5% with 5, 93.3% with 8, at a
#: median of 8-9 windows in each case (sequential stopping always costs a little coverage).
MIN_WINDOWS = 5
TRIM = 0.2  # fraction cut from each end by the trimmed mean (Yuen's 20%)
METHODS = ("mean", "trimmed")


# -- estimates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A center of per-unit energies (J) with its standard error, as a t interval needs.

    ``method`` is ``mean`` (sample mean, se = std / sqrt(n), n - 1 degrees of freedom) or
    ``trimmed`` (Yuen's 20% trimmed mean, se from the winsorized variance, h - 1 degrees of
    freedom where h values are kept). ``mean`` and ``std`` are always the plain sample mean
    and standard deviation (the paper's mean +- std). ``se`` and ``df`` are NaN with one window.
    """

    method: str
    center_j: float
    se_j: float
    df: float
    n: int
    mean_j: float
    std_j: float

    @property
    def has_spread(self) -> bool:
        return self.n >= 2 and math.isfinite(self.se_j)

    def half_width_j(self) -> float:
        """Half-width of the 95% interval of the center (NaN without spread)."""
        return t_quantile(0.975, self.df) * self.se_j if self.has_spread else math.nan

    def relative_half_width(self) -> float:
        """Half-width / center: 0 for an all-zero sample, inf for a zero center with spread."""
        hw = self.half_width_j()
        if math.isnan(hw):
            return math.nan
        if self.center_j == 0:
            return 0.0 if hw == 0 else math.inf
        return hw / abs(self.center_j)

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_num(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Estimate:
        return cls(
            method=str(d["method"]),
            center_j=num(d["center_j"]),
            se_j=num(d["se_j"]),
            df=num(d["df"]),
            n=int(d["n"]),
            mean_j=num(d["mean_j"]),
            std_j=num(d["std_j"]),
        )

    @classmethod
    def from_summary(cls, mean_j: float, std_j: float | None, n: int) -> Estimate:
        """From a stored mean, std and window count (baselines that kept no samples)."""
        std = math.nan if std_j is None or n < 2 else float(std_j)
        se = std / math.sqrt(n) if n >= 2 else math.nan
        return cls("mean", float(mean_j), se, n - 1 if n >= 2 else math.nan, n, float(mean_j), std)


def estimate(samples: Sequence[float], method: str = "mean", trim: float = TRIM) -> Estimate:
    """The :class:`Estimate` of per-window per-unit energies ``samples`` (at least one)."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("estimate: no samples: expected at least one per-window energy")
    if method not in METHODS:
        raise ValueError(f"invalid method {method!r}: expected one of {', '.join(METHODS)}")
    if not 0 <= trim < 0.5:
        raise ValueError(f"invalid trim {trim!r}: expected a fraction in [0, 0.5)")
    n = len(xs)
    mean = math.fsum(xs) / n
    std = statistics.stdev(xs) if n >= 2 else math.nan
    if n < 2:
        return Estimate(method, mean, math.nan, math.nan, n, mean, std)
    if method == "mean":
        return Estimate(method, mean, std / math.sqrt(n), n - 1, n, mean, std)
    g = math.floor(trim * n)
    h = n - 2 * g
    s = sorted(xs)
    center = math.fsum(s[g : n - g]) / h
    wins = [s[g]] * g + s[g : n - g] + [s[n - g - 1]] * g
    var_w = statistics.variance(wins)
    se = math.sqrt((n - 1) * var_w / (h * (h - 1))) if h >= 2 else math.nan
    return Estimate(method, center, se, h - 1 if h >= 2 else math.nan, n, mean, std)


def estimate_of_entry(entry: Mapping[str, Any], method: str = "mean") -> Estimate | float | None:
    """What a saved measurement (one JSON entry) offers for a decision.

    The per-window samples (``unit_energies_j``) when there are any; else an estimate from
    the stored ``energy_per_unit_j`` mean, std and window count; else the mean alone (a
    float: only a point compare is possible); None when the entry has no per-unit energy.
    """
    samples = entry.get("unit_energies_j")
    if samples:
        return estimate(samples, method)
    stats = entry.get("energy_per_unit_j")
    if not isinstance(stats, Mapping) or stats.get("mean") is None:
        return None
    n = int(stats.get("n") or 0)
    if stats.get("std") is not None and n >= 2:
        return Estimate.from_summary(float(stats["mean"]), float(stats["std"]), n)
    return float(stats["mean"])


# -- --co2-precision ------------------------------------------------------------------------


def parse_precision(text: str | float) -> float:
    """``3%`` or ``0.03`` -> 0.03: a relative 95% half-width in (0, 100%), ends excluded."""
    raw = str(text).strip()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%?)", raw)
    value = math.nan
    if m:
        value = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    if not (0.0 < value < 1.0):
        raise ValueError(
            f"invalid --co2-precision {text!r}: expected the 95% interval's half-width relative "
            "to the mean, between 0 and 100% exclusive, e.g. 3% or 0.03"
        )
    return value


# -- stopping rule --------------------------------------------------------------------------


@dataclass(frozen=True)
class StopDecision:
    """What :meth:`StopRule.check` decided after a window.

    ``reason``: ``precision`` (target reached), ``time`` (time cap), ``max_steps``, or
    ``continue``. Figures are per unit, in joules; ``relative_half_width`` is NaN with
    fewer than 2 windows.
    """

    stop: bool
    reason: str
    windows: int
    steps: int
    measured_s: float
    method: str
    center_j: float
    mean_j: float
    std_j: float
    half_width_j: float
    relative_half_width: float
    target: float | None
    min_windows: int
    max_time_s: float | None
    max_steps: int | None

    def describe(self) -> str:
        """One line, e.g. ``precision reached: 95% CI ±2.8% of the mean after 14 windows``."""
        rel = fmt_rel_pm(self.relative_half_width)
        of = "of the trimmed mean" if self.method == "trimmed" else "of the mean"
        target = f" (target {fmt_rel_pm(self.target)})" if self.target is not None else ""
        win = f"{self.windows} {plural('window', self.windows)}"
        if self.reason == "precision":
            return f"precision reached: 95% CI {rel} {of} after {win}"
        if self.reason == "time":
            return (
                f"time cap {fmt_sig(self.max_time_s or 0)} s reached at {rel} after {win}{target}"
            )
        if self.reason == "max_steps":
            return f"max steps {self.max_steps} reached at {rel} after {win}{target}"
        if self.windows < self.min_windows:
            return f"continue: {self.windows} of at least {self.min_windows} windows{target}"
        return f"continue: 95% CI {rel} {of} after {win}{target}"

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_num(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StopDecision:
        return cls(
            stop=bool(d["stop"]),
            reason=str(d["reason"]),
            windows=int(d["windows"]),
            steps=int(d["steps"]),
            measured_s=num(d["measured_s"]),
            method=str(d["method"]),
            center_j=num(d["center_j"]),
            mean_j=num(d["mean_j"]),
            std_j=num(d["std_j"]),
            half_width_j=num(d["half_width_j"]),
            relative_half_width=num(d["relative_half_width"]),
            target=None if d.get("target") is None else float(d["target"]),
            min_windows=int(d["min_windows"]),
            max_time_s=None if d.get("max_time_s") is None else float(d["max_time_s"]),
            max_steps=None if d.get("max_steps") is None else int(d["max_steps"]),
        )


@dataclass(frozen=True)
class StopRule:
    """When an adaptive measurement stops.

    ``precision``: target relative half-width of the 95% interval of the per-unit center
    (None: never stop on precision, only on the caps). Precision is checked only from
    ``min_windows`` windows on; the time cap (measured seconds) and ``max_steps`` stop the
    measurement whatever the window count. The meter calls :meth:`check` after each step
    (or each window) and stops when ``decision.stop``; the last decision goes in the record.
    """

    precision: float | None = None
    min_windows: int = MIN_WINDOWS
    max_time_s: float | None = DEFAULT_MAX_TIME_S
    max_steps: int | None = None
    method: str = "mean"

    def __post_init__(self) -> None:
        if self.precision is not None and not (0 < self.precision < 1):
            raise ValueError(
                f"invalid precision {self.precision!r}: expected a fraction in (0, 1), e.g. 0.03"
            )
        if not isinstance(self.min_windows, int) or self.min_windows < 2:
            raise ValueError(f"invalid min_windows {self.min_windows!r}: expected an integer >= 2")
        if self.max_time_s is not None and not (self.max_time_s > 0):
            raise ValueError(f"invalid max_time_s {self.max_time_s!r}: expected seconds > 0")
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValueError(f"invalid max_steps {self.max_steps!r}: expected an integer >= 1")
        if self.method not in METHODS:
            raise ValueError(
                f"invalid method {self.method!r}: expected one of {', '.join(METHODS)}"
            )

    def check(
        self, unit_energies_j: Sequence[float], measured_s: float, steps: int | None = None
    ) -> StopDecision:
        """Decide after the windows so far (per-unit energies) and the measured seconds.

        ``steps`` is the number of measured steps (default: the number of windows).
        """
        n = len(unit_energies_j)
        steps = n if steps is None else steps
        if n:
            est = estimate(unit_energies_j, self.method)
            center, mean, std = est.center_j, est.mean_j, est.std_j
            hw, rel = est.half_width_j(), est.relative_half_width()
        else:
            center = mean = std = hw = rel = math.nan
        if self.precision is not None and n >= self.min_windows and rel <= self.precision:
            reason = "precision"
        elif self.max_time_s is not None and measured_s >= self.max_time_s:
            reason = "time"
        elif self.max_steps is not None and steps >= self.max_steps:
            reason = "max_steps"
        else:
            reason = "continue"
        return StopDecision(
            stop=reason != "continue",
            reason=reason,
            windows=n,
            steps=steps,
            measured_s=measured_s,
            method=self.method,
            center_j=center,
            mean_j=mean,
            std_j=std,
            half_width_j=hw,
            relative_half_width=rel,
            target=self.precision,
            min_windows=self.min_windows,
            max_time_s=self.max_time_s,
            max_steps=self.max_steps,
        )


# -- regression decision ---------------------------------------------------------------------

REGRESSION = "regression"
NO_REGRESSION = "no regression"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class CompareDecision:
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

    @property
    def failed(self) -> bool:
        return self.outcome == REGRESSION

    def describe(self) -> str:
        """One line, e.g. ``regression: +24.9% (95% +18.2% to +32.0%) > 10%``."""
        if math.isnan(self.low):
            head = f"{self.outcome}: {fmt_pct(self.change * 100)} ({self.basis})"
        else:
            head = f"{self.outcome}: {fmt_pct(self.change * 100)} (95% {fmt_pct(self.low * 100)} to {fmt_pct(self.high * 100)})"
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
        return {k: _json_num(v) for k, v in asdict(self).items()}

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
            contention=contention if outcome == INCONCLUSIVE or allowance > 0 else None,
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


# -- budget verdict ------------------------------------------------------------------------

OVER = "over"
UNDER = "under"
TOO_CLOSE = "too close"


@dataclass(frozen=True)
class BudgetDecision:
    """A projection against a budget: ``over`` (the interval's lower bound is above it),
    ``under`` (its upper bound is below it) or ``too close`` (the budget is inside it).

    The decision for one quantity; the test's record of its budget (both quantities, what the
    JSON holds) is ``reporting.model.BudgetVerdict``."""

    verdict: str
    value: float
    low: float
    high: float
    budget: float
    quantity: str
    basis: str

    @property
    def failed(self) -> bool:
        return self.verdict == OVER

    def interval_text(self) -> str:
        if math.isnan(self.low):
            return f"{fmt_sig(self.value)} {self.quantity} (no interval: {self.basis})"
        return (
            f"{fmt_sig(self.value)} {self.quantity} "
            f"(95% interval {fmt_sig(self.low)} to {fmt_sig(self.high)})"
        )

    def describe(self) -> str:
        """One line, e.g. ``over budget: projected 12.3 kg CO2e (95% interval 11.9 to 12.7)
        exceeds 10 kg CO2e``."""
        budget = f"{fmt_sig(self.budget)} {self.quantity}"
        if self.verdict == OVER:
            return f"over budget: projected {self.interval_text()} exceeds {budget}"
        if self.verdict == UNDER:
            return f"under budget: projected {self.interval_text()} is below {budget}"
        return f"too close to call: projected {self.interval_text()} vs budget {budget}"

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_num(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetDecision:
        return cls(
            verdict=str(d["verdict"]),
            value=num(d["value"]),
            low=num(d["low"]),
            high=num(d["high"]),
            budget=float(d["budget"]),
            quantity=str(d["quantity"]),
            basis=str(d["basis"]),
        )


def budget_verdict(
    value: float,
    ci95: float,
    budget: float,
    *,
    quantity: str = "kg CO2e",
    between_run_cv: float = 0.0,
) -> BudgetDecision:
    """Over, under or too close for a projected ``value`` with 95% half-width ``ci95``.

    ``ci95`` is the projection's interval half-width (the JSON's ``ci95_kg``/``ci95_kwh``;
    NaN with one window: then the value alone decides, labelled so). ``between_run_cv``
    widens it for run-to-run drift: ``sqrt(ci95^2 + (1.96 x cv x value)^2)``.
    """
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"invalid budget {budget!r}: expected a number > 0")
    if not (math.isfinite(between_run_cv) and between_run_cv >= 0):
        raise ValueError(f"invalid between_run_cv {between_run_cv!r}: expected a fraction >= 0")
    if math.isnan(ci95) and between_run_cv == 0:
        verdict = OVER if value > budget else UNDER
        return BudgetDecision(verdict, value, math.nan, math.nan, budget, quantity, "one window")
    half = math.hypot(0.0 if math.isnan(ci95) else ci95, Z975 * between_run_cv * value)
    low, high = value - half, value + half
    verdict = OVER if low > budget else UNDER if high < budget else TOO_CLOSE
    return BudgetDecision(verdict, value, low, high, budget, quantity, "interval")


# -- JSON helpers ---------------------------------------------------------------------------


def _json_num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else str(x)  # "inf" or "-inf"
    return x
