"""Energy backends: where joules come from.

``make_backend(spec)`` turns a ``--co2-backend`` value into a :class:`Backend`. Hardware
modules (``nvml``, ``amdsmi``, ``rapl``, ``carbontracker_adapter``) are imported only when asked for,
so ``import pytest_co2`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .base import (
    Backend,
    BackendError,
    BackendUnavailable,
    BackendWarning,
    Device,
    Method,
    warn,
)

__all__ = [
    "BACKEND_NAMES",
    "BUILTIN_NAMES",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "BackendWarning",
    "Device",
    "Method",
    "check_backend_spec",
    "find_part",
    "make_backend",
]

BACKEND_NAMES = (
    "auto",
    "nvml",
    "amdsmi",
    "rapl",
    "estimate",
    "carbontracker",
    "constant:<watts>",
)
_B = TypeVar("_B", bound=Backend)
BUILTIN_NAMES = tuple(n.split(":", 1)[0] for n in BACKEND_NAMES)


def check_backend_spec(text: str) -> str:
    """Validate a ``--co2-backend`` value without touching hardware; return it normalized.

    Raises :class:`ValueError` with one line naming the value and what is accepted.
    """
    spec = text.strip().lower()
    if spec.startswith("constant:"):
        from .constant import parse_watts

        try:
            parse_watts(spec.split(":", 1)[1])
        except BackendError as exc:
            raise ValueError(str(exc)) from None
        return spec
    if spec in BACKEND_NAMES:
        return spec
    raise ValueError(f"unknown backend {text!r}: expected one of {', '.join(BACKEND_NAMES)}")


def find_part(backend: Backend | None, kind: type[_B]) -> _B | None:
    """The backend, or the part of a composite backend, that is a ``kind``."""
    if isinstance(backend, kind):
        return backend
    for part in getattr(backend, "parts", ()):
        if isinstance(part, kind):
            return part
    return None


def make_backend(
    spec: str = "auto",
    *,
    cpu_tdp_w: float | None = None,
    cpu_watts_per_thread: tuple[float, float] | None = None,
    cpu_share: float = 1.0,
    gpus: Any = None,
) -> Backend:
    """Open the backend named by ``spec`` (see :data:`BACKEND_NAMES`).

    ``cpu_tdp_w`` and ``cpu_watts_per_thread`` (idle, full; it wins) go to the CPU estimate;
    ``cpu_share`` is this process's share of the CPUs it may use (1/N of N xdist workers);
    ``gpus`` a ``nvml.parse_gpu_devices`` selection (``--co2-gpus``), None: automatic.

    ``auto``: NVML for the visible NVIDIA GPUs and AMD SMI for the visible AMD GPUs where
    present (both on a mixed node), plus RAPL for the CPU where
    readable, else the CPU-time estimate. Absent hardware is skipped with a note;
    hardware that is present but unusable is skipped with a :class:`BackendWarning`
    that says how to fix it.
    """
    spec = check_backend_spec(spec)
    if spec.startswith("constant:"):
        from .constant import ConstantBackend, parse_watts

        return ConstantBackend(parse_watts(spec.split(":", 1)[1]))
    if spec == "estimate":
        from .estimate import EstimateBackend

        return EstimateBackend(
            cpu_tdp_w=cpu_tdp_w, watts_per_thread=cpu_watts_per_thread, cpu_share=cpu_share
        )
    if spec == "rapl":
        from .rapl import RaplBackend

        return RaplBackend()
    if spec in ("nvml", "amdsmi"):
        return _make_gpu(spec, gpus)
    if spec == "carbontracker":
        from .carbontracker_adapter import CarbontrackerBackend

        return CarbontrackerBackend()
    return _make_auto(cpu_tdp_w, cpu_watts_per_thread, cpu_share, gpus)


def _make_gpu(spec: str, gpus: Any) -> Backend:
    if spec == "amdsmi":
        from .amdsmi import AmdsmiBackend

        return AmdsmiBackend(gpus=gpus)
    from .nvml import NvmlBackend

    return NvmlBackend(gpus=gpus)


def _make_auto(
    cpu_tdp_w: float | None,
    cpu_watts_per_thread: tuple[float, float] | None = None,
    cpu_share: float = 1.0,
    gpus: Any = None,
) -> Backend:
    from .estimate import EstimateBackend
    from .gpu_presence import no_rapl_domain

    notes: list[str] = []
    parts: list[Backend] = []
    gpu_backends: tuple[tuple[Callable[[], Callable[..., Backend] | str], str, str, str], ...] = (
        (_nvml_class, "no NVML GPU", "NVML", "GPUs"),
        (lambda: _amdsmi_class(gpus), "no AMD GPU", "AMD SMI", "AMD GPUs"),
    )
    for find, absent, vendor, which in gpu_backends:
        cls = find()
        if isinstance(cls, str):  # no driver: the module is not even imported
            notes.append(f"{absent}: {cls}")
            continue
        try:
            parts.append(cls(gpus=gpus))
        except BackendUnavailable as exc:
            notes.append(f"{absent}: {exc}")
        except BackendError as exc:
            warn(f"{vendor} GPU energy unavailable, {which} are not measured: {exc}")
            notes.append(f"{vendor} failed: {exc}")
    try:
        no_rapl = no_rapl_domain()  # a VM or container: the rapl module is not imported
        if no_rapl is not None:
            raise BackendUnavailable(no_rapl)
        from .rapl import RaplBackend

        parts.append(RaplBackend())
    except BackendError as exc:
        if not isinstance(exc, BackendUnavailable):
            warn(f"RAPL unavailable, falling back to the CPU-time estimate: {exc}")
        notes.append(f"no RAPL: {exc}; CPU energy is estimated")
        parts.append(
            EstimateBackend(
                cpu_tdp_w=cpu_tdp_w, watts_per_thread=cpu_watts_per_thread, cpu_share=cpu_share
            )
        )
    if len(parts) == 1:
        backend = parts[0]
    else:
        from .composite import CompositeBackend  # here: most machines measure one part

        backend = CompositeBackend(parts, name="auto")
    backend.notes[:0] = notes
    if backend.name != "auto":
        backend.name = f"auto ({backend.name})"
    return backend


def _nvml_class() -> Callable[..., Backend] | str:
    """The NVML backend class, or why there is no NVIDIA GPU (decided without importing
    the module, as :class:`~.nvml.NvmlBackend` would decide it first)."""
    import sys

    from .gpu_presence import NO_NVIDIA_DRIVER, nvidia_driver_present

    if "pynvml" not in sys.modules and not nvidia_driver_present():
        return NO_NVIDIA_DRIVER
    from .nvml import NvmlBackend

    return NvmlBackend


def _amdsmi_class(gpus: Any) -> Callable[..., Backend] | str:
    """The AMD SMI backend class, or why there is no AMD GPU (as :class:`~.amdsmi.AmdsmiBackend`
    would decide it after checking a ``gpus`` text)."""
    import sys

    from .gpu_presence import NO_AMD_DRIVER, amd_driver_present

    if (
        not isinstance(gpus, str)
        and "amdsmi" not in sys.modules
        and sys.platform.startswith("linux")
        and not amd_driver_present()
    ):
        return NO_AMD_DRIVER
    from .amdsmi import AmdsmiBackend

    return AmdsmiBackend
