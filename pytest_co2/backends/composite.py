"""Several backends read as one: e.g. NVML for the GPUs plus RAPL or the estimate for the CPU."""

from __future__ import annotations

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

    def read_j(self) -> Sequence[float]:
        if len(self.parts) == 2:  # the common case (GPU + CPU), without a generator
            return (*self.parts[0].read_j(), *self.parts[1].read_j())
        out: list[float] = []
        for p in self.parts:
            out.extend(p.read_j())
        return out

    def describe(self) -> str:
        return f"{self.name}: " + "; ".join(p.describe() for p in self.parts)

    def close(self) -> None:
        for p in self.parts:
            p.close()
