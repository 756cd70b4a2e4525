"""Options, fixtures and hooks of the paper benchmarks (``pytest benchmarks``).

Options (in the plugin's ``co2`` group):
  --co2-scale=paper|smoke   true latent shapes (default) or tiny ones that run in seconds
  --co2-time-budget=SECONDS measured seconds per measurement after the minimum of 2 steps
                            (default 3 at paper scale, 0.25 at smoke scale)
  --co2-paper-report=PATH   markdown with our figures beside the paper's, PNG charts beside it
  --co2-torch-threads=N     torch intra-op threads (default: CPU cores / xdist workers)

Budgets: the test modules mark their params with ``paper_budget`` (see ``paper.py``); here
they become ``co2_budget(kwh=...)`` scaled to the run's projection target. Unless the user
chose a budget mode (``--co2-budget-mode``, ``PYTEST_CO2_BUDGET_MODE`` or the ini key
``co2_budget_mode``), the benchmarks use ``warn``: a CPU is far slower than the paper's A100,
and a run over the paper's figure is a finding to report, not a broken test.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import pytest

from .registry import Registry

REGISTRY_KEY = pytest.StashKey[Registry]()
WORKER_OUTPUT_KEY = "co2_benchmarks_registry"
DEFAULT_TIME_BUDGET_S = {"paper": 2.0, "smoke": 0.25}
PAPER_BUDGET_MARKER = "paper_budget"


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = float("nan")
    if not (x > 0 and x != float("inf")):
        raise argparse.ArgumentTypeError(f"invalid time budget {text!r}: expected seconds > 0")
    return x


def _default_threads() -> int:
    """CPU cores shared among xdist workers: oversubscribed threads spin-wait, which the CPU-time
    estimate counts as energy (2 workers x 2 threads on 2 cores cost several times more)."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"invalid thread count {text!r}: expected a whole number >= 1"
        )
    return n


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("co2")
    group.addoption(
        "--co2-scale",
        dest="co2_bench_scale",
        choices=("paper", "smoke"),
        default="paper",
        help="benchmarks: paper = true latent shapes (default); smoke = tiny shapes and widths, seconds per family",
    )
    group.addoption(
        "--co2-time-budget",
        dest="co2_bench_time_budget",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="benchmarks: measured seconds per measurement beyond the minimum 1 warm-up + 2 steps "
        f"(default {DEFAULT_TIME_BUDGET_S['paper']:g} at paper scale, {DEFAULT_TIME_BUDGET_S['smoke']:g} at smoke)",
    )
    group.addoption(
        "--co2-paper-report",
        dest="co2_bench_paper_report",
        default=None,
        metavar="PATH",
        help="benchmarks: write a markdown comparison with the paper's figures to PATH, PNG charts beside it",
    )
    group.addoption(
        "--co2-torch-threads",
        dest="co2_bench_threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="benchmarks: torch intra-op threads (default: CPU cores / pytest-xdist workers, at least 1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{PAPER_BUDGET_MARKER}(spec): a benchmarks.paper.BudgetSpec; becomes co2_budget(kwh=...) "
        "scaled to the run's projection target",
    )
    config.stash[REGISTRY_KEY] = Registry()
    _default_budget_mode(config)


def _default_budget_mode(config: pytest.Config) -> None:
    """``warn`` unless the user chose a mode on the command line, in the environment or ini."""
    if getattr(config.option, "co2_budget_mode", "absent") is not None:
        return  # given on the command line, or the plugin has no such option
    if os.environ.get("PYTEST_CO2_BUDGET_MODE", "").strip():
        return
    try:
        if str(config.getini("co2_budget_mode") or "").strip():
            return
    except ValueError:
        return
    config.option.co2_budget_mode = "warn"


def _projection_target(config: pytest.Config, unit: str) -> int | None:
    """The run's --co2-extrapolate target for ``unit``, if it gave one."""
    try:
        from pytest_co2.plugin.options import resolve

        return resolve(config).extrapolate.get(unit)
    except Exception:
        return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    targets: dict[str, int | None] = {}
    for item in items:
        mark = item.get_closest_marker(PAPER_BUDGET_MARKER)
        if mark is None or item.get_closest_marker("co2_budget") is not None:
            continue
        spec = mark.args[0]
        if spec.unit not in targets:
            targets[spec.unit] = _projection_target(config, spec.unit)
        n = targets[spec.unit] or spec.n
        item.add_marker(pytest.mark.co2_budget(kwh=spec.scaled_kwh(n), unit=spec.unit))


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bench_registry(request: pytest.FixtureRequest) -> Registry:
    """Every benchmark's recorded measurement, by config (see registry.py)."""
    return request.config.stash[REGISTRY_KEY]


@pytest.fixture(scope="session")
def bench_scale(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("co2_bench_scale")


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest, bench_registry: Registry, bench_scale: str) -> Any:
    """The session's models, decoders and measuring helpers (see harness.py)."""
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    pytest.importorskip("einops", reason="MONAI's attention blocks need einops")
    from .harness import Bench, BenchOptions

    budget = request.config.getoption("co2_bench_time_budget") or DEFAULT_TIME_BUDGET_S[bench_scale]
    threads = request.config.getoption("co2_bench_threads") or _default_threads()
    options = BenchOptions(scale=bench_scale, time_budget_s=budget, threads=threads)
    bench_registry.session.update(scale=bench_scale, time_budget_s=budget, threads=threads)
    return Bench(options, bench_registry)


# -- results: xdist transport and the paper report --------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if data:
        node.config.stash[REGISTRY_KEY].merge_json(data)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the results to the controller
        workeroutput[WORKER_OUTPUT_KEY] = registry.to_json()
        return
    path = config.getoption("co2_bench_paper_report")
    if path:
        from .paper_report import write_report

        written = write_report(registry, path)
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"paper report written to {path} ({len(written) - 1} charts beside it)")
