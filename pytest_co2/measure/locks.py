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

import contextlib
import math
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Device, Method

LOCK_DIR_NAME = "pytest-co2-locks"
LOCKED_METHODS = (Method.COUNTER, Method.POLLED)
DEFAULT_LOCK_TIMEOUT_S = 30.0
# While waiting for a busy lock: poll it this often (seconds), and report the wait this often.
_POLL_MIN_S = 0.005
_POLL_MAX_S = 0.1
WAIT_REPORT_EVERY_S = 1.0


def _uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def default_lock_dir() -> str:
    """``<tempdir>/pytest-co2-locks-<uid>``: one folder per user of this machine."""
    uid = _uid()
    name = LOCK_DIR_NAME if uid is None else f"{LOCK_DIR_NAME}-{uid}"
    return os.path.join(tempfile.gettempdir(), name)


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


# ----------------------------------------------------------------------------- the folder


class LockDirError(OSError):
    """A lock folder that must not be used (a symbolic link, someone else's); one line."""


def open_to_others(path: str) -> str | None:
    """A warning when the lock folder ``path`` (of this user) is writable by other users:
    they could remove or pre-create its lock files. None when private or absent, and for
    the default folder, which is made 0700 when it is opened."""
    if os.path.abspath(path) == os.path.abspath(default_lock_dir()):
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o022:
        return None
    return (
        f"lock folder {path!r} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
        "they can remove or pre-create its locks, so windows of two runs may overlap; run "
        f"`chmod go-w {path}` or give --co2-lock-dir a private folder"
    )


def check_lock_dir(path: str) -> str | None:
    """Why ``path`` cannot be a lock folder (one line), or None (also when it is absent)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"lock folder {path!r} cannot be inspected: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return (
            f"lock folder {path!r} is a symbolic link: refused (give --co2-lock-dir a real "
            "folder of yours)"
        )
    if not stat.S_ISDIR(st.st_mode):
        return f"lock folder {path!r} is not a folder"
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return (
            f"lock folder {path!r} belongs to uid {st.st_uid}, not to you (uid {uid}): refused "
            "(another user could hold or replace its locks; give --co2-lock-dir a folder of yours)"
        )
    return None


def open_lock_dir(path: str, *, private: bool = True) -> int:
    """Create ``path`` (mode 0700) if absent, check it and return an fd of it (``O_NOFOLLOW``).

    Raises :class:`LockDirError` for a symbolic link or a folder of another user. A folder of
    the user's that others may write to is made 0700 when ``private`` (the default folder).
    """
    parent = os.path.dirname(os.path.abspath(path))
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    problem = check_lock_dir(path)
    if problem is not None:
        raise LockDirError(problem)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:  # swapped for a link between the check and the open
        raise LockDirError(f"lock folder {path!r} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        uid = _uid()
        if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
            raise LockDirError(f"lock folder {path!r} changed while it was opened: refused")
        if private and st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_lock_file(dir_fd: int, name: str, where: str) -> int:
    """Open (create 0600) one lock file inside the folder; never through a link."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise LockDirError(
            f"lock file {os.path.join(where, name)!r} cannot be opened ({exc.strerror}): refused"
        ) from None
    st = os.fstat(fd)
    uid = _uid()
    problem = (
        "is not a regular file"
        if not stat.S_ISREG(st.st_mode)
        else f"belongs to uid {st.st_uid}, not to you: refused"
        if uid is not None and st.st_uid != uid
        else None
    )
    if problem is not None:
        os.close(fd)
        raise LockDirError(f"lock file {os.path.join(where, name)!r} {problem}")
    return fd


# ------------------------------------------------------------------------------- the lock


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
                        fd = _open_lock_file(dir_fd, name, self.lock_dir)
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
