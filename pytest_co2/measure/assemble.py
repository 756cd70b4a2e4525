"""Measurement assembly: a closed window's readings into a :class:`Measurement`.

Pure: the timestamps, the cumulative readings and the units of a window's steps in, the
record out (grouping of short steps, per-unit energies, idle subtraction, the work part, the
short-window power x time, contention, notes). A window calls it when it closes, or later
for a deferred window (the plugin's per-test call window under ``--co2-all``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from math import isfinite
from operator import le
from typing import Any

from ..backends.base import Backend, Device
from ..backends.contention import Snapshot
from .records import DeviceEnergy, Measurement
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
    if n_steps == 1:  # one step (a test's call window): one group, whatever its length
        return [(0, 1)]
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


def monotone(
    readings: Sequence[Sequence[float]], devices: Sequence[Any]
) -> tuple[Sequence[Sequence[float]], list[str]]:
    """Readings whose per-device values never go backwards: a counter that decreases (a
    driver reset, a GPU lost) or reads NaN ends that device's contribution at its last good
    value, with a note. Never negative energy, never an exception."""
    notes: list[str] = []
    if not readings:
        return readings, notes
    if len(readings) == 2 and len(readings[0]) == len(readings[1]):  # one step: the usual
        first, last = readings
        if all(isfinite(a) and isfinite(b) and a <= b for a, b in zip(first, last, strict=True)):
            return [tuple(first), tuple(last)], notes  # as the loop below would
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


class Readings:
    """What a closed window read: everything :func:`assemble` needs, captured at its end
    (the backend's devices and notes as they were then). A plain class: one is made per
    window, and a dataclass would cost more at import than all of them at run time."""

    __slots__ = (
        "backend",
        "backend_notes",
        "complete",
        "contention0",
        "contention1",
        "devices",
        "end_power",
        "extrapolate",
        "failed_or_aborted",
        "idle_w",
        "method",
        "name",
        "notes",
        "period_s",
        "readings",
        "seen",
        "start_power",
        "times",
        "unit",
        "units",
        "wall_w",
        "warmup",
        "work_basis",
    )  # fmt: skip

    def __init__(  # by position in the plugin's hot path (see Window.__exit__)
        self,
        name: str,
        unit: str,
        warmup: int,
        seen: int,
        extrapolate: int | None,
        times: Sequence[float],
        readings: Sequence[Sequence[float]],
        units: Sequence[float],
        start_power: Sequence[float] | None,
        end_power: Sequence[float] | None,
        contention0: Snapshot | None,
        contention1: Snapshot | None,
        devices: Sequence[Device],
        backend_notes: tuple[str, ...],
        idle_w: tuple[float, ...] | None,
        complete: bool,
        notes: Sequence[str],
        failed_or_aborted: bool,
        backend: Backend,
    ) -> None:
        self.name, self.unit, self.warmup, self.seen = name, unit, warmup, seen
        self.extrapolate = extrapolate
        self.times, self.readings, self.units = times, readings, units  # step boundaries
        self.start_power, self.end_power = start_power, end_power
        self.contention0, self.contention1 = contention0, contention1
        self.devices, self.backend_notes, self.idle_w = devices, backend_notes, idle_w
        self.complete, self.notes = complete, notes
        self.failed_or_aborted = failed_or_aborted  # the backend failed, or the plugin closed it
        # the backend's facts as they were (its devices may change before a deferred assembly)
        _, self.method, self.period_s = backend.device_facts()
        self.backend, self.wall_w, self.work_basis = (
            backend.name,
            backend.wall_w,
            backend.work_basis,
        )


def plain_energy(r: Readings) -> tuple[float, float, float] | None:
    """``(duration_s, energy_j, units)`` of a window of one step whose assembly is plain
    arithmetic: readings that only go up, no idle power subtracted, no power x time for a
    window shorter than the counter. Exactly the figures :func:`assemble` gives it, without
    the record (the summary ranks deferred windows by them); None for any other window."""
    readings = r.readings
    if r.idle_w or len(r.units) != 1 or len(readings) != 2:
        return None
    first, last = readings
    if len(first) != len(last) or not all(map(le, first, last)):  # False for NaN too
        return None
    # every reading finite: only then is the difference of the sums finite (an infinite
    # one gives inf or NaN, or fsum raises; one too large to sum makes the record instead)
    try:
        energy_j = math.fsum(last) - math.fsum(first)
    except (ValueError, OverflowError):
        return None
    if not isfinite(energy_j):
        return None
    times, period = r.times, r.period_s
    duration_s = times[-1] - times[0]
    if (
        period > 0
        and duration_s < GROUP_FACTOR * period
        and r.start_power is not None
        and r.end_power is not None
    ):
        return None  # power x time may replace a device's counter (see assemble)
    return duration_s, energy_j, math.fsum(r.units)


def assemble(r: Readings) -> Measurement:
    """The measurement of one closed window."""
    devices = r.devices
    times = r.times
    notes = list(r.notes)
    readings, bad = monotone(r.readings, devices)
    notes.extend(bad)
    units = r.units
    totals = [math.fsum(x) for x in readings]
    period = r.period_s
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
        and r.start_power is not None
        and r.end_power is not None
    ):  # too short for the counter: instant power x time where a device has it
        from ..backends.integrator import short_window_devices_j

        dev_j, short = short_window_devices_j(
            dev_j, r.start_power, r.end_power, duration_s,
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
    elif (
        period > 0
        and duration_s < GROUP_FACTOR * period
        and not any(n.startswith("fine-sampled: ") for n in notes)  # the GPU backend's own
    ):
        notes.append(
            f"measured {duration_s * 1e3:.1f} ms is short for a counter that updates every "
            f"{period * 1e3:g} ms: up to {period / max(duration_s, 1e-12):.0%} quantization error"
        )
    idle_w = r.idle_w
    idle_total_w = math.fsum(idle_w) if idle_w else 0.0
    unit_energies = tuple(
        (totals[b] - totals[a] - idle_total_w * (times[b] - times[a])) / math.fsum(units[a:b])
        for a, b in groups
    )
    energy_j = totals[-1] - totals[0] - idle_total_w * duration_s
    total_units = math.fsum(units)
    work_unit, work_j = work_part(totals, times, units, groups, r.wall_w)
    contention = None
    if r.contention0 is not None and r.contention1 is not None:
        from .contention import contention_between

        contention = contention_between(r.contention0, r.contention1)
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
    if not r.complete and not r.failed_or_aborted:
        notes.append("incomplete: the measured block raised or was interrupted; partial steps only")
    return Measurement(
        name=r.name,
        unit=r.unit,
        steps=len(r.units),
        units=total_units,
        warmup=min(r.seen, r.warmup),
        duration_s=duration_s,
        energy_j=energy_j,
        energy_per_unit_j=Stats.of(unit_energies, energy_j, total_units),
        unit_energies_j=unit_energies,
        method=r.method,
        devices=dev_energy,
        backend=r.backend,
        complete=r.complete,
        notes=tuple(notes) + r.backend_notes,
        extrapolate=r.extrapolate,
        work_unit_energies_j=work_unit,
        work_energy_j=work_j,
        work_basis=r.work_basis if work_j is not None else "",
        contention=contention,
    )
