"""Options, fixtures and hooks of the paper benchmarks (``pytest benchmarks``).

Options (in the plugin's ``co2`` group):
  --co2-scale=paper|smoke   true latent shapes (default) or tiny ones that run in seconds
  --co2-time-budget=SECONDS measured seconds per measurement after the minimum of 2 steps
                            (default 2 at paper scale, 0.25 at smoke scale)
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

import argparse
import os
from typing import Any

import pytest

from .registry import Registry

REGISTRY_KEY = pytest.StashKey[Registry]()
WORKER_OUTPUT_KEY = "co2_benchmarks_registry"
DEFAULT_TIME_BUDGET_S = {"paper": 2.0, "smoke": 0.25}
PAPER_BUDGET_MARKER = "paper_budget"
DEFAULT_OUT = "co2-out"
SMOKE_STEPS = {"warmup": 2, "min_steps": 4}
OUT_KEY = pytest.StashKey[dict]()


def _out_dir(text: str) -> str | None:
    """``--co2-out``: a folder (created when needed) or ``off``."""
    if text.strip().lower() in ("off", "none", "no", ""):
        return None
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"invalid --co2-out {text!r}: a file, expected a folder or off"
        )
    return text


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
    group.addoption(
        "--co2-out",
        dest="co2_bench_out",
        type=_out_dir,
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
    config.stash[REGISTRY_KEY] = Registry()
    config.stash[OUT_KEY] = default_outputs(config)


def _user_set(config: pytest.Config, dest: str) -> bool:
    """Did the user give the plugin's option ``dest`` (command line, environment or ini)?"""
    if getattr(config.option, "co2_" + dest, None) is not None:
        return True
    if os.environ.get("PYTEST_CO2_" + dest.upper(), "").strip():
        return True
    try:
        return bool(str(config.getini("co2_" + dest) or "").strip())
    except ValueError:
        return False


def default_outputs(config: pytest.Config) -> dict[str, str]:
    """Put the JSON, the markdown and the paper report into ``--co2-out`` unless given.

    Runs before the plugin's (trylast) ``pytest_configure`` resolves its settings, so the
    plugin writes the JSON and markdown there as if they had been on the command line.
    Returns what goes where (empty with ``--co2-out=off``).
    """
    out = config.getoption("co2_bench_out")
    if out is None or not hasattr(config.option, "co2_json"):
        return {}
    written: dict[str, str] = {}
    for dest, name in (("json", "co2.json"), ("markdown", "co2.md")):
        if not _user_set(config, dest):
            setattr(config.option, "co2_" + dest, os.path.join(out, name))
            written[dest] = os.path.join(out, name)
    if config.getoption("co2_bench_paper_report") is None:
        config.option.co2_bench_paper_report = os.path.join(out, "paper.md")
        written["paper"] = os.path.join(out, "paper.md")
    if written:
        os.makedirs(out, exist_ok=True)
    return written


def _stage(item: pytest.Item) -> int:
    """0: measures; 1: renders an earlier measurement (Fig. 3); 2: a relation check."""
    names = getattr(item, "fixturenames", ())
    if "bench_registry" not in names:
        return 0
    return 1 if "bench" in names else 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Relation checks after every measurement they read, whatever the order (pytest-randomly
    shuffles before this hook; a stable sort keeps its order within each stage)."""
    items.sort(key=_stage)


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
    # Smoke steps take milliseconds: more warm-up and measured steps cost little and steady
    # the round-robin sampler ratios on a loaded machine.
    steps = SMOKE_STEPS if bench_scale == "smoke" else {}
    options = BenchOptions(scale=bench_scale, time_budget_s=budget, threads=threads, **steps)
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
        from .verdict import verdict_json

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
    from .verdict import findings, ratios, render_terminal

    tr = terminalreporter
    tr.write_sep("=", "co2 verdict against the paper")
    if registry.session.get("scale") == "smoke":
        tr.write_line("smoke scale: tiny shapes and widths; the numbers check the pipeline only")
    for line in render_terminal(findings(registry), ratios(registry), _terminal_width(tr)):
        tr.write_line(line)


def outputs_line(out: str | None, written: list[str]) -> str | None:
    """``co2 outputs in co2-out/: co2.json, co2.md, paper.md, 4 charts (paper-fig*.png)``

    Files outside ``out`` (given with --co2-json ...) are named by their path."""
    files = [p for p in written if os.path.isfile(p)]
    if not files:
        return None
    folder = os.path.normpath(out) if out is not None else None
    inside = [os.path.basename(p) for p in files if os.path.dirname(p) == folder]
    outside = [p for p in files if os.path.dirname(p) != folder]
    charts = [n for n in inside if n.endswith(".png")]
    names = [n for n in inside if not n.endswith(".png")]
    if charts:
        stem = os.path.commonprefix(charts)  # noqa: RUF071 - file names, not paths
        names.append(f"{len(charts)} chart{'s' * (len(charts) > 1)} ({stem}*.png)")
    if not inside:
        return "co2 outputs: " + ", ".join(outside)
    return f"co2 outputs in {folder}/: " + ", ".join(names + outside)


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
