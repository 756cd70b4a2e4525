"""``nvml``: energy of the NVIDIA GPUs the tests use, through NVML (``pynvml``).

Per GPU, the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules
since the driver loaded, Volta and newer) is read at every :meth:`read_j`: a hardware
counter, labelled ``counter``. It updates roughly every 20-100 ms, so shorter windows
read 0 or a jump; the device says so through ``update_period_s``, and
:meth:`read_power_w` gives instant power for the meter's power x time on short windows.
Faults are per GPU and never raise from :meth:`read_j`: a counter that goes backwards
(driver reload, GPU reset) counts again from its new value (the energy between the last
reading and the reset is lost, never negative); a failed read holds that GPU's energy until
it reads again (the time in between is not counted). Each is a fault (``faults``: the
meter marks the window partial) and, the first time, a note and a warning; the other GPUs
go on. A GPU that NVML cannot open, name or read at opening is left out with a note.

Where the counter is not supported (pre-Volta GPUs), a daemon thread samples power every
``poll_interval_s`` and integrates it with the trapezoid rule, labelled ``polled``: the
instant power field (``NVML_FI_DEV_POWER_INSTANT``) where the GPU has it, else
``nvmlDeviceGetPowerUsage``, which is instant up to Turing and on GA100 but a 1 s moving
average on later GPUs (then windows under about a second are not trusted).

Which GPUs (all matched by UUID, so NVML's PCI order and CUDA's order cannot be confused):

- ``gpus`` (the ``--co2-gpus`` option, :func:`parse_gpu_devices`): exactly those;
- else ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUIDs or unique prefixes); with torch's
  CUDA initialized its device UUIDs give the exact CUDA order;
- else ``NVIDIA_VISIBLE_DEVICES`` (the container runtime's: UUIDs, ``MIG-`` ids, ``none``);
- else every GPU; and when that (or the visible list) is more than one GPU, only those
  holding a CUDA context of this process (NVML's running processes, torch's primary
  contexts; nothing creates a context). Without any, all are measured with a warning, and
  :meth:`refresh_devices` narrows the set once the tests have created a context.

A GPU that NVML may not open (``NO_PERMISSION``, e.g. a cgroup-restricted container) or
cannot open (a lost GPU) is skipped with a note. MIG slices (``MIG-`` ids, or a GPU in MIG mode) are not measured:
NVML's energy is the whole GPU's, other tenants included (:class:`BackendError` with the fix).
Device ids are ``gpu:<nvml index>``, the same in every process of the node.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import cuda as _cuda
from .base import Backend, BackendError, BackendUnavailable, Device, Method, warn
from .gpu_faults import GpuFaults
from .gpu_presence import NO_NVIDIA_DRIVER, gpu_host_kind, nvidia_driver_present
from .poller import PowerPoller

# The counter is refreshed by the driver about every 20-100 ms (GPU dependent).
COUNTER_UPDATE_PERIOD_S = 0.1
# nvmlDeviceGetPowerUsage is a 1 s moving average on Ampere and newer (except GA100).
POWER_AVERAGING_S = 1.0

# NVML constants (values from nvml.h), so a minimal or fake module works too.
NVML_FI_DEV_POWER_INSTANT = 186
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_DEVICE_MIG_ENABLE = 1
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

MIG_ADVICE = (
    "NVML reports energy for the whole GPU, not for a MIG slice (other tenants included), "
    "so pytest-co2 cannot measure it; use --co2-backend=estimate (or constant:<watts>) on "
    "MIG instances"
)


class _FromEnv:
    """Default of ``visible_devices``: read the environment when the backend opens."""

    def __repr__(self) -> str:
        return "<from the environment>"


FROM_ENV: Any = _FromEnv()


class GpuSelection(NamedTuple):
    """A parsed ``--co2-gpus`` value: ``auto``, ``all``, or an explicit list of entries."""

    mode: str  # "auto" | "all" | "list"
    entries: tuple[str, ...] = ()  # "cuda:<i>", "GPU-<uuid prefix>", "MIG-<id>"


GPU_DEVICES_HELP = (
    "auto, all, none, or a comma-separated list of CUDA indices (0, cuda:1), GPU- UUIDs "
    "or unique prefixes, MIG- ids"
)


def parse_gpu_devices(text: str) -> GpuSelection:
    """Parse a ``--co2-gpus`` value (see :data:`GPU_DEVICES_HELP`); ValueError on bad input."""
    raw = str(text).strip()
    low = raw.lower()
    if low == "auto":
        return GpuSelection("auto")
    if low == "all":
        return GpuSelection("all")
    if low == "none":
        return GpuSelection("list")
    entries: list[str] = []
    for tok in (t.strip() for t in raw.split(",")):
        t = tok.lower()
        if t.isdigit():
            entry = f"cuda:{int(t)}"
        elif t.startswith("cuda:") and t[5:].isdigit():
            entry = f"cuda:{int(t[5:])}"
        elif t.startswith(("gpu-", "mig-")) and len(t) > 4 and _uuid_chars(t[4:]):
            entry = tok[:3].upper() + tok[3:]
        else:
            raise ValueError(
                f"invalid --co2-gpus value {text!r} (entry {tok!r}): expected {GPU_DEVICES_HELP}"
            )
        if entry not in entries:
            entries.append(entry)
    return GpuSelection("list", tuple(entries))


def _uuid_chars(text: str) -> bool:
    return all(c in "0123456789abcdef-/" for c in text.lower())


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def select_visible(
    spec: str | None, count: int, uuids: Sequence[str | None] | None = None
) -> tuple[list[int], list[str]]:
    """NVML indices selected by a ``CUDA_VISIBLE_DEVICES`` value, and notes.

    ``None`` (unset): all ``count`` GPUs. ``""``: none. Otherwise comma-separated indices
    (read in NVML's PCI order) or ``GPU-`` UUIDs (a unique prefix is enough); like CUDA,
    the list ends at the first entry that is invalid. ``MIG-`` entries raise
    :class:`BackendError`. ``uuids`` (per NVML index) is needed only for UUID entries.
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
                f"CUDA_VISIBLE_DEVICES={spec!r} names a MIG instance ({tok}): {MIG_ADVICE}"
            )
        if tok.upper().startswith("GPU-"):
            if uuids is None:
                raise ValueError("uuids are needed to resolve a GPU- entry")
            matches = [i for i, u in enumerate(uuids) if u and u.lower().startswith(tok.lower())]
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


class _PowerSource(NamedTuple):
    read_w: Callable[[], float]
    instant: bool  # False: a 1 s moving average
    what: str  # for notes


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


def _power_source(nvml: Any, handle: Any, name: str) -> _PowerSource:
    field = _field_reader(nvml, handle)
    if field is not None:
        return _PowerSource(field, True, "the instant power field (NVML_FI_DEV_POWER_INSTANT)")

    def usage() -> float:
        return float(nvml.nvmlDeviceGetPowerUsage(handle)) * 1e-3

    if _usage_is_instant(nvml, handle, name):
        return _PowerSource(usage, True, "nvmlDeviceGetPowerUsage (instant on this GPU)")
    return _PowerSource(usage, False, "nvmlDeviceGetPowerUsage (a 1 s moving average)")


class NvmlBackend(GpuFaults, Backend):
    """Joules per measured NVIDIA GPU since the backend opened: counter, or polled power."""

    name = "nvml"

    def __init__(
        self,
        nvml: Any | None = None,
        visible_devices: str | None = FROM_ENV,
        poll_interval_s: float = 0.02,
        *,
        gpus: GpuSelection | str | None = None,
        nvidia_visible_devices: str | None = FROM_ENV,
        pid: int | None = None,
    ) -> None:
        super().__init__()
        if nvml is None:
            if "pynvml" not in sys.modules and not nvidia_driver_present():
                raise BackendUnavailable(NO_NVIDIA_DRIVER)
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
        if nvidia_visible_devices is FROM_ENV:
            nvidia_visible_devices = os.environ.get("NVIDIA_VISIBLE_DEVICES")
        if isinstance(gpus, str):
            try:
                gpus = parse_gpu_devices(gpus)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        self.selection: GpuSelection = GpuSelection("auto") if gpus is None else gpus
        self.poll_interval_s = poll_interval_s
        self._nvml = nvml
        self._pid = os.getpid() if pid is None else pid
        self._initialized = False
        self._poller: PowerPoller | None = None
        self._counter_handles: list[Any] = []
        self._refreshable = False
        self.faults: list[str] = []  # every fault, in order (the meter marks windows partial)
        self._noted: set[tuple[str, str]] = set()  # (device id, kind) already in notes
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            if gpu_host_kind() == "wsl2":  # a GPU is there: say how to fix it (a warning)
                raise BackendError(
                    f"a WSL2 GPU (/dev/dxg) is present but nvmlInit failed ({exc}): NVML is "
                    "/usr/lib/wsl/lib/libnvidia-ml.so.1; put /usr/lib/wsl/lib on the library "
                    "path (ldconfig or LD_LIBRARY_PATH)"
                ) from None
            raise BackendUnavailable(f"no usable NVIDIA driver (nvmlInit failed: {exc})") from None
        self._initialized = True
        try:
            self._open(visible_devices, nvidia_visible_devices)
        except BaseException:
            self.close()
            raise

    # -- selection ---------------------------------------------------------------------------
    def _open(self, visible: str | None, nvidia_visible: str | None) -> None:
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
            self._handles: list[Any] = []
            self._denied: dict[int, str] = {}  # NO_PERMISSION at open
            self._unopened: dict[int, str] = {}  # any other error at open (a lost GPU, ...)
            for i in range(count):
                try:
                    self._handles.append(nvml.nvmlDeviceGetHandleByIndex(i))
                except nvml.NVMLError as exc:
                    self._handles.append(None)
                    if _code(exc) == NVML_ERROR_NO_PERMISSION:
                        self._denied[i] = str(exc)
                    else:
                        self._unopened[i] = str(exc)
            self.uuids: list[str | None] = [
                self._uuid(h) if h is not None else None for h in self._handles
            ]
            indices, implicit = self._candidates(count, visible, nvidia_visible)
            indices = self._drop_denied(indices)
            indices = self._drop_mig(indices, implicit)
            if not indices:
                raise BackendUnavailable(self._why_none(visible, nvidia_visible, count))
            self._candidates_all = list(indices)
            if implicit and len(indices) > 1:
                self._refreshable = True
                in_use = self._in_use(indices)
                if in_use:
                    indices = in_use
                    self.notes.append(
                        "measuring the GPUs holding a CUDA context of this process: "
                        + ", ".join(f"gpu:{i}" for i in in_use)
                    )
                else:
                    message = (
                        f"{len(indices)} GPUs are measured ({', '.join(f'gpu:{i}' for i in indices)}) "
                        "because none holds a CUDA context of this process yet: a test that uses "
                        "one is charged the others' idle power; name the GPUs with --co2-gpus "
                        "or CUDA_VISIBLE_DEVICES"
                    )
                    self.notes.append(message)
                    warn(message)
            self._build(indices)
        except nvml.NVMLError as exc:
            raise BackendError(f"NVML query failed: {exc}") from None

    def _uuid(self, handle: Any) -> str | None:
        try:
            return _text(self._nvml.nvmlDeviceGetUUID(handle))
        except self._nvml.NVMLError:
            return None

    def _by_uuid(self, uuid: str) -> int | None:
        """The NVML index whose UUID equals ``uuid`` (torch's bare form or NVML's)."""
        for i, u in enumerate(self.uuids):
            if u is not None and _cuda.same_uuid(u, uuid):
                return i
        return None

    def _by_prefix(self, prefix: str) -> list[int]:
        p = prefix.lower()
        return [i for i, u in enumerate(self.uuids) if u is not None and u.lower().startswith(p)]

    def _candidates(
        self, count: int, visible: str | None, nvidia_visible: str | None
    ) -> tuple[list[int], bool]:
        """NVML indices to measure before in-use narrowing, and whether they were implicit."""
        sel = self.selection
        if sel.mode == "all":
            return list(range(count)), False
        if sel.mode == "list":
            return self._explicit(sel.entries, visible), False
        if visible is not None:
            return self._cuda_visible(visible, count), True
        if nvidia_visible is not None:
            return self._nvidia_visible(nvidia_visible, count), True
        return list(range(count)), True

    def _cuda_order(self) -> list[int] | None:
        """NVML index of each CUDA device of this process, from torch's UUIDs (None: unknown)."""
        uuids = _cuda.visible_device_uuids()
        if uuids is None:
            return None
        order = [self._by_uuid(u) for u in uuids]
        return None if any(i is None for i in order) else [i for i in order if i is not None]

    def _cuda_visible(self, visible: str, count: int) -> list[int]:
        order = self._cuda_order()
        if order is not None:
            self.notes.append(
                f"CUDA_VISIBLE_DEVICES={visible!r}: GPUs matched to CUDA's by UUID (torch)"
            )
            return order
        if "mig-" in visible.lower():
            select_visible(visible, count, self.uuids)  # raises with the MIG advice
        indices, notes = select_visible(visible, count, self.uuids)
        self.notes.extend(notes)
        if (
            count > 1
            and visible.strip()
            and "gpu-" not in visible.lower()
            and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID"
        ):
            self.notes.append(
                "CUDA_VISIBLE_DEVICES indices are read in NVML (PCI bus) order; set "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers the GPUs the same way"
            )
        return indices

    def _nvidia_visible(self, value: str, count: int) -> list[int]:
        """``NVIDIA_VISIBLE_DEVICES`` (container runtime): ``all``, ``none``/``void``,
        UUIDs, ``MIG-`` ids, or host indices (used only where NVML shows more GPUs)."""
        tokens = [t.strip() for t in value.split(",") if t.strip()]
        low = [t.lower() for t in tokens]
        if not tokens or low == ["all"]:
            return list(range(count))
        if low[0] in ("none", "void"):
            return []
        mig = [t for t in tokens if t.lower().startswith("mig-")]
        if mig:
            raise BackendError(
                f"NVIDIA_VISIBLE_DEVICES={value!r} names a MIG instance ({mig[0]}): {MIG_ADVICE}"
            )
        out: list[int] = []
        for t in tokens:
            if t.lower().startswith("gpu-"):
                matches = self._by_prefix(t)
                if len(matches) == 1 and matches[0] not in out:
                    out.append(matches[0])
        if out or any(t.lower().startswith("gpu-") for t in tokens):
            return out
        if count <= len(tokens):  # the runtime already mounted only these GPUs
            return list(range(count))
        return [int(t) for t in tokens if t.isdigit() and int(t) < count]

    def _explicit(self, entries: Sequence[str], visible: str | None) -> list[int]:
        out: list[int] = []
        order = self._cuda_order()
        for entry in entries:
            if entry.upper().startswith("MIG-"):
                raise BackendError(f"--co2-gpus names a MIG instance ({entry}): {MIG_ADVICE}")
            if entry.startswith("cuda:"):
                k = int(entry[5:])
                if order is None:
                    order = (
                        self._cuda_visible(visible, len(self._handles))
                        if visible is not None
                        else None
                    )
                    if order is None:
                        order = list(range(len(self._handles)))
                        if len(order) > 1 and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
                            self.notes.append(
                                f"--co2-gpus {entry}: CUDA indices read in NVML (PCI bus) order "
                                "(torch's CUDA is not initialized); set CUDA_DEVICE_ORDER="
                                "PCI_BUS_ID so CUDA numbers the GPUs the same way"
                            )
                if k >= len(order):
                    raise BackendError(
                        f"--co2-gpus entry {entry!r}: this process sees {len(order)} CUDA device(s)"
                    )
                index = order[k]
            else:
                matches = self._by_prefix(entry)
                if len(matches) != 1:
                    known = ", ".join(u for u in self.uuids if u) or "none readable"
                    what = "matches no GPU" if not matches else "is ambiguous"
                    raise BackendError(f"--co2-gpus entry {entry!r} {what} here (GPUs: {known})")
                index = matches[0]
            if index not in out:
                out.append(index)
        return out

    def _drop_denied(self, indices: list[int]) -> list[int]:
        """Leave out the GPUs NVML could not open, each with a note (the others go on)."""
        kept = []
        for i in indices:
            if i in self._denied:
                self.notes.append(
                    f"GPU {i} is not measured: NVML may not open it ({self._denied[i]}; a "
                    "cgroup-restricted container?)"
                )
            elif i in self._unopened:
                self.notes.append(
                    f"GPU {i} is not measured: NVML could not open it ({self._unopened[i]}; "
                    "a lost or failing GPU?)"
                )
            else:
                kept.append(i)
        if indices and not kept:
            if any(i in self._denied for i in indices):
                raise BackendError(
                    "NVML may not open any of the selected GPUs (Insufficient Permissions): "
                    "run where the GPU device files are accessible, or use "
                    "--co2-backend=estimate"
                )
            raise BackendError(
                "NVML could open none of the selected GPUs ("
                + "; ".join(f"GPU {i}: {self._unopened[i]}" for i in indices)
                + "): check nvidia-smi, or use --co2-backend=estimate"
            )
        return kept

    def _mig_enabled(self, i: int) -> bool:
        get = getattr(self._nvml, "nvmlDeviceGetMigMode", None)
        if get is None:
            return False
        try:
            current = get(self._handles[i])[0]
        except self._nvml.NVMLError:
            return False
        return int(current) == NVML_DEVICE_MIG_ENABLE

    def _drop_mig(self, indices: list[int], implicit: bool) -> list[int]:
        mig = [i for i in indices if self._mig_enabled(i)]
        if not mig:
            return indices
        if implicit and len(mig) < len(indices):
            self.notes.append(
                f"GPU(s) {', '.join(map(str, mig))} in MIG mode not measured: {MIG_ADVICE}"
            )
            return [i for i in indices if i not in mig]
        raise BackendError(f"GPU {mig[0]} is in MIG mode: {MIG_ADVICE}")

    def _why_none(self, visible: str | None, nvidia_visible: str | None, count: int) -> str:
        if self.selection.mode == "list":
            return "--co2-gpus selects no GPU"
        if visible is not None:
            return f"CUDA_VISIBLE_DEVICES={visible!r} selects no GPU"
        if nvidia_visible is not None and count:
            return f"NVIDIA_VISIBLE_DEVICES={nvidia_visible!r} selects no GPU"
        return "NVML reports no GPU"

    def _in_use(self, indices: Sequence[int]) -> list[int]:
        """Those of ``indices`` holding a CUDA context of this process (no context created)."""
        used: set[int] = set()
        query = getattr(self._nvml, "nvmlDeviceGetComputeRunningProcesses", None)
        if query is not None:
            for i in indices:
                try:
                    procs = query(self._handles[i])
                except self._nvml.NVMLError:
                    continue
                if any(int(getattr(p, "pid", -1)) == self._pid for p in procs or ()):
                    used.add(i)
        for k in _cuda.context_device_indices():
            uuid = _cuda.device_uuid(k)
            index = self._by_uuid(uuid) if uuid else None
            if index is not None:
                used.add(index)
        return [i for i in indices if i in used]

    # -- devices -----------------------------------------------------------------------------
    def _build(self, indices: Sequence[int]) -> None:
        """Open the counters (or the poller) of ``indices`` and set ``devices``."""
        nvml = self._nvml
        counters: list[tuple[int, Any, int]] = []  # (index, handle, initial mJ)
        polled: list[int] = []
        names: dict[int, str] = {}
        dropped: list[str] = []
        for i in indices:
            h = self._handles[i]
            try:
                names[i] = _text(nvml.nvmlDeviceGetName(h))
            except nvml.NVMLError as exc:
                dropped.append(f"GPU {i}: {exc}")
                self.notes.append(
                    f"GPU {i} is not measured: NVML could not read its name ({exc}; a lost "
                    "or failing GPU?)"
                )
                continue
            try:
                counters.append((i, h, int(nvml.nvmlDeviceGetTotalEnergyConsumption(h))))
            except nvml.NVMLError as exc:
                code = _code(exc)
                if code in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND):
                    polled.append(i)
                    continue
                dropped.append(f"GPU {i}: {exc}")
                self.notes.append(
                    f"GPU {i} is not measured: reading its energy is denied ({exc})"
                    if code == NVML_ERROR_NO_PERMISSION
                    else f"GPU {i} is not measured: reading its energy failed ({exc}; a lost "
                    "or failing GPU?)"
                )
        if not counters and not polled:
            raise BackendError(
                "NVML may read the energy of none of the selected GPUs (" + "; ".join(dropped) + ")"
            )
        self._power = {i: _power_source(nvml, self._handles[i], names[i]) for i in names}
        self._counter_index = [i for i, _, _ in counters]
        self._counter_handles = [h for _, h, _ in counters]
        self._counter_last_mj = [mj for _, _, mj in counters]  # the last raw reading
        self._counter_counted_mj = [0] * len(counters)  # counted since opening (integers)
        self._counter_down: list[str | None] = [None] * len(counters)  # why unreadable
        self._polled_index = polled
        poller = (
            PowerPoller(
                [self._power[i].read_w for i in polled],
                self.poll_interval_s,
                errors=(nvml.NVMLError,),
                what="GPU",
                name="pytest-co2-nvml-poller",
            )
            if polled
            else None
        )
        devices = [
            Device(f"gpu:{i}", "gpu", names[i], Method.COUNTER, COUNTER_UPDATE_PERIOD_S, True)
            for i in self._counter_index
        ]
        for i in polled:
            src = self._power[i]
            period = (
                self.poll_interval_s
                if src.instant
                else max(POWER_AVERAGING_S, self.poll_interval_s)
            )
            devices.append(Device(f"gpu:{i}", "gpu", names[i], Method.POLLED, period, True))
            smear = (
                "instant readings, so steps longer than the poll interval are resolved"
                if src.instant
                else "a 1 s moving average, so steps shorter than a second are smeared"
            )
            self.notes.append(
                f"GPU {i} ({names[i]}) has no total-energy counter (pre-Volta?): its power "
                f"({src.what}) is polled every {self.poll_interval_s * 1e3:g} ms and "
                f"integrated; {smear}"
            )
        # read_j returns counters first, then polled GPUs; devices are in that order
        self.devices = tuple(devices)
        self.device_uuids: tuple[str | None, ...] = tuple(
            self.uuids[i] for i in (*self._counter_index, *polled)
        )
        self._poller = poller
        if poller is not None:
            poller.start()

    def refresh_devices(self) -> bool:
        """Narrow (or widen) an implicit multi-GPU selection to the GPUs now holding a CUDA
        context of this process; True when ``devices`` changed. Between windows only."""
        if not self._refreshable or not self._initialized:
            return False
        try:
            in_use = self._in_use(self._candidates_all)
        except self._nvml.NVMLError:
            return False
        current = [*self._counter_index, *self._polled_index]
        if not in_use or sorted(in_use) == sorted(current):
            return False
        self._stop_poller()
        try:
            self._build(in_use)
        except self._nvml.NVMLError as exc:
            raise BackendError(f"NVML query failed: {exc}") from None
        self.notes.append(
            "GPUs re-selected: now measuring those holding a CUDA context of this process: "
            + ", ".join(f"gpu:{i}" for i in in_use)
        )
        return True

    # -- reading -----------------------------------------------------------------------------
    def read_j(self) -> Sequence[float]:
        """Cumulative joules per device. A GPU whose read fails or whose counter went
        backwards is a fault of that GPU only (see ``faults``, ``failed``); the others go on."""
        if not self._initialized:
            raise BackendError("the NVML backend is closed")
        nvml = self._nvml
        out: list[float] = []
        last, counted, down = self._counter_last_mj, self._counter_counted_mj, self._counter_down
        for k, h in enumerate(self._counter_handles):
            try:
                mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(h))
            except nvml.NVMLError as exc:
                self._counter_failed(k, str(exc))
            else:
                if down[k] is not None:
                    self._read_resumed(k, mj)
                elif mj >= last[k]:
                    counted[k] += mj - last[k]
                    last[k] = mj
                else:
                    self._counter_went_back(k, mj)
            out.append(counted[k] / 1000.0)
        if self._poller is not None:
            self._poller_faults(self._poller)
            out.extend(self._poller.read_j())
        return out

    def _read_resumed(self, k: int, mj: int) -> None:
        self._counter_resumed(k)
        self._counter_last_mj[k] = mj

    def _counter_went_back(self, k: int, mj: int) -> None:
        i = self._counter_index[k]
        message = (
            f"GPU {i}'s energy counter went backwards ({_j_text(self._counter_last_mj[k])} "
            f"-> {_j_text(mj)}: driver reload or GPU reset?): the energy between its last "
            "reading and the reset is not counted; it counts again from the new value"
        )
        self._counter_last_mj[k] = mj
        self._fault(self._counter_index[k], "reset", message)

    def read_power_w(self) -> Sequence[float] | None:
        """Instant power (W) per device; NaN where the GPU reports only a 1 s average."""
        if not self._initialized:
            raise BackendError("the NVML backend is closed")
        out: list[float] = []
        any_instant = False
        for i in (*self._counter_index, *self._polled_index):
            src = self._power[i]
            if not src.instant:
                out.append(math.nan)
                continue
            try:
                out.append(src.read_w())
                any_instant = True
            except Exception:
                out.append(math.nan)
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
                self._nvml.nvmlShutdown()


def _j_text(mj: float) -> str:
    return f"{mj / 1000.0:.3f} J"
