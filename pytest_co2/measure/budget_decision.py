"""Over, under or too close to call: a projection with its interval against a budget (pure).

:func:`budget_verdict` is the decision a ``co2_budget`` marker's check rests on
(``reporting.budget``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ..fmt import fmt_sig
from ..frozen import Frozen, record
from .estimates import Z975, json_num_inf
from .stats import num

OVER = "over"
UNDER = "under"
TOO_CLOSE = "too close"


@record
class BudgetDecision(Frozen):
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
        return {k: json_num_inf(v) for k, v in asdict(self).items()}

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
