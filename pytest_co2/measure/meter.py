"""The meter: opens windows on one backend, runs ``steps()`` loops, collects measurements.

The window itself (the hot path) is :mod:`.window`, the measurement's assembly
:mod:`.assemble`, the loop's stopping rule :mod:`.steps`.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..backends.base import Backend
from ..backends.contention import Snapshot, read_snapshot
from .records import Measurement, Projection
from .window import CONTENTION_REUSE_S, Window

_SYNC_ALL: list[Callable[[], int]] = []  # backends.cuda.synchronize_all, once imported


def _cuda_synchronize() -> None:
    """Wait for queued CUDA work on every device with a context (only if torch is imported
    and CUDA initialized: see :func:`pytest_co2.backends.cuda.synchronize_all`). On the
    per-step path: the helper is imported once, and not at all before torch is."""
    if "torch" not in sys.modules:
        return
    if not _SYNC_ALL:
        from ..backends.cuda import synchronize_all

        _SYNC_ALL.append(synchronize_all)
    _SYNC_ALL[0]()


# Reading the contention counters costs about 0.2 ms (three /proc files), which would double
# the plugin's cost per trivial test under --co2-all. So a window's start reuses a snapshot
# taken less than CONTENTION_REUSE_S ago (by any meter of the process with the same reader and
# clock), and a window shorter than that records no contention (unknown, never "quiet").
_recent: dict[tuple[object, object], Snapshot] = {}


class Meter:
    """Opens windows on one backend and collects their measurements.

    ``extrapolate`` maps a unit to its default projection target (``{"iteration": 150000}``);
    ``account`` turns a projection into an emission (the plugin binds region, month, PUE);
    ``progress`` is called from :meth:`Window.step` at most every ``progress_every_s``.
    ``on_window_enter(window)`` runs before a window's first reading and
    ``on_window_exit(window)`` after its last one (also when the block raised); the latter
    may return notes for the measurement. The plugin uses them to hold a cross-process lock
    on shared counter devices (``--co2-exclusive``). Both are plain attributes, settable
    after construction. ``idle_w`` (per device) is subtracted from every window, with a note.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        extrapolate: Mapping[str, int] | None = None,
        account: Callable[[Projection], Any] | None = None,
        progress: Callable[[Window], None] | None = None,
        on_record: Callable[[Measurement], None] | None = None,
        clock: Callable[[], float] | None = None,
        progress_every_s: float = 1.0,
        sync: Callable[[], None] = _cuda_synchronize,
        on_window_enter: Callable[[Window], None] | None = None,
        on_window_exit: Callable[[Window], Sequence[str] | None] | None = None,
        idle_w: Sequence[float] | None = None,
        precision: float | None = None,
        max_time_s: float | None = 10.0,
        contention: Callable[[float], Snapshot] | str | None = "auto",
    ) -> None:
        self.backend = backend
        self.on_window_enter = on_window_enter
        self.on_window_exit = on_window_exit
        self.extrapolate: dict[str, int] = dict(extrapolate or {})
        self._account = account
        self._progress = progress
        self._on_record = on_record
        # A backend with its own clock (the simulated one) times windows too, so that
        # simulated energy is exactly power x duration.
        self._clock: Callable[[], float] = (
            clock if clock is not None else getattr(backend, "clock", time.perf_counter)
        )
        self._sync = sync
        self.progress_every_s = progress_every_s
        # Per-device idle power (W, in the backend's device order) to subtract from every
        # window; None: report energy as read (idle included).
        self.idle_w: tuple[float, ...] | None = tuple(idle_w) if idle_w else None
        self.measurements: list[Measurement] = []
        self._names: dict[str, int] = {}
        self._open: list[Window] = []  # entered, not yet exited (at most one: no nesting)
        self.precision: float | None = precision  # steps(): the 95% interval to reach
        self.max_time_s: float | None = max_time_s  # steps(): measured seconds at most
        # steps(): aim the precision at the work part (the energy less the backend's
        # wall-time charge) when there is one: what a baseline compare decides on
        self.stop_on_work = False
        # steps() loops the caller left before their end: a `break`, or an exception that
        # unwound the loop (Python cannot tell them apart; the plugin knows if the test raised)
        self.left_early: list[Measurement] = []
        self.warn: Callable[[str], None] | None = None  # how backend failures are reported
        # The machine's contention at the start and end of each window (schedstat, PSI,
        # steal; see backends.contention): "auto" reads /proc unless the backend keeps its
        # own clock (a simulated one); None: not recorded; else a callable(wall_s).
        if contention == "auto":
            contention = None if hasattr(backend, "clock") else read_snapshot
        self._contention: Callable[[float], Snapshot] | None = contention  # type: ignore[assignment]

    def _snapshot(self, *, reuse: bool = False) -> Snapshot | None:
        """The contention counters now (None when not recorded or unreadable); ``reuse``: a
        snapshot younger than :data:`CONTENTION_REUSE_S` will do (a window's start)."""
        if self._contention is None:
            return None
        key = (self._contention, self._clock)
        try:
            now = self._clock()
            last = _recent.get(key)
            if reuse and last is not None and 0.0 <= now - last.wall_s < CONTENTION_REUSE_S:
                return last
            snap = _recent[key] = self._contention(now)
            return snap
        except Exception:  # never let a /proc oddity break a measurement
            return None

    def measure(
        self,
        name: str = "default",
        *,
        unit: str = "iteration",
        warmup: int = 0,
        extrapolate: int | None = None,
        total: int | None = None,
    ) -> Window:
        """A measured window: ``with meter.measure("train", unit="iteration") as m: ... m.step()``."""
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"invalid warmup {warmup!r}: expected an integer >= 0")
        if extrapolate is not None and (not isinstance(extrapolate, int) or extrapolate < 1):
            raise ValueError(f"invalid extrapolate {extrapolate!r}: expected an integer >= 1")
        if not unit or not isinstance(unit, str):
            raise ValueError(
                f"invalid unit {unit!r}: expected a non-empty string such as 'iteration'"
            )
        return Window(self, self._unique(name), unit, warmup, extrapolate, total)

    def steps(
        self,
        n: int,
        *,
        warmup: int = 0,
        name: str = "default",
        unit: str = "iteration",
        extrapolate: int | None = None,
        time_budget_s: float | None = None,
        min_steps: int = 2,
        precision: float | str | None = "default",
        max_time_s: float | None = None,
    ) -> Iterator[int]:
        """Iterate ``warmup`` + at least ``n`` times; each iteration after the warm-up is one
        measured step.

        With a ``precision`` (a fraction: 0.05 is +-5%; default: the meter's, i.e.
        ``--co2-precision`` under pytest; None: exactly ``n`` steps), measuring goes on after
        ``n`` steps until the 95% interval of the per-unit energy is that tight or
        ``max_time_s`` measured seconds have passed (default: the meter's, ``--co2-max-time``);
        the record says which ended it. With ``time_budget_s``, stop once at least
        ``min_steps`` steps were measured and the measured steps took that long.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"invalid number of steps {n!r}: expected an integer >= 1")
        target = self.precision if precision == "default" else precision
        if target is not None and not (isinstance(target, float | int) and 0 < target < 1):
            raise ValueError(
                f"invalid precision {target!r}: expected a fraction in (0, 1), e.g. 0.05"
            )
        cap = time_budget_s if time_budget_s is not None else max_time_s or self.max_time_s
        window = self.measure(name, unit=unit, warmup=warmup, extrapolate=extrapolate, total=n)
        from .steps import steps_loop  # here: a run whose tests only measure calls needs none

        loop = steps_loop(window, n, time_budget_s, min_steps, target, cap, self.stop_on_work)
        # a weak reference, so that a `break` still closes the loop at once (refcount)
        window._loop = weakref.ref(loop)  # for close_open()
        return loop

    def close_open(self, reason: str) -> int:
        """End every window still open (a ``steps()`` loop the test left by raising, a block
        entered and never exited): each is recorded as partial with ``reason``. The plugin
        calls this when the test's call phase ends, so a measurement is never credited to
        the next test. Returns how many were closed."""
        closed = 0
        for w in list(self._open):
            w.abort_reason = reason
            loop = None if w._loop is None else w._loop()
            if loop is not None:
                loop.close()  # GeneratorExit at its yield: the with-block records the window
            if w.is_open:
                w.__exit__(None, None, None)
            closed += 1
        return closed

    def _warn(self, message: str) -> None:
        if self.warn is not None:
            self.warn(message)
        else:
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def projection_of(self, m: Measurement) -> Projection:
        return m.project(
            m.extrapolate if m.extrapolate is not None else self.extrapolate.get(m.unit)
        )

    def emission_of(self, m: Measurement) -> Any:
        if self._account is None:
            raise RuntimeError("this meter has no carbon accounting bound (no region/PUE)")
        return self._account(self.projection_of(m))

    def _unique(self, name: str) -> str:
        k = self._names.get(name, 0)
        self._names[name] = k + 1
        return name if k == 0 else f"{name}#{k + 1}"

    def _record(self, m: Measurement) -> None:
        self.measurements.append(m)
        if self._on_record is not None:
            self._on_record(m)
