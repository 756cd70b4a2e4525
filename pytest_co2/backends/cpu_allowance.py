"""How many CPUs the process may use: min(visible CPUs, affinity mask, cgroup CPU quota).

Read from plain files under a ``root`` folder (``/`` by default) so tests can pass fake
trees: ``proc/self/status`` (``Cpus_allowed_list``), ``proc/self/cgroup`` with
``sys/fs/cgroup/...`` (``cpu.max`` of cgroup v2, or ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us`` of v1). Nothing raises on a missing or malformed file: the result says
what was missing and the caller falls back.
"""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path

from ..frozen import Frozen, record
from .cpuinfo import DEFAULT_ROOT, read_cpuinfo


@record
class CpuAllowance(Frozen):
    """How many CPUs (hardware threads) the process may use, and why."""

    cpus: float  # min of the limits below that are known; >= 0.01
    visible: int  # CPUs the kernel shows (cpuinfo processors, else os.cpu_count)
    affinity: int | None = None  # CPUs in the affinity mask
    quota_cpus: float | None = None  # cgroup CPU quota / period
    quota_source: str = ""  # e.g. "cgroup v2 cpu.max 150000 100000"
    notes: tuple[str, ...] = field(default=())

    @property
    def limited_by(self) -> str:
        """What sets :attr:`cpus`: ``quota``, ``affinity`` or ``visible``."""
        if self.quota_cpus is not None and self.cpus == self.quota_cpus:
            return "quota"
        if self.affinity is not None and self.cpus == self.affinity < self.visible:
            return "affinity"
        return "visible"


def parse_cpu_list(text: str) -> int | None:
    """Number of CPUs in a kernel CPU list such as ``0-3,8,10-11``; None if malformed."""
    count = 0
    for part in text.strip().split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            return None
        count += (int(hi) - int(lo) + 1) if sep else 1
    return count if count > 0 else None


def _affinity(root: Path) -> tuple[int | None, str]:
    status = root / "proc" / "self" / "status"
    try:
        for line in status.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Cpus_allowed_list":
                count = parse_cpu_list(value)
                if count is None:
                    return None, f"malformed Cpus_allowed_list {value.strip()!r} in {status}"
                return count, ""
    except OSError:
        pass
    if root == DEFAULT_ROOT and hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), ""
    return None, f"no Cpus_allowed_list in {status}"


def _cgroup_paths(root: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu controller path) of this process from proc/self/cgroup."""
    v2 = v1 = None
    try:
        lines = (root / "proc" / "self" / "cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "cpu" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _ancestors(path: str) -> list[str]:
    """``/a/b`` -> ``["a/b", "a", ""]``: the cgroup and its parents, as relative paths."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _quota_v2(root: Path, path: str) -> tuple[float | None, str, list[str]]:
    best: float | None = None
    source, notes = "", []
    for rel in _ancestors(path):
        file = root / "sys" / "fs" / "cgroup" / rel / "cpu.max"
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        fields = text.split()
        if len(fields) == 2 and fields[0] == "max":
            continue
        try:
            quota, period = float(fields[0]), float(fields[1])
        except (ValueError, IndexError):
            notes.append(f"malformed {file}: {text!r}")
            continue
        if quota > 0 and period > 0 and (best is None or quota / period < best):
            best, source = quota / period, f"cgroup v2 cpu.max {fields[0]} {fields[1]}"
    return best, source, notes


def _quota_v1(root: Path, path: str) -> tuple[float | None, str, list[str]]:
    best: float | None = None
    source, notes = "", []
    for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        base = root / "sys" / "fs" / "cgroup" / mount
        if not base.is_dir():
            continue
        for rel in _ancestors(path):
            d = base / rel
            try:
                quota_text = (d / "cpu.cfs_quota_us").read_text(encoding="utf-8").strip()
                period_text = (d / "cpu.cfs_period_us").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            try:
                quota, period = float(quota_text), float(period_text)
            except ValueError:
                notes.append(f"malformed cfs quota/period in {d}: {quota_text!r} {period_text!r}")
                continue
            if quota > 0 and period > 0 and (best is None or quota / period < best):
                best = quota / period
                source = (
                    f"cgroup v1 cpu.cfs_quota_us {quota_text} / cpu.cfs_period_us {period_text}"
                )
        break
    return best, source, notes


def cpu_allowance(root: str | Path = DEFAULT_ROOT, visible: int | None = None) -> CpuAllowance:
    """min(visible CPUs, affinity mask, cgroup quota) under ``root``; never raises.

    ``visible`` defaults to the processors of ``root/proc/cpuinfo``, else ``os.cpu_count()``.
    The quota of a cgroup is the smallest quota/period of it and its parents.
    """
    root = Path(root)
    notes: list[str] = []
    if visible is None or visible < 1:
        visible = read_cpuinfo(root / "proc" / "cpuinfo").logical_cpus or os.cpu_count() or 1
    affinity, why = _affinity(root)
    if why:
        notes.append(why)
    v2, v1 = _cgroup_paths(root)
    quota, source = None, ""
    if v2 is not None:
        quota, source, more = _quota_v2(root, v2)
        notes.extend(more)
    if quota is None and v1 is not None:
        quota, source, more = _quota_v1(root, v1)
        notes.extend(more)
    if v2 is None and v1 is None:
        notes.append(f"no cgroup in {root / 'proc' / 'self' / 'cgroup'}: no CPU quota read")
    limits = [float(visible)] + [x for x in (affinity, quota) if x is not None]
    return CpuAllowance(
        cpus=max(min(limits), 0.01),
        visible=visible,
        affinity=affinity,
        quota_cpus=quota,
        quota_source=source,
        notes=tuple(notes),
    )
