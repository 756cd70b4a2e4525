"""The GPU backend on the trace-driven emulator (tests/gpu_emulator.py): exact or bounded
figures for locks, resets, per-GPU faults, idle, short windows and the small bugs."""

from __future__ import annotations

import dataclasses
import fcntl
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gpu_emulator import EmuGpu, Node, Trace

from pytest_co2.backends import BackendWarning
from pytest_co2.backends import cuda as cuda_helpers
from pytest_co2.backends.amdsmi import AmdsmiBackend
from pytest_co2.backends.nvml import NvmlBackend
from pytest_co2.measure.lock_dir import lock_file_name
from pytest_co2.measure.lock_policy import decide
from pytest_co2.measure.meter import Meter
from pytest_co2.measure.records import Measurement
from pytest_co2.measure.window_guard import WindowGuard

MY_PID = 31337


def nvml_backend(node: Node, **kw: Any) -> NvmlBackend:
    kw.setdefault("visible_devices", None)
    kw.setdefault("nvidia_visible_devices", None)
    kw.setdefault("pid", MY_PID)
    return NvmlBackend(node.nvml(), clock=node.clock, sleep=node.clock.sleep, **kw)


def amd_backend(node: Node, **kw: Any) -> AmdsmiBackend:
    for var in ("rocr_visible_devices", "hip_visible_devices", "cuda_visible_devices"):
        kw.setdefault(var, None)
    kw.setdefault("pid", MY_PID)
    return AmdsmiBackend(node.amdsmi(), clock=node.clock, sleep=node.clock.sleep, **kw)


def align(node: Node, period_s: float = 0.1) -> None:
    """Move the clock to the next counter refresh (so counter differences are exact)."""
    t = node.clock.t
    node.clock.advance(math.ceil(round(t / period_s, 6)) * period_s - t)


def meter_of(backend: Any, guard: WindowGuard) -> Meter:
    return Meter(backend, on_window_enter=guard.enter, on_window_exit=guard.exit, sync=lambda: None)


def unlocked_guard(backend: Any) -> WindowGuard:
    return WindowGuard(decide(False, backend.devices, concurrent=False), backend=backend)


def energies(m: Measurement) -> dict[str, float]:
    return {d.device.id: d.energy_j for d in m.devices}


def two_gpus() -> Node:
    return Node(
        [
            EmuGpu(uuid="GPU-aaaa0000-0000-0000-0000-000000000000", trace=Trace(100.0)),
            EmuGpu(uuid="GPU-bbbb0000-0000-0000-0000-000000000000", trace=Trace(50.0)),
        ]
    )


def busy(lock_dir: Path, key: str) -> bool:
    """Whether another holder has the lock file of ``key`` (tried without waiting)."""
    fd = os.open(lock_dir / lock_file_name(key), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# -- (1) locks follow the measured set, by UUID -------------------------------------------------


def test_a_gpu_joining_is_locked_by_uuid_before_its_first_reading(tmp_path: Path) -> None:
    node = Node.eight_gpus()
    node.gpus[0].pids = (MY_PID,)
    with nvml_backend(node) as backend:
        assert [d.id for d in backend.devices] == ["gpu:0"]
        policy = decide(True, backend.devices, concurrent=True, lock_dir=str(tmp_path))
        guard = WindowGuard(policy, backend=backend)
        meter = meter_of(backend, guard)
        uuid0, uuid3 = node.gpus[0].uuid, node.gpus[3].uuid
        with meter.measure("on gpu 0"):
            assert busy(tmp_path, uuid0) and not busy(tmp_path, uuid3)
            node.clock.advance(1.0)
        node.gpus[0].pids, node.gpus[3].pids = (), (MY_PID,)  # the next test uses GPU 3
        with meter.measure("on gpu 3") as m:
            assert [d.id for d in backend.devices] == ["gpu:3"]
            assert busy(tmp_path, uuid3) and not busy(tmp_path, uuid0)
            node.clock.advance(1.0)
        assert not busy(tmp_path, uuid3)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            lock_file_name(u) for u in (uuid0, uuid3)
        )
        assert any("held the lock on gpu:3" in n for n in m.measurement.notes)


def lock_notes(guard: WindowGuard, window: object) -> list[str]:
    return [n for n in guard.exit(window) if n.startswith("exclusive")]


def _worker(node: Node, pid: int, tmp_path: Path) -> tuple[NvmlBackend, WindowGuard]:
    backend = nvml_backend(node, pid=pid)
    policy = decide(
        True, backend.devices, concurrent=True, lock_dir=str(tmp_path), lock_timeout_s=0.0
    )
    return backend, WindowGuard(policy, backend=backend)


def test_two_workers_on_two_gpus_do_not_wait_and_on_one_gpu_are_serialized(
    tmp_path: Path,
) -> None:
    node = Node.eight_gpus()
    node.gpus[0].pids, node.gpus[1].pids = (1001,), (1002,)
    a, guard_a = _worker(node, 1001, tmp_path)
    b, guard_b = _worker(node, 1002, tmp_path)
    with a, b:
        window_a, window_b = object(), object()
        guard_a.enter(window_a)
        guard_b.enter(window_b)  # another GPU: no wait (a timeout of 0 would say NOT locked)
        (note_b,) = lock_notes(guard_b, window_b)
        assert note_b.startswith("exclusive: held the lock on gpu:1")
        node.gpus[1].pids, node.gpus[0].pids = (), (1001, 1002)  # both on GPU 0 now
        assert b.refresh_devices() and [d.id for d in b.devices] == ["gpu:0"]
        with pytest.warns(UserWarning, match="was held by another process"):
            guard_b.enter(window_b)
        (note_b,) = lock_notes(guard_b, window_b)
        assert (
            note_b.startswith("exclusive: NOT locked")
            and lock_file_name(node.gpus[0].uuid) in note_b
        )
        lock_notes(guard_a, window_a)
        guard_b._busy_since_timeout = False  # a fresh window after the holder let go
        guard_b.enter(window_b)
        assert lock_notes(guard_b, window_b)[0].startswith("exclusive: held the lock on gpu:0")


# -- (2) a reset ends that GPU's window, counts again from the next ---------------------------


def test_a_reset_ends_that_gpus_window_and_counts_again_from_the_next() -> None:
    node = two_gpus()
    with nvml_backend(node, gpus="all") as backend:
        meter = meter_of(backend, unlocked_guard(backend))
        align(node)
        with meter.measure("before", unit="step") as m1:
            node.clock.advance(1.0)
        assert energies(m1.measurement) == {"gpu:0": 100.0, "gpu:1": 50.0}
        with (
            pytest.warns(BackendWarning, match="GPU 0's energy counter went backwards"),
            meter.measure("reset", unit="step") as m2,
        ):
            node.clock.advance(0.5)
            m2.step()
            node.gpus[0].resets.append(node.clock.t + 0.05)
            node.clock.advance(0.25)
            m2.step()  # sees the reset: GPU 0 is held from here to the window's end
            node.clock.advance(0.25)
            m2.step()
        rec = m2.measurement
        assert energies(rec) == {"gpu:0": 50.0, "gpu:1": 50.0}  # GPU 0 after the reset: out
        assert not rec.complete
        assert any("went backwards" in n for n in rec.notes)
        assert any("gpu:0 could not be read (its energy counter was reset)" in n for n in rec.notes)
        with meter.measure("after", unit="step") as m3:
            node.clock.advance(1.0)
        assert m3.measurement.complete
        assert energies(m3.measurement) == {"gpu:0": 100.0, "gpu:1": 50.0}


# -- (3) a per-GPU fault drops that GPU only -----------------------------------------------------


def test_a_lost_gpu_ends_its_part_and_the_others_go_on() -> None:
    node = two_gpus()
    with nvml_backend(node, gpus="all") as backend:
        meter = meter_of(backend, unlocked_guard(backend))
        align(node)
        with (
            pytest.warns(BackendWarning, match="reading GPU 1's energy counter failed"),
            meter.measure("lost", unit="step") as m,
        ):
            node.clock.advance(0.5)
            m.step()
            node.gpus[1].lost_at = node.clock.t
            node.clock.advance(0.5)
            m.step()
        assert energies(m.measurement) == {"gpu:0": 100.0, "gpu:1": 25.0}
        assert not m.measurement.complete
        with meter.measure("later") as m2:
            node.clock.advance(1.0)
        assert energies(m2.measurement) == {"gpu:0": 100.0, "gpu:1": 0.0}
        assert not m2.measurement.complete


@pytest.mark.parametrize("fault", ["name_fails", "lost"])
def test_a_gpu_failing_at_open_is_left_out_with_a_note(fault: str) -> None:
    node = two_gpus()
    if fault == "lost":
        node.gpus[1].lost_at = 0.0
    else:
        node.gpus[1].name_fails = True
    with nvml_backend(node, gpus="all") as backend:
        assert [d.id for d in backend.devices] == ["gpu:0"]
        (note,) = [n for n in backend.notes if n.startswith("GPU 1 is not measured")]
        assert "GPU is lost" in note if fault == "lost" else "could not read its name" in note


# -- (5) idle under the lock, cold and warm ------------------------------------------------------


def test_idle_is_measured_under_the_lock_cold_then_warm(tmp_path: Path) -> None:
    from pytest_co2.options import Settings
    from pytest_co2.plugin.provider import BackendProvider

    node = Node([EmuGpu(uuid="GPU-cccc0000-0000-0000-0000-000000000000")])
    node.gpus[0].trace = Trace(60.0, warm_idle_w=90.0)
    node.gpus[0].pids = (MY_PID,)
    backend = nvml_backend(node)
    held_while_sleeping: list[bool] = []
    sleep = node.clock.sleep

    def sleep_and_look(seconds: float) -> None:
        held_while_sleeping.append(busy(tmp_path, node.gpus[0].uuid))
        sleep(seconds)

    backend.sleep = sleep_and_look
    config = SimpleNamespace(hook=SimpleNamespace(pytest_co2_make_backend=lambda **kw: backend))
    settings = dataclasses.replace(
        Settings(), idle=2.0, exclusive=True, lock_dir=str(tmp_path), backend="nvml"
    )
    provider = BackendProvider(config, settings)  # type: ignore[arg-type]
    align(node)
    assert provider.backend is backend
    assert provider.idle_w == (60.0,) and held_while_sleeping == [True]
    assert provider.idle_extra() == {"idle_locked": True}  # no GPU window yet: no warm idle
    assert provider.guard is not None
    meter = meter_of(backend, provider.guard)
    with meter.measure("work"):
        node.work(0, 1.0, 300.0)
    align(node)
    facts = provider.facts().to_dict()
    assert facts["idle_w"] == {"gpu:0": 60.0}
    assert facts["idle_warm_w"] == {"gpu:0": 90.0} and facts["idle_locked"] is True
    assert held_while_sleeping == [True, True]
    backend.close()


# -- (6) the counter period, measured; short windows fine-sampled, with a bound ----------------


@pytest.mark.parametrize("period_s", [0.02, 0.05, 0.1])
def test_the_counter_period_is_measured_at_open(period_s: float) -> None:
    node = Node([EmuGpu(counter_period_s=period_s, counter_phase_s=0.013)])
    with nvml_backend(node) as backend:
        assert backend.devices[0].update_period_s == pytest.approx(period_s, abs=0.0011)
        assert "(measured at open: the median of " in " ".join(backend.notes)


def _short_window(node: Node, backend: NvmlBackend) -> tuple[Measurement, float]:
    """A 60 ms window: 10 ms idle (70 W), then 50 ms at 300 W; returns it and the truth."""
    meter = meter_of(backend, unlocked_guard(backend))
    align(node)
    t0 = node.clock.t
    with meter.measure("short") as m:
        node.clock.advance(0.01)
        node.work(0, 0.05, 300.0)
    return m.measurement, node.true_energy_j(0, t0, node.clock.t)


def test_a_window_shorter_than_the_period_is_fine_sampled_within_its_bound() -> None:
    full_time = dict(sensor_period_s=0.001, sensor_window_s=0.001)  # a sensor that sees all
    node = Node([EmuGpu(trace=Trace(70.0), **full_time)])
    with nvml_backend(node) as backend:
        rec, truth = _short_window(node, backend)
    assert truth == pytest.approx(15.7)
    (note,) = [n for n in rec.notes if n.startswith("fine-sampled: ")]
    bound = float(note.split("error bound ")[1].split(" J")[0])
    assert abs(rec.energy_j - truth) <= bound
    two_point = (70.0 + 300.0) / 2 * 0.06  # what power x time at the two ends gives: 11.1 J
    assert abs(rec.energy_j - truth) < 0.1 * abs(two_point - truth)
    assert "25% of the time" in note
    assert not any("quantization error" in n for n in rec.notes)


def test_a_part_time_sensor_is_bounded_where_it_looked_and_says_so() -> None:
    node = Node([EmuGpu(trace=Trace(70.0))])  # sees 25 ms of every 100 ms (A100/H100)
    with nvml_backend(node) as backend:
        rec, truth = _short_window(node, backend)
    (note,) = [n for n in rec.notes if n.startswith("fine-sampled: ")]
    bound = float(note.split("error bound ")[1].split(" J")[0])
    assert abs(rec.energy_j - truth) <= bound  # the burst began in a slice the sensor saw
    assert "the counter, for windows of several periods, is the trustworthy figure" in note


# -- (7) the small bugs --------------------------------------------------------------------------


@pytest.mark.parametrize("value_type", range(7))
def test_the_instant_field_is_decoded_by_its_value_type(value_type: int) -> None:
    node = Node([EmuGpu(trace=Trace(61.5), field_value_type=value_type)])  # fits 16 bits
    with nvml_backend(node) as backend:
        assert backend.read_power_w() == [61.5]


@pytest.mark.parametrize(
    "name, instant", [("NVIDIA A100-SXM4-40GB", True), ("NVIDIA RTX A1000", False),
                      ("NVIDIA A30", True), ("NVIDIA RTX A3000 Laptop GPU", False)],
)  # fmt: skip
def test_only_ga100_power_usage_is_instant(name: str, instant: bool) -> None:
    gpu = EmuGpu(name=name, arch=7, has_counter=False, field_value_type=None)
    with nvml_backend(Node([gpu])) as backend:
        assert backend.devices[0].update_period_s == (0.02 if instant else 1.0)


def test_amd_narrows_to_the_gpus_in_use() -> None:
    node = Node(
        [EmuGpu(name="AMD Instinct MI250X", uuid=f"{i}", bdf=f"0000:0{i}:00.0") for i in range(4)]
    )
    node.gpus[2].pids = (MY_PID,)
    node.gpus[3].pids = (4242,)
    with amd_backend(node) as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:2"]
        node.gpus[2].pids, node.gpus[1].pids = (), (MY_PID,)
        assert backend.refresh_devices() and [d.id for d in backend.devices] == ["amdgpu:1"]


@pytest.mark.parametrize("all_report", [False, True])
def test_amd_compute_partitions_count_once(all_report: bool) -> None:
    node = Node.mi300x_cpx(physical=2, partitions=8, all_report=all_report)
    with amd_backend(node, gpus="all") as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:0", "amdgpu:8"]
        assert sum("compute partition" in n for n in backend.notes) == 14
        align(node, 0.001)
        e0 = backend.read_j()
        node.clock.advance(1.0)
        assert [b - a for a, b in zip(e0, backend.read_j(), strict=True)] == pytest.approx(
            [140.0, 140.0], abs=2e-5
        )
    node.gpus[3].pids = (MY_PID,)  # a process on partition 3: the physical GPU is measured
    with amd_backend(node) as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:0"]


def test_in_a_container_only_torch_contexts_say_which_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node.eight_gpus()
    node.gpus[2].pids = (98765,)  # our process, as the host numbers it
    monkeypatch.setattr(cuda_helpers, "context_device_indices", lambda: [0])
    monkeypatch.setattr(cuda_helpers, "device_uuid", lambda k: node.gpus[2].uuid[4:])
    with nvml_backend(node) as backend:
        assert [d.id for d in backend.devices] == ["gpu:2"]
        assert any("known from torch's contexts only" in n for n in backend.notes)


def test_eight_gpus_with_another_process_count_only_ours() -> None:
    node = Node.eight_gpus()  # another process bursts on GPUs 5 and 7
    node.gpus[1].pids = (MY_PID,)
    with nvml_backend(node) as backend:
        meter = meter_of(backend, unlocked_guard(backend))
        align(node)
        t0 = node.clock.t
        with meter.measure("ours") as m:
            node.work(1, 2.0, 250.0)
        assert energies(m.measurement) == {"gpu:1": 500.0}
        assert node.true_energy_j(5, t0, node.clock.t) > 2 * 70.0  # the other's, not counted
