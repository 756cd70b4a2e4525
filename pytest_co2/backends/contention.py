"""How contended the machine is: CPU pressure, steal time, run queue, this process's waits.

Read from plain files under a ``root`` folder (``/`` by default; tests pass fake trees):

- ``proc/pressure/cpu``: the ``some`` line's ``total`` (microseconds during which at least
  one runnable task of the machine, or of the cgroup, waited for a CPU; Linux PSI);
- ``proc/stat``: the ``cpu`` line's ticks (steal is its 8th field: time the hypervisor ran
  another guest on our vCPUs) and ``procs_running`` (the run queue now);
- ``proc/<pid>/task/*/schedstat``: per thread of this process, nanoseconds on a CPU and
  nanoseconds spent runnable but waiting for one (the scheduler's run delay).

Every field is None where its file is missing or unreadable (macOS, a kernel without PSI or
schedstats): unknown, never "quiet". One snapshot costs a few /proc reads (about 20 us per
thread): the meter takes one at the start and one at the end of a measurement, not per step.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from ..frozen import Frozen, record

DEFAULT_ROOT = "/"


@record
class Snapshot(Frozen):
    """Cumulative counters at one instant (``wall_s`` on the caller's clock)."""

    wall_s: float
    pressure_some_us: int | None = None  # PSI cpu "some" total
    steal_ticks: int | None = None  # /proc/stat cpu steal
    total_ticks: int | None = None  # /proc/stat cpu, all fields but guest (counted in user)
    procs_running: int | None = None  # /proc/stat, this process's running threads included
    cpus: int | None = None  # the cpuN lines of /proc/stat (online CPUs)
    # per thread id: (ns on a CPU, ns waiting for a CPU); empty when schedstat is unreadable
    threads: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    main_thread: str | None = None  # the thread id of the process's main thread


def _read(path: str) -> bytes | None:
    """The bytes of a small /proc file (at most 1 MiB), None when unreadable. Plain
    ``os.read`` on a string path, parsed as bytes: a snapshot reads three or four of these,
    and a decoded file object costs several times as much."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks, size = [], 0
        while size < 1 << 20:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _line(data: bytes, prefix: bytes) -> bytes | None:
    """The rest of the line of ``data`` that starts with ``prefix`` (the kernel writes each
    once: the first line, else the last such); None if none. Found with ``bytes.rfind``: a
    snapshot splits no line it does not need, and ``procs_running`` is near the end."""
    if data.startswith(prefix):
        start = len(prefix)
    else:
        at = data.rfind(b"\n" + prefix)
        if at < 0:
            return None
        start = at + 1 + len(prefix)
    end = data.find(b"\n", start)
    return data[start:] if end < 0 else data[start:end]


def _pressure(data: bytes | None) -> int | None:
    """The ``some`` total of ``proc/pressure/cpu`` (microseconds), None if unreadable."""
    line = _line(data or b"", b"some ")
    for part in () if line is None else line.split():
        if part[:6] == b"total=" and part[6:].isdigit():
            return int(part[6:])
    return None


def _stat(data: bytes | None) -> tuple[int | None, int | None, int | None, int | None]:
    """(steal ticks, total ticks, procs_running, CPUs) from ``proc/stat``; None where absent.

    Total: user nice system idle iowait irq softirq steal (guest and guest_nice are already
    inside user and nice). Only the lines needed are split (the file has one line per CPU
    and a long ``intr`` line); the CPUs are its ``cpuN`` lines: every line that starts with
    ``cpu`` but the ``cpu`` total's (the kernel writes no other).
    """
    data = data or b""
    steal = total = running = None
    line = _line(data, b"cpu ")
    if line is not None:
        parts = line.split(None, 8)[:8]
        if len(parts) == 8 and b"".join(parts).isdigit():
            ticks = [*map(int, parts)]
            steal, total = ticks[7], sum(ticks)
    line = _line(data, b"procs_running ")
    if line is not None and line.strip().isdigit():
        running = int(line)
    cpus = (
        data.count(b"\ncpu") - data.count(b"\ncpu ") + (data[:3] == b"cpu" and data[3:4].isdigit())
    )
    return steal, total, running, cpus or None


def _threads(task: str) -> dict[str, tuple[int, int]]:
    """Per thread of the process whose ``task`` folder this is: (ns on a CPU, ns waiting
    for one) from schedstat."""
    try:
        tids = os.listdir(task)
    except OSError:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for tid in tids:
        fields = (_read(f"{task}/{tid}/schedstat") or b"").split(None, 2)
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            out[tid] = (int(fields[0]), int(fields[1]))
    return out


@functools.lru_cache(maxsize=8)
def _paths(root: str | Path, pid: int) -> tuple[str, str, str, str]:
    """The files of a snapshot under ``root`` for process ``pid``, joined once."""
    return (
        os.path.join(root, "proc/stat"),
        os.path.join(root, "proc/pressure/cpu"),
        os.path.join(root, "proc", str(pid), "task"),
        str(pid),
    )


def read_snapshot(
    wall_s: float, root: str | Path = DEFAULT_ROOT, pid: int | None = None
) -> Snapshot:
    """A :class:`Snapshot` of the machine and of process ``pid`` (default: this one)."""
    stat, pressure, task, pid_text = _paths(root, os.getpid() if pid is None else pid)
    steal, total, running, cpus = _stat(_read(stat))
    return Snapshot(
        wall_s=wall_s,
        pressure_some_us=_pressure(_read(pressure)),
        steal_ticks=steal,
        total_ticks=total,
        procs_running=running,
        cpus=cpus,
        threads=_threads(task),
        main_thread=pid_text,
    )
