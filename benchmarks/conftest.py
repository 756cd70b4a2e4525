"""Options, fixtures and hooks of the paper benchmarks (``pytest benchmarks``).

Options (in the plugin's ``co2`` group):
  --co2-scale=paper|smoke   true latent shapes (default) or tiny ones that run in seconds
  --co2-time-budget=SECONDS measured seconds per measurement after the minimum of 2 steps
                            (default 2 at paper scale, 0.25 at smoke scale)
  --co2-bench-budget=20m    the whole job's time: plans steps per config so that the run ends
                            within it (default 20m at paper scale, 5m at smoke; off: the
                            fixed steps); see planner.py
  --co2-paper-report=PATH   markdown with our figures beside the paper's, PNG charts beside it
  --co2-torch-threads=N     torch intra-op threads (default: CPU cores / xdist workers)
  --co2-out=DIR|off         folder of the run's outputs (default co2-out): the plugin's JSON
                            and markdown unless --co2-json/--co2-markdown say otherwise, the
                            paper report and its charts unless --co2-paper-report does

The session ends with the verdict against the paper (``verdict.py``): our / the paper's kg
CO2e per config and one line per finding, in the terminal, in the JSON (``paper_verdict``)
and at the top of the paper report. The paper's figures are not ``co2_budget`` markers: a CPU
is far slower than the paper's A100, and running over them is a finding, not a failure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from . import planner as pl
from .budget import BudgetRun
from .outputs import DEFAULT_OUT, default_outputs, out_dir, outputs_line
from .registry import Registry
from .settings import (
    DEFAULT_TIME_BUDGET_S,
    bench_settings,
    budget_arg,
    job_budget_s,
    positive_float,
    positive_int,
)
from .specs import CONFIG_MARKER, collect_specs, config_id, config_key, stage

REGISTRY_KEY = pytest.StashKey[Registry]()
WORKER_OUTPUT_KEY = "co2_benchmarks_registry"
PAPER_BUDGET_MARKER = "paper_budget"
OUT_KEY = pytest.StashKey[dict]()
START_KEY = pytest.StashKey[float]()
BUDGET_KEY = pytest.StashKey[BudgetRun]()
#: a config's line is printed when it starts if it is planned to take at least this long
ANNOUNCE_S = 20.0


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
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="benchmarks: measured seconds per measurement beyond the minimum 1 warm-up + 2 steps "
        f"(default {DEFAULT_TIME_BUDGET_S['paper']:g} at paper scale, {DEFAULT_TIME_BUDGET_S['smoke']:g} at smoke)",
    )
    group.addoption(
        "--co2-bench-budget",
        dest="co2_bench_budget",
        type=budget_arg,
        default=None,
        metavar="DURATION|off",
        help="benchmarks: the whole job's time (e.g. 20m, 90s, 1.5h): steps per config are planned "
        f"to fit it, the costliest configs last (default {pl.fmt_duration(pl.PAPER_BUDGET_S)} at paper "
        f"scale, {pl.fmt_duration(pl.SMOKE_BUDGET_S)} at smoke; off: the fixed steps)",
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
        type=positive_int,
        default=None,
        metavar="N",
        help="benchmarks: torch intra-op threads (default: CPU cores / pytest-xdist workers, at least 1)",
    )
    group.addoption(
        "--co2-out",
        dest="co2_bench_out",
        type=out_dir,
        default=DEFAULT_OUT,
        metavar="DIR|off",
        help=f"benchmarks: folder for the JSON, markdown, paper report and charts (default {DEFAULT_OUT}; "
        "--co2-json/--co2-markdown/--co2-paper-report win for their file; off: none of these by default)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{PAPER_BUDGET_MARKER}(spec): a benchmarks.paper.BudgetSpec, the paper's figure for the "
        "config; the verdict shows ours / the paper's (it is not a co2_budget)",
    )
    config.addinivalue_line(
        "markers",
        f"{CONFIG_MARKER}(key): the benchmarks.registry.Key (or 'samplers') this test measures, "
        "for the job budget's plan",
    )
    import time

    config.stash[START_KEY] = time.monotonic()  # the job budget counts from here
    config.stash[REGISTRY_KEY] = Registry()
    config.stash[OUT_KEY] = default_outputs(config)
    report = config.getoption("co2_bench_paper_report")
    if report and not hasattr(config, "workerinput") and not config.option.collectonly:
        from .paper_report import clear_outputs

        clear_outputs(report)  # no chart of an earlier run stays beside this run's


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Measurements cheapest first (the job budget's order, ``planner.order``), the
    renderings after them, the relation checks after every measurement they read
    (pytest-randomly shuffles before this hook; a stable sort keeps its order where ranks tie)."""
    specs = collect_specs(config, items)
    order = [c.key for c in pl.order(s.config for s in specs.values())]
    rank = {k: i for i, k in enumerate(order)}

    def sort_key(item: pytest.Item) -> tuple[int, int]:
        key = config_key(item)
        return stage(item), rank.get(config_id(key), len(order)) if key is not None else len(order)

    items.sort(key=sort_key)


def _write_line(config: pytest.Config, text: str) -> None:
    """A line in the terminal between test results (past output capture)."""
    import contextlib

    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or config.get_verbosity() < 0 or hasattr(config, "workerinput"):
        return
    capman = config.pluginmanager.get_plugin("capturemanager")
    ctx: Any = (
        capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    )
    with ctx:
        tr.write_line(text)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """The plan, before the first config runs (every config at paper scale; the head at smoke)."""
    config = session.config
    specs = collect_specs(config, session.items)  # the items left after -k, -m, deselection
    if not specs or config.option.collectonly:
        return
    from . import costs

    settings = bench_settings(config)
    order = [c.key for c in pl.order(s.config for s in specs.values())]
    config.stash[BUDGET_KEY] = run = BudgetRun(
        specs,
        order,
        job_budget_s(config),
        prior=costs.SMOKE_PRIOR if settings["scale"] == "smoke" else 1.0,
        time_budget_s=settings["time_budget_s"],
        min_steps=settings["min_steps"],
        start_t=config.stash.get(START_KEY, None),
    )
    lines = run.plan().lines()
    registry = session.config.stash[REGISTRY_KEY]
    registry.session["plan"] = lines
    registry.session["budget_s"] = run.budget_s
    smoke = session.config.getoption("co2_bench_scale") == "smoke"
    for line in lines[:1] if smoke and "skipped" not in lines[0] else lines:
        _write_line(session.config, line)


@pytest.fixture(autouse=True)
def _bench_budget(request: pytest.FixtureRequest) -> Any:
    """Plan the config this test measures (or skip it, saying why); keep what it cost."""
    config = request.config
    run = config.stash.get(BUDGET_KEY, None)
    key = config_key(request.node)
    if run is None or key is None or config_id(key) not in run.specs:
        yield
        return
    cid = config_id(key)
    earlier = run.done.get(cid)
    if earlier is not None or (run.current is not None and run.current[0] == cid):
        if earlier is not None and earlier.get("skipped"):
            pytest.skip(earlier["skipped"])
        yield  # measured by an earlier test of this config (samplers, reused medium runs)
        return
    control, reason, text = run.start(cid)
    registry = config.stash[REGISTRY_KEY]
    plan = run.plan(cid).get(cid) if control is not None else None
    if control is None or (plan is not None and (plan.cost_s >= ANNOUNCE_S or plan.reduced)):
        _write_line(config, text)
    if control is None:
        registry.session["runs"] = run.done
        pytest.skip(reason)
    try:
        yield
    finally:
        run.finish(cid)
        registry.session["runs"] = run.done


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

    # Smoke steps take milliseconds: more warm-up and measured steps cost little and steady
    # the round-robin sampler ratios on a loaded machine (SMOKE_STEPS).
    options = BenchOptions(**bench_settings(request.config))
    bench_registry.session.update(
        scale=bench_scale, time_budget_s=options.time_budget_s, threads=options.threads
    )
    return Bench(options, bench_registry, request.config.stash.get(BUDGET_KEY, None))


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
    if path and registry.results:
        from .paper_report import write_report

        try:
            config.stash[WRITTEN_KEY] = write_report(registry, path)
        except OSError as exc:
            config.stash[WRITTEN_KEY] = [f"could not write {path}: {exc}"]


WRITTEN_KEY = pytest.StashKey[list]()


@pytest.hookimpl(optionalhook=True)
def pytest_co2_update_json(config: pytest.Config, report: dict[str, Any]) -> None:
    """The verdict against the paper in the plugin's JSON report (``paper_verdict``)."""
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is not None and registry.results and not hasattr(config, "workeroutput"):
        from .verdict_render import verdict_json

        report["paper_verdict"] = verdict_json(registry)


def _terminal_width(tr: Any) -> int:
    try:
        return max(60, min(int(tr._tw.fullwidth), 100))
    except (AttributeError, TypeError, ValueError):
        return 100


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The verdict against the paper, after the emissions summary."""
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is None or not registry.results or hasattr(config, "workeroutput"):
        return
    from .verdict import findings
    from .verdict_ratios import budget_notes, ratios
    from .verdict_render import render_terminal

    tr = terminalreporter
    tr.write_sep("=", "co2 verdict against the paper")
    if registry.session.get("scale") == "smoke":
        tr.write_line("smoke scale: tiny shapes and widths; the numbers check the pipeline only")
    run = config.stash.get(BUDGET_KEY, None)
    fewer, skipped = budget_notes(registry)
    if run is not None and run.done:
        measured = sum(1 for r in run.done.values() if not r.get("skipped"))
        budget = "" if run.budget_s is None else f" of the {pl.fmt_duration(run.budget_s)} budget"
        tr.write_line(
            f"co2 bench: {measured} configs measured, the job so far "
            f"{pl.fmt_duration(run.spent_s())}{budget}"
            + (f"; {len(fewer)} with fewer steps" if fewer else "")
            + (f"; {len(skipped)} skipped" if skipped else "")
        )
    width = _terminal_width(tr)
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    for line in render_terminal(
        findings(registry), ratios(registry), width, fewer, skipped, interrupted=interrupted
    ):
        tr.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Name the output folder on the last line of the run (after pytest's own summary)."""
    if hasattr(config, "workeroutput") or not config.stash.get(REGISTRY_KEY, Registry()).results:
        return  # a worker, or nothing measured (e.g. --collect-only)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    report = config.stash.get(WRITTEN_KEY, [])
    errors = [p for p in report if p.startswith("could not write")]
    given = (getattr(config.option, n, None) for n in ("co2_json", "co2_markdown"))
    written = [os.path.normpath(p) for p in given if p]
    written += [os.path.normpath(p) for p in report if p not in errors]
    line = outputs_line(config.getoption("co2_bench_out"), [*dict.fromkeys(written)])
    if tr is not None:
        for e in errors:
            tr.write_line("pytest-co2 benchmarks: " + e, yellow=True)
        if line:
            tr.write_line(line)
