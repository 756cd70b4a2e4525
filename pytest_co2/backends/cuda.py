"""Torch-side CUDA helpers, all lazy: nothing here imports torch or creates a CUDA context.

Each function looks at ``sys.modules["torch"]`` and does nothing (returns an empty result)
unless torch is already imported and its CUDA state initialized, so calling them from the
meter or the NVML backend never starts CUDA in a process that did not.
"""

from __future__ import annotations

import sys
from typing import Any


def _cuda() -> Any | None:
    """``torch.cuda`` when torch is imported and CUDA initialized in this process, else None."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None) if torch is not None else None
    if cuda is None:
        return None
    try:
        return cuda if cuda.is_initialized() else None
    except Exception:  # a broken or stubbed torch must not break measuring
        return None


def _has_primary_context(torch: Any, index: int) -> bool | None:
    """Whether CUDA device ``index`` has a primary context; None when torch cannot say."""
    query = getattr(getattr(torch, "_C", None), "_cuda_hasPrimaryContext", None)
    if query is None:
        return None
    try:
        return bool(query(index))
    except Exception:
        return None


def context_device_indices() -> list[int]:
    """CUDA indices (this process's numbering) of the devices holding a primary context."""
    cuda = _cuda()
    if cuda is None:
        return []
    torch = sys.modules["torch"]
    try:
        count = int(cuda.device_count())
    except Exception:
        return []
    out = []
    for i in range(count):
        has = _has_primary_context(torch, i)
        if has is None:  # old torch: only the current device is known to be in use
            try:
                return [int(cuda.current_device())]
            except Exception:
                return []
        if has:
            out.append(i)
    return out


def synchronize_all() -> int:
    """Wait for queued work on every CUDA device that has a primary context; return how many.

    ``torch.cuda.synchronize()`` without an argument waits for the current device only,
    so with model parallelism work queued on other GPUs would spill into the next window.
    Devices without a context are skipped (synchronizing one would create a context).
    Does nothing unless torch is imported and CUDA initialized.
    """
    cuda = _cuda()
    if cuda is None:
        return 0
    indices = context_device_indices()
    for i in indices:
        cuda.synchronize(i)
    return len(indices)


def _uuid_text(value: Any) -> str:
    """torch prints a device UUID without NVML's ``GPU-``/``MIG-`` prefix; keep what it has."""
    text = str(value).strip()
    return text


def device_uuid(index: int) -> str | None:
    """The UUID torch reports for ``cuda:index`` (no ``GPU-`` prefix), or None if unknown."""
    cuda = _cuda()
    if cuda is None:
        return None
    try:
        uuid = getattr(cuda.get_device_properties(index), "uuid", None)
    except Exception:
        return None
    return None if uuid is None else _uuid_text(uuid)


def visible_device_uuids() -> list[str] | None:
    """UUIDs of this process's CUDA devices in CUDA order (index i is ``cuda:i``).

    None when torch is not imported, CUDA not initialized, or torch does not report UUIDs.
    """
    cuda = _cuda()
    if cuda is None:
        return None
    try:
        count = int(cuda.device_count())
    except Exception:
        return None
    out = []
    for i in range(count):
        uuid = device_uuid(i)
        if uuid is None:
            return None
        out.append(uuid)
    return out


def same_uuid(nvml_uuid: str, torch_uuid: str) -> bool:
    """NVML's ``GPU-xxxx`` / ``MIG-xxxx`` and torch's bare ``xxxx`` name the same device."""
    a = nvml_uuid.strip().lower()
    b = torch_uuid.strip().lower()
    for prefix in ("gpu-", "mig-"):
        a = a.removeprefix(prefix)
        b = b.removeprefix(prefix)
    return a == b
