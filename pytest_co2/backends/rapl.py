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
wrap period (computed from ``max_energy_range_uj`` at :data:`MAX_POWER_W`). A counter
that goes down by more than a wrap can explain (a glitch, a reset) adds 0 J, with a note.

Hardware faults never raise from :meth:`RaplBackend.read_j`: a domain whose read fails
(EIO, ENODEV, permission revoked), whose file vanishes (seen by the poller) or that keeps
giving something other than digits is frozen at
its last good value; the fault goes to ``notes`` and a warning once, to ``faults`` every
time, and the domain to :attr:`RaplBackend.failed`. The other domains go on.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from ..frozen import Frozen, record
from .base import Backend, BackendError, BackendUnavailable, Device, Method, warn
from .gpu_presence import RAPL_ROOT, rapl_root

DEFAULT_ROOT = RAPL_ROOT


def _default_root() -> Path:
    """:data:`DEFAULT_ROOT` under :func:`~.cpuinfo.host_root` (``/`` unless tests fake one)."""
    return Path(rapl_root())


# A conservative upper bound on the power of one RAPL domain (a package or its DRAM),
# used only to bound how fast a counter can wrap. Server sockets today are <= ~400 W TDP.
MAX_POWER_W = 500.0
# The poller never sleeps longer than this, whatever the wrap period.
MAX_POLL_INTERVAL_S = 10.0
# ... nor shorter than this (guards against a broken max_energy_range_uj).
MIN_POLL_INTERVAL_S = 0.001
# RAPL counters update about every millisecond.
RAPL_UPDATE_PERIOD_S = 0.001
# Unparsable reads are retried (0.5 ms apart) for this long before they count as a fault
# (a torn read of a file being rewritten, in fake trees; sysfs gives whole values).
UNPARSABLE_RETRIES = 4  # at open
UNPARSABLE_RETRY_S = 0.05  # later

_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def permission_fix(root: str | os.PathLike[str]) -> str:
    """The message for a RAPL tree that exists but cannot be read."""
    return (
        f"RAPL counters under {root} are not readable (permission denied): run "
        f"`sudo chmod -R a+r {root}/intel-rapl:*/energy_uj` "
        f"(and `{root}/intel-rapl:*:*/energy_uj` for DRAM) or run as root"
    )


@record
class RaplDomain(Frozen):
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
        root: str | os.PathLike[str] | None = None,
        poll_interval_s: float | None = None,
    ) -> None:
        super().__init__()
        # None: DEFAULT_ROOT, under the fake machine's "/" where the test suite names one
        self.root = Path(root) if root is not None else _default_root()
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
        self._last_t = [time.perf_counter()] * len(first)
        self._total_uj = [0] * len(first)
        self._failed: list[str | None] = [None] * len(first)
        self.faults: list[str] = []  # every fault, in order (a window can take its own)
        self._noted: set[tuple[int, str]] = set()
        self._pending_warnings: list[str] = []
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
        return os.open(path, os.O_RDONLY)  # not inherited by child processes (PEP 446)

    @staticmethod
    def _read_uj(fd: int) -> int:
        """One raw counter value. ``pread`` at offset 0 re-reads the sysfs attribute.

        Raises ValueError for anything but ASCII digits (an empty or torn read, garbage).
        """
        raw = os.pread(fd, 32, 0)
        text = raw.strip()
        if not text.isdigit():  # bytes.isdigit: ASCII digits only, no sign, no "1_000"
            raise ValueError(f"unparsable reading {raw[:24]!r}")
        return int(text)

    def _first_read(self, fd: int) -> int:
        for _ in range(UNPARSABLE_RETRIES):  # a file being rewritten can read empty (fake trees)
            try:
                return self._read_uj(fd)
            except ValueError:
                time.sleep(0.0005)
        return self._read_uj(fd)

    # -- accounting ----------------------------------------------------------------------
    def _read_domain(self, i: int) -> int | str:
        """The raw value of domain ``i``, or why it cannot be read (a hardware fault)."""
        deadline = time.perf_counter() + UNPARSABLE_RETRY_S
        while True:
            try:
                return self._read_uj(self._fds[i])
            except PermissionError:
                return "reading failed (permission denied): " + permission_fix(self.root)
            except OSError as exc:  # EIO, ENODEV (the device went away), ...
                return f"reading failed ({exc.strerror or exc})"
            except ValueError as exc:  # a torn read is retried, lasting garbage is a fault
                if time.perf_counter() >= deadline:
                    return f"{exc} for {UNPARSABLE_RETRY_S * 1e3:g} ms"
                time.sleep(0.0005)

    def _update_locked(self) -> None:
        last, total, last_t = self._last_uj, self._total_uj, self._last_t
        for i in range(len(self._fds)):
            if self._failed[i] is not None:
                continue  # frozen at its last good reading
            raw = self._read_domain(i)
            now = time.perf_counter()
            if isinstance(raw, str):
                self._fail(i, raw)
                continue
            delta = raw - last[i]
            if delta < 0:
                delta = self._backwards(i, last[i], raw, now - last_t[i])
            total[i] += delta
            last[i], last_t[i] = raw, now

    def _backwards(self, i: int, last: int, raw: int, elapsed_s: float) -> int:
        """The energy behind a counter that went down: one wrap, or 0 J (and a note) if implausible."""
        max_uj = self._max_uj[i]
        possible_uj = MAX_POWER_W * elapsed_s * 1e6  # the most the domain can use meanwhile
        if max_uj > 0 and last <= max_uj:  # (raw < last here)
            wrapped = max_uj - last + raw
            # the poller reads at least 4x per wrap period: a real wrap adds well under half
            if wrapped <= max_uj // 2 or wrapped <= possible_uj:
                return wrapped
        elif max_uj <= 0 and raw <= possible_uj:
            return raw  # no known range: a restart from 0 counts what it shows since
        self._fault(
            i,
            f"the counter went backwards ({last} -> {raw} uJ) without a plausible wrap; "
            "no energy is counted for that interval",
            once_key="backwards",
        )
        return 0

    def _fail(self, i: int, why: str) -> None:
        self._failed[i] = why
        self._fault(
            i,
            f"{why}; its energy is frozen at the last good reading "
            f"({self._total_uj[i] / 1e6:.6g} J) and not counted after that",
            once_key="failed",
        )

    def _fault(self, i: int, what: str, once_key: str) -> None:
        """Record a fault of domain ``i``: every event in ``faults``, the first of a kind in
        ``notes`` and as a warning (given from the next ``read_j``, on the caller's thread)."""
        message = f"{self.devices[i].label}: {what}"
        self.faults.append(message)
        if (i, once_key) not in self._noted:
            self._noted.add((i, once_key))
            self.notes.append(message)
            self._pending_warnings.append(f"pytest-co2: {message}")

    def _poll_once(self) -> None:
        with contextlib.suppress(Exception), self._lock:  # the poller only keeps up
            if self._fds:
                self._check_present_locked()
                self._update_locked()

    def _check_present_locked(self) -> None:
        """Fail a domain whose ``energy_uj`` vanished or was replaced: an open fd would keep
        reading the old file, a silent constant (the poller checks; ``read_j`` stays cheap)."""
        for i, d in enumerate(self.domains):
            if self._failed[i] is not None:
                continue
            path = d.path / "energy_uj"
            try:
                now, opened = os.stat(path), os.fstat(self._fds[i])
            except FileNotFoundError:
                self._fail(i, f"{path} vanished")
                continue
            except OSError:
                continue  # a read of it will say what is wrong
            if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
                self._fail(i, f"{path} was replaced by another file")

    @property
    def failed(self) -> dict[str, str]:
        """Device id -> why, for the devices whose readings are frozen after a fault."""
        return {
            d.id: why for d, why in zip(self.devices, self._failed, strict=True) if why is not None
        }

    def read_j(self) -> Sequence[float]:
        """Cumulative joules per domain. Never raises for a hardware fault: the domain's
        reading freezes (see :attr:`failed`, ``notes``, ``faults``) and the others go on."""
        with self._lock:
            if not self._fds:
                raise BackendError("the RAPL backend is closed")
            self._update_locked()
            out = [t / 1e6 for t in self._total_uj]  # division: whole joules stay exact
            pending, self._pending_warnings = self._pending_warnings, []
        for message in pending:
            warn(message)
        return out

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
