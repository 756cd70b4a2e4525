"""The backend of a DDP rank, rebuilt from what its pytest-co2 parent handed it
(:mod:`.handoff`): :func:`open_rank_backend` measures the rank's own GPU, and falls back to
the CPU-time estimate like the parent does when it cannot open; :func:`rank_idle_w` and
:func:`job_lock` carry the parent's idle power and lock policy over.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import MutableMapping, Sequence
from typing import Any

from ..backends.base import BackendError, BackendWarning
from .handoff import HANDOFF_ENV, SPEC_VERSION, handed_spec

_GPU_PARTS = ("nvml", "amdsmi")


def rank_facts(env: MutableMapping[str, str] | None = None) -> tuple[int | None, int, int | None]:
    """(rank, world size, local rank) of this process: torchrun's ``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, else an initialized ``torch.distributed``; (None, 1, None) when unknown."""
    env = os.environ if env is None else env

    def num(name: str) -> int | None:
        value = env.get(name, "")
        return int(value) if value.isdigit() else None

    rank, world, local = num("RANK"), num("WORLD_SIZE"), num("LOCAL_RANK")
    if rank is None and "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank, world = int(dist.get_rank()), int(dist.get_world_size())
    return rank, max(1, world or 1), local


# -- the backend, rebuilt in a rank ---------------------------------------------------------


def _open_part(part: dict[str, Any], gpu: str | None) -> Any:
    kind = part.get("type")
    if kind == "estimate":
        from ..backends.estimate import EstimateBackend

        wpt = part.get("watts_per_thread")
        return EstimateBackend(
            cpu_tdp_w=part["cpu_tdp_w"],
            memory_w_per_gb=part["memory_w_per_gb"],
            watts_per_thread=None if not wpt else (float(wpt[0]), float(wpt[1])),
            cpu_share=float(part.get("cpu_share", 1.0)),
        )
    if kind == "constant":
        from ..backends.constant import ConstantBackend

        return ConstantBackend(float(part["power_w"]))
    if kind == "nvml":
        from ..backends.nvml import GpuSelection, NvmlBackend

        mode, entries = part["gpus"]
        selection = GpuSelection("list", (gpu,)) if gpu else GpuSelection(mode, tuple(entries))
        return NvmlBackend(poll_interval_s=float(part["poll_interval_s"]), gpus=selection)
    if kind == "rapl":
        from ..backends.rapl import RaplBackend

        return RaplBackend(part["root"], poll_interval_s=part["poll_interval_s"])
    if kind == "carbontracker":
        from ..backends.carbontracker_adapter import CarbontrackerBackend

        return CarbontrackerBackend()
    if kind == "factory":
        import importlib

        module, _, qualname = str(part["factory"]).partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for attr in qualname.split("."):
                obj = getattr(obj, attr)
            kwargs = dict(part.get("kwargs", {}))
            if gpu and "gpus" in kwargs:  # a GPU backend (AMD SMI): the rank's own GPU
                kwargs["gpus"] = gpu
            return obj(**kwargs)
        except Exception as exc:
            raise BackendError(
                f"cannot rebuild the parent's backend {part['factory']} in a DDP rank ({exc}): "
                "give it a rank_kwargs() method returning the keyword arguments that open it"
            ) from None
    raise BackendError(f"unknown backend spec part {kind!r}: expected one made by backend_spec()")


def _rebuild(spec: dict[str, Any], gpu: str | None, world: int) -> Any:
    from ..backends.composite import CompositeBackend

    if spec.get("error"):
        raise BackendError(f"the parent could not describe its backend ({spec['error']})")
    if spec.get("version") != SPEC_VERSION:
        raise BackendError(
            f"backend spec version {spec.get('version')!r}: expected {SPEC_VERSION} "
            "(the parent and the rank run different pytest-co2 versions?)"
        )
    parts, skipped = [], []
    composite = bool(spec.get("composite"))
    try:
        for given in spec["parts"]:
            part = dict(given)
            if part.get("type") == "estimate" and world > 1:
                part["cpu_share"] = float(part.get("cpu_share", 1.0)) / world
            try:
                parts.append(_open_part(part, gpu))
            except (BackendError, ValueError) as exc:
                if not composite:
                    raise
                skipped.append(f"{part.get('type')} is unusable in this rank ({exc}): left out")
        if composite and not parts:
            raise BackendError("; ".join(skipped))
    except BaseException:
        for p in parts:
            p.close()
        raise
    if composite:  # like auto in the parent: a part that cannot open is left out, said
        backend = CompositeBackend(parts, name=spec["name"])
        backend.notes.extend(skipped)
        for note in skipped:
            warnings.warn(f"pytest-co2: {note}", BackendWarning, stacklevel=3)
        return backend
    (backend,) = parts
    backend.name = spec["name"]
    return backend


def _estimate_part(spec: dict[str, Any]) -> dict[str, Any]:
    """The parent's estimate settings where it had an estimate part, else the defaults."""
    for part in spec.get("parts") or ():
        if isinstance(part, dict) and part.get("type") == "estimate":
            return dict(part)
    return {"type": "estimate", "cpu_tdp_w": None, "memory_w_per_gb": 0.0, "cpu_share": 1.0}


def open_rank_backend(
    spec: dict[str, Any] | str | None = None,
    *,
    gpu: str | None = None,
    world: int | None = None,
    env: MutableMapping[str, str] | None = None,
) -> Any:
    """Rebuild the parent's backend in a rank: from ``spec`` (:func:`backend_spec` or its
    JSON), else from :data:`HANDOFF_ENV`, else ``auto`` opened here (with a note).

    ``gpu`` (e.g. ``"cuda:1"``) replaces the parent's GPU selection (default where the parent
    measured GPUs: ``cuda:<LOCAL_RANK>`` when torchrun set it), so rank r measures its own
    GPU. ``world`` ranks (default: :func:`rank_facts`) share the CPUs the parent held: each
    rank's CPU estimate is charged 1/world of their idle power, so the job counts it once.
    The backend keeps the parent's name and, first, its notes, then one that labels the
    rank. When it cannot open here, it falls back to the CPU-time estimate as the parent
    does: a :class:`BackendWarning` and a note saying which backend failed and why.
    """
    rank, env_world, local = rank_facts(env)
    world = env_world if world is None else max(1, world)
    if isinstance(spec, str):
        spec = json.loads(spec)
    origin = "given spec"
    if spec is None:
        spec = handed_spec(env)
        origin = f"handed by the pytest-co2 session through {HANDOFF_ENV}"
    if spec is None:
        from ..backends import make_backend

        backend = make_backend("auto", cpu_share=1.0 / world)
        backend.notes.append("no pytest-co2 session handed a backend to this process: auto")
        return backend
    assert isinstance(spec, dict)
    gpu_parts = any(
        p.get("type") in _GPU_PARTS or "gpus" in (p.get("kwargs") or {})
        for p in spec.get("parts") or ()
    )
    if gpu is None and gpu_parts and local is not None:
        gpu = f"cuda:{local}"
    try:
        backend = _rebuild(spec, gpu, world)
    except (BackendError, ValueError, KeyError, TypeError) as exc:
        why = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
        warnings.warn(
            f"pytest-co2: the parent's backend {spec.get('name')!r} is unusable in this rank "
            f"({why}); falling back to the CPU-time estimate",
            BackendWarning,
            stacklevel=2,
        )
        part = _estimate_part(spec)
        part["cpu_share"] = float(part.get("cpu_share", 1.0)) / world
        backend = _open_part(part, None)
        failed = f"requested backend {spec.get('name')!r} failed in this rank: {why}"
        backend.notes.insert(0, failed)
        backend.rank_fallback = failed
    own = list(backend.notes)
    parent = spec.get("parent") or {}
    who = f"rank {rank} of {world}" if rank is not None else f"no rank set (world {world})"
    label = (
        f"{who}, pid {os.getpid()}: the parent's backend ({origin}"
        + (f", parent pid {parent['pid']}" if "pid" in parent else "")
        + (f"; measuring {gpu}" if gpu and gpu_parts else "")
        + ")"
    )
    backend.notes[:] = [n for n in spec.get("notes", ()) if n not in own] + own + [label]
    backend.rank_label = label
    return backend


def rank_idle_w(
    spec: dict[str, Any], backend: Any, measure: Any = None, *, world: int = 1
) -> tuple[tuple[float, ...] | None, list[str]]:
    """The idle power (W per device) a rank subtracts, like the parent, and notes.

    Devices the parent measured keep its idle power (by id); a per-process device (the CPU
    estimate, ``shared`` False) gets 1/world of it, as its rank is charged 1/world of the
    CPUs' idle. Others are measured here over the parent's idle seconds with
    ``measure(backend, seconds)`` (default :func:`pytest_co2.measure.idle.measure_idle_w`).
    None when the parent subtracted nothing.
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
                from .idle import measure_idle_w as measure
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
    from .lock_dir import default_lock_dir
    from .locks import DeviceLock

    ids = sorted({i for ids in device_ids for i in ids})
    return DeviceLock(ids, lock["lock_dir"] or default_lock_dir()) if ids else None
