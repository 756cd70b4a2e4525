"""Per-GPU faults, shared by the NVML and AMD SMI backends: a counter or a polled power that
fails, reads again or goes backwards ends only that GPU's contribution, with a note.

A fault is one entry in ``faults`` (the window that sees it is partial, as is every window
that ends while a GPU is in ``failed``); the first of a kind per GPU is also a note and a
warning.
"""

from __future__ import annotations

from .base import warn
from .poller import PowerPoller


class GpuFaults:
    """Mixed into a GPU backend that has ``notes``, ``faults``, ``_noted``, the counter GPUs'
    ``_counter_index`` and ``_counter_down``, and the polled GPUs' ``_poller`` and
    ``_polled_index``."""

    _id_prefix = "gpu"  # device ids: gpu:0
    _label = "GPU"  # in messages: GPU 0

    notes: list[str]
    faults: list[str]
    _noted: set[tuple[str, str]]
    _counter_index: list[int]
    _counter_down: list[str | None]
    _poller: PowerPoller | None
    _polled_index: list[int]

    def _fault(self, i: int, kind: str, message: str) -> None:
        """A fault of GPU ``i`` (see the module's docstring)."""
        self.faults.append(message)
        key = (f"{self._id_prefix}:{i}", kind)
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(message)
            warn(message)

    @property
    def failed(self) -> dict[str, str]:
        """Device id -> why, for the GPUs whose energy counter or power is unreadable now."""
        p = self._id_prefix
        out = {
            f"{p}:{self._counter_index[k]}": why
            for k, why in enumerate(self._counter_down)
            if why is not None
        }
        if self._poller is not None:
            for j, why in enumerate(self._poller.failed):
                if why is not None:
                    out[f"{p}:{self._polled_index[j]}"] = why
        return out

    def _counter_failed(self, k: int, why: str) -> None:
        """Counter GPU ``k`` could not be read: held until it reads again."""
        if self._counter_down[k] is not None:
            return  # still failing: the meter marks each window partial (see ``failed``)
        self._counter_down[k] = why
        i = self._counter_index[k]
        self._fault(
            i,
            "failed",
            f"reading {self._label} {i}'s energy counter failed ({why}): its energy is not "
            "counted until it reads again; the other GPUs are",
        )

    def _counter_resumed(self, k: int) -> None:
        """Counter GPU ``k`` reads again (the caller sets its new base)."""
        self._counter_down[k] = None
        i = self._counter_index[k]
        self._fault(
            i,
            "resumed",
            f"{self._label} {i}'s energy counter reads again: the energy while it was "
            "unreadable is not counted",
        )

    def _poller_faults(self, poller: PowerPoller) -> None:
        """The polled GPUs that failed or read again since the last read: faults."""
        down, resumed = poller.take_faults()
        for j in resumed:
            i = self._polled_index[j]
            self._fault(
                i,
                "resumed",
                f"{self._label} {i}'s power reads again: the energy while it was unreadable "
                "is not counted",
            )
        for j, why in down.items():
            i = self._polled_index[j]
            self._fault(
                i,
                "failed",
                f"reading {self._label} {i}'s power failed ({why}): its energy is not counted "
                "until it reads again; the other GPUs are",
            )
