"""The paired A/B decision (measure.paired): exact numbers from chosen log ratios."""

from __future__ import annotations

import math

import pytest

from pytest_co2.measure.decisions import INCONCLUSIVE, NO_REGRESSION, REGRESSION
from pytest_co2.measure.paired import (
    describe_paired,
    log_ratios,
    look_schedule,
    needed_pairs,
    paired_decision,
    pairs_to_decide,
    sequential_level,
)

T975_DF3 = 3.182446305284263  # Student's t, 97.5% quantile, 3 degrees of freedom
BASE = [2.0, 4.0, 1.0, 8.0]  # different per run: only the ratios matter


def current(ds: list[float]) -> list[float]:
    return [b * math.exp(d) for b, d in zip(BASE, ds, strict=True)]


def test_a_steady_25_percent_increase_is_a_regression() -> None:
    ds = [0.20, 0.22, 0.24, 0.26]  # mean 0.23, sd sqrt(0.002 / 3)
    d = paired_decision(BASE, current(ds), 0.10)
    half = T975_DF3 * math.sqrt(0.002 / 3) / 2
    assert d.outcome == REGRESSION and d.failed
    assert d.change == pytest.approx(math.expm1(0.23), rel=1e-12)
    assert d.low == pytest.approx(math.expm1(0.23 - half), rel=1e-9)  # +20.8%
    assert d.high == pytest.approx(math.expm1(0.23 + half), rel=1e-9)
    assert (d.n, d.base_n, d.method, d.basis) == (4, 4, "paired", "paired: 4 interleaved pairs")
    assert d.base_mean_j == 3.75 and d.mean_j == pytest.approx(sum(current(ds)) / 4, rel=1e-12)
    assert describe_paired(d, BASE, current(ds)).startswith("regression: +25.9% (95% +20.8% to")


def test_unchanged_pairs_are_no_regression() -> None:
    ds = [0.0, 0.01, -0.01, 0.02]  # mean 0.005, sd sqrt(0.0005 / 3)
    d = paired_decision(BASE, current(ds), 0.10)
    half = T975_DF3 * math.sqrt(0.0005 / 3) / 2
    assert d.outcome == NO_REGRESSION
    assert d.high == pytest.approx(math.expm1(0.005 + half), rel=1e-9)


def test_a_wide_spread_is_inconclusive_and_names_the_pairs_that_decide() -> None:
    ds = [0.0, 0.4, 0.1, 0.3]  # mean 0.2, sd sqrt(0.1 / 3): half-width 0.2905 in logs
    d = paired_decision(BASE, current(ds), 0.10)
    assert d.outcome == INCONCLUSIVE and d.low < 0.10 < d.high
    # t975(K - 1) x 0.18257 / sqrt(K) < 0.2 - log(1.1) first at K = 15 (0.1054 vs 0.1047 at 14)
    assert pairs_to_decide(BASE, current(ds), 0.10) == 15
    assert describe_paired(d, BASE, current(ds)).endswith(
        "; about 15 pairs would decide it (--max-runs 15)"
    )


def test_needed_pairs_edges() -> None:
    assert needed_pairs(0.1, 0.0) == 0  # on the threshold: no number of pairs decides
    assert needed_pairs(0.0, 0.05) == 2  # no spread: the smallest paired interval decides
    assert needed_pairs(1.0, 0.001) == 0  # beyond MAX_PAIRS


@pytest.mark.parametrize(
    ("change", "outcome"),
    [(0.20, REGRESSION), (0.151, REGRESSION), (0.10, INCONCLUSIVE), (0.049, NO_REGRESSION)],
)
def test_one_pair_decides_only_clearly_off_the_threshold(change: float, outcome: str) -> None:
    d = paired_decision([1.0], [1.0 + change], 0.10)
    assert d.outcome == outcome and d.basis == "point: one pair, no spread"
    assert math.isnan(d.low) and d.n == 1


@pytest.mark.parametrize(
    ("base", "cur", "message"),
    [
        ([1.0, 2.0], [1.0], "paired runs: 2 baseline and 1 current values: expected the same"),
        ([], [], "paired runs: 0 baseline and 0 current values"),
        ([1.0, 0.0], [1.0, 1.0], "paired runs: per-unit energy 0.0: expected a finite value > 0"),
        ([1.0], [math.nan], "paired runs: per-unit energy nan: expected a finite value > 0"),
    ],
)
def test_bad_input_is_one_line(base: list[float], cur: list[float], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        log_ratios(base, cur)


def test_bad_threshold() -> None:
    with pytest.raises(ValueError, match=r"invalid threshold -0\.1: expected a fraction >= 0"):
        paired_decision([1.0], [1.0], -0.1)


T995_DF3 = 5.840909309733349  # Student's t, 99.5% quantile, 3 degrees of freedom


@pytest.mark.parametrize(
    ("lo", "hi", "looks"),
    [(4, 16, [4, 6, 9, 14, 16]), (4, 4, [4]), (1, 3, [1, 2, 3]), (2, 16, [2, 3, 5, 8, 12, 16])],
)
def test_look_schedule(lo: int, hi: int, looks: list[int]) -> None:
    assert look_schedule(lo, hi) == looks


def test_sequential_level_and_bad_schedules() -> None:
    assert sequential_level(1) == 0.95 and sequential_level(5) == pytest.approx(0.99, abs=1e-15)
    with pytest.raises(
        ValueError, match=r"^invalid --max-runs 3: expected an integer >= --runs \(4\)$"
    ):
        look_schedule(4, 3)
    with pytest.raises(ValueError, match=r"^invalid --runs 0: expected an integer >= 1$"):
        look_schedule(0, 3)
    with pytest.raises(ValueError, match=r"^invalid looks 0: expected an integer >= 1$"):
        sequential_level(0)
    with pytest.raises(ValueError, match=r"^invalid level 1.0: expected a fraction in \[0.5, 1\)"):
        paired_decision([1.0], [1.0], 0.1, level=1.0)


def test_a_look_at_99_percent_is_wider_and_needs_more_pairs() -> None:
    ds = [0.20, 0.22, 0.24, 0.26]
    d = paired_decision(BASE, current(ds), 0.10, level=0.99)
    half = T995_DF3 * math.sqrt(0.002 / 3) / 2
    assert d.low == pytest.approx(math.expm1(0.23 - half), rel=1e-9)  # +16.7%
    assert d.level == 0.99 and d.describe().startswith("regression: +25.9% (99% +16.7% to ")
    wide = [0.0, 0.4, 0.1, 0.3]  # 15 pairs at 95% (above); t995(23) 2.807 / sqrt(24) < 0.5734
    assert pairs_to_decide(BASE, current(wide), 0.10, 0.99) == 24
    assert needed_pairs(0.18257, 0.2 - math.log(1.1), 0.99) == 24
