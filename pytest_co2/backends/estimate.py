"""``estimate``: energy of this process from its CPU time and resident memory, no counters.

For machines without readable energy counters (VMs, containers, CI runners, laptops
without RAPL access). Two devices, both labelled ``estimated``:

- ``cpu:process``: process CPU time (all threads, plus children that have finished and
  been waited for) x (CPU package TDP / logical CPUs of the package). A busy thread is
  charged one thread's share of the TDP; an idle or sleeping process is charged nothing.
  Idle power of the machine is deliberately not included.
- ``memory:process``: resident set size x :data:`MEMORY_W_PER_GB` x wall time. The RSS
  is sampled at most every :data:`RSS_REFRESH_S` seconds by :meth:`read_j` and
  integrated piecewise (the power of a segment is the RSS at its start).

The TDP comes from the user (``--co2-cpu-tdp``), else from the table shipped in
``pytest_co2/data/cpu_power.csv`` (carbontracker's, MIT; see ``cpu_power.LICENSE.md``),
else :data:`DEFAULT_TDP_W` with a note and a one-time warning. Never 0.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources

from .base import Backend, BackendError, Device, Method, warn

try:  # POSIX only; on Windows the children term comes from os.times (0 there)
    import resource as _resource
except ImportError:  # pragma: no cover - Windows
    _resource = None  # type: ignore[assignment]

# Memory power per GB of resident memory: 3 W per 8 GB of DDR3/DDR4 = 0.375 W/GB.
# Source: Crucial, "How much power does memory use?" (support FAQ,
# https://www.crucial.com/support/articles-faq-memory/how-much-power-does-memory-use),
# the heuristic codecarbon used before its v3 (it applied it to installed RAM, in GiB;
# we apply it to this process's RSS, GB = 2**30 bytes). Green Algorithms uses a close
# 0.3725 W/GB. It is a rough data-sheet figure: real DRAM power depends far more on
# access rate than on size, so this term is an order of magnitude, not a measurement.
MEMORY_W_PER_GB = 0.375
BYTES_PER_GB = 2**30
MEMORY_SOURCE = "3 W per 8 GB of DDR3/DDR4 from Crucial's data, codecarbon's heuristic before v3"

# TDP used when the CPU model is not in the table. 100 W sits between the median TDP of
# the table's rows (65 W, mostly desktop parts) and the median of its server rows (Xeon
# and EPYC, 115 W), and is a round number nobody mistakes for a measurement. The user
# is told to set --co2-cpu-tdp.
DEFAULT_TDP_W = 100.0

# The RSS is re-read at most this often (a /proc read costs ~10 us; read_j must not).
RSS_REFRESH_S = 0.1

TDP_TABLE_SOURCE = "carbontracker TDP table"
USER_TDP_SOURCE = "user --co2-cpu-tdp"
DEFAULT_TDP_SOURCE = "default"

_WARNED_MODELS: set[str] = set()  # warn once per process and CPU model


# -- CPU model and thread count -------------------------------------------------------------
def _cpuinfo_field(field: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == field:
                    return value.strip() or None
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU model string: /proc/cpuinfo ``model name``, else ``platform.processor()``."""
    return _cpuinfo_field("model name") or platform.processor().strip() or "unknown CPU"


def threads_per_package() -> int:
    """Logical CPUs of one package (/proc/cpuinfo ``siblings``), else ``os.cpu_count()``.

    The TDP in the table is per package, so it is shared by that package's threads, not by
    all the threads of a multi-socket machine.
    """
    siblings = _cpuinfo_field("siblings")
    if siblings and siblings.isdigit() and int(siblings) > 0:
        return int(siblings)
    return os.cpu_count() or 1


# -- the TDP table -----------------------------------------------------------------------
_NOISE = [
    re.compile(r"\((?:r|tm|c)\)|®|™"),
    re.compile(r"@.*$"),  # "@ 2.30GHz"
    re.compile(r"\b(?:with|w/)\s+radeon\b.*$"),  # "with Radeon Graphics"
    re.compile(r"\b\d+-core\b"),
    re.compile(r"\b(?:cpu|processor)\b"),
]


def normalize_cpu_name(name: str) -> str:
    """Lower case, without trademarks, frequency, ``CPU``, ``Processor``, ``N-Core``."""
    text = name.lower()
    for pattern in _NOISE:
        text = pattern.sub(" ", text)
    return " ".join(text.split())


def _parse_tdp(text: str) -> float | None:
    text = text.strip()
    parts = text.split(".")
    if len(parts) == 3:  # "27.29.5": a range 27-29.5 W; take the upper bound
        text = f"{parts[1]}.{parts[2]}"
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


@functools.lru_cache(maxsize=1)
def _table_lines() -> tuple[list[str], list[str]]:
    """The table's data lines ``name,tdp`` as shipped, and the same lines in lower case."""
    raw = resources.files("pytest_co2").joinpath("data/cpu_power.csv").read_text("utf-8")
    lines = raw.splitlines()[1:]  # no quoting in this file: one comma per line
    return lines, raw.lower().splitlines()[1:]


def _rows(keep: Callable[[str], bool] | None = None) -> list[tuple[str, str, float]]:
    """(name, lower-case name, TDP in W) of the usable rows whose lower-case line ``keep`` accepts."""
    lines, lower = _table_lines()
    rows = []
    for line, low in zip(lines, lower, strict=False):
        if keep is not None and not keep(low):
            continue
        name, _, tdp_text = line.rpartition(",")
        tdp = _parse_tdp(tdp_text)
        if name and tdp is not None:
            rows.append((name.strip(), low.rpartition(",")[0], tdp))
    return rows


def _normalized(rows: Iterable[tuple[str, str, float]]) -> dict[str, tuple[str, float]]:
    table: dict[str, tuple[str, float]] = {}
    for name, _, tdp in rows:
        key = normalize_cpu_name(name)
        if key and (key not in table or tdp > table[key][1]):
            table[key] = (name, tdp)
    return table


@functools.lru_cache(maxsize=1)
def tdp_table() -> dict[str, tuple[str, float]]:
    """Normalized name -> (name as in the table, TDP in W), from ``data/cpu_power.csv``."""
    return _normalized(_rows())


def lookup_tdp(model: str) -> tuple[float | None, str]:
    """TDP (W) of ``model`` from the table, and how it was found (or why not).

    Exact normalized match first, then the longest table name found as whole words in the
    model string (a name must contain a digit: a bare family name identifies nothing).
    Only rows that could match (they contain every word of the model, or one of its words
    with a digit) are normalized, which keeps plugin start-up fast.
    """
    key = normalize_cpu_name(model)
    tokens = key.split()
    digit_tokens = [t for t in tokens if any(c.isdigit() for c in t)]

    def could_match(low: str) -> bool:
        if any(t in low for t in digit_tokens):
            return True
        if not all(t in low for t in tokens):
            return False
        if digit_tokens:
            return True
        # a model without digits matches exactly only a table name without digits
        name = _NOISE[3].sub(" ", low.rpartition(",")[0].split("@")[0])
        return not any(c.isdigit() for c in name)

    table = _normalized(_rows(could_match))
    if key in table:
        name, tdp = table[key]
        return tdp, f"{TDP_TABLE_SOURCE}: {name!r}"
    for length in range(len(tokens) - 1, 0, -1):
        for start in range(len(tokens) - length + 1):
            candidate = " ".join(tokens[start : start + length])
            if candidate in table and any(c.isdigit() for c in candidate):
                name, tdp = table[candidate]
                return tdp, f"{TDP_TABLE_SOURCE}: {name!r} (contained in {model!r})"
    return None, f"CPU model {model!r} is not in the TDP table"


# -- process CPU time and RSS ----------------------------------------------------------------
def process_cpu_s() -> float:
    """CPU seconds of this process (all threads) plus its finished, waited-for children."""
    if _resource is not None:
        ru = _resource.getrusage(_resource.RUSAGE_CHILDREN)
        return time.process_time() + ru.ru_utime + ru.ru_stime
    t = os.times()  # pragma: no cover - Windows
    return t.user + t.system + t.children_user + t.children_system  # pragma: no cover


def cpu_time_resolution_s() -> float:
    """Resolution of :func:`process_cpu_s`: the finer of process_time and clock ticks.

    ``time.process_time`` (CLOCK_PROCESS_CPUTIME_ID, nanoseconds) is normally far finer
    than ``os.times`` (1 / SC_CLK_TCK, 10 ms at 100 Hz); children's times come from
    ``getrusage`` in microseconds, which bounds the result below.
    """
    resolution = time.get_clock_info("process_time").resolution
    try:
        ticks = 1.0 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        ticks = 0.01
    return max(min(resolution, ticks), 1e-6)


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes_proc() -> int:
    """Resident set size of this process from /proc/self/statm (pages x page size)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_BYTES


def rss_bytes_peak() -> int:
    """Peak RSS from getrusage (no /proc, e.g. macOS): an upper bound of the current RSS."""
    if _resource is None:  # pragma: no cover - Windows
        return 0
    peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform.system() == "Darwin" else peak * 1024)


class EstimateBackend(Backend):
    """CPU energy from process CPU time x TDP per thread, memory energy from RSS x W/GB.

    ``process_times``, ``rss_bytes`` and ``clock`` replace the process's CPU seconds, RSS
    in bytes and the wall clock (tests). ``n_cpus`` overrides the threads per package.
    :meth:`read_j` takes no lock: call it from one thread (the meter does).
    """

    name = "estimate"

    def __init__(
        self,
        cpu_tdp_w: float | None = None,
        memory_w_per_gb: float = MEMORY_W_PER_GB,
        cpu_model: str | None = None,
        process_times: Callable[[], float] | None = None,
        rss_bytes: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        n_cpus: int | None = None,
    ) -> None:
        super().__init__()
        if cpu_tdp_w is not None and not (math.isfinite(cpu_tdp_w) and cpu_tdp_w > 0):
            raise BackendError(f"invalid CPU TDP {cpu_tdp_w!r}: expected watts > 0, e.g. 65")
        if not (math.isfinite(memory_w_per_gb) and memory_w_per_gb >= 0):
            raise BackendError(f"invalid memory power {memory_w_per_gb!r}: expected W/GB >= 0")
        if n_cpus is not None and n_cpus < 1:
            raise BackendError(f"invalid thread count {n_cpus!r}: expected >= 1")
        self.cpu_model_name = cpu_model if cpu_model is not None else _detect_cpu_model()
        self.n_cpus = int(n_cpus) if n_cpus is not None else threads_per_package()
        if cpu_tdp_w is not None:
            self.tdp_w, self.tdp_source = float(cpu_tdp_w), USER_TDP_SOURCE
        else:
            tdp, why = lookup_tdp(self.cpu_model_name)
            if tdp is not None:
                self.tdp_w, self.tdp_source = tdp, TDP_TABLE_SOURCE
                self.notes.append(f"CPU TDP {tdp:g} W from the {why}")
            else:
                self.tdp_w, self.tdp_source = DEFAULT_TDP_W, DEFAULT_TDP_SOURCE
                message = (
                    f"{why}; using the default {DEFAULT_TDP_W:g} W: "
                    "set --co2-cpu-tdp=WATTS for your CPU"
                )
                self.notes.append(message)
                if self.cpu_model_name not in _WARNED_MODELS:
                    _WARNED_MODELS.add(self.cpu_model_name)
                    warn(message)
        self.memory_w_per_gb = float(memory_w_per_gb)
        # joules per CPU-second: one thread's share of the package TDP
        self.cpu_w_per_thread = self.tdp_w / self.n_cpus

        self._process_times = process_times or process_cpu_s
        if rss_bytes is None:
            rss_bytes = rss_bytes_proc
            try:
                rss_bytes()
            except (OSError, ValueError, IndexError):
                rss_bytes = rss_bytes_peak
                self.notes.append("memory: /proc/self/statm is unreadable; using the peak RSS")
        self._rss_bytes = rss_bytes
        self._clock = clock
        self.notes.append(
            f"memory: process RSS x {self.memory_w_per_gb:g} W/GB"
            + (f" ({MEMORY_SOURCE})" if self.memory_w_per_gb == MEMORY_W_PER_GB else "")
            + f", RSS sampled at most every {RSS_REFRESH_S:g} s"
        )

        self.devices = (
            Device(
                id="cpu:process",
                kind="cpu",
                label=(
                    f"{self.cpu_model_name} (TDP {self.tdp_w:g} W / {self.n_cpus} threads, "
                    f"{self.tdp_source})"
                ),
                method=Method.ESTIMATED,
                update_period_s=cpu_time_resolution_s() if process_times is None else 0.0,
                shared=False,
            ),
            Device(
                id="memory:process",
                kind="memory",
                label=f"process RSS x {self.memory_w_per_gb:g} W/GB",
                method=Method.ESTIMATED,
                update_period_s=0.0,
                shared=False,
            ),
        )
        self._cpu0_s = self._process_times()
        now = self._clock()
        self._mem_acc_j = 0.0  # memory energy up to the start of the current segment
        self._seg_t = now  # start of the current segment
        self._mem_power_w = self._rss_power_w()

    def _rss_power_w(self) -> float:
        return self._rss_bytes() / BYTES_PER_GB * self.memory_w_per_gb

    def read_j(self) -> Sequence[float]:
        now = self._clock()
        cpu_j = (self._process_times() - self._cpu0_s) * self.cpu_w_per_thread
        dt = now - self._seg_t
        if dt >= RSS_REFRESH_S:  # close the segment, start a new one at the current RSS
            self._mem_acc_j += self._mem_power_w * dt
            self._seg_t = now
            self._mem_power_w = self._rss_power_w()
            dt = 0.0
        return (cpu_j, self._mem_acc_j + self._mem_power_w * dt)


_detect_cpu_model = cpu_model  # the constructor's ``cpu_model`` argument shadows the function
