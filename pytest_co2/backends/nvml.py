"""``nvml``: energy of the NVIDIA GPUs this process may use, through NVML (``pynvml``).

Per GPU, the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules
since the driver loaded, Volta and newer) is read at every :meth:`read_j`: a hardware
counter, labelled ``counter``. It updates roughly every 20-100 ms, so shorter windows
read 0 or a jump; the device says so through ``update_period_s``.

Where the counter is not supported (pre-Volta GPUs), a daemon thread samples
``nvmlDeviceGetPowerUsage`` (milliwatts) every ``poll_interval_s`` and integrates it with
the trapezoid rule, labelled ``polled``. On recent GPUs that reading is a 1 s moving
average, so it smears short work; windows shorter than about a second are not trusted.

Only the GPUs in ``CUDA_VISIBLE_DEVICES`` are counted: indices, ``GPU-`` UUIDs or unique
UUID prefixes, as CUDA reads it (the list ends at the first invalid entry). Devices are
identified by their NVML (PCI bus order) index, so two processes that see the same GPU
under different CUDA indices still name it the same (``gpu:<nvml index>``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from .base import Backend, BackendError, BackendUnavailable, Device, Method

# The counter is refreshed by the driver about every 20-100 ms (GPU dependent).
COUNTER_UPDATE_PERIOD_S = 0.1
# nvmlDeviceGetPowerUsage is a 1 s moving average on Ampere and newer: the shortest
# window a polled figure can resolve.
POWER_AVERAGING_S = 1.0


class _FromEnv:
    """Default of ``visible_devices``: read ``CUDA_VISIBLE_DEVICES`` when the backend opens."""

    def __repr__(self) -> str:
        return "<env CUDA_VISIBLE_DEVICES>"


FROM_ENV: Any = _FromEnv()


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def select_visible(
    spec: str | None, count: int, uuids: Sequence[str] | None = None
) -> tuple[list[int], list[str]]:
    """NVML indices selected by a ``CUDA_VISIBLE_DEVICES`` value, and notes.

    ``None`` (unset): all ``count`` GPUs. ``""``: none. Otherwise comma-separated indices
    or ``GPU-`` UUIDs (a unique prefix is enough); like CUDA, the list ends at the first
    entry that is invalid. ``MIG-`` entries raise :class:`BackendError`. ``uuids`` (the
    UUID of each NVML index) is needed only when the value names UUIDs.
    """
    if spec is None:
        return list(range(count)), []
    selected: list[int] = []
    notes: list[str] = []
    tokens = [t.strip() for t in spec.split(",")]
    if tokens == [""]:
        return [], []
    for pos, tok in enumerate(tokens):
        index: int | None = None
        if tok.upper().startswith("MIG-"):
            raise BackendError(
                f"CUDA_VISIBLE_DEVICES={spec!r} names a MIG instance ({tok}): NVML reports "
                "energy for the whole GPU, not for a MIG slice, so pytest-co2 cannot measure "
                "it; use --co2-backend=estimate (or constant:<watts>) on MIG instances"
            )
        if tok.upper().startswith("GPU-"):
            if uuids is None:
                raise ValueError("uuids are needed to resolve a GPU- entry")
            matches = [i for i, u in enumerate(uuids) if u.lower().startswith(tok.lower())]
            index = matches[0] if len(matches) == 1 else None
        else:
            try:
                value = int(tok)
            except ValueError:
                value = -1
            index = value if 0 <= value < count else None
        if index is None:
            rest = ",".join(tokens[pos:])
            notes.append(
                f"CUDA_VISIBLE_DEVICES={spec!r}: {tok!r} is not a GPU here, so it and what "
                f"follows ({rest}) are ignored, as CUDA does"
            )
            break
        if index in selected:
            notes.append(f"CUDA_VISIBLE_DEVICES={spec!r}: {tok!r} is listed twice; counted once")
            continue
        selected.append(index)
    return selected, notes


class _GpuPoller:
    """Trapezoid integration of sampled power (W) for the GPUs without an energy counter."""

    def __init__(self, nvml: Any, handles: Sequence[Any], interval_s: float) -> None:
        self.nvml = nvml
        self.handles = list(handles)
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self.error: str | None = None
        now = time.perf_counter()
        self.t_last = now
        self.power_w = [self._sample(h) for h in self.handles]
        self.energy_j = [0.0] * len(self.handles)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=_poll_loop,
            args=(weakref.ref(self), self.stop, interval_s),
            name="pytest-co2-nvml-poller",
            daemon=True,
        )

    def _sample(self, handle: Any) -> float:
        return float(self.nvml.nvmlDeviceGetPowerUsage(handle)) * 1e-3

    def poll_once(self) -> None:
        try:
            powers = [self._sample(h) for h in self.handles]
        except self.nvml.NVMLError as exc:
            self.error = f"nvmlDeviceGetPowerUsage failed: {exc}"
            return
        now = time.perf_counter()
        with self.lock:
            dt = now - self.t_last
            for i, p in enumerate(powers):
                self.energy_j[i] += 0.5 * (self.power_w[i] + p) * dt
            self.power_w = powers
            self.t_last = now

    def read_j(self) -> list[float]:
        """Integrated energy, extended to now with the last sampled power."""
        now = time.perf_counter()
        with self.lock:
            dt = now - self.t_last
            return [e + p * dt for e, p in zip(self.energy_j, self.power_w, strict=False)]


def _poll_loop(ref: weakref.ref[_GpuPoller], stop: threading.Event, interval_s: float) -> None:
    while not stop.wait(interval_s):
        poller = ref()
        if poller is None:
            return
        poller.poll_once()
        del poller


def _driver_present() -> bool:
    """Cheap check before importing pynvml (which costs ~15 ms): on Linux the driver shows in
    /proc and /dev; elsewhere we cannot tell and let nvmlInit decide."""
    if not sys.platform.startswith("linux"):
        return True
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


class NvmlBackend(Backend):
    """Joules per visible NVIDIA GPU since the backend opened: counter, or polled power."""

    name = "nvml"

    def __init__(
        self,
        nvml: Any | None = None,
        visible_devices: str | None = FROM_ENV,
        poll_interval_s: float = 0.02,
    ) -> None:
        super().__init__()
        if nvml is None:
            if "pynvml" not in sys.modules and not _driver_present():
                raise BackendUnavailable(
                    "no NVIDIA driver (no /proc/driver/nvidia, no /dev/nvidiactl)"
                )
            try:
                import pynvml  # the nvidia-ml-py distribution
            except ImportError:
                raise BackendUnavailable(
                    "pynvml is not installed: pip install 'pytest-co2[nvidia]'"
                ) from None
            nvml = pynvml
        if not poll_interval_s > 0:
            raise BackendError(
                f"invalid NVML poll interval {poll_interval_s!r}: expected seconds > 0"
            )
        if visible_devices is FROM_ENV:
            visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        self._nvml = nvml
        self._initialized = False
        self._poller: _GpuPoller | None = None
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise BackendUnavailable(f"no usable NVIDIA driver (nvmlInit failed: {exc})") from None
        self._initialized = True
        try:
            self._open(nvml, visible_devices, poll_interval_s)
        except BaseException:
            self.close()
            raise

    def _open(self, nvml: Any, visible: str | None, poll_interval_s: float) -> None:
        try:
            count = int(nvml.nvmlDeviceGetCount())
            handles_all = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = None
            if visible and "gpu-" in visible.lower():
                uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles_all]
            indices, notes = select_visible(visible, count, uuids)
            self.notes.extend(notes)
            if not indices:
                why = (
                    f"CUDA_VISIBLE_DEVICES={visible!r} selects no GPU"
                    if visible is not None
                    else "NVML reports no GPU"
                )
                raise BackendUnavailable(why)
            if (
                count > 1
                and visible
                and "gpu-" not in visible.lower()
                and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID"
            ):
                self.notes.append(
                    "CUDA_VISIBLE_DEVICES indices are read in NVML (PCI bus) order; set "
                    "CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers the GPUs the same way"
                )
            counters: list[tuple[int, Any, int]] = []  # (index, handle, initial mJ)
            polled: list[tuple[int, Any]] = []
            not_supported = tuple(
                getattr(nvml, name)
                for name in ("NVMLError_NotSupported", "NVMLError_FunctionNotFound")
                if hasattr(nvml, name)
            )
            for i in indices:
                h = handles_all[i]
                try:
                    counters.append((i, h, int(nvml.nvmlDeviceGetTotalEnergyConsumption(h))))
                except not_supported:
                    polled.append((i, h))
            names = {i: _text(nvml.nvmlDeviceGetName(handles_all[i])) for i in indices}
            if polled:
                self._poller = _GpuPoller(nvml, [h for _, h in polled], poll_interval_s)
        except nvml.NVMLError as exc:
            raise BackendError(f"NVML query failed: {exc}") from None
        self._counter_handles = [h for _, h, _ in counters]
        self._counter_start_mj = [mj for _, _, mj in counters]
        devices = [
            Device(f"gpu:{i}", "gpu", names[i], Method.COUNTER, COUNTER_UPDATE_PERIOD_S, True)
            for i, _, _ in counters
        ] + [
            Device(
                f"gpu:{i}",
                "gpu",
                names[i],
                Method.POLLED,
                max(POWER_AVERAGING_S, poll_interval_s),
                True,
            )
            for i, _ in polled
        ]
        # read_j returns counters first, then polled GPUs; keep devices in that order
        self.devices = tuple(devices)
        for i, _ in polled:
            self.notes.append(
                f"GPU {i} ({names[i]}) has no total-energy counter (pre-Volta?): its power is "
                f"polled every {poll_interval_s * 1e3:g} ms and integrated; on recent GPUs the "
                "power reading is a 1 s moving average, so short steps are smeared"
            )
        if self._poller is not None:
            self._poller.thread.start()

    def read_j(self) -> Sequence[float]:
        if not self._initialized:
            raise BackendError("the NVML backend is closed")
        nvml = self._nvml
        try:
            out = [
                (nvml.nvmlDeviceGetTotalEnergyConsumption(h) - start) / 1000.0
                for h, start in zip(self._counter_handles, self._counter_start_mj, strict=False)
            ]
        except nvml.NVMLError as exc:
            raise BackendError(f"reading the NVML energy counter failed: {exc}") from None
        if self._poller is not None:
            if self._poller.error is not None:
                raise BackendError(self._poller.error)
            out.extend(self._poller.read_j())
        return out

    def close(self) -> None:
        poller, self._poller = getattr(self, "_poller", None), None
        if poller is not None:
            poller.stop.set()
            if poller.thread.is_alive() and poller.thread is not threading.current_thread():
                poller.thread.join(timeout=5.0)
        if getattr(self, "_initialized", False):
            self._initialized = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # shutting down must not raise
                pass
