"""AMD SMI values decoded: power fields, the energy accumulator, the visibility lists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .gpu.driver import PowerSource
from .gpu.select import visible_list

# Unsupported power fields read UINT16_MAX/UINT32_MAX in older bindings ('N/A' in newer).
_POWER_SENTINEL_W = 0xFFFF
_U64_MAX = 2**64 - 1


def power_w(value: Any) -> float | None:
    """A power field in W, or None where it is unsupported (``'N/A'``, a sentinel, not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    w = float(value)
    return w if math.isfinite(w) and 0 <= w < _POWER_SENTINEL_W else None


def energy_reading(info: Any) -> tuple[int, float] | None:
    """(ticks, microjoules per tick) of an ``amdsmi_get_energy_count`` dict, None where absent.

    The tick count is ``energy_accumulator`` (ROCm 6.4+) or ``power`` (before)."""
    if not isinstance(info, dict):
        return None
    ticks = info.get("energy_accumulator", info.get("power"))
    res = info.get("counter_resolution")
    if isinstance(ticks, bool) or not isinstance(ticks, int) or not 0 <= ticks < _U64_MAX:
        return None
    if isinstance(res, bool) or not isinstance(res, (int, float)):
        return None
    if not (math.isfinite(res) and res > 0):
        return None
    return ticks, float(res)


def _power_source(amd: Any, handle: Any) -> PowerSource | None:
    """The best power field of this GPU, or None when it reports none."""
    info = amd.amdsmi_get_power_info(handle)
    if not isinstance(info, dict):
        return None
    for key, instant in (
        ("current_socket_power", True),
        ("average_socket_power", False),
        ("socket_power", False),
    ):
        w = power_w(info.get(key))
        if w is not None and w > 0:

            def read(key: str = key) -> float | None:
                return power_w(amd.amdsmi_get_power_info(handle).get(key))

            what = f"{key} ({'instant' if instant else 'an average over about 1 s'})"
            return PowerSource(read, instant, what)
    return None


def select_visible(
    spec: str | None, aliases: Sequence[Sequence[str]], var: str
) -> tuple[list[int], list[str]]:
    """Positions in ``aliases`` (one list of UUID spellings per GPU) that a ``var`` value
    selects, and notes.

    ``None`` (unset): all. ``""``: none. Otherwise comma-separated indices or ``GPU-`` UUIDs
    (matched exactly, case-insensitive); the list ends at its first entry that is not a GPU
    here, as in the ROCm runtime.
    """

    def match(tok: str) -> list[int]:
        return [i for i, names in enumerate(aliases) if tok.lower() in names]

    return visible_list(spec, len(aliases), match, var, "the ROCm runtime")
