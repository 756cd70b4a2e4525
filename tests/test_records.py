"""Exact tests of the measurement records and their statistics: data chosen so that a
wrong formula (a sign, a ``*`` for a ``/``, a default) changes a figure that is asserted."""

from __future__ import annotations

import json
import math

import pytest

from pytest_co2.backends.base import Device, Method
from pytest_co2.constants import J_PER_KWH
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats, json_num, num, t975, t_quantile

# -- t975 ------------------------------------------------------------------------------------


def test_t975_table_is_the_exact_quantile_to_3_decimals() -> None:
    for df in range(1, 31):
        assert t975(df) == round(t_quantile(0.975, df), 3), df


@pytest.mark.parametrize(
    ("df", "t"), [(31, 2.0395), (40, 2.0211), (60, 2.0003), (120, 1.9799), (1000, 1.9623)]
)
def test_t975_above_30_degrees_of_freedom_is_exact_not_1_96(df: int, t: float) -> None:
    assert round(t975(df), 4) == t
    assert t975(df) == t_quantile(0.975, df)


def test_t975_ends() -> None:
    assert (t975(1), t975(30)) == (12.706, 2.042)
    assert math.isnan(t975(0)) and math.isnan(t975(-3))


# -- Stats -----------------------------------------------------------------------------------


def test_stats_of_windows() -> None:
    s = Stats.of([1.0, 2.0, 6.0], total_j=27.0, total_units=9.0)
    assert (s.mean, s.n) == (3.0, 3)  # total / units, not the mean of the windows (3.0 too)
    assert s.std == math.sqrt(7.0)  # ((1-3)^2 + (2-3)^2 + (6-3)^2) / (3 - 1)
    assert s.sem == math.sqrt(7.0) / math.sqrt(3)
    other = Stats.of([1.0, 2.0, 6.0], total_j=10.0, total_units=4.0)
    assert other.mean == 2.5 and other.std == math.sqrt(7.0)


def test_stats_of_one_window_and_no_units() -> None:
    one = Stats.of([4.0], total_j=8.0, total_units=2.0)
    assert (one.mean, one.n) == (4.0, 1) and math.isnan(one.std) and math.isnan(one.sem)
    none = Stats.of([], total_j=0.0, total_units=0.0)
    assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.std)
    two = Stats.of([1.0, 3.0], total_j=4.0, total_units=2.0)
    assert (two.std, two.sem, two.n) == (math.sqrt(2.0), 1.0, 2)


def test_stats_round_trip_through_json() -> None:
    s = Stats(mean=2.0, std=0.5, sem=0.25, n=4)
    assert s.to_dict() == {"mean": 2.0, "std": 0.5, "sem": 0.25, "n": 4}
    assert Stats.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    unknown = Stats(mean=2.0, std=math.nan, sem=math.nan, n=1)
    assert unknown.to_dict() == {"mean": 2.0, "std": None, "sem": None, "n": 1}
    back = Stats.from_dict({"mean": "2"})  # an old record: no spread, no window count
    assert back.mean == 2.0 and back.n == 0 and math.isnan(back.std) and math.isnan(back.sem)


def test_json_num_and_num() -> None:
    assert json_num(None) is None
    assert json_num(math.nan) is None and json_num(math.inf) is None and json_num(-math.inf) is None
    assert json_num(1.5) == 1.5 and json_num(0.0) == 0.0
    assert json_num(3) == 3  # an int is finite
    assert math.isnan(num(None)) and num("2.5") == 2.5 and num(0) == 0.0


# -- Projection, DeviceEnergy ----------------------------------------------------------------


def test_projection_round_trip() -> None:
    p = Projection(n=10, unit="step", energy_kwh=2.0, std_kwh=0.5, ci95_kwh=0.25, measured=True)
    assert p.energy_j == 2.0 * J_PER_KWH
    d = p.to_dict()
    assert d == {
        "n": 10,
        "unit": "step",
        "energy_kwh": 2.0,
        "std_kwh": 0.5,
        "ci95_kwh": 0.25,
        "measured": True,
    }
    assert Projection.from_dict(d) == p
    old = Projection.from_dict({"n": "3", "unit": "x", "energy_kwh": "1"})
    assert (old.n, old.unit, old.energy_kwh, old.measured) == (3, "x", 1.0, False)
    assert math.isnan(old.std_kwh) and math.isnan(old.ci95_kwh)
    nan = Projection(n=1, unit="x", energy_kwh=1.0, std_kwh=math.nan, ci95_kwh=math.nan)
    assert (nan.to_dict()["std_kwh"], nan.to_dict()["ci95_kwh"], nan.measured) == (
        None,
        None,
        False,
    )


GPU = Device("gpu:0", "gpu", "fake GPU", Method.COUNTER, update_period_s=0.1, shared=True)
CPU = Device("cpu:process", "cpu", "estimate", Method.ESTIMATED, shared=False)


def test_device_energy_round_trip() -> None:
    d = DeviceEnergy(GPU, 12.5)
    assert d.to_dict() == {**GPU.to_dict(), "energy_j": 12.5}
    assert DeviceEnergy.from_dict(d.to_dict()) == d


# -- Measurement -----------------------------------------------------------------------------


def measurement(
    unit_energies: tuple[float, ...] = (1.0, 2.0, 6.0),
    units: float = 9.0,
    energy_j: float = 27.0,
    **kw: object,
) -> Measurement:
    fields: dict[str, object] = {
        "name": "train",
        "unit": "sample",
        "steps": 3,
        "units": units,
        "warmup": 1,
        "duration_s": 4.0,
        "energy_j": energy_j,
        "energy_per_unit_j": Stats.of(unit_energies, energy_j, units),
        "unit_energies_j": unit_energies,
        "method": "counter",
        "devices": (DeviceEnergy(GPU, energy_j),),
        "backend": "nvml",
    }
    fields.update(kw)
    return Measurement(**fields)  # type: ignore[arg-type]


def test_measurement_windows_power_and_round_trip() -> None:
    m = measurement(notes=("a",), extrapolate=100, complete=False, ranks=2, nodes=2)
    assert m.windows == 3 and m.mean_power_w == 27.0 / 4.0
    assert math.isnan(measurement(duration_s=0.0).mean_power_w)
    d = m.to_dict()
    assert d == {
        "name": "train",
        "unit": "sample",
        "steps": 3,
        "units": 9.0,
        "warmup": 1,
        "duration_s": 4.0,
        "energy_j": 27.0,
        "mean_power_w": 6.75,
        "energy_per_unit_j": m.energy_per_unit_j.to_dict(),
        "unit_energies_j": [1.0, 2.0, 6.0],
        "windows": 3,
        "method": "counter",
        "backend": "nvml",
        "devices": [DeviceEnergy(GPU, 27.0).to_dict()],
        "complete": False,
        "ranks": 2,
        "nodes": 2,
        "notes": ["a"],
        "extrapolate": 100,
    }
    assert Measurement.from_dict(json.loads(json.dumps(d))) == m
    assert measurement(duration_s=0.0).to_dict()["mean_power_w"] is None


def test_measurement_from_an_old_record_takes_the_defaults() -> None:
    d = {
        "name": "x",
        "unit": "iteration",
        "steps": 4,
        "duration_s": 2.0,
        "energy_j": 8.0,
        "energy_per_unit_j": {"mean": 2.0},
        "method": "simulated",
    }
    m = Measurement.from_dict(d)
    assert (m.units, m.warmup, m.backend, m.complete, m.ranks, m.nodes) == (4.0, 0, "", True, 1, 1)
    assert (m.unit_energies_j, m.devices, m.notes, m.extrapolate) == ((), (), (), None)


def test_project_to_its_own_target_the_given_one_or_what_was_measured() -> None:
    m = measurement(extrapolate=1000)
    std, sem = math.sqrt(7.0), math.sqrt(7.0) / math.sqrt(3)
    own = m.project()
    assert (own.n, own.unit, own.measured) == (1000, "sample", False)
    assert own.energy_kwh == 3.0 * 1000 / J_PER_KWH
    assert own.std_kwh == std * 1000 / J_PER_KWH
    assert own.ci95_kwh == 4.303 * sem * 1000 / J_PER_KWH  # t975(2): 3 windows
    given = m.project(50)  # an explicit n wins over the measurement's own target
    assert (given.n, given.measured, given.energy_kwh) == (50, False, 3.0 * 50 / J_PER_KWH)
    measured = measurement(units=8.6, energy_j=25.8).project()  # no target: the units measured
    assert (measured.n, measured.measured) == (9, True)  # rounded, not truncated
    assert measured.energy_kwh == pytest.approx(3.0 * 9 / J_PER_KWH, rel=1e-12)


# -- combine (DDP ranks) ---------------------------------------------------------------------


def test_combine_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^nothing to combine$"):
        Measurement.combine([])


def test_combine_equal_windows_sums_them_window_by_window() -> None:
    a = measurement((1.0, 2.0, 6.0), units=3.0, energy_j=9.0, duration_s=4.0, notes=("n1",))
    b = measurement(
        (2.0, 2.0, 2.0),
        units=3.0,
        energy_j=6.0,
        duration_s=5.0,
        method="counter+estimated",
        notes=("n1", "n2"),
        devices=(DeviceEnergy(CPU, 6.0),),
    )
    c = Measurement.combine([a, b], nodes=2)
    assert c.energy_j == 15.0 and c.unit_energies_j == (3.0, 4.0, 8.0)
    assert c.energy_per_unit_j == Stats.of((3.0, 4.0, 8.0), 15.0, 3.0)
    assert c.energy_per_unit_j.mean == 5.0
    assert (c.duration_s, c.method, c.ranks, c.nodes) == (5.0, "counter+estimated", 2, 2)
    assert c.devices == (DeviceEnergy(GPU, 9.0), DeviceEnergy(CPU, 6.0))
    assert c.notes == ("n1", "n2") and c.complete
    assert (c.name, c.units, c.steps) == ("train", 3.0, 3)
    assert not Measurement.combine([a, measurement(complete=False)]).complete
    assert Measurement.combine([a]).nodes == 1


def test_combine_unequal_windows_adds_the_variances() -> None:
    """Rank a has 3 windows (std sqrt 7), rank b 2 (std sqrt 2): the spread of the sum is
    sqrt(7 + 2), resting on the smaller count of windows."""
    a = measurement((1.0, 2.0, 6.0), units=3.0, energy_j=9.0)
    b = measurement((1.0, 3.0), units=3.0, energy_j=6.0, ranks=3)
    c = Measurement.combine([a, b])
    s = c.energy_per_unit_j
    assert c.unit_energies_j == () and c.windows == 0
    assert (s.mean, s.n) == (5.0, 2)
    assert s.std == pytest.approx(3.0, rel=1e-15)
    assert s.sem == s.std / math.sqrt(2)
    assert c.ranks == 4
    empty = measurement((), units=3.0, energy_j=3.0)
    z = Measurement.combine([a, empty]).energy_per_unit_j
    assert z.n == 0 and math.isnan(z.sem) and z.mean == 4.0
