"""The job budget of ``pytest benchmarks`` (benchmarks/planner.py, budget.py): plans, order,
skips and the progress text on a fake clock, with exact results. No torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `benchmarks`

from benchmarks import planner as pl
from benchmarks.budget import BudgetRun, Spec, StepControl
from benchmarks.host import Contention, CpuCounters, Memory


def cfg(key: str, step_s: float, fixed_s: float, default: int = 2, **kw) -> pl.Config:
    return pl.Config(key, key, step_s, fixed_s, default, "iteration", 1, **kw)


#: cheap, medium, dear: a 2D config, the 3D medium 256²x192 and the 3D large 192³ of this
#: machine (84 s a step, 183 s warm-up; 177 s, 371 s)
CHEAP = cfg("train 2d", 1.0, 3.0, default=3)
MEDIUM = cfg("train 3d-medium", 84.0, 183.0)
DEAR = cfg("train 3d-large", 177.0, 371.0)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- parsing and text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,seconds",
    [("20m", 1200.0), ("90s", 90.0), ("1.5h", 5400.0), ("1200", 1200.0), (" 2M ", 120.0)],
)
def test_budget_durations(text, seconds):
    assert pl.parse_budget(text) == seconds


def test_budget_off_and_bad_input():
    assert pl.parse_budget("off") is None
    for bad in ("20x", "0", "-5m", "", "m", "inf"):
        with pytest.raises(ValueError) as err:
            pl.parse_budget(bad)
        assert str(err.value) == (
            f"invalid --co2-bench-budget {bad!r}: expected a duration such as 20m, 90s, "
            "1.5h, 1200 (seconds) or off"
        )


def test_durations_read_as_a_person_would():
    assert [pl.fmt_duration(s) for s in (0.42, 4.2, 45, 750, 1200, 3900, 7200)] == [
        "0.4 s",
        "4.2 s",
        "45 s",
        "12 min 30 s",
        "20 min",
        "1 h 5 min",
        "2 h",
    ]


def test_default_steps_follow_the_time_budget():
    assert pl.default_steps(0.27, 2.0, 2, 50) == 8  # cheap: until 2 s are measured
    assert pl.default_steps(177.0, 2.0, 2, 50) == 2  # dear: the minimum
    assert pl.default_steps(0.001, 2.0, 2, 50) == 50  # capped


def test_steps_note():
    assert pl.steps_note(2, 3, 0.1234) == "2 steps (default 3): interval ±12%"
    assert pl.steps_note(1, 2, float("nan")) == "1 step (default 2): no interval"


# -- order --------------------------------------------------------------------------------------


def test_costliest_smallest_run_last_and_dependencies_kept():
    single = cfg("single", 1.0, 2.0)
    ddp = cfg("ddp", 0.5, 1.0, after="single")  # cheaper, but needs the single process first
    assert [c.key for c in pl.order([DEAR, ddp, MEDIUM, single, CHEAP])] == [
        "single",  # 3 s at one step
        "ddp",  # 1.5 s, right after what it needs
        "train 2d",  # 4 s
        "train 3d-medium",
        "train 3d-large",
    ]


# -- plans --------------------------------------------------------------------------------------


def test_everything_fits_default_steps():
    plan = pl.plan([CHEAP, MEDIUM, DEAR], budget_s=1500.0, spent_s=100.0, reserve_s=15.0)
    assert [(p.config.key, p.steps) for p in plan.runs] == [
        ("train 2d", 3),
        ("train 3d-medium", 2),
        ("train 3d-large", 2),
    ]
    assert plan.planned_s == 6.0 + 351.0 + 725.0
    assert plan.left_s == 1400.0


def test_short_budget_cuts_the_last_configs_first():
    # the default plan takes 6 + 351 + 725 = 1082 s; with 1000 s left (1115 - 100 - 15) the
    # dear one loses a step (725 -> 548), with 821 s left the medium one too (351 -> 267)
    plan = pl.plan([CHEAP, MEDIUM, DEAR], budget_s=1115.0, spent_s=100.0, reserve_s=15.0)
    assert [p.steps for p in plan.runs] == [3, 2, 1]
    assert [p.reduced for p in plan.runs] == [False, False, True]
    plan = pl.plan([CHEAP, MEDIUM, DEAR], budget_s=936.0, spent_s=100.0, reserve_s=15.0)
    assert [p.steps for p in plan.runs] == [3, 1, 1]
    assert plan.planned_s == 6.0 + 267.0 + 548.0


def test_what_does_not_fit_one_step_is_skipped_with_the_time_it_needs():
    # 485 s left: even one step each (4 + 267 + 548 s) does not fit; the dear one is skipped
    # and the time it frees goes back to the others (the medium one keeps its 2 steps)
    plan = pl.plan([CHEAP, MEDIUM, DEAR], budget_s=600.0, spent_s=100.0, reserve_s=15.0)
    assert [p.steps for p in plan.runs] == [3, 2, 0]
    dear = plan.runs[2]
    assert dear.skip_reason == (
        "over the budget: needs about 9 min 8 s (1 warm-up + 1 iteration), "
        "2 min 8 s of the budget left for it"
    )
    assert dear.describe() == "skipped: " + dear.skip_reason
    plan = pl.plan([CHEAP, MEDIUM, DEAR], budget_s=450.0, spent_s=100.0, reserve_s=15.0)
    assert [p.steps for p in plan.runs] == [3, 1, 0]
    assert plan.lines() == [
        "co2 bench plan: 3 configs in about 4 min 33 s of the 7 min 30 s budget, "
        "1 with fewer steps, 1 skipped",
        "  train 2d: 1 warm-up + 3 iterations, about 6.0 s",
        "  train 3d-medium: 1 warm-up + 1 iteration, about 4 min 27 s (default 2)",
        "  train 3d-large: skipped: over the budget: needs about 9 min 8 s (1 warm-up + 1 "
        "iteration), 1 min 2 s of the budget left for it",
    ]


def test_no_budget_keeps_the_fixed_steps():
    plan = pl.plan([CHEAP, MEDIUM, DEAR], budget_s=None, spent_s=5000.0)
    assert [p.steps for p in plan.runs] == [3, 2, 2]
    assert plan.lines()[0] == (
        "co2 bench plan: no budget (--co2-bench-budget=off), 3 configs, about 18 min 2 s estimated"
    )


def test_progress_text_says_what_will_run_and_the_budget_left():
    plan = pl.plan([DEAR], budget_s=1200.0, spent_s=600.0, reserve_s=15.0)
    assert pl.progress_text(plan, "train 3d-large", 31, 31) == (
        "co2 bench 31/31 train 3d-large: 1 warm-up + 1 iteration, about 9 min 8 s "
        "(default 2); 10 min of the 20 min budget left"
    )


def test_inside_a_config_one_more_step_only_while_the_rest_still_fits():
    planned = pl.Planned(MEDIUM, 2)
    assert pl.keep_going(planned, 0, 0.0, left_s=10.0, rest_min_s=0.0, min_steps=1)
    # a step took 84 s: another fits when 84 s are left beyond the rest's minimum
    assert pl.keep_going(planned, 1, 84.0, left_s=632.0, rest_min_s=548.0, min_steps=1)
    assert not pl.keep_going(planned, 1, 84.0, left_s=631.0, rest_min_s=548.0, min_steps=1)
    assert not pl.keep_going(planned, 2, 168.0, left_s=9999.0, rest_min_s=0.0)


def test_speed_factor_is_time_weighted():
    assert pl.speed_factor([], prior=0.01) == 0.01
    assert pl.speed_factor([(2.0, 1.0), (30.0, 20.0)]) == 32.0 / 21.0


def test_step_control_stops_at_the_plan_or_the_time_budget():
    c = StepControl(steps=5, min_steps=2, time_budget_s=2.0)
    assert [c.more(n, s) for n, s in [(0, 0), (1, 5.0), (2, 1.9), (2, 2.0), (5, 0.1)]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert c.more(2, 9.0, share=5)  # a round of 5 samplers: 1.8 s each
    assert not c.reduced


# -- the run: replanning on a fake clock --------------------------------------------------------


def run_of(configs: list[pl.Config], budget_s: float | None, clock: FakeClock, **kw) -> BudgetRun:
    specs = {c.key: Spec(c, kw.pop(f"rss_{c.key}", 1.0)) for c in configs}
    return BudgetRun(
        specs,
        [c.key for c in configs],
        budget_s,
        clock=clock,
        memory=kw.pop("memory", lambda: Memory(8e9, "MemAvailable")),
        rss=lambda: 1e9,
        counters=lambda t: CpuCounters(t, None, None, None),
        reset_peak=lambda: True,
        peak=lambda: 2.5e9,
        reserve_s=15.0,
        **kw,
    )


def test_a_slow_machine_gets_fewer_steps_for_the_last_config():
    clock = FakeClock()
    run = run_of([CHEAP, MEDIUM, DEAR], 1200.0, clock)
    control, reason, text = run.start("train 2d")
    assert (control.steps, reason) == (3, "")
    assert text == (
        "co2 bench 1/3 train 2d: 1 warm-up + 3 iterations, about 6.0 s; "
        "20 min of the 20 min budget left"
    )
    control.record(3, 3.0)
    clock.t += 12.0  # twice the estimate: this machine is twice as slow
    run.finish("train 2d")
    assert run.factor() == 2.0
    assert run.done["train 2d"] == {
        "label": "train 2d",
        "steps": 3,
        "default_steps": 3,
        "planned_steps": 3,
        "reduced": False,
        "wall_s": 12.0,
        "step_s": 1.0,
        "fixed_s": 9.0,
        "peak_rss_gb": 2.5,
        "contention": {"pressure": None, "steal": None},
    }
    # 1200 - 12 - 15 = 1173 s left; at x2 the medium one (534 s at one step) fits, the dear one
    # (1096 s at one step) does not: skipped now in the plan, the medium one keeps 2 steps
    control, reason, text = run.start("train 3d-medium")
    assert control.steps == 2
    assert text == (
        "co2 bench 2/3 train 3d-medium: 1 warm-up + 2 iterations, about 11 min 42 s; "
        "19 min 48 s of the 20 min budget left"
    )
    control.record(2, 336.0)
    clock.t += 702.0
    run.finish("train 3d-medium")
    control, reason, text = run.start("train 3d-large")
    assert control is None
    assert reason == (
        "over the budget: needs about 18 min 16 s (1 warm-up + 1 iteration), "
        "7 min 51 s of the budget left for it"
    )
    assert text == "co2 bench 3/3 train 3d-large: skipped: " + reason
    assert run.done["train 3d-large"]["skipped"] == reason


def test_a_config_that_runs_slower_than_planned_stops_after_one_step():
    clock = FakeClock()
    run = run_of([MEDIUM, DEAR], 1200.0, clock)
    control, _, _ = run.start("train 3d-medium")
    assert control.steps == 2  # 351 + 725 <= 1185
    clock.t += 183.0 + 300.0  # the warm-up, then one step of 300 s instead of 84
    # one more step (300 s) would leave 1185 - 483 - 300 = 402 s, under the 548 s the dear
    # config needs at one step: stop, marked as cut by the budget
    assert not control.more(1, 300.0)
    assert control.reduced


def test_memory_that_does_not_fit_skips_naming_both_figures():
    clock = FakeClock()
    run = run_of(
        [DEAR],
        None,
        clock,
        memory=lambda: Memory(5.2e9, "MemAvailable"),
        **{"rss_train 3d-large": 11.0},
    )
    control, reason, _ = run.start("train 3d-large")
    assert control is None
    assert reason == (
        "not enough memory: needs about 11.0 GB peak RSS (10.0 GB more than this process "
        "holds), 5.2 GB available (MemAvailable)"
    )


def test_contention_is_recorded_per_config():
    clock = FakeClock()
    readings = iter(
        [
            CpuCounters(1000.0, 1_000_000.0, 10.0, 1000.0),
            CpuCounters(1010.0, 5_500_000.0, 12.0, 3000.0),
        ]
    )
    run = run_of([CHEAP], None, clock)
    run.counters = lambda t: next(readings)
    control, _, _ = run.start("train 2d")
    control.record(3, 3.0)
    clock.t += 10.0
    run.finish("train 2d")
    assert run.done["train 2d"]["contention"] == {"pressure": 0.45, "steal": 0.001}
    assert Contention(0.45, 0.001).describe() == "CPU pressure 45% (some), steal 0%"
