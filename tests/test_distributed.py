"""torch.distributed: one job figure from every rank's measurement (pytest_co2.distributed)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

from pytest_co2.backends.base import Device, Method
from pytest_co2.distributed import attribute, combine_parts
from pytest_co2.meter import DeviceEnergy, Measurement, Stats

STEPS, STEP_S = 4, 0.25  # exact in binary: energies below are exact


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _rank_main(rank: int, world: int, store: str, out_dir: str) -> None:
    """One DDP rank: measure on a constant backend (fake clock) and on the estimate, combine."""
    import torch
    import torch.distributed as dist

    from pytest_co2.backends.constant import ConstantBackend
    from pytest_co2.backends.estimate import EstimateBackend
    from pytest_co2.distributed import combine_across_ranks
    from pytest_co2.meter import Meter

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        clock = FakeClock()
        meter = Meter(ConstantBackend(100.0 * (rank + 1), clock=clock))  # rank r draws 100 (r+1) W
        with meter.measure("train") as w:
            for _ in range(STEPS):
                clock.t += STEP_S
                w.step()
        constant = combine_across_ranks(w.measurement)

        est = Meter(EstimateBackend(cpu_tdp_w=64.0))
        with est.measure("estimate") as e:
            x = torch.ones(256, 256)
            for _ in range(3):
                for _ in range(20):
                    x = (x @ x).clamp_(max=1.0)
                e.step()
        estimated = combine_across_ranks(e.measurement)
        out = {
            "constant_rank": w.measurement.to_dict(),
            "constant_job": constant.to_dict(),
            "estimate_rank": e.measurement.to_dict(),
            "estimate_job": estimated.to_dict(),
        }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def test_two_rank_gloo_job_figure_is_the_sum_of_the_ranks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import torch.multiprocessing as mp

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # the children import this module
    mp.spawn(_rank_main, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))

    # constant backend on fake clocks: exact
    assert r0["constant_rank"]["energy_j"] == 100.0 and r1["constant_rank"]["energy_j"] == 200.0
    job = r0["constant_job"]
    assert job == r1["constant_job"]  # every rank gets the same figure
    assert job["energy_j"] == 300.0
    assert (job["ranks"], job["nodes"], job["steps"]) == (2, 1, STEPS)
    assert job["unit_energies_j"] == [75.0] * STEPS  # 25 J + 50 J per step
    assert job["energy_per_unit_j"]["mean"] == 75.0
    assert [d["energy_j"] for d in job["devices"]] == [100.0, 200.0]
    assert "(rank 1," in job["devices"][1]["label"]

    # the per-process estimate: summed over ranks
    ej = r0["estimate_job"]
    parts = [r0["estimate_rank"]["energy_j"], r1["estimate_rank"]["energy_j"]]
    assert all(p > 0 for p in parts)
    assert ej["energy_j"] == pytest.approx(math.fsum(parts), rel=1e-12)
    assert ej["method"] == "estimated" and ej["ranks"] == 2


def test_without_a_process_group_the_measurement_is_unchanged() -> None:
    pytest.importorskip("torch")
    from pytest_co2.distributed import combine_across_ranks

    m = _measurement(10.0, [("sim:0", "simulated", False, 10.0)])
    assert combine_across_ranks(m) is m


def test_combine_does_not_import_torch() -> None:
    import subprocess

    code = "import sys, pytest_co2.distributed; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


# -- attribution (pure) ----------------------------------------------------------------------


def _measurement(
    energy_j: float, devices: list[tuple[str, str, bool, float]], windows: int = 2
) -> Measurement:
    devs = tuple(
        DeviceEnergy(
            Device(i, kind, i, Method.COUNTER if shared else Method.ESTIMATED, 0.0, shared), e
        )
        for i, kind, shared, e in devices
    )
    per = energy_j / windows
    return Measurement(
        name="train",
        unit="iteration",
        steps=windows,
        units=float(windows),
        warmup=0,
        duration_s=1.0,
        energy_j=energy_j,
        energy_per_unit_j=Stats.of([per] * windows, energy_j, windows),
        unit_energies_j=(per,) * windows,
        method="counter+estimated",
        devices=devs,
        backend="auto",
    )


def _rank(gpu: str, gpu_j: float) -> Measurement:
    # own GPU + the node's RAPL package (seen by every rank of the node) + a process estimate
    return _measurement(
        gpu_j + 40.0 + 5.0,
        [
            (gpu, "gpu", True, gpu_j),
            ("cpu:package-0", "cpu", True, 40.0),
            ("memory:process", "memory", False, 5.0),
        ],
    )


def test_node_counters_are_counted_once_per_node() -> None:
    parts = [
        _rank("gpu:0", 100.0),
        _rank("gpu:1", 120.0),
        _rank("gpu:0", 80.0),
        _rank("gpu:1", 60.0),
    ]
    job = combine_parts(parts, ["n1", "n1", "n2", "n2"])
    # GPUs summed (360), RAPL once per node (2 x 40), per-process estimate summed (4 x 5)
    assert job.energy_j == 360.0 + 80.0 + 20.0
    assert (job.ranks, job.nodes) == (4, 2)
    assert job.unit_energies_j == pytest.approx((230.0, 230.0))  # two windows of one unit
    assert job.energy_per_unit_j.mean == job.energy_j / 2
    rapl = [d for d in job.devices if d.device.id == "cpu:package-0"]
    assert len(rapl) == 2 and {d.device.label.split(", ")[-1] for d in rapl} == {"n1)", "n2)"}
    assert any("counted once per node" in n for n in job.notes)


def test_a_gpu_seen_by_two_ranks_is_not_counted_twice() -> None:
    parts = [
        _measurement(100.0, [("gpu:0", "gpu", True, 100.0)]),
        _measurement(100.0, [("gpu:0", "gpu", True, 100.0)]),
    ]
    job = combine_parts(parts, ["n1", "n1"])
    assert job.energy_j == 100.0
    second = attribute(parts, ["n1", "n1"])[1]
    assert second.energy_j == 0.0 and second.unit_energies_j == (0.0, 0.0) and second.devices == ()


def test_single_rank_is_unchanged_in_energy() -> None:
    m = _rank("gpu:0", 100.0)
    job = combine_parts([m], [os.uname().nodename])
    assert job.energy_j == m.energy_j and (job.ranks, job.nodes) == (1, 1)


# -- the parent's backend in every rank (backend spec) ---------------------------------------

from collections.abc import Sequence  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from pytest_co2.backends.base import Backend, BackendWarning  # noqa: E402
from pytest_co2.distributed import (  # noqa: E402
    backend_spec,
    job_lock,
    open_rank_backend,
    rank_idle_w,
    spec_from_meter,
    threads_per_rank,
)


class HookBackend(Backend):
    """A backend a conftest returns from pytest_co2_make_backend (a wall-plug meter, say)."""

    name = "wallplug"

    def __init__(self, outlet: str, watts: float) -> None:
        super().__init__()
        self.outlet, self.watts = outlet, watts
        self.devices = (Device(f"plug:{outlet}", "simulated", "plug", Method.SIMULATED),)

    def read_j(self) -> Sequence[float]:
        return (0.0,)

    def rank_kwargs(self) -> dict[str, object]:
        return {"outlet": self.outlet, "watts": self.watts}


class NoKwargsBackend(HookBackend):
    rank_kwargs = None  # type: ignore[assignment]  # cannot say how to rebuild it: cls()


def test_the_parents_fallback_is_rebuilt_with_its_label() -> None:
    from pytest_co2.backends import make_backend

    parent = make_backend("estimate", cpu_tdp_w=64.0)  # what the plugin falls back to
    parent.notes.insert(0, "requested backend 'nvml' failed: no usable NVIDIA driver")
    spec = backend_spec(parent)
    assert spec["parts"] == [
        {
            "type": "estimate",
            "cpu_tdp_w": 64.0,
            "memory_w_per_gb": 0.0,
            "watts_per_thread": None,
            "cpu_share": 1.0,
        }
    ]
    rank = open_rank_backend(json.dumps(spec))  # JSON-safe: an env var or spawn arg
    try:
        assert rank.name == parent.name == "estimate"
        assert rank.notes[:-1] == parent.notes
        assert rank.notes[-1] == (
            f"no rank set (world 1), pid {os.getpid()}: the parent's backend (given spec)"
        )
        assert rank.devices == parent.devices
    finally:
        rank.close()
        parent.close()


def test_ranks_share_the_cpus_idle_power() -> None:
    from pytest_co2.backends import make_backend
    from pytest_co2.backends.base import Device, Method

    parent = make_backend("estimate", cpu_watts_per_thread=(0.5, 2.0))
    spec = backend_spec(parent, idle_w=(1.0, 0.0), idle_s=1.0)
    ranks = [open_rank_backend(spec, world=2) for _ in range(2)]
    try:
        for rank in ranks:  # each of 2 ranks is charged half the CPUs the parent held
            assert rank.cpu_share == 0.5
            assert rank.idle_w_held == parent.idle_w_held / 2
        idle, _ = rank_idle_w(spec, ranks[0], world=2)
        assert idle == (0.5, 0.0)  # the per-process estimate's idle, halved
        shared = type("B", (), {"devices": (Device("gpu:0", "gpu", "GPU", Method.COUNTER),)})()
        spec_gpu = {**spec, "idle": {"w": {"gpu:0": 60.0}, "seconds": 1.0}}
        assert rank_idle_w(spec_gpu, shared, world=2)[0] == (60.0,)  # a shared device: whole
    finally:
        for b in (*ranks, parent):
            b.close()


def test_a_hook_backend_and_a_composite_are_rebuilt() -> None:
    from pytest_co2.backends.composite import CompositeBackend
    from pytest_co2.backends.constant import ConstantBackend

    parent = CompositeBackend([HookBackend("A3", 12.5), ConstantBackend(40.0)], name="lab")
    rank = open_rank_backend(backend_spec(parent))
    assert rank.name == "lab" and isinstance(rank, CompositeBackend)
    plug, const = rank.parts
    assert isinstance(plug, HookBackend) and (plug.outlet, plug.watts) == ("A3", 12.5)
    assert isinstance(const, ConstantBackend) and const.power_w == 40.0
    # a backend the rank cannot rebuild: the CPU-time estimate, as the parent falls back
    with pytest.warns(BackendWarning, match=r"cannot rebuild .*NoKwargsBackend.*rank_kwargs\(\)"):
        fallback = open_rank_backend(backend_spec(NoKwargsBackend("B1", 1.0)))
    assert fallback.name == "estimate"
    assert fallback.notes[0].startswith("requested backend 'wallplug' failed in this rank: cannot")
    fallback.close()


def test_rank_r_measures_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_co2.backends.nvml as nvml_mod

    opened: list[dict[str, object]] = []

    class FakeNvmlBackend(HookBackend):
        def __init__(self, **kw: object) -> None:
            opened.append(kw)
            super().__init__("gpu", 0.0)

    spec = {
        "version": 1,
        "name": "nvml",
        "composite": False,
        "parts": [{"type": "nvml", "poll_interval_s": 0.02, "gpus": ["auto", []]}],
        "notes": [],
        "idle": None,
        "lock": None,
    }
    monkeypatch.setattr(nvml_mod, "NvmlBackend", FakeNvmlBackend)
    open_rank_backend(spec, gpu="cuda:1")
    open_rank_backend(spec)
    assert opened == [
        {"poll_interval_s": 0.02, "gpus": nvml_mod.GpuSelection("list", ("cuda:1",))},
        {"poll_interval_s": 0.02, "gpus": nvml_mod.GpuSelection("auto", ())},
    ]


def test_ranks_subtract_the_parents_idle_power_by_device_id() -> None:
    from pytest_co2.backends.constant import ConstantBackend

    parent = ConstantBackend(100.0)
    spec = backend_spec(parent, idle_w=[30.0], idle_s=2.0)
    assert spec["idle"] == {"w": {parent.devices[0].id: 30.0}, "seconds": 2.0}
    same, notes = rank_idle_w(spec, ConstantBackend(100.0))
    assert same == (30.0,) and notes == []
    other = HookBackend("C", 0.0)  # a device the parent did not measure: measured in the rank
    calls: list[float] = []
    idle, notes = rank_idle_w(spec, other, measure=lambda b, s: calls.append(s) or (7.5,))
    assert idle == (7.5,) and calls == [2.0]
    assert notes == ["idle power of plug:C measured in the rank over 2 s"]
    assert rank_idle_w(backend_spec(parent), other) == (None, [])


def test_rank_zero_locks_every_ranks_shared_devices() -> None:
    policy = SimpleNamespace(mode="lock", lock_dir="/tmp/x-locks", reason="auto: pytest-xdist")
    spec = backend_spec(HookBackend("D", 0.0), policy=policy)
    lock = job_lock(spec, [["gpu:0", "cpu:package-0"], ["gpu:1", "cpu:package-0"]])
    assert [p.rsplit("/", 1)[-1] for p in lock.paths] == [
        "cpu_package-0.lock",
        "gpu_0.lock",
        "gpu_1.lock",
    ]
    assert job_lock(backend_spec(HookBackend("D", 0.0)), [["gpu:0"]]) is None


def test_spec_from_a_co2_meter() -> None:
    policy = SimpleNamespace(mode="lock", lock_dir=None, reason="--co2-exclusive")
    guard = SimpleNamespace(policy=policy)
    guard.enter = lambda window: None
    meter = SimpleNamespace(
        backend=HookBackend("E", 1.0),
        idle_w=(3.0,),
        settings=SimpleNamespace(idle=1.5),
        on_window_enter=SimpleNamespace(__self__=guard),
    )
    spec = spec_from_meter(meter)
    assert spec["idle"] == {"w": {"plug:E": 3.0}, "seconds": 1.5}
    assert spec["lock"] == {"lock_dir": None, "reason": "--co2-exclusive"}


@pytest.mark.parametrize("world, cpus, threads", [(4, 16, 4), (2, 2, 1), (3, 2, 1), (1, 8, 8)])
def test_threads_per_rank_share_the_cores(world: int, cpus: int, threads: int) -> None:
    assert threads_per_rank(world, cpus) == threads
