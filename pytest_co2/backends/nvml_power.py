"""NVML power readings: the instant power field and ``nvmlDeviceGetPowerUsage``, decoded.

``NVML_FI_DEV_POWER_INSTANT`` comes as an ``nvmlFieldValue_t`` whose ``valueType`` names the
member of the value union that holds it (:func:`field_value`). ``nvmlDeviceGetPowerUsage``
is instant up to Turing and on GA100 (A100, A30; not RTX A1000/A3000), a 1 s moving average
on later GPUs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .gpu.driver import PowerSource

# NVML constants (values from nvml.h), so a minimal or fake module works too.
NVML_FI_DEV_POWER_INSTANT = 186
NVML_DEVICE_ARCH_AMPERE = 7
NVML_VALUE_TYPE_UNSIGNED_INT = 1
# nvmlValueType_t -> the member of the nvmlValue_t union that holds the value.
NVML_VALUE_MEMBERS = {
    0: "dVal",  # double
    1: "uiVal",  # unsigned int
    2: "ulVal",  # unsigned long
    3: "ullVal",  # unsigned long long
    4: "sllVal",  # signed long long
    5: "siVal",  # signed int
    6: "usVal",  # unsigned short
}
# GA100 products (instant nvmlDeviceGetPowerUsage): A100, A30; not RTX A1000/A3000.
_GA100_NAME = re.compile(r"(?<![A-Za-z0-9])A(?:100|30)(?![0-9])")


def field_value(value: Any) -> float:
    """The number in an ``nvmlFieldValue_t``, read from the union member its ``valueType``
    names; ValueError for a type this code does not know."""
    kind = int(getattr(value, "valueType", NVML_VALUE_TYPE_UNSIGNED_INT))
    member = NVML_VALUE_MEMBERS.get(kind)
    if member is None:
        raise ValueError(f"unknown NVML value type {kind}: expected one of 0-6")
    return float(getattr(value.value, member))


def _field_reader(nvml: Any, handle: Any) -> Callable[[], float] | None:
    """A reader of the instant power field, or None when this GPU or driver lacks it."""
    get = getattr(nvml, "nvmlDeviceGetFieldValues", None)
    if get is None:
        return None
    field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", NVML_FI_DEV_POWER_INSTANT)

    def read() -> float:
        (value,) = get(handle, [field])
        if int(getattr(value, "nvmlReturn", 0)) != 0:
            raise nvml.NVMLError(int(value.nvmlReturn))
        return field_value(value) * 1e-3

    try:
        read()
    except Exception:  # not supported, unknown field, old driver: use the other source
        return None
    return read


def _usage_is_instant(nvml: Any, handle: Any, name: str) -> bool:
    """``nvmlDeviceGetPowerUsage`` is instant up to Turing and on GA100 (A100, A30)."""
    get_arch = getattr(nvml, "nvmlDeviceGetArchitecture", None)
    try:
        arch = int(get_arch(handle)) if get_arch is not None else None
    except Exception:
        arch = None
    if arch is None:
        return False
    if arch < NVML_DEVICE_ARCH_AMPERE:
        return True
    return arch == NVML_DEVICE_ARCH_AMPERE and is_ga100_name(name)


def is_ga100_name(name: str) -> bool:
    """Whether a GPU name is an A100 or A30 (GA100), not e.g. an RTX A1000 or A3000."""
    return _GA100_NAME.search(name) is not None


def _power_source(nvml: Any, handle: Any, name: str) -> PowerSource:
    field = _field_reader(nvml, handle)
    if field is not None:
        return PowerSource(field, True, "the instant power field (NVML_FI_DEV_POWER_INSTANT)")

    def usage() -> float:
        return float(nvml.nvmlDeviceGetPowerUsage(handle)) * 1e-3

    if _usage_is_instant(nvml, handle, name):
        return PowerSource(usage, True, "nvmlDeviceGetPowerUsage (instant on this GPU)")
    return PowerSource(usage, False, "nvmlDeviceGetPowerUsage (a 1 s moving average)")
