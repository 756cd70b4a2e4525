"""``rapl``: CPU package and DRAM energy from the Linux powercap tree (Intel RAPL, AMD Zen).

Layout (``/sys/class/powercap``)::

    intel-rapl:0/        name "package-0"   energy_uj  max_energy_range_uj
    intel-rapl:0:0/      name "core"        (inside package-0: never added to it)
    intel-rapl:0:1/      name "dram"        (DRAM attached to package 0: counted)
    intel-rapl:1/        name "package-1"
    intel-rapl-mmio:0/   name "package-0"   (a second view of package 0: ignored)

Each package is counted once, plus its DRAM domain when present. ``core``/``uncore``
sub-domains are part of their package and are never added; ``psys`` (the whole platform
on some laptops) contains the packages and is skipped too.

``energy_uj`` is a wrapping counter: it restarts from 0 after ``max_energy_range_uj``.
The backend keeps the last raw value per domain and adds ``max_range - last + new``
when the counter went down. A single wrap between two reads is recovered this way; two
are not, so a daemon thread re-reads all domains more often than the shortest possible
wrap period (computed from ``max_energy_range_uj`` at :data:`MAX_POWER_W`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import Backend, BackendError, BackendUnavailable, Device, Method

DEFAULT_ROOT = "/sys/class/powercap"

# A conservative upper bound on the power of one RAPL domain (a package or its DRAM),
# used only to bound how fast a counter can wrap. Server sockets today are <= ~400 W TDP.
MAX_POWER_W = 500.0
# The poller never sleeps longer than this, whatever the wrap period.
MAX_POLL_INTERVAL_S = 10.0
# ... nor shorter than this (guards against a broken max_energy_range_uj).
MIN_POLL_INTERVAL_S = 0.001
# RAPL counters update about every millisecond.
RAPL_UPDATE_PERIOD_S = 0.001

_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def permission_fix(root: str | os.PathLike[str]) -> str:
    """The message for a RAPL tree that exists but cannot be read."""
    return (
        f"RAPL counters under {root} are not readable (permission denied): run "
        f"`sudo chmod -R a+r {root}/intel-rapl:*/energy_uj` "
        f"(and `{root}/intel-rapl:*:*/energy_uj` for DRAM) or run as root"
    )


@dataclass(frozen=True)
class RaplDomain:
    """One counted powercap domain."""

    path: Path  # the domain directory
    name: str  # "package-0", "dram"
    kind: str  # "cpu" | "dram"
    package: int  # the N of intel-rapl:N
    max_range_uj: int  # counter wraps after this many microjoules (0: unknown)


def _read_text(path: Path) -> str:
    with open(path) as f:
        return f.read().strip()


def discover_domains(root: str | os.PathLike[str]) -> list[RaplDomain]:
    """The domains to count under ``root``: packages once each, plus DRAM; never core/uncore."""
    base = Path(root)
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return []
    domains: list[RaplDomain] = []
    for entry in entries:
        top, sub = _TOP.match(entry), _SUB.match(entry)
        if not (top or sub):
            continue  # "intel-rapl" (the control type), "intel-rapl-mmio:*" (duplicate view)
        path = base / entry
        try:
            name = _read_text(path / "name")
        except OSError:
            continue
        package = int((top or sub).group(1))  # type: ignore[union-attr]
        if top and name.startswith("package"):
            kind = "cpu"
        elif name == "dram":  # a sub-domain of a package, or top-level on some servers
            kind = "dram"
        else:
            continue  # core, uncore (inside their package), psys (contains the packages)
        try:
            max_range_uj = int(_read_text(path / "max_energy_range_uj"))
        except (OSError, ValueError):
            max_range_uj = 0
        domains.append(RaplDomain(path, name, kind, package, max_range_uj))
    # packages first, then DRAM, each by package number: a stable device order
    domains.sort(key=lambda d: (d.kind != "cpu", d.package, d.name))
    return domains


def default_poll_interval_s(
    domains: Sequence[RaplDomain], max_power_w: float = MAX_POWER_W
) -> float:
    """A quarter of the shortest wrap period at ``max_power_w``, capped to [1 ms, 10 s]."""
    periods = [d.max_range_uj * 1e-6 / max_power_w for d in domains if d.max_range_uj > 0]
    if not periods:
        return MAX_POLL_INTERVAL_S
    return max(MIN_POLL_INTERVAL_S, min(min(periods) / 4.0, MAX_POLL_INTERVAL_S))


class RaplBackend(Backend):
    """Cumulative joules per RAPL package and DRAM domain, wraparound-corrected."""

    name = "rapl"

    def __init__(
        self,
        root: str | os.PathLike[str] = DEFAULT_ROOT,
        poll_interval_s: float | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.domains = tuple(discover_domains(self.root))
        if not self.domains:
            raise BackendUnavailable(f"no RAPL powercap domains under {self.root}")
        if poll_interval_s is not None and not poll_interval_s > 0:
            raise BackendError(
                f"invalid RAPL poll interval {poll_interval_s!r}: expected seconds > 0"
            )
        self.poll_interval_s = (
            float(poll_interval_s)
            if poll_interval_s is not None
            else default_poll_interval_s(self.domains)
        )
        self._lock = threading.Lock()
        self._fds: list[int] = []
        try:
            for d in self.domains:
                self._fds.append(self._open_uj(d.path / "energy_uj"))
            first = [self._first_read(fd) for fd in self._fds]
        except PermissionError:
            self._close_fds()
            raise BackendError(permission_fix(self.root)) from None
        except (OSError, ValueError) as exc:
            self._close_fds()
            raise BackendError(
                f"RAPL counters under {self.root} could not be read: {exc}"
            ) from None
        self._last_uj = first
        self._total_uj = [0] * len(first)
        self._max_uj = [d.max_range_uj for d in self.domains]
        self.devices = tuple(
            Device(
                id=f"cpu:{d.name}" if d.kind == "cpu" else f"dram:{d.package}",
                kind=d.kind,
                label=f"RAPL {d.name}" if d.kind == "cpu" else f"RAPL dram (package-{d.package})",
                method=Method.COUNTER,
                update_period_s=RAPL_UPDATE_PERIOD_S,
                shared=True,
            )
            for d in self.domains
        )
        if any(m <= 0 for m in self._max_uj):
            self.notes.append(
                "RAPL: max_energy_range_uj is missing for some domains; a counter wrap there "
                "cannot be corrected"
            )
        self._stop = threading.Event()
        # The thread holds only a weak reference, so a forgotten backend can be collected.
        self._thread: threading.Thread | None = threading.Thread(
            target=_poll_loop,
            args=(weakref.ref(self), self._stop, self.poll_interval_s),
            name="pytest-co2-rapl-poller",
            daemon=True,
        )
        self._thread.start()

    # -- I/O, kept small so tests can replace them -------------------------------------
    @staticmethod
    def _open_uj(path: Path) -> int:
        return os.open(path, os.O_RDONLY)

    @staticmethod
    def _read_uj(fd: int) -> int:
        """One raw counter value. ``pread`` at offset 0 re-reads the sysfs attribute."""
        return int(os.pread(fd, 32, 0))

    def _first_read(self, fd: int) -> int:
        for _ in range(4):  # a file being rewritten can read empty (fake trees only)
            try:
                return self._read_uj(fd)
            except ValueError:
                time.sleep(0.0005)
        return self._read_uj(fd)

    # -- accounting ----------------------------------------------------------------------
    def _update_locked(self) -> None:
        last, total, max_uj = self._last_uj, self._total_uj, self._max_uj
        for i, fd in enumerate(self._fds):
            try:
                raw = self._read_uj(fd)
            except ValueError:  # a torn read of a file being rewritten (fake trees only)
                continue
            delta = raw - last[i]
            if delta < 0:
                # wrapped once (the poller makes sure it cannot wrap twice unseen)
                # (with no known range, assume a reset to 0)
                delta = max_uj[i] - last[i] + raw if max_uj[i] > 0 else raw
            total[i] += delta
            last[i] = raw

    def _poll_once(self) -> None:
        try:
            with self._lock:
                if self._fds:
                    self._update_locked()
        except OSError:
            pass  # read_j reports persistent failures; the poller only keeps up

    def read_j(self) -> Sequence[float]:
        with self._lock:
            if not self._fds:
                raise BackendError("the RAPL backend is closed")
            try:
                self._update_locked()
            except PermissionError:
                raise BackendError(permission_fix(self.root)) from None
            except OSError as exc:
                raise BackendError(
                    f"reading RAPL counters under {self.root} failed: {exc}"
                ) from None
            return [t / 1e6 for t in self._total_uj]  # division: whole joules stay exact

    def _close_fds(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def close(self) -> None:
        thread, self._thread = getattr(self, "_thread", None), None
        if thread is not None:
            self._stop.set()
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        if hasattr(self, "_lock"):
            with self._lock:
                self._close_fds()

    def __del__(self) -> None:  # a forgotten close() must not leak fds or a thread
        with contextlib.suppress(Exception):
            self.close()


def _poll_loop(ref: weakref.ref[RaplBackend], stop: threading.Event, interval_s: float) -> None:
    """Read all counters every ``interval_s`` so no wrap goes unseen; ends on ``stop``."""
    while not stop.wait(interval_s):
        backend = ref()
        if backend is None:
            return
        backend._poll_once()
        del backend
