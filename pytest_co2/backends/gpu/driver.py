"""What a GPU vendor library must answer: the thin driver under :class:`~.backend.GpuBackend`.

A driver knows one library (NVML, AMD SMI): how to list the GPUs, name them, read their
energy counter and power, list the processes on them, and read the runtime's visibility
variables. Everything else (selection, counters vs polled power, faults, resets, idle,
locks, short windows) is the backend's, the same for every vendor.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: How an error of the library is treated.
DENIED, UNSUPPORTED, OTHER = "denied", "unsupported", "other"


class PowerSource(NamedTuple):
    """A GPU's power reading: ``read_w`` (None: not available this time)."""

    read_w: Callable[[], float | None]
    instant: bool  # False: an average over about a second
    what: str  # for notes


class Reading(NamedTuple):
    """A raw energy counter value and its unit: joules = ``raw * mul / div``."""

    raw: int
    mul: float = 1.0
    div: float = 1000.0  # NVML: millijoules


@dataclass
class GpuInfo:
    """One GPU of the node as the library lists it (``index``: the node-wide number)."""

    index: int
    handle: Any = None  # None: the library could not open it (``why``)
    uuid: str | None = None
    aliases: list[str] = field(default_factory=list)  # lower-case UUID spellings
    why: str | None = None  # why it could not be opened
    denied: bool = False  # ... for lack of permission
    physical: str | None = None  # the physical GPU, where several logical ones share it
    extra: dict[str, Any] = field(default_factory=dict)


class GpuDriver(abc.ABC):
    """One vendor library. Methods raise one of ``errors`` where the library fails."""

    vendor: str = "GPU library"  # "NVML", "AMD SMI"
    label: str = "GPU"  # in messages: "GPU 0", "AMD GPU 0"
    id_prefix: str = "gpu"  # device ids: "gpu:0"
    errors: tuple[type[BaseException], ...] = (Exception,)
    #: The counter's refresh period assumed where it cannot be measured at open.
    assumed_period_s: float = 0.1
    #: Warn about a counter that has not moved this long after opening (None: never).
    frozen_after_s: float | None = None
    #: Message parts: the selection hint, the context kind, the process's devices, the
    #: access fix, the command-line tool, what a GPU without a counter may be.
    visibility_hint: str = "--co2-gpus or CUDA_VISIBLE_DEVICES"
    context: str = "CUDA context"
    devices_word: str = "CUDA device(s)"
    access_hint: str = "run where the GPU device files are accessible"
    tool: str = "nvidia-smi"
    no_counter_hint: str = ""
    #: Set by :meth:`visible`: the variable that selected no GPU, for the message.
    emptied_by: str | None = None

    @abc.abstractmethod
    def gpus(self) -> list[GpuInfo]:
        """Every GPU of the node, in the node's numbering."""

    @abc.abstractmethod
    def name(self, handle: Any) -> str:
        """The product name."""

    @abc.abstractmethod
    def energy(self, handle: Any) -> Reading | None:
        """The energy counter (None: it reads N/A this time)."""

    @abc.abstractmethod
    def power_source(self, handle: Any, name: str) -> PowerSource | None:
        """The best power reading of this GPU, None where it has none."""

    @abc.abstractmethod
    def pids(self, handle: Any) -> list[int]:
        """The processes holding a context on this GPU, as the library reports them."""

    @abc.abstractmethod
    def kind(self, exc: BaseException) -> str:
        """:data:`DENIED`, :data:`UNSUPPORTED` or :data:`OTHER` for a library error."""

    @abc.abstractmethod
    def visible(self, gpus: list[GpuInfo]) -> tuple[list[int] | None, list[str]]:
        """The positions this process may use, in its runtime's order, from the visibility
        variables (None: no variable is set), and notes."""

    def refuse(
        self, gpus: list[GpuInfo], indices: list[int], implicit: bool
    ) -> tuple[list[int], list[str]]:
        """Leave out what cannot be measured (NVML: MIG), with notes; may raise BackendError."""
        return indices, []

    def process_order(self, gpus: list[GpuInfo], entry: str) -> tuple[list[int], list[str]]:
        """The positions of this process's devices in its runtime's order (``cuda:<k>`` is
        the k-th), for the ``--co2-gpus`` ``entry``; and notes."""
        visible, notes = self.visible(gpus)
        return (list(range(len(gpus))) if visible is None else visible), notes

    def mig_entry(self, entry: str) -> str:
        """The error for a ``MIG-`` entry of ``--co2-gpus``."""
        return f"--co2-gpus entry {entry!r} is an NVIDIA MIG id: {self.label}s are named by cuda:<index> or GPU- UUID"

    def narrowed_by(self) -> str:
        """The variable that lists fewer GPUs for this process's runtime (for advice)."""
        return "CUDA_VISIBLE_DEVICES"

    def naming_advice(self) -> str:
        """How to name the GPUs to measure: where a visibility variable already chose them
        (:attr:`emptied_by` set by :meth:`visible`), --co2-gpus or a shorter list in it."""
        if self.emptied_by is None:
            return f"name the GPUs with {self.visibility_hint}"
        return (
            f"{self.emptied_by} leaves all of them visible, so name those the tests use with "
            f"--co2-gpus (e.g. cuda:0) or list only those in {self.narrowed_by()}"
        )

    def counter_detail(self, counter: Any) -> str:
        """More about a counter for its note (e.g. its resolution), starting with ", "."""
        return ""

    def text(self, exc: BaseException) -> str:
        return str(exc)

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Release the library (never raises)."""
