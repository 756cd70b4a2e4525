"""Idle power: each device's mean power while this process sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..backends.base import Backend


def measure_idle_w(
    backend: Backend,
    seconds: float,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[float, ...]:
    """Each device's mean power (W) while this process sleeps for ``seconds``: its idle power
    (plus whatever else runs on a shared device meanwhile). A backend with its own ``clock``
    and ``sleep`` (an emulated one) is timed on them."""
    if sleep is None:
        sleep = getattr(backend, "sleep", time.sleep)
    now: Callable[[], float] = (
        clock if clock is not None else getattr(backend, "clock", time.perf_counter)
    )
    t0, r0 = now(), backend.read_j()
    sleep(seconds)
    t1, r1 = now(), backend.read_j()
    dt = t1 - t0
    return tuple((b - a) / dt if dt > 0 else 0.0 for a, b in zip(r0, r1, strict=False))
