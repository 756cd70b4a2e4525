"""The vendor-neutral GPU backend (:class:`GpuBackend`) and its drivers' interface."""

from __future__ import annotations

from .backend import GpuBackend
from .driver import GpuDriver, GpuInfo, PowerSource, Reading
from .select import FROM_ENV, GPU_DEVICES_HELP, GpuSelection, parse_gpu_devices

__all__ = [
    "FROM_ENV",
    "GPU_DEVICES_HELP",
    "GpuBackend",
    "GpuDriver",
    "GpuInfo",
    "GpuSelection",
    "PowerSource",
    "Reading",
    "parse_gpu_devices",
]
