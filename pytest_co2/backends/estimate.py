"""``estimate``: energy of this process from its CPU time, per-thread server power and wall time.

For machines without readable energy counters (VMs, containers, CI runners). The model, per
hardware thread (a vCPU in a VM), with watts measured by SPECpower_ssj2008 on whole servers
at the wall (memory, fans and power supply included):

    energy = CPU seconds x (full - idle) W/thread + idle W/thread x CPUs held x wall seconds

CPU seconds: all threads of the process plus its finished, waited-for children. CPUs held:
the CPUs the process may use, min(visible CPUs, affinity mask, cgroup CPU quota), possibly
fractional; their idle power is the share of the machine the job occupies whether it is busy
or not, so the figure means what a counter means (idle included) and ``--co2-subtract-idle``
leaves the dynamic part. The same holds on bare metal: there the CPUs held are real threads.

The watts per thread come from :mod:`.cpu_power` (the user's figures, a TDP, or the shipped
SPECpower table by CPU model or microarchitecture).

Memory: SPECpower watts include the tested server's memory, so the old RSS x 0.375 W/GB
term is off by default (``memory_w_per_gb=0``) to avoid counting it twice; the
``memory:process`` device stays, reading 0, unless a figure is passed.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .base import Backend, BackendError, Device, Method, warn
from .cpu_allowance import CpuAllowance, cpu_allowance
from .cpu_power import USER_TDP_SOURCE, PerThreadPower, check_watts_per_thread, resolve_power
from .cpuinfo import DEFAULT_ROOT, CpuInfo, host_root, read_cpuinfo
from .virtualization import detect_vm, in_container

try:  # POSIX only; on Windows the children term comes from os.times (0 there)
    import resource as _resource
except ImportError:  # pragma: no cover - Windows
    _resource = None  # type: ignore[assignment]

BYTES_PER_GB = 2**30
# Off by default: SPECpower's whole-server watts include memory. A figure such as 0.375 W/GB
# (3 W per 8 GB of DDR3/DDR4, Crucial's data sheet heuristic) can still be passed.
MEMORY_W_PER_GB = 0.0


# The RSS is re-read at most this often (a /proc read costs ~10 us; read_j must not).
RSS_REFRESH_S = 0.1


_WARNED: set[str] = set()  # warn once per process about an unknown CPU


# -- process CPU time and RSS ----------------------------------------------------------------
def process_cpu_s() -> float:
    """CPU seconds of this process (all threads) plus its finished, waited-for children."""
    if _resource is not None:
        ru = _resource.getrusage(_resource.RUSAGE_CHILDREN)
        return time.process_time() + ru.ru_utime + ru.ru_stime
    t = os.times()  # pragma: no cover - Windows
    return t.user + t.system + t.children_user + t.children_system  # pragma: no cover


def cpu_time_resolution_s() -> float:
    """Resolution of :func:`process_cpu_s`: the finer of process_time and clock ticks.

    ``time.process_time`` (CLOCK_PROCESS_CPUTIME_ID, nanoseconds) is normally far finer
    than ``os.times`` (1 / SC_CLK_TCK, 10 ms at 100 Hz); children's times come from
    ``getrusage`` in microseconds, which bounds the result below.
    """
    resolution = time.get_clock_info("process_time").resolution
    try:
        ticks = 1.0 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        ticks = 0.01
    return max(min(resolution, ticks), 1e-6)


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes_proc() -> int:
    """Resident set size of this process from /proc/self/statm (pages x page size)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_BYTES


def rss_bytes_peak() -> int:
    """Peak RSS from getrusage (no /proc, e.g. macOS): an upper bound of the current RSS."""
    if _resource is None:  # pragma: no cover - Windows
        return 0
    peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform.system() == "Darwin" else peak * 1024)


class EstimateBackend(Backend):
    """Process energy from CPU time and the per-thread power of SPECpower servers.

    Devices: ``cpu:process`` (the model above) and ``memory:process`` (RSS x
    ``memory_w_per_gb`` x wall time; 0 by default, see the module docstring).

    ``watts_per_thread`` (idle, full) and ``cpu_tdp_w`` are the user's overrides;
    ``n_cpus`` the threads of one package for the TDP mode; ``cpus_held`` replaces the CPUs
    the process may use; ``root`` is where ``proc/`` and ``sys/`` are read (tests pass fake
    trees; None: :func:`~.cpuinfo.host_root`). ``cpu_model`` replaces the model name read
    from ``/proc/cpuinfo``.
    ``process_times``, ``rss_bytes`` and ``clock`` replace the process's CPU seconds, RSS in
    bytes and the wall clock. :meth:`read_j` takes no lock: call it from one thread.
    """

    name = "estimate"

    def __init__(
        self,
        cpu_tdp_w: float | None = None,
        memory_w_per_gb: float = MEMORY_W_PER_GB,
        cpu_model: str | None = None,
        process_times: Callable[[], float] | None = None,
        rss_bytes: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        n_cpus: int | None = None,
        *,
        watts_per_thread: tuple[float, float] | None = None,
        cpus_held: float | None = None,
        cpu_share: float = 1.0,
        root: str | Path | None = None,
    ) -> None:
        super().__init__()
        watts_per_thread = _check_arguments(
            cpu_tdp_w, memory_w_per_gb, n_cpus, cpus_held, watts_per_thread
        )
        self.watts_override = watts_per_thread  # the user's IDLE,FULL, if given
        self._root = root = host_root() if root is None else Path(root)
        cpu = read_cpuinfo(root / "proc" / "cpuinfo")
        if cpu.problem:
            self.notes.append(f"CPU identification: {cpu.problem}; using the next fallback")
        if cpu_model is not None:
            cpu = replace(cpu, model_name=" ".join(cpu_model.split()))
        self.cpu_info = cpu
        self.virtualization = vm = detect_vm(cpu, root / "sys" / "class" / "dmi" / "id")
        self.allowance: CpuAllowance | None = None
        if cpus_held is None:
            self.allowance = cpu_allowance(root, visible=cpu.logical_cpus)  # cpuinfo read once
            self.notes.extend(f"CPUs held: {n}; using the next limit" for n in self.allowance.notes)
            cpus_held = self.allowance.cpus
        # Several processes of one run (pytest-xdist workers, DDP ranks) share the CPUs they
        # may use: each is charged its share of their idle power, so the run counts it once.
        self.cpu_share = float(cpu_share)
        self.cpus_held = float(cpus_held) * self.cpu_share
        self.power = power = resolve_power(
            cpu,
            vm,
            watts_per_thread=watts_per_thread,
            tdp_w=cpu_tdp_w,
            threads_per_package=float(n_cpus) if n_cpus is not None else None,
        )
        self.idle_w_per_thread = power.idle_w
        self.full_w_per_thread = power.full_w
        # joules per CPU-second above idle, and watts of the idle CPUs held
        self.dynamic_w_per_thread = power.full_w - power.idle_w
        self.idle_w_held = power.idle_w * self.cpus_held
        self.cpu_w_per_thread = power.full_w  # what one busy thread draws in all
        self.wall_w = self.idle_w_held  # charged per wall second, busy or not
        self.reads_never_block = True  # /proc/self and the clock
        self.work_basis = (
            f"CPU seconds x {_w(self.dynamic_w_per_thread)} W dynamic per thread; the idle "
            f"share ({_w(self.idle_w_held)} W x wall time) left out"
        )
        self._legacy_attributes(cpu, power, cpu_tdp_w, n_cpus)

        self.basis = self._basis()
        self.notes[:0] = [self.basis, *power.notes]
        self.notes.append(f"machine: {vm.evidence}")
        if power.spread:
            self.notes.append(
                f"SPECpower spread: {power.spread} (ssj2008, whole server at the wall)"
            )
        if power.unknown and power.cpu not in _WARNED:
            _WARNED.add(power.cpu)
            warn(f"CPU estimate for an {power.cpu}: {power.source}")

        self.memory_w_per_gb = float(memory_w_per_gb)
        self._process_times = process_times or process_cpu_s
        self._rss_bytes = self._rss_reader(rss_bytes)
        self._clock = clock
        self.devices = (
            Device(
                id="cpu:process",
                kind="cpu",
                label=self.basis,
                method=Method.ESTIMATED,
                update_period_s=cpu_time_resolution_s() if process_times is None else 0.0,
                shared=False,
            ),
            Device(
                id="memory:process",
                kind="memory",
                label=self._memory_label(),
                method=Method.ESTIMATED,
                update_period_s=0.0,
                shared=False,
            ),
        )
        self._cpu0_s = self._process_times()
        now = self._clock()
        self._t0 = now
        self._mem_acc_j = 0.0  # memory energy up to the start of the current segment
        self._seg_t = now  # start of the current segment
        self._mem_power_w = self._rss_power_w()

    def _legacy_attributes(
        self, cpu: CpuInfo, power: PerThreadPower, cpu_tdp_w: float | None, n_cpus: int | None
    ) -> None:
        """``cpu_model_name``, ``n_cpus``, ``tdp_w``, ``tdp_source``: read by the plugin today;
        ``tdp_from_user``: whether ``tdp_w`` is the user's ``--co2-cpu-tdp``.

        Without ``--co2-cpu-tdp``, ``tdp_w`` is not a TDP but the full-load watts per thread
        x ``n_cpus`` (the threads of one package where known, else the CPUs seen).
        """
        self.cpu_model_name = cpu.model_name or platform.processor().strip() or "unknown CPU"
        if n_cpus is not None:
            self.n_cpus = int(n_cpus)
        elif power.threads_per_package:
            self.n_cpus = max(round(power.threads_per_package), 1)
        else:
            self.n_cpus = cpu.siblings or cpu.logical_cpus or os.cpu_count() or 1
        self.tdp_from_user = cpu_tdp_w is not None
        if cpu_tdp_w is not None:
            self.tdp_w, self.tdp_source = float(cpu_tdp_w), USER_TDP_SOURCE
        else:
            self.tdp_w = power.full_w * self.n_cpus
            self.tdp_source = f"{power.source} x {self.n_cpus} threads, not a TDP"

    def _rss_reader(self, rss_bytes: Callable[[], int] | None) -> Callable[[], int]:
        if rss_bytes is not None:
            return rss_bytes
        try:
            rss_bytes_proc()
        except (OSError, ValueError, IndexError):
            self.notes.append("memory: /proc/self/statm is unreadable; using the peak RSS")
            return rss_bytes_peak
        return rss_bytes_proc

    def _memory_label(self) -> str:
        if self.memory_w_per_gb:
            label = f"process RSS x {self.memory_w_per_gb:g} W/GB"
            self.notes.append(f"memory: {label}, RSS sampled at most every {RSS_REFRESH_S:g} s")
            return label
        self.notes.append(
            "memory: in the CPU figure (SPECpower watts are whole servers), not counted again"
        )
        return "process memory: in the CPU figure (SPECpower whole-server watts)"

    def _held_text(self) -> str:
        if self.cpu_share != 1.0:
            whole = self.cpus_held / self.cpu_share
            return f"{self.cpus_held:.3g} of {whole:g} CPUs held (this process's share)"
        held = f"{self.cpus_held:g}"
        a = self.allowance
        if a is not None and a.limited_by == "quota":
            return f"{held} CPUs held ({a.quota_source} of {a.visible} visible)"
        if a is not None and a.limited_by == "affinity":
            return f"{held} threads held (affinity mask of {a.visible} visible)"
        unit = "vCPU" if self.virtualization.is_vm else "thread"
        return f"{held} {unit}{'' if self.cpus_held == 1 else 's'} held"

    def _basis(self) -> str:
        vm, p = self.virtualization, self.power
        where = vm.label
        a = self.allowance
        if (a is not None and a.limited_by == "quota") or in_container(self._root):
            where = f"container, {where}"
        return (
            f"estimated: {where}, {p.cpu}, {p.source}: {_w(p.idle_w)} W idle / "
            f"{_w(p.full_w)} W full per thread, {self._held_text()}"
        )

    def header_line(self) -> str:
        """One line for the report header, e.g. ``CPU estimated: KVM guest, AMD Zen 5 ...``."""
        return f"CPU {self.basis}"

    def _rss_power_w(self) -> float:
        if not self.memory_w_per_gb:
            return 0.0
        return self._rss_bytes() / BYTES_PER_GB * self.memory_w_per_gb

    def read_j(self) -> Sequence[float]:
        now = self._clock()
        cpu_j = (self._process_times() - self._cpu0_s) * self.dynamic_w_per_thread + (
            self.idle_w_held * (now - self._t0)
        )
        dt = now - self._seg_t
        if dt >= RSS_REFRESH_S:  # close the segment, start a new one at the current RSS
            self._mem_acc_j += self._mem_power_w * dt
            self._seg_t = now
            self._mem_power_w = self._rss_power_w()
            dt = 0.0
        return (cpu_j, self._mem_acc_j + self._mem_power_w * dt)


def _w(watts: float) -> str:
    """Watts in a label: two decimals below 10 W (0.22, 1.18), else as given."""
    return f"{watts:.2f}" if watts < 10 else f"{watts:g}"


def _check_arguments(
    cpu_tdp_w: float | None,
    memory_w_per_gb: float,
    n_cpus: int | None,
    cpus_held: float | None,
    watts_per_thread: tuple[float, float] | None,
) -> tuple[float, float] | None:
    """Raise :class:`BackendError` for a bad argument; return the checked watts per thread."""
    if cpu_tdp_w is not None and not (math.isfinite(cpu_tdp_w) and cpu_tdp_w > 0):
        raise BackendError(f"invalid CPU TDP {cpu_tdp_w!r}: expected watts > 0, e.g. 65")
    if not (math.isfinite(memory_w_per_gb) and memory_w_per_gb >= 0):
        raise BackendError(f"invalid memory power {memory_w_per_gb!r}: expected W/GB >= 0")
    if n_cpus is not None and n_cpus < 1:
        raise BackendError(f"invalid thread count {n_cpus!r}: expected >= 1")
    if cpus_held is not None and not (math.isfinite(cpus_held) and cpus_held > 0):
        raise BackendError(f"invalid CPUs held {cpus_held!r}: expected a number > 0")
    if watts_per_thread is None:
        return None
    try:
        return check_watts_per_thread(watts_per_thread)
    except ValueError as exc:
        raise BackendError(str(exc)) from None


def cpu_model(root: str | Path = DEFAULT_ROOT) -> str:
    """The CPU model string: ``/proc/cpuinfo`` ``model name``, else ``platform.processor()``."""
    name = read_cpuinfo(Path(root) / "proc" / "cpuinfo").model_name
    return name or platform.processor().strip() or "unknown CPU"
