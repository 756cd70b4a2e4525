"""The carbontracker adapter: its components only, never the network."""

from __future__ import annotations

import math
import socket
import sys
import time
import warnings
from typing import Any

import pytest
from warned import backend_messages

from pytest_co2.backends import BackendError, BackendWarning, Method
from pytest_co2.backends.carbontracker_adapter import CarbontrackerBackend

pytest.importorskip("carbontracker")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any attempt to connect or resolve a name fails the test (and is recorded)."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


class FakeHandler:
    """carbontracker's Handler protocol with a fixed power per device."""

    def __init__(self, names: list[str], power_w: list[float], available: bool = True) -> None:
        self.names, self.power_w, self._available = names, power_w, available
        self.inits = self.shutdowns = self.samples = 0
        self.fail: BaseException | None = None

    def available(self) -> bool:
        return self._available

    def init(self) -> None:
        self.inits += 1

    def devices(self) -> list[str]:
        return self.names

    def power_usage(self) -> list[float]:
        if self.fail is not None:
            raise self.fail
        self.samples += 1
        return list(self.power_w)

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_fallback_on_a_machine_without_rapl_or_gpu_without_network(
    no_network: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """carbontracker's own handlers, told that this machine (the fake host of the suite) has
    no RAPL and no NVIDIA GPU: carbontracker probes the real /sys and NVML itself."""
    from carbontracker.components.cpu import intel

    monkeypatch.setattr(intel.IntelCPU, "available", lambda self: False)
    try:
        from carbontracker.components.gpu import nvidia
    except ImportError:
        pass  # no pynvml: the handler cannot be imported, which the backend says
    else:
        monkeypatch.setattr(nvidia.NvidiaGPU, "available", lambda self: False)
    with pytest.warns(BackendWarning, match="fell back to the CPU-time estimate"):
        backend = CarbontrackerBackend()
    try:
        assert backend.name == "carbontracker (fallback: estimate)"
        assert [d.id for d in backend.devices] == ["cpu:process", "memory:process"]
        assert backend.method == "estimated"
        assert any("found no usable component" in n and "CPU: no RAPL" in n for n in backend.notes)
        first = backend.read_j()
        assert list(backend.read_j()) >= list(first)
    finally:
        backend.close()
    assert no_network == []


def test_polls_and_integrates_component_power(no_network: list[Any]) -> None:
    gpu = FakeHandler(["Fake GPU 0", "Fake GPU 1"], [200.0, 100.0])
    cpu = FakeHandler(["cpu:0", "dram:0"], [50.0, 5.0])
    t_before = time.perf_counter()
    backend = CarbontrackerBackend(poll_interval_s=0.01, handlers=[("gpu", gpu), ("cpu", cpu)])
    t_after = time.perf_counter()
    try:
        assert [(d.id, d.kind) for d in backend.devices] == [
            ("gpu:0", "gpu"),
            ("gpu:1", "gpu"),
            ("cpu:0", "cpu"),
            ("dram:0", "dram"),
        ]
        assert backend.devices[0].label == "Fake GPU 0 (carbontracker)"
        assert all(d.method is Method.POLLED for d in backend.devices)
        assert backend.update_period_s == 1.0
        assert backend.name == "carbontracker"
        # a few samples each, however long a busy runner keeps the poller threads waiting
        deadline = time.monotonic() + 60
        while min(gpu.samples, cpu.samples) <= 3:
            assert time.monotonic() < deadline, (gpu.samples, cpu.samples)
            time.sleep(0.01)
        t0 = time.perf_counter()
        energy = backend.read_j()
        t1 = time.perf_counter()
    finally:
        backend.close()
    for e, p in zip(energy, [200.0, 100.0, 50.0, 5.0], strict=False):
        assert p * (t0 - t_after) * 0.99 <= e <= p * (t1 - t_before) * 1.01
    assert gpu.samples > 3 and cpu.samples > 3
    assert gpu.shutdowns == cpu.shutdowns == 1


def test_gpu_only_estimates_the_cpu_with_a_warning() -> None:
    gpu = FakeHandler(["Fake GPU"], [100.0])
    cpu = FakeHandler([], [], available=False)
    with pytest.warns(BackendWarning, match="no usable CPU component"):
        backend = CarbontrackerBackend(handlers=[("gpu", gpu), ("cpu", cpu)])
    with backend:
        assert [(d.id, d.method) for d in backend.devices] == [
            ("gpu:0", Method.POLLED),
            ("cpu:process", Method.ESTIMATED),
            ("memory:process", Method.ESTIMATED),
        ]
        assert backend.method == "polled+estimated"
        assert len(backend.read_j()) == 3


def test_rapl_permission_error_is_explained() -> None:
    from carbontracker.exceptions import IntelRaplPermissionError

    class DeniedCpu(FakeHandler):
        def _get_measurements(self) -> list[int]:
            raise IntelRaplPermissionError(["/sys/class/powercap/intel-rapl:0/energy_uj"])

    cpu = DeniedCpu(["cpu:0"], [10.0])
    with pytest.warns(BackendWarning, match="fell back"):
        backend = CarbontrackerBackend(handlers=[("cpu", cpu)])
    with backend:
        assert any(
            "sudo chmod a+r /sys/class/powercap/intel-rapl:0/energy_uj" in n for n in backend.notes
        )
        assert backend.method == "estimated"
    assert cpu.shutdowns == 1


def _wait_for_error(backend: CarbontrackerBackend, index: int = 0) -> None:
    deadline = time.perf_counter() + 60.0  # ends when the poller saw it: a few ms
    while backend._pollers[index].error is None and time.perf_counter() < deadline:
        time.sleep(0.005)
    assert backend._pollers[index].error is not None


def test_a_component_that_fails_mid_run_freezes_with_a_note() -> None:
    """Issue 12: was a BackendError from every later read_j (every later test failed)."""
    gpu = FakeHandler(["Fake GPU"], [100.0])
    cpu = FakeHandler(["cpu:0"], [10.0])
    with CarbontrackerBackend(
        poll_interval_s=0.005, handlers=[("gpu", gpu), ("cpu", cpu)]
    ) as backend:
        from carbontracker.exceptions import GPUPowerUsageRetrievalError

        time.sleep(0.02)
        before = backend.read_j()
        gpu.fail = GPUPowerUsageRetrievalError()
        _wait_for_error(backend)
        with pytest.warns(BackendWarning) as caught:
            after = backend.read_j()
        note = (
            "carbontracker cannot read the GPU power through NVML (not supported here): its "
            "devices (gpu:0) are frozen at their last reading and not counted after that"
        )
        assert backend_messages(caught) == [f"pytest-co2: {note}"]
        assert after[0] >= before[0] and after[1] > before[1]  # the CPU goes on
        time.sleep(0.02)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once
            later = backend.read_j()
        assert later[0] == after[0] and later[1] > after[1]
        assert backend.notes[-1] == note and backend.faults == [note]
        assert backend.failed == {
            "gpu:0": "carbontracker cannot read the GPU power through NVML (not supported here)"
        }


@pytest.mark.parametrize("bad", [[math.nan], [-5.0], [math.inf], [1.0, 2.0]])
def test_unusable_power_readings_are_a_fault_not_energy(bad: list[float]) -> None:
    gpu = FakeHandler(["Fake GPU"], [100.0])
    cpu = FakeHandler(["cpu:0"], [10.0])
    with CarbontrackerBackend(
        poll_interval_s=0.005, handlers=[("gpu", gpu), ("cpu", cpu)]
    ) as backend:
        gpu.power_w = bad
        _wait_for_error(backend)
        with pytest.warns(BackendWarning, match="returned unusable power readings"):
            values = backend.read_j()
        assert all(math.isfinite(v) and v >= 0 for v in values)


def test_carbontracker_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "carbontracker"] + ["carbontracker"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes every carbontracker import fail
    with pytest.raises(BackendError, match=r"pip install 'pytest-co2\[carbontracker\]'"):
        CarbontrackerBackend()


def test_close_is_idempotent_and_read_after_close_raises() -> None:
    backend = CarbontrackerBackend(
        handlers=[("gpu", FakeHandler(["g"], [1.0])), ("cpu", FakeHandler(["cpu:0"], [1.0]))]
    )
    backend.close()
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.read_j()
