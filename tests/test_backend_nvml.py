"""NVML backend against a fake pynvml module (no GPU needed)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_co2.backends import BackendError, BackendUnavailable, Method
from pytest_co2.backends.nvml import NvmlBackend, select_visible


class FakeNVMLError(Exception):
    def __init__(self, value: int = 999) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {3: "Not Supported", 12: "NVML Shared Library Not Found"}.get(
            self.value, f"fake NVML error {self.value}"
        )


class FakeNotSupported(FakeNVMLError):
    def __init__(self) -> None:
        super().__init__(3)


class FakeGpu:
    def __init__(
        self,
        name: str,
        uuid: str,
        energy_mj: int | Callable[[], int] | None = 0,
        power_mw: float | Callable[[], float] = 100_000,
    ) -> None:
        self.name, self.uuid = name, uuid
        self.energy_mj = energy_mj  # None: the counter is not supported (pre-Volta)
        self.power_mw = power_mw


class FakeNvml:
    """The pynvml functions the backend uses, over a list of fake GPUs."""

    NVMLError = FakeNVMLError
    NVMLError_NotSupported = FakeNotSupported

    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0
        self.fail_reads = False

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)
        self.init_calls += 1

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> bytes:
        return handle.name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return handle.uuid

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        if self.fail_reads:
            raise FakeNVMLError(15)
        if handle.energy_mj is None:
            raise FakeNotSupported()
        value = handle.energy_mj
        return value() if callable(value) else value

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        value = handle.power_mw
        return int(value() if callable(value) else value)


UUIDS = [
    "GPU-aaa11111-0000-0000-0000-000000000000",
    "GPU-bbb22222-0000-0000-0000-000000000000",
    "GPU-bbc33333-0000-0000-0000-000000000000",
]


def three_gpus() -> FakeNvml:
    return FakeNvml(
        [FakeGpu(f"NVIDIA Fake {i}", UUIDS[i], energy_mj=1_000_000 * (i + 1)) for i in range(3)]
    )


def test_counter_path_is_exact_and_labelled() -> None:
    nvml = three_gpus()
    with NvmlBackend(nvml, visible_devices=None) as backend:
        assert [d.id for d in backend.devices] == ["gpu:0", "gpu:1", "gpu:2"]
        assert [d.label for d in backend.devices] == [
            "NVIDIA Fake 0",
            "NVIDIA Fake 1",
            "NVIDIA Fake 2",
        ]
        assert all(
            d.kind == "gpu" and d.method is Method.COUNTER and d.shared for d in backend.devices
        )
        assert backend.update_period_s == 0.1
        assert backend.method == "counter"
        assert list(backend.read_j()) == [0.0, 0.0, 0.0]
        nvml.gpus[0].energy_mj = 1_000_000 + 250_500  # +250.5 J
        nvml.gpus[2].energy_mj = 3_000_000 + 1_000
        assert list(backend.read_j()) == [250.5, 0.0, 1.0]
    assert nvml.init_calls == 1 and nvml.shutdown_calls == 1


def test_polled_path_integrates_power_and_is_labelled() -> None:
    nvml = FakeNvml([FakeGpu("Tesla P100", UUIDS[0], energy_mj=None, power_mw=150_000)])
    t_before = time.perf_counter()
    backend = NvmlBackend(nvml, visible_devices=None, poll_interval_s=0.005)
    t_after = time.perf_counter()
    try:
        (device,) = backend.devices
        assert device.method is Method.POLLED and device.id == "gpu:0"
        assert device.update_period_s == 1.0  # the power reading is a 1 s moving average
        assert backend.method == "polled"
        assert any("1 s moving average" in n and "polled every 5 ms" in n for n in backend.notes)
        time.sleep(0.1)
        t0 = time.perf_counter()
        (energy_j,) = backend.read_j()
        t1 = time.perf_counter()
    finally:
        backend.close()
    # constant power: the integral is 150 W x the time since the backend opened
    assert 150.0 * (t0 - t_after) <= energy_j <= 150.0 * (t1 - t_before)


def test_polled_path_follows_a_power_ramp() -> None:
    t_start = time.perf_counter()

    def ramp_mw() -> float:  # 100 W rising by 1000 W/s
        return (100.0 + 1000.0 * (time.perf_counter() - t_start)) * 1000.0

    nvml = FakeNvml([FakeGpu("Tesla K80", UUIDS[0], energy_mj=None, power_mw=ramp_mw)])
    with NvmlBackend(nvml, visible_devices=None, poll_interval_s=0.002) as backend:
        t_a = time.perf_counter()
        (e_a,) = backend.read_j()
        time.sleep(0.2)
        (e_b,) = backend.read_j()
        t_b = time.perf_counter()

    def integral(t: float) -> float:
        x = t - t_start
        return 100.0 * x + 500.0 * x * x

    # the last segment is extended with the last sampled power: within a few percent
    assert e_b - e_a == pytest.approx(integral(t_b) - integral(t_a), rel=0.05)


def test_counter_and_polled_gpus_together() -> None:
    nvml = FakeNvml(
        [
            FakeGpu("V100", UUIDS[0], energy_mj=5_000),
            FakeGpu("P100", UUIDS[1], energy_mj=None, power_mw=50_000),
        ]
    )
    with NvmlBackend(nvml, visible_devices=None) as backend:
        assert [(d.id, d.method) for d in backend.devices] == [
            ("gpu:0", Method.COUNTER),
            ("gpu:1", Method.POLLED),
        ]
        assert backend.method == "counter+polled"
        nvml.gpus[0].energy_mj = 7_000
        energy = backend.read_j()
        assert energy[0] == 2.0 and energy[1] >= 0.0


@pytest.mark.parametrize(
    "visible, ids",
    [
        (None, ["gpu:0", "gpu:1", "gpu:2"]),  # unset: every GPU
        ("1", ["gpu:1"]),
        ("2,0", ["gpu:2", "gpu:0"]),  # CUDA's order
        (" 0 , 2 ", ["gpu:0", "gpu:2"]),
        ("GPU-bbb2", ["gpu:1"]),  # a unique UUID prefix, as CUDA allows
        (UUIDS[2], ["gpu:2"]),
        ("gpu-AAA1", ["gpu:0"]),
        ("0,7,1", ["gpu:0"]),  # CUDA stops at the first invalid entry
        ("1,GPU-bb,0", ["gpu:1"]),  # an ambiguous prefix is invalid
        ("0,0", ["gpu:0"]),
    ],
)
def test_cuda_visible_devices(visible: str | None, ids: list[str]) -> None:
    with NvmlBackend(three_gpus(), visible_devices=visible) as backend:
        assert [d.id for d in backend.devices] == ids


def test_cuda_visible_devices_ignored_entries_are_noted() -> None:
    with NvmlBackend(three_gpus(), visible_devices="0,7,1") as backend:
        assert any("'7' is not a GPU here" in n and "7,1" in n for n in backend.notes)


@pytest.mark.parametrize("visible", ["", "  ", "-1", "5", "GPU-zzz", "GPU-bb"])
def test_no_visible_gpu_is_unavailable(visible: str) -> None:
    nvml = three_gpus()
    with pytest.raises(BackendUnavailable, match="selects no GPU"):
        NvmlBackend(nvml, visible_devices=visible)
    assert nvml.shutdown_calls == nvml.init_calls == 1


def test_mig_instance_is_reported_as_unsupported() -> None:
    nvml = three_gpus()
    with pytest.raises(BackendError, match="MIG") as info:
        NvmlBackend(nvml, visible_devices="MIG-4b5f2a1c-0000-0000-0000-000000000000")
    assert not isinstance(info.value, BackendUnavailable)
    assert "--co2-backend=estimate" in str(info.value)
    assert nvml.shutdown_calls == 1


def test_visible_devices_default_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbc")
    with NvmlBackend(three_gpus()) as backend:
        assert [d.id for d in backend.devices] == ["gpu:2"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with NvmlBackend(three_gpus()) as backend:
        assert len(backend.devices) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(BackendUnavailable):
        NvmlBackend(three_gpus())


def test_index_order_note_when_cuda_order_may_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    with NvmlBackend(three_gpus(), visible_devices="1") as backend:
        assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in n for n in backend.notes)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    with NvmlBackend(three_gpus(), visible_devices="1") as backend:
        assert not any("CUDA_DEVICE_ORDER" in n for n in backend.notes)


def test_select_visible_directly() -> None:
    assert select_visible(None, 2) == ([0, 1], [])
    assert select_visible("", 2) == ([], [])
    assert select_visible("1,0", 2)[0] == [1, 0]


def test_no_driver_is_unavailable() -> None:
    nvml = FakeNvml([], init_error=12)
    with pytest.raises(BackendUnavailable, match="nvmlInit failed: NVML Shared Library Not Found"):
        NvmlBackend(nvml)
    assert nvml.shutdown_calls == 0


def test_no_gpu_is_unavailable() -> None:
    nvml = FakeNvml([])
    with pytest.raises(BackendUnavailable, match="NVML reports no GPU"):
        NvmlBackend(nvml, visible_devices=None)
    assert nvml.shutdown_calls == 1


def test_pynvml_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    with pytest.raises(BackendUnavailable, match=r"pip install 'pytest-co2\[nvidia\]'"):
        NvmlBackend()


def test_read_error_is_a_backend_error() -> None:
    nvml = three_gpus()
    with NvmlBackend(nvml, visible_devices="0") as backend:
        nvml.fail_reads = True
        with pytest.raises(BackendError, match="fake NVML error 15"):
            backend.read_j()


def test_close_stops_poller_and_shuts_down_once() -> None:
    nvml = FakeNvml([FakeGpu("P100", UUIDS[0], energy_mj=None)])
    backend = NvmlBackend(nvml, visible_devices=None, poll_interval_s=0.001)
    poller = backend._poller
    assert poller is not None and poller.thread.is_alive() and poller.thread.daemon
    backend.close()
    backend.close()
    assert not poller.thread.is_alive()
    assert nvml.shutdown_calls == 1
    with pytest.raises(BackendError, match="closed"):
        backend.read_j()


POWER_W = 250.0
TICK_S = 0.001


def test_1ms_counter_measures_a_10ms_region_within_10_percent() -> None:
    t0 = time.perf_counter()

    def counter_mj() -> int:  # advances every 1 ms at 250 W
        return int(math.floor((time.perf_counter() - t0) / TICK_S) * POWER_W * TICK_S * 1000)

    nvml = FakeNvml([FakeGpu("H100", UUIDS[0], energy_mj=counter_mj)])
    with NvmlBackend(nvml, visible_devices=None) as backend:
        for _ in range(5):
            t_a = time.perf_counter()
            (e_a,) = backend.read_j()
            while time.perf_counter() - t_a < 0.0105:
                pass
            (e_b,) = backend.read_j()
            t_b = time.perf_counter()
            assert e_b - e_a == pytest.approx(POWER_W * (t_b - t_a), rel=0.10)


def test_real_pynvml_without_driver_is_unavailable() -> None:
    """On a machine without an NVIDIA driver, the real module says so (skipped elsewhere)."""
    pynvml: Any = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present")
    with pytest.raises(BackendUnavailable, match="nvmlInit failed"):
        NvmlBackend()
