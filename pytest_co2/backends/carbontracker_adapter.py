"""``carbontracker``: energy from carbontracker's own component handlers (the paper's tool).

For users who want the numbers carbontracker would measure. Only carbontracker's
component handlers are used, never ``CarbonTracker`` itself: the tracker looks up the
machine's location and carbon intensity over the network, and pytest-co2 must not.

- GPU: ``carbontracker.components.gpu.nvidia.NvidiaGPU`` (NVML power in W, all GPUs or
  the integer indices of ``CUDA_VISIBLE_DEVICES``), sampled every ``poll_interval_s``
  and integrated with the trapezoid rule.
- CPU: ``carbontracker.components.cpu.intel.IntelCPU`` (RAPL package and DRAM domains;
  each call blocks ~1 s and returns the mean power over that second), integrated as
  mean power x elapsed time.

Both are labelled ``polled``. carbontracker's ``GenericCPU`` (a constant half of the TDP
whatever the load) is not used: where no RAPL handler is usable, CPU energy comes from
pytest-co2's own :class:`~pytest_co2.backends.estimate.EstimateBackend` (CPU time x TDP
per thread), with a note and a warning; where no component at all is usable, the whole
backend is that estimate.

A component that fails mid-run (an exception from ``power_usage``, or readings that are not
one finite number >= 0 per device) stops being sampled: its devices freeze at their last
reading, with a note, a warning once and ``failed``/``faults``; ``read_j`` does not raise.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from .base import Backend, BackendError, Device, Method, warn
from .estimate import EstimateBackend

# carbontracker's IntelCPU averages RAPL over MEASURE_DELAY = 1 s per call; NVML power is
# a 1 s moving average on recent GPUs: neither resolves windows shorter than that.
CT_AVERAGING_S = 1.0

INSTANT = "instant"  # each sample is the power now: trapezoid between samples
MEAN = "mean"  # each sample is the mean power since the previous call: mean x elapsed


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


class _HandlerPoller:
    """Samples one carbontracker handler's ``power_usage()`` (W per device) and integrates it."""

    def __init__(
        self,
        kind: str,
        handler: Any,
        n_devices: int,
        mode: str,
        interval_s: float,
        first_power_w: Sequence[float] | None,
        describe_error: Callable[[BaseException], str],
    ) -> None:
        self.kind = kind
        self.handler = handler
        self.mode = mode
        self.lock = threading.Lock()
        self.error: str | None = None
        self._describe_error = describe_error
        self.t_last = time.perf_counter()
        self.power_w: list[float] | None = list(first_power_w) if first_power_w else None
        self.energy_j = [0.0] * n_devices
        self.last_read_j = [0.0] * n_devices  # what read_j last returned
        self.frozen_j: list[float] | None = None  # set when sampling failed for good
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=_poll_loop,
            args=(weakref.ref(self), self.stop, interval_s),
            name=f"pytest-co2-carbontracker-{kind}",
            daemon=True,
        )

    def poll_once(self) -> None:
        try:
            powers = [float(p) for p in self.handler.power_usage()]
        except Exception as exc:  # carbontracker raises its own exception classes
            self._fail(self._describe_error(exc))
            return
        if len(powers) != len(self.energy_j) or not all(
            math.isfinite(p) and p >= 0 for p in powers
        ):
            self._fail(
                f"carbontracker {self.kind} component returned unusable power readings "
                f"{powers!r} (expected {len(self.energy_j)} numbers >= 0 in W)"
            )
            return
        now = time.perf_counter()
        with self.lock:
            dt = now - self.t_last
            prev = self.power_w
            for i in range(len(self.energy_j)):
                if self.mode == INSTANT and prev is not None:
                    self.energy_j[i] += 0.5 * (prev[i] + powers[i]) * dt
                else:  # a mean over the interval (or the first sample: assume it held since open)
                    self.energy_j[i] += powers[i] * dt
            self.power_w = powers
            self.t_last = now

    def _fail(self, why: str) -> None:
        """Stop sampling; the readings freeze where they are (never below a value returned)."""
        with self.lock:
            self.frozen_j = [
                max(a, b) for a, b in zip(self.energy_j, self.last_read_j, strict=False)
            ]
            self.error = why
        self.stop.set()

    def read_j(self) -> list[float]:
        """Integrated energy, extended to now with the last sampled power (frozen after a fault)."""
        now = time.perf_counter()
        with self.lock:
            if self.frozen_j is not None:
                return list(self.frozen_j)
            if self.power_w is None:
                out = list(self.energy_j)
            else:
                dt = now - self.t_last
                out = [e + p * dt for e, p in zip(self.energy_j, self.power_w, strict=False)]
            self.last_read_j = out
            return out

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=CT_AVERAGING_S + 1.0)  # a CPU sample blocks ~1 s


def _poll_loop(ref: weakref.ref[_HandlerPoller], stop: threading.Event, interval_s: float) -> None:
    while True:
        poller = ref()
        if poller is None:
            return
        poller.poll_once()
        del poller
        if stop.wait(interval_s):
            return


def _rapl_permission_message(exc: BaseException) -> str:
    files = list(getattr(exc, "file_names", []) or [])
    fix = "; ".join(f"sudo chmod a+r {f}" for f in files) or (
        "sudo chmod -R a+r /sys/class/powercap/intel-rapl:*/energy_uj"
    )
    return f"carbontracker cannot read RAPL (permission denied): run `{fix}` or run as root"


def _describe(kind: str) -> Callable[[BaseException], str]:
    def describe(exc: BaseException) -> str:
        if type(exc).__name__ == "IntelRaplPermissionError":
            return _rapl_permission_message(exc)
        if type(exc).__name__ == "GPUPowerUsageRetrievalError":
            return "carbontracker cannot read the GPU power through NVML (not supported here)"
        return f"carbontracker {kind} component failed: {type(exc).__name__}: {exc}"

    return describe


def default_handlers() -> tuple[list[tuple[str, Any]], list[str]]:
    """carbontracker's NVIDIA GPU and Intel RAPL handlers, and why any is missing."""
    try:
        from carbontracker.components.cpu import intel
    except ImportError:
        raise BackendError(
            "carbontracker is not installed: pip install 'pytest-co2[carbontracker]'"
        ) from None
    handlers: list[tuple[str, Any]] = []
    missing: list[str] = []
    try:
        from carbontracker.components.gpu import nvidia  # imports pynvml
    except ImportError as exc:
        missing.append(f"GPU: carbontracker's NVIDIA handler cannot be imported ({exc})")
    else:
        handlers.append(("gpu", nvidia.NvidiaGPU(pids=[os.getpid()], devices_by_pid=False)))
    handlers.append(("cpu", intel.IntelCPU(pids=[os.getpid()], devices_by_pid=False)))
    return handlers, missing


class CarbontrackerBackend(Backend):
    """Polled power of carbontracker's GPU (NVML) and CPU (RAPL) handlers, integrated to joules.

    ``handlers`` (for tests) replaces carbontracker's: ``(kind, handler)`` pairs, kind
    ``"gpu"`` (instantaneous power) or ``"cpu"`` (mean power since the previous call), each
    handler with carbontracker's ``available/init/devices/power_usage/shutdown`` methods.
    """

    name = "carbontracker"

    def __init__(
        self,
        poll_interval_s: float = 0.1,
        cpu_tdp_w: float | None = None,
        handlers: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if not poll_interval_s > 0:
            raise BackendError(f"invalid poll interval {poll_interval_s!r}: expected seconds > 0")
        self._pollers: list[_HandlerPoller] = []
        self._estimate: EstimateBackend | None = None
        self._closed = False
        self._reported: set[_HandlerPoller] = set()
        self.failed: dict[str, str] = {}  # device id -> why its readings are frozen
        self.faults: list[str] = []  # every fault, in order
        if handlers is None:
            handlers, missing = default_handlers()
        else:
            missing = []
        devices: list[Device] = []
        try:
            for kind, handler in handlers:
                opened = self._open_handler(kind, handler, poll_interval_s, missing)
                if opened is not None:
                    poller, names = opened
                    self._pollers.append(poller)
                    devices.extend(self._devices(kind, names, poll_interval_s))
            if not any(p.kind == "cpu" for p in self._pollers):
                self._estimate = EstimateBackend(cpu_tdp_w=cpu_tdp_w)
                devices.extend(self._estimate.devices)
                why = "; ".join(missing) or "no CPU component"
                if self._pollers:
                    message = (
                        f"carbontracker has no usable CPU component ({why}): "
                        "CPU energy falls back to the CPU-time estimate"
                    )
                else:
                    message = (
                        f"carbontracker found no usable component ({why}): "
                        "fell back to the CPU-time estimate"
                    )
                    self.name = "carbontracker (fallback: estimate)"
                self.notes.append(message)
                self.notes.extend(self._estimate.notes)
                warn(message)
        except BaseException:
            self.close()
            raise
        self.devices = tuple(devices)
        for poller in self._pollers:
            poller.thread.start()

    @staticmethod
    def _open_handler(
        kind: str, handler: Any, interval_s: float, missing: list[str]
    ) -> tuple[_HandlerPoller, list[str]] | None:
        """Initialize ``handler`` and take a first reading; None (and why, in ``missing``)."""
        label = kind.upper()
        describe = _describe(kind)
        try:
            if not handler.available():
                missing.append(
                    f"{label}: no NVIDIA GPU through NVML"
                    if kind == "gpu"
                    else f"{label}: no RAPL domains under /sys/class/powercap"
                )
                return None
            handler.init()
        except Exception as exc:
            missing.append(f"{label}: {describe(exc)}")
            return None
        try:
            names = [_text(n) for n in handler.devices()]
            if not names:
                raise LookupError(f"carbontracker's {kind} handler reports no device")
            first: Sequence[float] | None = None
            if kind == "gpu":
                first = [float(p) for p in handler.power_usage()]  # instantaneous, cheap
            else:
                # IntelCPU.power_usage blocks 1 s: check readability with its raw read instead
                probe = getattr(handler, "_get_measurements", None)
                if probe is not None:
                    probe()
        except Exception as exc:
            missing.append(f"{label}: {describe(exc)}")
            with contextlib.suppress(Exception):
                handler.shutdown()
            return None
        mode = INSTANT if kind == "gpu" else MEAN
        return _HandlerPoller(kind, handler, len(names), mode, interval_s, first, describe), names

    @staticmethod
    def _devices(kind: str, names: Sequence[str], interval_s: float) -> list[Device]:
        period = max(CT_AVERAGING_S, interval_s)
        if kind == "gpu":
            return [
                Device(f"gpu:{i}", "gpu", f"{n} (carbontracker)", Method.POLLED, period, True)
                for i, n in enumerate(names)
            ]
        return [
            Device(
                n,
                "dram" if n.startswith("dram") else "cpu",
                f"RAPL {n} (carbontracker)",
                Method.POLLED,
                period,
                True,
            )
            for n in names
        ]

    def read_j(self) -> Sequence[float]:
        """Joules per device. A component that fails mid-run does not raise: its devices
        freeze at their last reading, with a note and a warning once (see :attr:`failed`)."""
        if self._closed:
            raise BackendError("the carbontracker backend is closed")
        out: list[float] = []
        offset = 0
        for poller in self._pollers:
            values = poller.read_j()
            if poller.error is not None and poller not in self._reported:
                self._reported.add(poller)
                ids = ", ".join(d.id for d in self.devices[offset : offset + len(values)])
                message = (
                    f"{poller.error}: its devices ({ids}) are frozen at their last reading "
                    "and not counted after that"
                )
                self.notes.append(message)
                self.faults.append(message)
                for d in self.devices[offset : offset + len(values)]:
                    self.failed[d.id] = poller.error
                warn(f"pytest-co2: {message}")
            offset += len(values)
            out.extend(values)
        if self._estimate is not None:
            out.extend(self._estimate.read_j())
        return out

    def close(self) -> None:
        self._closed = True
        pollers, self._pollers = getattr(self, "_pollers", []), []
        for poller in pollers:
            poller.close()
            with contextlib.suppress(Exception):
                poller.handler.shutdown()
        estimate, self._estimate = getattr(self, "_estimate", None), None
        if estimate is not None:
            estimate.close()
