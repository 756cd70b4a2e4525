"""Polled power integrated on a daemon thread: the GPUs without an energy counter (NVML, AMD SMI)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence

from .integrator import trapezoid_j


class PowerPoller:
    """Trapezoid integration of sampled power (W), one value per source, every ``interval_s``.

    A reading of None (the value is not available this time) holds the last power. A read
    that raises one of ``errors`` stops the integration: ``error`` then says why, for the
    backend to raise on its next read.
    """

    def __init__(
        self,
        read_w: Sequence[Callable[[], float | None]],
        interval_s: float,
        *,
        errors: tuple[type[BaseException], ...],
        what: str,
        name: str,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.reads = list(read_w)
        self.errors = errors
        self.what = what
        self.clock = clock
        self.lock = threading.Lock()
        self.error: str | None = None
        self.t_last = clock()
        self.power_w = [r() or 0.0 for r in self.reads]
        self.energy_j = [0.0] * len(self.reads)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=_poll_loop,
            args=(weakref.ref(self), self.stop, interval_s),
            name=name,
            daemon=True,
        )

    def poll_once(self) -> None:
        try:
            read = [r() for r in self.reads]
        except self.errors as exc:
            self.error = f"reading {self.what} power failed: {exc}"
            return
        now = self.clock()
        with self.lock:
            dt = now - self.t_last
            powers = [p if w is None else w for p, w in zip(self.power_w, read, strict=True)]
            for i, p in enumerate(powers):
                self.energy_j[i] += trapezoid_j(self.power_w[i], p, dt)
            self.power_w = powers
            self.t_last = now

    def read_j(self) -> list[float]:
        """Integrated energy, extended to now with the last sampled power."""
        now = self.clock()
        with self.lock:
            dt = now - self.t_last
            return [e + p * dt for e, p in zip(self.energy_j, self.power_w, strict=True)]

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        """Stop the thread (waits up to 5 s, never from the thread itself)."""
        self.stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5.0)


def _poll_loop(ref: weakref.ref[PowerPoller], stop: threading.Event, interval_s: float) -> None:
    while not stop.wait(interval_s):
        poller = ref()
        if poller is None:
            return
        poller.poll_once()
        del poller
