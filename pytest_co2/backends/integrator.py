"""Power x time: the pure arithmetic behind polled power and short windows.

A GPU energy counter updates every ~20-100 ms, so a window of a few counter periods reads 0
or a whole jump. Below :data:`SHORT_WINDOW_PERIODS` counter periods the meter should use
instant power at the window's two ends times its duration instead
(:func:`short_window_energy_j`), and label the figure so (see :data:`POWER_X_TIME_NOTE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Below this many counter update periods a window's counter difference is not trusted.
SHORT_WINDOW_PERIODS = 10.0

POWER_X_TIME_NOTE = (
    "window shorter than {periods:g} counter periods ({period_ms:g} ms each): energy is "
    "instant power x time (the mean of the power read at its start and end)"
)


def trapezoid_j(power_a_w: float, power_b_w: float, dt_s: float) -> float:
    """Energy of a linear power segment from ``power_a_w`` to ``power_b_w`` over ``dt_s``."""
    return 0.5 * (power_a_w + power_b_w) * dt_s


def short_window_energy_j(start_power_w: float, end_power_w: float, duration_s: float) -> float:
    """Energy of a short window from instant power read at its start and end (trapezoid).

    Raises ValueError for a negative or non-finite input (one line naming it).
    """
    for name, value in (
        ("start_power_w", start_power_w),
        ("end_power_w", end_power_w),
        ("duration_s", duration_s),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"invalid {name} {value!r}: expected a finite number >= 0")
    return trapezoid_j(start_power_w, end_power_w, duration_s)


def use_power_x_time(
    duration_s: float, update_period_s: float, periods: float = SHORT_WINDOW_PERIODS
) -> bool:
    """Whether a window of ``duration_s`` on a counter updating every ``update_period_s``
    is short enough that instant power x time beats the counter difference."""
    return update_period_s > 0 and duration_s < periods * update_period_s


def short_window_devices_j(
    counter_j: Sequence[float],
    start_power_w: Sequence[float] | None,
    end_power_w: Sequence[float] | None,
    duration_s: float,
    update_periods_s: Sequence[float],
    periods: float = SHORT_WINDOW_PERIODS,
) -> tuple[list[float], list[int]]:
    """Per-device energy of one window: the counter difference, or power x time where the
    window is short for that device and both instant readings exist (finite).

    Returns the energies and the indices of the devices that used power x time.
    """
    out = list(counter_j)
    used: list[int] = []
    if start_power_w is None or end_power_w is None:
        return out, used
    for i, period in enumerate(update_periods_s):
        p0, p1 = start_power_w[i], end_power_w[i]
        if use_power_x_time(duration_s, period, periods) and math.isfinite(p0 + p1):
            out[i] = short_window_energy_j(p0, p1, duration_s)
            used.append(i)
    return out, used
