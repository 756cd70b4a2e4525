"""The paired A/B decision: interleaved runs of two revisions, paired by run index (pure).

``pytest-co2 ab`` runs the baseline revision (A) and the current tree (B) alternately,
A B A B ..., ``K`` times each. Run ``i`` of A and run ``i`` of B are neighbours in time, so
a drift of the machine (a neighbour's job starting, the clock or the cache state changing)
hits both alike and cancels in their ratio. The decision rests on the ``K`` log ratios
``d_i = log(B_i / A_i)`` of the per-unit energies:

- change: ``exp(mean d) - 1`` (the geometric mean of the ratios);
- 95% interval: ``exp(mean d +- t975(K - 1) x sd(d) / sqrt(K)) - 1`` (a paired t interval
  on the logs, never below -100%, asymmetric as ratios are);
- the three outcomes of :func:`.decisions.compare_decision`: regression when the interval's
  lower bound exceeds the threshold, no regression when its upper bound is below it, else
  inconclusive (with the number of pairs that would likely decide it);
- one pair (no spread): the point change decides only when it is clearly off the threshold
  (above ``threshold x 1.5`` or below ``threshold x 0.5``), as the compare gate does.

Unlike the compare of two separate runs, no between-run spread has to be assumed: the
pairs' own spread measures it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from .decisions import INCONCLUSIVE, NO_REGRESSION, REGRESSION, CompareDecision
from .stats import t_quantile

#: The point guard of a single pair (as the compare gate's for one window).
POINT_GUARD = 0.5
#: needed_pairs gives up beyond this many pairs (the change sits on the threshold).
MAX_PAIRS = 1000


def log_ratios(base: Sequence[float], current: Sequence[float]) -> list[float]:
    """``log(current_i / base_i)`` for each pair; ValueError (one line) on bad input."""
    if len(base) != len(current) or not base:
        raise ValueError(
            f"paired runs: {len(base)} baseline and {len(current)} current values: expected "
            "the same number, at least one"
        )
    for x in (*base, *current):
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"paired runs: per-unit energy {x!r}: expected a finite value > 0")
    return [math.log(c) - math.log(b) for b, c in zip(base, current, strict=True)]


def needed_pairs(sd_log: float, gap_log: float) -> int:
    """The number of pairs ``K`` whose interval half-width ``t975(K-1) sd / sqrt(K)`` is below
    ``gap_log`` (the distance of the log change from the log threshold), if the pairs' spread
    stays ``sd_log``; 0 when none up to :data:`MAX_PAIRS` does."""
    if not (gap_log > 1e-9) or not math.isfinite(sd_log):
        return 0
    for k in range(2, MAX_PAIRS + 1):
        if t_quantile(0.975, k - 1) * sd_log / math.sqrt(k) < gap_log:
            return k
    return 0


def paired_decision(
    base: Sequence[float],
    current: Sequence[float],
    threshold: float,
    *,
    quantity: str = "energy",
) -> CompareDecision:
    """Regression, no regression or inconclusive from paired per-unit energies (J): run
    ``i`` of the baseline revision against run ``i`` of the current one.

    The result is a :class:`.decisions.CompareDecision` with ``method`` ``paired``, ``n`` and
    ``base_n`` the number of pairs, ``mean_j``/``base_mean_j`` the plain means of each side,
    and ``needed_precision`` None: an inconclusive outcome names the pairs that would decide
    it in :func:`describe_paired` instead.
    """
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"invalid threshold {threshold!r}: expected a fraction >= 0, e.g. 0.10")
    ds = log_ratios(base, current)
    k = len(ds)
    mean_d = math.fsum(ds) / k
    change = math.expm1(mean_d)
    low = high = math.nan
    if k == 1:
        basis = "point: one pair, no spread"
        if change > threshold * (1 + POINT_GUARD):
            outcome = REGRESSION
        elif change < threshold * (1 - POINT_GUARD):
            outcome = NO_REGRESSION
        else:
            outcome = INCONCLUSIVE
    else:
        basis = f"paired: {k} interleaved pairs"
        half = t_quantile(0.975, k - 1) * statistics.stdev(ds) / math.sqrt(k)
        low, high = math.expm1(mean_d - half), math.expm1(mean_d + half)
        if low > threshold:
            outcome = REGRESSION
        elif high < threshold:
            outcome = NO_REGRESSION
        else:
            outcome = INCONCLUSIVE
    return CompareDecision(
        outcome=outcome,
        change=change,
        low=low,
        high=high,
        threshold=threshold,
        basis=basis,
        mean_j=math.fsum(current) / k,
        base_mean_j=math.fsum(base) / k,
        n=k,
        base_n=k,
        method="paired",
        between_run_cv=0.0,
        reference_change=None,
        needed_precision=None,
        quantity=quantity,
    )


def pairs_to_decide(base: Sequence[float], current: Sequence[float], threshold: float) -> int:
    """For an inconclusive paired decision: the pairs that would likely decide it (their
    spread as measured), 0 when no number up to :data:`MAX_PAIRS` would or there is no spread."""
    ds = log_ratios(base, current)
    if len(ds) < 2:
        return 0
    gap = abs(math.fsum(ds) / len(ds) - math.log1p(threshold))
    return needed_pairs(statistics.stdev(ds), gap)


def describe_paired(
    decision: CompareDecision, base: Sequence[float], current: Sequence[float]
) -> str:
    """The decision's one line, with the pairs that would decide an inconclusive case."""
    text = decision.describe()
    if decision.outcome == INCONCLUSIVE and decision.n >= 2:
        need = pairs_to_decide(base, current, decision.threshold)
        text += (
            f"; about {need} pairs would decide it (--runs {need})"
            if need
            else "; the change sits on the threshold: more pairs will not decide it"
        )
    return text
