"""Per-GPU energy counters and their faults, the same for every vendor.

Each counter GPU keeps its last raw reading and what it has counted since the backend
opened (integers in the counter's unit, so sums are exact). Faults are per GPU and never
raise from a read:

- a read that fails (or reads N/A) holds that GPU's energy until it reads again; it then
  counts from that reading on (the time in between is not counted);
- a reading lower than the last (a reset: driver reload, GPU reset, a wrap) ends that GPU's
  contribution for the window in which it is seen; from the next window on it counts again
  from its new base (never negative, never 0 J called complete).

Each is an entry in ``faults`` (the meter marks the window partial) and, the first time per
GPU and kind, a note and a warning; while a GPU is held, ``failed`` names it (every window
that ends then is partial too). The other GPUs go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base import warn
from ..poller import PowerPoller


@dataclass
class Counter:
    """The state of one GPU's energy counter."""

    index: int  # the node-wide GPU number
    handle: Any
    last: int  # the last raw reading
    mul: float
    div: float
    counted: int = 0  # raw units counted since opening
    down: str | None = None  # why it is held now (failed read, reset)
    reset: bool = False  # held after a reset until the next window
    moved: bool = False  # has counted (or was checked for a frozen counter)

    @property
    def joules(self) -> float:
        return self.counted * self.mul / self.div if self.mul != 1.0 else self.counted / self.div

    def j_text(self, raw: int) -> str:
        return f"{raw * self.mul / self.div:.3f} J"


class Faults:
    """The fault book of a GPU backend: ``faults``, the notes, ``failed``."""

    def __init__(self, label: str, id_prefix: str, notes: list[str]) -> None:
        self.label = label
        self.id_prefix = id_prefix
        self.notes = notes
        self.faults: list[str] = []  # every fault, in order (the meter marks windows partial)
        self._noted: set[tuple[int, str]] = set()

    def fault(self, i: int, kind: str, message: str) -> None:
        self.faults.append(message)
        if (i, kind) not in self._noted:
            self._noted.add((i, kind))
            self.notes.append(message)
            warn(message)

    def failed(
        self, counters: Sequence[Counter], poller: PowerPoller | None, polled: Sequence[int]
    ) -> dict[str, str]:
        """Device id -> why, for the GPUs whose energy is held now."""
        p = self.id_prefix
        out = {f"{p}:{c.index}": c.down for c in counters if c.down is not None}
        if poller is not None:
            for j, why in enumerate(poller.failed):
                if why is not None:
                    out[f"{p}:{polled[j]}"] = why
        return out

    # -- counters -----------------------------------------------------------------------------
    def update(self, c: Counter, raw: int | None, error: str | None) -> None:
        """One reading of counter ``c``: ``raw`` (None: N/A) or ``error``."""
        if error is not None or raw is None:
            self._failed(c, error or "it reads N/A")
        elif c.reset:
            return  # held until the next window (see :meth:`new_window`)
        elif c.down is not None:
            c.down = None
            c.last = raw
            self.fault(
                c.index,
                "resumed",
                f"{self.label} {c.index}'s energy counter reads again: the energy while it "
                "was unreadable is not counted",
            )
        elif raw >= c.last:
            if raw > c.last:
                c.moved = True
            c.counted += raw - c.last
            c.last = raw
        else:
            self._went_back(c, raw)

    def new_window(self, c: Counter, raw: int | None) -> None:
        """A window starts: a counter held after a reset counts again from ``raw``."""
        if c.reset and raw is not None:
            c.reset, c.down, c.last = False, None, raw

    def _failed(self, c: Counter, why: str) -> None:
        if c.down is not None:
            return  # still held: each window that ends now is partial (``failed``)
        c.down = why
        self.fault(
            c.index,
            "failed",
            f"reading {self.label} {c.index}'s energy counter failed ({why}): its energy is not "
            "counted until it reads again; the other GPUs are",
        )

    def _went_back(self, c: Counter, raw: int) -> None:
        message = (
            f"{self.label} {c.index}'s energy counter went backwards ({c.j_text(c.last)} -> "
            f"{c.j_text(raw)}: a reset, driver reload or wrap?): its energy in this window "
            "after its last reading is not counted; it counts again from its new value in "
            "the next window"
        )
        c.reset, c.down, c.last = True, "its energy counter was reset", raw
        self.fault(c.index, "reset", message)

    # -- polled power -------------------------------------------------------------------------
    def poller(self, poller: PowerPoller, polled: Sequence[int]) -> None:
        """The polled GPUs that failed or read again since the last read: faults."""
        down, resumed = poller.take_faults()
        for j in resumed:
            i = polled[j]
            self.fault(
                i,
                "resumed",
                f"{self.label} {i}'s power reads again: the energy while it was unreadable "
                "is not counted",
            )
        for j, why in down.items():
            i = polled[j]
            self.fault(
                i,
                "failed",
                f"reading {self.label} {i}'s power failed ({why}): its energy is not counted "
                "until it reads again; the other GPUs are",
            )
