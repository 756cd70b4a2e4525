"""DDP ranks measure with the parent's backend through the environment hand-off
(pytest_co2.measure.handoff and .rank), and the parent's window covers the ranks it waits for."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_co2.backends.base import BackendUnavailable, BackendWarning
from pytest_co2.distributed import (
    HANDOFF_ENV,
    backend_spec,
    handed_spec,
    open_rank_backend,
    publish,
    rank_facts,
)

# -- the hand-off (pure) ---------------------------------------------------------------------


def test_publish_puts_the_spec_and_the_parents_pid_in_the_env_and_restores() -> None:
    from pytest_co2.backends.constant import ConstantBackend

    env: dict[str, str] = {HANDOFF_ENV: "before"}
    parent = ConstantBackend(25.0)
    restore = publish(parent, idle_w=[5.0], idle_s=1.0, env=env)
    spec = handed_spec(env)
    assert spec is not None
    assert spec["parts"] == [{"type": "constant", "power_w": 25.0}]
    assert spec["idle"] == {"w": {"sim:0": 5.0}, "seconds": 1.0}
    assert spec["parent"]["pid"] == os.getpid()
    restore()
    assert env == {HANDOFF_ENV: "before"}
    restore = publish(parent, env=(empty := {}))
    restore()
    assert empty == {}


def test_a_garbled_handoff_is_one_line_naming_the_variable() -> None:
    from pytest_co2.backends.base import BackendError

    with pytest.raises(BackendError, match=r"^PYTEST_CO2_HANDOFF is not JSON \('\{oops'\)"):
        handed_spec({HANDOFF_ENV: "{oops"})
    assert handed_spec({}) is None


@pytest.mark.parametrize(
    "env, facts",
    [
        ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}, (3, 4, 1)),
        ({}, (None, 1, None)),
        ({"RANK": "x", "WORLD_SIZE": "0"}, (None, 1, None)),
    ],
)
def test_rank_facts_from_torchrun(env: dict[str, str], facts: tuple[Any, ...]) -> None:
    assert rank_facts(env) == facts


def _nvml_spec() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "auto",
        "composite": False,
        "parts": [{"type": "nvml", "poll_interval_s": 0.02, "gpus": ["auto", []]}],
        "notes": ["measuring the GPUs holding a CUDA context of this process: gpu:0"],
        "idle": None,
        "lock": None,
        "parent": {"pid": 4242, "host": "n1"},
    }


def test_a_torchrun_rank_measures_its_local_gpu_from_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pytest_co2.backends.nvml as nvml_mod
    from pytest_co2.backends.constant import ConstantBackend

    opened: list[Any] = []

    class FakeNvmlBackend(ConstantBackend):
        def __init__(self, **kw: Any) -> None:
            opened.append(kw["gpus"])
            super().__init__(1.0)

    monkeypatch.setattr(nvml_mod, "NvmlBackend", FakeNvmlBackend)
    env = {
        HANDOFF_ENV: json.dumps(_nvml_spec()),
        "RANK": "5",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
    }
    rank = open_rank_backend(env=env)
    assert opened == [nvml_mod.GpuSelection("list", ("cuda:1",))]
    assert rank.name == "auto"
    assert rank.notes == [
        "measuring the GPUs holding a CUDA context of this process: gpu:0",
        f"rank 5 of 8, pid {os.getpid()}: the parent's backend (handed by the pytest-co2 "
        "session through PYTEST_CO2_HANDOFF, parent pid 4242; measuring cuda:1)",
    ]


def _no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_co2.backends.nvml as nvml_mod

    def unavailable(**kw: Any) -> Any:
        raise BackendUnavailable("no usable NVIDIA driver (nvmlInit failed: Driver Not Loaded)")

    monkeypatch.setattr(nvml_mod, "NvmlBackend", unavailable)


def test_a_rank_whose_backend_cannot_open_falls_back_like_the_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_driver(monkeypatch)
    env = {HANDOFF_ENV: json.dumps(_nvml_spec()), "WORLD_SIZE": "2", "RANK": "1"}
    with pytest.warns(BackendWarning, match=r"backend 'auto' is unusable in this rank \(no usa"):
        rank = open_rank_backend(env=env)
    try:
        assert rank.name == "estimate"
        assert rank.cpu_share == 0.5  # the CPUs the parent held, split over 2 ranks
        assert rank.notes[1] == (
            "requested backend 'auto' failed in this rank: no usable NVIDIA driver "
            "(nvmlInit failed: Driver Not Loaded)"
        )
        assert rank.notes[-1].startswith("rank 1 of 2, pid ")
    finally:
        rank.close()


def test_a_composite_rank_leaves_out_the_part_that_cannot_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_driver(monkeypatch)
    spec = _nvml_spec()
    spec["parts"].append(
        {
            "type": "estimate",
            "cpu_tdp_w": None,
            "memory_w_per_gb": 0.0,
            "watts_per_thread": [0.5, 2.0],
            "cpu_share": 0.5,
        }
    )
    spec["composite"] = True
    env = {HANDOFF_ENV: json.dumps(spec), "WORLD_SIZE": "2", "RANK": "1"}
    with pytest.warns(BackendWarning, match=r"nvml is unusable in this rank \(no usable NVIDIA"):
        rank = open_rank_backend(env=env)
    try:
        assert rank.name == "auto"
        (cpu,) = rank.parts
        assert cpu.cpu_share == 0.25  # the parent's half of the CPUs, split over 2 ranks
        assert cpu.watts_override == (0.5, 2.0)
        assert (
            "nvml is unusable in this rank (no usable NVIDIA driver (nvmlInit failed: Driver "
            "Not Loaded)): left out"
        ) in rank.notes
    finally:
        rank.close()


def test_a_backend_the_parent_cannot_describe_is_handed_as_its_error() -> None:
    from pytest_co2.backends.base import Backend, Device, Method

    class Odd(Backend):
        name = "odd"

        def __init__(self) -> None:
            super().__init__()
            self.devices = (Device("odd:0", "simulated", "odd", Method.SIMULATED),)

        def read_j(self) -> tuple[float]:
            return (0.0,)

        def rank_kwargs(self) -> dict[str, Any]:
            return {"handle": object()}  # not JSON

    env: dict[str, str] = {}
    publish(Odd(), env=env)
    with pytest.warns(BackendWarning, match=r"'odd' is unusable in this rank \(the parent could"):
        rank = open_rank_backend(env=env)
    assert rank.name == "estimate" and "is not JSON serializable" in rank.notes[0]
    rank.close()


def test_without_a_session_a_rank_opens_auto_and_says_so() -> None:
    rank = open_rank_backend(env={})
    try:
        assert rank.notes[-1] == "no pytest-co2 session handed a backend to this process: auto"
    finally:
        rank.close()


def test_a_given_spec_still_wins_over_the_env() -> None:
    from pytest_co2.backends.constant import ConstantBackend

    env = {HANDOFF_ENV: json.dumps(_nvml_spec())}
    rank = open_rank_backend(backend_spec(ConstantBackend(7.0)), env=env)
    assert rank.power_w == 7.0 and "(given spec)" in rank.notes[-1]


# -- real ranks under a pytest-co2 session ------------------------------------------------------

DDP_TEST = """
import json, os, time

import torch.multiprocessing as mp

OUT = os.environ["DDP_OUT"]


def _busy(seconds):
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass


def _rank(rank, out):
    import torch
    import torch.distributed as dist

    from pytest_co2.distributed import combine_across_ranks, rank_meter

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=2)
    try:
        meter = rank_meter()  # no spec: the parent's backend from the environment
        with meter.measure("train") as w:
            for _ in range(3):
                _busy(0.05)
                w.step()
        job = combine_across_ranks(w.measurement)
        data = {
            "rank": w.measurement.to_dict(),
            "job": job.to_dict(),
            "notes": list(meter.backend.notes),
            "cpu_s": time.process_time(),
            "cpu_share": getattr(meter.backend, "cpu_share", None),
        }
        with open(f"{out}/rank{rank}.json", "w") as fh:
            json.dump(data, fh)
    finally:
        dist.destroy_process_group()


def test_ddp(co2_meter):
    with co2_meter.measure("job") as w:
        mp.spawn(_rank, args=(OUT,), nprocs=2, join=True)
        w.step()
    with open(f"{OUT}/parent.json", "w") as fh:
        json.dump({"pid": os.getpid(), "window": w.measurement.to_dict(),
                   "notes": list(co2_meter.backend.notes),
                   "handoff": os.environ.get("PYTEST_CO2_HANDOFF")}, fh)
"""


def _run_ddp(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    if importlib.util.find_spec("torch") is None:  # not imported here: pytester would unload it
        pytest.skip("torch is not installed")
    out = pytester.path / "out"
    out.mkdir()
    monkeypatch.setenv("DDP_OUT", str(out))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(HANDOFF_ENV, raising=False)
    pytester.makepyfile(test_ddp=DDP_TEST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", *args)
    assert result.ret == 0, result.stdout.str()[-2000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return json.loads((out / "parent.json").read_text()), ranks


def test_spawned_ranks_measure_with_the_parents_simulated_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, ranks = _run_ddp(pytester, monkeypatch, "--co2-backend=constant:50")
    assert json.loads(parent["handoff"])["parent"]["pid"] == parent["pid"]
    for r, rank in enumerate(ranks):
        m = rank["rank"]
        assert m["backend"] == "constant"
        assert m["method"] == "simulated"
        # P x t: the meter and the backend read the same clock microseconds apart
        assert m["energy_j"] == pytest.approx(50.0 * m["duration_s"], rel=1e-4)
        assert rank["notes"][-1] == (
            f"rank {r} of 2, pid {rank['notes'][-1].split('pid ')[1].split(':')[0]}: the "
            "parent's backend (handed by the pytest-co2 session through PYTEST_CO2_HANDOFF, "
            f"parent pid {parent['pid']})"
        )
        assert f"rank {r} of 2" in m["notes"][0]
        assert m["notes"][1] == "devices: simulated device at 50 W [simulated]"
    job = ranks[0]["job"]
    assert job == ranks[1]["job"]
    assert job["ranks"] == 2
    assert job["energy_j"] == pytest.approx(
        math.fsum(r["rank"]["energy_j"] for r in ranks), rel=1e-12
    )


def test_ranks_fall_back_like_the_parent_and_its_window_counts_their_cpu(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, ranks = _run_ddp(
        pytester, monkeypatch, "--co2-backend=nvml", "--co2-cpu-watts-per-thread=0,1"
    )
    failed = parent["notes"][0]
    assert failed.startswith("requested backend 'nvml' failed: ")  # the parent's fallback
    for rank in ranks:
        assert rank["rank"]["backend"] == "estimate"
        assert rank["notes"][0] == failed  # the rank says the same, first
        assert rank["cpu_share"] == 0.5  # each rank charged half the parent's CPUs
    # No call in the parent test's code beyond its window: the ranks it waited for are in it
    # (their CPU seconds at 1 W per busy thread, the parent's own on top).
    ranks_cpu_j = math.fsum(r["cpu_s"] for r in ranks) * 1.0
    assert ranks_cpu_j > 0.3
    assert parent["window"]["energy_j"] >= ranks_cpu_j


def test_the_handoff_ends_with_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        def test_one(co2_meter):
            with co2_meter.measure("x") as w:
                w.step()
            assert "PYTEST_CO2_HANDOFF" in os.environ
        """
    )
    before = os.environ.get(HANDOFF_ENV)
    result = pytester.runpytest_inprocess("-q", "--co2-backend=constant:5")
    assert result.ret == 0
    assert os.environ.get(HANDOFF_ENV) == before
    Path  # noqa: B018  (Path kept for the helpers' annotations)
