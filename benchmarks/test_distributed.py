"""Fig. 4a: distributed data-parallel training vs one process, same per-process batch.

CPU: one process with all threads vs 2 processes (gloo) with one thread each. CUDA: one GPU
vs up to 4 GPUs (NCCL). The ranks' energies are added (see ddp.py for shared counters) and
projected to the same number of batches as the single process, so the two compare directly.
"""

from __future__ import annotations

import warnings

import pytest

from . import workloads as w
from .paper import ddp_budget, image_budget
from .registry import train_key
from .verdict_rules import INCONCLUSIVE, NOT_HELD, ddp_check, load_during

MODEL, IMAGE = w.DISTRIBUTED_CONFIG
SINGLE = train_key(MODEL, IMAGE, "single-process")


def _ddp_key(backend: str, world: int):
    return train_key(MODEL, IMAGE, f"ddp-{backend}-{world}")


@pytest.mark.paper_budget(image_budget("train", IMAGE))
@pytest.mark.bench_config(SINGLE)
def test_train_single_process(bench, co2_meter):
    m = bench.train(co2_meter, MODEL, IMAGE, key=SINGLE)
    assert m.complete and m.energy_j > 0


def _cuda_ranks() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return min(4, torch.cuda.device_count()) if torch.cuda.is_available() else 0


@pytest.mark.paper_budget(ddp_budget(IMAGE))
@pytest.mark.parametrize(
    "backend",
    [pytest.param("gloo", marks=pytest.mark.bench_config(_ddp_key("gloo", 2))), "nccl"],
)
def test_train_ddp(bench, co2_meter, backend):
    from pytest_co2.distributed import spec_from_meter, threads_per_rank
    from pytest_co2.meter import Measurement

    from . import ddp

    if backend == "nccl":
        world = _cuda_ranks()
        if world < 2:
            pytest.skip("NCCL needs at least 2 CUDA GPUs (the paper used 4)")
    else:
        if bench.device != "cpu":
            pytest.skip(
                "gloo on CPU stands in for GPUs only on CPU machines: the single-process run used CUDA"
            )
        world = 2
    threads = threads_per_rank(world, bench.options.threads)  # cores / ranks, never all each
    baseline = bench.registry.get(SINGLE)
    control = bench.control()  # the job budget's plan: as many steps as the single process
    steps = min(baseline.steps if baseline is not None else bench.options.min_steps, control.steps)
    label = w.scaled_label(w.IMAGE_SIZES[IMAGE], bench.scale)
    job = ddp.DDPJob(
        world_size=world,
        backend=backend,
        model_key=MODEL,
        image_key=IMAGE,
        scale=bench.scale,
        steps=steps,
        warmup=bench.options.warmup,
        backend_spec=spec_from_meter(co2_meter),  # the backend the parent opened
        threads_per_rank=threads,
        name=f"train {MODEL} {label} DDP {backend} x{world} (1 unit = 1 batch; a step = {world})",
        extrapolate=bench.target(co2_meter, "iteration"),
    )
    parts = [Measurement.from_dict(d) for d in ddp.run(job)]
    m = ddp.combine(parts)
    control.record(m.steps, m.duration_s)
    co2_meter.record(m)
    bench.registry.add(_ddp_key(backend, world), m)
    assert m.ranks == world and m.complete and m.energy_j > 0
    # every rank measured with the parent's backend: same name, same (fallback) label
    assert {p.backend for p in parts} == {co2_meter.backend.name}
    assert all(set(co2_meter.backend.notes) <= set(p.notes) for p in parts)


def test_distributed_training_does_not_save_energy(bench_registry, bench_scale):
    """Section 3.4: more devices, same per-device batch: no significant reduction per batch."""
    if bench_scale != "paper":
        pytest.skip(
            "smoke scale: thread start-up and communication dominate tiny steps (use --co2-scale=paper)"
        )
    ddp_keys = [
        k for k in bench_registry.results if k.variant.startswith("ddp-") and k.image == IMAGE
    ]
    missing = bench_registry.require([SINGLE]) + ([] if ddp_keys else [_ddp_key("gloo", 2)])
    if missing:
        pytest.skip(f"needs this session's results for {', '.join(k.id for k in missing)}")
    single = bench_registry.paper(SINGLE)
    bad = []
    for key in ddp_keys:
        # Like the growth checks: a larger cut contradicts the paper only when it is larger than
        # the two measurements' 95% intervals combined and the CPU was not contended (other
        # load slows the 2-thread single process more than the 1-thread ranks); otherwise the
        # check is inconclusive and says why.
        status, text = ddp_check(
            single, bench_registry.paper(key), load_during(bench_registry, [SINGLE, key])
        )
        if status == NOT_HELD:
            bad.append(f"{key.variant}: {text}")
        elif status == INCONCLUSIVE:
            warnings.warn(f"{key.variant}: {text}", stacklevel=1)
    assert not bad, "; ".join(bad)
