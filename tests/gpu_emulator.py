"""A trace-driven emulator of NVML (``pynvml``) and AMD SMI (``amdsmi``) on a fake clock.

Each emulated GPU draws the power of a :class:`Trace` (idle, bursts, steps; piecewise
constant, so every integral is exact) on the :class:`EmuClock` of its :class:`Node`. What
the driver libraries report is derived from it the way the real sensors behave:

- the energy counter (NVML total energy in mJ, AMD SMI ticks of 15.3 uJ) is the exact
  integral of the trace, refreshed only every ``counter_period_s`` (100 ms by default);
- the averaged power (``nvmlDeviceGetPowerUsage`` on Ampere and newer,
  ``average_socket_power``) is the mean over the second before the last refresh, so it lags;
- the instant sensor (``NVML_FI_DEV_POWER_INSTANT``, ``current_socket_power``) sees only
  ``sensor_window_s`` of every ``sensor_period_s`` (25 ms of 100 ms, as measured on
  A100/H100) and reports the mean of the last slice it saw;
- resets (the counter starts again from 0), lost GPUs (every call fails from a time on),
  failing reads in an interval, a failing ``nvmlDeviceGetName``, MIG mode, other processes
  (with host PIDs, as inside a container), AMD compute partitions (several logical GPUs of
  one physical GPU, only the first reporting energy and power).

Use::

    node = Node.eight_gpus()            # or Node([EmuGpu(...), ...])
    nvml = node.nvml()                  # a module-like fake pynvml (one per "process")
    node.work(0, seconds=0.5, watts=300)  # GPU 0 draws 300 W for 0.5 s; the clock moves on
    node.clock.advance(0.2)

Two fakes from one node (``node.nvml()`` twice) are two processes on one machine: they see
the same GPUs and the same clock. ``install(monkeypatch, node)`` puts the fakes in
``sys.modules`` as ``pynvml`` and ``amdsmi``. This module is importable outside pytest
(``tools/gpu_check.py --dry-run``): it imports only the standard library.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import threading
import time
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "AmdSmiException",
    "AmdSmiLibraryException",
    "EmuAmdSmi",
    "EmuClock",
    "EmuGpu",
    "EmuNvml",
    "NVMLError",
    "Node",
    "Trace",
    "install",
]

# NVML return codes (nvml.h)
NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999
NVML_FI_DEV_POWER_INSTANT = 186
NVML_DEVICE_ARCH_VOLTA = 5
NVML_DEVICE_ARCH_AMPERE = 7
NVML_DEVICE_ARCH_HOPPER = 9
# amdsmi_status_t
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_UNEXPECTED_DATA = 43
AMD_RESOLUTION_UJ = 15.300000190734863  # what MI100-MI300 report (15.3 as a float32)


class EmuClock:
    """A clock that moves only when told (seconds, like ``time.perf_counter``); with
    ``follow=time.perf_counter`` it also moves in real time (then ``sleep`` sleeps and
    samplers run on their threads: for a run of the real plugin against the emulator)."""

    def __init__(self, t: float = 1000.0, follow: Any = None) -> None:
        self._t = t
        self._follow = follow  # e.g. time.perf_counter: the clock also moves in real time
        self._t0 = follow() if follow is not None else 0.0
        self._lock = threading.RLock()
        self._timers: list[list[Any]] = []  # [next time, interval, fn]
        if follow is not None:  # real time: samplers run on threads, sleeping sleeps
            self.every: Any = None
            self.sleep: Any = time.sleep

    @property
    def t(self) -> float:
        if self._follow is None:
            return self._t
        return self._t + (self._follow() - self._t0)

    @t.setter
    def t(self, value: float) -> None:
        self._t = value - (self.t - self._t)

    def __call__(self) -> float:
        return self.t

    def advance(self, dt_s: float) -> None:
        """Move on by ``dt_s``, calling each :meth:`every` function at its times on the way."""
        with self._lock:
            end = self.t + dt_s
            while True:
                due = [tm for tm in self._timers if tm[0] <= end + 1e-12]
                if not due:
                    break
                tm = min(due, key=lambda x: x[0])
                self.t = max(self.t, tm[0])
                tm[0] += tm[1]
                tm[2]()
            self.t = end

    def every(self, interval_s: float, fn: Any) -> Any:
        """Call ``fn()`` every ``interval_s`` of this clock's time; returns a cancel function."""
        timer = [self.t + interval_s, interval_s, fn]
        self._timers.append(timer)

        def cancel() -> None:
            if timer in self._timers:
                self._timers.remove(timer)

        return cancel

    sleep = advance  # a drop-in for time.sleep


class Trace:
    """Piecewise-constant power (W): a base idle plus overlays (``[t0, t1) -> W``), later
    ones winning. ``warm_idle_w``: the idle after the first overlay ended (a GPU idles
    higher after work than before it)."""

    def __init__(self, idle_w: float = 60.0, warm_idle_w: float | None = None) -> None:
        self.idle_w = idle_w
        self.warm_idle_w = idle_w if warm_idle_w is None else warm_idle_w
        self.overlays: list[tuple[float, float, float]] = []

    def burst(self, t0: float, seconds: float, watts: float) -> Trace:
        self.overlays.append((t0, t0 + seconds, watts))
        return self

    def step(self, t0: float, watts: float) -> Trace:
        return self.burst(t0, math.inf, watts)

    def square(
        self, t0: float, t1: float, on_w: float, period_s: float, duty: float = 0.5
    ) -> Trace:
        """On/off load from ``t0`` to ``t1``: ``on_w`` for ``duty`` of every period."""
        t = t0
        while t < t1:
            self.burst(t, min(period_s * duty, t1 - t), on_w)
            t += period_s
        return self

    def _warm_from(self) -> float:
        return min((t1 for _, t1, _ in self.overlays), default=math.inf)

    def power_w(self, t: float) -> float:
        for t0, t1, w in reversed(self.overlays):
            if t0 <= t < t1:
                return w
        return self.warm_idle_w if t >= self._warm_from() else self.idle_w

    def energy_j(self, t0: float, t1: float) -> float:
        """The exact integral of the power from ``t0`` to ``t1``."""
        if t1 <= t0:
            return 0.0
        cuts = {t0, t1, self._warm_from()}
        for a, b, _ in self.overlays:
            cuts.update((a, b))
        points = sorted(c for c in cuts if t0 <= c <= t1 and math.isfinite(c))
        return math.fsum(self.power_w(a) * (b - a) for a, b in itertools.pairwise(points) if b > a)

    def mean_w(self, t0: float, t1: float) -> float:
        return self.energy_j(t0, t1) / (t1 - t0) if t1 > t0 else self.power_w(t0)


@dataclass
class EmuGpu:
    """One emulated GPU (or one compute partition of an AMD GPU)."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    trace: Trace = field(default_factory=Trace)
    arch: int = NVML_DEVICE_ARCH_HOPPER
    has_counter: bool = True  # False: pre-Volta (no total-energy counter)
    counter_period_s: float = 0.1
    counter_phase_s: float = 0.0
    counter_base_mj: int = 5_000_000  # the counter's value at t = 0 (since the driver loaded)
    averaging_s: float = 1.0
    sensor_period_s: float = 0.1
    sensor_window_s: float = 0.025  # the instant sensor sees 25% of the time
    field_value_type: int | None = 1  # nvmlValueType_t of the instant field; None: no field
    pids: tuple[int, ...] = ()  # processes holding a context (as NVML reports them)
    resets: list[float] = field(default_factory=list)  # the counter restarts from 0 then
    lost_at: float | None = None  # every call fails from then on
    fail_reads: list[tuple[float, float]] = field(default_factory=list)  # energy reads fail
    name_fails: bool = False
    mig: bool = False
    # AMD: PCI address, compute partition (physical GPU shared by several logical ones)
    bdf: str = "0000:01:00.0"
    partition_id: int = 0
    partition_mode: str = "SPX"
    partition_reports: bool = False  # a partition other than the first reports the energy too
    hip_id: int | None = None

    # -- what the sensors report ------------------------------------------------------------
    def _last_refresh(self, t: float) -> float:
        p, ph = self.counter_period_s, self.counter_phase_s
        return math.floor((t - ph) / p + 1e-9) * p + ph

    def counter_j(self, t: float) -> float:
        """The counter's value (J since the last reset or t=0) as the driver reports it at t."""
        tq = self._last_refresh(t)
        since = max([r for r in self.resets if r <= t], default=None)
        if since is None:
            return self.counter_base_mj / 1000.0 + self.trace.energy_j(0.0, tq)
        return self.trace.energy_j(since, max(tq, since))

    def averaged_w(self, t: float) -> float:
        tq = self._last_refresh(t)
        return self.trace.mean_w(tq - self.averaging_s, tq)

    def instant_w(self, t: float) -> float:
        """The mean power of the last slice the part-time sensor saw."""
        p, w = self.sensor_period_s, self.sensor_window_s
        k = math.floor(t / p + 1e-9)
        start = k * p
        if t < start + w - 1e-12:  # inside a slice: the previous one is the last complete
            start -= p
        return self.trace.mean_w(start, start + w)

    def lost(self, t: float) -> bool:
        return self.lost_at is not None and t >= self.lost_at

    def read_fails(self, t: float) -> bool:
        return self.lost(t) or any(a <= t < b for a, b in self.fail_reads)


class Node:
    """A machine: GPUs on one clock. ``work`` and ``clock.advance`` move time."""

    def __init__(self, gpus: Sequence[EmuGpu], clock: EmuClock | None = None) -> None:
        self.gpus = list(gpus)
        self.clock = clock if clock is not None else EmuClock()

    @classmethod
    def eight_gpus(
        cls, name: str = "NVIDIA H100 80GB HBM3", idle_w: float = 70.0, **kw: Any
    ) -> Node:
        """8 GPUs, idle at ``idle_w``, with another process (pid 4242) bursting on 5 and 7."""
        gpus = [
            EmuGpu(
                name=name,
                uuid=f"GPU-{i:x}{i:x}{i:x}0e2a1-5c3d-4e7f-8a9b-00000000000{i}",
                trace=Trace(idle_w),
                bdf=f"0000:{0x18 + i:02x}:00.0",
                **kw,
            )
            for i in range(8)
        ]
        node = cls(gpus)
        for i in (5, 7):
            gpus[i].pids = (4242,)
            gpus[i].trace.square(node.clock.t, node.clock.t + 3600, 400.0, 0.7, 0.5)
        return node

    @classmethod
    def mi300x_cpx(cls, physical: int = 1, partitions: int = 8, all_report: bool = False) -> Node:
        """AMD MI300X GPUs in CPX mode: ``partitions`` logical GPUs per physical one (only the
        first reports energy and power, or each the physical GPU's: ``all_report``)."""
        gpus = []
        for p in range(physical):
            trace = Trace(140.0)
            for k in range(partitions):
                gpus.append(
                    EmuGpu(
                        name="AMD Instinct MI300X",
                        uuid=f"{p:02x}{k:02x}74a1-0000-1000-8000-9ee4fb78e9ba",
                        trace=trace,
                        bdf=f"0000:{0x0C + p:02x}:00.{k}",
                        partition_id=k,
                        partition_mode="CPX",
                        partition_reports=all_report,
                        counter_period_s=0.001,
                    )
                )
        return cls(gpus)

    def work(self, index: int, seconds: float, watts: float) -> None:
        """GPU ``index`` draws ``watts`` from now for ``seconds``; the clock moves on."""
        t = self.clock.t
        self.gpus[index].trace.burst(t, seconds, watts)
        self.clock.advance(seconds)

    def true_energy_j(self, index: int, t0: float, t1: float) -> float:
        return self.gpus[index].trace.energy_j(t0, t1)

    def nvml(self) -> EmuNvml:
        return EmuNvml(self)

    def amdsmi(self) -> EmuAmdSmi:
        return EmuAmdSmi(self)


# ------------------------------------------------------------------------------------- NVML


class NVMLError(Exception):
    """pynvml's error: ``value`` is the nvmlReturn_t."""

    _TEXT: ClassVar[dict[int, str]] = {
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __init__(self, value: int = NVML_ERROR_UNKNOWN) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._TEXT.get(self.value, f"NVML error {self.value}")


class c_nvmlValue_t(ctypes.Union):
    _fields_ = [
        ("dVal", ctypes.c_double),
        ("uiVal", ctypes.c_uint),
        ("ulVal", ctypes.c_ulong),
        ("ullVal", ctypes.c_ulonglong),
        ("sllVal", ctypes.c_longlong),
        ("siVal", ctypes.c_int),
        ("usVal", ctypes.c_ushort),
    ]


_VALUE_MEMBER = {
    0: "dVal",
    1: "uiVal",
    2: "ulVal",
    3: "ullVal",
    4: "sllVal",
    5: "siVal",
    6: "usVal",
}


@dataclass
class _FieldValue:
    fieldId: int
    nvmlReturn: int
    valueType: int
    value: c_nvmlValue_t


@dataclass
class _Process:
    pid: int
    usedGpuMemory: int = 1 << 30


class EmuNvml(types.ModuleType):
    """A fake ``pynvml`` over a :class:`Node` (one instance per emulated process)."""

    NVMLError = NVMLError
    NVML_FI_DEV_POWER_INSTANT = NVML_FI_DEV_POWER_INSTANT

    def __init__(self, node: Node) -> None:
        super().__init__("pynvml")
        self.node = node
        self.init_calls = 0
        self.shutdown_calls = 0
        self.calls: dict[str, int] = {}

    def _gpu(self, handle: EmuGpu, what: str) -> EmuGpu:
        self.calls[what] = self.calls.get(what, 0) + 1
        if handle.lost(self.node.clock.t):
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return handle

    def nvmlInit(self) -> None:
        self.init_calls += 1

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.node.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> EmuGpu:
        return self._gpu(self.node.gpus[index], "handle")

    def nvmlDeviceGetName(self, h: EmuGpu) -> str:
        if self._gpu(h, "name").name_fails:
            raise NVMLError(NVML_ERROR_UNKNOWN)
        return h.name

    def nvmlDeviceGetUUID(self, h: EmuGpu) -> str:
        return self._gpu(h, "uuid").uuid

    def nvmlDeviceGetArchitecture(self, h: EmuGpu) -> int:
        return self._gpu(h, "arch").arch

    def nvmlDeviceGetMigMode(self, h: EmuGpu) -> tuple[int, int]:
        mode = int(self._gpu(h, "mig").mig)
        return mode, mode

    def nvmlDeviceGetTotalEnergyConsumption(self, h: EmuGpu) -> int:
        g = self._gpu(h, "energy")
        t = self.node.clock.t
        if not g.has_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if g.read_fails(t):
            raise NVMLError(NVML_ERROR_UNKNOWN)
        return math.floor(g.counter_j(t) * 1000.0 + 1e-6)

    def nvmlDeviceGetPowerUsage(self, h: EmuGpu) -> int:
        g = self._gpu(h, "power")
        t = self.node.clock.t
        w = g.instant_w(t) if g.arch < NVML_DEVICE_ARCH_AMPERE else g.averaged_w(t)
        return round(w * 1000.0)

    def nvmlDeviceGetFieldValues(self, h: EmuGpu, field_ids: Iterable[int]) -> list[_FieldValue]:
        g = self._gpu(h, "field")
        out = []
        for fid in field_ids:
            value = c_nvmlValue_t()
            kind = g.field_value_type
            if fid != NVML_FI_DEV_POWER_INSTANT or kind is None:
                out.append(_FieldValue(fid, NVML_ERROR_NOT_SUPPORTED, 0, value))
                continue
            mw = g.instant_w(self.node.clock.t) * 1000.0
            setattr(value, _VALUE_MEMBER[kind], mw if kind == 0 else round(mw))
            out.append(_FieldValue(fid, NVML_SUCCESS, kind, value))
        return out

    def nvmlDeviceGetComputeRunningProcesses(self, h: EmuGpu) -> list[_Process]:
        return [_Process(p) for p in self._gpu(h, "processes").pids]


# ---------------------------------------------------------------------------------- AMD SMI


class AmdSmiException(Exception):
    pass


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code


class EmuAmdSmi(types.ModuleType):
    """A fake ``amdsmi`` over a :class:`Node` (one instance per emulated process)."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiInitFlags = types.SimpleNamespace(INIT_ALL_PROCESSORS=0xFFFFFFFF, INIT_AMD_GPUS=2)

    def __init__(self, node: Node) -> None:
        super().__init__("amdsmi")
        self.node = node
        self.init_calls = 0
        self.shutdown_calls = 0

    def _gpu(self, h: EmuGpu) -> EmuGpu:
        if h.lost(self.node.clock.t):
            raise AmdSmiLibraryException(AMDSMI_STATUS_UNEXPECTED_DATA)
        return h

    def _primary(self, h: EmuGpu) -> EmuGpu:
        """Energy and power are reported on a physical GPU's first partition only."""
        if self._gpu(h).partition_id != 0 and not h.partition_reports:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return h

    def amdsmi_init(self, flag: Any = None) -> None:
        self.init_calls += 1

    def amdsmi_shut_down(self) -> None:
        self.shutdown_calls += 1

    def amdsmi_get_processor_handles(self) -> list[EmuGpu]:
        return list(self.node.gpus)

    def amdsmi_get_gpu_device_uuid(self, h: EmuGpu) -> str:
        return self._gpu(h).uuid

    def amdsmi_get_gpu_device_bdf(self, h: EmuGpu) -> str:
        return self._gpu(h).bdf

    def amdsmi_get_gpu_enumeration_info(self, h: EmuGpu) -> dict[str, Any]:
        k = self.node.gpus.index(h)
        hip = k if h.hip_id is None else h.hip_id
        return {"hip_id": hip, "hip_uuid": f"GPU-{h.uuid.replace('-', '')[:16]}", "drm_card": k}

    def amdsmi_get_gpu_asic_info(self, h: EmuGpu) -> dict[str, Any]:
        return {"market_name": self._gpu(h).name, "vendor_id": "0x1002"}

    def amdsmi_get_gpu_compute_partition(self, h: EmuGpu) -> str:
        return self._gpu(h).partition_mode

    def amdsmi_get_gpu_kfd_info(self, h: EmuGpu) -> dict[str, Any]:
        k = self.node.gpus.index(h)
        return {"kfd_id": 1000 + k, "node_id": 2 + k, "current_partition_id": h.partition_id}

    def amdsmi_get_energy_count(self, h: EmuGpu) -> dict[str, Any]:
        g = self._primary(h)
        t = self.node.clock.t
        if not g.has_counter:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        if g.read_fails(t):
            raise AmdSmiLibraryException(AMDSMI_STATUS_UNEXPECTED_DATA)
        ticks = math.floor(g.counter_j(t) * 1e6 / AMD_RESOLUTION_UJ + 1e-6)
        return {
            "energy_accumulator": ticks,
            "counter_resolution": AMD_RESOLUTION_UJ,
            "timestamp": int(t * 1e9),
        }

    def amdsmi_get_power_info(self, h: EmuGpu) -> dict[str, Any]:
        g = self._primary(h)
        t = self.node.clock.t
        return {
            "current_socket_power": round(g.instant_w(t)),
            "average_socket_power": round(g.averaged_w(t)),
            "socket_power": round(g.averaged_w(t)),
            "power_limit": 750,
        }

    def amdsmi_get_gpu_process_list(self, h: EmuGpu) -> list[dict[str, Any]]:
        return [{"pid": p, "name": "python"} for p in self._gpu(h).pids]


def install(monkeypatch: Any, node: Node) -> tuple[EmuNvml, EmuAmdSmi]:
    """Put a fake ``pynvml`` and ``amdsmi`` of ``node`` in ``sys.modules`` (pytest's
    ``monkeypatch``); returns them."""
    import sys

    nvml, amd = node.nvml(), node.amdsmi()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setitem(sys.modules, "amdsmi", amd)
    return nvml, amd
