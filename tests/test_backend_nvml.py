"""NVML backend against a fake pynvml module (no GPU needed)."""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from warned import backend_messages

from pytest_co2.backends import BackendError, BackendUnavailable, BackendWarning, Method
from pytest_co2.backends import cuda as cuda_helpers
from pytest_co2.backends.gpu_presence import gpu_host_kind
from pytest_co2.backends.integrator import (
    short_window_devices_j,
    short_window_energy_j,
    use_power_x_time,
)
from pytest_co2.backends.nvml import (
    GpuSelection,
    NvmlBackend,
    parse_gpu_devices,
    select_visible,
)


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


def several_gpus_warning(ids: list[str], visible: str | None = None) -> str:
    """What the backend warns when it measures several GPUs that it picked itself (among
    those CUDA_VISIBLE_DEVICES=``visible`` leaves, where set)."""
    advice = (
        "name the GPUs with --co2-gpus or CUDA_VISIBLE_DEVICES"
        if visible is None
        else f"CUDA_VISIBLE_DEVICES={visible!r} leaves all of them visible, so name those the "
        "tests use with --co2-gpus (e.g. cuda:0) or list only those in CUDA_VISIBLE_DEVICES"
    )
    return (
        f"{len(ids)} GPUs are measured ({', '.join(ids)}) because none holds a "
        f"CUDA context of this process yet: a test that uses one is charged the others' idle "
        f"power; {advice}"
    )


def test_counter_path_is_exact_and_labelled() -> None:
    nvml = three_gpus()
    with NvmlBackend(nvml, visible_devices=None, gpus="all") as backend:
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


class Clock:
    """A clock the test advances (the poller's, in place of ``time.perf_counter``)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_polled_path_follows_a_power_ramp() -> None:
    """Samples every 20 ms of a fake clock, taken by hand (the poller thread never wakes):
    the trapezoid is exact on a ramp, and the read after the last sample extends it with the
    last sampled power, short by exactly the ramp's triangle."""
    clock = Clock()

    def ramp_mw() -> float:  # 100 W rising by 1000 W/s, in whole milliwatts as NVML gives
        return round((100.0 + 1000.0 * clock.t) * 1000.0)

    def integral(t: float) -> float:
        return 100.0 * t + 500.0 * t * t

    nvml = FakeNvml([FakeGpu("Tesla K80", UUIDS[0], energy_mj=None, power_mw=ramp_mw)])
    with NvmlBackend(nvml, visible_devices=None, poll_interval_s=3600, clock=clock) as backend:
        poller = backend._poller
        assert poller is not None
        clock.t = 0.05
        poller.poll_once()
        (e_a,) = backend.read_j()
        for _ in range(10):
            clock.t += 0.02
            poller.poll_once()
        (e_b,) = backend.read_j()
        assert e_b - e_a == pytest.approx(integral(0.25) - integral(0.05), rel=1e-12)
        clock.t += 0.01  # no sample since: the last power (350 W) held, not the ramp's
        (e_c,) = backend.read_j()
        assert e_c - e_b == pytest.approx(350.0 * 0.01, rel=1e-12)
        assert integral(0.26) - integral(0.25) - (e_c - e_b) == pytest.approx(
            1000.0 * 0.01**2 / 2, rel=1e-9
        )


def test_counter_and_polled_gpus_together() -> None:
    nvml = FakeNvml(
        [
            FakeGpu("V100", UUIDS[0], energy_mj=5_000),
            FakeGpu("P100", UUIDS[1], energy_mj=None, power_mw=50_000),
        ]
    )
    with NvmlBackend(nvml, visible_devices=None, gpus="all") as backend:
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = NvmlBackend(three_gpus(), visible_devices=visible)
    with backend:
        assert [d.id for d in backend.devices] == ids
    # several GPUs, none in use by this process: said once; one GPU: nothing to say
    said = several_gpus_warning(ids, visible)
    assert backend_messages(caught) == ([said] if ids[1:] else [])


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
    with pytest.warns(BackendWarning) as caught:
        backend = NvmlBackend(three_gpus())
    with backend:
        assert len(backend.devices) == 3
    assert backend_messages(caught) == [several_gpus_warning(["gpu:0", "gpu:1", "gpu:2"])]
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


def test_read_error_holds_that_gpu_and_is_a_fault() -> None:
    nvml = three_gpus()
    with NvmlBackend(nvml, visible_devices="0") as backend:
        nvml.fail_reads = True
        with pytest.warns(BackendWarning, match="fake NVML error 15"):
            assert list(backend.read_j()) == [0.0]
        assert backend.failed == {"gpu:0": "fake NVML error 15"}
        assert len(backend.faults) == 1


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


@pytest.mark.parametrize("start_us", [0, 1, 400, 999, 2500])
def test_1ms_counter_measures_a_10ms_region_within_10_percent(start_us: int) -> None:
    """On a clock in whole microseconds that the test advances: wherever a 10.5 ms region
    starts between two counter updates, it reads 10 or 11 ticks, within 10% of the truth."""
    now_us = [7_000 + start_us]

    def counter_mj() -> int:  # advances every 1 ms at 250 W
        return now_us[0] // round(TICK_S * 1e6) * round(POWER_W * TICK_S * 1000)

    nvml = FakeNvml([FakeGpu("H100", UUIDS[0], energy_mj=counter_mj)])
    with NvmlBackend(nvml, visible_devices=None) as backend:
        (e_a,) = backend.read_j()
        now_us[0] += 10_500
        (e_b,) = backend.read_j()
    ticks = 10 if start_us % 1000 < 500 else 11
    assert e_b - e_a == pytest.approx(POWER_W * TICK_S * ticks, rel=1e-12)
    assert e_b - e_a == pytest.approx(POWER_W * 0.0105, rel=0.10)


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


# -- issue 14: the GPU path on real nodes ------------------------------------------------------

MY_PID = 4242


class NodeGpu(FakeGpu):
    """A fake GPU with what real nodes add: processes, MIG mode, power field, access."""

    def __init__(
        self,
        index: int,
        *,
        pids: tuple[int, ...] = (),
        denied: bool = False,
        mig: bool = False,
        field_mw: float | Callable[[], float] | None = None,
        arch: int | None = None,
        **kw: Any,
    ) -> None:
        kw.setdefault("energy_mj", 1_000_000 * (index + 1))
        super().__init__(kw.pop("name", f"NVIDIA H100 {index}"), _uuid(index), **kw)
        self.pids, self.denied, self.mig, self.field_mw, self.arch = (
            pids,
            denied,
            mig,
            field_mw,
            arch,
        )


def _uuid(i: int) -> str:
    return f"GPU-{i:x}{i:x}{i:x}00000-1111-2222-3333-44444444444{i % 10}"


class NodeNvml(FakeNvml):
    NVML_FI_DEV_POWER_INSTANT = 186

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        gpu = self.gpus[index]
        if getattr(gpu, "denied", False):
            raise FakeNVMLError(4)  # NVML_ERROR_NO_PERMISSION
        return gpu

    def nvmlDeviceGetComputeRunningProcesses(self, handle: NodeGpu) -> list[Any]:
        return [SimpleNamespace(pid=p, usedGpuMemory=1 << 20) for p in handle.pids]

    def nvmlDeviceGetMigMode(self, handle: NodeGpu) -> list[int]:
        return [int(handle.mig), int(handle.mig)]

    def nvmlDeviceGetArchitecture(self, handle: NodeGpu) -> int:
        if handle.arch is None:
            raise FakeNotSupported()
        return handle.arch

    def nvmlDeviceGetFieldValues(self, handle: NodeGpu, field_ids: list[int]) -> list[Any]:
        assert field_ids == [186]
        value = handle.field_mw
        if value is None:
            return [SimpleNamespace(nvmlReturn=3, valueType=1, value=SimpleNamespace(uiVal=0))]
        mw = value() if callable(value) else value
        return [SimpleNamespace(nvmlReturn=0, valueType=1, value=SimpleNamespace(uiVal=int(mw)))]


def node(n: int = 8, **per_gpu: dict[str, Any]) -> NodeNvml:
    return NodeNvml([NodeGpu(i, **per_gpu.get(f"g{i}", {})) for i in range(n)])


def _open(nvml: Any, **kw: Any) -> NvmlBackend:
    kw.setdefault("visible_devices", None)
    kw.setdefault("nvidia_visible_devices", None)
    return NvmlBackend(nvml, pid=MY_PID, **kw)


# 1. only the GPUs the test uses


def test_eight_gpus_one_in_use_measures_that_one(recwarn: pytest.WarningsRecorder) -> None:
    nvml = node(8, g5={"pids": (17, MY_PID)}, g2={"pids": (17,)})  # gpu 2: another process
    with _open(nvml) as backend:
        assert [d.id for d in backend.devices] == ["gpu:5"]
        assert backend.device_uuids == (_uuid(5),)
        nvml.gpus[5].energy_mj = 6_000_000 + 42_000
        assert list(backend.read_j()) == [42.0]
        assert any("holding a CUDA context of this process: gpu:5" in n for n in backend.notes)
    assert not [w for w in recwarn if issubclass(w.category, BackendWarning)]


def test_implicit_gpus_without_a_context_warn_then_narrow() -> None:
    nvml = node(8)
    with pytest.warns(BackendWarning, match="8 GPUs are measured .* --co2-gpus"):
        backend = _open(nvml)
    with backend:
        assert len(backend.devices) == 8
        assert backend.refresh_devices() is False  # still no context: nothing changes
        nvml.gpus[3].pids = (MY_PID,)  # the test created its CUDA context on GPU 3
        assert backend.refresh_devices() is True
        assert [d.id for d in backend.devices] == ["gpu:3"]
        nvml.gpus[3].energy_mj = 4_000_000 + 500
        assert list(backend.read_j()) == [0.5]
        assert backend.refresh_devices() is False


def test_visible_devices_narrow_to_the_one_in_use() -> None:
    nvml = node(8, g6={"pids": (MY_PID,)})
    with _open(nvml, visible_devices="4,6", nvidia_visible_devices=None) as backend:
        assert [d.id for d in backend.devices] == ["gpu:6"]


def test_explicit_gpus_are_measured_as_named(recwarn: pytest.WarningsRecorder) -> None:
    nvml = node(8, g1={"pids": (MY_PID,)})
    with _open(nvml, gpus="GPU-777,cuda:2") as backend:  # not narrowed to the GPU in use
        assert [d.id for d in backend.devices] == ["gpu:7", "gpu:2"]
    assert not [w for w in recwarn if issubclass(w.category, BackendWarning)]
    with _open(nvml, gpus=parse_gpu_devices("all")) as backend:
        assert len(backend.devices) == 8
    with pytest.raises(BackendError, match=r"'GPU-999' matches no GPU here"):
        _open(nvml, gpus="GPU-999")
    with pytest.raises(BackendError, match=r"'cuda:9': this process sees 8 CUDA device"):
        _open(nvml, gpus="cuda:9")
    with pytest.raises(BackendUnavailable, match="--co2-gpus selects no GPU"):
        _open(nvml, gpus="none")


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("auto", GpuSelection("auto")),
        (" ALL ", GpuSelection("all")),
        ("none", GpuSelection("list", ())),
        ("0, cuda:3,1,0", GpuSelection("list", ("cuda:0", "cuda:3", "cuda:1"))),
        ("gpu-8932f937", GpuSelection("list", ("GPU-8932f937",))),
        ("MIG-4b5f2a1c-0000", GpuSelection("list", ("MIG-4b5f2a1c-0000",))),
    ],
)
def test_parse_gpu_devices(text: str, parsed: GpuSelection) -> None:
    assert parse_gpu_devices(text) == parsed


@pytest.mark.parametrize("text", ["", "0,,1", "gpu:0", "cuda:x", "-1", "GPU-", "GPU-xyz", "first"])
def test_parse_gpu_devices_rejects_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_gpu_devices(text)
    message = str(info.value)
    assert "\n" not in message and repr(text) in message and "CUDA indices" in message


def test_nvidia_visible_devices_select_by_uuid_or_none() -> None:
    nvml = node(4, g2={"pids": (MY_PID,)})
    with _open(nvml, nvidia_visible_devices=_uuid(1)[:9]) as backend:
        assert [d.id for d in backend.devices] == ["gpu:1"]
    with pytest.raises(BackendUnavailable, match="NVIDIA_VISIBLE_DEVICES='none' selects no GPU"):
        _open(nvml, nvidia_visible_devices="none")
    with _open(nvml, nvidia_visible_devices="all") as backend:  # narrowed to the one in use
        assert [d.id for d in backend.devices] == ["gpu:2"]


# 3. a GPU that cannot be opened


def test_gpu_without_permission_is_skipped_with_a_note() -> None:
    nvml = node(3, g1={"denied": True})
    with _open(nvml, gpus="all") as backend:
        assert [d.id for d in backend.devices] == ["gpu:0", "gpu:2"]
        assert any(
            n.startswith("GPU 1 is not measured: NVML may not open it (fake NVML error 4")
            and "cgroup" in n
            for n in backend.notes
        )
    with pytest.warns(BackendWarning) as caught:
        backend = _open(node(3, g1={"denied": True, "pids": (MY_PID,)}))  # auto mode too
    with backend:
        assert [d.id for d in backend.devices] == ["gpu:0", "gpu:2"]
    assert backend_messages(caught) == [several_gpus_warning(["gpu:0", "gpu:2"])]
    only_denied = node(1, g0={"denied": True})
    with pytest.raises(BackendError, match="may not open any"):
        _open(only_denied)


# 4. NVML order != CUDA order: matched by UUID


class FakeTorch:
    """``torch`` as the CUDA helpers see it: initialized CUDA, UUIDs in CUDA order."""

    def __init__(self, uuids: list[str], contexts: set[int]) -> None:
        self.synced: list[int] = []
        props = [SimpleNamespace(uuid=u.removeprefix("GPU-")) for u in uuids]  # torch: bare
        self.cuda = SimpleNamespace(
            is_initialized=lambda: True,
            device_count=lambda: len(uuids),
            get_device_properties=lambda i: props[i],
            current_device=lambda: 0,
            synchronize=self.synced.append,
        )
        self._C = SimpleNamespace(_cuda_hasPrimaryContext=lambda i: i in contexts)


def test_cuda_order_differs_from_nvml_order_matched_by_uuid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CUDA (fastest first) puts NVML's GPU 2 first: cuda:0 is gpu:2, cuda:1 is gpu:0
    torch = FakeTorch([_uuid(2), _uuid(0)], contexts={0})
    monkeypatch.setitem(sys.modules, "torch", torch)
    nvml = node(3)
    with _open(nvml, visible_devices="0,2") as backend:  # CUDA's numbering, not NVML's
        assert [d.id for d in backend.devices] == ["gpu:2"]  # the one with our context
    with _open(nvml, gpus="cuda:1") as backend:
        assert [d.id for d in backend.devices] == ["gpu:0"]
    with _open(nvml) as backend:  # no env: the torch context alone picks the GPU
        assert [d.id for d in backend.devices] == ["gpu:2"]


def test_cuda_helpers_do_nothing_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    assert cuda_helpers.synchronize_all() == 0
    assert cuda_helpers.visible_device_uuids() is None
    assert cuda_helpers.context_device_indices() == []


# 5. MIG


def test_mig_via_nvidia_visible_devices_is_detected() -> None:
    nvml = node(1, g0={"mig": True})
    with pytest.raises(BackendError, match=r"NVIDIA_VISIBLE_DEVICES=.*MIG instance") as info:
        _open(nvml, nvidia_visible_devices="MIG-4b5f2a1c-0000-0000-0000-000000000000")
    assert not isinstance(info.value, BackendUnavailable)
    assert "whole GPU" in str(info.value) and "--co2-backend=estimate" in str(info.value)
    # the container shows the parent GPU only: its MIG mode alone says it is a slice
    with pytest.raises(BackendError, match="GPU 0 is in MIG mode"):
        _open(nvml)
    assert nvml.shutdown_calls == 2


def test_mig_mode_gpu_not_in_use_is_left_out_with_a_note() -> None:
    nvml = node(2, g0={"mig": True})
    with _open(nvml) as backend:
        assert [d.id for d in backend.devices] == ["gpu:1"]
        assert all(d.method is Method.COUNTER for d in backend.devices)
        assert any("MIG mode not measured" in n for n in backend.notes)


# 6. short windows: a counter that updates every 20 ms, instant power


def test_20ms_counter_short_window_uses_instant_power() -> None:
    t0 = time.perf_counter()
    period_s, power_w = 0.020, 300.0

    def counter_mj() -> int:  # advances in 20 ms jumps at 300 W
        return int(math.floor((time.perf_counter() - t0) / period_s) * power_w * period_s * 1000)

    nvml = node(1, g0={"energy_mj": counter_mj, "field_mw": power_w * 1000})
    with _open(nvml) as backend:
        (p0,) = backend.read_power_w() or [math.nan]
        assert p0 == 300.0
        # a 5 ms window: the counter reads 0 or a whole 6 J jump, never 1.5 J
        e, used = short_window_devices_j([0.0], [300.0], [300.0], 0.005, [0.2])
        assert (e, used) == ([1.5], [0])
    assert short_window_energy_j(200.0, 300.0, 0.01) == 2.5
    assert use_power_x_time(0.5, 0.1) and not use_power_x_time(1.0, 0.1)
    assert not use_power_x_time(0.001, 0.0)  # a continuous source needs no power x time
    kept, none = short_window_devices_j([7.0], [math.nan], [300.0], 0.005, [0.1])
    assert (kept, none) == ([7.0], [])  # no instant power: the counter stays
    with pytest.raises(ValueError, match="invalid duration_s -1"):
        short_window_energy_j(1.0, 1.0, -1)


def test_read_power_w_is_nan_where_only_a_1s_average_exists() -> None:
    nvml = node(2, g0={"field_mw": 150_000}, g1={"power_mw": 90_000, "arch": 9})
    with _open(nvml, gpus="all") as backend:
        p = backend.read_power_w()
        assert p is not None and p[0] == 150.0 and math.isnan(p[1])
    with _open(node(1, g0={"arch": 9}), gpus="all") as backend:
        assert backend.read_power_w() is None


# 7. the polled fallback follows the GPU


def test_polled_fallback_reads_the_instant_field() -> None:
    nvml = node(1, g0={"energy_mj": None, "field_mw": 120_000, "power_mw": 50_000})
    with _open(nvml, poll_interval_s=0.005) as backend:
        (device,) = backend.devices
        assert device.method is Method.POLLED and device.update_period_s == 0.005
        assert any(
            "NVML_FI_DEV_POWER_INSTANT" in n and "instant readings" in n for n in backend.notes
        )
        t_a = time.perf_counter()
        (e_a,) = backend.read_j()
        t_a_end = time.perf_counter()
        time.sleep(0.05)
        t_b = time.perf_counter()
        (e_b,) = backend.read_j()
        t_b_end = time.perf_counter()
    # constant power, so exactly 120 W x the time between the reads, which lies between
    # these bounds however long a busy runner paused this thread (50 W is far below)
    assert 120.0 * (t_b - t_a_end) <= e_b - e_a <= 120.0 * (t_b_end - t_a)


@pytest.mark.parametrize(
    "name, arch, period_s, what",
    [
        ("Tesla P100", 4, 0.005, "instant on this GPU"),  # Pascal: instant
        ("NVIDIA A100-SXM4-40GB", 7, 0.005, "instant on this GPU"),  # GA100: instant
        ("NVIDIA A10G", 7, 1.0, "1 s moving average"),  # other Ampere: averaged
        ("NVIDIA A30", 7, 0.005, "instant on this GPU"),  # GA100
        ("NVIDIA A100 80GB PCIe", 7, 0.005, "instant on this GPU"),  # GA100
        ("NVIDIA RTX A1000", 7, 1.0, "1 s moving average"),  # GA107, not an A100
        ("NVIDIA RTX A3000 Laptop GPU", 7, 1.0, "1 s moving average"),  # GA104, not an A30
    ],
)
def test_polled_power_usage_note_follows_the_gpu(
    name: str, arch: int, period_s: float, what: str
) -> None:
    nvml = node(1, g0={"energy_mj": None, "name": name, "arch": arch})
    with _open(nvml, poll_interval_s=0.005) as backend:
        assert backend.devices[0].update_period_s == period_s
        assert any(what in n for n in backend.notes)


# 8. every device with a context is synchronized


def test_synchronize_all_syncs_every_device_with_a_context(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = FakeTorch([_uuid(0), _uuid(1), _uuid(2)], contexts={0, 2})
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert cuda_helpers.synchronize_all() == 2
    assert torch.synced == [0, 2]  # never device 1: syncing it would create a context
    assert cuda_helpers.visible_device_uuids() == [_uuid(i)[4:] for i in range(3)]
    torch.cuda.is_initialized = lambda: False
    assert cuda_helpers.synchronize_all() == 0


# 9. a counter that goes backwards; WSL2


def test_counter_reset_counts_again_from_the_new_base() -> None:
    nvml = node(2, g0={"energy_mj": 5_000}, g1={"energy_mj": 10_000})
    with _open(nvml, gpus="all") as backend:
        nvml.gpus[0].energy_mj = 7_000
        assert list(backend.read_j()) == [2.0, 0.0]
        nvml.gpus[0].energy_mj = 1_000  # driver reload / GPU reset
        nvml.gpus[1].energy_mj = 13_000
        with pytest.warns(BackendWarning, match="GPU 0's energy counter went backwards"):
            assert list(backend.read_j()) == [2.0, 3.0]
        nvml.gpus[0].energy_mj = 1_500  # held for the rest of this window
        assert list(backend.read_j()) == [2.0, 3.0]
        assert backend.failed == {"gpu:0": "its energy counter was reset"}
        backend.refresh_devices()  # the next window: counts again from the new base
        assert backend.failed == {}
        nvml.gpus[0].energy_mj = 901_500
        assert list(backend.read_j()) == [902.0, 3.0]
        assert sum("went backwards" in n for n in backend.notes) == 1
        assert len(backend.faults) == 1


def test_wsl2_is_a_gpu_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dev").mkdir()
    assert gpu_host_kind(str(tmp_path)) is None
    (tmp_path / "dev" / "dxg").touch()
    assert gpu_host_kind(str(tmp_path)) == "wsl2"
    (tmp_path / "dev" / "nvidiactl").touch()
    assert gpu_host_kind(str(tmp_path)) == "linux"
    import pytest_co2.backends.nvml as nvml_mod

    monkeypatch.setattr(nvml_mod, "gpu_host_kind", lambda root="/": "wsl2")
    with pytest.raises(BackendError, match=r"WSL2 GPU \(/dev/dxg\).*usr/lib/wsl/lib") as info:
        NvmlBackend(FakeNvml([], init_error=12))
    assert not isinstance(info.value, BackendUnavailable)  # a warning with the fix, not quiet


def test_idle_power_realigned_after_the_devices_changed() -> None:
    from pytest_co2.backends.base import realign

    nvml = node(3)
    with pytest.warns(BackendWarning):
        backend = _open(nvml)
    with backend:
        old = backend.devices
        nvml.gpus[2].pids = (MY_PID,)
        assert backend.refresh_devices()
        assert realign((60.0, 61.0, 62.0), old, backend.devices) == (62.0,)
        assert realign((60.0,), old[:1], backend.devices, missing=-1.0) == (-1.0,)


# -- per-GPU faults on a trace-driven fake ------------------------------------------------------

GPU_IS_LOST = 15  # NVML_ERROR_GPU_IS_LOST


class Trace:
    """Power per GPU (W, set by the test) over a fake time, driving NVML's counter as the
    driver does: whole millijoules, published every 100 ms; a reset restarts it at 0, a
    lost GPU raises on every read."""

    TICK_S = 0.1

    def __init__(self, watts: list[float]) -> None:
        self.watts = list(watts)
        self.counter_mj = [0] * len(watts)
        self.lost = [False] * len(watts)

    def advance(self, seconds: float) -> None:
        for _ in range(round(seconds / self.TICK_S)):
            for i, w in enumerate(self.watts):
                self.counter_mj[i] += round(w * self.TICK_S * 1000)

    def reset(self, i: int) -> None:
        self.counter_mj[i] = 0

    def reader(self, i: int) -> Callable[[], int]:
        def read() -> int:
            if self.lost[i]:
                raise FakeNVMLError(GPU_IS_LOST)
            return self.counter_mj[i]

        return read


def traced(watts: list[float]) -> tuple[Trace, NodeNvml]:
    trace = Trace(watts)
    gpus = {f"g{i}": {"energy_mj": trace.reader(i)} for i in range(len(watts))}
    return trace, node(len(watts), **gpus)


def _window(meter: Any, name: str, work: Callable[[], None]) -> tuple[list[float], Any]:
    with meter.measure(name):
        work()
    m = meter.measurements[-1]
    return [d.energy_j for d in m.devices], m


def test_a_counter_reset_is_one_partial_window_then_counts_from_the_new_base() -> None:
    from pytest_co2.meter import Meter

    trace, nvml = traced([300.0, 100.0])
    with _open(nvml, gpus="all") as backend:
        meter = Meter(backend)
        e1, m1 = _window(meter, "before", lambda: trace.advance(1.0))
        assert e1 == [300.0, 100.0] and m1.complete

        def reset_midway() -> None:
            trace.advance(0.5)
            trace.reset(0)  # a GPU reset / driver reload: the counter restarts at 0
            trace.advance(0.5)

        with pytest.warns(BackendWarning, match="GPU 0's energy counter went backwards"):
            e2, m2 = _window(meter, "reset", reset_midway)
        # GPU 0's energy of this window is lost (never negative), GPU 1's is kept
        assert e2 == [0.0, 100.0] and not m2.complete
        assert any(n.startswith("partial: GPU 0's energy counter went backwards") for n in m2.notes)
        e3, m3 = _window(meter, "after", lambda: trace.advance(1.0))
        assert e3 == [300.0, 100.0] and m3.complete  # from the new base, not 0 J


def test_a_failed_read_ends_only_that_gpu_in_the_window() -> None:
    from pytest_co2.meter import Meter

    trace, nvml = traced([300.0, 100.0, 50.0])
    with _open(nvml, gpus="all") as backend:
        meter = Meter(backend)

        def lose_gpu_1() -> None:
            trace.advance(0.5)
            backend.read_j()  # a step's reading: GPU 1 still counts here
            trace.advance(0.5)
            trace.lost[1] = True
            trace.advance(1.0)

        with pytest.warns(BackendWarning, match="reading GPU 1's energy counter failed"):
            e1, m1 = _window(meter, "lost", lose_gpu_1)
        assert e1 == [600.0, 50.0, 100.0] and not m1.complete
        partial = [n for n in m1.notes if n.startswith("partial:")]
        still = "partial: gpu:1 could not be read (fake NVML error 15); its energy is not counted"
        assert partial == [
            "partial: reading GPU 1's energy counter failed (fake NVML error 15): its energy "
            "is not counted until it reads again; the other GPUs are",
            still,
        ]
        assert backend.failed == {"gpu:1": "fake NVML error 15"}
        e2, m2 = _window(meter, "still lost", lambda: trace.advance(1.0))
        assert e2 == [300.0, 0.0, 50.0] and not m2.complete  # never 0 J "complete"
        assert [n for n in m2.notes if n.startswith("partial:")] == [still]
        assert len(backend.faults) == 1  # one event, however many reads fail
        trace.lost[1] = False
        trace.advance(1.0)  # between windows, not counted: GPU 1 was unreadable
        with pytest.warns(BackendWarning, match="GPU 1's energy counter reads again"):
            e3, m3 = _window(meter, "back", lambda: trace.advance(1.0))
        assert e3 == [300.0, 100.0, 50.0] and backend.failed == {}
        assert any("while it was unreadable is not counted" in n for n in m3.notes)
        e4, m4 = _window(meter, "steady", lambda: trace.advance(1.0))
        assert e4 == [300.0, 100.0, 50.0] and m4.complete


class FlakyNvml(NodeNvml):
    """NVML where GPU 1 is lost at open, and GPU 2's name cannot be read."""

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if index == 1:
            raise FakeNVMLError(GPU_IS_LOST)
        return super().nvmlDeviceGetHandleByIndex(index)

    def nvmlDeviceGetName(self, handle: FakeGpu) -> bytes:
        if handle is self.gpus[2]:
            raise FakeNVMLError(999)
        return super().nvmlDeviceGetName(handle)


def test_a_gpu_lost_or_unnamed_at_open_is_left_out_with_a_note() -> None:
    nvml = FlakyNvml([NodeGpu(i) for i in range(4)])
    with _open(nvml, gpus="all") as backend:
        assert [d.id for d in backend.devices] == ["gpu:0", "gpu:3"]
        assert list(backend.read_j()) == [0.0, 0.0]
        assert (
            "GPU 1 is not measured: NVML could not open it (fake NVML error 15; a lost or "
            "failing GPU?)" in backend.notes
        )
        assert (
            "GPU 2 is not measured: NVML could not read its name (fake NVML error 999; a "
            "lost or failing GPU?)" in backend.notes
        )
    with pytest.raises(BackendError, match="could open none of the selected GPUs"):
        _open(FlakyNvml([NodeGpu(0), NodeGpu(1)]), gpus="cuda:1")


@pytest.mark.parametrize(
    "value_type, member, raw, watts",
    [
        (0, "dVal", 250_500.0, 250.5),
        (1, "uiVal", 250_000, 250.0),
        (4, "sllVal", 310_000, 310.0),
        (5, "siVal", 90_000, 90.0),
        (6, "usVal", 60_000, 60.0),
    ],
)
def test_the_instant_field_is_read_by_its_value_type(
    value_type: int, member: str, raw: float, watts: float
) -> None:
    class TypedNvml(NodeNvml):
        def nvmlDeviceGetFieldValues(self, handle: NodeGpu, field_ids: list[int]) -> list[Any]:
            value = SimpleNamespace(**{member: raw})
            return [SimpleNamespace(nvmlReturn=0, valueType=value_type, value=value)]

    nvml = TypedNvml([NodeGpu(0, energy_mj=5_000)])
    with _open(nvml) as backend:
        assert list(backend.read_power_w() or ()) == [watts]


def test_ga100_names() -> None:
    from pytest_co2.backends.nvml import is_ga100_name

    assert [is_ga100_name(n) for n in ("NVIDIA A100-SXM4-80GB", "NVIDIA A30", "A100")] == [
        True,
        True,
        True,
    ]
    assert not any(
        is_ga100_name(n)
        for n in ("NVIDIA RTX A1000", "NVIDIA RTX A3000 12GB Laptop GPU", "NVIDIA A10", "GA1000")
    )


def test_a_gpu_lost_under_a_composite_backend_keeps_its_windows_partial() -> None:
    from pytest_co2.backends.composite import CompositeBackend
    from pytest_co2.backends.constant import ConstantBackend
    from pytest_co2.meter import Meter

    trace, nvml = traced([300.0])
    with CompositeBackend([_open(nvml), ConstantBackend(40.0)]) as backend:
        meter = Meter(backend)
        trace.lost[0] = True
        with pytest.warns(BackendWarning, match="reading GPU 0's energy counter failed"):
            backend.read_j()
        assert backend.failed == {"gpu:0": "fake NVML error 15"}
        _, m = _window(meter, "lost", lambda: trace.advance(1.0))
        assert not m.complete
        assert (
            "partial: gpu:0 could not be read (fake NVML error 15); its energy is not counted"
            in m.notes
        )
