"""Which GPUs a :class:`~.backend.GpuBackend` measures, the same for every vendor.

``--co2-gpus`` (``all``, or ``cuda:<k>`` entries and UUID prefixes) names them exactly.
Else the driver's visibility variables (``CUDA_VISIBLE_DEVICES``, ``ROCR_VISIBLE_DEVICES``,
...) or every GPU, and where that is several, only those holding a context of this process
or of its descendants (DDP ranks a test spawns): a PID in the library's process list, or
torch's contexts matched by UUID (inside a container the library lists host PIDs, so only
torch's contexts tell, and a note says so).
GPUs the library cannot open are left out with a note; compute partitions of one physical
GPU (MI300X in CPX mode) count once, as the partition that reports the GPU's energy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .. import cuda as _cuda
from ..base import BackendError, BackendUnavailable, warn
from .driver import GpuDriver, GpuInfo
from .select import GpuSelection, as_selection, by_prefix


class Selector:
    """Mixed into :class:`~.backend.GpuBackend`: ``infos`` and the selection rules."""

    notes: list[str]
    driver: GpuDriver

    def __init__(self, driver: GpuDriver, gpus: Any, pid: int | None) -> None:
        try:
            self.selection: GpuSelection = as_selection(gpus)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        self._pid = os.getpid() if pid is None else pid
        self._refreshable = False
        self._said_torch_only = False
        try:
            self.infos: list[GpuInfo] = driver.gpus()
        except driver.errors as exc:
            raise BackendError(f"{driver.vendor} query failed: {driver.text(exc)}") from None
        self.uuids: list[str | None] = [g.uuid for g in self.infos]
        self._rep = self._representatives()

    def select(self) -> list[int]:
        """The GPUs to measure now (notes and warnings on the way)."""
        d = self.driver
        indices, implicit = self._candidates()
        indices = self._drop_unopened(indices)
        indices, notes = d.refuse(self.infos, indices, implicit)
        self.notes.extend(notes)
        indices = self._once_per_physical(indices)
        if not indices:
            raise BackendUnavailable(self._why_none())
        self._candidates_all = list(indices)
        if implicit and len(indices) > 1:
            self._refreshable = True
            in_use = self._in_use(indices)
            ids = ", ".join(f"{d.id_prefix}:{i}" for i in (in_use or indices))
            if in_use:
                self.notes.append(
                    f"measuring the GPUs holding a {d.context} of this process: {ids}"
                )
                return in_use
            message = (
                f"{len(indices)} {d.label}s are measured ({ids}) because none holds a "
                f"{d.context} of this process yet: a test that uses one is charged the others' "
                f"idle power; {d.naming_advice()}"
            )
            self.notes.append(message)
            warn(message)
        return indices

    def in_use_now(self) -> list[int] | None:
        """For a refresh: the GPUs in use now (None: not an implicit multi-GPU selection, or
        none in use yet)."""
        if not self._refreshable:
            return None
        try:
            return self._in_use(self._candidates_all) or None
        except self.driver.errors:
            return None

    # -- candidates ----------------------------------------------------------------------------
    def _candidates(self) -> tuple[list[int], bool]:
        sel, n = self.selection, len(self.infos)
        if sel.mode == "all":
            return list(range(n)), False
        if sel.mode == "list":
            return self._explicit(sel.entries), False
        visible, notes = self.driver.visible(self.infos)
        self.notes.extend(notes)
        return (list(range(n)) if visible is None else visible), True

    def _explicit(self, entries: Sequence[str]) -> list[int]:
        d = self.driver
        out: list[int] = []
        order: list[int] | None = None
        for entry in entries:
            if entry.upper().startswith("MIG-"):
                raise BackendError(d.mig_entry(entry))
            if entry.startswith("cuda:"):
                if order is None:
                    order, notes = d.process_order(self.infos, entry)
                    self.notes.extend(notes)
                k = int(entry[5:])
                if k >= len(order):
                    raise BackendError(
                        f"--co2-gpus entry {entry!r}: this process sees {len(order)} "
                        f"{d.devices_word}"
                    )
                index = order[k]
            else:
                matches = by_prefix([g.aliases for g in self.infos], entry)
                if len(matches) != 1:
                    known = ", ".join(g.uuid for g in self.infos if g.uuid) or "none readable"
                    what = "matches no GPU" if not matches else "is ambiguous"
                    raise BackendError(
                        f"--co2-gpus entry {entry!r} {what} here ({d.label}s: {known})"
                    )
                index = matches[0]
            if index not in out:
                out.append(index)
        return out

    def _drop_unopened(self, indices: list[int]) -> list[int]:
        """Leave out the GPUs the library could not open, each with a note."""
        d = self.driver
        kept = []
        for i in indices:
            g = self.infos[i]
            if g.handle is not None:
                kept.append(i)
            elif g.denied:
                self.notes.append(
                    f"{d.label} {i} is not measured: {d.vendor} may not open it ({g.why}; a "
                    "cgroup-restricted container?)"
                )
            else:
                self.notes.append(
                    f"{d.label} {i} is not measured: {d.vendor} could not open it ({g.why}; a "
                    "lost or failing GPU?)"
                )
        if indices and not kept:
            if any(self.infos[i].denied for i in indices):
                raise BackendError(
                    f"{d.vendor} may not open any of the selected GPUs (Insufficient "
                    f"Permissions): {d.access_hint}, or use --co2-backend=estimate"
                )
            raise BackendError(
                f"{d.vendor} could open none of the selected GPUs ("
                + "; ".join(f"{d.label} {i}: {self.infos[i].why}" for i in indices)
                + f"): check {d.tool}, or use --co2-backend=estimate"
            )
        return kept

    def _why_none(self) -> str:
        d = self.driver
        if self.selection.mode == "list":
            return f"--co2-gpus selects no {d.label}"
        if self.infos and d.emptied_by:
            return f"{d.emptied_by} selects no {d.label}"
        return f"{d.vendor} reports no GPU"

    # -- partitions ----------------------------------------------------------------------------
    def _representatives(self) -> dict[int, int]:
        """GPU -> the GPU that reports its physical GPU's energy (itself but for partitions)."""
        first: dict[str, int] = {}
        for g in self.infos:
            if g.physical is not None:
                k = first.setdefault(g.physical, g.index)
                if g.extra.get("partition_id", 0) < self.infos[k].extra.get("partition_id", 0):
                    first[g.physical] = g.index
        return {
            g.index: first[g.physical] if g.physical is not None else g.index for g in self.infos
        }

    def _once_per_physical(self, indices: list[int]) -> list[int]:
        d = self.driver
        out: list[int] = []
        for i in indices:
            rep = self._rep.get(i, i)
            if rep != i:
                self.notes.append(
                    f"{d.label} {i} is compute partition {self.infos[i].extra.get('partition_id')} "
                    f"of the physical GPU {self.infos[i].physical}: its energy is that GPU's, "
                    f"counted once, as {d.id_prefix}:{rep}"
                )
            if rep not in out:
                out.append(rep)
        return out

    # -- in use ------------------------------------------------------------------------------
    def _by_uuid(self, uuid: str) -> int | None:
        """The GPU whose UUID is ``uuid`` (torch's bare form or the library's)."""
        for g in self.infos:
            if (g.uuid is not None and _cuda.same_uuid(g.uuid, uuid)) or uuid.lower() in g.aliases:
                return g.index
        return None

    def _in_use(self, indices: Sequence[int]) -> list[int]:
        """Those of ``indices`` holding a context of this process (no context is created)."""
        d = self.driver
        by_pid: set[int] = set()
        others = False
        family: set[int] | None = None  # this process's descendants (DDP ranks), read once
        measured = set(indices)
        for i in [g.index for g in self.infos if self._rep.get(g.index) in measured]:
            try:
                pids = d.pids(self.infos[i].handle)
            except d.errors:
                continue
            if pids and self._pid not in pids and family is None:
                from ..procs import descendant_pids

                family = descendant_pids(self._pid) if self._pid == os.getpid() else set()
            if self._pid in pids or not (family or set()).isdisjoint(pids):
                by_pid.add(self._rep.get(i, i))
            elif pids:
                others = True
        by_torch: set[int] = set()
        for k in _cuda.context_device_indices():
            uuid = _cuda.device_uuid(k)
            index = self._by_uuid(uuid) if uuid else None
            if index is not None:
                by_torch.add(self._rep.get(index, index))
        if by_torch - by_pid and others and not self._said_torch_only:
            self._said_torch_only = True
            self.notes.append(
                f"the GPUs in use are known from torch's contexts only: {d.vendor} lists other "
                "PIDs on them (inside a container it lists the host's PIDs), so a context made "
                f"by another library (CuPy, JAX) is not seen; to be sure, {d.naming_advice()}"
            )
        used = by_pid | by_torch
        return [i for i in indices if i in used]
