"""The drift of a run's windows over its course, and what a compare makes of it: exact."""

from __future__ import annotations

import math
import statistics

import pytest

from pytest_co2.measure.drift import combined_cv, drift_cv
from pytest_co2.reporting.delta import Delta, FailSpec

STEP = (9.0,) * 12 + (11.0,) * 12  # the machine slowed down half-way: drift
ALTERNATING = (9.0, 11.0) * 12  # the same scatter, no drift


def test_a_step_change_is_drift_beyond_the_windows_scatter() -> None:
    # 6 blocks of 4: block means -10%, -10%, -10%, +10%, +10%, +10% of the mean (variance
    # 0.012); the windows (±10%, variance 0.24/23) explain 0.24/23/4 of it
    assert drift_cv(STEP) == pytest.approx(math.sqrt(0.012 - 0.24 / 23 / 4))
    assert drift_cv(STEP) == pytest.approx(0.0969, abs=1e-4)


def test_drift_is_relative_whatever_the_unit() -> None:
    # a numpy step is about 0.04 J: the same windows in any unit drift the same
    small = [x * 0.004 for x in STEP]
    assert drift_cv(small) == pytest.approx(drift_cv(STEP), rel=1e-9)
    assert drift_cv([x * 1e6 for x in STEP]) == pytest.approx(drift_cv(STEP), rel=1e-9)


def test_scatter_alone_is_no_drift() -> None:
    assert drift_cv(ALTERNATING) == 0.0
    assert drift_cv((5.0,) * 20) == 0.0


def test_block_means_within_chance_are_no_drift() -> None:
    """Blocks at 10.7 and 9.3 in turn, windows ±1 within each: the block means spread 1.51
    times what the windows' scatter explains, below the chance ratio for 5 degrees of
    freedom (2.214): no drift."""
    windows = [m + d for m in (10.7, 9.3) * 3 for d in (1.0, -1.0, 1.0, -1.0)]
    rel = [x / statistics.fmean(windows) for x in windows]
    blocks = [statistics.fmean(rel[i : i + 4]) for i in range(0, 24, 4)]
    ratio = statistics.variance(blocks) / (statistics.variance(rel) / 4)
    assert ratio == pytest.approx(1.5128, abs=1e-4)
    assert drift_cv(windows) == 0.0


def test_too_few_windows_or_no_positive_mean_is_unknown() -> None:
    assert drift_cv(STEP[:11]) is None  # fewer than 4 blocks of 3
    assert drift_cv((9.0,) * 6 + (11.0,) * 6) is not None  # 12: 4 blocks of 3
    assert drift_cv((0.0,) * 24) is None


def test_the_earliest_windows_that_fill_no_block_are_left_out() -> None:
    # 25 windows: 6 blocks of 4 from the second one on; a wild first window changes nothing
    assert drift_cv((1000.0, *STEP)) == drift_cv(STEP)


def test_combined_is_the_root_mean_square_of_the_known() -> None:
    assert combined_cv(0.3, 0.4) == pytest.approx(math.sqrt(0.125))
    assert combined_cv(None, 0.4) == 0.4
    assert combined_cv(None, None) == 0.0


def _delta(base: tuple[float, ...], cur: tuple[float, ...]) -> Delta:
    return Delta("t", "m", 1.0, 1.0, 1.0, 1.0, samples=cur, base_samples=base)


def test_a_drifting_baseline_makes_a_plus_30_percent_compare_inconclusive() -> None:
    """+30% against a 10% threshold: a regression between steady runs; with the baseline's
    windows drifting ±9.7% (and the current's steady: 0), the spread allowed per run is
    the root mean square of the two, the interval holds the threshold, the line says why."""
    steady = _delta(ALTERNATING, tuple(x * 1.3 for x in ALTERNATING)).decide(FailSpec("energy", 10))
    assert steady is not None and steady.outcome == "regression"
    assert steady.between_run_cv == 0.0 and steady.contention is None
    d = _delta(STEP, tuple(x * 1.3 for x in ALTERNATING)).decide(FailSpec("energy", 10))
    assert d is not None and d.outcome == "inconclusive"
    assert d.change == pytest.approx(0.3)
    assert d.between_run_cv == pytest.approx(combined_cv(drift_cv(STEP), 0.0))
    assert d.contention == (
        "±6.9% allowed between runs: the machine's speed drifted within the runs (block means "
        "of the windows ±9.7% in the baseline, ±0% now)"
    )
