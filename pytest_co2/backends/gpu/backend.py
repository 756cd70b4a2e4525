"""One GPU backend for every vendor: the devices it measures, how, and what goes wrong.

A :class:`~.driver.GpuDriver` (NVML, AMD SMI) lists the GPUs and reads them; this class
decides the rest, once for every vendor:

- which GPUs (:mod:`.selection`): ``--co2-gpus``, else the runtime's visibility variables,
  else every GPU; several picked implicitly are narrowed to those holding a context of this
  process (its PID in the library's process list, or torch's contexts by UUID), again at
  every window (:meth:`refresh_devices`); compute partitions of one physical GPU count once;
- per GPU, the energy counter (a hardware counter, ``counter``) or, without one, power
  polled and integrated on a thread (``polled``);
- per-GPU faults (:mod:`.counters`): a failed read, a lost GPU or a reset ends that GPU's
  contribution with a note and the window is partial; the others go on;
- the counter's update period, measured at open (:func:`.probe.probe_periods`), and windows
  shorter than it, where instant power sampled every few ms is integrated instead, with a
  bound (:meth:`window_enter`, :meth:`window_exit`);
- ``lock_keys``: the lock name of each device (its UUID), for cross-process locks.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..base import Backend, BackendError, Device, Method
from ..poller import PowerPoller
from .counters import Counter, Faults
from .driver import DENIED, UNSUPPORTED, GpuDriver, PowerSource
from .probe import PeriodProbe, period_facts, probe_periods
from .selection import Selector
from .window import FineSampling, FineWindow

#: A polled power that is an average (not instant) smears steps shorter than this.
POWER_AVERAGING_S = 1.0
#: How often instant power is sampled inside a window shorter than the counter's period.
FINE_INTERVAL_S = 0.002


class GpuBackend(FineSampling, Selector, Backend):
    """Joules per measured GPU since the backend opened: counter, or polled power."""

    name = "gpu"

    def __init__(
        self,
        driver: GpuDriver,
        gpus: Any = None,
        poll_interval_s: float = 0.02,
        *,
        pid: int | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        probe_period_s: float | None = None,
        fine_interval_s: float | None = FINE_INTERVAL_S,
    ) -> None:
        Backend.__init__(self)
        self.driver = driver
        self._closed = False
        self._poller: PowerPoller | None = None
        self._fine: FineWindow | None = None
        self._counters: list[Counter] = []
        self._polled: list[int] = []
        try:
            if not poll_interval_s > 0:
                raise BackendError(
                    f"invalid {driver.vendor} poll interval {poll_interval_s!r}: expected "
                    "seconds > 0"
                )
            self.poll_interval_s = poll_interval_s
            self._clock: Callable[[], float] = clock or time.perf_counter
            if clock is not None:
                self.clock = clock  # the meter times windows on it (an emulated clock)
            self._sleep = sleep or time.sleep
            if sleep is not None:
                self.sleep = sleep  # idle power is measured on it (an emulated clock)
            self._probe_s = probe_period_s
            self.fine_interval_s = fine_interval_s
            self._book = Faults(driver.label, driver.id_prefix, self.notes)
            self._periods: dict[int, PeriodProbe] = {}  # what the probe found, by GPU
            self._names: dict[int, str] = {}
            self._power: dict[int, PowerSource | None] = {}
            self._fine_base: dict[int, float] = {}
            self._fine_pos: dict[int, int] = {}
            try:
                Selector.__init__(self, driver, gpus, pid)
                self._t_open = self._clock()
                self._build(self.select())
            except driver.errors as exc:
                raise BackendError(f"{driver.vendor} query failed: {driver.text(exc)}") from None
        except BaseException:
            self.close()
            raise

    def rank_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that reopen this backend in a DDP rank (JSON-safe)."""
        sel = self.selection
        gpus = ",".join(sel.entries) if sel.mode == "list" and sel.entries else sel.mode
        return {"poll_interval_s": self.poll_interval_s, "gpus": "none" if gpus == "list" else gpus}

    # -- devices -----------------------------------------------------------------------------
    def _build(self, indices: Sequence[int]) -> None:
        """Open the counters (or the poller) of ``indices`` and set ``devices``."""
        d, label = self.driver, self.driver.label
        counters: list[Counter] = []
        polled: list[int] = []
        dropped: list[str] = []
        denied = False
        for i in indices:
            h = self.infos[i].handle
            try:
                self._names[i] = d.name(h)
                reading = d.energy(h)
            except d.errors as exc:
                kind = d.kind(exc)
                if i in self._names and kind == UNSUPPORTED:
                    polled.append(i)
                    continue
                denied = denied or kind == DENIED
                what = "its name" if i not in self._names else "its energy"
                dropped.append(f"{label} {i}: {d.text(exc)}")
                self.notes.append(
                    f"{label} {i} is not measured: reading {what} is denied ({d.text(exc)})"
                    if kind == DENIED
                    else f"{label} {i} is not measured: {d.vendor} could not read {what} "
                    f"({d.text(exc)}; a lost or failing GPU?)"
                )
                self._names.pop(i, None)
                continue
            if reading is None:
                polled.append(i)
            else:
                counters.append(Counter(i, h, reading.raw, reading.mul, reading.div))
        for i in self._names:
            try:
                self._power[i] = d.power_source(self.infos[i].handle, self._names[i])
            except d.errors:
                self._power[i] = None
        for i in [i for i in polled if self._power.get(i) is None]:
            polled.remove(i)
            dropped.append(f"{label} {i}: neither energy nor power")
            self.notes.append(
                f"{label} {i} is not measured: it reports neither an energy counter nor power"
            )
        if not counters and not polled:
            raise BackendError(
                f"{d.vendor} may not read any of the selected GPUs (permission denied): "
                f"{d.access_hint}, or use --co2-backend=estimate"
                if denied
                else f"{d.vendor} reads neither energy nor power of the selected GPUs ("
                + "; ".join(dropped)
                + ")"
            )
        self._probe(counters)
        self._set_devices(counters, polled)

    def _probe(self, counters: list[Counter]) -> None:
        """Measure the update period of the counters not measured yet; rebase them all."""
        new = [c for c in counters if c.index not in self._periods]
        if new and self._probe_s:
            found = probe_periods(self._raw_of(new), self._clock, self._sleep, self._probe_s)
            self._periods.update((c.index, p) for c, p in zip(new, found, strict=True))
        for c, raw in zip(counters, self._raw_of(counters)(), strict=True):
            if raw is not None:
                c.last = raw

    def _raw_of(self, counters: list[Counter]) -> Callable[[], list[int | None]]:
        def read() -> list[int | None]:
            out: list[int | None] = []
            for c in counters:
                try:
                    r = self.driver.energy(c.handle)
                except self.driver.errors:
                    r = None
                out.append(None if r is None else r.raw)
            return out

        return read

    def period_s(self, i: int) -> float:
        """GPU ``i``'s counter period: measured at open, else the driver's assumption
        (capped where the probe proved it shorter; :mod:`.probe`)."""
        found = self._periods.get(i)
        assumed = self.driver.assumed_period_s
        return assumed if found is None else found.period_s(assumed)

    @property
    def counter_periods(self) -> dict[str, dict[str, object]]:
        """Device id -> how its counter period was obtained (:func:`.probe.period_facts`)."""
        return {
            f"{self.driver.id_prefix}:{c.index}": period_facts(
                self._periods.get(c.index), self.period_s(c.index)
            )
            for c in self._counters
        }

    def _set_devices(self, counters: list[Counter], polled: list[int]) -> None:
        d, label, prefix = self.driver, self.driver.label, self.driver.id_prefix
        devices = []
        for c in counters:
            i, name = c.index, self._names[c.index]
            devices.append(Device(f"{prefix}:{i}", "gpu", name, Method.COUNTER, self.period_s(i)))
            found = self._periods.get(i)
            how = (
                f"assumed to update every {d.assumed_period_s * 1e3:g} ms"
                if found is None
                else found.describe(d.assumed_period_s)
            )
            detail = d.counter_detail(c)
            self.notes.append(f"{label} {i} ({name}): energy counter{detail}, {how}")
        for i in polled:
            src = self._power[i]
            assert src is not None
            period = (
                self.poll_interval_s
                if src.instant
                else max(POWER_AVERAGING_S, self.poll_interval_s)
            )
            devices.append(Device(f"{prefix}:{i}", "gpu", self._names[i], Method.POLLED, period))
            smear = (
                "instant readings, so steps longer than the poll interval are resolved"
                if src.instant
                else "an average, so steps shorter than about a second are smeared"
            )
            self.notes.append(
                f"{label} {i} ({self._names[i]}) has no energy counter{d.no_counter_hint}: its "
                f"power ({src.what}) is polled every {self.poll_interval_s * 1e3:g} ms and "
                f"integrated; {smear}"
            )
        self._counters, self._polled = counters, polled
        self.devices = tuple(devices)  # read_j: counters first, then polled GPUs
        self.device_uuids: tuple[str | None, ...] = tuple(self.infos[i].uuid for i in self.order)
        if polled:
            self._poller = PowerPoller(
                [self._power_of(i) for i in polled],
                self.poll_interval_s,
                errors=d.errors,
                what=label,
                name=f"pytest-co2-{self.name}-poller",
                clock=self._clock,
            )
            every = getattr(self._clock, "every", None)
            self._poller_cancel = (
                every(self.poll_interval_s, self._poller.poll_once) if callable(every) else None
            )
            if self._poller_cancel is None:
                self._poller.start()

    def _power_of(self, i: int) -> Callable[[], float | None]:
        src = self._power[i]
        assert src is not None
        return src.read_w

    @property
    def order(self) -> list[int]:
        """GPU numbers in device order (counters, then polled)."""
        return [c.index for c in self._counters] + self._polled

    @property
    def lock_keys(self) -> dict[str, str]:
        """Device id -> the name of its cross-process lock: the GPU's UUID where known."""
        return {
            dev.id: self.infos[i].uuid or dev.id
            for dev, i in zip(self.devices, self.order, strict=True)
        }

    def refresh_devices(self) -> bool:
        """Window boundary: counters held after a reset take their new base; an implicit
        multi-GPU selection follows the GPUs now holding a context of this process."""
        if self._closed:
            return False
        self._rebase()
        in_use = self.in_use_now()
        if in_use is None or sorted(in_use) == sorted(self.order):
            return False
        self._stop_poller()
        self._build(in_use)
        self.notes.append(
            "GPUs re-selected: now measuring those holding a context of this process: "
            + ", ".join(f"{self.driver.id_prefix}:{i}" for i in in_use)
        )
        return True

    def _rebase(self) -> None:
        held = [c for c in self._counters if c.reset]
        for c, raw in zip(held, self._raw_of(held)(), strict=True):
            self._book.new_window(c, raw)

    # -- reading -----------------------------------------------------------------------------
    @property
    def faults(self) -> list[str]:
        return self._book.faults

    @property
    def failed(self) -> dict[str, str]:
        return self._book.failed(self._counters, self._poller, self._polled)

    def read_j(self) -> Sequence[float]:
        """Cumulative joules per device; a fault is that GPU's only (``faults``, ``failed``)."""
        d = self.driver
        if self._closed:
            raise BackendError(f"the {d.vendor} backend is closed")
        fine = self._fine
        fine_j = fine.energy_j() if fine is not None else None
        out: list[float] = []
        for k, c in enumerate(self._counters):
            raw: int | None = None
            error: str | None = None
            try:
                r = d.energy(c.handle)
                raw = None if r is None else r.raw
            except d.errors as exc:
                error = d.text(exc)
            unmoved = not c.moved and raw == c.last
            self._book.update(c, raw, error)
            if unmoved and d.frozen_after_s is not None:
                self._check_frozen(c, d.frozen_after_s)
            j = c.joules
            pos = self._fine_pos.get(k)
            if (
                fine is not None
                and fine_j is not None
                and pos is not None
                and c.down is None
                and fine.elapsed_s < self.period_s(c.index)
            ):
                j = self._fine_base[k] + fine_j[pos]
            out.append(j)
        if self._poller is not None:
            self._book.poller(self._poller, self._polled)
            out.extend(self._poller.read_j())
        return out

    def _check_frozen(self, c: Counter, after_s: float) -> None:
        """Once, ``after_s`` after opening: a counter that never moved while the GPU draws
        power is frozen (seen on MI100 until a reboot, and in VM guests)."""
        waited_s = self._clock() - self._t_open
        if waited_s < after_s:
            return
        c.moved = True  # checked: never again
        src = self._power.get(c.index)
        w: float | None = None
        with contextlib.suppress(*self.driver.errors):
            w = src.read_w() if src is not None else None
        if w is None or w <= 0:
            return
        message = (
            f"{self.driver.label} {c.index}'s energy counter has not moved in {waited_s:.0f} s "
            f"while the GPU draws {w:g} W: its energy reads 0 (a frozen firmware counter; a "
            "reboot fixed it on MI100); use --co2-backend=estimate or constant:<watts> until "
            "it counts"
        )
        self.notes.append(message)
        from ..base import warn

        warn(message)

    def read_power_w(self) -> Sequence[float] | None:
        """Instant power (W) per device; NaN where the GPU reports only an average, and for
        a counter GPU whose short window is fine-sampled (see :meth:`window_enter`)."""
        if self._closed:
            raise BackendError(f"the {self.driver.vendor} backend is closed")
        out: list[float] = []
        for k, i in enumerate(self.order):
            src = self._power.get(i)
            w: float | None = None
            if src is not None and src.instant and not (self._fine and k in self._fine_pos):
                with contextlib.suppress(Exception):
                    w = src.read_w()
            out.append(math.nan if w is None else float(w))
        return out if any(math.isfinite(w) for w in out) else None

    def _stop_poller(self) -> None:
        poller, self._poller = self._poller, None
        cancel = getattr(self, "_poller_cancel", None)
        if cancel is not None:
            cancel()
        if poller is not None:
            poller.close()

    def close(self) -> None:
        self._stop_poller()
        self._close_fine()
        if not getattr(self, "_closed", True):
            self._closed = True
            self.driver.shutdown()
