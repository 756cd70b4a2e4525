"""The meter: windows, warm-up, grouping of short steps, statistics, projection, records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_co2.backends.base import Backend, Device, Method
from pytest_co2.backends.constant import ConstantBackend
from pytest_co2.meter import Measurement, Meter, Stats, group_windows, t975


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class QuantizedCounter(Backend):
    """A counter device at ``power_w`` whose reading only updates every ``period_s``."""

    name = "quantized"

    def __init__(self, clock: Clock, power_w: float, period_s: float) -> None:
        super().__init__()
        self.clock, self.power_w, self.period_s = clock, power_w, period_s
        self.devices = (
            Device("gpu:0", "gpu", "fake GPU", Method.COUNTER, update_period_s=period_s),
        )

    def read_j(self) -> Sequence[float]:
        ticks = math.floor(self.clock() / self.period_s + 1e-9)
        return (ticks * self.period_s * self.power_w,)


def make(power_w: float = 100.0, **kw: object) -> tuple[Meter, Clock]:
    clock = Clock()
    return Meter(ConstantBackend(power_w, clock=clock), sync=lambda: None, **kw), clock  # type: ignore[arg-type]


def test_steps_warmup_and_stats_are_exact() -> None:
    meter, clock = make(extrapolate={"iteration": 1000})
    durations = iter([9.0, 9.0, 0.1, 0.3, 0.1, 0.3])  # two slow warm-up steps, then 4 measured
    for _ in meter.steps(4, warmup=2, name="train"):
        clock.advance(next(durations))
    (m,) = meter.measurements
    assert (m.steps, m.warmup, m.windows) == (4, 2, 4)
    assert m.duration_s == pytest.approx(0.8)
    assert m.energy_j == pytest.approx(80.0)
    assert m.unit_energies_j == pytest.approx((10.0, 30.0, 10.0, 30.0))
    s = m.energy_per_unit_j
    assert s.mean == pytest.approx(20.0)
    assert s.std == pytest.approx(math.sqrt(400 / 3))
    assert s.sem == pytest.approx(math.sqrt(400 / 3) / 2)
    p = meter.projection_of(m)
    assert p.n == 1000 and not p.measured
    assert p.energy_j == pytest.approx(20000.0)
    assert p.std_kwh == pytest.approx(math.sqrt(400 / 3) * 1000 / 3.6e6)
    assert p.ci95_kwh == pytest.approx(t975(3) * math.sqrt(400 / 3) / 2 * 1000 / 3.6e6)


def test_step_with_several_units() -> None:
    meter, clock = make()
    with meter.measure("batch", unit="sample") as w:
        for _ in range(3):
            clock.advance(0.4)
            w.step(4)  # a batch of 4 samples
    m = w.measurement
    assert m is not None and m.units == 12 and m.steps == 3
    assert m.energy_per_unit_j.mean == pytest.approx(10.0)
    assert w.projection.n == 12 and w.projection.measured


def test_block_without_steps_is_one_unit() -> None:
    meter, clock = make()
    with meter.measure("call", unit="call") as w:
        clock.advance(2.0)
    m = w.measurement
    assert m is not None and (m.steps, m.windows, m.energy_j) == (1, 1, pytest.approx(200.0))
    assert math.isnan(m.energy_per_unit_j.std)  # one window: the spread is unknown, not 0


def test_time_budget_stops_early_after_min_steps() -> None:
    meter, clock = make()
    done = 0
    for _ in meter.steps(100, warmup=1, time_budget_s=1.0, min_steps=2):
        clock.advance(0.4)
        done += 1
    (m,) = meter.measurements
    assert done == 1 + 3 and m.steps == 3  # 0.4 + 0.4 < 1.0 <= 1.2


def test_exception_keeps_partial_steps() -> None:
    meter, clock = make()
    with pytest.raises(RuntimeError), meter.measure("train") as w:
        for i in range(5):
            clock.advance(0.1)
            w.step()
            if i == 1:
                raise RuntimeError("boom")
    (m,) = meter.measurements
    assert not m.complete and m.steps == 2 and m.energy_j == pytest.approx(20.0)
    assert any("incomplete" in n for n in m.notes)


def test_names_are_made_unique() -> None:
    meter, clock = make()
    for _ in range(2):
        with meter.measure("x") as w:
            clock.advance(0.1)
            w.step()
    assert [m.name for m in meter.measurements] == ["x", "x#2"]


def test_short_steps_are_grouped_for_a_slow_counter() -> None:
    clock = Clock()
    meter = Meter(QuantizedCounter(clock, 100.0, period_s=0.1), sync=lambda: None)
    with meter.measure("fast") as w:
        for _ in range(100):
            clock.advance(0.01)  # 10 ms steps on a 100 ms counter
            w.step()
    m = w.measurement
    assert m is not None
    assert m.windows == 1  # 1 s in all < 10 x 100 ms per window: one window, spread unknown
    assert m.energy_j == pytest.approx(100.0)
    assert any("grouped" in n for n in m.notes)


def test_ten_ms_region_on_a_1ms_counter_is_within_10_percent() -> None:
    clock = Clock()
    clock.advance(0.0004)  # start between two counter updates
    meter = Meter(QuantizedCounter(clock, 50.0, period_s=0.001), sync=lambda: None)
    with meter.measure("tiny") as w:
        clock.advance(0.010)
    m = w.measurement
    assert m is not None
    assert abs(m.energy_j - 0.5) / 0.5 <= 0.10


def test_group_windows() -> None:
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55]
    assert group_windows(times, [1] * 6, 0.0) == [(i, i + 1) for i in range(6)]
    assert group_windows(times, [1] * 6, 0.2) == [(0, 2), (2, 6)]  # remainder merged into the last
    assert group_windows([0.0, 0.05], [1], 1.0) == [(0, 1)]
    assert group_windows([0.0], [], 1.0) == []


def test_round_trip_and_combine() -> None:
    meter, clock = make(extrapolate={"iteration": 10})
    for _ in meter.steps(3):
        clock.advance(0.5)
    m = meter.measurements[0]
    assert Measurement.from_dict(m.to_dict()) == m
    both = Measurement.combine([m, m], nodes=1)
    assert both.energy_j == pytest.approx(2 * m.energy_j)
    assert both.ranks == 2 and both.steps == m.steps
    assert both.unit_energies_j == pytest.approx(tuple(2 * x for x in m.unit_energies_j))
    assert len(both.devices) == 2


def test_bad_arguments_are_clear() -> None:
    meter, _ = make()
    with pytest.raises(ValueError, match=r"invalid warmup -1: expected an integer >= 0"):
        meter.measure(warmup=-1)
    with pytest.raises(ValueError, match=r"invalid extrapolate 0: expected an integer >= 1"):
        meter.measure(extrapolate=0)
    with pytest.raises(ValueError, match=r"invalid number of steps 0"):
        next(meter.steps(0))


def test_results_before_the_block_ends_are_an_error() -> None:
    meter, _ = make()
    with meter.measure("x") as w, pytest.raises(RuntimeError, match="still running"):
        _ = w.projection


@given(
    per_unit=st.lists(st.floats(0.01, 1e4), min_size=2, max_size=20),
    n=st.integers(1, 10**7),
    k=st.integers(1, 1000),
)
def test_projection_is_linear_in_n(per_unit: list[float], n: int, k: int) -> None:
    total = math.fsum(per_unit)
    s = Stats.of(per_unit, total, len(per_unit))
    m = Measurement(
        name="x",
        unit="iteration",
        steps=len(per_unit),
        units=len(per_unit),
        warmup=0,
        duration_s=1.0,
        energy_j=total,
        energy_per_unit_j=s,
        unit_energies_j=tuple(per_unit),
        method="simulated",
        devices=(),
        backend="t",
    )
    a, b = m.project(n), m.project(n * k)
    assert b.energy_kwh == pytest.approx(a.energy_kwh * k, rel=1e-12)
    assert b.std_kwh == pytest.approx(a.std_kwh * k, rel=1e-12)
    assert b.ci95_kwh == pytest.approx(a.ci95_kwh * k, rel=1e-12)


def test_idle_power_is_measured_and_subtracted() -> None:
    from pytest_co2.meter import measure_idle_w

    clock = Clock()
    backend = ConstantBackend(30.0, clock=clock)
    assert measure_idle_w(backend, 2.0, sleep=clock.advance) == pytest.approx((30.0,))
    meter = Meter(ConstantBackend(100.0, clock=clock), sync=lambda: None, idle_w=(30.0,))
    with meter.measure("train") as w:
        for dt in (0.5, 1.5):
            clock.advance(dt)
            w.step()
    m = w.measurement
    assert m is not None
    assert m.energy_j == pytest.approx(70.0 * 2.0)  # (100 - 30) W x 2 s
    assert m.unit_energies_j == pytest.approx((35.0, 105.0))
    assert m.devices[0].energy_j == pytest.approx(140.0)
    assert any(
        "idle power 30 W (measured at start) subtracted: 60 J of 200 J" in n for n in m.notes
    )


def test_below_idle_is_clamped_with_a_note() -> None:
    clock = Clock()
    meter = Meter(ConstantBackend(10.0, clock=clock), sync=lambda: None, idle_w=(30.0,))
    with meter.measure("x") as w:
        clock.advance(1.0)
    m = w.measurement
    assert m is not None and m.energy_j == 0.0 and m.unit_energies_j == (0.0,)
    assert any("below idle" in n for n in m.notes)


class WallPlusWork(Backend):
    """A simulated CPU estimate: ``wall_w`` per wall second plus the work each step adds."""

    name = "wall+work"

    def __init__(self, clock: Clock, wall_w: float) -> None:
        super().__init__()
        self.clock, self.wall_w, self.work_j = clock, wall_w, 0.0
        self.devices = (Device("cpu:0", "cpu", "fake CPU", Method.SIMULATED, update_period_s=0.0),)

    def read_j(self) -> Sequence[float]:
        return (self.wall_w * self.clock() + self.work_j,)


def work_steps(works: Sequence[float], step_s: float, stop_on_work: bool) -> Measurement:
    """A ``steps(2)`` loop at 5% precision over a 50 W wall charge, each step ``step_s``
    seconds doing ``works[i]`` J of work; its one measurement."""
    clock = Clock()
    backend = WallPlusWork(clock, 50.0)
    meter = Meter(backend, sync=lambda: None, precision=0.05, max_time_s=100.0, clock=clock)
    meter.stop_on_work = stop_on_work
    for i in meter.steps(2, name="train"):
        clock.advance(step_s)
        backend.work_j += works[i]
    (m,) = meter.measurements
    return m


@pytest.mark.parametrize("on_work", [False, True])
def test_steps_can_aim_the_precision_at_the_work_part(on_work: bool) -> None:
    """Work of 9 or 11 J a step over a 50 W wall charge: the full figure (59/61 J) is within
    5% after 6 windows; the work part (9/11 J, CV 10%) needs 44."""
    from pytest_co2.measure.stopping import StopRule

    works = [9.0, 11.0] * 50
    m = work_steps(works, 1.0, on_work)
    rule = StopRule(precision=0.05, max_time_s=100.0, method="trimmed")
    aimed = works if on_work else [50.0 + w for w in works]
    expected = next(n for n in range(5, 100) if rule.check(aimed[:n], n).stop)
    assert m.steps == expected == (44 if on_work else 6)
    assert m.work_unit_energies_j == tuple(works[: m.steps])
    note = "(of the CPU work part, which a compare decides on)"
    assert any(n.endswith(note) for n in m.notes) == on_work


def test_a_deferred_window_is_assembled_later_as_it_was() -> None:
    """The plugin's per-test call window under --co2-all keeps its readings and is assembled
    at the end of the run: into the same record as at once, with the backend's devices and
    notes as they were when it closed; never handed to the meter."""
    from pytest_co2.measure.assemble import assemble
    from pytest_co2.measure.window import Window

    meter, clock = make(50.0)
    recorded: list[Measurement] = []
    meter._on_record = recorded.append
    window = Window(meter, "call", "call", 0, None, None)
    window.deferred = True
    with window:
        clock.advance(2.0)
    meter.backend.notes.append("a note added after the window closed")
    assert window.measurement is None and meter.measurements == [] and recorded == []
    assert window.ended is not None
    m = assemble(window.ended)
    with meter.measure("call", unit="call") as at_once:
        clock.advance(2.0)
    assert at_once.measurement is not None
    assert at_once.measurement.notes == (*m.notes, "a note added after the window closed")
    assert replace(at_once.measurement, notes=m.notes) == m
    assert (m.energy_j, m.duration_s, m.steps) == (100.0, 2.0, 1)
    assert recorded == [at_once.measurement]


def test_a_gating_run_measures_long_enough_to_show_drift() -> None:
    """Work of 9.9 or 10.1 J a step (CV 1%) is within 5% after 5 windows, but a run that
    saves or compares a baseline goes on until 2 s and 12 windows are measured (0.25 s a
    step: 12 steps, 3 s), and says why; a run that does not gate stops at 5."""
    from pytest_co2.measure.steps import GATE_MIN_S

    for gating, expected in ((False, 5), (True, 12)):
        m = work_steps([9.9, 10.1] * 50, 0.25, gating)
        assert m.steps == expected
        held = [n for n in m.notes if "to show the machine's drift" in n]
        assert len(held) == gating
        if gating:
            assert held[0].endswith(
                f"; measured for at least {GATE_MIN_S:g} s and 12 windows, to show the "
                "machine's drift"
            )


_READING = st.one_of(
    st.floats(min_value=-1e3, max_value=1e3),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
)


@given(
    st.integers(min_value=1, max_value=3).flatmap(
        lambda n: st.tuples(
            st.lists(_READING, min_size=n, max_size=n), st.lists(_READING, min_size=n, max_size=n)
        )
    )
)
def test_a_one_step_window_is_made_monotone_as_a_longer_one(pair: tuple[list[float], ...]) -> None:
    """One step (two readings) takes a short path: the same readings and notes as the loop
    gives for the same two readings followed by a repeat of the last (which adds nothing)."""
    from pytest_co2.measure.assemble import monotone

    first, last = pair
    devices = [Device(f"d{i}", "cpu", f"dev {i}", Method.COUNTER) for i in range(len(first))]
    short = monotone([first, last], devices)
    longer = monotone([first, last, last], devices)
    assert (short[0], short[1]) == (longer[0][:2], longer[1])
    assert all(type(r) is tuple for r in short[0])


@given(st.floats(min_value=0, max_value=10), st.floats(min_value=-1, max_value=100))
def test_one_step_is_one_group_whatever_its_length(length_s: float, min_window_s: float) -> None:
    assert group_windows([5.0, 5.0 + length_s], [3], min_window_s) == [(0, 1)]
