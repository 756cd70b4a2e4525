"""Windows and steps: turn cumulative backend readings into per-unit energy and projections.

Pure given a backend and a clock. The hot path (:meth:`Window.step`) does one clock read,
one backend read and one list append; all statistics are computed when the window closes.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..backends.base import Backend
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


def _cuda_synchronize() -> None:
    """Wait for queued CUDA work, only if torch is already imported and CUDA initialized."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_initialized():
        cuda.synchronize()


class Window:
    """One measured region. Use as a context manager; call :meth:`step` after each unit of work."""

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
        self._last_progress_t = 0.0
        self.measurement: Measurement | None = None

    # -- hot path ---------------------------------------------------------------------
    def step(self, units: float = 1) -> None:
        """Mark the end of one step of ``units`` units (default 1)."""
        meter = self._meter
        meter._sync()
        t = meter._clock()
        reading = meter.backend.read_j()
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

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> Window:
        meter = self._meter
        if meter.on_window_enter is not None:
            meter.on_window_enter(self)  # e.g. take a cross-process device lock
        try:
            meter._sync()
            self._start_t = meter._clock()
            self._start_reading = meter.backend.read_j()
        except BaseException:
            if meter.on_window_exit is not None:
                meter.on_window_exit(self)
            raise
        self._last_progress_t = self._start_t
        self._times = [self._start_t]
        self._readings = [self._start_reading]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        meter = self._meter
        complete = exc_type is None or issubclass(exc_type, GeneratorExit)
        notes: list[str] = []
        try:
            meter._sync()
            if not self._units:
                # No (post warm-up) step() call: the whole block is one unit.
                t = meter._clock()
                reading = meter.backend.read_j()
                if self._seen and self._seen <= self.warmup:
                    notes.append(
                        "every step() was a warm-up step: the block after them is one unit"
                    )
                self._times.append(t)
                self._readings.append(reading)
                self._units.append(1)
        finally:
            if meter.on_window_exit is not None:
                notes.extend(meter.on_window_exit(self) or ())  # after the last reading
        self.measurement = self._finish(complete, notes)
        meter._record(self.measurement)

    def _finish(self, complete: bool, notes: list[str]) -> Measurement:
        meter = self._meter
        backend = meter.backend
        times = self._times
        readings = self._readings
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
        if period > 0 and duration_s < GROUP_FACTOR * period:
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
        dev_energy = tuple(
            DeviceEnergy(
                d, readings[-1][i] - readings[0][i] - (idle_w[i] * duration_s if idle_w else 0.0)
            )
            for i, d in enumerate(backend.devices)
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
        if not complete:
            notes.append(
                "incomplete: the measured block raised or was interrupted; partial steps only"
            )
        return Measurement(
            name=self.name,
            unit=self.unit,
            steps=len(units),
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
    ) -> Iterator[int]:
        """Iterate ``warmup + n`` times; each iteration after the warm-up is one measured step.

        With ``time_budget_s``, stop early once at least ``min_steps`` steps were measured
        and the measured steps took that long (the record says how many were measured).
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"invalid number of steps {n!r}: expected an integer >= 1")
        with self.measure(name, unit=unit, warmup=warmup, extrapolate=extrapolate, total=n) as w:
            for i in range(warmup + n):
                yield i
                w.step()
                if (
                    time_budget_s is not None
                    and w.steps_done >= min_steps
                    and w.measured_s >= time_budget_s
                ):
                    break

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
