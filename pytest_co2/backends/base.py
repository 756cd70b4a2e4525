"""The one small interface every energy source implements.

A backend reports *cumulative* energy in joules, one number per device, since it was
opened. The meter reads it at window and step boundaries and takes differences; a
backend never has to know about steps, tests or carbon.
"""

from __future__ import annotations

import abc
import enum
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ..frozen import Frozen, record


class Method(str, enum.Enum):
    """How an energy figure was obtained. Shown next to every number we print."""

    COUNTER = "counter"  # a hardware energy counter (NVML total energy, RAPL)
    POLLED = "polled"  # power readings sampled by a thread and integrated
    ESTIMATED = "estimated"  # a model (CPU time x TDP per core, RSS x W/GB)
    SIMULATED = "simulated"  # a made-up source (constant power), for tests and what-ifs

    def __str__(self) -> str:
        return self.value


@record
class Device(Frozen):
    """One thing whose energy is read: a GPU, a CPU package, DRAM, a process estimate."""

    id: str  # stable short id, e.g. "gpu:0", "cpu:package-0", "cpu:process"
    kind: str  # "gpu" | "cpu" | "dram" | "memory" | "simulated"
    label: str  # human readable, e.g. "NVIDIA A100-SXM4-40GB", "Intel Xeon (TDP 100 W, default)"
    method: Method
    # Seconds between updates of the underlying counter (0 = continuous). Steps shorter
    # than this are grouped into longer windows by the meter.
    update_period_s: float = 0.0
    # Shared devices (a GPU, a CPU package) see the energy of every process on them;
    # a per-process estimate does not. Used for xdist / DDP attribution.
    shared: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "method": self.method.value,
            "update_period_s": self.update_period_s,
            "shared": self.shared,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Device:
        return cls(
            id=d["id"],
            kind=d["kind"],
            label=d["label"],
            method=Method(d["method"]),
            update_period_s=float(d.get("update_period_s", 0.0)),
            shared=bool(d.get("shared", True)),
        )


class BackendError(RuntimeError):
    """A backend cannot be used here. The message says why and how to fix it."""


class BackendUnavailable(BackendError):
    """The hardware is simply absent (no NVIDIA driver, no powercap tree).

    ``auto`` skips such a backend quietly (it adds a note); a :class:`BackendError` that is
    not this (present but unreadable, e.g. RAPL permission denied) is a warning with the fix.
    """


class BackendWarning(UserWarning):
    """A backend fell back or is degraded (e.g. RAPL not readable, CPU not in the TDP table)."""


def warn(message: str) -> None:
    """Emit a :class:`BackendWarning` (pytest shows it in the warnings summary)."""
    warnings.warn(message, BackendWarning, stacklevel=3)


class Backend(abc.ABC):
    """A source of cumulative per-device energy in joules.

    Subclasses set ``name`` and ``devices`` in ``__init__`` (raising :class:`BackendError`
    with a fix in the message when the hardware is unusable), implement :meth:`read_j`,
    and may append human-readable ``notes`` (which defaults were used, what fell back).
    ``read_j`` is on the measured hot path: keep it to a few microseconds.

    ``wall_w``: watts the backend charges per wall second whatever the process does (the
    CPU estimate's idle share of the CPUs held), 0 for counters; ``work_basis`` says what
    the energy less that charge is. A gate compares that part, which the process's own work
    controls (a co-tenant that doubles the wall time doubles the idle charge).

    ``reads_never_block``: the reads only look at this process and the clock (the CPU
    estimate), so the meter calls them directly instead of bounding each on a reader thread
    (``--co2-read-timeout``), which costs tens of microseconds a read.
    """

    name: str = "backend"
    devices: tuple[Device, ...] = ()
    notes: list[str]
    wall_w: float = 0.0
    work_basis: str = ""
    reads_never_block: bool = False

    def __init__(self) -> None:
        self.notes = []

    @abc.abstractmethod
    def read_j(self) -> Sequence[float]:
        """Cumulative joules per device (same order as ``devices``) since the backend opened."""

    def close(self) -> None:  # noqa: B027 (optional: most backends hold nothing)
        """Release handles and stop any poller thread. Idempotent."""

    def read_power_w(self) -> Sequence[float] | None:
        """Instant power (W) per device (same order as ``devices``), NaN for a device that
        has none; None when no device has instant power (the default).

        Used for windows too short for a device's counter (see ``integrator``); not on the
        per-step hot path.
        """
        return None

    def refresh_devices(self) -> bool:
        """Re-select the measured devices (e.g. GPUs that gained a CUDA context since the
        backend opened); True when ``devices`` changed. Call between windows only."""
        return False

    @property
    def methods(self) -> tuple[Method, ...]:
        return tuple(dict.fromkeys(d.method for d in self.devices))

    @property
    def method(self) -> str:
        """One label for the whole backend: a single method, or e.g. ``counter+estimated``."""
        return self.device_facts()[1]

    @property
    def update_period_s(self) -> float:
        """The slowest update period of any device: the shortest window worth trusting."""
        return self.device_facts()[2]

    # (devices, method, update_period_s): made again when ``devices`` is another tuple
    _device_facts: tuple[tuple[Device, ...], str, float] | None = None

    def device_facts(self) -> tuple[tuple[Device, ...], str, float]:
        """``(devices, method, update_period_s)``: what :attr:`method` and
        :attr:`update_period_s` say of the devices, worked out once per tuple of devices
        (every window reads both)."""
        devices, facts = self.devices, self._device_facts
        if facts is None or facts[0] is not devices:
            facts = self._device_facts = (
                devices,
                "+".join(m.value for m in self.methods) or "none",
                max((d.update_period_s for d in devices), default=0.0),
            )
        return facts

    def describe(self) -> str:
        """One line for the report header: name, devices and methods."""
        devs = ", ".join(f"{d.label} [{d.method.value}]" for d in self.devices)
        return f"{self.name}: {devs}" if devs else self.name

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Methods whose readings count the whole device, other processes' work included.
LOCKED_METHODS = (Method.COUNTER, Method.POLLED)


def lockable_devices(devices: Iterable[Device]) -> tuple[Device, ...]:
    """The devices whose readings include other processes' energy (shared counters)."""
    return tuple(d for d in devices if d.shared and d.method in LOCKED_METHODS)


def window_parts(backend: Any) -> tuple[Any, ...]:
    """The parts of ``backend`` (itself, or a composite's parts) with window hooks
    (``window_enter``, ``window_exit``: the GPU backend's fine sampling)."""
    if backend is None:
        return ()
    parts = getattr(backend, "parts", None) or (backend,)
    return tuple(p for p in parts if callable(getattr(p, "window_enter", None)))


def realign(
    values: Sequence[float], old: Sequence[Device], new: Sequence[Device], missing: float = 0.0
) -> tuple[float, ...]:
    """Per-device ``values`` (e.g. idle power) for ``old`` devices, re-ordered for ``new``
    by device id (``missing`` where a new device had none): after
    :meth:`Backend.refresh_devices` changed the devices."""
    by_id = {d.id: v for d, v in zip(old, values, strict=False)}
    return tuple(by_id.get(d.id, missing) for d in new)
