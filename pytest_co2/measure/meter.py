"""Windows and steps: turn cumulative backend readings into per-unit energy and projections.

Pure given a backend and a clock. The hot path (:meth:`Window.step`) does one clock read,
one backend read and one list append; all statistics are computed when the window closes.
"""

from __future__ import annotations

import math
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..backends.base import Backend, realign
from ..backends.contention import Snapshot
from .records import DeviceEnergy, Measurement, Projection
from .stats import Stats

#: A window shorter than this many counter update periods is merged with the next one, so
#: that the counter's quantization is at most 1/GROUP_FACTOR of a window's energy.
GROUP_FACTOR = 10.0


def group_windows(
    times_s: Sequence[float], units: Sequence[float], min_window_s: float
) -> list[tuple[int, int]]:
    """Group consecutive steps into windows at least ``min_window_s`` long.

    ``times_s`` are the step boundaries (len = steps + 1). Returns ``(start, end)`` index
    pairs into the boundaries. A short remainder is merged into the last window.
    """
    n_steps = len(times_s) - 1
    if n_steps <= 0:
        return []
    if min_window_s <= 0:
        return [(i, i + 1) for i in range(n_steps)]
    groups: list[tuple[int, int]] = []
    start = 0
    for end in range(1, n_steps + 1):
        if times_s[end] - times_s[start] >= min_window_s:
            groups.append((start, end))
            start = end
    if start < n_steps:
        if groups:
            groups[-1] = (groups[-1][0], n_steps)
        else:
            groups.append((0, n_steps))
    return groups


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


def work_part(
    totals: Sequence[float],
    times: Sequence[float],
    units: Sequence[float],
    groups: Sequence[tuple[int, int]],
    wall_w: float,
) -> tuple[tuple[float, ...], float | None]:
    """(per-unit energy of each window, energy in all) less ``wall_w`` x wall time: the part
    the process's own work controls. ``((), None)`` when the backend charges nothing per
    wall second (a counter). From the readings as read: independent of idle subtraction;
    never below 0 (the meter's and the backend's clocks are read microseconds apart)."""
    if not wall_w > 0:
        return (), None
    per_unit = tuple(
        max(totals[b] - totals[a] - wall_w * (times[b] - times[a]), 0.0) / math.fsum(units[a:b])
        for a, b in groups
    )
    return per_unit, max(totals[-1] - totals[0] - wall_w * (times[-1] - times[0]), 0.0)


def _read_snapshot(wall_s: float) -> Snapshot:
    from ..backends.contention import read_snapshot

    return read_snapshot(wall_s)


# Reading the contention counters costs about 0.2 ms (three /proc files), which would double
# the plugin's cost per trivial test under --co2-all. So a window's start reuses a snapshot
# taken less than this long ago (by any meter of the process with the same reader and clock),
# and a window shorter than this records no contention (unknown, never "quiet").
CONTENTION_REUSE_S = 0.02
_recent: dict[tuple[object, object], Snapshot] = {}


class WindowError(RuntimeError):
    """A window used out of order (step outside its block, nested windows)."""


def _check_units(units: float) -> None:
    if not (
        isinstance(units, (int, float)) and not isinstance(units, bool) and 0 < units < math.inf
    ):
        raise ValueError(
            f"invalid units {units!r} for step(): expected a finite number > 0 (e.g. a batch size)"
        )


def _monotone(
    readings: list[Sequence[float]], devices: Sequence[Any]
) -> tuple[list[Sequence[float]], list[str]]:
    """Readings whose per-device values never go backwards: a counter that decreases (a
    driver reset, a GPU lost) or reads NaN ends that device's contribution at its last good
    value, with a note. Never negative energy, never an exception."""
    notes: list[str] = []
    if not readings:
        return readings, notes
    n_dev = len(readings[0])
    frozen: dict[int, float] = {}
    last = list(readings[0])
    for i, v in enumerate(last):
        if not math.isfinite(v):
            frozen[i], last[i] = 0.0, 0.0
    out: list[Sequence[float]] = [tuple(last)]
    for k in range(1, len(readings)):
        row = list(readings[k])
        for i in range(n_dev):
            if i in frozen:
                row[i] = frozen[i]
                continue
            v = row[i]
            if not math.isfinite(v) or v < last[i]:
                frozen[i] = last[i]
                label = devices[i].label if i < len(devices) else f"device {i}"
                notes.append(
                    f"{label}: its counter went from {last[i]:.6g} J to {v:.6g} J (reset or lost "
                    f"device) after {k - 1} steps; its energy from then on is not counted"
                )
                row[i] = last[i]
        last = row
        out.append(tuple(row))
    return out, notes


class Window:
    """One measured region. Use as a context manager; call :meth:`step` after each unit of work.

    A window is entered once and exited once; :meth:`step` outside the block, or a window
    entered while another of the same meter is open (nested: its energy would be counted
    twice), raises :class:`WindowError`. A backend that fails during the window ends it
    early: the steps measured before are kept and the record says ``partial`` and why.
    """

    def __init__(
        self,
        meter: Meter,
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
        self._times: list[float] = []
        self._readings: list[Sequence[float]] = []
        self._units: list[float] = []
        self._seen = 0  # step() calls, warm-up included
        self._start_t = 0.0
        self._start_reading: Sequence[float] = ()
        self._start_power: Sequence[float] | None = None
        self._last_progress_t = 0.0
        self._state = "new"  # new -> open -> closed
        self.failure: str | None = None  # why the backend stopped being read
        self.abort_reason: str | None = None  # why the plugin closed the window
        self.stop_reason: str | None = None  # why a steps() loop ended (precision, time)
        self.left_early = False  # the caller left the steps() loop (break or exception)
        self.measurement: Measurement | None = None
        self._loop: weakref.ref[Any] | None = None  # the steps() generator driving this window
        self._faults0 = 0  # the backend's hardware faults before this window
        self._contention0: Snapshot | None = None  # the machine's counters at the start

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
        self.measurement = self._finish(complete, notes, end_power, contention1)
        if self.left_early:
            meter.left_early.append(self.measurement)
        meter._record(self.measurement)

    def _partial_notes(self) -> list[str]:
        """Why the record is partial: device faults during the window (their readings were
        frozen), devices still unreadable at its end, a failed backend, a window the plugin
        had to close."""
        backend = self._meter.backend
        faults = list(getattr(backend, "faults", ()))[self._faults0 :]
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

    def _finish(
        self,
        complete: bool,
        notes: list[str],
        end_power: Sequence[float] | None = None,
        contention1: Snapshot | None = None,
    ) -> Measurement:
        meter = self._meter
        backend = meter.backend
        devices = backend.devices
        times = self._times
        readings, bad = _monotone(self._readings, devices)
        notes.extend(bad)
        units = self._units
        totals = [math.fsum(r) for r in readings]
        period = backend.update_period_s
        groups = group_windows(times, units, GROUP_FACTOR * period)
        if period > 0 and len(groups) < len(units):
            notes.append(
                f"steps shorter than {GROUP_FACTOR:g}x the counter update period ({period * 1e3:g} ms) "
                f"were grouped: statistics rest on {len(groups)} windows of {len(units)} steps"
            )
        duration_s = times[-1] - times[0]
        dev_j = [readings[-1][i] - readings[0][i] for i in range(len(devices))]
        short: list[int] = []
        if (
            period > 0
            and duration_s < GROUP_FACTOR * period
            and self._start_power is not None
            and end_power is not None
        ):  # too short for the counter: instant power x time where a device has it
            from ..backends.integrator import short_window_devices_j

            dev_j, short = short_window_devices_j(
                dev_j, self._start_power, end_power, duration_s,
                [d.update_period_s for d in devices],
            )  # fmt: skip
        if short:
            from ..backends.integrator import POWER_X_TIME_NOTE

            notes.append(
                POWER_X_TIME_NOTE.format(periods=GROUP_FACTOR, period_ms=period * 1e3)
                + " for "
                + ", ".join(devices[i].label for i in short)
            )
            totals = [totals[0], totals[0] + math.fsum(dev_j)]  # one window
            groups = [(0, 1)]
            times = [times[0], times[-1]]
            units = [math.fsum(units)]
        elif period > 0 and duration_s < GROUP_FACTOR * period:
            notes.append(
                f"measured {duration_s * 1e3:.1f} ms is short for a counter that updates every "
                f"{period * 1e3:g} ms: up to {period / max(duration_s, 1e-12):.0%} quantization error"
            )
        idle_w = meter.idle_w
        idle_total_w = math.fsum(idle_w) if idle_w else 0.0
        unit_energies = tuple(
            (totals[b] - totals[a] - idle_total_w * (times[b] - times[a])) / math.fsum(units[a:b])
            for a, b in groups
        )
        energy_j = totals[-1] - totals[0] - idle_total_w * duration_s
        total_units = math.fsum(units)
        work_unit, work_j = work_part(totals, times, units, groups, backend.wall_w)
        contention = None
        if self._contention0 is not None and contention1 is not None:
            from .contention import contention_between

            contention = contention_between(self._contention0, contention1)
        dev_energy = tuple(
            DeviceEnergy(d, dev_j[i] - (idle_w[i] * duration_s if idle_w else 0.0))
            for i, d in enumerate(devices)
        )
        if idle_w:
            notes.append(
                f"idle power {idle_total_w:.4g} W (measured at start) subtracted: "
                f"{idle_total_w * duration_s:.4g} J of {totals[-1] - totals[0]:.4g} J"
            )
            if energy_j < 0 or min(unit_energies) < 0:
                notes.append(
                    "below idle: the measured energy was less than the idle power's; clamped to 0"
                )
                energy_j = max(energy_j, 0.0)
                unit_energies = tuple(max(x, 0.0) for x in unit_energies)
        if not complete and self.failure is None and self.abort_reason is None:
            notes.append(
                "incomplete: the measured block raised or was interrupted; partial steps only"
            )
        return Measurement(
            name=self.name,
            unit=self.unit,
            steps=len(self._units),
            units=total_units,
            warmup=min(self._seen, self.warmup),
            duration_s=duration_s,
            energy_j=energy_j,
            energy_per_unit_j=Stats.of(unit_energies, energy_j, total_units),
            unit_energies_j=unit_energies,
            method=backend.method,
            devices=dev_energy,
            backend=backend.name,
            complete=complete,
            notes=tuple(notes) + tuple(backend.notes),
            extrapolate=self.extrapolate,
            work_unit_energies_j=work_unit,
            work_energy_j=work_j,
            work_basis=backend.work_basis if work_j is not None else "",
            contention=contention,
        )

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
            contention = None if hasattr(backend, "clock") else _read_snapshot
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
        loop = self._steps_loop(window, n, time_budget_s, min_steps, target, cap)
        # a weak reference, so that a `break` still closes the loop at once (refcount)
        window._loop = weakref.ref(loop)  # for close_open()
        return loop

    def _steps_loop(
        self,
        w: Window,
        n: int,
        time_budget_s: float | None,
        min_steps: int,
        precision: float | None,
        cap_s: float | None,
    ) -> Iterator[int]:
        from .stopping import StopRule

        rule = (
            None
            if precision is None
            else StopRule(precision=float(precision), max_time_s=cap_s, method="trimmed")
        )  # the trimmed mean: one slow step (a GC pause, an interrupt) does not prolong it
        next_check_s = 0.0
        with w:
            try:
                i = 0
                while True:
                    if rule is None and i >= w.warmup + n:
                        break
                    yield i
                    i += 1
                    w.step()
                    done = w.steps_done
                    if done < n:
                        if (
                            time_budget_s is not None
                            and done >= min_steps
                            and w.measured_s >= time_budget_s
                        ):
                            break
                        continue
                    if rule is None or w.failure is not None or not done:
                        if rule is not None:
                            break
                        continue
                    if w.measured_s < next_check_s and done > n:
                        continue  # check about 20 times a second, not at every fast step
                    next_check_s = w.measured_s + 0.05
                    windows = w.grouped_unit_energies_j()
                    on_work = self.stop_on_work and (work := w.grouped_work_unit_energies_j())
                    if on_work:
                        windows = work
                    spread = max(windows) - min(windows) if windows else 0.0
                    if len(windows) >= 2 and spread <= 1e-9 * abs(windows[0]):
                        w.stop_reason = f"no spread: {len(windows)} identical windows"
                        break  # a simulated or constant device: exact, nothing to gain
                    decision = rule.check(windows, w.measured_s, steps=done)
                    if decision.stop:
                        w.stop_reason = decision.describe() + (
                            " (of the CPU work part, which a compare decides on)" if on_work else ""
                        )
                        break
            except GeneratorExit:  # a `break` in the caller, or an exception unwinding it
                w.left_early = True
                raise

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
