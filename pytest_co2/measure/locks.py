"""Several processes on one shared counter device: serialize their measured windows.

A device counter (NVML total energy, RAPL) measures the whole device, so two pytest-xdist
workers measuring at the same time would each count the other's work. With
``--co2-exclusive`` (on by default under xdist when a shared counter or polled device is
measured) every window takes an exclusive ``fcntl.flock`` on one file per such device,
``<lock dir>/<device id>.lock``, from window enter to exit, so windows on one device never
overlap. Per-process estimates and simulated devices (``Device.shared`` False) need no lock.
What was done is said in the report header, the JSON session block and each measurement's
notes. Without a lock under xdist, the same places say the figures may double count.

Safety: the default lock folder is per user (``<tempdir>/pytest-co2-locks-<uid>``, created
0700); a lock folder that is a symbolic link or not owned by the user is refused, and lock
files are opened with ``O_NOFOLLOW`` and ``O_CLOEXEC`` (a planted link is never followed, a
child process never inherits a lock). The wait for a lock is bounded (``lock_timeout_s``,
default 30 s): after it the window is measured without the lock and its notes say so; while
the same lock stays busy, later windows try once and do not wait again.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .lock_dir import default_lock_dir, lock_file_name, open_lock_dir, open_lock_file

# While waiting for a busy lock: poll it this often (seconds), and report the wait this often.
_POLL_MIN_S = 0.005
_POLL_MAX_S = 0.1
WAIT_REPORT_EVERY_S = 1.0


class LockTimeout(OSError):
    """Another process held a lock for longer than the timeout."""

    def __init__(self, path: str, waited_s: float) -> None:
        super().__init__(f"{path} was held by another process for {waited_s:.1f} s")
        self.path = path
        self.waited_s = waited_s


@dataclass
class LockWait:
    """A window waiting for a busy lock: given to ``on_wait`` callbacks (progress display)."""

    devices: tuple[str, ...]
    path: str  # the busy lock file
    waited_s: float
    timeout_s: float
    done: bool = False  # the wait is over (acquired, or timed out)
    acquired: bool = False

    def describe(self) -> str:
        if not self.done:
            return (
                f"waiting for the exclusive lock on {', '.join(self.devices)} "
                f"({self.waited_s:.0f} s of at most {self.timeout_s:g} s)"
            )
        got = "got it" if self.acquired else "measuring without it"
        return f"waited {self.waited_s:.1f} s for the exclusive lock: {got}"


class DeviceLock:
    """An exclusive, reentrant, cross-process lock on several devices (``fcntl.flock``).

    Files are locked in sorted order, so two processes never wait on each other in a
    cycle. Reentrant within a process (nested windows); a crashed holder's lock is released
    by the kernel. :meth:`acquire` waits at most ``timeout_s`` (None: forever) and raises
    :class:`LockTimeout` after it, :class:`LockDirError` for an unsafe folder, another
    OSError (or ImportError without fcntl) when it cannot lock.
    """

    def __init__(self, device_ids: Iterable[str], lock_dir: str) -> None:
        self.lock_dir = lock_dir
        self.devices = tuple(sorted(set(device_ids)))
        self.names = sorted({lock_file_name(i) for i in self.devices})
        self.paths = [os.path.join(lock_dir, n) for n in self.names]
        self._fds: list[int] = []
        self._depth = 0
        self._guard = threading.Lock()
        self.waiting: LockWait | None = None  # set while a wait is in progress

    def acquire(
        self,
        timeout_s: float | None = None,
        on_wait: Callable[[LockWait], None] | None = None,
    ) -> float:
        """Take the lock; returns the seconds waited for other processes."""
        import fcntl

        with self._guard:
            self._depth += 1
            if self._depth > 1:
                return 0.0
            t0 = time.perf_counter()
            try:
                private = os.path.abspath(self.lock_dir) == os.path.abspath(default_lock_dir())
                dir_fd = open_lock_dir(self.lock_dir, private=private)
                try:
                    for name, path in zip(self.names, self.paths, strict=True):
                        fd = open_lock_file(dir_fd, name, self.lock_dir)
                        self._fds.append(fd)
                        self._wait_for(fd, path, t0, timeout_s, on_wait, fcntl)
                finally:
                    os.close(dir_fd)
                return time.perf_counter() - t0
            except BaseException:
                self._depth -= 1
                self._close()
                raise

    def _wait_for(
        self,
        fd: int,
        path: str,
        t0: float,
        timeout_s: float | None,
        on_wait: Callable[[LockWait], None] | None,
        fcntl: Any,
    ) -> None:
        """``flock`` one file, polling without blocking so that the wait has an end."""
        sleep_s = _POLL_MIN_S
        reported = -math.inf
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                if self.waiting is not None:
                    self._report(on_wait, time.perf_counter() - t0, done=True, acquired=True)
                return
            waited = time.perf_counter() - t0
            limit = math.inf if timeout_s is None else timeout_s
            if waited >= limit:
                self._report(on_wait, waited, done=True, acquired=False)
                raise LockTimeout(path, waited)
            if self.waiting is None or waited - reported >= WAIT_REPORT_EVERY_S:
                if self.waiting is None:
                    self.waiting = LockWait(self.devices, path, waited, limit)
                reported = waited
                self._report(on_wait, waited)
            time.sleep(min(sleep_s, max(limit - waited, 0.0)))
            sleep_s = min(sleep_s * 2, _POLL_MAX_S)

    def _report(
        self,
        on_wait: Callable[[LockWait], None] | None,
        waited: float,
        *,
        done: bool = False,
        acquired: bool = False,
    ) -> None:
        state = self.waiting
        if state is None:
            return
        state.waited_s, state.done, state.acquired = waited, done, acquired
        if done:
            self.waiting = None
        if on_wait is not None:
            on_wait(state)

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
