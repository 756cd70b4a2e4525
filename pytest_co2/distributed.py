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

A rank gets the parent's backend without passing anything: the plugin puts its opened
backend in the environment (:data:`HANDOFF_ENV`, see :mod:`pytest_co2.measure.handoff`), and
:func:`rank_meter` or :func:`open_rank_backend` without a spec rebuild it in the rank.

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

from .measure.handoff import HANDOFF_ENV, SPEC_VERSION, backend_spec, handed_spec, publish
from .measure.meter import Meter
from .measure.rank import job_lock, open_rank_backend, rank_facts, rank_idle_w
from .measure.records import DeviceEnergy, Measurement

__all__ = [
    "HANDOFF_ENV",
    "SPEC_VERSION",
    "attribute",
    "backend_spec",
    "combine_across_ranks",
    "combine_parts",
    "handed_spec",
    "job_lock",
    "open_rank_backend",
    "publish",
    "rank_facts",
    "rank_idle_w",
    "rank_meter",
    "spec_from_meter",
    "threads_per_rank",
]


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


# -- the parent's backend in every rank: pytest_co2.measure.handoff and .rank --------------


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


def rank_meter(
    spec: dict[str, Any] | str | None = None,
    *,
    gpu: str | None = None,
    world: int | None = None,
    **meter_kwargs: Any,
) -> Meter:
    """A :class:`~pytest_co2.meter.Meter` for a DDP rank on the parent's backend (from the
    pytest-co2 hand-off by default: :func:`open_rank_backend`), subtracting the idle power
    the parent subtracts; every measurement it makes names the rank, its devices and how the
    backend was obtained (its notes)."""
    backend = open_rank_backend(spec, gpu=gpu, world=world)
    given = json.loads(spec) if isinstance(spec, str) else spec
    handed = given if given is not None else handed_spec()
    world_n = rank_facts()[1] if world is None else max(1, world)
    idle_w, idle_notes = rank_idle_w(handed, backend, world=world_n) if handed else (None, [])
    devices = ", ".join(f"{d.label} [{d.method.value}]" for d in backend.devices)
    notes = [
        *(
            n
            for n in (getattr(backend, "rank_fallback", None), getattr(backend, "rank_label", None))
            if n
        ),
        f"devices: {devices}",
        *idle_notes,
    ]

    def on_exit(window: Any) -> list[str]:
        return notes

    return Meter(backend, idle_w=idle_w, on_window_exit=on_exit, **meter_kwargs)


def threads_per_rank(world_size: int, cpus: int | None = None) -> int:
    """CPU threads for each of ``world_size`` ranks on this node: cores / ranks (at least 1),
    so ranks do not oversubscribe the CPU (which inflates a CPU-time estimate)."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, world_size))
