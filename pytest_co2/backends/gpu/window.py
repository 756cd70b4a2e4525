"""Time on a GPU counter: its update period, measured at open, and windows shorter than it.

The energy counter changes only every update period (about 20-100 ms, GPU dependent),
measured at open (:mod:`.probe`). Inside a window shorter than that period the counter difference is 0 or a whole
jump; there :class:`FineWindow` integrates instant power sampled every few milliseconds
from the window's start, and gives a bound on its error: the range of power the sensor saw
times the window's duration. The bound assumes the power stayed within that range: on
A100/H100 the sensor sees only about 25% of the time (:data:`PART_TIME_NOTE`), so a burst
between its looks is missed; the counter is the trustworthy source there, for windows of
several periods.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..poller import PowerPoller
from .counters import Counter
from .driver import GpuDriver, PowerSource

PART_TIME_NOTE = (
    "on A100/H100 the power sensor sees only about 25% of the time (Yang et al., "
    '"Part-time Power Measurements", SC24): a burst between its looks is missed, so the '
    "bound holds only if the power stayed within the range it saw; the counter, for "
    "windows of several periods, is the trustworthy figure"
)


class FineWindow:
    """Instant power of some GPUs integrated from a window's start (trapezoid, every
    ``interval_s``), with the range of power seen per GPU for the bound.

    Samples on a daemon thread, or, on a clock with ``every(interval, fn)`` (the tests'
    emulated clock), whenever that clock passes a sampling time.
    """

    def __init__(
        self,
        sources: Sequence[Callable[[], float | None]],
        interval_s: float,
        clock: Callable[[], float],
        errors: tuple[type[BaseException], ...],
        limit_s: float = math.inf,
    ) -> None:
        n = len(sources)
        self.interval_s = interval_s
        self.limit_s = limit_s
        self.lo_w = [math.inf] * n
        self.hi_w = [-math.inf] * n
        self.t0 = clock()
        self._clock = clock
        self._cancel: Callable[[], None] | None = None
        self.poller = PowerPoller(
            [self._recorded(k, s) for k, s in enumerate(sources)],
            interval_s,
            errors=errors,
            what="GPU",
            name="pytest-co2-gpu-fine",
            clock=clock,
        )
        every: Any = getattr(clock, "every", None)
        if callable(every):
            self._cancel = every(interval_s, self._poll)
        else:
            self.poller.start()
        self.poller.poll_once = self._poll  # type: ignore[method-assign]

    def _poll(self) -> None:
        """One sample, until the window is longer than ``limit_s`` (then sampling stops)."""
        if self.elapsed_s > self.limit_s:
            self.poller.stop.set()
            if self._cancel is not None:
                self._cancel()
            return
        PowerPoller.poll_once(self.poller)

    def _recorded(self, k: int, source: Callable[[], float | None]) -> Callable[[], float | None]:
        def read() -> float | None:
            w = source()
            if w is not None and math.isfinite(w):
                self.lo_w[k] = min(self.lo_w[k], w)
                self.hi_w[k] = max(self.hi_w[k], w)
            return w

        return read

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self.t0

    def energy_j(self) -> list[float]:
        """Per GPU: the integrated energy since the window's start."""
        return self.poller.read_j()

    def bound_j(self, k: int) -> float:
        """The error bound of GPU ``k``'s figure: the power range seen x the duration."""
        if not math.isfinite(self.hi_w[k] - self.lo_w[k]):
            return math.nan
        return (self.hi_w[k] - self.lo_w[k]) * self.elapsed_s

    def close(self) -> None:
        if self._cancel is not None:
            self._cancel()
        if threading.current_thread() is not self.poller.thread:
            self.poller.close()


class FineSampling:
    """Mixed into :class:`~.backend.GpuBackend`: the window hooks that fine-sample the
    instant power of counter GPUs in windows shorter than their counter's period."""

    driver: GpuDriver
    fine_interval_s: float | None
    _clock: Callable[[], float]
    _counters: list[Counter]
    _power: dict[int, PowerSource | None]
    _fine: FineWindow | None
    _fine_base: dict[int, float]
    _fine_pos: dict[int, int]

    def period_s(self, i: int) -> float:
        raise NotImplementedError

    def _rebase(self) -> None:
        raise NotImplementedError

    def read_j(self) -> Sequence[float]:
        raise NotImplementedError

    # -- windows -----------------------------------------------------------------------------
    def window_enter(self) -> None:
        """A measured window starts: sample the instant power of the counter GPUs that have
        it until the window is longer than their counter's period."""
        self._rebase()
        self._close_fine()
        if self.fine_interval_s is None:
            return
        picked = [
            (k, src.read_w)
            for k, c in enumerate(self._counters)
            if c.down is None and (src := self._power.get(c.index)) is not None and src.instant
        ]
        if not picked:
            return
        self.read_j()  # the base is the counters as the window's first reading sees them
        self._fine_base = {k: c.joules for k, c in enumerate(self._counters)}
        self._fine_pos = {k: pos for pos, (k, _) in enumerate(picked)}
        limit_s = max(self.period_s(self._counters[k].index) for k, _ in picked)
        self._fine = FineWindow(
            [s for _, s in picked], self.fine_interval_s, self._clock, self.driver.errors, limit_s
        )

    def window_exit(self) -> list[str]:
        """The window's end (after its last reading): notes for the GPUs whose figure came
        from fine-sampled power, each with its error bound."""
        fine = self._fine
        if fine is None:
            return []
        duration_s = fine.elapsed_s
        notes = []
        for k, pos in self._fine_pos.items():
            c = self._counters[k]
            period = self.period_s(c.index)
            if duration_s >= period or c.down is not None:
                continue
            bound = fine.bound_j(pos)
            notes.append(
                f"fine-sampled: {self.driver.label} {c.index}: the window ({duration_s * 1e3:.3g} "
                f"ms) is shorter than its counter's update period ({period * 1e3:.3g} ms): energy "
                f"is instant power sampled every {fine.interval_s * 1e3:g} ms and integrated, "
                f"error bound {bound:.3g} J (the range of power seen x the duration); "
                + PART_TIME_NOTE
            )
        self._close_fine()
        return notes

    def _close_fine(self) -> None:
        fine, self._fine = self._fine, None
        self._fine_pos = {}
        if fine is not None:
            fine.close()
