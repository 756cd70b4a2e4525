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

import argparse
import os
from typing import Any

import pytest

from . import planner as pl
from .budget import BudgetRun, Spec
from .registry import Key, Registry

REGISTRY_KEY = pytest.StashKey[Registry]()
WORKER_OUTPUT_KEY = "co2_benchmarks_registry"
DEFAULT_TIME_BUDGET_S = {"paper": 2.0, "smoke": 0.25}
PAPER_BUDGET_MARKER = "paper_budget"
DEFAULT_OUT = "co2-out"
SMOKE_STEPS = {"warmup": 2, "min_steps": 4}
OUT_KEY = pytest.StashKey[dict]()
START_KEY = pytest.StashKey[float]()
BUDGET_KEY = pytest.StashKey[BudgetRun]()
CONFIG_MARKER = "bench_config"
SAMPLERS_ID = "samplers/3d-medium/3d-64"
#: a config's line is printed when it starts if it is planned to take at least this long
ANNOUNCE_S = 20.0


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


def _budget_arg(text: str) -> str:
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
        "--co2-bench-budget",
        dest="co2_bench_budget",
        type=_budget_arg,
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


def config_id(key: Key | str) -> str:
    return key if isinstance(key, str) else key.id


def make_spec(key: Key | str, settings: dict[str, Any], single: Spec | None = None) -> Spec:
    """The planner's view of one config (reference costs, peak RSS) from its registry key."""
    from . import costs
    from . import workloads as w
    from .verdict_ratios import key_label

    scale = settings["scale"]
    steps = dict(
        time_budget_s=settings["time_budget_s"],
        min_steps=settings["min_steps"],
        warmup=settings["warmup"],
    )
    smoke_rss = 0.5  # GB: tiny shapes; the check matters at paper scale
    if isinstance(key, str):  # the samplers' round-robin
        model, image = w.INFERENCE_CONFIG
        label = f"synth {model} {w.scaled_label(w.IMAGE_SIZES[image], scale)} {len(w.SAMPLERS)} samplers"
        return Spec(
            costs.samplers_config(key, label, decode=True, **steps),
            smoke_rss if scale == "smoke" else costs.peak_rss_gb("synth", model, image),
            image,
            costs.samplers_config(key, label, decode=False, **steps),
        )
    label = key_label(key, scale)
    if key.phase == "train" and key.variant.startswith("ddp-"):
        world = int(key.variant.rsplit("-", 1)[1])
        base = (
            single.config if single else costs.train_config(key.model, key.image, "", "", **steps)
        )
        rss = costs.peak_rss_gb("train", key.model, key.image, world)
        return Spec(
            costs.ddp_config(key.id, label, base, world), smoke_rss if scale == "smoke" else rss
        )
    rss = costs.peak_rss_gb(key.phase, key.model, key.image)
    rss = smoke_rss if scale == "smoke" else rss
    if key.phase == "train":
        return Spec(costs.train_config(key.model, key.image, key.id, label, **steps), rss)
    return Spec(
        costs.synth_config(key.model, key.image, key.id, label, decode=True, **steps),
        rss,
        key.image,
        costs.synth_config(key.model, key.image, key.id, label, decode=False, **steps),
    )


def _config_key(item: pytest.Item) -> Key | str | None:
    mark = item.get_closest_marker(CONFIG_MARKER)
    return mark.args[0] if mark is not None else None


def _specs(config: pytest.Config, items: list[pytest.Item]) -> dict[str, Spec]:
    """The configs these items measure (several tests may share one: samplers, reuse)."""
    settings = bench_settings(config)
    specs: dict[str, Spec] = {}
    for item in items:
        key = _config_key(item)
        if key is None or config_id(key) in specs:
            continue
        single = None
        if isinstance(key, Key) and key.variant.startswith("ddp-"):
            single = specs.get(Key("train", key.model, key.image, "", "single-process").id)
        specs[config_id(key)] = make_spec(key, settings, single)
    return specs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Measurements cheapest first (the job budget's order, ``planner.order``), the
    renderings after them, the relation checks after every measurement they read
    (pytest-randomly shuffles before this hook; a stable sort keeps its order where ranks tie)."""
    specs = _specs(config, items)
    order = [c.key for c in pl.order(s.config for s in specs.values())]
    rank = {k: i for i, k in enumerate(order)}

    def sort_key(item: pytest.Item) -> tuple[int, int]:
        key = _config_key(item)
        return _stage(item), rank.get(config_id(key), len(order)) if key is not None else len(order)

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
    specs = _specs(config, session.items)  # the items left after -k, -m, deselection
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
    key = _config_key(request.node)
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
