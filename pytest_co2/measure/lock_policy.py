"""Whether windows lock: the ``--co2-exclusive`` policy for processes sharing a counter device.

A device counter (NVML total energy, RAPL) measures the whole device, so two pytest-xdist
workers measuring at the same time would each count the other's work. The policy says
whether measured windows take a device lock (:mod:`.locks`), and why; it is said in the
report header, the JSON session block and each measurement's notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..backends.base import Device, lockable_devices
from ..frozen import Frozen, record
from .lock_dir import default_lock_dir, open_to_others

DEFAULT_LOCK_TIMEOUT_S = 30.0


def parse_lock_timeout(text: str) -> float:
    """``--co2-lock-timeout``: seconds >= 0 to wait for a device lock (0: try once)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"invalid lock timeout {text!r}: expected seconds >= 0 (e.g. 30; 0: do not wait)"
        )
    return value + 0.0  # -0.0 -> 0.0


@record
class Policy(Frozen):
    """What this run does about processes sharing a counter device."""

    mode: str  # "lock" | "off" | "not needed"
    reason: str  # why (which setting, or what was detected)
    devices: tuple[str, ...]  # ids of the shared counter devices
    lock_dir: str | None
    concurrent: bool  # other processes of this run measure at the same time (xdist)
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S  # longest wait for a lock per window
    dir_warning: str | None = None  # a lock folder that others may write to

    def describe(self) -> str:
        """One line for the report header and the JSON session block."""
        ids = ", ".join(self.devices)
        if self.mode == "lock":
            return (
                f"exclusive: measured windows on shared counter devices ({ids}) are serialized "
                f"across processes with file locks in {self.lock_dir} ({self.reason}; a window "
                f"waits at most {self.lock_timeout_s:g} s for a lock, then runs without it); work "
                "of other processes outside their windows can still show up in a window"
            )
        if self.mode == "not needed":
            return (
                "exclusive: not needed: no shared counter device (a per-process estimate or a "
                "simulated device does not see other processes)"
            )
        if self.concurrent:
            return (
                f"not exclusive ({self.reason}): concurrent pytest-xdist workers share counter "
                f"devices ({ids}), so a window can include other workers' energy (double "
                "counting); use --co2-exclusive to serialize them"
            )
        return f"not exclusive ({self.reason}): one process measures the shared counter devices ({ids})"

    @property
    def warning(self) -> str | None:
        """The warning to give once per process when figures may double count."""
        if self.mode == "off" and self.concurrent:
            return "pytest-co2: " + self.describe()
        if self.mode == "lock" and self.dir_warning:
            return "pytest-co2: " + self.dir_warning
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "devices": list(self.devices),
            "lock_dir": self.lock_dir,
            "lock_timeout_s": self.lock_timeout_s,
            "concurrent": self.concurrent,
            "description": self.describe(),
        }


def decide(
    exclusive: bool | None,
    devices: Sequence[Device],
    *,
    concurrent: bool,
    source: str | None = None,
    lock_dir: str | None = None,
    lock_timeout_s: float | None = None,
) -> Policy:
    """The policy for ``--co2-exclusive`` (True), ``--co2-no-exclusive`` (False) or auto (None).

    Auto locks when ``concurrent`` (pytest-xdist) and a shared counter device is measured.
    ``lock_timeout_s`` (None: :data:`DEFAULT_LOCK_TIMEOUT_S`) bounds each window's wait.
    """
    shared = tuple(d.id for d in lockable_devices(devices))
    lock_dir = lock_dir or default_lock_dir()
    timeout = DEFAULT_LOCK_TIMEOUT_S if lock_timeout_s is None else float(lock_timeout_s)
    if not shared:
        return Policy("not needed", "no shared counter device", (), None, concurrent, timeout)
    if exclusive is None:
        if concurrent:
            return Policy(
                "lock",
                "auto: pytest-xdist with a counter backend",
                shared,
                lock_dir,
                concurrent,
                timeout,
                open_to_others(lock_dir),
            )
        return Policy("off", "auto: one process", shared, None, concurrent, timeout)
    where = f" ({source})" if source else ""
    if exclusive:
        return Policy(
            "lock",
            f"--co2-exclusive{where}",
            shared,
            lock_dir,
            concurrent,
            timeout,
            open_to_others(lock_dir),
        )
    return Policy("off", f"--co2-no-exclusive{where}", shared, None, concurrent, timeout)
