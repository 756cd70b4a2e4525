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

Sequential looks (:func:`look_schedule`, :func:`sequential_level`): ``pytest-co2 ab`` decides
after a first batch of pairs and, while a measurement is inconclusive, adds pairs and looks
again (4, 6, 9, 14, 21, 32 pairs by default). Looking more than once at a 95% interval
would raise the chance of a confident wrong verdict above 5%; so each look uses the level
``1 - 0.05 / looks`` (Bonferroni: 99.17% for 6 looks), which bounds that chance by 5% over all
the looks together, 2.5% each way.
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
#: The chance of a confident wrong verdict over all the looks of a sequential A/B.
ALPHA = 0.05
#: Each look adds this factor of pairs (rounded up, at least one pair).
LOOK_GROWTH = 1.5


def look_schedule(min_pairs: int, max_pairs: int) -> list[int]:
    """The pair counts at which a sequential A/B decides: ``min_pairs``, then x1.5 (rounded
    up) until ``max_pairs``, which is always the last look. ``(4, 16)`` -> 4, 6, 9, 14, 16."""
    if not (isinstance(min_pairs, int) and min_pairs >= 1):
        raise ValueError(f"invalid --runs {min_pairs!r}: expected an integer >= 1")
    if not (isinstance(max_pairs, int) and max_pairs >= min_pairs):
        raise ValueError(
            f"invalid --max-runs {max_pairs!r}: expected an integer >= --runs ({min_pairs})"
        )
    looks, n = [], min_pairs
    while n < max_pairs:
        looks.append(n)
        n = max(n + 1, math.ceil(n * LOOK_GROWTH))
    return [*looks, max_pairs]


def sequential_level(looks: int) -> float:
    """The two-sided interval level of each of ``looks`` looks: ``1 - 0.05 / looks``."""
    if not (isinstance(looks, int) and looks >= 1):
        raise ValueError(f"invalid looks {looks!r}: expected an integer >= 1")
    return 1 - ALPHA / looks


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


def needed_pairs(sd_log: float, gap_log: float, level: float = 0.95) -> int:
    """The number of pairs ``K`` whose interval half-width ``t(K-1) sd / sqrt(K)`` (at
    ``level``) is below ``gap_log`` (the distance of the log change from the log threshold),
    if the pairs' spread stays ``sd_log``; 0 when none up to :data:`MAX_PAIRS` does."""
    if not (gap_log > 1e-9) or not math.isfinite(sd_log):
        return 0
    q = 1 - (1 - level) / 2
    for k in range(2, MAX_PAIRS + 1):
        if t_quantile(q, k - 1) * sd_log / math.sqrt(k) < gap_log:
            return k
    return 0


def paired_decision(
    base: Sequence[float],
    current: Sequence[float],
    threshold: float,
    *,
    quantity: str = "energy",
    level: float = 0.95,
) -> CompareDecision:
    """Regression, no regression or inconclusive from paired per-unit energies (J): run
    ``i`` of the baseline revision against run ``i`` of the current one. ``level``: the
    two-sided level of the interval (:func:`sequential_level` for one of several looks).

    The result is a :class:`.decisions.CompareDecision` with ``method`` ``paired``, ``n`` and
    ``base_n`` the number of pairs, ``mean_j``/``base_mean_j`` the plain means of each side,
    and ``needed_precision`` None: an inconclusive outcome names the pairs that would decide
    it in :func:`describe_paired` instead.
    """
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"invalid threshold {threshold!r}: expected a fraction >= 0, e.g. 0.10")
    if not 0.5 <= level < 1:
        raise ValueError(f"invalid level {level!r}: expected a fraction in [0.5, 1), e.g. 0.95")
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
        q = 1 - (1 - level) / 2
        half = t_quantile(q, k - 1) * statistics.stdev(ds) / math.sqrt(k)
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
        level=level,
    )


def pairs_to_decide(
    base: Sequence[float], current: Sequence[float], threshold: float, level: float = 0.95
) -> int:
    """For an inconclusive paired decision: the pairs that would likely decide it (their
    spread as measured, intervals at ``level``), 0 when no number up to :data:`MAX_PAIRS`
    would or there is no spread."""
    ds = log_ratios(base, current)
    if len(ds) < 2:
        return 0
    gap = abs(math.fsum(ds) / len(ds) - math.log1p(threshold))
    return needed_pairs(statistics.stdev(ds), gap, level)


def describe_paired(
    decision: CompareDecision, base: Sequence[float], current: Sequence[float]
) -> str:
    """The decision's one line, with the pairs that would decide an inconclusive case."""
    text = decision.describe()
    if decision.outcome == INCONCLUSIVE and decision.n >= 2:
        need = pairs_to_decide(base, current, decision.threshold, decision.level)
        text += (
            f"; about {need} pairs would decide it (--max-runs {need})"
            if need
            else "; the change sits on the threshold: more pairs will not decide it"
        )
    return text
