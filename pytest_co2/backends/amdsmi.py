"""``amdsmi``: energy of the AMD GPUs this process may use, through AMD SMI (``amdsmi``).

Per GPU, the energy accumulator (``amdsmi_get_energy_count``: a tick count since the driver
loaded or the GPU was reset, and ``counter_resolution``, the microjoules per tick, about
15.3 uJ) is read at every :meth:`read_j`: ticks x resolution is a hardware counter, labelled
``counter``. The dict key is ``energy_accumulator`` since ROCm 6.4 and ``power`` before
(deprecated); both are read. The driver caches the firmware value for 1 ms; how often the
firmware refreshes it depends on the ASIC, so the device states :data:`COUNTER_UPDATE_PERIOD_S`
(an assumption, 10 ms) and :meth:`read_power_w` gives instant power where the GPU has it, for
the meter's power x time on short windows. A counter that goes backwards (a wrap, a driver
reload or a GPU reset) counts again from its new value (never negative energy), and a read
that fails (or reads N/A) holds that GPU's energy until it reads again: each is a fault (the
meter marks that window partial) and, the first time, a note and a warning; the other GPUs
go on. A counter that has not
moved :data:`FROZEN_AFTER_S` after opening while the GPU draws power is reported (a warning).

Where there is no energy counter (``AMDSMI_STATUS_NOT_SUPPORTED``, e.g. a VM guest, or the
values are ``'N/A'``), a daemon thread samples ``amdsmi_get_power_info`` every
``poll_interval_s`` and integrates it with the trapezoid rule (``poller.PowerPoller``),
labelled ``polled``: ``current_socket_power`` (instant, MI300 and newer) where the GPU has it,
else ``average_socket_power`` or ``socket_power`` (an average over the firmware's window, about
a second, so shorter steps are smeared). Unsupported values (``'N/A'``, ``UINT32_MAX``) are
treated as absent.

Which GPUs (``amdgpu:<index>``, the index in the runtime's enumeration order without any
visibility variable: ``hip_id`` of ``amdsmi_get_gpu_enumeration_info`` where the library has
it, else AMD SMI's handle order; the same in every process of the node):

- ``gpus`` (``--co2-gpus``): ``all``; or ``cuda:<k>`` (the k-th GPU this process sees, after
  the variables below) and ``GPU-`` UUIDs (unique prefixes);
- else ``ROCR_VISIBLE_DEVICES`` first (the ROCm runtime filters the GPUs; indices into all
  GPUs, or ``GPU-`` UUIDs), then ``HIP_VISIBLE_DEVICES`` within those (indices into the GPUs
  ROCR left, or UUIDs); ``CUDA_VISIBLE_DEVICES`` (which HIP also honours) only where
  ``HIP_VISIBLE_DEVICES`` is unset. Like the runtimes, a list ends at its first entry that is
  not a GPU here (a note says so), and an empty value selects no GPU;
- else every GPU (more than one: a warning, as a test using one is charged the others' idle).

A GPU that AMD SMI may not read (``AMDSMI_STATUS_NO_PERM``) is skipped with a note; no GPU
left is :class:`BackendUnavailable` (none selected) or :class:`BackendError` (none readable).
``amdsmi`` is imported only when the backend opens (``pip install 'pytest-co2[amd]'``; it needs
ROCm's ``libamd_smi``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from .amdsmi_values import _power_source, energy_reading, power_w, select_visible
from .base import BackendError, BackendUnavailable
from .gpu import GpuBackend
from .gpu.driver import DENIED, OTHER, UNSUPPORTED, GpuDriver, GpuInfo, PowerSource, Reading
from .gpu.select import FROM_ENV, GpuSelection, parse_gpu_devices
from .gpu_presence import NO_AMD_DRIVER, amd_driver_present

__all__ = [
    "AmdsmiBackend",
    "AmdsmiDriver",
    "amd_driver_present",
    "energy_reading",
    "power_w",
    "select_visible",
]

#: Assumed refresh period of the energy accumulator (the driver caches it for 1 ms; the
#: firmware's refresh depends on the ASIC).
COUNTER_UPDATE_PERIOD_S = 0.01
#: How long the backend reads the counters at open to measure their update period.
PROBE_PERIOD_S = 0.35
#: A counter that has not moved this long after opening, on a GPU drawing power, is frozen.
FROZEN_AFTER_S = 5.0

# amdsmi_status_t values (amdsmi.h), so a minimal or fake module works too.
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_YET_IMPLEMENTED = 3
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34
_UNSUPPORTED = (AMDSMI_STATUS_NOT_SUPPORTED, AMDSMI_STATUS_NOT_YET_IMPLEMENTED)

INSTALL_HINT = "pip install 'pytest-co2[amd]' (amdsmi needs ROCm's libamd_smi)"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _code(exc: BaseException) -> int | None:
    """The ``amdsmi_status_t`` of an ``AmdSmiLibraryException`` (None for other errors)."""
    code = getattr(exc, "err_code", None)
    if not isinstance(code, int):
        get = getattr(exc, "get_error_code", None)
        with contextlib.suppress(Exception):
            code = get() if callable(get) else None
    return abs(code) if isinstance(code, int) and not isinstance(code, bool) else None


def _errors(amd: Any) -> tuple[type[BaseException], ...]:
    base = getattr(amd, "AmdSmiException", None)
    return (base,) if isinstance(base, type) and issubclass(base, BaseException) else (Exception,)


class AmdsmiDriver(GpuDriver):
    """AMD SMI (``amdsmi``) for :class:`~.gpu.GpuBackend`: initialized on construction."""

    vendor = "AMD SMI"
    label = "AMD GPU"
    id_prefix = "amdgpu"
    assumed_period_s = COUNTER_UPDATE_PERIOD_S
    frozen_after_s = FROZEN_AFTER_S
    visibility_hint = "--co2-gpus, HIP_VISIBLE_DEVICES or ROCR_VISIBLE_DEVICES"
    context = "GPU context"
    devices_word = "AMD GPU(s)"
    access_hint = "run where /dev/kfd and /dev/dri are accessible (the video and render groups)"
    tool = "amd-smi"

    def __init__(self, amd: Any, rocr: str | None, hip: str | None, cuda: str | None) -> None:
        self.amd = amd
        self.errors = _errors(amd)
        self.rocr, self.hip, self.cuda = rocr, hip, cuda
        self._up = False
        flags = getattr(amd, "AmdSmiInitFlags", None)
        flag = getattr(flags, "INIT_AMD_GPUS", getattr(flags, "AMD_GPUS", None))
        try:
            amd.amdsmi_init() if flag is None else amd.amdsmi_init(flag)
        except self.errors as exc:
            if _code(exc) == AMDSMI_STATUS_DRIVER_NOT_LOADED:
                raise BackendUnavailable(
                    f"no AMD GPU driver (amdsmi_init failed: {_text(exc)})"
                ) from None
            raise BackendError(
                f"amdsmi_init failed ({_text(exc)}): check that the amdgpu driver is loaded and "
                "that /dev/kfd and /dev/dri are accessible (the video and render groups), or use "
                "--co2-backend=estimate"
            ) from None
        self._up = True

    def _optional(self, name: str, handle: Any) -> Any:
        get = getattr(self.amd, name, None)
        if get is None:
            return None
        try:
            return get(handle)
        except self.errors:
            return None

    # -- the GPUs --------------------------------------------------------------------------
    def gpus(self) -> list[GpuInfo]:
        handles = list(self.amd.amdsmi_get_processor_handles())
        infos = [self._identify(k, h) for k, h in enumerate(handles)]
        ids = [g.extra["hip_id"] for g in infos]
        if infos and all(h is not None for h in ids) and len(set(ids)) == len(ids):
            infos.sort(key=lambda g: g.extra["hip_id"])
        elif len(infos) > 1:
            self.order_note = (
                "AMD GPUs numbered in AMD SMI's order (no HIP enumeration ids from this amdsmi, "
                "< 6.4): visibility indices are assumed to follow it"
            )
        for i, g in enumerate(infos):
            g.index = i
        return infos

    def _identify(self, k: int, handle: Any) -> GpuInfo:
        uuid = self._optional("amdsmi_get_gpu_device_uuid", handle)
        bdf = self._optional("amdsmi_get_gpu_device_bdf", handle)
        enum = self._optional("amdsmi_get_gpu_enumeration_info", handle)
        hip_id = enum.get("hip_id") if isinstance(enum, dict) else None
        hip_uuid = enum.get("hip_uuid") if isinstance(enum, dict) else None
        aliases: list[str] = []
        for raw in (hip_uuid, uuid):
            if isinstance(raw, (str, bytes)) and _text(raw).strip() not in ("", "N/A"):
                u = _text(raw).strip().lower()
                aliases.extend([u] if u.startswith("gpu-") else [u, f"gpu-{u}"])
        bdf_text = None if bdf is None else _text(bdf)
        physical, part = self._partition(handle, bdf_text)
        return GpuInfo(
            k,
            handle,
            None if uuid is None else _text(uuid),
            aliases,
            physical=physical,
            extra={
                "bdf": bdf_text,
                "hip_id": hip_id
                if isinstance(hip_id, int) and not isinstance(hip_id, bool)
                else None,
                "partition_id": part,
            },
        )

    def _partition(self, handle: Any, bdf: str | None) -> tuple[str | None, int]:
        """(the physical GPU, the partition id) of a logical GPU in a compute partition mode
        other than SPX (MI300X CPX: eight logical GPUs, the partition in the PCI function)."""
        mode = self._optional("amdsmi_get_gpu_compute_partition", handle)
        if not isinstance(mode, (str, bytes)) or _text(mode).strip().upper() in ("", "SPX", "N/A"):
            return None, 0
        kfd = self._optional("amdsmi_get_gpu_kfd_info", handle)
        part = kfd.get("current_partition_id") if isinstance(kfd, dict) else None
        if bdf is None or "." not in bdf:
            return None, 0
        base, _, function = bdf.rpartition(".")
        if not isinstance(part, int):
            part = int(function) if function.isdigit() else 0
        return base, part

    def name(self, handle: Any) -> str:
        for get, key in (
            ("amdsmi_get_gpu_asic_info", "market_name"),
            ("amdsmi_get_gpu_board_info", "product_name"),
        ):
            info = self._optional(get, handle)
            name = info.get(key) if isinstance(info, dict) else None
            if isinstance(name, (str, bytes)) and _text(name).strip() not in ("", "N/A"):
                return _text(name).strip()
        return "AMD GPU"

    def energy(self, handle: Any) -> Reading | None:
        get = getattr(self.amd, "amdsmi_get_energy_count", None)
        reading = energy_reading(get(handle)) if get is not None else None
        return None if reading is None else Reading(reading[0], reading[1], 1e6)

    def power_source(self, handle: Any, name: str) -> PowerSource | None:
        return _power_source(self.amd, handle)

    def pids(self, handle: Any) -> list[int]:
        get = getattr(self.amd, "amdsmi_get_gpu_process_list", None)
        procs = get(handle) if get is not None else ()
        return [int(p["pid"]) for p in procs or () if isinstance(p, dict) and "pid" in p]

    def kind(self, exc: BaseException) -> str:
        code = _code(exc)
        if code == AMDSMI_STATUS_NO_PERM:
            return DENIED
        return UNSUPPORTED if code in _UNSUPPORTED else OTHER

    def counter_detail(self, counter: Any) -> str:
        return f", {counter.mul:g} uJ per tick"

    def text(self, exc: BaseException) -> str:
        return _text(exc)

    # -- which GPUs this process may use ------------------------------------------------------
    def _hip_spec(self) -> tuple[str, str] | None:
        if self.hip is not None:
            return "HIP_VISIBLE_DEVICES", self.hip
        if self.cuda is not None:
            return "CUDA_VISIBLE_DEVICES", self.cuda
        return None

    def narrowed_by(self) -> str:
        hip = self._hip_spec()
        return hip[0] if hip is not None else "ROCR_VISIBLE_DEVICES"

    def visible(self, gpus: list[GpuInfo]) -> tuple[list[int] | None, list[str]]:
        """ROCR_VISIBLE_DEVICES first, then HIP_VISIBLE_DEVICES (or CUDA_...) within it."""
        notes = [self.order_note] if getattr(self, "order_note", None) else []
        hip = self._hip_spec()
        if self.rocr is None and hip is None:
            return None, notes
        aliases = [g.aliases for g in gpus]
        candidates = list(range(len(gpus)))
        if self.rocr is not None:
            candidates, more = select_visible(self.rocr, aliases, "ROCR_VISIBLE_DEVICES")
            notes.extend(more)
            self.emptied_by = f"ROCR_VISIBLE_DEVICES={self.rocr!r}"
        if hip is not None and candidates:
            var, value = hip
            pos, more = select_visible(value, [aliases[i] for i in candidates], var)
            notes.extend(more)
            candidates = [candidates[p] for p in pos]
            self.emptied_by = (
                f"{var}={value!r}"
                if self.rocr is None
                else f"{var}={value!r} within ROCR_VISIBLE_DEVICES={self.rocr!r}"
            )
        return candidates, notes

    def shutdown(self) -> None:
        if self._up:
            self._up = False
            with contextlib.suppress(Exception):  # shutting down must not raise
                self.amd.amdsmi_shut_down()


class AmdsmiBackend(GpuBackend):
    """Joules per measured AMD GPU since the backend opened: counter, or polled power."""

    name = "amdsmi"

    def __init__(
        self,
        amd: Any | None = None,
        poll_interval_s: float = 0.02,
        *,
        gpus: GpuSelection | str | None = None,
        rocr_visible_devices: str | None = FROM_ENV,
        hip_visible_devices: str | None = FROM_ENV,
        cuda_visible_devices: str | None = FROM_ENV,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        probe_period_s: float | None = FROM_ENV,
        pid: int | None = None,
    ) -> None:
        if not poll_interval_s > 0:
            raise BackendError(
                f"invalid AMD SMI poll interval {poll_interval_s!r}: expected seconds > 0"
            )
        if isinstance(gpus, str):
            try:
                gpus = parse_gpu_devices(gpus)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        if probe_period_s is FROM_ENV:  # measure the period on the real library only
            probe_period_s = PROBE_PERIOD_S if amd is None or sleep is not None else None
        if amd is None:
            amd = _import_amdsmi()
        env = os.environ.get
        driver = AmdsmiDriver(
            amd,
            env("ROCR_VISIBLE_DEVICES")
            if rocr_visible_devices is FROM_ENV
            else rocr_visible_devices,
            env("HIP_VISIBLE_DEVICES") if hip_visible_devices is FROM_ENV else hip_visible_devices,
            env("CUDA_VISIBLE_DEVICES")
            if cuda_visible_devices is FROM_ENV
            else cuda_visible_devices,
        )
        super().__init__(
            driver, gpus, poll_interval_s, pid=pid, clock=clock, sleep=sleep,
            probe_period_s=probe_period_s,
        )  # fmt: skip

    @property
    def bdfs(self) -> list[str | None]:
        return [g.extra.get("bdf") for g in self.infos]

    @property
    def device_bdfs(self) -> tuple[str | None, ...]:
        return tuple(self.infos[i].extra.get("bdf") for i in self.order)


def _import_amdsmi() -> Any:
    if (
        "amdsmi" not in sys.modules
        and sys.platform.startswith("linux")
        and not amd_driver_present()
    ):
        raise BackendUnavailable(NO_AMD_DRIVER)
    try:
        import amdsmi
    except ImportError:
        raise BackendUnavailable(f"amdsmi is not installed: {INSTALL_HINT}") from None
    except Exception as exc:  # the bindings load libamd_smi at import
        raise BackendError(
            f"amdsmi failed to load ({type(exc).__name__}: {exc}): is ROCm installed and on "
            f"the library path? {INSTALL_HINT}"
        ) from None
    return amdsmi
