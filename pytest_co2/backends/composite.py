"""Several backends read as one: e.g. NVML for the GPUs plus RAPL or the estimate for the CPU."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .base import Backend


class CompositeBackend(Backend):
    """Concatenates the devices (and readings) of its parts, in order."""

    def __init__(self, parts: Sequence[Backend], name: str = "auto") -> None:
        super().__init__()
        if not parts:
            raise ValueError("a composite backend needs at least one part")
        self.parts = tuple(parts)
        self.name = name
        self.devices = tuple(d for p in self.parts for d in p.devices)
        for p in self.parts:
            self.notes.extend(p.notes)
        self.wall_w = math.fsum(p.wall_w for p in self.parts)  # the parts' wall-time charges
        self.reads_never_block = all(getattr(p, "reads_never_block", False) for p in self.parts)
        self.work_basis = "; ".join(p.work_basis for p in self.parts if p.work_basis)

    def read_j(self) -> Sequence[float]:
        if len(self.parts) == 2:  # the common case (GPU + CPU), without a generator
            return (*self.parts[0].read_j(), *self.parts[1].read_j())
        out: list[float] = []
        for p in self.parts:
            out.extend(p.read_j())
        return out

    def read_power_w(self) -> Sequence[float] | None:
        """The parts' instant power, NaN for the devices of a part that has none."""
        powers = [p.read_power_w() for p in self.parts]
        if all(x is None for x in powers):
            return None
        out: list[float] = []
        for p, x in zip(self.parts, powers, strict=True):
            out.extend([math.nan] * len(p.devices) if x is None else x)
        return out

    def refresh_devices(self) -> bool:
        changed = [p.refresh_devices() for p in self.parts]  # every part, no short cut
        if any(changed):
            self.devices = tuple(d for p in self.parts for d in p.devices)
        return any(changed)

    @property
    def faults(self) -> list[str]:
        """The parts' hardware faults, in part order (see ``rapl`` and the NVML backend)."""
        return [f for p in self.parts for f in getattr(p, "faults", ())]

    @property
    def failed(self) -> dict[str, str]:
        """The parts' devices whose readings are frozen now (device id -> why)."""
        out: dict[str, str] = {}
        for p in self.parts:
            out.update(getattr(p, "failed", {}))
        return out

    def describe(self) -> str:
        return f"{self.name}: " + "; ".join(p.describe() for p in self.parts)

    def close(self) -> None:
        for p in self.parts:
            p.close()
