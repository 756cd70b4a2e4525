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
    that raises one of ``errors`` is a fault of that source only: its energy stops (the
    interval before is not counted), ``failed[i]`` says why, and it is read again at every
    poll; when it reads again it counts from that sample on. :meth:`take_faults` gives the
    backend these events. The other sources go on.
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
        self.failed: list[str | None] = [None] * len(self.reads)  # why a source is unreadable
        self.newly_failed: dict[int, str] = {}  # failed since the backend last looked
        self.resumed: list[int] = []  # read again since the backend last looked
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
        read: list[float | str | None] = []
        for r in self.reads:
            try:
                read.append(r())
            except self.errors as exc:
                read.append(f"{exc}")
        now = self.clock()
        with self.lock:
            dt = now - self.t_last
            for i, w in enumerate(read):
                if isinstance(w, str):  # failed: nothing counted until it reads again
                    if self.failed[i] is None:
                        self.newly_failed[i] = w
                    self.failed[i] = w
                elif self.failed[i] is not None:  # reads again: counts from here
                    self.failed[i] = None
                    self.resumed.append(i)
                    if w is not None:
                        self.power_w[i] = w
                else:
                    p = self.power_w[i] if w is None else w
                    self.energy_j[i] += trapezoid_j(self.power_w[i], p, dt)
                    self.power_w[i] = p
            self.t_last = now

    def read_j(self) -> list[float]:
        """Integrated energy, extended to now with the last sampled power (not for a failed
        source)."""
        now = self.clock()
        with self.lock:
            dt = now - self.t_last
            return [
                e if why is not None else e + p * dt
                for e, p, why in zip(self.energy_j, self.power_w, self.failed, strict=True)
            ]

    def take_faults(self) -> tuple[dict[int, str], list[int]]:
        """The sources that failed (index -> why) and those that read again, since the last
        call (``failed`` says which are unreadable now)."""
        with self.lock:
            failed, self.newly_failed = self.newly_failed, {}
            resumed, self.resumed = self.resumed, []
            return failed, resumed

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
