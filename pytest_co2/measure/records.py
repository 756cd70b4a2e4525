"""The records a measurement produces: per-device energy, the measurement, its projection.

Frozen dataclasses with ``to_dict``/``from_dict``: the JSON report and the pytest-xdist
transport are built from them and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..backends.base import Device
from ..constants import J_PER_KWH
from ..frozen import Frozen, record
from .stats import Stats, json_num, num, t975

if TYPE_CHECKING:  # imported where a record has contention: most short ones do not
    from .contention import Contention


@record
class Projection(Frozen):
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
            "std_kwh": json_num(self.std_kwh),
            "ci95_kwh": json_num(self.ci95_kwh),
            "measured": self.measured,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Projection:
        return cls(
            n=int(d["n"]),
            unit=str(d["unit"]),
            energy_kwh=float(d["energy_kwh"]),
            std_kwh=num(d.get("std_kwh")),
            ci95_kwh=num(d.get("ci95_kwh")),
            measured=bool(d.get("measured")),
        )


@record
class DeviceEnergy(Frozen):
    """Energy of one device over the measured steps."""

    device: Device
    energy_j: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.device.to_dict(), "energy_j": self.energy_j}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceEnergy:
        return cls(device=Device.from_dict(dict(d)), energy_j=float(d["energy_j"]))


@record
class Measurement(Frozen):
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
    # The part of the energy that scales with the process's own work, where a backend
    # charges some of it per wall second (the CPU estimate's idle share): per window and in
    # all, and what it is. Empty / None for counters (then the whole energy is the work).
    work_unit_energies_j: tuple[float, ...] = ()
    work_energy_j: float | None = None
    work_basis: str = ""
    contention: Contention | None = None  # None: not measured (unknown, never "quiet")

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
            "mean_power_w": json_num(self.mean_power_w),
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
            **self._additions(),
        }

    def _additions(self) -> dict[str, Any]:
        """Keys added to the schema after version 1's first reports: written when known."""
        out: dict[str, Any] = {}
        if self.work_energy_j is not None:
            out["work_energy_j"] = self.work_energy_j
            out["work_unit_energies_j"] = list(self.work_unit_energies_j)
            out["work_basis"] = self.work_basis
        if self.contention is not None:
            out["contention"] = self.contention.to_dict()
        return out

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
            work_unit_energies_j=tuple(float(x) for x in d.get("work_unit_energies_j") or ()),
            work_energy_j=None if d.get("work_energy_j") is None else float(d["work_energy_j"]),
            work_basis=str(d.get("work_basis") or ""),
            contention=_contention(d.get("contention")),
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
        work_j: float | None = None
        work_units: tuple[float, ...] = ()
        if all(p.work_energy_j is not None for p in parts):
            work_j = math.fsum(p.work_energy_j or 0.0 for p in parts)
            if len({len(p.work_unit_energies_j) for p in parts}) == 1:
                work_units = tuple(
                    math.fsum(vals)
                    for vals in zip(*(p.work_unit_energies_j for p in parts), strict=True)
                )
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
            work_energy_j=work_j,
            work_unit_energies_j=work_units,
        )


def _contention(d: Any) -> Contention | None:
    if not isinstance(d, Mapping):
        return None
    from .contention import Contention

    return Contention.from_dict(d)
