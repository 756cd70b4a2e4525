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

import math
import socket
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
    for rank, (m, node) in enumerate(zip(parts, nodes, strict=False)):
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
    must have measured the same steps. ``node`` names this rank's node (default: the host
    name). Without an initialized process group the measurement is returned unchanged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return measurement
    world = dist.get_world_size(group)
    gathered: list[Any] = [None] * world
    dist.all_gather_object(
        gathered, (measurement.to_dict(), node or socket.gethostname()), group=group
    )
    parts = [Measurement.from_dict(d) for d, _ in gathered]
    return combine_parts(parts, [n for _, n in gathered])
