"""Whether a GPU driver (or RAPL) shows on this host: cheap file checks, made before a GPU
backend's module and its vendor library are imported, so that ``auto`` on a machine without
GPUs imports neither (the ``nvml`` and ``amdsmi`` modules cost several ms to import); the
same for the ``rapl`` module on a machine without powercap domains (a VM, a container)."""

from __future__ import annotations

import os
import sys

from .cpuinfo import host_root

NO_NVIDIA_DRIVER = "no NVIDIA driver (no /proc/driver/nvidia, /dev/nvidiactl or /dev/dxg)"
NO_AMD_DRIVER = "no AMD GPU driver (no /dev/kfd or /sys/module/amdgpu)"
RAPL_ROOT = "/sys/class/powercap"  # under host_root()


def rapl_root() -> str:
    """Where RAPL's powercap domains are (``/sys/class/powercap`` under the host root)."""
    return os.path.join(str(host_root()), RAPL_ROOT.lstrip("/"))


def no_rapl_domain() -> str | None:
    """Why there is surely no RAPL domain here (``rapl.RaplBackend`` would raise
    ``BackendUnavailable`` with this text), or None: it may have some, let it decide."""
    root = rapl_root()
    try:
        entries = os.listdir(root)
    except OSError:
        entries = []
    if any(e.startswith("intel-rapl:") for e in entries):
        return None
    return f"no RAPL powercap domains under {root}"


def gpu_host_kind(root: str | None = None) -> str | None:
    """``"linux"`` (NVIDIA driver in /proc or /dev), ``"wsl2"`` (``/dev/dxg`` without
    ``/dev/nvidiactl``: a WSL2 GPU), or None (no sign of an NVIDIA GPU), under ``root``
    (None: :func:`~.cpuinfo.host_root`)."""
    root = str(host_root()) if root is None else root
    join = os.path.join
    if os.path.exists(join(root, "proc/driver/nvidia/version")) or os.path.exists(
        join(root, "dev/nvidiactl")
    ):
        return "linux"
    if os.path.exists(join(root, "dev/dxg")):
        return "wsl2"
    return None


def nvidia_driver_present() -> bool:
    """Cheap check before importing pynvml (which costs ~15 ms): on Linux the driver shows in
    /proc and /dev (/dev/dxg on WSL2); elsewhere we cannot tell and let nvmlInit decide."""
    if not sys.platform.startswith("linux"):
        return True
    return gpu_host_kind() is not None


def amd_driver_present(root: str | None = None) -> bool:
    """Whether the amdgpu kernel driver shows (``/dev/kfd`` or ``/sys/module/amdgpu``) under
    ``root`` (None: :func:`~.cpuinfo.host_root`)."""
    root = str(host_root()) if root is None else root
    return os.path.exists(os.path.join(root, "dev/kfd")) or os.path.exists(
        os.path.join(root, "sys/module/amdgpu")
    )
