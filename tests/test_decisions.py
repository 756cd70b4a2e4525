"""Exact tests of the noise-aware decisions: t quantiles, estimates, the stopping rule, the
three compare outcomes, the budget verdicts and the lines they print."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from pytest_co2 import fmt
from pytest_co2.constants import DEFAULT_MAX_TIME_S
from pytest_co2.measure import decisions as dec
from pytest_co2.measure import stats
from pytest_co2.measure.budget_decision import (
    OVER,
    TOO_CLOSE,
    UNDER,
    BudgetDecision,
    budget_verdict,
)
from pytest_co2.measure.decisions import (
    INCONCLUSIVE,
    NO_REGRESSION,
    REGRESSION,
    CompareDecision,
    compare_decision,
)
from pytest_co2.measure.estimates import Estimate, estimate, estimate_of_entry, json_num_inf
from pytest_co2.measure.stats import t_cdf, t_quantile
from pytest_co2.measure.stopping import (
    MIN_WINDOWS,
    StopDecision,
    StopRule,
    parse_precision,
)

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


# -- exact values: data that exposes each rule ----------------------------------------
Z = statistics.NormalDist().inv_cdf(0.975)


# -- Student's t -----------------------------------------------------------------------------


def test_t_quantile_median_and_large_df() -> None:
    assert t_quantile(0.5, 5) == pytest.approx(0.0, abs=1e-9)
    assert t_quantile(0.5, 1) == pytest.approx(0.0, abs=1e-9)
    # up to 1e7 degrees of freedom the t quantile is computed; above, the normal one
    assert t_quantile(0.975, 1e7) - Z == pytest.approx((Z**3 + Z) / 4e7, rel=1e-2)
    assert t_quantile(0.975, 10_000_001.0) == Z
    assert t_quantile(0.975, math.inf) == Z
    assert t_quantile(0.99, 3) == pytest.approx(4.540702858, rel=1e-9)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962339081, rel=1e-9)


def test_t_cdf_values() -> None:
    assert t_cdf(2.0, 4) == pytest.approx(0.9419417382, rel=1e-9)
    assert t_cdf(-2.0, 4) == pytest.approx(1 - 0.9419417382, rel=1e-8)
    assert t_cdf(1.0, 1) == pytest.approx(0.75, rel=1e-12)  # Cauchy: 1/2 + atan(1)/pi
    assert t_cdf(-1.0, 1) == pytest.approx(0.25, rel=1e-12)
    assert t_cdf(3.0, math.inf) == statistics.NormalDist().cdf(3.0)
    assert t_cdf(30.0, 2.5) == pytest.approx(1 - 3.0e-4, abs=2e-4)
    assert t_cdf(0.3, 200) == pytest.approx(statistics.NormalDist().cdf(0.3), abs=2e-3)


def test_incomplete_beta_ends_and_both_branches() -> None:
    assert stats._beta_inc(2.0, 3.0, 0.0) == 0.0 and stats._beta_inc(2.0, 3.0, -1.0) == 0.0
    assert stats._beta_inc(2.0, 3.0, 1.0) == 1.0 and stats._beta_inc(2.0, 3.0, 2.0) == 1.0
    # I_x(2, 3) = 6x^2 - 8x^3 + 3x^4: x = 0.2 takes the direct fraction, 0.8 the mirrored one
    for x in (0.2, 0.8):
        assert stats._beta_inc(2.0, 3.0, x) == pytest.approx(
            6 * x**2 - 8 * x**3 + 3 * x**4, rel=1e-12
        )
    assert stats._beta_inc(0.5, 0.5, 0.25) == pytest.approx(1 / 3, rel=1e-12)  # arcsine law


def _closed_form_cdf(t: float, nu: int) -> float:
    """P(T <= t) for an integer ``nu`` from the finite sums of Abramowitz & Stegun 26.7.3/4."""
    theta = math.atan2(t, math.sqrt(nu))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    terms, term = [1.0], 1.0
    if nu % 2 == 0:  # A = sin(th) (1 + c2/2 + 1*3 c2^2/(2*4) + ...), nu/2 terms
        for k in range(2, nu - 1, 2):
            term *= (k - 1) / k * c2
            terms.append(term)
        a = s * math.fsum(terms)
    else:  # A = 2/pi (th + sin(th) cos(th) (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ...)), none for nu 1
        for k in range(3, nu - 1, 2):
            term *= (k - 1) / k * c2
            terms.append(term)
        tail = math.fsum(terms) if nu > 1 else 0.0
        a = 2 / math.pi * (theta + s * math.sqrt(c2) * tail)
    return 0.5 + 0.5 * a


def test_closed_form_reference_is_right() -> None:
    assert _closed_form_cdf(1.0, 1) == pytest.approx(0.75, rel=1e-15, abs=0)
    assert _closed_form_cdf(1.0, 2) == pytest.approx(0.5 + 1 / (2 * math.sqrt(3)), rel=1e-15, abs=0)
    assert _closed_form_cdf(2.0, 4) == pytest.approx(0.9419417382, rel=1e-10)


@pytest.mark.parametrize(("t", "nu"), [(0.7, 2), (0.7, 4), (1.0, 6), (1.5, 7), (1.5, 10)])
def test_t_cdf_to_the_last_digits_at_small_df(t: float, nu: int) -> None:
    """The continued fraction stops once it has converged (1e-15): iterating on would drift."""
    # (mutants that iterate on drift by >= 1.4e-14; a 15x margin for other libms)
    assert t_cdf(t, nu) == pytest.approx(_closed_form_cdf(t, nu), rel=6e-15, abs=0)


@pytest.mark.parametrize(("t", "nu"), [(0.05, 40), (0.1, 60), (0.05, 120), (-0.1, 120)])
def test_t_cdf_near_the_center_at_large_df(t: float, nu: int) -> None:
    """Near t = 0, x = df / (df + t^2) is above the beta mean: the mirrored fraction decides."""
    assert t_cdf(t, nu) == pytest.approx(_closed_form_cdf(t, nu), rel=1e-12, abs=0)


def test_t_quantile_table_values_above_30_df() -> None:
    # R's qt() / any 6-digit t table: 2.021075, 2.000298, 2.617421, 1.697261
    assert t_quantile(0.975, 40) == pytest.approx(2.021075390306273, rel=1e-12)
    assert t_quantile(0.975, 60) == pytest.approx(2.000297822014260, rel=1e-12)
    assert t_quantile(0.995, 120) == pytest.approx(2.617421145106866, rel=1e-12)
    assert t_quantile(0.95, 30) == pytest.approx(1.697260886593957, rel=1e-12)


@pytest.mark.parametrize(
    ("p", "df", "exact"),
    [
        (0.5, 1, 0.0),
        (0.5, 7, 0.0),
        (0.75, 1, 1.0),  # Cauchy: tan(pi (p - 1/2))
        (0.7, 1, math.tan(0.2 * math.pi)),
        (0.75, 2, 0.5 / math.sqrt(0.375)),  # df 2: (2p - 1) / sqrt(2 p (1 - p))
        (0.9, 2, 0.8 / math.sqrt(0.18)),
    ],
)
def test_t_quantile_within_half_its_bracket(p: float, df: float, exact: float) -> None:
    """The bisection stops when its bracket is below 1e-12 x max(1, t): the midpoint is within
    half of it."""
    assert abs(t_quantile(p, df) - exact) <= 5e-13 * max(1.0, exact)


# -- estimates -------------------------------------------------------------------------------


def test_relative_half_width_of_zero_and_negative_centers() -> None:
    assert estimate([0.0, 0.0, 0.0]).relative_half_width() == 0.0
    assert estimate([-1.0, 1.0]).relative_half_width() == math.inf
    neg = estimate([-1.0, -2.0, -3.0])
    assert neg.relative_half_width() == pytest.approx(neg.half_width_j() / 2.0, rel=1e-15)
    assert neg.half_width_j() == pytest.approx(4.302652729 * 1 / math.sqrt(3), rel=1e-9)


def test_two_windows_have_a_spread() -> None:
    e = estimate([1.0, 3.0])
    assert e.has_spread and e.df == 1 and e.se_j == 1.0
    assert e.half_width_j() == t_quantile(0.975, 1)


def test_trimmed_edges() -> None:
    plain = estimate([1.0, 2.0, 4.0, 8.0], "trimmed", trim=0.0)  # nothing cut: the mean
    assert (plain.center_j, plain.df, plain.se_j) == (3.75, 3, estimate([1, 2, 4, 8]).se_j)
    few = estimate([1.0, 2.0, 9.0], "trimmed", trim=0.4)  # 1 cut each end: 1 value kept
    assert few.center_j == 2.0 and few.n == 3
    assert math.isnan(few.se_j) and math.isnan(few.df) and not few.has_spread
    e = estimate([5.0, 1.0, 4.0, 2.0, 3.0, 100.0, 0.0, 6.0, 7.0, 8.0], "trimmed")
    # 20% of 10: two cut at each end of 0..8,100; winsorized 2,2,2..7,7,7
    wins = [2.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0, 7.0]
    assert (e.center_j, e.df) == (4.5, 5)
    assert e.se_j == pytest.approx(math.sqrt(9 * statistics.variance(wins) / (6 * 5)), rel=1e-12)


def test_estimate_messages() -> None:
    with pytest.raises(ValueError) as a:
        estimate([])
    assert str(a.value) == "estimate: no samples: expected at least one per-window energy"
    with pytest.raises(ValueError) as b:
        estimate([1.0], trim=-0.1)
    assert str(b.value) == "invalid trim -0.1: expected a fraction in [0, 0.5)"
    with pytest.raises(ValueError) as c:
        estimate([1.0], trim=0.5)
    assert str(c.value) == "invalid trim 0.5: expected a fraction in [0, 0.5)"


def test_estimate_from_summary_and_json() -> None:
    two = Estimate.from_summary(3.0, 1.0, 2)
    assert (two.se_j, two.df, two.n, two.std_j, two.mean_j, two.method) == (
        1.0 / math.sqrt(2),
        1,
        2,
        1.0,
        3.0,
        "mean",
    )
    one = Estimate.from_summary(3.0, 1.0, 1)
    assert math.isnan(one.std_j) and math.isnan(one.se_j) and math.isnan(one.df)
    assert math.isnan(Estimate.from_summary(3.0, None, 4).std_j)
    for e in (two, one, estimate([1.0, 2.0, 9.0], "trimmed")):
        d = json.loads(json.dumps(e.to_dict()))
        assert Estimate.from_dict(d).to_dict() == e.to_dict()
    assert two.to_dict() == {
        "method": "mean",
        "center_j": 3.0,
        "se_j": 1.0 / math.sqrt(2),
        "df": 1,
        "n": 2,
        "mean_j": 3.0,
        "std_j": 1.0,
    }


def test_estimate_of_entry_edges() -> None:
    two = estimate_of_entry({"energy_per_unit_j": {"mean": 2.0, "std": 0.4, "n": 2}})
    assert isinstance(two, Estimate) and two.df == 1
    assert estimate_of_entry({"energy_per_unit_j": {"mean": 2.0, "std": 0.4}}) == 2.0  # no n
    assert estimate_of_entry({"energy_per_unit_j": {"mean": 2.0, "std": 0.4, "n": None}}) == 2.0
    assert estimate_of_entry({"energy_per_unit_j": {"mean": None}}) is None
    assert estimate_of_entry({"energy_per_unit_j": 2.0}) is None
    assert estimate_of_entry({"unit_energies_j": [], "energy_per_unit_j": {"mean": 5}}) == 5.0
    t = estimate_of_entry({"unit_energies_j": [1.0, 2.0, 100.0, 3.0, 2.0]}, "trimmed")
    assert (
        isinstance(t, Estimate)
        and t.method == "trimmed"
        and t.center_j == pytest.approx(7 / 3, rel=1e-12)
    )


def test_one_window_keeps_its_method_and_plain_figures() -> None:
    e = estimate([2.5], "trimmed")
    assert (e.method, e.center_j, e.n, e.mean_j) == ("trimmed", 2.5, 1, 2.5)
    assert math.isnan(e.se_j) and math.isnan(e.df) and math.isnan(e.std_j)
    assert math.isnan(e.half_width_j()) and math.isnan(e.relative_half_width())


def test_trimmed_with_two_values_kept_has_an_interval() -> None:
    e = estimate([10.0, 1.0, 3.0, 2.0], "trimmed", trim=0.25)  # 1 cut each end: 2 and 3 kept
    # winsorized 2, 2, 3, 3: variance 1/3; se = sqrt(3 x (1/3) / (2 x 1))
    assert (e.center_j, e.df, e.se_j, e.mean_j) == (2.5, 1, math.sqrt(0.5), 4.0)
    assert e.half_width_j() == pytest.approx(12.70620474 * math.sqrt(0.5), rel=1e-9)


def test_no_interval_without_two_windows_or_a_finite_se() -> None:
    one = Estimate("mean", 1.0, 0.5, 3.0, 1, 1.0, 0.5)  # a record's se with a single window
    assert math.isnan(one.half_width_j()) and math.isnan(one.relative_half_width())
    wild = Estimate("mean", 1.0, math.inf, 3.0, 4, 1.0, math.inf)
    assert not wild.has_spread and math.isnan(wild.half_width_j())


def test_from_summary_of_no_windows() -> None:
    e = Estimate.from_summary(1.0, 1.0, 0)
    assert (e.n, e.center_j, e.method) == (0, 1.0, "mean")
    assert math.isnan(e.se_j) and math.isnan(e.df) and math.isnan(e.std_j)


# -- the stopping rule -----------------------------------------------------------------------


def test_stop_rule_stops_at_exactly_the_target() -> None:
    xs = [1.0, 1.1, 0.9, 1.05, 0.95]
    rel = estimate(xs).relative_half_width()
    d = StopRule(precision=rel).check(xs, 0.5)
    assert (d.stop, d.reason) == (True, "precision")
    assert StopRule(precision=rel * 0.999).check(xs, 0.5).reason == "continue"


def test_stop_rule_checks_precision_from_min_windows_on() -> None:
    xs = [1.0, 1.0, 1.0]
    assert StopRule(precision=0.03, min_windows=3).check(xs, 0.1).reason == "precision"
    assert StopRule(precision=0.03, min_windows=4).check(xs, 0.1).reason == "continue"
    d = StopRule(precision=None).check([1.0] * 10, 0.1)
    assert (d.reason, d.target) == ("continue", None)
    assert d.describe() == "continue: 95% CI ±0% of the mean after 10 windows"


def test_stop_rule_caps_at_equality_and_just_below() -> None:
    xs = [1.0, 1.1, 0.9, 1.05, 0.95]
    assert StopRule(max_time_s=2.0).check(xs, 2.0).reason == "time"
    assert StopRule(max_time_s=2.0).check(xs, 1.999).reason == "continue"
    assert StopRule(max_time_s=None, max_steps=6).check(xs, 1.0, steps=6).reason == "max_steps"
    assert StopRule(max_time_s=None, max_steps=6).check(xs, 1.0, steps=5).reason == "continue"
    assert StopRule(max_time_s=None).check(xs, 1e9).reason == "continue"


def test_stop_rule_accepts_its_boundaries() -> None:
    r = StopRule(precision=0.5, min_windows=2, max_time_s=0.001, max_steps=1, method="trimmed")
    assert (r.min_windows, r.max_steps, r.method) == (2, 1, "trimmed")
    d = r.check([1.0], 0.0005, steps=1)
    assert (d.reason, d.method, d.max_steps, d.max_time_s, d.min_windows) == (
        "max_steps",
        "trimmed",
        1,
        0.001,
        2,
    )
    assert d.describe() == "max steps 1 reached at ±n/a after 1 window (target ±50.0%)"
    assert StopRule().max_time_s == DEFAULT_MAX_TIME_S


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": 0.0}, "invalid precision 0.0: expected a fraction in (0, 1), e.g. 0.03"),
        ({"precision": 1.0}, "invalid precision 1.0: expected a fraction in (0, 1), e.g. 0.03"),
        ({"min_windows": 1}, "invalid min_windows 1: expected an integer >= 2"),
        ({"min_windows": 2.5}, "invalid min_windows 2.5: expected an integer >= 2"),
        ({"max_time_s": 0.0}, "invalid max_time_s 0.0: expected seconds > 0"),
        ({"max_time_s": -1.0}, "invalid max_time_s -1.0: expected seconds > 0"),
        ({"max_steps": 0}, "invalid max_steps 0: expected an integer >= 1"),
        ({"max_steps": 1.5}, "invalid max_steps 1.5: expected an integer >= 1"),
        ({"method": "median"}, "invalid method 'median': expected one of mean, trimmed"),
    ],
)
def test_stop_rule_messages(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        StopRule(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_stop_decision_round_trip_and_describe_of_each_reason() -> None:
    xs = [1.0, 1.1, 0.9, 1.05, 0.95]
    rule = StopRule(precision=0.03, max_time_s=1500.0, max_steps=7, method="trimmed")
    d = rule.check(xs, 1500.0, steps=5)
    assert d.describe() == ("time cap 1,500 s reached at ±17.6% after 5 windows (target ±3.0%)")
    back = StopDecision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back == d
    assert (back.target, back.max_time_s, back.max_steps) == (0.03, 1500.0, 7)
    bare = StopRule(max_time_s=None).check(xs, 1.0)
    again = StopDecision.from_dict(json.loads(json.dumps(bare.to_dict())))
    assert again == bare and (again.target, again.max_time_s, again.max_steps) == (None,) * 3
    assert again.describe() == "continue: 95% CI ±9.8% of the mean after 5 windows"
    steps = StopRule(precision=0.01, max_time_s=None, max_steps=5).check(xs, 1.0)
    assert steps.describe() == "max steps 5 reached at ±9.8% after 5 windows (target ±1.0%)"
    trimmed = StopRule(precision=0.01, method="trimmed").check(xs, 1.0)
    assert trimmed.describe() == (
        "continue: 95% CI ±17.6% of the trimmed mean after 5 windows (target ±1.0%)"
    )
    assert (trimmed.center_j, trimmed.mean_j) == (pytest.approx(1.0), pytest.approx(1.0))
    assert trimmed.half_width_j == pytest.approx(trimmed.relative_half_width * 1.0, rel=1e-12)
    assert trimmed.std_j == pytest.approx(estimate(xs).std_j, rel=1e-15)
    assert (trimmed.steps, trimmed.measured_s, trimmed.stop) == (5, 1.0, False)


def test_parse_precision_either_exponent_letter() -> None:
    assert parse_precision("3e-2") == 0.03
    assert parse_precision("3E-2") == 0.03
    assert parse_precision("2.5E+1%") == 0.25


def test_stop_rule_before_any_window() -> None:
    d = StopRule(precision=0.03).check([], 0.0)
    assert (d.stop, d.reason, d.windows, d.steps) == (False, "continue", 0, 0)
    for x in (d.center_j, d.mean_j, d.std_j, d.half_width_j, d.relative_half_width):
        assert math.isnan(x)
    assert d.describe() == "continue: 0 of at least 5 windows (target ±3.0%)"


# -- compare ---------------------------------------------------------------------------------


def test_compare_point_boundaries() -> None:
    same = compare_decision(1.0, 1.0, 0.0)
    assert (same.outcome, same.change, same.basis) == (
        NO_REGRESSION,
        0.0,
        "point: no per-window samples",
    )
    assert compare_decision(1.0, 1.0 + 1e-12, 0.0).outcome == REGRESSION
    # one window, no spread: the point decides only beyond threshold x (1 +- guard)
    one = compare_decision([2.0, 2.0], [2.0], 0.0, point_guard=0.5)
    assert (one.outcome, one.needed_precision) == (INCONCLUSIVE, 0.0)
    assert compare_decision([1.0, 1.0], [1.3], 0.2, point_guard=0.5).outcome == INCONCLUSIVE
    assert compare_decision([1.0, 1.0], [1.31], 0.2, point_guard=0.5).outcome == REGRESSION
    assert compare_decision([1.0, 1.0], [1.11], 0.2, point_guard=0.5).outcome == INCONCLUSIVE
    assert compare_decision([1.0, 1.0], [1.09], 0.2, point_guard=0.5).outcome == NO_REGRESSION
    assert compare_decision([1.0, 1.0], [1.21], 0.2).outcome == INCONCLUSIVE  # guard 1: 0.4
    assert compare_decision([1.0, 1.0], [1.41], 0.2).outcome == REGRESSION


def test_compare_one_window_with_a_between_run_spread_has_an_interval() -> None:
    d = compare_decision([2.0], [2.0], 0.1, between_run_cv=0.05)
    half = Z * math.sqrt(2 * 0.05**2)  # only the between-run term, on infinite df
    assert d.basis == "interval"
    assert d.low == pytest.approx(math.expm1(-half), rel=1e-12)
    assert d.high == pytest.approx(math.expm1(half), rel=1e-12)
    assert d.outcome == INCONCLUSIVE


def test_compare_without_any_spread_is_exact() -> None:
    d = compare_decision([1.0, 1.0, 1.0], [1.5, 1.5], 0.1)
    assert (d.outcome, d.low, d.high) == (REGRESSION, pytest.approx(0.5), pytest.approx(0.5))
    w = compare_decision([1.0, 1.0], [1.0, 1.0], 0.1, between_run_cv=0.01)
    half = Z * math.sqrt(2 * 0.01**2)
    assert (w.low, w.high) == (pytest.approx(math.expm1(-half)), pytest.approx(math.expm1(half)))
    assert w.outcome == NO_REGRESSION


def test_compare_needed_precision_with_a_small_between_run_spread() -> None:
    d = compare_decision(BASE, [x * 1.12 for x in BASE], 0.10, between_run_cv=0.001)
    gap = math.log(1.12) - math.log(1.10)
    assert d.needed_precision == pytest.approx(
        math.sqrt((gap**2 - 2 * (Z * 0.001) ** 2) / 2), rel=1e-9
    )
    assert d.describe().endswith("; needs ±1.3% per run to decide")


def test_compare_welch_degrees_of_freedom() -> None:
    """Unequal windows: the Welch-Satterthwaite df decides the t quantile."""
    base, cur = [1.0, 1.2, 0.8], [2.0, 2.4, 1.6, 2.2, 1.8]
    d = compare_decision(base, cur, 0.5)
    eb, ec = estimate(base), estimate(cur)
    vb, vc = (eb.se_j / eb.center_j) ** 2, (ec.se_j / ec.center_j) ** 2
    df = (vb + vc) ** 2 / (vb**2 / 2 + vc**2 / 4)
    half = t_quantile(0.975, df) * math.sqrt(vb + vc)
    assert d.low == pytest.approx(math.expm1(math.log(2) - half), rel=1e-9)
    assert d.high == pytest.approx(math.expm1(math.log(2) + half), rel=1e-9)
    assert (d.n, d.base_n, d.mean_j, d.base_mean_j) == (5, 3, 2.0, pytest.approx(1.0))


def test_compare_reference_with_a_zero_side_is_refused() -> None:
    for rb, rc in (([0.0, 0.0], [1.0, 1.1]), ([1.0, 1.1], [0.0, 0.0])):
        with pytest.raises(ValueError) as info:
            compare_decision(BASE, BASE, 0.1, reference_base=rb, reference_current=rc)
        assert str(info.value) == (
            "reference workload: its per-unit energy must be > 0 in both runs"
        )
    with pytest.raises(ValueError) as other:
        compare_decision(BASE, BASE, 0.1, reference_current=[1.0])
    assert str(other.value) == (
        "reference workload: give both reference_base and reference_current, or neither"
    )


def test_compare_reference_point_and_estimates() -> None:
    ref = Estimate.from_summary(2.0, 0.1, 4)
    d = compare_decision(1.0, 1.3, 0.1, reference_base=ref, reference_current=[2.6])
    assert d.change == pytest.approx(0.0, abs=1e-12) and d.reference_change == pytest.approx(0.3)
    assert (d.outcome, d.basis) == (NO_REGRESSION, "point: no per-window samples")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": -0.1}, "invalid threshold -0.1: expected a fraction >= 0, e.g. 0.10"),
        ({"threshold": math.inf}, "invalid threshold inf: expected a fraction >= 0, e.g. 0.10"),
        (
            {"threshold": 0.1, "between_run_cv": -0.01},
            "invalid between_run_cv -0.01: expected a fraction >= 0",
        ),
        (
            {"threshold": 0.1, "between_run_cv": math.nan},
            "invalid between_run_cv nan: expected a fraction >= 0",
        ),
    ],
)
def test_compare_messages(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as info:
        compare_decision(BASE, BASE, **kwargs)
    assert str(info.value) == message


def test_compare_accepts_a_zero_threshold_and_cv() -> None:
    d = compare_decision(BASE, BASE, 0.0, between_run_cv=0.0)
    assert (d.threshold, d.between_run_cv, d.method) == (0.0, 0.0, "mean")
    assert d.outcome == INCONCLUSIVE  # the interval contains the 0% threshold
    assert d.describe().endswith("vs 0%; the change equals the threshold: no precision decides it")


def test_compare_zero_cases_with_bare_means_and_estimates() -> None:
    assert compare_decision(0.0, 0.5, 0.1).describe() == "regression: +inf% (zero baseline) > 10%"
    assert compare_decision(0.0, 0.0, 0.1).outcome == NO_REGRESSION
    z = compare_decision([0.0, 0.0], Estimate.from_summary(1.0, 1.0, 2), 0.1)
    assert (z.outcome, z.change) == (INCONCLUSIVE, math.inf)  # 1 - 12.7 x 0.707 < 0
    sure = compare_decision([0.0, 0.0], Estimate.from_summary(1.0, 0.01, 2), 0.1)
    assert sure.outcome == REGRESSION
    neg = compare_decision([-1.0, -1.0], [1.0], 0.1)
    assert (neg.outcome, neg.basis) == (REGRESSION, "zero baseline")
    assert compare_decision([1.0], [-1.0], 0.1).describe() == (
        "no regression: -100.0% (zero now) < 10%"
    )


def test_compare_round_trip_is_exact() -> None:
    for d in (
        compare_decision(BASE, [x * 1.12 for x in BASE], 0.10, between_run_cv=0.001),
        compare_decision([0.0], [1.0], 0.10),
        compare_decision(
            BASE, [1.2], 0.10, reference_base=[1.0, 1.1], reference_current=[1.0, 1.1]
        ),
        compare_decision(1.0, 2.0, 0.1, method="trimmed"),
    ):
        raw = json.loads(json.dumps(d.to_dict()))
        back = CompareDecision.from_dict(raw)
        assert back.to_dict() == d.to_dict()
    inf = compare_decision([0.0], [1.0], 0.10).to_dict()
    assert inf["change"] == "inf" and inf["low"] is None and inf["needed_precision"] is None
    assert CompareDecision.from_dict(inf).change == math.inf


def test_compare_reports_plain_means_with_the_trimmed_method() -> None:
    d = compare_decision(
        [1.0, 1.0, 1.0, 1.0, 10.0], [2.0, 2.0, 2.0, 2.0, 20.0], 0.1, method="trimmed"
    )
    assert (d.change, d.mean_j, d.base_mean_j, d.method) == (1.0, 5.6, 2.8, "trimmed")
    assert d.describe() == "regression: +100.0% (95% +100.0% to +100.0%) > 10%"


def test_compare_reference_below_one_joule() -> None:
    base = [1.0, 1.1, 0.9]
    d = compare_decision(
        base, [1.2 * x for x in base], 0.1, reference_base=[0.5, 0.5], reference_current=[0.6, 0.6]
    )
    assert d.change == pytest.approx(0.0, abs=1e-15)
    assert d.reference_change == pytest.approx(0.2, rel=1e-12)


@pytest.mark.parametrize(
    ("current", "text"),
    [
        ([1.5], "regression: +36.4% (point: one window, no spread) > 10%"),
        ([1.0], "no regression: -9.1% (point: one window, no spread) < 10%"),
        ([1.2], "inconclusive: +9.1% (point: one window, no spread) vs 10%"),
    ],
)
def test_compare_one_window_keeps_the_reference_change(current: list[float], text: str) -> None:
    d = compare_decision(
        [1.0], current, 0.1, reference_base=[2.0, 2.0], reference_current=[2.2, 2.2]
    )
    assert d.reference_change == pytest.approx(0.1, rel=1e-12)
    assert d.describe().startswith(f"{text}, scaled by the reference workload (+10.0%)")


def test_compare_interval_bound_on_the_threshold_is_inconclusive() -> None:
    # no spread in any window: the interval is the point, and here it is the threshold
    for base, cur, threshold in (([1.0, 1.0], [1.0, 1.0], 0.0), ([1.0, 1.0], [2.0, 2.0], 1.0)):
        d = compare_decision(base, cur, threshold)
        assert (d.low, d.high, d.outcome) == (threshold, threshold, INCONCLUSIVE)
        assert d.describe().endswith("; the change equals the threshold: no precision decides it")


def test_zero_baseline_with_the_current_interval_ending_at_zero() -> None:
    hw = Estimate("mean", 1.0, 0.25, 4.0, 5, 1.0, 0.5).half_width_j()
    edge = Estimate("mean", hw, 0.25, 4.0, 5, hw, 0.5)  # its interval's lower end is 0
    d = compare_decision([0.0, 0.0], edge, 0.1)
    assert (d.outcome, d.basis) == (INCONCLUSIVE, "zero baseline; the current interval includes 0")


def test_needed_precision_is_zero_within_1e9_of_the_threshold() -> None:
    assert dec._needed(1e-9, 1, 0.0) == 0.0
    assert dec._needed(4e-9, 4, 0.0) == pytest.approx(2e-9, rel=1e-15, abs=0)


# -- budget ----------------------------------------------------------------------------------


def test_budget_boundaries() -> None:
    assert budget_verdict(10.0, math.nan, 10.0).verdict == UNDER  # not above: under
    assert budget_verdict(10.0, 0.0, 10.0).verdict == TOO_CLOSE
    assert budget_verdict(11.0, 1.0, 10.0).verdict == TOO_CLOSE  # low = budget
    assert budget_verdict(9.0, 1.0, 10.0).verdict == TOO_CLOSE  # high = budget
    assert budget_verdict(11.0, 0.999, 10.0).verdict == OVER
    assert budget_verdict(9.0, 0.999, 10.0).verdict == UNDER


def test_budget_with_a_between_run_spread_and_no_interval() -> None:
    v = budget_verdict(9.0, math.nan, 10.0, between_run_cv=0.1)
    half = Z * 0.1 * 9.0
    assert (v.low, v.high, v.basis) == (9.0 - half, 9.0 + half, "interval")
    assert v.verdict == TOO_CLOSE and not v.failed
    w = budget_verdict(8.0, 0.5, 10.0, between_run_cv=0.0)
    assert (w.low, w.high, w.verdict) == (7.5, 8.5, UNDER)
    assert budget_verdict(8.0, 0.5, 10.0).quantity == "kg CO2e"


def test_budget_messages() -> None:
    for bad in (0.0, -2.0):
        with pytest.raises(ValueError) as info:
            budget_verdict(1.0, 0.1, bad)
        assert str(info.value) == f"invalid budget {bad!r}: expected a number > 0"
    with pytest.raises(ValueError) as cv:
        budget_verdict(1.0, 0.1, 1.0, between_run_cv=-0.5)
    assert str(cv.value) == "invalid between_run_cv -0.5: expected a fraction >= 0"
    with pytest.raises(ValueError, match="invalid between_run_cv inf"):
        budget_verdict(1.0, 0.1, 1.0, between_run_cv=math.inf)
    assert budget_verdict(1.0, 0.1, 1e-9).verdict == OVER  # any budget > 0


def test_budget_round_trip_of_a_one_window_verdict() -> None:
    v = budget_verdict(11.0, math.nan, 10.0, quantity="kWh")
    d = json.loads(json.dumps(v.to_dict()))
    assert d == {
        "verdict": "over",
        "value": 11.0,
        "low": None,
        "high": None,
        "budget": 10.0,
        "quantity": "kWh",
        "basis": "one window",
    }
    back = BudgetDecision.from_dict(d)
    assert back.to_dict() == v.to_dict() and back.failed
    assert (
        back.describe() == "over budget: projected 11 kWh (no interval: one window) exceeds 10 kWh"
    )


def test_budget_one_window_has_no_bounds() -> None:
    v = budget_verdict(9.0, math.nan, 10.0)
    assert math.isnan(v.low) and math.isnan(v.high)
    assert (v.verdict, v.basis) == (UNDER, "one window")


# -- formatting helpers -----------------------------------------------------------------------


def test_formatting_helpers() -> None:
    assert fmt.fmt_sig(1000.0) == "1,000" and fmt.fmt_sig(999.4) == "999"
    assert fmt.fmt_sig(-1500.0) == "-1,500" and fmt.fmt_sig(-999.0) == "-999"
    assert fmt.fmt_sig(0.012345) == "0.0123"
    assert fmt.fmt_sig(math.inf) == "inf" and fmt.fmt_sig(math.nan) == "nan"
    assert fmt.fmt_pct(math.inf) == "+inf%" and fmt.fmt_pct(-math.inf) == "-inf%"
    assert fmt.fmt_pct(5.24) == "+5.2%" and fmt.fmt_pct(-5.24) == "-5.2%"
    assert fmt.fmt_rel_pm(None) == "±n/a" and fmt.fmt_rel_pm(math.nan) == "±n/a"
    assert fmt.fmt_rel_pm(math.inf) == "±inf%"
    assert fmt.fmt_rel_pm(0.01) == "±1.0%" and fmt.fmt_rel_pm(0.0099) == "±0.99%"
    assert fmt.fmt_rel_pm(0.1234) == "±12.3%"
    assert fmt.plural("window", 1) == "window" and fmt.plural("window", 0) == "windows"
    assert json_num_inf(-math.inf) == "-inf" and json_num_inf(math.inf) == "inf"
    assert json_num_inf(math.nan) is None and json_num_inf(2) == 2 and json_num_inf("x") == "x"
    assert math.isnan(stats.num(None)) and stats.num("inf") == math.inf and stats.num(3) == 3.0


def test_pm_switches_format_at_one_percent() -> None:
    assert fmt.fmt_rel_pm(0.00992) == "±0.99%"  # below 1%: two significant digits
