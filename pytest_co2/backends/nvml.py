"""``nvml``: energy of the NVIDIA GPUs the tests use, through NVML (``pynvml``).

A thin driver (:class:`NvmlDriver`) under the vendor-neutral :class:`~.gpu.GpuBackend`,
which selects the GPUs, handles faults, resets, short windows and locks (see there).

Per GPU the driver reads the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since the driver loaded, Volta and newer): a hardware counter, ``counter``. Its
update period (about 20-100 ms, GPU dependent) is measured at open. Where the counter is not
supported (pre-Volta GPUs), power is polled and integrated (``polled``): the instant power
field (``NVML_FI_DEV_POWER_INSTANT``) where the GPU has it, else ``nvmlDeviceGetPowerUsage``,
which is instant up to Turing and on GA100 (A100, A30) but a 1 s moving average on later GPUs.

Which GPUs this process may use (all matched by UUID, so NVML's PCI order and CUDA's order
cannot be confused): ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUIDs or unique prefixes;
with torch's CUDA initialized its device UUIDs give the exact CUDA order), else
``NVIDIA_VISIBLE_DEVICES`` (the container runtime's: UUIDs, ``MIG-`` ids, ``none``). NVML
lists the PIDs holding a context on each GPU; inside a container those are the host's, so
only torch's contexts identify the GPUs in use there (the backend says so).

A GPU that NVML may not open (``NO_PERMISSION``, e.g. a cgroup-restricted container) or
cannot open (a lost GPU) is skipped with a note. MIG slices (``MIG-`` ids, or a GPU in MIG
mode) are not measured: NVML's energy is the whole GPU's, other tenants included
(:class:`BackendError` with the fix). Device ids are ``gpu:<nvml index>``, the same in
every process of the node; locks are named by UUID.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import cuda as _cuda
from .base import BackendError, BackendUnavailable
from .gpu import GpuBackend
from .gpu.driver import DENIED, OTHER, UNSUPPORTED, GpuDriver, GpuInfo, PowerSource, Reading
from .gpu.select import (
    FROM_ENV,
    GPU_DEVICES_HELP,
    GpuSelection,
    parse_gpu_devices,
    visible_list,
)
from .gpu_presence import NO_NVIDIA_DRIVER, gpu_host_kind, nvidia_driver_present
from .nvml_power import _power_source, field_value, is_ga100_name

__all__ = [
    "FROM_ENV",
    "GPU_DEVICES_HELP",
    "GpuSelection",
    "NvmlBackend",
    "NvmlDriver",
    "field_value",
    "gpu_host_kind",
    "is_ga100_name",
    "parse_gpu_devices",
    "select_visible",
]

# The counter is refreshed by the driver about every 20-100 ms (GPU dependent): assumed
# where it is not measured at open.
COUNTER_UPDATE_PERIOD_S = 0.1
#: How long the backend reads the counters at open to measure their update period.
PROBE_PERIOD_S = 0.35

# NVML constants (values from nvml.h), so a minimal or fake module works too.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_DEVICE_MIG_ENABLE = 1

MIG_ADVICE = (
    "NVML reports energy for the whole GPU, not for a MIG slice (other tenants included), "
    "so pytest-co2 cannot measure it; use --co2-backend=estimate (or constant:<watts>) on "
    "MIG instances"
)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def select_visible(
    spec: str | None, count: int, uuids: Sequence[str | None] | None = None
) -> tuple[list[int], list[str]]:
    """NVML indices selected by a ``CUDA_VISIBLE_DEVICES`` value, and notes.

    ``None`` (unset): all ``count`` GPUs. ``""``: none. Otherwise comma-separated indices
    (read in NVML's PCI order) or ``GPU-`` UUIDs (a unique prefix is enough); like CUDA,
    the list ends at the first entry that is invalid. ``MIG-`` entries raise
    :class:`BackendError`. ``uuids`` (per NVML index) is needed only for UUID entries.
    """
    if spec is not None:
        mig = [t.strip() for t in spec.split(",") if t.strip().upper().startswith("MIG-")]
        if mig:
            raise BackendError(
                f"CUDA_VISIBLE_DEVICES={spec!r} names a MIG instance ({mig[0]}): {MIG_ADVICE}"
            )

    def match(tok: str) -> list[int]:
        if uuids is None:
            raise ValueError("uuids are needed to resolve a GPU- entry")
        return [i for i, u in enumerate(uuids) if u and u.lower().startswith(tok.lower())]

    return visible_list(spec, count, match, "CUDA_VISIBLE_DEVICES", "CUDA")


class NvmlDriver(GpuDriver):
    """NVML (``pynvml``) for :class:`~.gpu.GpuBackend`: initialized on construction."""

    vendor = "NVML"
    label = "GPU"
    id_prefix = "gpu"
    assumed_period_s = COUNTER_UPDATE_PERIOD_S
    no_counter_hint = " (pre-Volta?)"

    def __init__(
        self, nvml: Any, visible: str | None, nvidia_visible: str | None, *, init: bool = True
    ) -> None:
        self.nvml = nvml
        self.errors = (nvml.NVMLError,)
        self.visible_spec = visible
        self.nvidia_visible = nvidia_visible
        self._up = False
        if init:
            try:
                nvml.nvmlInit()
            except nvml.NVMLError as exc:
                if gpu_host_kind() == "wsl2":  # a GPU is there: say how to fix it (a warning)
                    raise BackendError(
                        f"a WSL2 GPU (/dev/dxg) is present but nvmlInit failed ({exc}): NVML "
                        "is /usr/lib/wsl/lib/libnvidia-ml.so.1; put /usr/lib/wsl/lib on the "
                        "library path (ldconfig or LD_LIBRARY_PATH)"
                    ) from None
                raise BackendUnavailable(
                    f"no usable NVIDIA driver (nvmlInit failed: {exc})"
                ) from None
            self._up = True

    # -- the GPUs --------------------------------------------------------------------------
    def gpus(self) -> list[GpuInfo]:
        nvml = self.nvml
        out = []
        for i in range(int(nvml.nvmlDeviceGetCount())):
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(i)
            except nvml.NVMLError as exc:
                out.append(GpuInfo(i, why=str(exc), denied=self.kind(exc) == DENIED))
                continue
            try:
                uuid: str | None = _text(nvml.nvmlDeviceGetUUID(h))
            except nvml.NVMLError:
                uuid = None
            out.append(GpuInfo(i, h, uuid, [uuid.lower()] if uuid else []))
        return out

    def name(self, handle: Any) -> str:
        return _text(self.nvml.nvmlDeviceGetName(handle))

    def energy(self, handle: Any) -> Reading:
        return Reading(int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle)), 1.0, 1000.0)

    def power_source(self, handle: Any, name: str) -> PowerSource:
        return _power_source(self.nvml, handle, name)

    def pids(self, handle: Any) -> list[int]:
        query = getattr(self.nvml, "nvmlDeviceGetComputeRunningProcesses", None)
        if query is None:
            return []
        return [int(getattr(p, "pid", -1)) for p in query(handle) or ()]

    def kind(self, exc: BaseException) -> str:
        code = _code(exc)
        if code == NVML_ERROR_NO_PERMISSION:
            return DENIED
        if code in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND):
            return UNSUPPORTED
        return OTHER

    # -- which GPUs this process may use ------------------------------------------------------
    def visible(self, gpus: list[GpuInfo]) -> tuple[list[int] | None, list[str]]:
        if self.visible_spec is not None:
            self.emptied_by = f"CUDA_VISIBLE_DEVICES={self.visible_spec!r}"
            return self._cuda_visible(self.visible_spec, gpus)
        if self.nvidia_visible is not None and gpus:
            self.emptied_by = f"NVIDIA_VISIBLE_DEVICES={self.nvidia_visible!r}"
            return self._nvidia_visible(self.nvidia_visible, gpus), []
        return None, []

    def process_order(self, gpus: list[GpuInfo], entry: str) -> tuple[list[int], list[str]]:
        order = self._cuda_order(gpus)
        if order is not None:
            return order, []
        if self.visible_spec is not None:
            return self._cuda_visible(self.visible_spec, gpus)
        notes = []
        if len(gpus) > 1 and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
            notes.append(
                f"--co2-gpus {entry}: CUDA indices read in NVML (PCI bus) order (torch's CUDA "
                "is not initialized); set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers the "
                "GPUs the same way"
            )
        return list(range(len(gpus))), notes

    def _cuda_order(self, gpus: list[GpuInfo]) -> list[int] | None:
        """NVML index of each CUDA device of this process, from torch's UUIDs (None: unknown)."""
        uuids = _cuda.visible_device_uuids()
        if uuids is None:
            return None
        order = [_index_of(gpus, u) for u in uuids]
        return None if any(i is None for i in order) else [i for i in order if i is not None]

    def _cuda_visible(self, visible: str, gpus: list[GpuInfo]) -> tuple[list[int], list[str]]:
        order = self._cuda_order(gpus)
        if order is not None:
            return order, [
                f"CUDA_VISIBLE_DEVICES={visible!r}: GPUs matched to CUDA's by UUID (torch)"
            ]
        indices, notes = select_visible(visible, len(gpus), [g.uuid for g in gpus])
        if (
            len(gpus) > 1
            and visible.strip()
            and "gpu-" not in visible.lower()
            and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID"
        ):
            notes.append(
                "CUDA_VISIBLE_DEVICES indices are read in NVML (PCI bus) order; set "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers the GPUs the same way"
            )
        return indices, notes

    def _nvidia_visible(self, value: str, gpus: list[GpuInfo]) -> list[int]:
        """``NVIDIA_VISIBLE_DEVICES`` (container runtime): ``all``, ``none``/``void``,
        UUIDs, ``MIG-`` ids, or host indices (used only where NVML shows more GPUs)."""
        count = len(gpus)
        tokens = [t.strip() for t in value.split(",") if t.strip()]
        low = [t.lower() for t in tokens]
        if not tokens or low == ["all"]:
            return list(range(count))
        if low[0] in ("none", "void"):
            return []
        mig = [t for t in tokens if t.lower().startswith("mig-")]
        if mig:
            raise BackendError(
                f"NVIDIA_VISIBLE_DEVICES={value!r} names a MIG instance ({mig[0]}): {MIG_ADVICE}"
            )
        out: list[int] = []
        for t in low:
            if t.startswith("gpu-"):
                matches = [g.index for g in gpus if g.uuid and g.uuid.lower().startswith(t)]
                if len(matches) == 1 and matches[0] not in out:
                    out.append(matches[0])
        if out or any(t.startswith("gpu-") for t in low):
            return out
        if count <= len(tokens):  # the runtime already mounted only these GPUs
            return list(range(count))
        return [int(t) for t in tokens if t.isdigit() and int(t) < count]

    def refuse(
        self, gpus: list[GpuInfo], indices: list[int], implicit: bool
    ) -> tuple[list[int], list[str]]:
        """MIG mode: NVML's energy is the whole GPU's, other tenants included."""
        mig = [i for i in indices if self._mig_enabled(gpus[i].handle)]
        if not mig:
            return indices, []
        if implicit and len(mig) < len(indices):
            note = f"GPU(s) {', '.join(map(str, mig))} in MIG mode not measured: {MIG_ADVICE}"
            return [i for i in indices if i not in mig], [note]
        raise BackendError(f"GPU {mig[0]} is in MIG mode: {MIG_ADVICE}")

    def mig_entry(self, entry: str) -> str:
        return f"--co2-gpus names a MIG instance ({entry}): {MIG_ADVICE}"

    def _mig_enabled(self, handle: Any) -> bool:
        get = getattr(self.nvml, "nvmlDeviceGetMigMode", None)
        if get is None or handle is None:
            return False
        try:
            current = get(handle)[0]
        except self.nvml.NVMLError:
            return False
        return int(current) == NVML_DEVICE_MIG_ENABLE

    def shutdown(self) -> None:
        if self._up:
            self._up = False
            with contextlib.suppress(Exception):  # shutting down must not raise
                self.nvml.nvmlShutdown()


def _index_of(gpus: list[GpuInfo], uuid: str) -> int | None:
    for g in gpus:
        if g.uuid is not None and _cuda.same_uuid(g.uuid, uuid):
            return g.index
    return None


class NvmlBackend(GpuBackend):
    """Joules per measured NVIDIA GPU since the backend opened: counter, or polled power."""

    name = "nvml"

    def __init__(
        self,
        nvml: Any | None = None,
        visible_devices: str | None = FROM_ENV,
        poll_interval_s: float = 0.02,
        *,
        gpus: GpuSelection | str | None = None,
        nvidia_visible_devices: str | None = FROM_ENV,
        pid: int | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        probe_period_s: float | None = FROM_ENV,
    ) -> None:
        if probe_period_s is FROM_ENV:  # measure the period on the real library only
            probe_period_s = PROBE_PERIOD_S if nvml is None or sleep is not None else None
        if nvml is None:
            nvml = _import_pynvml()
        if visible_devices is FROM_ENV:
            visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        if nvidia_visible_devices is FROM_ENV:
            nvidia_visible_devices = os.environ.get("NVIDIA_VISIBLE_DEVICES")
        if not poll_interval_s > 0:
            raise BackendError(
                f"invalid NVML poll interval {poll_interval_s!r}: expected seconds > 0"
            )
        driver = NvmlDriver(nvml, visible_devices, nvidia_visible_devices)
        super().__init__(
            driver, gpus, poll_interval_s, pid=pid, clock=clock, sleep=sleep,
            probe_period_s=probe_period_s,
        )  # fmt: skip


def _import_pynvml() -> Any:
    if "pynvml" not in sys.modules and not nvidia_driver_present():
        raise BackendUnavailable(NO_NVIDIA_DRIVER)
    try:
        import pynvml  # the nvidia-ml-py distribution
    except ImportError:
        raise BackendUnavailable(
            "pynvml is not installed: pip install 'pytest-co2[nvidia]'"
        ) from None
    return pynvml
