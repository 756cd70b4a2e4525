"""pytest wiring: options, the ``co2_meter`` fixture, the ``co2_budget`` marker, reports.

The entry point (``pytest11``: ``co2 = pytest_co2.plugin``): the hooks that set the plugin
up. The work is done by the modules beside this one:

- ``options``: command line, ini and environment into one frozen ``Settings``;
- ``session``: the session's state and the end of the run; ``runtest``: the per-test hooks,
  registered once some test measures;
- ``terminal``: the header and the summary (registered beside the session object);
- ``provider``: which backend this process measures with (opened on first use, never by an
  xdist controller), its lock policy and idle power;
- ``fixture``: the ``co2_meter`` object; ``collector``: each test's typed records;
- ``progress``: the live line; ``writer``: JSON, baseline, markdown files and the journal;
- ``xdist``: where this process sits in a pytest-xdist run; ``sigterm``: SIGTERM as Ctrl-C.

Each process (the single one, or every xdist worker) measures and evaluates its own tests;
workers send their records on the test reports and the controller collects them, so the
summary, the JSON and the budgets are the same with and without xdist.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pytest


def skip_assertion_rewriting(meta_path: Iterable[object], package: str = "pytest_co2") -> None:
    """Take ``package`` off pytest's list of plugin packages whose modules it rewrites.

    pytest rewrites the asserts of every module of a distribution that has a ``pytest11``
    entry point: each import of the plugin's modules goes through its hook (a second
    path search, a pattern match, its own cached bytecode). The package's docstring says
    PYTEST_DONT_REWRITE, but the hook reads that only after all of it. The plugin asserts
    nothing for users; going around the hook made a ``--co2-all`` run of 200 trivial tests
    execute 5% fewer instructions. Uses the hook's private ``_must_rewrite`` set where it
    exists; anything else is left alone.
    """
    for finder in meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        if type(finder).__name__ == "AssertionRewritingHook" and isinstance(marked, set):
            marked.discard(package)
            cache = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()


skip_assertion_rewriting(sys.meta_path)  # before this package imports anything of its own

from . import xdist  # noqa: E402
from .options import add_options, resolve  # noqa: E402
from .session import RUNTIME_KEY, Co2BudgetWarning, Co2Session  # noqa: E402

if TYPE_CHECKING:
    from .fixture import Co2Meter

__all__ = ["STATE_KEY", "Co2BudgetWarning", "Co2Session", "co2_meter"]

STATE_KEY: pytest.StashKey[Co2Session] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Before any conftest imports torch: the quiet runtime (see ``runtime``)."""
    from . import runtime

    if runtime.wanted(args, os.environ):
        early_config.stash[RUNTIME_KEY] = runtime.QuietRuntime()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec

    pluginmanager.add_hookspecs(hookspec)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    from ..constants import DEFER_MARKER_HELP, MARKER_HELP
    from . import sci
    from .defer import DeferHooks
    from .progress import ProgressLine
    from .terminal import Co2Terminal

    config.addinivalue_line("markers", MARKER_HELP)
    settings = resolve(config)
    if settings.backend != "auto":  # the default needs no check (nor the provider module)
        from .provider import check_backend_name

        check_backend_name(config, settings.backend)
    sci.check(settings)  # before the session asks a provider anything
    if config.option.help:
        _list_backends_in_help(config)
    state = Co2Session(config, settings, ProgressLine(config))
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "pytest-co2-session")
    config.pluginmanager.register(Co2Terminal(state), "pytest-co2-terminal")
    config.addinivalue_line("markers", DEFER_MARKER_HELP)
    config.pluginmanager.register(DeferHooks(state), "pytest-co2-defer")
    if settings.sci:
        config.pluginmanager.register(sci.SciHooks(state), "pytest-co2-sci")
    if settings.slurm_reconcile:
        from .slurm import SlurmReconcile

        config.pluginmanager.register(SlurmReconcile(state), "pytest-co2-slurm")
    if settings.profile is not None:  # only then: no profile hook runs per test otherwise
        from .profile import register

        state.runtime_line()  # every test is read: the quiet runtime is made in full first
        register(
            config,
            state.provider,
            settings.profile,
            state.role,
            show=settings.report != "off",
            keep=lambda line: (
                state.journal.append(line, state.session_info, sync=False)
                if state.journal is not None
                else None
            ),
        )
    if xdist.role(config) == "controller" and config.pluginmanager.hasplugin("xdist"):
        from .controller import ControllerHooks

        config.pluginmanager.register(ControllerHooks(state), "pytest-co2-xdist")


def _list_backends_in_help(config: pytest.Config) -> None:
    """``--help`` names every backend, those of plugins and conftests included (the parser
    was built before they were loaded, so the help text is completed here)."""
    from .provider import backend_names

    optparser = getattr(getattr(config, "_parser", None), "optparser", None)
    for action in getattr(optparser, "_actions", ()):
        if "--co2-backend" in getattr(action, "option_strings", ()):
            action.help = (
                f"energy source, one of: {', '.join(backend_names(config))} (default auto)"
            )


@pytest.fixture
def co2_meter(request: pytest.FixtureRequest) -> Iterator[Co2Meter]:
    """Measure the energy of code regions in this test, step by step (see pytest_co2.meter)."""
    from .runtest import METER_KEY

    state = request.config.stash[STATE_KEY]
    meter = state.make_meter(request.node)
    request.node.stash[METER_KEY] = meter
    state.report_phases()
    yield meter
    meter.ended_test = request.node.nodeid  # kept past its test, it refuses to measure
