"""One energy figure for a torch.distributed (DDP) job whose ranks each measured.

Every rank measures the same steps with its own meter, then calls
:func:`combine_across_ranks`. Device energies are attributed before summing:

- a per-process device (``Device.shared`` False: the CPU-time estimate, a simulated
  device) counts on every rank;
- a shared device (a GPU counter, a RAPL package or DRAM domain) counts once per node:
  only the lowest rank on that node that measured it keeps it, the others zero it. RAPL
  domains have the same id on every rank of a node, so the node's CPU energy is read once
  (by its local rank 0); GPUs have one id per physical GPU, so each rank's own GPU counts,
  and a GPU that several ranks see is not counted twice.

Ranks are gathered with ``all_gather_object`` (works with gloo on CPU), so every rank
returns the same job figure, built by :meth:`Measurement.combine` with ``ranks`` and
``nodes`` recorded. torch is imported only inside :func:`combine_across_ranks`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .measure.records import DeviceEnergy, Measurement


def attribute(parts: Sequence[Measurement], nodes: Sequence[str]) -> list[Measurement]:
    """Each rank's measurement with shared devices already counted elsewhere zeroed out.

    ``parts[r]`` is rank r's measurement and ``nodes[r]`` its node (host name). A removed
    device's energy is taken off the rank's total, and the rank's per-window energies are
    scaled by the same factor (exact when the power is steady over the windows).
    """
    if len(parts) != len(nodes):
        raise ValueError(f"{len(parts)} measurements but {len(nodes)} node names")
    seen: set[tuple[str, str]] = set()
    out = []
    for rank, (part, node) in enumerate(zip(parts, nodes, strict=False)):
        m = part
        kept: list[DeviceEnergy] = []
        dropped_j = 0.0
        dropped_ids: list[str] = []
        for d in m.devices:
            key = (node, d.device.id)
            if d.device.shared and key in seen:
                dropped_j += d.energy_j
                dropped_ids.append(d.device.id)
                continue
            if d.device.shared:
                seen.add(key)
            label = f"{d.device.label} (rank {rank}, {node})"
            kept.append(DeviceEnergy(replace(d.device, label=label), d.energy_j))
        energy_j = m.energy_j - dropped_j if dropped_ids else m.energy_j
        if dropped_ids:
            scale = energy_j / m.energy_j if m.energy_j else 0.0
            notes = (
                *m.notes,
                f"rank {rank}: shared devices {', '.join(dropped_ids)} counted once per node "
                f"(by a lower rank on {node})",
            )
            stats = replace(
                m.energy_per_unit_j,
                mean=energy_j / m.units if m.units else math.nan,
                std=m.energy_per_unit_j.std * scale,
                sem=m.energy_per_unit_j.sem * scale,
            )
            m = replace(
                m,
                energy_j=energy_j,
                unit_energies_j=tuple(x * scale for x in m.unit_energies_j),
                energy_per_unit_j=stats,
                notes=notes,
            )
        out.append(replace(m, devices=tuple(kept)))
    return out


def combine_parts(parts: Sequence[Measurement], nodes: Sequence[str]) -> Measurement:
    """The job figure from every rank's measurement and node name (pure; see module doc)."""
    attributed = attribute(parts, nodes)
    n_nodes = len(dict.fromkeys(nodes))
    combined = Measurement.combine(attributed, nodes=n_nodes)
    note = (
        f"combined across {combined.ranks} ranks on {n_nodes} node(s): per-process devices "
        "summed over ranks, shared devices counted once per node"
    )
    return replace(combined, notes=(*combined.notes, note))


def combine_across_ranks(
    measurement: Measurement, group: Any = None, *, node: str | None = None
) -> Measurement:
    """Gather every rank's ``measurement`` and return the job's one figure (on every rank).

    Call it on all ranks of ``group`` (default: the world) after the measured block; ranks
    must have measured the same steps. ``node`` names this rank's node (default: its host
    key, the host name and boot id of ``pytest_co2.reporting.origin``). Without an initialized process group the measurement is returned unchanged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return measurement
    world = dist.get_world_size(group)
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, (measurement.to_dict(), node or _host_key()), group=group)
    parts = [Measurement.from_dict(d) for d, _ in gathered]
    return combine_parts(parts, [n for _, n in gathered])


def _host_key() -> str:
    from .reporting.origin import detect

    return detect({}).host_key


# -- the parent's backend, rebuilt in every rank ------------------------------------------------
#
# A DDP rank is a fresh process: it must measure with the backend the parent actually opened
# (the fallback, a ``pytest_co2_make_backend`` backend, the idle power, the lock policy), not
# re-open the requested name. The parent describes it with :func:`backend_spec` (JSON-safe,
# passed in the spawn args); each rank calls :func:`open_rank_backend`, measuring
# ``cuda:<local rank>`` where the parent measured GPUs.

SPEC_VERSION = 1


def _part_spec(backend: Any) -> dict[str, Any]:
    """One opened backend as a JSON-safe dict that :func:`_open_part` rebuilds."""
    from .backends.constant import ConstantBackend
    from .backends.estimate import EstimateBackend

    kind = type(backend).__module__.rsplit(".", 1)[-1]
    if isinstance(backend, EstimateBackend):
        return {
            "type": "estimate",
            "cpu_tdp_w": backend.tdp_w if backend.tdp_from_user else None,
            "memory_w_per_gb": backend.memory_w_per_gb,
            "watts_per_thread": None
            if backend.watts_override is None
            else list(backend.watts_override),
            "cpu_share": backend.cpu_share,
        }
    if isinstance(backend, ConstantBackend):
        return {"type": "constant", "power_w": backend.power_w}
    if kind == "nvml" and type(backend).__name__ == "NvmlBackend":
        sel = backend.selection
        return {
            "type": "nvml",
            "poll_interval_s": backend.poll_interval_s,
            "gpus": [sel.mode, list(sel.entries)],
        }
    if kind == "rapl" and type(backend).__name__ == "RaplBackend":
        return {
            "type": "rapl",
            "root": str(backend.root),
            "poll_interval_s": backend.poll_interval_s,
        }
    if kind == "carbontracker_adapter":
        return {"type": "carbontracker"}
    rank_kwargs = getattr(backend, "rank_kwargs", None)
    kwargs = rank_kwargs() if callable(rank_kwargs) else {}
    cls = type(backend)
    return {"type": "factory", "factory": f"{cls.__module__}:{cls.__qualname__}", "kwargs": kwargs}


def backend_spec(
    backend: Any,
    *,
    idle_w: Sequence[float] | None = None,
    idle_s: float | None = None,
    policy: Any = None,
) -> dict[str, Any]:
    """A JSON-safe description of the backend this process opened, for DDP ranks.

    ``idle_w`` (per device, as subtracted by the parent's meter) travels by device id;
    ``idle_s`` lets a rank measure the idle power of a device the parent did not measure;
    ``policy`` (an :class:`~pytest_co2.measure.locks.Policy`) says whether windows lock. A
    backend from a hook is rebuilt as ``cls(**backend.rank_kwargs())`` in the rank (define
    ``rank_kwargs()`` returning JSON-safe keyword arguments; none: ``cls()``).
    """
    parts = getattr(backend, "parts", None)
    part_specs = [_part_spec(p) for p in parts] if parts is not None else [_part_spec(backend)]
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "name": backend.name,
        "composite": parts is not None,
        "parts": part_specs,
        "notes": list(backend.notes),
        "idle": None,
        "lock": None,
    }
    if idle_w:
        spec["idle"] = {
            "w": {d.id: float(w) for d, w in zip(backend.devices, idle_w, strict=False)},
            "seconds": idle_s,
        }
    if policy is not None and getattr(policy, "mode", None) == "lock":
        spec["lock"] = {"lock_dir": policy.lock_dir, "reason": policy.reason}
    json.dumps(spec)  # fails here, in the parent, if a hook's kwargs are not JSON-safe
    return spec


def spec_from_meter(meter: Any) -> dict[str, Any]:
    """:func:`backend_spec` of a ``co2_meter`` fixture: its backend, the idle power it
    subtracts, and the lock policy of its window guard (when it has one)."""
    guard = getattr(meter.on_window_enter, "__self__", None)
    settings = getattr(meter, "settings", None)
    return backend_spec(
        meter.backend,
        idle_w=meter.idle_w,
        idle_s=getattr(settings, "idle", None),
        policy=getattr(guard, "policy", None),
    )


def _open_part(part: dict[str, Any], gpu: str | None) -> Any:
    from .backends.base import BackendError

    kind = part.get("type")
    if kind == "estimate":
        from .backends.estimate import EstimateBackend

        wpt = part.get("watts_per_thread")
        return EstimateBackend(
            cpu_tdp_w=part["cpu_tdp_w"],
            memory_w_per_gb=part["memory_w_per_gb"],
            watts_per_thread=None if not wpt else (float(wpt[0]), float(wpt[1])),
            cpu_share=float(part.get("cpu_share", 1.0)),
        )
    if kind == "constant":
        from .backends.constant import ConstantBackend

        return ConstantBackend(float(part["power_w"]))
    if kind == "nvml":
        from .backends.nvml import GpuSelection, NvmlBackend

        mode, entries = part["gpus"]
        selection = GpuSelection("list", (gpu,)) if gpu else GpuSelection(mode, tuple(entries))
        return NvmlBackend(poll_interval_s=float(part["poll_interval_s"]), gpus=selection)
    if kind == "rapl":
        from .backends.rapl import RaplBackend

        return RaplBackend(part["root"], poll_interval_s=part["poll_interval_s"])
    if kind == "carbontracker":
        from .backends.carbontracker_adapter import CarbontrackerBackend

        return CarbontrackerBackend()
    if kind == "factory":
        import importlib

        module, _, qualname = str(part["factory"]).partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for attr in qualname.split("."):
                obj = getattr(obj, attr)
            return obj(**part.get("kwargs", {}))
        except Exception as exc:
            raise BackendError(
                f"cannot rebuild the parent's backend {part['factory']} in a DDP rank ({exc}): "
                "give it a rank_kwargs() method returning the keyword arguments that open it"
            ) from None
    raise BackendError(f"unknown backend spec part {kind!r}: expected one made by backend_spec()")


def open_rank_backend(spec: dict[str, Any] | str, *, gpu: str | None = None, world: int = 1) -> Any:
    """Rebuild the parent's backend (from :func:`backend_spec`, or its JSON) in a rank.

    ``gpu`` (e.g. ``"cuda:1"``, the rank's device) replaces the parent's GPU selection, so
    rank r measures its own GPU. ``world`` ranks share the CPUs the parent held: each rank's
    CPU estimate is charged 1/world of their idle power, so the job counts it once. The rank's backend has the parent's name and, first, the
    parent's notes (e.g. which requested backend failed and what it fell back to).
    """
    from .backends.base import BackendError
    from .backends.composite import CompositeBackend

    if isinstance(spec, str):
        spec = json.loads(spec)
    assert isinstance(spec, dict)
    if spec.get("version") != SPEC_VERSION:
        raise BackendError(
            f"backend spec version {spec.get('version')!r}: expected {SPEC_VERSION} "
            "(the parent and the rank run different pytest-co2 versions?)"
        )
    parts = []
    try:
        for given in spec["parts"]:
            part = dict(given)
            if part.get("type") == "estimate" and world > 1:
                part["cpu_share"] = float(part.get("cpu_share", 1.0)) / world
            parts.append(_open_part(part, gpu))
    except BaseException:
        for p in parts:
            p.close()
        raise
    if spec.get("composite"):
        backend: Any = CompositeBackend(parts, name=spec["name"])
    else:
        (backend,) = parts
        backend.name = spec["name"]
    own = list(backend.notes)
    backend.notes[:] = [n for n in spec.get("notes", ()) if n not in own] + own
    return backend


def rank_idle_w(
    spec: dict[str, Any], backend: Any, measure: Any = None, *, world: int = 1
) -> tuple[tuple[float, ...] | None, list[str]]:
    """The idle power (W per device) a rank subtracts, like the parent, and notes.

    Devices the parent measured keep its idle power (by id); a per-process device (the CPU
    estimate, ``shared`` False) gets 1/world of it, as its rank is charged 1/world of the
    CPUs' idle. Others are measured here over the parent's idle seconds with
    ``measure(backend, seconds)`` (default :func:`pytest_co2.meter.measure_idle_w`). None
    when the parent subtracted nothing.
    """
    idle = spec.get("idle")
    if not idle:
        return None, []
    known: dict[str, float] = idle["w"]
    missing = [d.id for d in backend.devices if d.id not in known]
    measured: dict[str, float] = {}
    notes: list[str] = []
    if missing:
        seconds = idle.get("seconds")
        if not seconds:
            notes.append(
                f"idle power of {', '.join(missing)} unknown (not measured by the parent): 0 W subtracted"
            )
        else:
            if measure is None:
                from .meter import measure_idle_w as measure
            values = measure(backend, seconds)
            measured = {d.id: w for d, w in zip(backend.devices, values, strict=False)}
            notes.append(
                f"idle power of {', '.join(missing)} measured in the rank over {seconds:g} s"
            )

    def share(d: Any) -> float:
        return 1.0 if d.shared else 1.0 / max(1, world)

    values = tuple(
        known[d.id] * share(d) if d.id in known else measured.get(d.id, 0.0)
        for d in backend.devices
    )
    return values, notes


def job_lock(spec: dict[str, Any], device_ids: Sequence[Sequence[str]]) -> Any:
    """The lock rank 0 holds for the whole job when the parent locks windows, else None.

    ``device_ids[r]`` are rank r's lockable device ids (``Device.shared``, from an
    ``all_gather_object``). One process takes all of them, in sorted order, so ranks never
    wait on each other for a lock while waiting on each other in a collective.
    """
    lock = spec.get("lock")
    if not lock:
        return None
    from .measure.locks import DeviceLock, default_lock_dir

    ids = sorted({i for ids in device_ids for i in ids})
    return DeviceLock(ids, lock["lock_dir"] or default_lock_dir()) if ids else None


def threads_per_rank(world_size: int, cpus: int | None = None) -> int:
    """CPU threads for each of ``world_size`` ranks on this node: cores / ranks (at least 1),
    so ranks do not oversubscribe the CPU (which inflates a CPU-time estimate)."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, world_size))
