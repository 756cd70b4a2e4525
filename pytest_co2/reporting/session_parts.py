"""The typed parts of the report's ``session`` block: the CPU estimate's figures, the idle
measurement, the exclusive-device policy, an xdist worker's facts, a re-render, a combined
report. Each has ``to_dict`` and a lenient ``from_dict`` (keys it does not know are kept in
``extra`` where the part has one); :class:`~.session.SessionInfo` holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, TypeVar

from ..backends.base import Device
from ..frozen import Frozen, record

_T = TypeVar("_T")


def optional(d: Mapping[str, Any], key: str, conv: Callable[[Any], _T]) -> _T | None:
    return None if d.get(key) is None else conv(d[key])


def extra_keys(d: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in known}


def strs(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


def floats(values: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(values or {}).items()}


@record
class CpuEstimateInfo(Frozen):
    """The CPU-time estimate's figures (``session.cpu_estimate``)."""

    basis: str
    idle_w_per_thread: float
    full_w_per_thread: float
    cpus_held: float
    source: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("basis", "idle_w_per_thread", "full_w_per_thread", "cpus_held", "source")

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "idle_w_per_thread": self.idle_w_per_thread,
            "full_w_per_thread": self.full_w_per_thread,
            "cpus_held": self.cpus_held,
            "source": self.source,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CpuEstimateInfo:
        return cls(
            basis=str(d.get("basis", "")),
            idle_w_per_thread=float(d["idle_w_per_thread"]),
            full_w_per_thread=float(d["full_w_per_thread"]),
            cpus_held=float(d["cpus_held"]),
            source=str(d.get("source", "")),
            extra=extra_keys(d, cls._KEYS),
        )


@record
class IdleInfo(Frozen):
    """``--co2-idle``: the idle power measured at start, per device id, and its use."""

    seconds: float
    power_w: Mapping[str, float]
    subtracted: bool
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("seconds", "power_w", "subtracted")

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "power_w": dict(self.power_w),
            "subtracted": self.subtracted,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IdleInfo:
        return cls(
            seconds=float(d["seconds"]),
            power_w=floats(d.get("power_w")),
            subtracted=bool(d.get("subtracted", False)),
            extra=extra_keys(d, cls._KEYS),
        )


@record
class ExclusiveInfo(Frozen):
    """The cross-process lock policy (``session.exclusive``) and, in lock mode, what the
    measured windows met (``windows``: waits, timeouts)."""

    mode: str
    reason: str
    devices: tuple[str, ...]
    lock_dir: str | None
    lock_timeout_s: float | None
    concurrent: bool
    description: str
    windows: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = (
        "mode", "reason", "devices", "lock_dir", "lock_timeout_s", "concurrent", "description",
        "windows",
    )  # fmt: skip

    @property
    def needed(self) -> bool:
        """Whether any device is shared (mode other than "not needed")."""
        return self.mode != "not needed"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mode": self.mode,
            "reason": self.reason,
            "devices": list(self.devices),
            "lock_dir": self.lock_dir,
            "lock_timeout_s": self.lock_timeout_s,
            "concurrent": self.concurrent,
            "description": self.description,
        }
        if self.windows is not None:
            d["windows"] = dict(self.windows)
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExclusiveInfo:
        windows = d.get("windows")
        return cls(
            mode=str(d["mode"]),
            reason=str(d.get("reason", "")),
            devices=strs(d.get("devices")),
            lock_dir=optional(d, "lock_dir", str),
            lock_timeout_s=optional(d, "lock_timeout_s", float),
            concurrent=bool(d.get("concurrent", False)),
            description=str(d.get("description", "")),
            windows=None if windows is None else dict(windows),
            extra=extra_keys(d, cls._KEYS),
        )


@record
class WorkerFacts(Frozen):
    """What one process opened (an xdist worker's ``workeroutput``, ``session.workers``):
    ``backend`` None when it measured nothing (then nothing else is said)."""

    backend: str | None = None
    notes: tuple[str, ...] = ()
    devices: tuple[Device, ...] = ()
    idle_w: Mapping[str, float] = field(default_factory=dict)
    exclusive: ExclusiveInfo | None = None
    lock_summary: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("backend", "notes", "devices", "idle_w", "exclusive", "lock_summary")

    def to_dict(self) -> dict[str, Any]:
        if self.backend is None:
            return {"backend": None, **self.extra}
        return {
            "backend": self.backend,
            "notes": list(self.notes),
            "devices": [dev.to_dict() for dev in self.devices],
            "idle_w": dict(self.idle_w),
            "exclusive": None if self.exclusive is None else self.exclusive.to_dict(),
            "lock_summary": self.lock_summary,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkerFacts:
        exclusive = d.get("exclusive")
        return cls(
            backend=optional(d, "backend", str),
            notes=strs(d.get("notes")),
            devices=tuple(Device.from_dict(dict(x)) for x in d.get("devices") or ()),
            idle_w=floats(d.get("idle_w")),
            exclusive=None if not exclusive else ExclusiveInfo.from_dict(exclusive),
            lock_summary=optional(d, "lock_summary", str),
            extra=extra_keys(d, cls._KEYS),
        )


@record
class RerenderInfo(Frozen):
    """``pytest-co2 report``: the accounting a saved run was re-rendered for."""

    region: str | None
    month: str | None
    pue: float
    note: str = "emissions recomputed from the saved energies; nothing was measured again"
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("region", "month", "pue", "note")

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "month": self.month,
            "pue": self.pue,
            "note": self.note,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RerenderInfo:
        return cls(
            region=optional(d, "region", str),
            month=optional(d, "month", str),
            pue=float(d["pue"]),
            note=str(d.get("note", "")),
            extra=extra_keys(d, cls._KEYS),
        )


@record
class CombinedInfo(Frozen):
    """``pytest-co2 combine``: the reports joined into this one (``inputs``: one object each,
    with its file, run, shard, host key, rank and test count), what was counted once or
    refused (``notes``), and the shards that were missing."""

    inputs: tuple[Mapping[str, Any], ...]
    notes: tuple[str, ...] = ()
    missing_shards: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("inputs", "notes", "missing_shards")

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [dict(x) for x in self.inputs],
            "notes": list(self.notes),
            "missing_shards": list(self.missing_shards),
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CombinedInfo:
        return cls(
            inputs=tuple(dict(x) for x in d.get("inputs") or ()),
            notes=strs(d.get("notes")),
            missing_shards=strs(d.get("missing_shards")),
            extra=extra_keys(d, cls._KEYS),
        )
