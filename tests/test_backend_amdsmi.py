"""AMD SMI backend against a fake ``amdsmi`` module (no AMD GPU or ROCm needed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from terminal_text import unwrapped
from warned import backend_messages

from pytest_co2.backends import (
    BackendError,
    BackendUnavailable,
    BackendWarning,
    Method,
    check_backend_spec,
    make_backend,
)
from pytest_co2.backends import amdsmi as amd_module
from pytest_co2.backends import rapl as rapl_module
from pytest_co2.backends.amdsmi import (
    AmdsmiBackend,
    energy_reading,
    power_w,
    select_visible,
)
from pytest_co2.backends.gpu_presence import amd_driver_present

NOT_SUPPORTED, NO_PERM, TIMEOUT, DRIVER_NOT_LOADED = 2, 10, 8, 34
NA = "N/A"


class FakeAmdSmiException(Exception):
    pass


class FakeAmdSmiLibraryException(FakeAmdSmiException):
    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code

    def __str__(self) -> str:
        return f"An error occured with code: {self.err_code}"


class FakeGpu:
    """One AMD GPU as AMD SMI describes it."""

    def __init__(
        self,
        index: int,
        *,
        hip_id: int | None = None,
        ticks: int | str | Callable[[], int] | None = 1_000_000,
        resolution_uj: float | str = 15.625,
        key: str = "energy_accumulator",
        power: dict[str, Any] | None = None,
        denied: bool = False,
        name: str = "AMD Instinct MI300X",
    ) -> None:
        self.index = index
        self.hip_id = index if hip_id is None else hip_id
        self.uuid = f"{index:02x}ff74a1-0000-1000-80{index:02x}-9ee4fb78e9ba"
        self.hip_uuid = f"GPU-{index:x}{index:x}4b2c1a9f8d3e6f"
        self.bdf = f"0000:{index + 1:02x}:00.0"
        self.ticks = ticks  # None: no energy counter (AMDSMI_STATUS_NOT_SUPPORTED)
        self.resolution_uj = resolution_uj
        self.key = key  # "power" before ROCm 6.4
        self.power = (
            {"current_socket_power": 300, "average_socket_power": NA, "socket_power": 300}
            if power is None
            else power
        )
        self.denied = denied
        self.name = name


class FakeAmdSmi(types.ModuleType):
    """The amdsmi functions the backend uses, over a list of fake GPUs."""

    AmdSmiException = FakeAmdSmiException
    AmdSmiLibraryException = FakeAmdSmiLibraryException
    AmdSmiInitFlags = types.SimpleNamespace(INIT_ALL_PROCESSORS=0xFFFFFFFF, INIT_AMD_GPUS=2)

    def __init__(
        self,
        gpus: list[FakeGpu],
        init_error: int | None = None,
        enumeration: bool = True,
        energy_api: bool = True,
    ) -> None:
        super().__init__("amdsmi")
        self.gpus = gpus
        self.init_error = init_error
        self.init_flags: list[Any] = []
        self.shutdown_calls = 0
        self.fail_reads = False
        if enumeration:
            self.amdsmi_get_gpu_enumeration_info = self._enumeration
        if energy_api:
            self.amdsmi_get_energy_count = self._energy

    def amdsmi_init(self, flag: Any = None) -> None:
        if self.init_error is not None:
            raise FakeAmdSmiLibraryException(self.init_error)
        self.init_flags.append(flag)

    def amdsmi_shut_down(self) -> None:
        self.shutdown_calls += 1

    def amdsmi_get_processor_handles(self) -> list[FakeGpu]:
        return list(self.gpus)

    def amdsmi_get_gpu_device_uuid(self, h: FakeGpu) -> str:
        return h.uuid

    def amdsmi_get_gpu_device_bdf(self, h: FakeGpu) -> str:
        return h.bdf

    def _enumeration(self, h: FakeGpu) -> dict[str, Any]:
        return {"drm_render": 128 + h.index, "drm_card": h.index, "hsa_id": h.hip_id + 1,
                "hip_id": h.hip_id, "hip_uuid": h.hip_uuid}  # fmt: skip

    def amdsmi_get_gpu_asic_info(self, h: FakeGpu) -> dict[str, Any]:
        return {"market_name": h.name, "vendor_id": "0x1002"}

    def _energy(self, h: FakeGpu) -> dict[str, Any]:
        if self.fail_reads:
            raise FakeAmdSmiLibraryException(TIMEOUT)
        if h.denied:
            raise FakeAmdSmiLibraryException(NO_PERM)
        if h.ticks is None:
            raise FakeAmdSmiLibraryException(NOT_SUPPORTED)
        ticks = h.ticks() if callable(h.ticks) else h.ticks
        return {h.key: ticks, "counter_resolution": h.resolution_uj, "timestamp": 3824190842400799}

    def amdsmi_get_power_info(self, h: FakeGpu) -> dict[str, Any]:
        if h.denied:
            raise FakeAmdSmiLibraryException(NO_PERM)
        return dict(h.power, gfx_voltage=NA, soc_voltage=NA, mem_voltage=NA, power_limit=750)


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def gpus(n: int, **per_gpu: dict[str, Any]) -> FakeAmdSmi:
    return FakeAmdSmi([FakeGpu(i, **per_gpu.get(f"g{i}", {})) for i in range(n)])


def _open(amd: Any, **kw: Any) -> AmdsmiBackend:
    for var in ("rocr_visible_devices", "hip_visible_devices", "cuda_visible_devices"):
        kw.setdefault(var, None)
    return AmdsmiBackend(amd, **kw)


# -- the energy counter ------------------------------------------------------------------------


def several_amd_gpus_warning(ids: list[str], var: str, value: str, within: str = "") -> str:
    """What the backend warns when ``var=value`` leaves several GPUs and none is in use."""
    return (
        f"{len(ids)} AMD GPUs are measured ({', '.join(ids)}) because none holds a GPU context "
        "of this process yet: a test that uses one is charged the others' idle power; "
        f"{var}={value!r}{within} leaves all of them visible, so name those the tests use with "
        f"--co2-gpus (e.g. cuda:0) or list only those in {var}"
    )


def test_counter_path_is_exact_and_labelled() -> None:
    amd = gpus(2, g1={"ticks": 5_000, "name": "AMD Instinct MI250X"})
    with pytest.warns(BackendWarning) as caught:
        backend = _open(amd, rocr_visible_devices="0,1")
    assert backend_messages(caught) == [
        several_amd_gpus_warning(["amdgpu:0", "amdgpu:1"], "ROCR_VISIBLE_DEVICES", "0,1")
    ]
    with backend:
        assert amd.init_flags == [2]  # AmdSmiInitFlags.INIT_AMD_GPUS
        assert [d.id for d in backend.devices] == ["amdgpu:0", "amdgpu:1"]
        assert [d.label for d in backend.devices] == ["AMD Instinct MI300X", "AMD Instinct MI250X"]
        assert all(
            d.kind == "gpu" and d.method is Method.COUNTER and d.shared for d in backend.devices
        )
        assert backend.update_period_s == 0.01
        assert backend.method == "counter"
        assert backend.describe() == (
            "amdsmi: AMD Instinct MI300X [counter], AMD Instinct MI250X [counter]"
        )
        assert any("15.625 uJ per tick, assumed to update every 10 ms" in n for n in backend.notes)
        assert backend.device_uuids == (amd.gpus[0].uuid, amd.gpus[1].uuid)
        assert backend.device_bdfs == ("0000:01:00.0", "0000:02:00.0")
        assert list(backend.read_j()) == [0.0, 0.0]  # from a non-zero start
        amd.gpus[0].ticks = 1_000_000 + 64_000  # 64,000 x 15.625 uJ = 1 J
        amd.gpus[1].ticks = 5_000 + 16_000_000  # 250 J
        assert list(backend.read_j()) == [1.0, 250.0]
    assert amd.shutdown_calls == 1


@pytest.mark.parametrize(
    "resolution_uj, delta_ticks, joules",
    [(1.0, 2_500_000, 2.5), (0.5, 1_000, 0.0005), (15.625, 640, 0.01), (62.5, 16, 0.001)],
)
def test_resolution_scales_the_ticks(resolution_uj: float, delta_ticks: int, joules: float) -> None:
    amd = gpus(1, g0={"ticks": 123_456_789, "resolution_uj": resolution_uj})
    with _open(amd) as backend:
        amd.gpus[0].ticks = 123_456_789 + delta_ticks
        assert list(backend.read_j()) == [joules]


def test_real_resolution_float32() -> None:
    res = 15.300000190734863  # what MI100 - MI300 report (15.3 as a float32)
    amd = gpus(1, g0={"ticks": 8_152_136, "resolution_uj": res})
    with _open(amd) as backend:
        amd.gpus[0].ticks = 8_152_136 + 1_000_000
        (energy_j,) = backend.read_j()
    assert energy_j == 1_000_000 * res / 1e6
    assert energy_j == pytest.approx(15.3, rel=1e-7)


def test_pre_6_4_power_key_is_the_counter() -> None:
    amd = gpus(1, g0={"key": "power", "ticks": 10})
    with _open(amd) as backend:
        assert backend.devices[0].method is Method.COUNTER
        amd.gpus[0].ticks = 10 + 128_000
        assert list(backend.read_j()) == [2.0]


def test_counter_going_backwards_counts_again_from_the_new_value_next_window() -> None:
    amd = gpus(2, g0={"ticks": 640_000}, g1={"ticks": 0})
    with _open(amd, gpus="all") as backend:
        amd.gpus[0].ticks = 640_000 + 64_000
        assert list(backend.read_j()) == [1.0, 0.0]
        amd.gpus[0].ticks = 3  # a reset (or a wrap)
        amd.gpus[1].ticks = 192_000
        with pytest.warns(BackendWarning, match="AMD GPU 0's energy counter went backwards"):
            assert list(backend.read_j()) == [1.0, 3.0]
        amd.gpus[0].ticks = 3 + 64_000  # held for the rest of the window
        assert list(backend.read_j()) == [1.0, 3.0]
        assert backend.failed == {"amdgpu:0": "its energy counter was reset"}
        backend.refresh_devices()  # the next window: from the new base
        amd.gpus[0].ticks = 3 + 64_000 + 128_000
        assert list(backend.read_j()) == [3.0, 3.0]
        (note,) = [n for n in backend.notes if "went backwards" in n]
        assert "11.000 J -> 0.000 J" in note and "a reset, driver reload or wrap" in note
        assert backend.failed == {}


def test_counter_loss_is_a_fault_of_the_window() -> None:
    amd = gpus(1, g0={"ticks": 100})
    with _open(amd) as backend:
        assert backend.faults == []
        amd.gpus[0].ticks = 99
        with pytest.warns(BackendWarning):
            backend.read_j()
        (fault,) = backend.faults
        assert fault.startswith("AMD GPU 0's energy counter went backwards")


def test_a_failed_read_is_a_partial_window_for_that_gpu_only() -> None:
    from pytest_co2.meter import Meter

    averaged = {"average_socket_power": 300}  # no instant power: the counters, however short
    amd = gpus(2, g0={"ticks": 0, "power": averaged}, g1={"ticks": 0, "power": averaged})
    with _open(amd, gpus="all") as backend:
        meter = Meter(backend)
        failed = "reading AMD GPU 1's energy counter failed"
        with pytest.warns(BackendWarning, match=failed), meter.measure("lost"):
            amd.gpus[0].ticks = 64_000
            amd.gpus[1].ticks = 128_000
            backend.read_j()
            amd.gpus[0].ticks = 192_000
            amd.gpus[1].ticks = NA  # GPU 1 stops reading
        (m,) = meter.measurements
        assert [d.energy_j for d in m.devices] == [3.0, 2.0] and not m.complete
        assert any(
            n.startswith("partial: reading AMD GPU 1's energy counter failed") for n in m.notes
        )
        amd.gpus[1].ticks = 10 * 64_000  # reads again: counts from here
        with pytest.warns(BackendWarning, match="AMD GPU 1's energy counter reads again"):
            assert list(backend.read_j()) == [3.0, 2.0]
        amd.gpus[1].ticks = 11 * 64_000
        assert list(backend.read_j()) == [3.0, 3.0]


def test_frozen_counter_is_reported_once() -> None:
    clock = FakeClock(0.0)
    amd = gpus(2, g0={"ticks": 500}, g1={"ticks": 500})
    with _open(amd, gpus="all", clock=clock, poll_interval_s=3600.0) as backend:
        clock.t = 4.9
        assert list(backend.read_j()) == [0.0, 0.0]  # too early to tell
        amd.gpus[1].ticks = 500 + 64  # GPU 1 counts
        clock.t = 6.0
        with pytest.warns(BackendWarning) as record:
            assert list(backend.read_j()) == [0.0, 0.001]
        (message,) = [str(w.message) for w in record]
        assert message.startswith(
            "AMD GPU 0's energy counter has not moved in 6 s while the GPU draws 300 W"
        )
        assert "--co2-backend=estimate" in message and message in backend.notes
        clock.t = 60.0
        backend.read_j()  # once only
        assert sum("has not moved" in n for n in backend.notes) == 1
        assert backend.faults == []


def test_unmoving_counter_of_an_unpowered_gpu_is_not_reported(
    recwarn: pytest.WarningsRecorder,
) -> None:
    clock = FakeClock(0.0)
    amd = gpus(1)
    with _open(amd, clock=clock) as backend:
        amd.gpus[0].power = {"current_socket_power": 0}  # e.g. a powered-down partition
        clock.t = 10.0
        assert list(backend.read_j()) == [0.0]
        assert not any("has not moved" in n for n in backend.notes)
    assert not [w for w in recwarn if issubclass(w.category, BackendWarning)]


def test_counter_turning_na_holds_the_device() -> None:
    amd = gpus(1, g0={"ticks": 0})
    with _open(amd) as backend:
        amd.gpus[0].ticks = 64_000
        assert list(backend.read_j()) == [1.0]
        amd.gpus[0].ticks = NA
        with pytest.warns(BackendWarning, match=r"failed \(it reads N/A\)"):
            assert list(backend.read_j()) == [1.0]


def test_read_error_holds_that_gpu_and_is_a_fault() -> None:
    amd = gpus(1)
    with _open(amd) as backend:
        amd.fail_reads = True
        with pytest.warns(BackendWarning, match="reading AMD GPU 0's energy counter failed"):
            assert list(backend.read_j()) == [0.0]
        assert list(backend.failed) == ["amdgpu:0"] and len(backend.faults) == 1


@pytest.mark.parametrize(
    "info, parsed",
    [
        ({"energy_accumulator": 5, "counter_resolution": 15.3}, (5, 15.3)),
        ({"power": 7, "counter_resolution": 1}, (7, 1.0)),
        ({"energy_accumulator": NA, "counter_resolution": 15.3}, None),
        ({"energy_accumulator": 5, "counter_resolution": NA}, None),
        ({"energy_accumulator": 5, "counter_resolution": 0.0}, None),
        ({"energy_accumulator": 2**64 - 1, "counter_resolution": 15.3}, None),
        ({"energy_accumulator": True, "counter_resolution": 15.3}, None),
        ({"counter_resolution": 15.3}, None),
        ("N/A", None),
    ],
)
def test_energy_reading(info: Any, parsed: tuple[int, float] | None) -> None:
    assert energy_reading(info) == parsed


@pytest.mark.parametrize(
    "value, watts",
    [(300, 300.0), (0, 0.0), (12.5, 12.5), (NA, None), (None, None), (0xFFFF, None),
     (0xFFFFFFFF, None), (-1, None), (math.nan, None), (True, None)],
)  # fmt: skip
def test_power_w(value: Any, watts: float | None) -> None:
    assert power_w(value) == watts


def test_read_power_w_instant_or_nan_for_averages() -> None:
    amd = gpus(
        2,
        g1={"power": {"current_socket_power": NA, "average_socket_power": 90, "socket_power": 90}},
    )
    with _open(amd, gpus="all") as backend:
        p = backend.read_power_w()
        assert p is not None and p[0] == 300.0 and math.isnan(p[1])
        amd.gpus[0].power = {"current_socket_power": 0xFFFFFFFF}  # turned unsupported
        assert backend.read_power_w() is None
    with pytest.raises(BackendError, match="closed"):
        backend.read_power_w()


# -- no energy counter: polled power -------------------------------------------------------------


def test_missing_energy_api_polls_power_exactly_on_a_fake_clock() -> None:
    clock = FakeClock(100.0)
    amd = FakeAmdSmi([FakeGpu(0, name="AMD Radeon PRO W7900")], energy_api=False)
    amd.gpus[0].power = {"current_socket_power": 100}
    backend = _open(amd, poll_interval_s=3600.0, clock=clock)  # the thread never polls here
    try:
        (device,) = backend.devices
        assert device.method is Method.POLLED and device.id == "amdgpu:0"
        assert device.update_period_s == 3600.0  # instant readings: the poll interval
        assert backend.method == "polled"
        assert any(
            "current_socket_power (instant)" in n and "polled every 3.6e+06 ms" in n
            for n in backend.notes
        )
        poller = backend._poller
        assert poller is not None and poller.thread.daemon
        assert list(backend.read_j()) == [0.0]
        clock.t = 101.0
        amd.gpus[0].power = {"current_socket_power": 200}
        poller.poll_once()  # trapezoid: (100 + 200) / 2 W x 1 s
        assert list(backend.read_j()) == [150.0]
        clock.t = 101.5  # extended with the last sample: + 200 W x 0.5 s
        assert list(backend.read_j()) == [250.0]
        amd.gpus[0].power = {"current_socket_power": NA}
        clock.t = 102.0
        poller.poll_once()  # an N/A sample holds 200 W
        assert list(backend.read_j()) == [350.0]
        amd.gpus[0].power = {"current_socket_power": 0}
        clock.t = 104.0
        poller.poll_once()  # 200 -> 0 W over 2 s
        assert list(backend.read_j()) == [550.0]
    finally:
        backend.close()
    assert not poller.thread.is_alive()


def test_not_supported_counter_polls_the_average_and_says_so() -> None:
    power = {"current_socket_power": NA, "average_socket_power": 75, "socket_power": 75}
    amd = gpus(1, g0={"ticks": None, "power": power})
    with _open(amd, poll_interval_s=0.005) as backend:
        (device,) = backend.devices
        assert device.method is Method.POLLED and device.update_period_s == 1.0
        assert any(
            "average_socket_power (an average over about 1 s)" in n and "smeared" in n
            for n in backend.notes
        )
        assert backend.read_power_w() is None  # no instant power: the meter keeps the figures


def test_na_counter_falls_back_to_polling_socket_power() -> None:
    power = {"current_socket_power": NA, "average_socket_power": 0xFFFFFFFF, "socket_power": 42}
    amd = gpus(1, g0={"ticks": NA, "power": power})
    with _open(amd, poll_interval_s=3600.0, clock=FakeClock(0.0)) as backend:
        assert backend.devices[0].method is Method.POLLED
        assert any("socket_power (an average" in n for n in backend.notes)


def test_counter_and_polled_gpus_together() -> None:
    amd = gpus(2, g1={"ticks": None})
    with _open(amd, gpus="all", poll_interval_s=3600.0, clock=FakeClock()) as backend:
        assert [(d.id, d.method) for d in backend.devices] == [
            ("amdgpu:0", Method.COUNTER),
            ("amdgpu:1", Method.POLLED),
        ]
        assert backend.method == "counter+polled"
        amd.gpus[0].ticks = 1_000_000 + 128_000
        assert list(backend.read_j()) == [2.0, 0.0]


def test_gpu_without_energy_or_power_is_left_out() -> None:
    amd = gpus(2, g1={"ticks": None, "power": {"current_socket_power": NA}})
    with _open(amd, gpus="all") as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:0"]
        assert any("AMD GPU 1 is not measured: it reports neither" in n for n in backend.notes)
    nothing = gpus(1, g0={"ticks": None, "power": {"average_socket_power": NA}})
    with pytest.raises(BackendError, match="neither energy nor power") as info:
        _open(nothing)
    assert not isinstance(info.value, BackendUnavailable)
    assert nothing.shutdown_calls == 1


def test_a_polled_gpu_that_fails_is_a_fault_of_that_gpu_only() -> None:
    clock = FakeClock()
    power = {"current_socket_power": 100}
    amd = gpus(2, g0={"ticks": None, "power": power}, g1={"ticks": None, "power": power})
    with _open(amd, gpus="all", poll_interval_s=3600.0, clock=clock) as backend:
        poller = backend._poller
        assert poller is not None
        clock.t = 101.0
        poller.poll_once()
        assert list(backend.read_j()) == [100.0, 100.0]
        amd.gpus[1].denied = True  # GPU 1's power can no longer be read
        clock.t = 102.0
        poller.poll_once()
        with pytest.warns(BackendWarning, match=r"reading AMD GPU 1's power failed \(An error"):
            assert list(backend.read_j()) == [200.0, 100.0]  # GPU 0 goes on
        assert list(backend.failed) == ["amdgpu:1"] and len(backend.faults) == 1
        clock.t = 103.0
        poller.poll_once()
        assert list(backend.read_j()) == [300.0, 100.0]
        assert len(backend.faults) == 1  # one event; ``failed`` makes each window partial
        amd.gpus[1].denied = False
        clock.t = 104.0
        poller.poll_once()  # reads again: counts from this sample on
        clock.t = 105.0
        poller.poll_once()
        with pytest.warns(BackendWarning, match="AMD GPU 1's power reads again"):
            assert list(backend.read_j()) == [500.0, 200.0]
        assert backend.failed == {}


def test_real_thread_polls_and_close_stops_it() -> None:
    amd = gpus(1, g0={"ticks": None, "power": {"current_socket_power": 150}})
    backend = _open(amd, poll_interval_s=0.001)
    poller = backend._poller
    assert poller is not None and poller.thread.is_alive()
    import time

    time.sleep(0.05)
    (energy_j,) = backend.read_j()
    assert energy_j > 0.0
    backend.close()
    backend.close()
    assert not poller.thread.is_alive() and amd.shutdown_calls == 1
    with pytest.raises(BackendError, match="closed"):
        backend.read_j()


# -- which GPUs: ROCR_VISIBLE_DEVICES, then HIP_VISIBLE_DEVICES (or CUDA_VISIBLE_DEVICES) ---------


def four() -> FakeAmdSmi:
    return gpus(4)


HIP_UUID_2 = FakeGpu(2).hip_uuid
SMI_UUID_1 = FakeGpu(1).uuid


@pytest.mark.parametrize(
    "rocr, hip, cuda, ids",
    [
        ("1", None, None, ["amdgpu:1"]),
        ("2,0", None, None, ["amdgpu:2", "amdgpu:0"]),  # the runtime's order
        (None, "3", None, ["amdgpu:3"]),
        (None, " 2 , 0 ", None, ["amdgpu:2", "amdgpu:0"]),
        (None, None, "1", ["amdgpu:1"]),  # HIP honours CUDA_VISIBLE_DEVICES
        (None, "0", "1", ["amdgpu:0"]),  # HIP_VISIBLE_DEVICES wins over CUDA_VISIBLE_DEVICES
        ("1,3", "1", None, ["amdgpu:3"]),  # HIP indices count within ROCR's GPUs
        ("1,3", None, "0", ["amdgpu:1"]),
        ("3,1", "1,0", None, ["amdgpu:1", "amdgpu:3"]),
        (HIP_UUID_2, None, None, ["amdgpu:2"]),  # the runtime's GPU- UUID
        (HIP_UUID_2.lower().upper(), None, None, ["amdgpu:2"]),
        (None, f"GPU-{SMI_UUID_1}", None, ["amdgpu:1"]),  # AMD SMI's UUID, GPU- prefixed
        ("0,1,2", HIP_UUID_2, None, ["amdgpu:2"]),
        ("0,7,1", None, None, ["amdgpu:0"]),  # the list ends at the first invalid entry
        ("1,GPU-nope,0", None, None, ["amdgpu:1"]),
        ("0,0", None, None, ["amdgpu:0"]),
    ],
)
def test_visibility_variables(
    rocr: str | None, hip: str | None, cuda: str | None, ids: list[str]
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = _open(
            four(), rocr_visible_devices=rocr, hip_visible_devices=hip, cuda_visible_devices=cuda
        )
    with backend:
        assert [d.id for d in backend.devices] == ids
    # several GPUs left visible, none in use: the advice names the variable that chose them
    var, value = ("HIP_VISIBLE_DEVICES", hip) if hip is not None else ("ROCR_VISIBLE_DEVICES", rocr)
    within = (
        f" within ROCR_VISIBLE_DEVICES={rocr!r}" if hip is not None and rocr is not None else ""
    )
    said = [several_amd_gpus_warning(ids, var, str(value), within)] if ids[1:] else []
    assert backend_messages(caught) == said


def test_ignored_and_repeated_entries_are_noted() -> None:
    with _open(four(), rocr_visible_devices="0,7,1") as backend:
        assert any(
            "ROCR_VISIBLE_DEVICES='0,7,1': '7' is not a GPU here, so it and what follows (7,1)" in n
            for n in backend.notes
        )
    with _open(four(), hip_visible_devices="2,2") as backend:
        assert any("'2' is listed twice; counted once" in n for n in backend.notes)


@pytest.mark.parametrize(
    "rocr, hip, cuda, message",
    [
        ("", None, None, "ROCR_VISIBLE_DEVICES='' selects no AMD GPU"),
        ("-1", None, None, "ROCR_VISIBLE_DEVICES='-1' selects no AMD GPU"),
        ("9", None, None, "ROCR_VISIBLE_DEVICES='9' selects no AMD GPU"),
        ("GPU-zzz", None, None, "ROCR_VISIBLE_DEVICES='GPU-zzz' selects no AMD GPU"),
        ("first", None, None, "ROCR_VISIBLE_DEVICES='first' selects no AMD GPU"),
        (None, "", None, "HIP_VISIBLE_DEVICES='' selects no AMD GPU"),
        (None, "x", "0", "HIP_VISIBLE_DEVICES='x' selects no AMD GPU"),
        (None, None, "  ", "CUDA_VISIBLE_DEVICES='  ' selects no AMD GPU"),
        (None, None, "4", "CUDA_VISIBLE_DEVICES='4' selects no AMD GPU"),
        ("2", "1", None, "HIP_VISIBLE_DEVICES='1' within ROCR_VISIBLE_DEVICES='2' selects no"),
        ("", "0", None, "ROCR_VISIBLE_DEVICES='' selects no AMD GPU"),
    ],
)
def test_no_visible_gpu_is_unavailable(
    rocr: str | None, hip: str | None, cuda: str | None, message: str
) -> None:
    amd = four()
    with pytest.raises(BackendUnavailable, match=message.replace("(", r"\(")) as info:
        _open(amd, rocr_visible_devices=rocr, hip_visible_devices=hip, cuda_visible_devices=cuda)
    assert "\n" not in str(info.value)
    assert amd.shutdown_calls == 1


def test_visibility_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "0,2,3")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with AmdsmiBackend(four()) as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:3"]
    monkeypatch.delenv("HIP_VISIBLE_DEVICES")
    with AmdsmiBackend(four()) as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(BackendUnavailable, match="CUDA_VISIBLE_DEVICES='' within"):
        AmdsmiBackend(four())


def test_all_gpus_without_a_variable_warn(recwarn: pytest.WarningsRecorder) -> None:
    with pytest.warns(BackendWarning, match=r"4 AMD GPUs are measured .*HIP_VISIBLE_DEVICES"):
        backend = _open(four())
    with backend:
        assert len(backend.devices) == 4
    with _open(gpus(1)) as one:  # a single GPU: nothing to say
        assert len(one.devices) == 1
    assert not [w for w in recwarn if issubclass(w.category, BackendWarning)]  # only the first
    with (  # several named but none in use: the same warning (as NVML gives)
        pytest.warns(BackendWarning, match=r"2 AMD GPUs are measured \(amdgpu:0, amdgpu:1\)"),
        _open(four(), rocr_visible_devices="0,1"),
    ):
        pass


def test_select_visible_directly() -> None:
    aliases = [["gpu-aa"], ["gpu-bb", "bb"]]
    assert select_visible(None, aliases, "V") == ([0, 1], [])
    assert select_visible("", aliases, "V") == ([], [])
    assert select_visible("1,0", aliases, "V")[0] == [1, 0]
    assert select_visible("GPU-BB", aliases, "V")[0] == [1]
    assert select_visible("GPU-b", aliases, "V")[0] == []  # UUIDs match exactly


def test_ids_follow_the_runtime_order_not_amd_smis() -> None:
    # AMD SMI lists the GPUs in another order than HIP enumerates them (hip_id)
    amd = FakeAmdSmi([FakeGpu(0, hip_id=2), FakeGpu(1, hip_id=0), FakeGpu(2, hip_id=1)])
    with _open(amd, rocr_visible_devices="0") as backend:
        assert backend.device_uuids == (amd.gpus[1].uuid,)  # HIP's 0 is AMD SMI's handle 1
        assert [d.id for d in backend.devices] == ["amdgpu:0"]
    older = FakeAmdSmi([FakeGpu(0, hip_id=2), FakeGpu(1, hip_id=0)], enumeration=False)
    with _open(older, rocr_visible_devices="0") as backend:  # amdsmi < 6.4: AMD SMI's order
        assert backend.device_uuids == (older.gpus[0].uuid,)
        assert any("AMD SMI's order" in n for n in backend.notes)


def test_ids_are_the_same_in_every_process() -> None:
    a = _open(four(), hip_visible_devices="2")
    b = _open(four(), rocr_visible_devices="1,2", hip_visible_devices="1")
    with a, b:
        assert [d.id for d in a.devices] == [d.id for d in b.devices] == ["amdgpu:2"]


def test_co2_gpus_selection() -> None:
    with _open(four(), hip_visible_devices="1", gpus="all") as backend:  # all: env ignored
        assert len(backend.devices) == 4
    with _open(four(), rocr_visible_devices="2,3", gpus="cuda:1") as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:3"]  # the 2nd GPU this process sees
    with _open(four(), gpus=f"{HIP_UUID_2[:7]},0") as backend:  # a unique UUID prefix
        assert [d.id for d in backend.devices] == ["amdgpu:2", "amdgpu:0"]
    with pytest.raises(BackendError, match=r"'cuda:2': this process sees 2 AMD GPU"):
        _open(four(), hip_visible_devices="0,1", gpus="cuda:2")
    with pytest.raises(BackendError, match=r"'GPU-999' matches no GPU here \(AMD GPUs: "):
        _open(four(), gpus="GPU-999")
    with pytest.raises(BackendError, match="NVIDIA MIG id"):
        _open(four(), gpus="MIG-4b5f2a1c-0000")
    with pytest.raises(BackendUnavailable, match="--co2-gpus selects no AMD GPU"):
        _open(four(), gpus="none")
    with pytest.raises(BackendError, match="invalid --co2-gpus value 'first'"):
        _open(four(), gpus="first")


# -- permissions, init, import -----------------------------------------------------------------


def test_gpu_without_permission_is_skipped_with_a_note() -> None:
    amd = gpus(3, g1={"denied": True})
    with _open(amd, gpus="all") as backend:
        assert [d.id for d in backend.devices] == ["amdgpu:0", "amdgpu:2"]
        assert any(
            n.startswith(
                "AMD GPU 1 is not measured: reading its energy is denied (An error occured"
            )
            for n in backend.notes
        )
    only_denied = gpus(1, g0={"denied": True})
    with pytest.raises(BackendError, match=r"permission denied.*render groups") as info:
        _open(only_denied)
    assert not isinstance(info.value, BackendUnavailable)
    assert only_denied.shutdown_calls == 1


def test_init_failure_is_an_error_with_the_fix() -> None:
    amd = FakeAmdSmi([], init_error=TIMEOUT)
    with pytest.raises(BackendError, match=r"amdsmi_init failed .*/dev/kfd") as info:
        AmdsmiBackend(amd)
    assert not isinstance(info.value, BackendUnavailable)
    assert amd.shutdown_calls == 0
    with pytest.raises(BackendUnavailable, match="no AMD GPU driver"):
        AmdsmiBackend(FakeAmdSmi([], init_error=DRIVER_NOT_LOADED))


def test_no_gpu_is_unavailable() -> None:
    amd = FakeAmdSmi([])
    with pytest.raises(BackendUnavailable, match="AMD SMI reports no GPU"):
        _open(amd)
    assert amd.shutdown_calls == 1


def test_init_flag_of_older_bindings_and_none() -> None:
    amd = gpus(1)
    amd.AmdSmiInitFlags = types.SimpleNamespace(AMD_GPUS=7)  # type: ignore[misc]  # ROCm 5.x
    with _open(amd):
        assert amd.init_flags == [7]
    bare = gpus(1)
    bare.AmdSmiInitFlags = None  # type: ignore[misc, assignment]
    with _open(bare):
        assert bare.init_flags == [None]  # amdsmi_init() with its default (the GPUs)


def test_amdsmi_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # makes `import amdsmi` fail
    with pytest.raises(BackendUnavailable, match=r"pip install 'pytest-co2\[amd\]'"):
        AmdsmiBackend()


def test_no_driver_is_unavailable_before_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(amd_module, "amd_driver_present", lambda root="/": False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(BackendUnavailable, match=r"no AMD GPU driver \(no /dev/kfd"):
        AmdsmiBackend()
    assert "amdsmi" not in sys.modules


def test_bindings_that_fail_to_load_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def find_spec(self, name: str, *args: Any) -> Any:
            if name == "amdsmi":
                raise OSError("libamd_smi.so: cannot open shared object file")
            return None

    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(amd_module, "amd_driver_present", lambda root="/": True)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(BackendError, match=r"amdsmi failed to load \(OSError: libamd_smi") as info:
        AmdsmiBackend()
    assert not isinstance(info.value, BackendUnavailable)


def test_amd_driver_present(tmp_path: Path) -> None:
    assert not amd_driver_present(str(tmp_path))
    (tmp_path / "sys" / "module" / "amdgpu").mkdir(parents=True)
    assert amd_driver_present(str(tmp_path))


def test_bad_poll_interval() -> None:
    with pytest.raises(BackendError, match="invalid AMD SMI poll interval 0"):
        _open(gpus(1), poll_interval_s=0)


# -- selection: --co2-backend=amdsmi, auto -------------------------------------------------------


def _no_cpu_counters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class NoRapl(rapl_module.RaplBackend):
        def __init__(self, root: Any = tmp_path / "none", poll_interval_s: float | None = None):
            super().__init__(root, poll_interval_s)

    monkeypatch.setattr(rapl_module, "RaplBackend", NoRapl)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)


def test_named_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_backend_spec(" AMDSMI ") == "amdsmi"
    amd = gpus(1)
    monkeypatch.setitem(sys.modules, "amdsmi", amd)
    monkeypatch.delenv("ROCR_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("HIP_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with make_backend("amdsmi") as backend:
        assert isinstance(backend, AmdsmiBackend) and backend.name == "amdsmi"
    assert amd.shutdown_calls == 1


def test_auto_combines_amd_gpus_with_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_cpu_counters(monkeypatch, tmp_path)
    amd = gpus(2)
    monkeypatch.setitem(sys.modules, "amdsmi", amd)
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")
    with make_backend("auto") as backend:
        assert backend.name == "auto"
        assert [(d.id, d.method) for d in backend.devices] == [
            ("amdgpu:1", Method.COUNTER),
            ("cpu:process", Method.ESTIMATED),
            ("memory:process", Method.ESTIMATED),
        ]
        assert any(n.startswith("no NVML GPU: pynvml is not installed") for n in backend.notes)
        e0 = backend.read_j()
        amd.gpus[1].ticks = 1_000_000 + 320_000  # 5 J
        assert backend.read_j()[0] - e0[0] == 5.0
        assert "AMD Instinct MI300X [counter]" in backend.describe()
    assert amd.shutdown_calls == 1


def test_auto_falls_back_with_a_warning_when_amdsmi_init_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_cpu_counters(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "amdsmi", FakeAmdSmi([FakeGpu(0)], init_error=TIMEOUT))
    with pytest.warns(BackendWarning, match="AMD SMI GPU energy unavailable.*amdsmi_init failed"):
        backend = make_backend("auto")
    with backend:
        assert backend.name == "auto (estimate)"
        assert any(n.startswith("AMD SMI failed: amdsmi_init failed") for n in backend.notes)


def test_auto_without_amd_gpu_notes_it_quietly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    _no_cpu_counters(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "amdsmi", FakeAmdSmi([]))
    with make_backend("auto") as backend:
        assert backend.name == "auto (estimate)"
        assert "no AMD GPU: AMD SMI reports no GPU" in backend.notes
    assert not [w for w in recwarn if issubclass(w.category, BackendWarning)]


def test_ddp_rank_reopens_the_same_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_co2.distributed import backend_spec, open_rank_backend

    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    amd = four()
    monkeypatch.setitem(sys.modules, "amdsmi", amd)
    with _open(amd, gpus="cuda:3,cuda:1", poll_interval_s=0.5) as parent:
        spec = json.loads(json.dumps(backend_spec(parent)))
        assert spec["parts"][0]["kwargs"] == {"poll_interval_s": 0.5, "gpus": "cuda:3,cuda:1"}
        with open_rank_backend(spec) as rank:
            assert [d.id for d in rank.devices] == ["amdgpu:3", "amdgpu:1"]


def test_import_pytest_co2_does_not_import_amdsmi() -> None:
    code = (
        "import sys, pytest_co2, pytest_co2.backends, pytest_co2.plugin; "
        "print([m for m in ('amdsmi', 'pytest_co2.backends.amdsmi') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


# -- end to end: the plugin with the fake module -------------------------------------------------

AMD_CONFTEST = """
import sys
sys.path.insert(0, {tests!r})
from test_backend_amdsmi import FakeAmdSmi, FakeGpu

NA = "N/A"
GPU = FakeGpu(0, ticks=7_000_000, name="AMD Instinct MI300X")
GPU.power = {{"current_socket_power": NA, "average_socket_power": 500}}  # counter only
sys.modules["amdsmi"] = FakeAmdSmi([GPU])
"""

AMD_TEST = """
import sys

def test_train(co2_meter):
    gpu = sys.modules["amdsmi"].gpus[0]
    with co2_meter.measure("train") as m:
        for _ in range(4):
            gpu.ticks += 640_000  # 10 J per step (15.625 uJ per tick)
            m.step()
"""


def test_plugin_end_to_end_with_the_fake_module(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    pytester.makeconftest(AMD_CONFTEST.format(tests=str(Path(__file__).parent)))
    pytester.makepyfile(AMD_TEST)
    result = pytester.runpytest(
        "--co2-backend=amdsmi",
        "--co2-pue=1",
        "--co2-region=SE",
        "--co2-json=r.json",
        "--co2-report=full",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    unwrapped(result).fnmatch_lines(["co2: backend amdsmi: AMD Instinct MI300X [[]counter[]]*"])
    unwrapped(result).fnmatch_lines(["*AMD Instinct MI300X [[]counter[]] 40*J*"])
    data = json.loads((pytester.path / "r.json").read_text())
    (m,) = data["tests"][0]["measurements"]
    assert m["energy_j"] == 40.0 and m["method"] == "counter"
    (dev,) = m["devices"]
    assert dev["id"] == "amdgpu:0" and dev["label"] == "AMD Instinct MI300X"
    assert dev["method"] == "counter" and dev["energy_j"] == 40.0
