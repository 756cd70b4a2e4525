"""Windows and steps: turn cumulative backend readings into per-unit energy and projections.

Pure given a backend and a clock. The hot path (:meth:`Window.step`) does one clock read,
one backend read and one list append; all statistics are computed when the window closes.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .backends.base import Backend, Device

J_PER_KWH = 3.6e6

#: A window shorter than this many counter update periods is merged with the next one, so
#: that the counter's quantization is at most 1/GROUP_FACTOR of a window's energy.
GROUP_FACTOR = 10.0

# Two-sided 97.5% quantiles of Student's t for df = 1..30 (then the normal 1.96).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """Student's t quantile for a two-sided 95% interval with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Stats:
    """Per-unit energy over the windows of a measurement (joules per unit).

    ``mean`` is total energy / total units. ``std`` is the sample standard deviation of
    the per-unit energies of the windows (NaN with fewer than 2 windows), ``sem`` its
    standard error (std / sqrt(windows)).
    """

    mean: float
    std: float
    sem: float
    n: int  # number of windows the spread rests on

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": _json_num(self.std),
            "sem": _json_num(self.sem),
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stats:
        return cls(
            mean=float(d["mean"]),
            std=_num(d.get("std")),
            sem=_num(d.get("sem")),
            n=int(d.get("n", 0)),
        )

    @classmethod
    def of(cls, per_unit_j: Sequence[float], total_j: float, total_units: float) -> Stats:
        n = len(per_unit_j)
        mean = total_j / total_units if total_units else math.nan
        if n < 2:
            return cls(mean=mean, std=math.nan, sem=math.nan, n=n)
        m = sum(per_unit_j) / n
        var = sum((x - m) ** 2 for x in per_unit_j) / (n - 1)
        std = math.sqrt(var)
        return cls(mean=mean, std=std, sem=std / math.sqrt(n), n=n)


@dataclass(frozen=True)
class Projection:
    """Energy of ``n`` units, projected from the measured per-unit energy.

    ``std_kwh`` follows the paper's convention: the per-unit spread scaled to ``n``
    (std x n). ``ci95_kwh`` is the half-width of a 95% interval of the mean (t x sem x n).
    ``measured`` is True when ``n`` is simply the number of units measured.
    """

    n: int
    unit: str
    energy_kwh: float
    std_kwh: float
    ci95_kwh: float
    measured: bool = False

    @property
    def energy_j(self) -> float:
        return self.energy_kwh * J_PER_KWH

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "unit": self.unit,
            "energy_kwh": self.energy_kwh,
            "std_kwh": _json_num(self.std_kwh),
            "ci95_kwh": _json_num(self.ci95_kwh),
            "measured": self.measured,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Projection:
        return cls(
            n=int(d["n"]),
            unit=str(d["unit"]),
            energy_kwh=float(d["energy_kwh"]),
            std_kwh=_num(d.get("std_kwh")),
            ci95_kwh=_num(d.get("ci95_kwh")),
            measured=bool(d.get("measured", False)),
        )


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one device over the measured steps."""

    device: Device
    energy_j: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.device.to_dict(), "energy_j": self.energy_j}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceEnergy:
        return cls(device=Device.from_dict(dict(d)), energy_j=float(d["energy_j"]))


@dataclass(frozen=True)
class Measurement:
    """What one window measured: the record everything downstream is built from."""

    name: str
    unit: str
    steps: int  # measured steps (warm-up excluded)
    units: float  # measured units (a step may count several units, e.g. a batch)
    warmup: int
    duration_s: float
    energy_j: float
    energy_per_unit_j: Stats
    unit_energies_j: tuple[float, ...]  # per-unit energy of each window (the spread's data)
    method: str
    devices: tuple[DeviceEnergy, ...]
    backend: str
    complete: bool = True  # False when the block raised or was interrupted
    ranks: int = 1
    nodes: int = 1
    notes: tuple[str, ...] = ()
    extrapolate: int | None = None  # this measurement's own target, if it set one

    @property
    def windows(self) -> int:
        return len(self.unit_energies_j)

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else math.nan

    def project(self, n: int | None = None) -> Projection:
        """Project to ``n`` units (default: this measurement's own target, else what was measured)."""
        target = n if n is not None else self.extrapolate
        measured = target is None
        units = round(self.units) if measured else int(target)  # type: ignore[arg-type]
        s = self.energy_per_unit_j
        return Projection(
            n=units,
            unit=self.unit,
            energy_kwh=s.mean * units / J_PER_KWH,
            std_kwh=s.std * units / J_PER_KWH,
            ci95_kwh=t975(s.n - 1) * s.sem * units / J_PER_KWH,
            measured=measured,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "steps": self.steps,
            "units": self.units,
            "warmup": self.warmup,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "mean_power_w": _json_num(self.mean_power_w),
            "energy_per_unit_j": self.energy_per_unit_j.to_dict(),
            "unit_energies_j": list(self.unit_energies_j),
            "windows": self.windows,
            "method": self.method,
            "backend": self.backend,
            "devices": [d.to_dict() for d in self.devices],
            "complete": self.complete,
            "ranks": self.ranks,
            "nodes": self.nodes,
            "notes": list(self.notes),
            "extrapolate": self.extrapolate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        return cls(
            name=str(d["name"]),
            unit=str(d["unit"]),
            steps=int(d["steps"]),
            units=float(d.get("units", d["steps"])),
            warmup=int(d.get("warmup", 0)),
            duration_s=float(d["duration_s"]),
            energy_j=float(d["energy_j"]),
            energy_per_unit_j=Stats.from_dict(d["energy_per_unit_j"]),
            unit_energies_j=tuple(float(x) for x in d.get("unit_energies_j", ())),
            method=str(d["method"]),
            devices=tuple(DeviceEnergy.from_dict(x) for x in d.get("devices", ())),
            backend=str(d.get("backend", "")),
            complete=bool(d.get("complete", True)),
            ranks=int(d.get("ranks", 1)),
            nodes=int(d.get("nodes", 1)),
            notes=tuple(d.get("notes", ())),
            extrapolate=None if d.get("extrapolate") is None else int(d["extrapolate"]),
        )

    @classmethod
    def combine(cls, parts: Sequence[Measurement], *, nodes: int = 1) -> Measurement:
        """One figure for a job whose ranks each measured the same steps (DDP).

        Energies are summed over ranks. When every rank has the same windows, the
        per-window per-unit energies are summed window by window (so the spread is that of
        the job); otherwise the variances are added. Duration is the slowest rank's.
        """
        if not parts:
            raise ValueError("nothing to combine")
        first = parts[0]
        energy_j = math.fsum(p.energy_j for p in parts)
        units = first.units
        if len({p.windows for p in parts}) == 1:
            unit_energies = tuple(
                math.fsum(vals) for vals in zip(*(p.unit_energies_j for p in parts), strict=False)
            )
            stats = Stats.of(unit_energies, energy_j, units)
        else:
            unit_energies = ()
            std = math.sqrt(math.fsum(p.energy_per_unit_j.std**2 for p in parts))
            n = min(p.energy_per_unit_j.n for p in parts)
            stats = Stats(energy_j / units, std, std / math.sqrt(n) if n else math.nan, n)
        methods = "+".join(dict.fromkeys(m for p in parts for m in p.method.split("+")))
        return replace(
            first,
            energy_j=energy_j,
            energy_per_unit_j=stats,
            unit_energies_j=unit_energies,
            duration_s=max(p.duration_s for p in parts),
            method=methods,
            devices=tuple(d for p in parts for d in p.devices),
            complete=all(p.complete for p in parts),
            ranks=sum(p.ranks for p in parts),
            nodes=nodes,
            notes=tuple(dict.fromkeys(n for p in parts for n in p.notes)),
        )


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


def measure_idle_w(
    backend: Backend,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] | None = None,
) -> tuple[float, ...]:
    """Each device's mean power (W) while this process sleeps for ``seconds``: its idle power
    (plus whatever else runs on a shared device meanwhile)."""
    now: Callable[[], float] = (
        clock if clock is not None else getattr(backend, "clock", time.perf_counter)
    )
    t0, r0 = now(), backend.read_j()
    sleep(seconds)
    t1, r1 = now(), backend.read_j()
    dt = t1 - t0
    return tuple((b - a) / dt if dt > 0 else 0.0 for a, b in zip(r0, r1, strict=False))


def _json_num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)
