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
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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


@dataclass
class _Unlocked:
    note: str


@dataclass
class WindowGuard:
    """The meter's window hooks for a :class:`Policy`: lock, or only annotate.

    ``on_wait(LockWait)`` (optional) is called when a window starts waiting for a busy
    lock, about every second while it waits, and when the wait ends; ``lock.waiting`` holds
    the same state while a wait is in progress. After a wait timed out, later windows try
    the lock once without waiting until they get it again (a holder that never lets go costs
    one timeout, not one per window). :attr:`unlocked_windows` counts the windows measured
    without the lock; :meth:`summary` gives the line for the session summary.
    """

    policy: Policy
    on_wait: Callable[[LockWait], None] | None = None
    backend: Any = None  # its measured set is locked (by lock key), its window hooks called
    failure: str | None = None  # why locking failed for good, once it did
    unlocked_windows: int = 0
    timed_out: int = 0  # windows that waited the whole timeout
    waited_s: float = 0.0  # total wait of this process for locks
    windows: int = 0  # windows that ended
    lock: DeviceLock | None = field(init=False)
    _busy_since_timeout: bool = field(default=False, init=False)
    _windows: dict[int, float | _Unlocked] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        p = self.policy
        self.devices: tuple[str, ...] = p.devices
        self.lock = (
            DeviceLock(p.devices, p.lock_dir or default_lock_dir()) if p.mode == "lock" else None
        )
        self._hooked = window_parts(self.backend)
        if self.backend is not None and self.lock is not None:
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
        self.devices = tuple(keys)
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
        token = object()
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

    def to_dict(self) -> dict[str, Any]:
        """For the JSON session block (``session.exclusive.windows``)."""
        return {
            "unlocked_windows": self.unlocked_windows,
            "timed_out": self.timed_out,
            "waited_s": self.waited_s,
            "failure": self.failure,
        }


def window_parts(backend: Any) -> tuple[Any, ...]:
    """The parts of ``backend`` (itself, or a composite's parts) with window hooks
    (``window_enter``, ``window_exit``: the GPU backend's fine sampling)."""
    if backend is None:
        return ()
    parts = getattr(backend, "parts", None) or (backend,)
    return tuple(p for p in parts if callable(getattr(p, "window_enter", None)))


def lock_keys(backend: Any) -> dict[str, str]:
    """Device id -> lock key of the lockable devices ``backend`` measures now: a GPU's UUID
    (the same GPU in every process, whatever its index there), else the device id."""
    keys: dict[str, str] = {}
    for part in getattr(backend, "parts", None) or (backend,):
        keys.update(getattr(part, "lock_keys", None) or {})
    return {d.id: keys.get(d.id, d.id) for d in lockable_devices(backend.devices)}
