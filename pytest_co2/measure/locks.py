"""Several processes on one shared counter device: serialize their measured windows.

A device counter (NVML total energy, RAPL) measures the whole device, so two pytest-xdist
workers measuring at the same time would each count the other's work. With
``--co2-exclusive`` (on by default under xdist when a shared counter or polled device is
measured) every window takes an exclusive ``fcntl.flock`` on one file per such device,
``<lock dir>/<device id>.lock``, from window enter to exit, so windows on one device never
overlap. Per-process estimates and simulated devices (``Device.shared`` False) need no lock.
What was done is said in the report header, the JSON session block and each measurement's
notes. Without a lock under xdist, the same places say the figures may double count.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Device, Method

LOCK_DIR_NAME = "pytest-co2-locks"
LOCKED_METHODS = (Method.COUNTER, Method.POLLED)


def default_lock_dir() -> str:
    """``<tempdir>/pytest-co2-locks``: shared by every process of this machine."""
    return os.path.join(tempfile.gettempdir(), LOCK_DIR_NAME)


def lockable_devices(devices: Iterable[Device]) -> tuple[Device, ...]:
    """The devices whose readings include other processes' energy (shared counters)."""
    return tuple(d for d in devices if d.shared and d.method in LOCKED_METHODS)


def lock_file_name(device_id: str) -> str:
    """``gpu:0`` -> ``gpu_0.lock``: a device id made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id).strip(".") + ".lock"


@dataclass(frozen=True)
class Policy:
    """What this run does about processes sharing a counter device."""

    mode: str  # "lock" | "off" | "not needed"
    reason: str  # why (which setting, or what was detected)
    devices: tuple[str, ...]  # ids of the shared counter devices
    lock_dir: str | None
    concurrent: bool  # other processes of this run measure at the same time (xdist)

    def describe(self) -> str:
        """One line for the report header and the JSON session block."""
        ids = ", ".join(self.devices)
        if self.mode == "lock":
            return (
                f"exclusive: measured windows on shared counter devices ({ids}) are serialized "
                f"across processes with file locks in {self.lock_dir} ({self.reason}); work of "
                "other processes outside their windows can still show up in a window"
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
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "devices": list(self.devices),
            "lock_dir": self.lock_dir,
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
) -> Policy:
    """The policy for ``--co2-exclusive`` (True), ``--co2-no-exclusive`` (False) or auto (None).

    Auto locks when ``concurrent`` (pytest-xdist) and a shared counter device is measured.
    """
    shared = tuple(d.id for d in lockable_devices(devices))
    lock_dir = lock_dir or default_lock_dir()
    if not shared:
        return Policy("not needed", "no shared counter device", (), None, concurrent)
    if exclusive is None:
        if concurrent:
            return Policy(
                "lock", "auto: pytest-xdist with a counter backend", shared, lock_dir, concurrent
            )
        return Policy("off", "auto: one process", shared, None, concurrent)
    where = f" ({source})" if source else ""
    if exclusive:
        return Policy("lock", f"--co2-exclusive{where}", shared, lock_dir, concurrent)
    return Policy("off", f"--co2-no-exclusive{where}", shared, None, concurrent)


class DeviceLock:
    """An exclusive, reentrant, cross-process lock on several devices (``fcntl.flock``).

    Files are locked in sorted order, so two processes never wait on each other in a
    cycle. Reentrant within a process (nested windows); a crashed holder's lock is released
    by the kernel. Raises OSError (or ImportError without fcntl) when it cannot lock.
    """

    def __init__(self, device_ids: Iterable[str], lock_dir: str) -> None:
        self.lock_dir = lock_dir
        self.paths = sorted({os.path.join(lock_dir, lock_file_name(i)) for i in device_ids})
        self._fds: list[int] = []
        self._depth = 0
        self._guard = threading.Lock()

    def acquire(self) -> float:
        """Take the lock (blocking); returns the seconds waited for other processes."""
        import fcntl

        with self._guard:
            self._depth += 1
            if self._depth > 1:
                return 0.0
            try:
                _make_shared_dir(self.lock_dir)
                t0 = time.perf_counter()
                for path in self.paths:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
                    self._fds.append(fd)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                return time.perf_counter() - t0
            except BaseException:
                self._depth -= 1
                self._close()
                raise

    def release(self) -> None:
        """Release one level; the files are unlocked when the outermost window exits."""
        with self._guard:
            if self._depth == 0:
                return
            self._depth -= 1
            if self._depth == 0:
                self._close()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def _close(self) -> None:
        import fcntl

        for fd in reversed(self._fds):
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._fds.clear()


def _make_shared_dir(path: str) -> None:
    """Create the lock directory, sticky and world-writable like /tmp, if it is new."""
    if os.path.isdir(path):
        return
    os.makedirs(path, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o1777)


class WindowGuard:
    """The meter's window hooks for a :class:`Policy`: lock, or only annotate."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.lock = (
            DeviceLock(policy.devices, policy.lock_dir or default_lock_dir())
            if policy.mode == "lock"
            else None
        )
        self.failure: str | None = None  # why locking failed, once it did
        self._waited: dict[int, float | None] = {}

    def enter(self, window: Any) -> None:
        if self.lock is None or self.failure is not None:
            return
        try:
            self._waited[id(window)] = self.lock.acquire()
        except (OSError, ImportError) as exc:
            self.failure = f"cannot lock {self.policy.lock_dir} ({exc}); windows are not serialized"
            import warnings

            warnings.warn(f"pytest-co2: --co2-exclusive: {self.failure}", stacklevel=3)

    def exit(self, window: Any) -> list[str]:
        ids = ", ".join(self.policy.devices)
        if self.lock is None:
            return (
                ["may include other processes' energy: " + self.policy.describe()]
                if self.policy.warning
                else []
            )
        if id(window) not in self._waited:
            return [f"exclusive lock failed: {self.failure}"] if self.failure else []
        waited = self._waited.pop(id(window))
        self.lock.release()
        return [
            f"exclusive: held the lock on {ids} for this window, so no other process measured "
            f"these devices meanwhile (waited {waited:.2f} s for it)"
        ]
