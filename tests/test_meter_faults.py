"""The meter under bad input and failing hardware: clear errors for misuse, partial records
(never an exception from measured data) for devices that fail, reset or go away."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pytest

from pytest_co2.backends.base import Backend, Device, Method
from pytest_co2.measure.guard import MAX_READING_J, ReadingError, check_reading
from pytest_co2.measure.meter import Meter
from pytest_co2.measure.window import WindowError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Scripted(Backend):
    """Two counter devices whose readings (or exceptions) are given step by step."""

    name = "scripted"

    def __init__(self, clock: Clock, rows: list[object], power: list[object] | None = None) -> None:
        super().__init__()
        self.clock, self.rows, self.power = clock, list(rows), power
        self.devices = (
            Device("gpu:0", "gpu", "GPU 0", Method.COUNTER),
            Device("gpu:1", "gpu", "GPU 1", Method.COUNTER),
        )

    def read_j(self) -> Sequence[float]:
        row = self.rows.pop(0)
        self.clock.t += 1.0
        if isinstance(row, BaseException):
            raise row
        return row  # type: ignore[return-value]

    def read_power_w(self) -> Sequence[float] | None:
        return None if self.power is None else self.power.pop(0)  # type: ignore[return-value]


def meter_with(rows: list[object], **kw: object) -> tuple[Meter, list[str]]:
    clock = Clock()
    warned: list[str] = []
    meter = Meter(Scripted(clock, rows, **kw), sync=lambda: None, clock=clock)  # type: ignore[arg-type]
    meter.warn = warned.append
    return meter, warned


@pytest.mark.parametrize("units", [0, -1, math.nan, math.inf, "3", True])
def test_bad_units_are_a_clear_error(units: object) -> None:
    meter, _ = meter_with([(0.0, 0.0)] * 3)
    with (
        meter.measure("m") as w,
        pytest.raises(
            ValueError, match=r"invalid units .* for step\(\): expected a finite number > 0"
        ),
    ):
        w.step(units)  # type: ignore[arg-type]


def test_batched_units_divide_the_energy() -> None:
    meter, _ = meter_with([(0.0, 0.0), (64.0, 0.0), (160.0, 0.0)])
    with meter.measure("m", unit="sample") as w:
        w.step(units=32)
        w.step(units=16)
    (m,) = meter.measurements
    assert m.unit_energies_j == (2.0, 6.0) and m.units == 48.0
    assert m.energy_per_unit_j.mean == 160.0 / 48


def test_nested_and_unentered_windows_are_errors() -> None:
    meter, _ = meter_with([(0.0, 0.0)] * 4)
    with meter.measure("outer"), pytest.raises(WindowError, match="'inner' started inside 'outer'"):
        meter.measure("inner").__enter__()
    w = meter.measure("never")
    with pytest.raises(
        WindowError, match=r"step\(\) on measurement 'never' outside its with-block \(new\)"
    ):
        w.step()
    with pytest.raises(WindowError, match=r"outside its with-block \(closed\)"):
        closed = meter.measure("closed")
        with closed:
            pass
        closed.step()


def test_a_device_that_fails_mid_run_ends_the_window_as_partial() -> None:
    lost = RuntimeError("GPU is lost")
    meter, warned = meter_with([(0.0, 0.0), (10.0, 1.0), (20.0, 2.0), lost])
    with meter.measure("m") as w:
        w.step()
        w.step()
        w.step()  # the backend raises here: no exception reaches the test
        w.step()  # ignored after the failure
    (m,) = meter.measurements
    assert (m.steps, m.energy_j, m.complete) == (2, 22.0, False)
    assert "partial: the energy backend failed (RuntimeError: GPU is lost)" in m.notes
    assert warned == [
        "pytest-co2: the energy backend failed during measurement 'm' (RuntimeError: GPU is lost); "
        "the steps measured before are kept, marked partial"
    ]


def test_a_backend_failing_at_the_start_records_nothing_and_warns() -> None:
    meter, warned = meter_with([OSError(5, "Input/output error")])
    with meter.measure("m") as w:
        w.step()
    assert meter.measurements == [] and len(warned) == 1 and "OSError" in warned[0]


def test_a_counter_that_goes_backwards_stops_counting_that_device() -> None:
    # GPU 1 resets after the second step (driver reload): its later readings are ignored
    meter, _ = meter_with(
        [(100.0, 500.0), (110.0, 510.0), (120.0, 520.0), (130.0, 3.0), (140.0, 8.0)]
    )
    with meter.measure("m") as w:
        for _ in range(4):
            w.step()
    (m,) = meter.measurements
    assert [d.energy_j for d in m.devices] == [40.0, 20.0]
    assert m.unit_energies_j == (20.0, 20.0, 10.0, 10.0) and m.energy_j == 60.0
    assert any(n.startswith("GPU 1: its counter went from 520 J to 3 J") for n in m.notes)
    assert all(x >= 0 for x in m.unit_energies_j)


def test_nan_readings_are_not_a_silent_zero() -> None:
    meter, _ = meter_with([(0.0, 0.0), (5.0, math.nan), (10.0, 7.0)])
    with meter.measure("m") as w:
        w.step()
        w.step()
    (m,) = meter.measurements
    assert [d.energy_j for d in m.devices] == [10.0, 0.0]
    assert any("GPU 1: its counter went from 0 J to nan J" in n for n in m.notes)


def test_close_open_ends_a_steps_loop_left_by_an_exception() -> None:
    meter, _ = meter_with([(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0)])
    loop = meter.steps(10, name="train")
    with pytest.raises(ZeroDivisionError):
        for k in loop:
            if k == 2:
                1 / 0  # noqa: B018 (the test raises inside the loop)
    assert meter.measurements == []  # the generator is still suspended, the window open
    assert meter.close_open("the test ended before this measurement did") == 1
    (m,) = meter.measurements
    assert (m.name, m.steps, m.complete) == ("train", 2, False)
    assert "partial: the test ended before this measurement did" in m.notes
    assert meter.close_open("again") == 0


def test_a_break_out_of_steps_is_complete() -> None:
    meter, _ = meter_with([(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)])
    for k in meter.steps(10):
        if k == 1:
            break
    (m,) = meter.measurements
    assert (m.steps, m.complete) == (1, True)


def test_short_windows_use_instant_power_times_time() -> None:
    clock = Clock()

    class Slow(Scripted):
        def __init__(self) -> None:
            super().__init__(
                clock, [(0.0, 0.0), (0.0, 50.0)], power=[[200.0, math.nan], [300.0, math.nan]]
            )
            self.devices = (
                Device("gpu:0", "gpu", "GPU 0", Method.COUNTER, update_period_s=0.1),
                Device("gpu:1", "gpu", "GPU 1", Method.COUNTER, update_period_s=0.0),
            )

    meter = Meter(Slow(), sync=lambda: None, clock=clock)
    with meter.measure("m"):
        pass
    (m,) = meter.measurements
    # 1 s window on a 100 ms counter is 10 periods: long enough, the counter is used
    assert [d.energy_j for d in m.devices] == [0.0, 50.0]

    clock2 = Clock()

    class Fast(Scripted):
        def __init__(self) -> None:
            super().__init__(
                clock2, [(0.0, 0.0), (0.0, 50.0)], power=[[200.0, math.nan], [300.0, math.nan]]
            )
            self.devices = (
                Device("gpu:0", "gpu", "GPU 0", Method.COUNTER, update_period_s=0.2),
                Device("gpu:1", "gpu", "GPU 1", Method.COUNTER, update_period_s=0.0),
            )

    meter = Meter(Fast(), sync=lambda: None, clock=clock2)
    with meter.measure("m"):
        pass
    (m,) = meter.measurements
    # 1 s on a 200 ms counter is 5 periods: GPU 0 is (200 + 300) / 2 W x 1 s, GPU 1 its counter
    assert [d.energy_j for d in m.devices] == [250.0, 50.0] and m.energy_j == 300.0
    assert any("instant power x time" in n and n.endswith("for GPU 0") for n in m.notes)


@pytest.mark.parametrize(
    ("values", "n", "expected"),
    [
        ((1.0, 2.0), 2, (1.0, 2.0)),
        ((-MAX_READING_J, MAX_READING_J), 2, (-MAX_READING_J, MAX_READING_J)),
        ([1, 2.5], 2, (1.0, 2.5)),  # a list, an int: converted
        ((True, 1.0), 2, "for device 0: expected a number"),
        ((1.0, math.nan), 2, "returned nan for device 1: expected a finite number"),
        ((math.nan, 1.0), 2, "returned nan for device 0: expected a finite number"),
        ((1.0, math.inf), 2, "returned inf for device 1"),
        ((-math.inf, math.inf), 2, "returned -inf for device 0"),
        ((1.0, 2 * MAX_READING_J), 2, "returned 2e+18 for device 1"),
        ((-2 * MAX_READING_J,), 1, "returned -2e+18 for device 0"),
        ((1.0,), 2, "returned 1 values for 2 device(s)"),
        ((), 0, ()),
        (None, 1, "returned None: expected a list of 1 numbers"),
    ],
)
def test_check_reading_passes_floats_within_the_bound_and_names_what_is_wrong(
    values: object, n: int, expected: object
) -> None:
    """The boundary check's fast path (a tuple of floats, as is) and its slow path give the
    same verdicts: NaN anywhere, either infinity, a value past the bound in either direction,
    a bool."""
    if isinstance(expected, str):
        with pytest.raises(ReadingError, match=re.escape(expected)):
            check_reading(values, n)
    else:
        out = check_reading(values, n)
        assert out == expected and out.__class__ is tuple
        assert all(v.__class__ is float for v in out)


def test_check_reading_converts_a_float_subclass() -> None:
    class Joules(float):
        pass

    out = check_reading((Joules(3.0),), 1)
    assert out == (3.0,) and out[0].__class__ is float
