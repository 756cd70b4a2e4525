"""The job budget at run time: replans before each config, stops a config's steps when the
budget says so, skips what does not fit (time or memory), and keeps what each config cost.

The decisions are the planner's (``planner.py``, pure); this class holds the clock, the
configs' reference estimates, what has run, and the host readings (``host.py``), all of
which tests can replace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import host
from . import planner as pl


@dataclass
class Spec:
    """A config as the job knows it: its reference estimate and what it needs to run."""

    config: pl.Config  # reference-machine estimate (unscaled)
    peak_rss_gb: float
    decode_image: str = ""  # synthesis: the image whose decode the first such config measures
    without_decode: pl.Config | None = None  # the estimate once that decode is measured


@dataclass
class StepControl:
    """How many measured steps a config runs: the plan's count, at least ``min_steps``
    (fewer only when the job budget says so), more than ``min_steps`` only while the
    measured steps take under ``time_budget_s``."""

    steps: int
    min_steps: int
    time_budget_s: float
    budget_ok: Callable[[int, float], bool] | None = None
    reduced: bool = False  # the plan gave fewer steps than the default
    ran: list[tuple[int, float]] = field(default_factory=list)

    def more(self, done: int, measured_s: float, share: int = 1) -> bool:
        """Another measured step after ``done`` that took ``measured_s``? (``share``: the
        measurements a step serves, e.g. the samplers of a round, each with its time budget)"""
        if done >= self.steps:
            return False
        if done == 0:
            return True
        if not (done < self.min_steps or measured_s / share < self.time_budget_s):
            return False  # the default rule: enough steps, and measured long enough
        if self.budget_ok is not None and not self.budget_ok(done, measured_s):
            self.reduced = True  # the job budget ended it
            return False
        return True

    def record(self, steps: int, measured_s: float) -> None:
        self.ran.append((steps, measured_s))


class BudgetRun:
    def __init__(
        self,
        specs: dict[str, Spec],
        order: list[str],
        budget_s: float | None,
        *,
        prior: float = 1.0,
        time_budget_s: float = 2.0,
        min_steps: int = 2,
        clock: Callable[[], float] = time.monotonic,
        memory: Callable[[], host.Memory | None] = host.mem_available,
        rss: Callable[[], float | None] = host.rss_bytes,
        counters: Callable[[float], host.CpuCounters] = host.cpu_counters,
        reset_peak: Callable[[], bool] = host.reset_peak_rss,
        peak: Callable[[], float | None] = lambda: host.rss_bytes(field="VmHWM"),
        reserve_s: float = pl.RESERVE_S,
        start_t: float | None = None,
    ) -> None:
        self.specs = specs
        self.order = order
        self.budget_s = budget_s
        self.prior = prior
        self.time_budget_s = time_budget_s
        self.min_steps = min_steps
        self.clock = clock
        self.memory = memory
        self.rss = rss
        self.counters = counters
        self.reset_peak = reset_peak
        self.peak = peak
        self.reserve_s = reserve_s
        self.start_t = clock() if start_t is None else start_t
        self.done: dict[str, dict[str, Any]] = {}  # key -> what it cost (JSON-safe)
        self.decoded: set[str] = set()
        self.observed: list[tuple[float, float]] = []  # (seconds, reference seconds)
        self.current: tuple[str, StepControl, float, host.CpuCounters] | None = None
        self._planned: pl.Planned | None = None

    # -- estimates ----------------------------------------------------------------------------
    def factor(self) -> float:
        return pl.speed_factor(self.observed, self.prior)

    def _reference(self, key: str) -> pl.Config:
        s = self.specs[key]
        if s.decode_image and s.decode_image in self.decoded and s.without_decode is not None:
            return s.without_decode
        return s.config

    def spent_s(self) -> float:
        return self.clock() - self.start_t

    def plan(self, first: str | None = None) -> pl.Plan:
        """The plan of the configs not yet run (from ``first`` on, in run order)."""
        keys = [k for k in self.order if k not in self.done]
        if first is not None and first in keys:
            keys = keys[keys.index(first) :]
        f = self.factor()
        configs = [pl.scaled(self._reference(k), f) for k in keys]
        return pl.plan(configs, self.budget_s, self.spent_s(), self.reserve_s)

    # -- a config's run -----------------------------------------------------------------------
    def start(self, key: str) -> tuple[StepControl | None, str, str]:
        """(control, skip reason, progress text) for the config about to run."""
        plan = self.plan(key)
        planned = plan.get(key)
        assert planned is not None
        index = self.order.index(key) + 1
        text = pl.progress_text(plan, key, index, len(self.order))
        if not planned.steps:
            self._skipped(key, planned.skip_reason, planned)
            return None, planned.skip_reason, text
        reason = host.memory_skip_reason(
            self.specs[key].peak_rss_gb * host.GB, self.rss() or 0.0, self.memory()
        )
        if reason is not None:
            self._skipped(key, reason, planned)
            return (
                None,
                reason,
                f"co2 bench {index}/{len(self.order)} {planned.config.label}: skipped, {reason}",
            )
        rest = [p for p in plan.runs if p.config.key != key and p.steps]
        rest_min_s = math.fsum(p.config.cost_s(pl.FLOOR_STEPS) for p in rest)

        def budget_ok(done: int, measured_s: float) -> bool:
            if self.budget_s is None:
                return True
            left = self.budget_s - self.spent_s() - self.reserve_s
            return pl.keep_going(planned, done, measured_s, left, rest_min_s, pl.FLOOR_STEPS)

        control = StepControl(
            planned.steps,
            min(self.min_steps, planned.steps),
            self.time_budget_s,
            budget_ok,
            reduced=planned.reduced,
        )
        self.reset_peak()
        self.current = (key, control, self.clock(), self.counters(self.clock()))
        self._planned = planned
        return control, "", text

    def _skipped(self, key: str, reason: str, planned: pl.Planned) -> None:
        self.done[key] = {
            "label": planned.config.label,
            "skipped": reason,
            "needs_s": round(planned.config.cost_s(pl.FLOOR_STEPS), 1),
        }

    def finish(self, key: str) -> None:
        """Keep what the config cost; learn how fast this machine is."""
        if self.current is None or self.current[0] != key:
            return
        _, control, t0, c0 = self.current
        self.current = None
        wall = self.clock() - t0
        steps = sum(n for n, _ in control.ran)
        measured = math.fsum(s for _, s in control.ran)
        ref = self._reference(key)
        assert self._planned is not None
        if steps:
            self.observed.append((wall, ref.cost_s(steps)))
        spec = self.specs[key]
        if spec.decode_image:
            self.decoded.add(spec.decode_image)
        peak = self.peak()
        self.done[key] = {
            "label": ref.label,
            "steps": steps,
            "default_steps": self._planned.config.default_steps,
            "planned_steps": control.steps,
            "reduced": control.reduced,
            "wall_s": round(wall, 1),
            "step_s": round(measured / steps, 2) if steps else None,
            "fixed_s": round(wall - measured, 1),
            "peak_rss_gb": round(peak / host.GB, 2) if peak else None,
            "contention": host.contention(c0, self.counters(self.clock())).to_dict(),
        }
