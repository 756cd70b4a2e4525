"""A measured window: the hot path (:meth:`Window.step`: one clock read, one backend read,
one list append), its start and end, and why a record is partial.

Statistics are made when the window closes (:mod:`.assemble`), or later for a deferred
window: the plugin's per-test call window hands what it read (:attr:`Window.ended`) to the
collector, which assembles it when the record is needed.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, realign
from ..backends.contention import Snapshot
from .assemble import GROUP_FACTOR, Readings, assemble, group_windows, work_part
from .records import Measurement, Projection

#: A window shorter than this records no contention (unknown, never "quiet"): see
#: ``Meter._snapshot``, which reuses a start snapshot younger than this.
CONTENTION_REUSE_S = 0.02


class WindowError(RuntimeError):
    """A window used out of order (step outside its block, nested windows)."""


if TYPE_CHECKING:  # for the type checker only: a Protocol costs 140k instructions to define
    from typing import Protocol

    class Owner(Protocol):
        """What a window uses of its meter (:class:`pytest_co2.measure.meter.Meter`)."""

        backend: Backend
        idle_w: tuple[float, ...] | None
        progress_every_s: float
        left_early: list[Measurement]
        on_window_enter: Callable[[Window], None] | None
        on_window_exit: Callable[[Window], Sequence[str] | None] | None
        _open: list[Window]
        _progress: Callable[[Window], None] | None

        def _sync(self) -> None: ...
        def _clock(self) -> float: ...
        def _snapshot(self, *, reuse: bool = False) -> Snapshot | None: ...
        def _warn(self, message: str) -> None: ...
        def _record(self, m: Measurement) -> None: ...
        def projection_of(self, m: Measurement) -> Projection: ...
        def emission_of(self, m: Measurement) -> Any: ...


def _check_units(units: float) -> None:
    if not (
        isinstance(units, (int, float)) and not isinstance(units, bool) and 0 < units < math.inf
    ):
        raise ValueError(
            f"invalid units {units!r} for step(): expected a finite number > 0 (e.g. a batch size)"
        )


class Window:
    """One measured region. Use as a context manager; call :meth:`step` after each unit of work.

    A window is entered once and exited once; :meth:`step` outside the block, or a window
    entered while another of the same meter is open (nested: its energy would be counted
    twice), raises :class:`WindowError`. A backend that fails during the window ends it
    early: the steps measured before are kept and the record says ``partial`` and why.
    """

    # What a window starts with, as class attributes: an instance sets only what it changes
    # (the plugin makes a window per test under --co2-all).
    failure: str | None = None  # why the backend stopped being read
    abort_reason: str | None = None  # why the plugin closed the window
    stop_reason: str | None = None  # why a steps() loop ended (precision, time)
    left_early = False  # the caller left the steps() loop (break or exception)
    measurement: Measurement | None = None
    # deferred: nothing is assembled at the end of the block nor handed to the meter; what
    # the window read is in ``ended`` (the plugin's per-test call window)
    deferred = False
    _state = "new"  # new -> open -> closed
    _seen = 0  # step() calls, warm-up included
    _start_t = 0.0
    _start_reading: Sequence[float] = ()
    _start_power: Sequence[float] | None = None
    _last_progress_t = 0.0
    _loop: weakref.ref[Any] | None = None  # the steps() generator driving this window
    _faults0 = 0  # the backend's hardware faults before this window
    _contention0: Snapshot | None = None  # the machine's counters at the start
    _ended: Readings | None = None  # what the block read, until it is assembled

    def __init__(
        self,
        meter: Owner,
        name: str,
        unit: str,
        warmup: int,
        extrapolate: int | None,
        total: int | None,
    ) -> None:
        self._meter = meter
        self.name = name
        self.unit = unit
        self.warmup = warmup
        self.extrapolate = extrapolate
        self.total = total  # expected measured steps, for progress only
        # step boundaries (times, cumulative readings) and each step's units, from __enter__
        self._times: list[float] = []
        self._readings: list[Sequence[float]] = []
        self._units: list[float] = []

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    # -- hot path ---------------------------------------------------------------------
    def step(self, units: float = 1) -> None:
        """Mark the end of one step of ``units`` units (default 1; e.g. a batch size)."""
        if self._state != "open":
            raise WindowError(
                f"step() on measurement {self.name!r} outside its with-block ({self._state})"
            )
        if units != 1 or units is True:
            _check_units(units)
        if self.failure is not None:
            return
        meter = self._meter
        meter._sync()
        t = meter._clock()
        try:
            reading = meter.backend.read_j()
        except Exception as exc:  # a device that fails mid-run ends the window's readings
            self._fail(exc)
            return
        self._seen += 1
        if self._seen <= self.warmup:
            # the measured part starts where the last warm-up step ends
            self._times = [t]
            self._readings = [reading]
            return
        self._times.append(t)
        self._readings.append(reading)
        self._units.append(units)
        if meter._progress is not None and t - self._last_progress_t >= meter.progress_every_s:
            self._last_progress_t = t
            meter._progress(self)

    def _fail(self, exc: BaseException) -> None:
        self.failure = f"{type(exc).__name__}: {exc}"
        self._meter._warn(
            f"pytest-co2: the energy backend failed during measurement {self.name!r} "
            f"({self.failure}); the steps measured before are kept, marked partial"
        )

    # -- progress helpers (cheap, for live display) -------------------------------------
    @property
    def steps_done(self) -> int:
        return len(self._units)

    @property
    def elapsed_s(self) -> float:
        return self._meter._clock() - self._start_t

    @property
    def measured_s(self) -> float:
        """Wall time of the measured (post warm-up) steps so far."""
        return self._times[-1] - self._times[0] if len(self._times) > 1 else 0.0

    @property
    def energy_so_far_j(self) -> float:
        if len(self._readings) < 2:
            return 0.0
        return math.fsum(self._readings[-1]) - math.fsum(self._readings[0])

    def grouped_unit_energies_j(self) -> list[float]:
        """Per-unit energy of the windows so far, grouped as the record will group them
        (steps shorter than the counter can resolve are merged): what a stopping rule reads."""
        totals = [math.fsum(r) for r in self._readings]
        period = self._meter.backend.update_period_s
        groups = group_windows(self._times, self._units, GROUP_FACTOR * period)
        return [(totals[b] - totals[a]) / math.fsum(self._units[a:b]) for a, b in groups]

    def grouped_work_unit_energies_j(self) -> list[float]:
        """The same windows' work part (less the backend's wall-time charge, see
        :func:`work_part`); empty when the backend charges nothing per wall second."""
        totals = [math.fsum(r) for r in self._readings]
        backend = self._meter.backend
        groups = group_windows(self._times, self._units, GROUP_FACTOR * backend.update_period_s)
        return list(work_part(totals, self._times, self._units, groups, backend.wall_w)[0])

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> Window:
        meter = self._meter
        if self._state != "new":
            raise WindowError(f"measurement {self.name!r} was already entered once")
        open_ = meter._open
        if open_:
            raise WindowError(
                f"measurement {self.name!r} started inside {open_[-1].name!r}: windows of one "
                "meter cannot nest (the inner energy would be counted twice); measure them one "
                "after the other"
            )
        backend = meter.backend
        old = backend.devices
        if backend.refresh_devices() and meter.idle_w:
            meter.idle_w = realign(meter.idle_w, old, backend.devices)
        self._faults0 = len(getattr(backend, "faults", ()))
        if meter.on_window_enter is not None:
            meter.on_window_enter(self)  # e.g. take a cross-process device lock
        try:
            meter._sync()
            self._contention0 = meter._snapshot(reuse=True)
            self._start_t = meter._clock()
            self._start_reading = backend.read_j()
            self._start_power = backend.read_power_w()
        except Exception as exc:
            if meter.on_window_exit is not None:
                meter.on_window_exit(self)
            self._fail(exc)
            self._state = "open"  # a no-op window: the block runs, nothing is recorded
            meter._open.append(self)
            return self
        except BaseException:
            if meter.on_window_exit is not None:
                meter.on_window_exit(self)
            raise
        self._last_progress_t = self._start_t
        self._times = [self._start_t]
        self._readings = [self._start_reading]
        self._state = "open"
        meter._open.append(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        meter = self._meter
        if self._state != "open":
            return
        self._state = "closed"
        if self in meter._open:
            meter._open.remove(self)
        if not self._readings:  # the backend failed at the start: nothing to record
            return
        user_ok = exc_type is None or issubclass(exc_type, GeneratorExit)
        complete = user_ok and self.failure is None and self.abort_reason is None
        notes: list[str] = []
        end_power: Sequence[float] | None = None
        contention1: Snapshot | None = None
        try:
            if self.failure is None:
                end_power = self._last_reading(notes)
            if meter._clock() - self._start_t >= CONTENTION_REUSE_S:  # else unknown
                contention1 = meter._snapshot()
        except Exception as err:
            self._fail(err)
            complete = False
        finally:
            if meter.on_window_exit is not None:
                notes.extend(meter.on_window_exit(self) or ())  # after the last reading
        if not self._units:  # failed before any step: nothing measured
            return
        partial = self._partial_notes()
        complete = complete and not partial
        notes.extend(partial)
        if self.stop_reason is not None:
            notes.append(self.stop_reason)
        backend = meter.backend
        # tuples: a deferred one is kept to the end, untracked by gc; the arguments by
        # position, in Readings' order (keywords cost 9k instructions a window)
        self._ended = Readings(
            self.name,
            self.unit,
            self.warmup,
            self._seen,
            self.extrapolate,
            tuple(self._times),
            tuple(self._readings),
            tuple(self._units),
            self._start_power,
            end_power,
            self._contention0,
            contention1,
            backend.devices,
            tuple(backend.notes),
            meter.idle_w,
            complete,
            tuple(notes),
            self.failure is not None or self.abort_reason is not None,  # failed_or_aborted
            backend,
        )
        if self.deferred:
            return
        self.measurement = m = assemble(self._ended)
        self._ended = None
        if self.left_early:
            meter.left_early.append(m)
        meter._record(m)

    @property
    def ended(self) -> Readings | None:
        """What the closed, deferred window read (None: nothing measured, or not deferred):
        ``assemble(ended)`` is its measurement."""
        return self._ended

    def _partial_notes(self) -> list[str]:
        """Why the record is partial: device faults during the window (their readings were
        frozen), devices still unreadable at its end, a failed backend, a window the plugin
        had to close."""
        backend = self._meter.backend
        every = getattr(backend, "faults", ())
        if (
            len(every) == self._faults0
            and not getattr(backend, "failed", None)
            and self.failure is None
            and self.abort_reason is None
        ):
            return []  # the usual window: nothing went wrong
        faults = list(every)[self._faults0 :]
        notes = [f"partial: {f}" for f in dict.fromkeys(faults)]  # a repeated fault once
        failed: dict[str, str] = dict(getattr(backend, "failed", None) or {})
        notes.extend(
            f"partial: {device} could not be read ({why}); its energy is not counted"
            for device, why in failed.items()
        )
        if self.failure is not None:
            notes.append(f"partial: the energy backend failed ({self.failure})")
        if self.abort_reason is not None:
            notes.append(f"partial: {self.abort_reason}")
        return notes

    def _last_reading(self, notes: list[str]) -> Sequence[float] | None:
        """The end of the block; returns the instant power there (None without any)."""
        meter = self._meter
        meter._sync()
        if not self._units:
            # No (post warm-up) step() call: the whole block is one unit.
            t = meter._clock()
            reading = meter.backend.read_j()
            if self._seen and self._seen <= self.warmup:
                notes.append("every step() was a warm-up step: the block after them is one unit")
            self._times.append(t)
            self._readings.append(reading)
            self._units.append(1)
        return None if self._start_power is None else meter.backend.read_power_w()

    # -- results --------------------------------------------------------------------------
    def _require(self) -> Measurement:
        if self.measurement is None:
            raise RuntimeError(
                f"measurement {self.name!r} is still running: read results after the with-block"
            )
        return self.measurement

    @property
    def projection(self) -> Projection:
        """The projection to this window's target (its own, else the session's for its unit)."""
        return self._meter.projection_of(self._require())

    @property
    def emission(self) -> Any:
        """The CO2e of :attr:`projection` in the session's region (a ``carbon.Emission``)."""
        return self._meter.emission_of(self._require())
