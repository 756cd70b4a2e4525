"""The watts per hardware thread of a CPU: the shipped SPECpower table and the choice of row.

Where the watts per thread come from, first that applies:

1. ``--co2-cpu-watts-per-thread=IDLE,FULL`` (:func:`parse_watts_per_thread`);
2. ``--co2-cpu-tdp=W``: full = TDP / threads of one package, idle = :data:`TDP_IDLE_FRACTION`
   x full (a package figure: memory and the rest of the server are not in it);
3. the CPU model named in ``/proc/cpuinfo``, where SPECpower has results for it;
4. its microarchitecture: from the model name, else from CPUID vendor/family/model(/stepping)
   (:mod:`.cpuinfo`), which also works when a hypervisor masks the name;
5. unknown CPU: the median of all results published since 2021, labelled so.

The figures are medians over servers (``pytest_co2/data/cpu_power_per_thread.csv``, built by
``tools/build_cpu_power.py`` from Cloud Carbon Footprint's collection of the results,
Apache-2.0), measured by SPECpower_ssj2008 on whole servers at the wall.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources

from ..frozen import Frozen, record
from .cpuinfo import CpuInfo, match_cpu_model, microarchitecture
from .virtualization import Virtualization

# Idle power as a fraction of full load for --co2-cpu-tdp: the median idle / median full
# watts per thread of the SPECpower results since 2021 (0.6875 / 2.8517 = 0.241), rounded.
TDP_IDLE_FRACTION = 0.24

TABLE_FILE = "data/cpu_power_per_thread.csv"
WATTS_OPTION = "--co2-cpu-watts-per-thread"
TDP_OPTION = "--co2-cpu-tdp"
USER_WATTS_SOURCE = f"user {WATTS_OPTION}"
USER_TDP_SOURCE = f"user {TDP_OPTION}"
SPECPOWER_SOURCE = "SPECpower"


# -- the override --------------------------------------------------------------------------
def parse_watts_per_thread(text: str) -> tuple[float, float]:
    """``"IDLE,FULL"`` watts per hardware thread -> (idle, full); 0 <= idle <= full, full > 0.

    Raises :class:`ValueError` with one line naming the value and the accepted form.
    """
    return check_watts_per_thread(text.split(","), shown=text)


def check_watts_per_thread(
    watts: Sequence[float | str], shown: str | None = None
) -> tuple[float, float]:
    """(idle, full) watts per thread as numbers, checked as :func:`parse_watts_per_thread`
    does (``shown``: the value as the user wrote it, for the message)."""
    form = f"expected {WATTS_OPTION}=IDLE,FULL in watts per thread, 0 <= IDLE <= FULL, e.g. 0.4,2"
    try:
        if len(watts) != 2:
            raise ValueError
        idle, full = float(watts[0]), float(watts[1])
    except (TypeError, ValueError):
        idle = full = math.nan
    if not (math.isfinite(idle) and math.isfinite(full) and 0 <= idle <= full and full > 0):
        text = ",".join(map(str, watts)) if shown is None else shown
        raise ValueError(f"invalid watts per thread {text!r}: {form}")
    return idle, full


# -- the shipped table ---------------------------------------------------------------------
@record
class PowerRow(Frozen):
    """One row of the table: medians (and quartiles) of watts per thread over ``n`` results."""

    kind: str  # "recent" | "microarchitecture" | "model" | "name" (no figures)
    key: str
    microarchitecture: str
    vendor: str
    n: int = 0
    idle_w: float = 0.0
    full_w: float = 0.0
    idle_q1: float = 0.0
    idle_q3: float = 0.0
    full_q1: float = 0.0
    full_q3: float = 0.0
    threads_per_chip: float = 0.0
    years: str = ""

    @property
    def spread(self) -> str:
        return (
            f"IQR idle {self.idle_q1:.2f}-{self.idle_q3:.2f} W, "
            f"full {self.full_q1:.2f}-{self.full_q3:.2f} W per thread, published {self.years}"
        )


@record
class PowerTable(Frozen):
    """The shipped SPECpower figures: the recent median, and rows by microarchitecture and model."""

    recent: PowerRow
    architectures: Mapping[str, PowerRow]  # id -> row; the row's ``microarchitecture`` is its name
    models: Mapping[str, PowerRow]  # normalized model name -> row (figures or a name row)
    model_vendors: Mapping[str, str]  # normalized model name -> vendor, for matching


def _row(d: Mapping[str, str]) -> PowerRow:
    def num(k: str) -> float:
        return float(d.get(k) or 0.0)

    return PowerRow(
        kind=d["kind"],
        key=d["key"],
        microarchitecture=d.get("microarchitecture", ""),
        vendor=d.get("vendor", ""),
        n=int(d.get("n") or 0),
        idle_w=num("idle_w"),
        full_w=num("full_w"),
        idle_q1=num("idle_q1"),
        idle_q3=num("idle_q3"),
        full_q1=num("full_q1"),
        full_q3=num("full_q3"),
        threads_per_chip=num("threads_per_chip"),
        years=d.get("years", ""),
    )


def _lines(body: str, prefix: str) -> Iterator[tuple[int, str]]:
    """(position, line) of every line of ``body`` (which starts with a newline) that is
    ``prefix`` or starts with ``prefix`` and a comma, in order."""
    start = body.find("\n" + prefix)
    while start >= 0:
        end = body.find("\n", start + 1)
        line = body[start + 1 : end if end >= 0 else len(body)]
        if line == prefix or line[len(prefix)] == ",":
            yield start, line
        start = body.find("\n" + prefix, start + 1)


class _Rows(Mapping[str, PowerRow]):
    """Key -> row of some kinds, found in the table's text when looked up (the later line
    wins, as when parsed in order). A plugin run looks up a few of about 1,760 names and 23
    microarchitectures: parsing them all costs milliseconds at start-up, finding one some
    microseconds."""

    def __init__(self, body: str, header: list[str], kinds: tuple[str, ...]) -> None:
        self._body = body
        self._header = header
        self._kinds = kinds
        self._rows: dict[str, PowerRow | None] = {}

    def _find(self, key: str) -> PowerRow | None:
        found = [hit for kind in self._kinds for hit in _lines(self._body, f"{kind},{key}")]
        if not found:
            return None
        line = max(found)[1]
        if line.startswith("name,"):  # a name row has no figures
            _, key, arch, vendor = [*line.split(","), "", ""][:4]
            return PowerRow("name", key, arch, vendor)
        return _row(dict(zip(self._header, line.split(","), strict=False)))

    def __getitem__(self, key: str) -> PowerRow:
        if key not in self._rows:
            self._rows[key] = self._find(key)
        row = self._rows[key]
        if row is None:
            raise KeyError(key)
        return row

    def __iter__(self) -> Iterator[str]:  # in file order (tests, listings; not the plugin)
        hits = sorted(hit for kind in self._kinds for hit in _lines(self._body, kind))
        return iter(dict.fromkeys(line.split(",")[1] for _, line in hits))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Vendors(Mapping[str, str]):
    """Normalized model name -> vendor (for matching a CPU's name), from the model rows."""

    def __init__(self, models: _Rows) -> None:
        self._models = models

    def __getitem__(self, key: str) -> str:
        return self._models[key].vendor

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


def load_power_table(text: str) -> PowerTable:
    """Parse the table's CSV text; raises :class:`ValueError` if it has no ``recent`` row.

    The builder writes no quoted fields (names are normalized, without commas), so lines are
    split on commas. Only the last ``recent`` row is parsed here; a microarchitecture's or a
    model's row when it is looked up (:class:`_Rows`).
    """
    body = "\n" + (text.replace("\r\n", "\n") if "\r" in text else text)
    header = body[1:].split("\n", 1)[0].split(",")
    recent = [line for _, line in _lines(body, "recent")]
    if not recent:
        raise ValueError("CPU power table has no 'recent' row")
    models = _Rows(body, header, ("model", "name"))
    archs = _Rows(body, header, ("microarchitecture",))
    return PowerTable(
        _row(dict(zip(header, recent[-1].split(","), strict=False))),
        archs,
        models,
        _Vendors(models),
    )


@functools.lru_cache(maxsize=1)
def power_table() -> PowerTable:
    """The shipped table (``pytest_co2/data/cpu_power_per_thread.csv``), parsed once."""
    return load_power_table(resources.files("pytest_co2").joinpath(TABLE_FILE).read_text("utf-8"))


# -- choosing the watts per thread ---------------------------------------------------------
@record
class PerThreadPower(Frozen):
    """Idle and full-load watts per hardware thread, and where they come from."""

    idle_w: float
    full_w: float
    cpu: str  # what the CPU was identified as, e.g. "AMD Zen 5 (CPUID family 26)"
    source: str  # e.g. "SPECpower median of 43 servers"
    spread: str = ""  # the spread of the data behind a median
    unknown: bool = False  # the CPU was not identified: the all-results fallback
    threads_per_package: float | None = None  # TDP mode: the divisor used
    notes: tuple[str, ...] = ()


def _short(arch_name: str) -> str:
    """``AMD Zen 3`` -> ``Zen 3``: the name without its vendor, after a model name."""
    return arch_name.split(" ", 1)[1] if " " in arch_name else arch_name


def identify(
    cpu: CpuInfo, table: PowerTable
) -> tuple[PowerRow | None, PowerRow | None, str, list[str]]:
    """(model row with figures or None, microarchitecture row or None, CPU text, notes)."""
    notes: list[str] = []
    name = cpu.model_name
    key = match_cpu_model(name, table.model_vendors) if name else None
    model_row = table.models.get(key) if key else None
    arch_id, how = microarchitecture(cpu)
    if model_row is not None:
        named_arch = model_row.microarchitecture
        arch_row = table.architectures.get(named_arch)
        if arch_id and arch_id != named_arch and arch_row is not None:
            notes.append(f"model name {name!r} ({arch_row.microarchitecture}) wins over {how}")
        if model_row.kind == "model":
            label = f"{name} ({_short(arch_row.microarchitecture)})" if arch_row else name
            return model_row, arch_row, label, notes
        if arch_row is not None:
            return None, arch_row, f"{name} ({_short(arch_row.microarchitecture)})", notes
    if name:
        notes.append(f"model name {name!r} is not a CPU model in the SPECpower table")
    arch_row = table.architectures.get(arch_id) if arch_id else None
    if arch_row is not None:
        return None, arch_row, f"{arch_row.microarchitecture} ({how})", notes
    if arch_id:
        notes.append(f"{arch_id} ({how}) has no SPECpower results")
    else:
        notes.append(f"microarchitecture not identified ({how})")
    vendor = f"vendor {cpu.vendor}" if cpu.vendor else "no vendor"
    label = f"unknown CPU {name!r} ({vendor}, {how})" if name else f"unknown CPU ({vendor}, {how})"
    return None, None, label, notes


def resolve_power(
    cpu: CpuInfo,
    vm: Virtualization,
    *,
    watts_per_thread: tuple[float, float] | None = None,
    tdp_w: float | None = None,
    threads_per_package: float | None = None,
    table: PowerTable | None = None,
) -> PerThreadPower:
    """The watts per thread for ``cpu`` (see the module docstring for the order)."""
    table = table if table is not None else power_table()
    model_row, arch_row, label, notes = identify(cpu, table)
    if watts_per_thread is not None:
        idle, full = watts_per_thread
        return PerThreadPower(idle, full, label, USER_WATTS_SOURCE, notes=tuple(notes))
    if tdp_w is not None:
        threads, why = _package_threads(cpu, vm, model_row, arch_row, table, threads_per_package)
        full = tdp_w / threads
        source = (
            f"{USER_TDP_SOURCE} {tdp_w:g} W / {threads:g} threads per package ({why}), "
            f"idle {TDP_IDLE_FRACTION:g} x full"
        )
        return PerThreadPower(
            full * TDP_IDLE_FRACTION, full, label, source, "", False, threads, tuple(notes)
        )
    row = model_row or arch_row
    if row is not None:
        with_cpu = " with this CPU" if row is model_row else ""
        source = f"{SPECPOWER_SOURCE} median of {row.n} servers{with_cpu}"
        return PerThreadPower(row.idle_w, row.full_w, label, source, row.spread, notes=tuple(notes))
    recent = table.recent
    source = (
        f"{SPECPOWER_SOURCE} median of {recent.n} servers published {recent.key.split()[-1]} "
        f"(CPU unknown: set {WATTS_OPTION}=IDLE,FULL)"
    )
    return PerThreadPower(
        recent.idle_w, recent.full_w, label, source, recent.spread, True, notes=tuple(notes)
    )


def _package_threads(
    cpu: CpuInfo,
    vm: Virtualization,
    model_row: PowerRow | None,
    arch_row: PowerRow | None,
    table: PowerTable,
    given: float | None,
) -> tuple[float, str]:
    """Threads of one CPU package, for TDP / threads, and where the number comes from.

    On bare metal: ``siblings`` of ``/proc/cpuinfo``. In a VM ``siblings`` counts the guest's
    vCPUs, not the host package's threads, so the median package of SPECpower servers with
    that model (or microarchitecture) is used.
    """
    if given is not None:
        return given, "given"
    if not vm.is_vm and cpu.siblings:
        return float(cpu.siblings), "/proc/cpuinfo siblings"
    if model_row is not None and model_row.threads_per_chip > 0:
        return model_row.threads_per_chip, "SPECpower servers with this CPU"
    if arch_row is not None and arch_row.threads_per_chip > 0:
        return arch_row.threads_per_chip, f"median of {arch_row.microarchitecture} servers"
    if vm.is_vm:
        return table.recent.threads_per_chip, "VM: host package unknown, median of recent servers"
    return float(os.cpu_count() or 1), "os.cpu_count()"
