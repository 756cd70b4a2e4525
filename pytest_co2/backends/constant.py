"""``constant:<watts>``: a simulated device that draws a fixed power for the wall time.

Exact numbers for tests, documentation and what-ifs ("what if this ran on a 300 W GPU").
Always labelled ``simulated``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from .base import Backend, BackendError, Device, Method


def parse_watts(text: str) -> float:
    """Parse the ``<watts>`` of ``constant:<watts>``: a finite number > 0."""
    try:
        watts = float(text)
    except ValueError:
        raise BackendError(
            f"invalid power {text!r} in 'constant:{text}': expected watts as a number > 0, "
            "e.g. constant:300"
        ) from None
    if not math.isfinite(watts) or watts <= 0:
        raise BackendError(
            f"invalid power {text!r} in 'constant:{text}': expected watts as a number > 0, "
            "e.g. constant:300"
        )
    return watts


class ConstantBackend(Backend):
    """A simulated device drawing ``power_w`` watts: energy = power x elapsed wall time."""

    name = "constant"

    def __init__(self, power_w: float, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        if not math.isfinite(power_w) or power_w <= 0:
            raise BackendError(f"invalid power {power_w!r}: expected watts > 0")
        self.power_w = float(power_w)
        self.clock = clock  # the meter times windows with the same clock: energy = P x duration
        self._t0 = clock()
        self.devices = (
            Device(
                id="sim:0",
                kind="simulated",
                label=f"simulated device at {self.power_w:g} W",
                method=Method.SIMULATED,
                update_period_s=0.0,
                shared=False,
            ),
        )

    def read_j(self) -> Sequence[float]:
        return ((self.clock() - self._t0) * self.power_w,)
