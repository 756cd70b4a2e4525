"""``amdsmi``: energy of the AMD GPUs this process may use, through AMD SMI (``amdsmi``).

Per GPU, the energy accumulator (``amdsmi_get_energy_count``: a tick count since the driver
loaded or the GPU was reset, and ``counter_resolution``, the microjoules per tick, about
15.3 uJ) is read at every :meth:`read_j`: ticks x resolution is a hardware counter, labelled
``counter``. The dict key is ``energy_accumulator`` since ROCm 6.4 and ``power`` before
(deprecated); both are read. The driver caches the firmware value for 1 ms; how often the
firmware refreshes it depends on the ASIC, so the device states :data:`COUNTER_UPDATE_PERIOD_S`
(an assumption, 10 ms) and :meth:`read_power_w` gives instant power where the GPU has it, for
the meter's power x time on short windows. A counter that goes backwards (a wrap, a driver
reload or a GPU reset) counts again from its new value (never negative energy), and a read
that fails (or reads N/A) holds that GPU's energy until it reads again: each is a fault (the
meter marks that window partial) and, the first time, a note and a warning; the other GPUs
go on. A counter that has not
moved :data:`FROZEN_AFTER_S` after opening while the GPU draws power is reported (a warning).

Where there is no energy counter (``AMDSMI_STATUS_NOT_SUPPORTED``, e.g. a VM guest, or the
values are ``'N/A'``), a daemon thread samples ``amdsmi_get_power_info`` every
``poll_interval_s`` and integrates it with the trapezoid rule (``poller.PowerPoller``),
labelled ``polled``: ``current_socket_power`` (instant, MI300 and newer) where the GPU has it,
else ``average_socket_power`` or ``socket_power`` (an average over the firmware's window, about
a second, so shorter steps are smeared). Unsupported values (``'N/A'``, ``UINT32_MAX``) are
treated as absent.

Which GPUs (``amdgpu:<index>``, the index in the runtime's enumeration order without any
visibility variable: ``hip_id`` of ``amdsmi_get_gpu_enumeration_info`` where the library has
it, else AMD SMI's handle order; the same in every process of the node):

- ``gpus`` (``--co2-gpus``): ``all``; or ``cuda:<k>`` (the k-th GPU this process sees, after
  the variables below) and ``GPU-`` UUIDs (unique prefixes);
- else ``ROCR_VISIBLE_DEVICES`` first (the ROCm runtime filters the GPUs; indices into all
  GPUs, or ``GPU-`` UUIDs), then ``HIP_VISIBLE_DEVICES`` within those (indices into the GPUs
  ROCR left, or UUIDs); ``CUDA_VISIBLE_DEVICES`` (which HIP also honours) only where
  ``HIP_VISIBLE_DEVICES`` is unset. Like the runtimes, a list ends at its first entry that is
  not a GPU here (a note says so), and an empty value selects no GPU;
- else every GPU (more than one: a warning, as a test using one is charged the others' idle).

A GPU that AMD SMI may not read (``AMDSMI_STATUS_NO_PERM``) is skipped with a note; no GPU
left is :class:`BackendUnavailable` (none selected) or :class:`BackendError` (none readable).
``amdsmi`` is imported only when the backend opens (``pip install 'pytest-co2[amd]'``; it needs
ROCm's ``libamd_smi``).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .base import Backend, BackendError, BackendUnavailable, Device, Method, warn
from .gpu_faults import GpuFaults
from .gpu_presence import NO_AMD_DRIVER, amd_driver_present
from .nvml import FROM_ENV, GpuSelection, parse_gpu_devices
from .poller import PowerPoller

#: Assumed refresh period of the energy accumulator (the driver caches it for 1 ms; the
#: firmware's refresh depends on the ASIC).
COUNTER_UPDATE_PERIOD_S = 0.01
#: Assumed averaging window of ``average_socket_power``.
POWER_AVERAGING_S = 1.0
#: A counter that has not moved this long after opening, on a GPU drawing power, is frozen.
FROZEN_AFTER_S = 5.0

# amdsmi_status_t values (amdsmi.h), so a minimal or fake module works too.
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_YET_IMPLEMENTED = 3
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34
_UNSUPPORTED = (AMDSMI_STATUS_NOT_SUPPORTED, AMDSMI_STATUS_NOT_YET_IMPLEMENTED)
# Unsupported power fields read UINT16_MAX/UINT32_MAX in older bindings ('N/A' in newer).
_POWER_SENTINEL_W = 0xFFFF
_U64_MAX = 2**64 - 1

INSTALL_HINT = "pip install 'pytest-co2[amd]' (amdsmi needs ROCm's libamd_smi)"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _code(exc: BaseException) -> int | None:
    """The ``amdsmi_status_t`` of an ``AmdSmiLibraryException`` (None for other errors)."""
    code = getattr(exc, "err_code", None)
    if not isinstance(code, int):
        get = getattr(exc, "get_error_code", None)
        with contextlib.suppress(Exception):
            code = get() if callable(get) else None
    return abs(code) if isinstance(code, int) and not isinstance(code, bool) else None


def _errors(amd: Any) -> tuple[type[BaseException], ...]:
    base = getattr(amd, "AmdSmiException", None)
    return (base,) if isinstance(base, type) and issubclass(base, BaseException) else (Exception,)


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


class _PowerSource(NamedTuple):
    read_w: Callable[[], float | None]
    instant: bool  # False: an average over the firmware's window
    what: str  # for notes


def _power_source(amd: Any, handle: Any) -> _PowerSource | None:
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
            return _PowerSource(read, instant, what)
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
    count = len(aliases)
    if spec is None:
        return list(range(count)), []
    tokens = [t.strip() for t in spec.split(",")]
    if tokens == [""]:
        return [], []
    selected: list[int] = []
    notes: list[str] = []
    for pos, tok in enumerate(tokens):
        index: int | None = None
        if tok.lower().startswith("gpu-"):
            want = tok.lower()
            matches = [i for i, names in enumerate(aliases) if want in names]
            index = matches[0] if len(matches) == 1 else None
        elif tok.isdigit():
            index = int(tok) if int(tok) < count else None
        if index is None:
            rest = ",".join(tokens[pos:])
            notes.append(
                f"{var}={spec!r}: {tok!r} is not a GPU here, so it and what follows ({rest}) "
                "are ignored, as the ROCm runtime does"
            )
            break
        if index in selected:
            notes.append(f"{var}={spec!r}: {tok!r} is listed twice; counted once")
            continue
        selected.append(index)
    return selected, notes


class AmdsmiBackend(GpuFaults, Backend):
    """Joules per measured AMD GPU since the backend opened: counter, or polled power."""

    _id_prefix = "amdgpu"
    _label = "AMD GPU"

    name = "amdsmi"

    def __init__(
        self,
        amd: Any | None = None,
        poll_interval_s: float = 0.02,
        *,
        gpus: GpuSelection | str | None = None,
        rocr_visible_devices: str | None = FROM_ENV,
        hip_visible_devices: str | None = FROM_ENV,
        cuda_visible_devices: str | None = FROM_ENV,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        if not poll_interval_s > 0:
            raise BackendError(
                f"invalid AMD SMI poll interval {poll_interval_s!r}: expected seconds > 0"
            )
        if isinstance(gpus, str):
            try:
                gpus = parse_gpu_devices(gpus)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        if amd is None:
            amd = _import_amdsmi()
        env = os.environ.get
        self._rocr = (
            env("ROCR_VISIBLE_DEVICES")
            if rocr_visible_devices is FROM_ENV
            else rocr_visible_devices
        )
        self._hip = (
            env("HIP_VISIBLE_DEVICES") if hip_visible_devices is FROM_ENV else hip_visible_devices
        )
        self._cuda = (
            env("CUDA_VISIBLE_DEVICES")
            if cuda_visible_devices is FROM_ENV
            else cuda_visible_devices
        )
        self.selection: GpuSelection = GpuSelection("auto") if gpus is None else gpus
        self.poll_interval_s = poll_interval_s
        self._amd = amd
        self._errors = _errors(amd)
        self._clock = clock
        self._initialized = False
        self._poller: PowerPoller | None = None
        self._counter_handles: list[Any] = []
        self.faults: list[str] = []  # hardware faults, in order (the meter marks windows partial)
        self._noted: set[tuple[str, str]] = set()  # (device id, kind) already in notes
        self._init()
        self._initialized = True
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _init(self) -> None:
        amd = self._amd
        flags = getattr(amd, "AmdSmiInitFlags", None)
        flag = getattr(flags, "INIT_AMD_GPUS", getattr(flags, "AMD_GPUS", None))
        try:
            if flag is None:
                amd.amdsmi_init()
            else:
                amd.amdsmi_init(flag)
        except self._errors as exc:
            if _code(exc) == AMDSMI_STATUS_DRIVER_NOT_LOADED:
                raise BackendUnavailable(
                    f"no AMD GPU driver (amdsmi_init failed: {_text(exc)})"
                ) from None
            raise BackendError(
                f"amdsmi_init failed ({_text(exc)}): check that the amdgpu driver is loaded and "
                "that /dev/kfd and /dev/dri are accessible (the video and render groups), or use "
                "--co2-backend=estimate"
            ) from None

    # -- selection ---------------------------------------------------------------------------
    def _open(self) -> None:
        amd = self._amd
        try:
            handles = list(amd.amdsmi_get_processor_handles())
            infos = [self._identify(h) for h in handles]
        except self._errors as exc:
            raise BackendError(f"AMD SMI query failed: {_text(exc)}") from None
        order = self._physical_order(infos)
        self._handles = [handles[k] for k in order]
        self._infos = [infos[k] for k in order]
        self.uuids: list[str | None] = [i["uuid"] for i in self._infos]
        self.bdfs: list[str | None] = [i["bdf"] for i in self._infos]
        self._aliases = [i["aliases"] for i in self._infos]
        indices = self._candidates()
        if not indices:
            raise BackendUnavailable(self._why_none(len(handles)))
        if (
            self.selection.mode == "auto"
            and len(indices) > 1
            and self._hip_spec() is None
            and self._rocr is None
        ):
            message = (
                f"{len(indices)} AMD GPUs are measured ({', '.join(f'amdgpu:{i}' for i in indices)}) "
                "because no visibility variable names the GPUs of this process: a test that uses "
                "one is charged the others' idle power; set HIP_VISIBLE_DEVICES or "
                "ROCR_VISIBLE_DEVICES, or name them with --co2-gpus"
            )
            self.notes.append(message)
            warn(message)
        try:
            self._build(indices)
        except self._errors as exc:
            raise BackendError(f"AMD SMI query failed: {_text(exc)}") from None

    def _identify(self, handle: Any) -> dict[str, Any]:
        amd = self._amd
        uuid = self._optional(getattr(amd, "amdsmi_get_gpu_device_uuid", None), handle)
        bdf = self._optional(getattr(amd, "amdsmi_get_gpu_device_bdf", None), handle)
        enum = self._optional(getattr(amd, "amdsmi_get_gpu_enumeration_info", None), handle)
        hip_id = enum.get("hip_id") if isinstance(enum, dict) else None
        hip_uuid = enum.get("hip_uuid") if isinstance(enum, dict) else None
        aliases: list[str] = []
        for raw in (hip_uuid, uuid):
            if isinstance(raw, (str, bytes)) and _text(raw).strip() not in ("", "N/A"):
                u = _text(raw).strip().lower()
                aliases.extend([u] if u.startswith("gpu-") else [u, f"gpu-{u}"])
        return {
            "uuid": None if uuid is None else _text(uuid),
            "bdf": None if bdf is None else _text(bdf),
            "hip_id": hip_id if isinstance(hip_id, int) and not isinstance(hip_id, bool) else None,
            "aliases": aliases,
            "handle": handle,
        }

    def _optional(self, get: Callable[[Any], Any] | None, handle: Any) -> Any:
        if get is None:
            return None
        try:
            return get(handle)
        except self._errors:
            return None

    def _physical_order(self, infos: Sequence[dict[str, Any]]) -> list[int]:
        ids = [i["hip_id"] for i in infos]
        if infos and all(h is not None for h in ids) and len(set(ids)) == len(ids):
            return sorted(range(len(infos)), key=lambda k: ids[k])
        if len(infos) > 1:
            self.notes.append(
                "AMD GPUs numbered in AMD SMI's order (no HIP enumeration ids from this amdsmi, "
                "< 6.4): visibility indices are assumed to follow it"
            )
        return list(range(len(infos)))

    def _hip_spec(self) -> tuple[str, str] | None:
        if self._hip is not None:
            return "HIP_VISIBLE_DEVICES", self._hip
        if self._cuda is not None:
            return "CUDA_VISIBLE_DEVICES", self._cuda
        return None

    def _visible(self) -> list[int]:
        """Physical indices this process may use, in its HIP order (ROCR, then HIP)."""
        candidates = list(range(len(self._handles)))
        self._emptied_by = "the visibility variables"
        if self._rocr is not None:
            pos, notes = select_visible(self._rocr, self._aliases, "ROCR_VISIBLE_DEVICES")
            self.notes.extend(notes)
            candidates = pos
            self._emptied_by = f"ROCR_VISIBLE_DEVICES={self._rocr!r}"
        hip = self._hip_spec()
        if hip is not None and candidates:
            var, value = hip
            pos, notes = select_visible(value, [self._aliases[i] for i in candidates], var)
            self.notes.extend(notes)
            candidates = [candidates[p] for p in pos]
            self._emptied_by = (
                f"{var}={value!r}"
                if self._rocr is None
                else f"{var}={value!r} within ROCR_VISIBLE_DEVICES={self._rocr!r}"
            )
        return candidates

    def _candidates(self) -> list[int]:
        sel = self.selection
        if sel.mode == "all":
            return list(range(len(self._handles)))
        if sel.mode == "auto":
            return self._visible()
        out: list[int] = []
        visible: list[int] | None = None
        for entry in sel.entries:
            if entry.upper().startswith("MIG-"):
                raise BackendError(
                    f"--co2-gpus entry {entry!r} is an NVIDIA MIG id: AMD GPUs are named by "
                    "cuda:<index> or GPU- UUID"
                )
            if entry.startswith("cuda:"):
                visible = self._visible() if visible is None else visible
                k = int(entry[5:])
                if k >= len(visible):
                    raise BackendError(
                        f"--co2-gpus entry {entry!r}: this process sees {len(visible)} AMD GPU(s)"
                    )
                index = visible[k]
            else:
                p = entry.lower()
                matches = [
                    i
                    for i, names in enumerate(self._aliases)
                    if any(n.startswith(p) for n in names)
                ]
                if len(matches) != 1:
                    known = ", ".join(n[0] for n in self._aliases if n) or "none readable"
                    what = "matches no GPU" if not matches else "is ambiguous"
                    raise BackendError(
                        f"--co2-gpus entry {entry!r} {what} here (AMD GPUs: {known})"
                    )
                index = matches[0]
            if index not in out:
                out.append(index)
        return out

    def _why_none(self, count: int) -> str:
        if count == 0:
            return "AMD SMI reports no GPU"
        if self.selection.mode == "list":
            return "--co2-gpus selects no AMD GPU"
        return f"{self._emptied_by} selects no AMD GPU"

    # -- devices -----------------------------------------------------------------------------
    def _probe(self, i: int) -> tuple[int, float] | _PowerSource | str:
        """GPU ``i``'s energy counter (ticks, uJ per tick), else its power source, else why
        it is not measured (``"denied: ..."`` or ``"none"``)."""
        amd, h = self._amd, self._handles[i]
        get_energy = getattr(amd, "amdsmi_get_energy_count", None)
        try:
            reading = energy_reading(get_energy(h)) if get_energy is not None else None
            if reading is not None:
                return reading
            src = _power_source(amd, h)
        except self._errors as exc:
            code = _code(exc)
            if code == AMDSMI_STATUS_NO_PERM:
                return f"denied: {_text(exc)}"
            if code not in _UNSUPPORTED:
                raise
            try:  # no energy counter here: power, then
                src = _power_source(amd, h)
            except self._errors as exc2:
                if _code(exc2) == AMDSMI_STATUS_NO_PERM:
                    return f"denied: {_text(exc2)}"
                if _code(exc2) not in _UNSUPPORTED:
                    raise
                src = None
        return "none" if src is None else src

    def _build(self, indices: Sequence[int]) -> None:
        """Open the counters (or the poller) of ``indices`` and set ``devices``."""
        counters: list[tuple[int, int, float]] = []  # (index, start ticks, uJ per tick)
        polled: list[tuple[int, _PowerSource]] = []
        denied = 0
        for i in indices:
            found = self._probe(i)
            if isinstance(found, _PowerSource):
                polled.append((i, found))
            elif isinstance(found, tuple):
                counters.append((i, *found))
            elif found.startswith("denied: "):
                denied += 1
                self.notes.append(
                    f"AMD GPU {i} is not measured: reading it is denied ({found[8:]})"
                )
            else:
                self.notes.append(
                    f"AMD GPU {i} is not measured: it reports neither an energy counter nor power"
                )
        if not counters and not polled:
            raise BackendError(
                "AMD SMI may not read any of the selected GPUs (permission denied): run where "
                "/dev/kfd and /dev/dri are accessible (the video and render groups), or use "
                "--co2-backend=estimate"
                if denied
                else "AMD SMI reads neither energy nor power of the selected GPUs"
            )
        self._set_devices(counters, polled)

    def _set_devices(
        self, counters: list[tuple[int, int, float]], polled: list[tuple[int, _PowerSource]]
    ) -> None:
        amd = self._amd
        indices = [i for i, _, _ in counters] + [i for i, _ in polled]
        names = {i: self._name(self._handles[i]) for i in indices}
        self._power: dict[int, _PowerSource | None] = {}
        for i, _, _ in counters:
            try:
                self._power[i] = _power_source(amd, self._handles[i])
            except self._errors:
                self._power[i] = None
        self._power.update(polled)
        self._energy_get: Any = getattr(amd, "amdsmi_get_energy_count", None)
        self._counter_index = [i for i, _, _ in counters]
        self._counter_handles = [self._handles[i] for i in self._counter_index]
        self._counter_last = [t for _, t, _ in counters]  # the last raw tick count
        self._counter_counted = [0] * len(counters)  # ticks counted since opening
        self._counter_res_uj = [r for _, _, r in counters]
        self._counter_down: list[str | None] = [None] * len(counters)  # why unreadable
        self._counter_moved = [False] * len(counters)  # or checked for a frozen counter
        self._t_open = self._clock()
        self._polled_index = [i for i, _ in polled]
        devices = [
            Device(f"amdgpu:{i}", "gpu", names[i], Method.COUNTER, COUNTER_UPDATE_PERIOD_S, True)
            for i in self._counter_index
        ]
        for i, _, res in counters:
            self.notes.append(
                f"AMD GPU {i} ({names[i]}): energy counter, {res:g} uJ per tick, assumed to "
                f"update every {COUNTER_UPDATE_PERIOD_S * 1e3:g} ms"
            )
        for i, src in polled:
            period = (
                self.poll_interval_s
                if src.instant
                else max(POWER_AVERAGING_S, self.poll_interval_s)
            )
            devices.append(Device(f"amdgpu:{i}", "gpu", names[i], Method.POLLED, period, True))
            smear = (
                "instant readings, so steps longer than the poll interval are resolved"
                if src.instant
                else "an average, so steps shorter than about a second are smeared"
            )
            self.notes.append(
                f"AMD GPU {i} ({names[i]}) has no energy counter: its power ({src.what}) is "
                f"polled every {self.poll_interval_s * 1e3:g} ms and integrated; {smear}"
            )
        self.devices = tuple(devices)  # read_j: counters first, then polled GPUs
        order = (*self._counter_index, *self._polled_index)
        self.device_uuids: tuple[str | None, ...] = tuple(self.uuids[i] for i in order)
        self.device_bdfs: tuple[str | None, ...] = tuple(self.bdfs[i] for i in order)
        if polled:
            self._poller = PowerPoller(
                [s.read_w for _, s in polled],
                self.poll_interval_s,
                errors=self._errors,
                what="AMD GPU",
                name="pytest-co2-amdsmi-poller",
                clock=self._clock,
            )
            self._poller.start()

    def _name(self, handle: Any) -> str:
        amd = self._amd
        for get, key in (
            ("amdsmi_get_gpu_asic_info", "market_name"),
            ("amdsmi_get_gpu_board_info", "product_name"),
        ):
            info = self._optional(getattr(amd, get, None), handle)
            name = info.get(key) if isinstance(info, dict) else None
            if isinstance(name, (str, bytes)) and _text(name).strip() not in ("", "N/A"):
                return _text(name).strip()
        return "AMD GPU"

    def rank_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that reopen this backend in a DDP rank (JSON-safe)."""
        sel = self.selection
        gpus = ",".join(sel.entries) if sel.mode == "list" and sel.entries else sel.mode
        return {"poll_interval_s": self.poll_interval_s, "gpus": "none" if gpus == "list" else gpus}

    # -- reading -----------------------------------------------------------------------------
    def read_j(self) -> Sequence[float]:
        """Cumulative joules per device. A GPU whose read fails or whose counter went
        backwards is a fault of that GPU only (see ``faults``, ``failed``); the others go on."""
        if not self._initialized:
            raise BackendError("the AMD SMI backend is closed")
        get = self._energy_get
        out: list[float] = []
        last, counted, down = self._counter_last, self._counter_counted, self._counter_down
        for k, h in enumerate(self._counter_handles):
            try:
                reading = energy_reading(get(h))
            except self._errors as exc:
                self._counter_failed(k, _text(exc))
            else:
                if reading is None:
                    self._counter_failed(k, "it reads N/A")
                elif down[k] is not None:
                    self._read_resumed(k, reading[0])
                elif reading[0] > last[k]:
                    counted[k] += reading[0] - last[k]
                    last[k] = reading[0]
                    self._counter_moved[k] = True
                elif reading[0] == last[k]:
                    if not self._counter_moved[k]:
                        self._check_frozen(k)
                else:
                    self._counter_went_back(k, reading[0])
            out.append(counted[k] * self._counter_res_uj[k] / 1e6)
        if self._poller is not None:
            self._poller_faults(self._poller)
            out.extend(self._poller.read_j())
        return out

    def _j_text(self, k: int, ticks: int) -> str:
        return f"{ticks * self._counter_res_uj[k] / 1e6:.3f} J"

    def _read_resumed(self, k: int, ticks: int) -> None:
        self._counter_resumed(k)
        self._counter_last[k] = ticks

    def _counter_went_back(self, k: int, ticks: int) -> None:
        message = (
            f"AMD GPU {self._counter_index[k]}'s energy counter went backwards "
            f"({self._j_text(k, self._counter_last[k])} -> {self._j_text(k, ticks)}: a wrap, "
            "driver reload or GPU reset?): the energy between its last reading and then is "
            "not counted; it counts again from the new value"
        )
        self._counter_last[k] = ticks
        self._fault(self._counter_index[k], "reset", message)

    def _check_frozen(self, k: int) -> None:
        """Once, :data:`FROZEN_AFTER_S` after opening: a counter that never moved while the
        GPU draws power is frozen (seen on MI100 until a reboot, and in VM guests)."""
        waited_s = self._clock() - self._t_open
        if waited_s < FROZEN_AFTER_S:
            return
        self._counter_moved[k] = True  # checked: never again
        i = self._counter_index[k]
        src = self._power.get(i)
        try:
            w = src.read_w() if src is not None else None
        except self._errors:
            w = None
        if w is None or w <= 0:
            return
        message = (
            f"AMD GPU {i}'s energy counter has not moved in {waited_s:.0f} s while the GPU "
            f"draws {w:g} W: its energy reads 0 (a frozen firmware counter; a reboot fixed it "
            "on MI100); use --co2-backend=estimate or constant:<watts> until it counts"
        )
        self.notes.append(message)
        warn(message)

    def read_power_w(self) -> Sequence[float] | None:
        """Instant power (W) per device; NaN where the GPU reports only an average."""
        if not self._initialized:
            raise BackendError("the AMD SMI backend is closed")
        out: list[float] = []
        any_instant = False
        for i in (*self._counter_index, *self._polled_index):
            src = self._power.get(i)
            w: float | None = None
            if src is not None and src.instant:
                with contextlib.suppress(Exception):
                    w = src.read_w()
            out.append(math.nan if w is None else w)
            any_instant = any_instant or w is not None
        return out if any_instant else None

    def _stop_poller(self) -> None:
        poller, self._poller = getattr(self, "_poller", None), None
        if poller is not None:
            poller.close()

    def close(self) -> None:
        self._stop_poller()
        if getattr(self, "_initialized", False):
            self._initialized = False
            with contextlib.suppress(Exception):  # shutting down must not raise
                self._amd.amdsmi_shut_down()


def _import_amdsmi() -> Any:
    if (
        "amdsmi" not in sys.modules
        and sys.platform.startswith("linux")
        and not amd_driver_present()
    ):
        raise BackendUnavailable(NO_AMD_DRIVER)
    try:
        import amdsmi
    except ImportError:
        raise BackendUnavailable(f"amdsmi is not installed: {INSTALL_HINT}") from None
    except Exception as exc:  # the bindings load libamd_smi at import
        raise BackendError(
            f"amdsmi failed to load ({type(exc).__name__}: {exc}): is ROCm installed and on "
            f"the library path? {INSTALL_HINT}"
        ) from None
    return amdsmi
