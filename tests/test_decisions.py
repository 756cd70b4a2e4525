"""Exact tests of the noise-aware decisions: t quantiles, estimates, the stopping rule, the
three compare outcomes, the budget verdicts and the lines they print."""

from __future__ import annotations

import json
import math

import pytest

from pytest_co2.measure.decisions import (
    INCONCLUSIVE,
    MIN_WINDOWS,
    NO_REGRESSION,
    OVER,
    REGRESSION,
    TOO_CLOSE,
    UNDER,
    BudgetDecision,
    CompareDecision,
    Estimate,
    StopDecision,
    StopRule,
    budget_verdict,
    compare_decision,
    estimate,
    estimate_of_entry,
    parse_precision,
)
from pytest_co2.measure.stats import t_cdf, t_quantile

BASE = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 0.98]  # mean 1.0, std 0.0605


def scaled(xs: list[float], f: float) -> list[float]:
    return [x * f for x in xs]


# -- t ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "t"),
    [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (math.inf, 1.960)],
)
def test_t_quantile_matches_the_table(df: float, t: float) -> None:
    assert round(t_quantile(0.975, df), 3) == t


def test_t_quantile_fractional_df_and_cdf_round_trip() -> None:
    assert round(t_quantile(0.975, 7.5), 5) == 2.33304
    assert t_cdf(t_quantile(0.975, 3.3), 3.3) == pytest.approx(0.975, abs=1e-12)
    assert t_cdf(0.0, 5) == 0.5
    assert math.isnan(t_quantile(0.975, 0))
    assert math.isnan(t_quantile(0.975, math.nan))


# -- estimates -------------------------------------------------------------------------------


def test_mean_estimate() -> None:
    e = estimate([1.0, 1.1, 0.9, 1.05, 0.95])
    assert (e.method, e.n, e.df) == ("mean", 5, 4)
    assert e.center_j == pytest.approx(1.0, abs=1e-15)
    assert e.std_j == pytest.approx(math.sqrt(0.00625), rel=1e-12)
    assert e.se_j == pytest.approx(math.sqrt(0.00625 / 5), rel=1e-12)
    assert round(e.relative_half_width(), 6) == 0.098162  # 2.776445 x 0.0353553


def test_trimmed_estimate_is_yuen() -> None:
    e = estimate([1, 2, 3, 4, 100], "trimmed")
    # 20% of 5: one value cut at each end; winsorized sample 2, 2, 3, 4, 4 (variance 1)
    assert (e.center_j, e.df, e.n, e.mean_j) == (3.0, 2, 5, 22.0)
    assert e.se_j == pytest.approx(math.sqrt(4 * 1 / (3 * 2)), rel=1e-12)
    plain = estimate([1, 2, 3, 4, 100])
    assert plain.center_j == 22.0  # the outlier moves the mean, not the trimmed mean
    assert plain.std_j == e.std_j  # mean +- std is still reported


def test_one_window_has_no_spread() -> None:
    e = estimate([2.5])
    assert (e.center_j, e.n, e.has_spread) == (2.5, 1, False)
    assert (
        math.isnan(e.se_j) and math.isnan(e.half_width_j()) and math.isnan(e.relative_half_width())
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": []}, "estimate: no samples"),
        (
            {"samples": [1.0], "method": "median"},
            "invalid method 'median': expected one of mean, trimmed",
        ),
        ({"samples": [1.0], "trim": 0.5}, "invalid trim 0.5"),
    ],
)
def test_estimate_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate(**kwargs)  # type: ignore[arg-type]


def test_estimate_of_entry_prefers_samples_then_summary_then_mean() -> None:
    e = estimate_of_entry({"unit_energies_j": [1.0, 3.0], "energy_per_unit_j": {"mean": 9.0}})
    assert isinstance(e, Estimate) and (e.center_j, e.n) == (2.0, 2)
    old = estimate_of_entry({"energy_per_unit_j": {"mean": 2.0, "std": 0.4, "n": 4}})
    assert isinstance(old, Estimate)
    assert (old.center_j, old.std_j, old.se_j, old.df) == (2.0, 0.4, 0.2, 3)
    assert estimate_of_entry({"energy_per_unit_j": {"mean": 2.0, "std": None, "n": 1}}) == 2.0
    assert estimate_of_entry({"projection": {}}) is None


def test_estimate_round_trips_through_json() -> None:
    e = estimate([4.0])
    d = json.loads(json.dumps(e.to_dict()))
    assert d["se_j"] is None
    back = Estimate.from_dict(d)
    assert back.center_j == 4.0 and math.isnan(back.se_j)


# -- --co2-precision -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("3%", 0.03), ("0.03", 0.03), (" 2.5 %", 0.025), ("99.9%", 0.999), (0.05, 0.05)],
)
def test_parse_precision(text: str, value: float) -> None:
    assert parse_precision(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["0", "0%", "150%", "100%", "1", "abc", "-3%", "", "3%%"])
def test_parse_precision_bad_input_is_one_line(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_precision(text)
    msg = str(exc.value)
    assert msg == (
        f"invalid --co2-precision {text!r}: expected the 95% interval's half-width relative to "
        "the mean, between 0 and 100% exclusive, e.g. 3% or 0.03"
    )
    assert "\n" not in msg


# -- the stopping rule (fake per-window energies and a fake clock) ------------------------------


def test_stop_rule_waits_for_the_minimum_windows() -> None:
    rule = StopRule(precision=0.03)
    xs = [1.0, 1.0, 1.0, 1.0]  # perfectly precise, but only 4 windows
    d = rule.check(xs, measured_s=0.4)
    assert (d.stop, d.reason, d.windows) == (False, "continue", 4)
    assert d.describe() == "continue: 4 of at least 5 windows (target ±3.0%)"
    assert MIN_WINDOWS == 5


def test_stop_rule_precision_reached() -> None:
    rule = StopRule(precision=0.03)
    xs = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    d = rule.check(xs, measured_s=0.6)
    assert (d.stop, d.reason, d.windows, d.steps) == (True, "precision", 6, 6)
    assert round(d.relative_half_width, 6) == 0.014841
    assert d.describe() == "precision reached: 95% CI ±1.5% of the mean after 6 windows"


def test_stop_rule_walks_a_measurement_with_a_fake_clock() -> None:
    """Steps of 0.5 s: precision is first checked at 5 windows, not yet reached there, then
    the sixth and seventh window narrow the interval until it is within 5%."""
    rule = StopRule(precision=0.05, max_time_s=10.0)
    windows = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.0, 1.0]
    lines = []
    for k in range(1, len(windows) + 1):
        d = rule.check(windows[:k], measured_s=0.5 * k)
        lines.append(d.describe())
        if d.stop:
            break
    assert lines == [
        "continue: 1 of at least 5 windows (target ±5.0%)",
        "continue: 2 of at least 5 windows (target ±5.0%)",
        "continue: 3 of at least 5 windows (target ±5.0%)",
        "continue: 4 of at least 5 windows (target ±5.0%)",
        "continue: 95% CI ±9.8% of the mean after 5 windows (target ±5.0%)",
        "continue: 95% CI ±7.4% of the mean after 6 windows (target ±5.0%)",
        "continue: 95% CI ±6.0% of the mean after 7 windows (target ±5.0%)",
        "precision reached: 95% CI ±5.0% of the mean after 8 windows",
    ]


def test_stop_rule_time_cap_and_max_steps() -> None:
    xs = [1.0, 1.1, 0.9, 1.05, 0.95]
    d = StopRule(precision=0.03, max_time_s=10).check(xs, measured_s=10.0)
    assert (d.stop, d.reason) == (True, "time")
    assert d.describe() == "time cap 10 s reached at ±9.8% after 5 windows (target ±3.0%)"
    one = StopRule(precision=0.03, max_time_s=10).check([2.0], measured_s=12.5)
    assert one.describe() == "time cap 10 s reached at ±n/a after 1 window (target ±3.0%)"
    m = StopRule(max_steps=5, max_time_s=None).check(xs, measured_s=1.0)
    assert m.describe() == "max steps 5 reached at ±9.8% after 5 windows"
    # steps and windows differ when short steps were grouped into windows
    g = StopRule(max_steps=40, max_time_s=None).check(xs, measured_s=1.0, steps=40)
    assert (g.reason, g.windows, g.steps) == ("max_steps", 5, 40)


def test_stop_rule_precision_wins_over_the_cap_and_zero_energy_is_precise() -> None:
    xs = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    assert StopRule(precision=0.03, max_time_s=1).check(xs, 5.0).reason == "precision"
    z = StopRule(precision=0.03).check([0.0] * 5, 1.0)
    assert z.describe() == "precision reached: 95% CI ±0% of the mean after 5 windows"


def test_stop_rule_trimmed_mean_resists_one_outlier() -> None:
    xs = [1.0, 1.01, 0.99, 1.0, 5.0, 1.0]  # one window hit by another process
    plain = StopRule(precision=0.03).check(xs, 1.0)
    robust = StopRule(precision=0.03, method="trimmed").check(xs, 1.0)
    assert plain.describe() == "continue: 95% CI ±102.8% of the mean after 6 windows (target ±3.0%)"
    assert (
        robust.describe() == "precision reached: 95% CI ±1.1% of the trimmed mean after 6 windows"
    )
    assert robust.mean_j == plain.mean_j == pytest.approx(10.0 / 6, rel=1e-15)  # still reported
    assert robust.center_j == pytest.approx(1.0025, rel=1e-12)  # 1, 1, 1, 1.01 kept


def test_stop_rule_no_windows_and_round_trip() -> None:
    d = StopRule(precision=0.03).check([], 0.0)
    assert d.describe() == "continue: 0 of at least 5 windows (target ±3.0%)"
    back = StopDecision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back.describe() == d.describe() and math.isnan(back.center_j)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": 0.0}, "invalid precision 0.0"),
        ({"precision": 1.5}, "invalid precision 1.5"),
        ({"min_windows": 1}, "invalid min_windows 1: expected an integer >= 2"),
        ({"max_time_s": 0}, "invalid max_time_s 0: expected seconds > 0"),
        ({"max_steps": 0}, "invalid max_steps 0: expected an integer >= 1"),
        ({"method": "median"}, "invalid method 'median'"),
    ],
)
def test_stop_rule_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StopRule(**kwargs)  # type: ignore[arg-type]


# -- the three compare outcomes ----------------------------------------------------------------


def test_compare_by_hand() -> None:
    """base 0.9, 1.1 and current 1.8, 2.2: both relative standard errors 0.1, so the log
    ratio ln 2 has se sqrt(0.02) on Welch df (0.02^2 / (2 x 0.01^2)) = 2, t = 4.302653."""
    d = compare_decision([0.9, 1.1], [1.8, 2.2], 0.10)
    se = math.sqrt(0.02)
    t = t_quantile(0.975, 2)
    assert d.change == pytest.approx(1.0, rel=1e-12)
    assert d.low == pytest.approx(math.exp(math.log(2) - t * se) - 1, rel=1e-12)
    assert d.high == pytest.approx(math.exp(math.log(2) + t * se) - 1, rel=1e-12)
    assert d.outcome == INCONCLUSIVE  # the lower bound +8.8% is below the threshold
    assert (
        d.describe()
        == "inconclusive: +100.0% (95% +8.8% to +267.5%) vs 10%; needs ±42.3% per run to decide"
    )
    assert (
        compare_decision([0.9, 1.1], [1.8, 2.2], 0.05).describe()
        == "regression: +100.0% (95% +8.8% to +267.5%) > 5%"
    )


def test_compare_regression() -> None:
    d = compare_decision(BASE, scaled(BASE, 1.25), 0.10)
    assert (d.outcome, d.failed, d.basis, d.n, d.base_n) == (REGRESSION, True, "interval", 8, 8)
    assert round(d.low, 6) == 0.171211 and round(d.high, 6) == 0.334089
    assert d.needed_precision is None
    assert d.describe() == "regression: +25.0% (95% +17.1% to +33.4%) > 10%"


def test_compare_no_regression() -> None:
    d = compare_decision(BASE, BASE, 0.10)
    assert (d.outcome, d.failed, d.change) == (NO_REGRESSION, False, 0.0)
    assert round(d.low, 6) == -0.063031 and round(d.high, 6) == 0.067271
    assert d.describe() == "no regression: +0.0% (95% -6.3% to +6.7%) < 10%"


def test_compare_inconclusive_says_what_precision_decides_it() -> None:
    d = compare_decision(BASE, scaled(BASE, 1.12), 0.10)
    assert d.outcome == INCONCLUSIVE and not d.failed
    # distance of ln 1.12 from ln 1.10, shared by two runs: (ln 1.12 - ln 1.10) / sqrt 2
    assert d.needed_precision == pytest.approx(
        (math.log(1.12) - math.log(1.10)) / math.sqrt(2), rel=1e-12
    )
    assert (
        d.describe()
        == "inconclusive: +12.0% (95% +4.9% to +19.5%) vs 10%; needs ±1.3% per run to decide"
    )


def test_compare_between_run_spread_widens_and_can_make_it_undecidable() -> None:
    d = compare_decision(BASE, scaled(BASE, 1.12), 0.10, between_run_cv=0.05)
    assert round(d.low, 6) == -0.037103 and round(d.high, 6) == 0.302735
    assert d.needed_precision == 0.0
    assert d.describe() == (
        "inconclusive: +12.0% (95% -3.7% to +30.3%) vs 10%; the between-run spread alone is too large to decide it"
    )
    # a +25% change stays a confident regression with a 3% between-run spread
    assert (
        compare_decision(BASE, scaled(BASE, 1.25), 0.10, between_run_cv=0.03).outcome == REGRESSION
    )


def test_compare_trimmed() -> None:
    d = compare_decision(BASE, scaled(BASE, 1.25), 0.10, method="trimmed")
    assert d.describe() == "regression: +25.0% (95% +17.7% to +32.7%) > 10%"


def test_compare_with_a_reference_workload_divides_out_drift() -> None:
    """The machine got 20% slower (the reference), the test 30%: the code's own change is
    1.3 / 1.2 - 1 = +8.3%, and the reference's noise widens the interval."""
    d = compare_decision(
        BASE,
        scaled(BASE, 1.3),
        0.10,
        reference_base=[2.0, 2.1, 1.9],
        reference_current=[2.4, 2.5, 2.3],
    )
    assert d.change == pytest.approx(1.3 / 1.2 - 1, rel=1e-12)
    assert d.reference_change == pytest.approx(0.2, rel=1e-12)
    assert d.describe() == (
        "inconclusive: +8.3% (95% -2.8% to +20.7%) vs 10%, scaled by the reference workload (+20.0%); "
        "needs ±0.76% per run to decide"
    )
    steady = compare_decision(
        BASE,
        scaled(BASE, 1.3),
        0.10,
        reference_base=[2.0, 2.1, 1.9],
        reference_current=[2.0, 2.1, 1.9],
    )
    assert steady.outcome == REGRESSION
    with pytest.raises(ValueError, match="give both reference_base and reference_current"):
        compare_decision(BASE, BASE, 0.1, reference_base=[1.0, 1.0])


@pytest.mark.parametrize(
    ("current", "line"),
    [
        ([1.25], "regression: +25.0% (point: one window, no spread) > 10%"),
        (
            [1.15],
            "inconclusive: +15.0% (point: one window, no spread) vs 10%; needs ±3.1% per run to decide",
        ),
        ([0.99], "no regression: -1.0% (point: one window, no spread) < 10%"),
        (
            [1.10],
            "inconclusive: +10.0% (point: one window, no spread) vs 10%; the change equals the threshold: no precision decides it",
        ),
    ],
)
def test_compare_one_window_decides_only_far_from_the_threshold(
    current: list[float], line: str
) -> None:
    assert compare_decision(BASE, current, 0.10).describe() == line


def test_compare_old_baseline_without_samples_is_a_labelled_point_compare() -> None:
    d = compare_decision(1.0, scaled(BASE, 1.12), 0.10)
    assert (d.outcome, d.basis, d.base_n) == (REGRESSION, "point: no per-window samples", 0)
    assert d.describe() == "regression: +12.0% (point: no per-window samples) > 10%"
    assert compare_decision(1.0, scaled(BASE, 1.05), 0.10).outcome == NO_REGRESSION


def test_compare_zero_baselines() -> None:
    assert (
        compare_decision([0.0, 0.0], [0.0], 0.1).describe()
        == "no regression: +0.0% (zero baseline and zero now) < 10%"
    )
    assert (
        compare_decision([0.0, 0.0], [0.1, 0.2, 0.15], 0.1).describe()
        == "regression: +inf% (zero baseline) > 10%"
    )
    assert compare_decision([0.0, 0.0], [0.1, -0.05, 0.0], 0.1).describe() == (
        "inconclusive: +inf% (zero baseline; the current interval includes 0) vs 10%"
    )
    assert (
        compare_decision([1.0, 1.2], [0.0], 0.1).describe()
        == "no regression: -100.0% (zero now) < 10%"
    )


def test_compare_round_trips_through_json() -> None:
    for d in (
        compare_decision(BASE, scaled(BASE, 1.12), 0.10),
        compare_decision([0.0], [1.0], 0.10),
        compare_decision(
            BASE, [1.2], 0.10, reference_base=[1.0, 1.1], reference_current=[1.0, 1.1]
        ),
    ):
        back = CompareDecision.from_dict(json.loads(json.dumps(d.to_dict())))
        assert back.describe() == d.describe()
        assert back.outcome == d.outcome


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": -0.1}, "invalid threshold -0.1: expected a fraction >= 0"),
        ({"threshold": math.nan}, "invalid threshold nan"),
        ({"threshold": 0.1, "between_run_cv": -1.0}, "invalid between_run_cv -1.0"),
    ],
)
def test_compare_bad_input(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_decision(BASE, BASE, **kwargs)


# -- budget verdicts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ci95", "verdict", "line"),
    [
        (
            12.3,
            0.4,
            OVER,
            "over budget: projected 12.3 kg CO2e (95% interval 11.9 to 12.7) exceeds 10 kg CO2e",
        ),
        (
            9.0,
            0.5,
            UNDER,
            "under budget: projected 9 kg CO2e (95% interval 8.5 to 9.5) is below 10 kg CO2e",
        ),
        (
            10.2,
            0.6,
            TOO_CLOSE,
            "too close to call: projected 10.2 kg CO2e (95% interval 9.6 to 10.8) vs budget 10 kg CO2e",
        ),
        (
            9.0,
            math.nan,
            UNDER,
            "under budget: projected 9 kg CO2e (no interval: one window) is below 10 kg CO2e",
        ),
        (
            11.0,
            math.nan,
            OVER,
            "over budget: projected 11 kg CO2e (no interval: one window) exceeds 10 kg CO2e",
        ),
    ],
)
def test_budget_verdicts(value: float, ci95: float, verdict: str, line: str) -> None:
    v = budget_verdict(value, ci95, 10.0)
    assert (v.verdict, v.failed) == (verdict, verdict == OVER)
    assert v.describe() == line


def test_budget_in_kwh_and_with_between_run_spread() -> None:
    v = budget_verdict(1234.5, 100.0, 1000.0, quantity="kWh")
    assert (
        v.describe()
        == "over budget: projected 1,234 kWh (95% interval 1,134 to 1,334) exceeds 1,000 kWh"
    )
    w = budget_verdict(9.5, 0.1, 10.0, between_run_cv=0.05)
    assert w.high == pytest.approx(9.5 + math.hypot(0.1, 1.959963984540054 * 0.05 * 9.5), rel=1e-12)
    assert (
        w.describe()
        == "too close to call: projected 9.5 kg CO2e (95% interval 8.56 to 10.4) vs budget 10 kg CO2e"
    )
    back = BudgetDecision.from_dict(json.loads(json.dumps(w.to_dict())))
    assert back == w


@pytest.mark.parametrize("budget", [0.0, -1.0, math.nan, math.inf])
def test_budget_bad_input(budget: float) -> None:
    with pytest.raises(ValueError, match="invalid budget"):
        budget_verdict(1.0, 0.1, budget)
