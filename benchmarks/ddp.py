"""Distributed data-parallel training for Fig. 4a: one process per rank, each with its own meter.

Each rank builds the same UNet, wraps it in ``DistributedDataParallel`` and trains on its own
batch of the same size as the single-process run (as the paper did: 4 GPUs, "each processing
the same batch size"). Every rank measures its steps with its own meter on the backend the
parent actually opened (``pytest_co2.distributed.open_rank_backend`` of the parent's
``backend_spec``: its fallback, a hook's backend, its idle power; rank r measures ``cuda:r``),
and writes ``measurement.to_dict()`` to a file; the parent combines them. When the parent
locks windows (pytest-xdist), rank 0 holds the lock on every rank's shared devices for the job.

One step of ``world_size`` ranks processes ``world_size`` batches, so each measured step counts
``world_size`` units ("iterations" of the single process): projected to 150,000 units, a DDP run
and a single-process run have trained on the same data and their energies compare directly.

CPU: gloo; CUDA: NCCL, one GPU per rank. Each rank gets cores / ranks threads
(``threads_per_rank``), so ranks do not oversubscribe the CPU.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from . import workloads as w
from .builders import build_unet
from .steps import TrainStep


@dataclass(frozen=True)
class DDPJob:
    world_size: int
    backend: str  # "gloo" | "nccl"
    model_key: str
    image_key: str
    scale: str
    steps: int  # measured steps
    warmup: int
    backend_spec: dict[str, Any]  # pytest_co2.distributed.backend_spec of the parent's backend
    threads_per_rank: int
    name: str
    extrapolate: int | None


def run(job: DDPJob) -> list[dict[str, Any]]:
    """Spawn the ranks, wait for them, return each rank's ``Measurement.to_dict()``."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="co2-ddp-") as tmp:
        mp.spawn(_rank_main, args=(job, tmp), nprocs=job.world_size, join=True)
        out = []
        for rank in range(job.world_size):
            with open(os.path.join(tmp, f"rank{rank}.json"), encoding="utf-8") as fh:
                out.append(json.load(fh))
        return out


def _rank_main(rank: int, job: DDPJob, tmp: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from pytest_co2.distributed import job_lock, open_rank_backend, rank_idle_w
    from pytest_co2.meter import Meter

    torch.set_num_threads(job.threads_per_rank)
    dist.init_process_group(
        job.backend,
        init_method=f"file://{os.path.join(tmp, 'store')}",
        rank=rank,
        world_size=job.world_size,
    )
    lock = None
    try:
        if job.backend == "nccl":
            torch.cuda.set_device(rank)
            device: Any = torch.device("cuda", rank)
        else:
            device = "cpu"
        unet = build_unet(w.MODELS[job.model_key], job.scale, device=device, seed=0)
        model = DistributedDataParallel(unet, device_ids=[rank] if job.backend == "nccl" else None)
        latent = w.latent_shape(w.IMAGE_SIZES[job.image_key], job.scale)
        step = TrainStep(model, latent, device=device, seed=rank)
        backend = open_rank_backend(
            job.backend_spec,
            gpu=f"cuda:{rank}" if job.backend == "nccl" else None,
            world=job.world_size,
        )
        idle_w, notes = rank_idle_w(job.backend_spec, backend, world=job.world_size)
        meter = Meter(backend, idle_w=idle_w)
        shared: list[Any] = [None] * job.world_size
        dist.all_gather_object(shared, [d.id for d in backend.devices if d.shared])
        lock = job_lock(job.backend_spec, shared) if rank == 0 else None
        if lock is not None:
            waited = lock.acquire()
            notes.append(
                f"exclusive: rank 0 held the lock on {', '.join(sorted({i for s in shared for i in s}))} "
                f"for the whole job (waited {waited:.2f} s for it)"
            )
        dist.barrier()  # every rank starts measuring once the devices are locked
        with meter.measure(
            job.name, unit="iteration", warmup=job.warmup, extrapolate=job.extrapolate
        ) as win:
            for _ in range(job.warmup + job.steps):
                step()
                win.step(units=job.world_size)
        dist.barrier()
        meter.backend.close()
        data = win.measurement.to_dict()
        data["notes"] = [
            *list(data.get("notes", ())),
            *notes,
            f"rank {rank} of {job.world_size} ({job.backend}, {job.threads_per_rank} thread(s) per rank)",
        ]
        path = os.path.join(tmp, f"rank{rank}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(path + ".tmp", path)
    finally:
        if lock is not None:
            lock.release()
        dist.destroy_process_group()


def combine(parts: list[Any], nodes: list[str] | None = None) -> Any:
    """One measurement for the whole job, with the plugin's attribution
    (:func:`pytest_co2.distributed.combine_parts`): per-process devices (the CPU-time estimate)
    summed over ranks, shared counters (RAPL packages, a GPU seen by several ranks) counted
    once per node. ``nodes`` are the ranks' host names (default: all on this host).
    """
    import socket

    from pytest_co2.distributed import combine_parts

    return combine_parts(parts, nodes or [socket.gethostname()] * len(parts))
