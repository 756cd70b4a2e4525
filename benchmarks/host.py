"""Host facts the benchmarks act on: memory available, CPU contention, this process's RSS.

Every reader takes the file it reads as an argument (tests pass fakes) and returns None
where the file is absent or unreadable; the decisions are pure functions of the readings.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

GB = 1e9
#: CPU pressure ("some": the share of time runnable tasks waited for a CPU) or steal time
#: at or above this makes a load-sensitive relation inconclusive rather than failed.
LOADED_FRACTION = 0.10


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


# -- memory ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Bytes this process may still take, and where the figure comes from."""

    available_bytes: float
    source: str  # "MemAvailable" or "cgroup memory.max"


def mem_available(
    meminfo: str = "/proc/meminfo", cgroup_dir: str = "/sys/fs/cgroup"
) -> Memory | None:
    """The lower of ``MemAvailable`` and the cgroup's ``memory.max - memory.current``."""
    out: Memory | None = None
    text = _read(meminfo)
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            with contextlib.suppress(IndexError, ValueError):
                out = Memory(float(line.split()[1]) * 1024, "MemAvailable")
    limit = (_read(os.path.join(cgroup_dir, "memory.max")) or "").strip()
    used = (_read(os.path.join(cgroup_dir, "memory.current")) or "").strip()
    if limit.isdigit() and used.isdigit():
        room = float(int(limit) - int(used))
        if out is None or room < out.available_bytes:
            out = Memory(max(0.0, room), "cgroup memory.max")
    return out


def memory_skip_reason(need_bytes: float, held_bytes: float, memory: Memory | None) -> str | None:
    """Why a config that peaks at ``need_bytes`` RSS cannot run here (None: it can, or the
    memory available is unknown). ``held_bytes``: what this process holds already."""
    if memory is None:
        return None
    extra = max(0.0, need_bytes - held_bytes)
    if extra <= memory.available_bytes:
        return None
    return (
        f"not enough memory: needs about {need_bytes / GB:.1f} GB peak RSS "
        f"({extra / GB:.1f} GB more than this process holds), "
        f"{memory.available_bytes / GB:.1f} GB available ({memory.source})"
    )


def rss_bytes(status: str = "/proc/self/status", field: str = "VmRSS") -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak since start or the last reset) in bytes."""
    for line in (_read(status) or "").splitlines():
        if line.startswith(field + ":"):
            try:
                return float(line.split()[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


def reset_peak_rss(clear_refs: str = "/proc/self/clear_refs") -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux: write 5 to clear_refs); False where it fails."""
    try:
        with open(clear_refs, "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


# -- CPU contention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuCounters:
    """Cumulative counters at one moment: PSI "some" stall µs, steal and all jiffies."""

    t_s: float
    pressure_us: float | None
    steal: float | None
    total: float | None


def cpu_counters(
    t_s: float, pressure: str = "/proc/pressure/cpu", stat: str = "/proc/stat"
) -> CpuCounters:
    p = None
    for line in (_read(pressure) or "").splitlines():
        if line.startswith("some "):
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            try:
                p = float(fields["total"])
            except (KeyError, ValueError):
                p = None
    steal = total = None
    for line in (_read(stat) or "").splitlines():
        if line.startswith("cpu "):
            try:
                values = [float(v) for v in line.split()[1:]]
            except ValueError:
                break
            if len(values) >= 8:
                steal, total = values[7], sum(values[:8])
            break
    return CpuCounters(t_s, p, steal, total)


@dataclass(frozen=True)
class Contention:
    """CPU contention over an interval: PSI pressure and steal as fractions (None: unknown)."""

    pressure: float | None
    steal: float | None

    @property
    def loaded(self) -> bool | None:
        """True at LOADED_FRACTION or more of either; None when neither is known."""
        known = [x for x in (self.pressure, self.steal) if x is not None]
        if not known:
            return None
        return max(known) >= LOADED_FRACTION

    def describe(self) -> str:
        """``CPU pressure 45% (some), steal 1%`` / ``CPU pressure unknown (no /proc/pressure/cpu)``."""
        p = (
            f"CPU pressure {self.pressure:.0%} (some)"
            if self.pressure is not None
            else "CPU pressure unknown (no /proc/pressure/cpu)"
        )
        return p + (f", steal {self.steal:.0%}" if self.steal is not None else "")

    def worst(self, other: Contention) -> Contention:
        def hi(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else max(a, b)

        return Contention(hi(self.pressure, other.pressure), hi(self.steal, other.steal))

    def to_dict(self) -> dict[str, float | None]:
        return {"pressure": self.pressure, "steal": self.steal}


def contention(before: CpuCounters, after: CpuCounters) -> Contention:
    """Average contention between two readings (PSI µs over wall µs; steal over all jiffies)."""
    wall_us = (after.t_s - before.t_s) * 1e6
    pressure = None
    if before.pressure_us is not None and after.pressure_us is not None and wall_us > 0:
        pressure = min(1.0, max(0.0, (after.pressure_us - before.pressure_us) / wall_us))
    steal = None
    if None not in (before.steal, after.steal, before.total, after.total):
        jiffies = after.total - before.total  # type: ignore[operator]
        if jiffies > 0:
            steal = max(0.0, (after.steal - before.steal) / jiffies)  # type: ignore[operator]
    return Contention(pressure, steal)
