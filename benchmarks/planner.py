"""The whole job's time budget (``--co2-bench-budget``): which configs run, in which order,
with how many measured steps. Pure: no torch, no pytest, no clock (times come in as numbers).

A config costs ``fixed_s`` (its warm-up step, building its model, a decode, spawning DDP
ranks) plus ``step_s`` per measured step. The estimates start from a reference table
(``costs.py``) scaled by how much slower or faster this machine has been so far
(:func:`speed_factor`), and are replanned before each config with the time really spent.

Order: cheapest smallest run first. Every config adds one point to a finding of the paper,
so the information per second of a config is the inverse of its cost; the costliest run
last, and it is they that lose steps first when the budget is short and are skipped
first when even one measured step does not fit.

Without pressure a config gets its default steps (what the job runs without a budget: at
least ``min_steps``, more while the per-measurement time budget lasts). Under pressure
the plan takes steps away from the last configs first, down to one measured step each
(a mean without an interval), then skips from the last until the rest fits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

#: The paper-scale default of ``--co2-bench-budget``; smoke scale uses SMOKE_BUDGET_S.
PAPER_BUDGET_S = 20 * 60.0
SMOKE_BUDGET_S = 5 * 60.0
#: Seconds kept for what follows the last config: relation checks, reports, charts.
RESERVE_S = 15.0
#: Fewest measured steps a reduced config runs (one step: a mean, no interval).
FLOOR_STEPS = 1
MAX_STEPS = 50

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_budget(text: str) -> float | None:
    """``20m``, ``90s``, ``1.5h``, ``1200`` (seconds) or ``off`` (None: the fixed steps)."""
    t = text.strip().lower()
    if t in ("off", "none", "no"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", t)
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"] if m else math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"invalid --co2-bench-budget {text!r}: expected a duration such as 20m, 90s, "
            "1.5h, 1200 (seconds) or off"
        )
    return seconds


def fmt_duration(seconds: float) -> str:
    """``4.2 s``, ``45 s``, ``12 min 30 s``, ``20 min``, ``1 h 5 min``."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min" + (f" {r} s" if r else "")
    h, r = divmod(s, 3600)
    return f"{h} h" + (f" {round(r / 60)} min" if round(r / 60) else "")


def default_steps(step_s: float, time_budget_s: float, min_steps: int, max_steps: int) -> int:
    """Measured steps without a job budget: at least ``min_steps``, more until the measured
    steps take ``time_budget_s`` (the per-measurement budget), at most ``max_steps``."""
    wanted = math.ceil(time_budget_s / step_s) if step_s > 0 else max_steps
    return max(min_steps, min(max_steps, wanted))


@dataclass(frozen=True)
class Config:
    """One measurement of the job with its cost estimate on this machine."""

    key: str  # "train/3d-large/3d-192"
    label: str  # "train 3d-large 192³"
    step_s: float  # seconds per measured step
    fixed_s: float  # seconds besides the measured steps (warm-up, build, decode, spawn)
    default_steps: int  # measured steps without a budget
    unit: str = "step"
    warmup: int = 1
    after: str = ""  # the key of a config that must run first (DDP after its single process)
    #: the per-measurement time budget and minimum steps ``default_steps`` came from (0: fixed)
    time_budget_s: float = 0.0
    min_steps: int = 2

    def cost_s(self, steps: int) -> float:
        return self.fixed_s + steps * self.step_s if steps > 0 else 0.0


@dataclass(frozen=True)
class Planned:
    """A config's share of the plan: ``steps`` measured steps, or 0 and why it is skipped."""

    config: Config
    steps: int
    skip_reason: str = ""

    @property
    def cost_s(self) -> float:
        return self.config.cost_s(self.steps)

    @property
    def reduced(self) -> bool:
        return 0 < self.steps < self.config.default_steps

    def describe(self) -> str:
        """``1 warm-up + 2 iterations, about 4 min 12 s`` (or the skip reason)."""
        c = self.config
        if not self.steps:
            return f"skipped: {self.skip_reason}"
        text = (
            f"{c.warmup} warm-up + {self.steps} {c.unit}{'s' * (self.steps != 1)}, "
            f"about {fmt_duration(self.cost_s)}"
        )
        if self.reduced:
            text += f" (default {c.default_steps})"
        return text


@dataclass(frozen=True)
class Plan:
    runs: tuple[Planned, ...]  # run order, skips included
    budget_s: float | None
    spent_s: float

    @property
    def planned_s(self) -> float:
        return math.fsum(p.cost_s for p in self.runs)

    @property
    def left_s(self) -> float:
        return math.inf if self.budget_s is None else self.budget_s - self.spent_s

    def get(self, key: str) -> Planned | None:
        return next((p for p in self.runs if p.config.key == key), None)

    def lines(self) -> list[str]:
        """The plan as printed before the first config runs."""
        if self.budget_s is None:
            head = (
                f"co2 bench plan: no budget (--co2-bench-budget=off), {len(self.runs)} configs, "
                f"about {fmt_duration(self.planned_s)} estimated"
            )
        else:
            skipped = sum(not p.steps for p in self.runs)
            reduced = sum(p.reduced for p in self.runs)
            head = (
                f"co2 bench plan: {len(self.runs)} configs in about {fmt_duration(self.planned_s)} "
                f"of the {fmt_duration(self.budget_s)} budget"
                + (f", {reduced} with fewer steps" if reduced else "")
                + (f", {skipped} skipped" if skipped else "")
            )
        return [head] + [f"  {p.config.label}: {p.describe()}" for p in self.runs]


def order(configs: Iterable[Config]) -> list[Config]:
    """Cheapest smallest run (its warm-up + one measured step) first; a config with ``after``
    right after the config it needs when it would otherwise come first."""
    ranked = sorted(configs, key=lambda c: c.cost_s(FLOOR_STEPS))
    out: list[Config] = []
    waiting: dict[str, list[Config]] = {}
    placed: set[str] = set()
    keys = {c.key for c in ranked}

    def place(c: Config) -> None:
        out.append(c)
        placed.add(c.key)
        for d in waiting.pop(c.key, []):
            place(d)

    for c in ranked:
        if c.after and c.after in keys and c.after not in placed:
            waiting.setdefault(c.after, []).append(c)
        else:
            place(c)
    for rest in waiting.values():  # a dependency that never came: keep them, in rank order
        out.extend(rest)
    return out


def plan(
    configs: Sequence[Config],
    budget_s: float | None,
    spent_s: float = 0.0,
    reserve_s: float = RESERVE_S,
) -> Plan:
    """Steps per config (in the given run order) so that the rest of the job fits the budget.

    Default steps where they fit; else the last configs lose steps first, down to
    :data:`FLOOR_STEPS`; where even that does not fit, the last configs are skipped, each
    with the time it would need and the time left for it, and the time a skip frees goes
    back to the configs before it as steps.
    """
    steps = [c.default_steps for c in configs]
    if budget_s is None:
        return Plan(
            tuple(Planned(c, n) for c, n in zip(configs, steps, strict=True)), None, spent_s
        )
    left = budget_s - spent_s - reserve_s

    def total() -> float:
        return math.fsum(c.cost_s(n) for c, n in zip(configs, steps, strict=True))

    for i in reversed(range(len(configs))):
        over = total() - left
        if over <= 0:
            break
        c = configs[i]
        cut = min(steps[i] - FLOOR_STEPS, math.ceil(over / c.step_s) if c.step_s > 0 else 0)
        steps[i] -= max(0, cut)
    skipped = []
    for i in reversed(range(len(configs))):
        if total() <= left:
            break
        steps[i] = 0
        skipped.append(i)
    # what a skip freed goes back to the configs before it, first come first served
    for i, c in enumerate(configs):
        while 0 < steps[i] < c.default_steps and total() + c.step_s <= left:
            steps[i] += 1
    reasons = [""] * len(configs)
    for i in skipped:
        c = configs[i]
        before = math.fsum(configs[j].cost_s(steps[j]) for j in range(i))
        reasons[i] = (
            f"over the budget: needs about {fmt_duration(c.cost_s(FLOOR_STEPS))} "
            f"({c.warmup} warm-up + 1 {c.unit}), "
            f"{fmt_duration(max(0.0, left - before))} of the budget left for it"
        )
    runs = tuple(Planned(c, n, r) for c, n, r in zip(configs, steps, reasons, strict=True))
    return Plan(runs, budget_s, spent_s)


def keep_going(
    planned: Planned,
    done: int,
    measured_s: float,
    left_s: float,
    rest_min_s: float,
    min_steps: int = 2,
) -> bool:
    """Inside a config, after ``done`` measured steps that took ``measured_s``: one more?

    Up to the planned steps; after ``min_steps`` (or the plan's steps when fewer) only while
    one more step at the mean so far still leaves ``rest_min_s`` (the remaining configs at
    one step each) within ``left_s`` (the budget left now)."""
    if done >= planned.steps:
        return False
    if done < min(min_steps, planned.steps) or done == 0:
        return True
    return measured_s / done <= left_s - rest_min_s


def speed_factor(observed: Iterable[tuple[float, float]], prior: float = 1.0) -> float:
    """This machine's seconds over the reference table's, from (observed, reference) pairs
    of the configs run so far (time-weighted: the long configs count most); ``prior``
    before anything ran."""
    pairs = [(o, r) for o, r in observed if o > 0 and r > 0]
    if not pairs:
        return prior
    return math.fsum(o for o, _ in pairs) / math.fsum(r for _, r in pairs)


def scaled(config: Config, factor: float) -> Config:
    """The config's estimate on this machine (reference table x ``factor``); its default
    steps follow the scaled step where they come from a per-measurement time budget."""
    step = config.step_s * factor
    default = config.default_steps
    if config.time_budget_s > 0:
        default = default_steps(step, config.time_budget_s, config.min_steps, MAX_STEPS)
    return replace(config, step_s=step, fixed_s=config.fixed_s * factor, default_steps=default)


def progress_text(plan: Plan, key: str, index: int, count: int) -> str:
    """The line printed when a config starts: what will run and the budget left."""
    p = plan.get(key)
    if p is None:
        return ""
    if not p.steps:
        return f"co2 bench {index}/{count} {p.config.label}: {p.describe()}"
    left = (
        ""
        if plan.budget_s is None
        else f"; {fmt_duration(max(0.0, plan.left_s))} of the "
        f"{fmt_duration(plan.budget_s)} budget left"
    )
    return f"co2 bench {index}/{count} {p.config.label}: {p.describe()}{left}"


def steps_note(steps: int, default: int, rel_ci95: float) -> str:
    """``2 steps (default 3): interval ±12%``, ``1 step (default 2): no interval``."""
    head = f"{steps} step{'s' * (steps != 1)} (default {default})"
    if steps < 2 or not math.isfinite(rel_ci95):
        return f"{head}: no interval"
    return f"{head}: interval ±{rel_ci95:.0%}"
