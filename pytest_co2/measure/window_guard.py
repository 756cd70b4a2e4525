"""The meter's window hooks for a lock :class:`~.lock_policy.Policy`: lock what is measured, or
only annotate, and the backend's own window hooks (the GPU backend's fine sampling).

At every window the lock set follows what the backend measures then (a GPU that a test
starts using is locked before the window's first reading), each device by its lock key (a
GPU's UUID: the same GPU in every process, whatever its index there), so workers on
different GPUs never wait for each other.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..backends.base import lockable_devices, window_parts
from ..frozen import Frozen, record
from .lock_dir import LockDirError, default_lock_dir
from .lock_policy import Policy

if TYPE_CHECKING:  # imported where a policy locks: a run that needs no lock skips the module
    from .locks import DeviceLock, LockWait


@record
class _Unlocked(Frozen):
    """A window that runs without its lock (the lock timed out), and the note that says so."""

    note: str


class _Hold:
    """The lock held around something that is not a window (idle power)."""


class WindowGuard:
    """The meter's window hooks for a :class:`Policy`: lock, or only annotate.

    ``on_wait(LockWait)`` (optional) is called when a window starts waiting for a busy
    lock, about every second while it waits, and when the wait ends; ``lock.waiting`` holds
    the same state while a wait is in progress. After a wait timed out, later windows try
    the lock once without waiting until they get it again (a holder that never lets go costs
    one timeout, not one per window). :attr:`unlocked_windows` counts the windows measured
    without the lock; :meth:`summary` gives the line for the session summary.
    """

    def __init__(
        self,
        policy: Policy,
        on_wait: Callable[[LockWait], None] | None = None,
        backend: Any = None,
    ) -> None:
        self.policy = policy
        self.on_wait = on_wait
        self.backend = backend  # its measured set is locked (by lock key), its window hooks
        self.failure: str | None = None  # why locking failed for good, once it did
        self.unlocked_windows = 0
        self.timed_out = 0  # windows that waited the whole timeout
        self.waited_s = 0.0  # total wait of this process for locks
        self.windows = 0  # windows that ended
        self._busy_since_timeout = False
        self._windows: dict[int, float | _Unlocked] = {}
        # the lock sets taken, in order: device ids -> lock keys, and how many windows held each
        self._locked: dict[tuple[tuple[str, str], ...], int] = {}
        self.devices: tuple[str, ...] = policy.devices
        self._keys: dict[str, str] = {d: d for d in policy.devices}  # device id -> lock key
        self.lock: DeviceLock | None = None
        if policy.mode == "lock":
            from .locks import DeviceLock

            self.lock = DeviceLock(policy.devices, policy.lock_dir or default_lock_dir())
        self._hooked = window_parts(backend)
        if backend is not None and self.lock is not None:
            self._follow()

    @property
    def active(self) -> bool:
        """Whether the meter must call :meth:`enter` and :meth:`exit` around its windows."""
        return self.lock is not None or bool(self.policy.warning) or bool(self._hooked)

    def _follow(self) -> None:
        """Lock what the backend measures now (by lock key: a GPU's UUID), when not held."""
        assert self.lock is not None
        keys = lock_keys(self.backend)
        if self.lock.held or set(keys.values()) == set(self.lock.devices):
            return
        from .locks import DeviceLock

        self.devices, self._keys = tuple(keys), dict(keys)
        self.lock = DeviceLock(keys.values(), self.policy.lock_dir or default_lock_dir())

    @property
    def waiting(self) -> LockWait | None:
        """The wait in progress, if a window is waiting for a lock now."""
        return self.lock.waiting if self.lock is not None else None

    def enter(self, window: Any) -> None:
        """Before a window's first reading: lock the devices it measures, then start the
        backend's window hooks (fine sampling of short windows)."""
        self._lock_enter(window)
        for part in self._hooked:
            part.window_enter()

    def _lock_enter(self, window: Any) -> None:
        if self.lock is None:
            return
        from .locks import LockTimeout

        if self.backend is not None:
            self._follow()
        ids = ", ".join(self.devices)
        if self.failure is not None:
            self._unlocked(window, f"exclusive lock failed: {self.failure}")
            return
        timeout = 0.0 if self._busy_since_timeout else self.policy.lock_timeout_s
        try:
            waited = self.lock.acquire(timeout, self.on_wait)
        except LockTimeout as exc:
            self.waited_s += exc.waited_s
            if self._busy_since_timeout:
                note = (
                    f"exclusive: NOT locked: {exc.path} is still held by another process (a "
                    f"window waited {self.policy.lock_timeout_s:g} s for it before); measured "
                    f"without the lock, so it may include other processes' energy on {ids}"
                )
            else:
                self.timed_out += 1
                self._busy_since_timeout = True
                note = (
                    f"exclusive: NOT locked: waited {exc.waited_s:.1f} s (the lock timeout) "
                    f"for {exc.path}, held by another process; measured without the lock, so "
                    f"it may include other processes' energy on {ids}"
                )
                warnings.warn(
                    f"pytest-co2: --co2-exclusive: {exc.path} was held by another process for "
                    f"{exc.waited_s:.1f} s: windows run without the lock while it stays busy",
                    stacklevel=3,
                )
            self._unlocked(window, note)
        except (OSError, ImportError) as exc:
            reason = str(exc) if isinstance(exc, LockDirError) else f"{self.policy.lock_dir}: {exc}"
            self.failure = f"cannot lock ({reason}); windows are not serialized"
            warnings.warn(f"pytest-co2: --co2-exclusive: {self.failure}", stacklevel=3)
            self._unlocked(window, f"exclusive lock failed: {self.failure}")
        else:
            self._busy_since_timeout = False
            self.waited_s += waited
            self._windows[id(window)] = waited
            taken = tuple(sorted(self._keys.items()))
            self._locked[taken] = self._locked.get(taken, 0) + (not isinstance(window, _Hold))

    def _unlocked(self, window: Any, note: str) -> None:
        self.unlocked_windows += 1
        self._windows[id(window)] = _Unlocked(note)

    def exit(self, window: Any) -> list[str]:
        """After a window's last reading: the backend's notes, then the lock's."""
        self.windows += 1
        notes = [n for part in self._hooked for n in part.window_exit()]
        return notes + self._lock_exit(window)

    @contextlib.contextmanager
    def hold(self) -> Iterator[list[str]]:
        """The lock as for a window, around something that is not one (idle power); yields
        the notes saying how it was held."""
        token = _Hold()
        notes: list[str] = []
        self._lock_enter(token)
        try:
            yield notes
        finally:
            notes.extend(self._lock_exit(token))

    def _lock_exit(self, window: Any) -> list[str]:
        ids = ", ".join(self.devices)
        if self.lock is None:
            return (
                ["may include other processes' energy: " + self.policy.describe()]
                if self.policy.warning
                else []
            )
        state = self._windows.pop(id(window), None)
        if state is None:
            return []
        if isinstance(state, _Unlocked):
            return [state.note]
        self.lock.release()
        return [
            f"exclusive: held the lock on {ids} for this window, so no other process measured "
            f"these devices meanwhile (waited {state:.2f} s for it)"
        ]

    def summary(self) -> str | None:
        """The session-summary line when some windows ran without the lock, else None."""
        if self.unlocked_windows == 0:
            return None
        n = self.unlocked_windows
        what = f"{n} measured window{'s' if n != 1 else ''} ran without the exclusive lock"
        if self.failure is not None:
            return f"{what}: {self.failure}"
        return (
            f"{what}: another process held it for longer than the lock timeout "
            f"({self.policy.lock_timeout_s:g} s); their figures may include other processes' energy"
        )

    @property
    def locked(self) -> list[dict[str, Any]]:
        """The lock sets actually taken, in the order first taken: ``devices`` (device id ->
        lock key: a GPU's UUID) and ``windows`` (how many measured windows held it; 0: only
        the idle measurement did). The policy's ``devices`` are the set at open."""
        return [{"devices": dict(k), "windows": n} for k, n in self._locked.items()]

    def to_dict(self) -> dict[str, Any]:
        """For the JSON session block (``session.exclusive.windows``)."""
        return {
            "unlocked_windows": self.unlocked_windows,
            "timed_out": self.timed_out,
            "waited_s": self.waited_s,
            "failure": self.failure,
            "locked": self.locked,
        }


def lock_keys(backend: Any) -> dict[str, str]:
    """Device id -> lock key of the lockable devices ``backend`` measures now: a GPU's UUID
    (the same GPU in every process, whatever its index there), else the device id."""
    keys: dict[str, str] = {}
    for part in getattr(backend, "parts", None) or (backend,):
        keys.update(getattr(part, "lock_keys", None) or {})
    return {d.id: keys.get(d.id, d.id) for d in lockable_devices(backend.devices)}
