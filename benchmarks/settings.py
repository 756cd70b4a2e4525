"""The benchmarks' options: their argument types and defaults, and a run's settings (scale,
time budget per measurement, threads, warm-up and minimum steps, the job budget)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from . import planner as pl

DEFAULT_TIME_BUDGET_S = {"paper": 2.0, "smoke": 0.25}
SMOKE_STEPS = {"warmup": 2, "min_steps": 4}


def positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = float("nan")
    if not (x > 0 and x != float("inf")):
        raise argparse.ArgumentTypeError(f"invalid time budget {text!r}: expected seconds > 0")
    return x


def budget_arg(text: str) -> str:
    try:
        pl.parse_budget(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _default_threads() -> int:
    """CPU cores shared among xdist workers: oversubscribed threads spin-wait, which the CPU-time
    estimate counts as energy (2 workers x 2 threads on 2 cores cost several times more)."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"invalid thread count {text!r}: expected a whole number >= 1"
        )
    return n


def bench_settings(config: pytest.Config) -> dict[str, Any]:
    """Scale, per-measurement time budget, threads, warm-up and minimum steps of this run."""
    scale = config.getoption("co2_bench_scale")
    return dict(
        scale=scale,
        time_budget_s=config.getoption("co2_bench_time_budget") or DEFAULT_TIME_BUDGET_S[scale],
        threads=config.getoption("co2_bench_threads") or _default_threads(),
        **(SMOKE_STEPS if scale == "smoke" else {"warmup": 1, "min_steps": 2}),
    )


def job_budget_s(config: pytest.Config) -> float | None:
    """``--co2-bench-budget`` in seconds (None: off); the scale's default when not given."""
    text = config.getoption("co2_bench_budget")
    if text is None:
        smoke = config.getoption("co2_bench_scale") == "smoke"
        return pl.SMOKE_BUDGET_S if smoke else pl.PAPER_BUDGET_S
    return pl.parse_budget(text)
