"""The best start time from a forecast (pure): exact means, the earliest of equal starts,
windows the forecast does not cover, and the advice sentence."""

from __future__ import annotations

import datetime as dt

from pytest_co2.carbon.forecast import best_start, window_mean
from pytest_co2.carbon.intensity import lookup
from pytest_co2.carbon.providers.base import ForecastPoint
from pytest_co2.reporting.advice import start_advice

T0 = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.timezone.utc)
H = dt.timedelta(hours=1)


def hourly(*values: float, start: dt.datetime = T0) -> list[ForecastPoint]:
    return [ForecastPoint(start + i * H, start + (i + 1) * H, g) for i, g in enumerate(values)]


def test_window_mean_is_time_weighted_and_none_outside_the_forecast() -> None:
    f = hourly(300, 100, 200)
    assert window_mean(f, T0, 3600) == 300.0
    assert window_mean(f, T0 + H / 2, 3600) == 200.0  # half 300, half 100
    assert window_mean(f, T0, 3 * 3600) == 200.0
    assert window_mean(f, T0 + 2 * H, 2 * 3600) is None  # runs past the end
    gap = [*hourly(300), *hourly(100, start=T0 + 2 * H)]
    assert window_mean(gap, T0, 3 * 3600) is None


def test_a_constant_forecast_has_that_mean_wherever_the_window_splits_it() -> None:
    # 200 g/kWh over two points: the naive sum of 200 x piece / length came out 199.99999999999997
    # for some splits, which is how CI saw it (the start is the wall clock's microsecond)
    f = hourly(200, 200, 200)
    for us in (1, 37, 999_999, 123_457, 666_667):
        for length_s in (250.0, 250.000001, 3599.9, 7200.0):
            start = T0 + H - dt.timedelta(seconds=100, microseconds=us)
            assert window_mean(f, start, length_s) == 200.0


def test_best_start_for_a_two_hour_run() -> None:
    f = hourly(300, 200, 100, 100, 400)
    best = best_start(f, 2 * 3600, T0)
    assert best is not None
    assert (best.start, best.mean_g_per_kwh, best.now_g_per_kwh) == (T0 + 2 * H, 100.0, 250.0)
    assert best.saving == 100 / 250 - 1
    # a 90-minute run fits best from 10:00, not at an hour boundary minus its length
    best = best_start(f, 5400, T0)
    assert best is not None and (best.start, best.mean_g_per_kwh) == (T0 + 2 * H, 100.0)


def test_best_start_picks_a_corner_that_is_not_a_forecast_boundary() -> None:
    f = hourly(500, 100, 500)
    best = best_start(f, 1800, T0 + dt.timedelta(minutes=10))
    assert best is not None
    assert (best.start, best.mean_g_per_kwh) == (T0 + H, 100.0)
    best = best_start(f, 2 * 3600, T0)  # any start from 08:00 to 09:00 gives 300: the earliest
    assert best is not None and (best.start, best.mean_g_per_kwh) == (T0, 300.0)


def test_now_before_the_forecast_uses_the_live_value_and_the_horizon_holds() -> None:
    f = hourly(100, 100, start=T0 + H)
    now = T0 + H / 2  # 08:30; forecast from 09:00
    best = best_start(f, 3600, now, current_g_per_kwh=400)
    assert best is not None
    assert (best.start, best.now_g_per_kwh, best.mean_g_per_kwh) == (T0 + H, 250.0, 100.0)
    assert best_start(f, 3600, now) is not None
    assert best_start(f, 3600, now).now_g_per_kwh is None  # type: ignore[union-attr]
    assert best_start(f, 4 * 3600, now, current_g_per_kwh=400) is None  # longer than covered
    late = hourly(10, start=T0 + 30 * H)
    assert best_start([*hourly(100, 100), *late], 3600, T0).start == T0  # type: ignore[union-attr]


def test_start_advice_text() -> None:
    f = hourly(300, 200, 100, 100, 400)
    gb = lookup("GB")
    d = start_advice(f, 10.0, 2 * 3600, gb, 1.0, T0)
    assert d["best_start"] == {
        "start": "2026-12-03T10:00:00Z",
        "duration_s": 7200,
        "mean_g_per_kwh": 100.0,
        "now_g_per_kwh": 250.0,
        "saving": 100 / 250 - 1,
        "co2e_kg": 1.0,
        "now_co2e_kg": 2.5,
    }
    assert d["text"] == (
        "start at 2026-12-03T10:00:00Z (in 2.0 h): 1.00 kg instead of 2.50 kg now (-60%; "
        "forecast 100 vs 250 g/kWh over the 2.0 h run)"
    )
    flat = start_advice(hourly(100, 100, 100), 10.0, 3600, gb, 1.0, T0)
    assert (
        flat["text"] == "starting now is the lowest-emission start of a 60 min run in the next 24 h"
    )
    none = start_advice(hourly(100), 10.0, 7200, gb, 1.0, T0 + H / 2)
    assert none == {
        "best_start": None,
        "text": "the forecast does not cover a run of 2.0 h starting in the next 24 h",
    }


def test_a_live_value_replaces_its_regions_yearly_average_among_the_candidates() -> None:
    import dataclasses

    from pytest_co2.reporting.advice import advise

    live_se = dataclasses.replace(lookup("SE"), g_per_kwh=25.0, provenance="live", zone="SE")
    a = advise(1000.0, live_se, 1.0, ["SE", "FR", "PL"])
    assert (a.best_region.region, a.best_region.g_per_kwh) == ("SE", 25.0)  # not SE's 7 g/kWh
    assert a.describe().startswith("SE is already the lowest-emission region")
    shipped = advise(1000.0, lookup("PL"), 1.0, ["SE", "PL"])
    assert shipped.best_region.region == "SE"
