"""On the emulator: the lock sets the windows actually took (by UUID) in the JSON's exclusive
block, and the selection warning's advice where a visibility variable chose the GPUs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from gpu_emulator import EmuGpu, Node, Trace
from test_gpu_backend import MY_PID, align, busy, meter_of, nvml_backend
from warned import backend_messages

from pytest_co2.backends import BackendWarning
from pytest_co2.measure.lock_policy import decide
from pytest_co2.measure.window_guard import WindowGuard
from pytest_co2.reporting.session_parts import ExclusiveInfo


def test_the_json_lists_the_lock_sets_the_windows_took_by_uuid(tmp_path: Path) -> None:
    node = Node.eight_gpus()
    node.gpus[0].pids = (MY_PID,)
    uuid0, uuid3 = node.gpus[0].uuid, node.gpus[3].uuid
    with nvml_backend(node) as backend:
        policy = decide(True, backend.devices, concurrent=True, lock_dir=str(tmp_path))
        guard = WindowGuard(policy, backend=backend)
        meter = meter_of(backend, guard)
        for _ in range(2):
            with meter.measure("on gpu 0"):
                node.clock.advance(0.5)
        node.gpus[0].pids, node.gpus[3].pids = (), (MY_PID,)  # the next test uses GPU 3
        with meter.measure("on gpu 3"):
            node.clock.advance(0.5)
        info = ExclusiveInfo.from_dict({**policy.to_dict(), "windows": guard.to_dict()})
    d = json.loads(json.dumps(info.to_dict()))
    assert d["devices"] == ["gpu:0"]  # the policy: the set at open
    assert d["windows"]["locked"] == [
        {"devices": {"gpu:0": uuid0}, "windows": 2},
        {"devices": {"gpu:3": uuid3}, "windows": 1},
    ]
    assert ExclusiveInfo.from_dict(d).to_dict() == d


def test_an_idle_hold_is_a_lock_set_of_no_window(tmp_path: Path) -> None:
    node = Node([EmuGpu(uuid="GPU-dddd0000-0000-0000-0000-000000000000")])
    with nvml_backend(node) as backend:
        policy = decide(True, backend.devices, concurrent=True, lock_dir=str(tmp_path))
        guard = WindowGuard(policy, backend=backend)
        with guard.hold():
            assert busy(tmp_path, node.gpus[0].uuid)
        assert guard.to_dict()["locked"] == [
            {"devices": {"gpu:0": node.gpus[0].uuid}, "windows": 0}
        ]


def test_without_a_lock_nothing_is_listed_as_locked() -> None:
    node = Node([EmuGpu()])
    with nvml_backend(node) as backend:
        guard = WindowGuard(decide(False, backend.devices, concurrent=True), backend=backend)
        guard.enter(window := object())
        assert any("may include other processes" in n for n in guard.exit(window))
        assert guard.to_dict()["locked"] == []


def test_the_provider_reports_the_live_lock_set(tmp_path: Path) -> None:
    from pytest_co2.options import Settings
    from pytest_co2.plugin.provider import BackendProvider

    node = Node([EmuGpu(uuid="GPU-eeee0000-0000-0000-0000-000000000000", trace=Trace(60.0))])
    node.gpus[0].pids = (MY_PID,)
    backend = nvml_backend(node)
    config = SimpleNamespace(hook=SimpleNamespace(pytest_co2_make_backend=lambda **kw: backend))
    settings = dataclasses.replace(
        Settings(), exclusive=True, lock_dir=str(tmp_path), backend="nvml"
    )
    provider = BackendProvider(config, settings)  # type: ignore[arg-type]
    assert provider.backend is backend and provider.guard is not None
    align(node)
    with meter_of(backend, provider.guard).measure("work"):
        node.work(0, 1.0, 300.0)
    info = provider.exclusive_info()
    assert info is not None and info.windows is not None
    assert info.windows["locked"] == [{"devices": {"gpu:0": node.gpus[0].uuid}, "windows": 1}]
    backend.close()


def test_nvidia_visible_devices_advice_names_cuda_visible_devices() -> None:
    node = Node.eight_gpus()
    spec = f"{node.gpus[1].uuid},{node.gpus[2].uuid}"
    with pytest.warns(BackendWarning) as caught:
        backend = nvml_backend(node, nvidia_visible_devices=spec)
    with backend:
        assert [d.id for d in backend.devices] == ["gpu:1", "gpu:2"]
    (message,) = backend_messages(caught)
    assert message.endswith(
        f"charged the others' idle power; NVIDIA_VISIBLE_DEVICES={spec!r} leaves all of them "
        "visible, so name those the tests use with --co2-gpus (e.g. cuda:0) or list only "
        "those in CUDA_VISIBLE_DEVICES"
    )
