"""The adaptive stopping rule of ``steps()`` and ``--co2-precision`` (pure, stdlib only).

After each measured window the meter asks :meth:`StopRule.check` whether the 95% interval
of the per-unit energy is within the target (``--co2-precision``), or a time cap or step
cap ended the measurement; the answer is a :class:`StopDecision`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ..constants import DEFAULT_MAX_TIME_S
from ..fmt import fmt_rel_pm, fmt_sig, plural
from ..frozen import Frozen, record
from .estimates import METHODS, estimate, json_num_inf
from .stats import num

#: Fewer windows than this never stop a measurement on precision. With 4 degrees of freedom
#: t975 is 2.776 (12.706 with 1, 4.303 with 2) and the chance that the sample standard
#: deviation of normal data is below half the true one is 9.0% (22% with 2 degrees of
#: freedom): stopping on a lucky, too-small spread is what a sequential rule must avoid.
#: Each extra window costs one step, little against the time cap. Simulated (normal windows,
#: CV 4%, target 3%, 2,000 measurements): the final interval covers the true mean 88.2% of
#: the time with a minimum of 2 windows, 90.8% with 3, 92.5% with 5, 93.3% with 8, at a
#: median of 8-9 windows in each case (sequential stopping always costs a little coverage).
MIN_WINDOWS = 5


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


@record
class StopDecision(Frozen):
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
        return {k: json_num_inf(v) for k, v in asdict(self).items()}

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


@record
class StopRule(Frozen):
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
