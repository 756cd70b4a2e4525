"""``--co2-profile``: each test's phases, fixture setups and measure() regions as a tree.

Registered only with ``--co2-profile``: without it no hook of this module runs. The
recorder (in the process that runs the tests: the single one, or each xdist worker) reads
the backend once at every boundary: the start and end of each test
(``pytest_runtest_protocol``), of each phase (``pytest_runtest_setup``/``call``/``teardown``),
of each fixture's setup (``pytest_fixture_setup``) and of each ``co2_meter.measure()`` or
``steps()`` region (a listener chained onto the fixture's meter, which calls it just before
the window's first reading and just after its last). Its wrappers are the outermost
(``tryfirst``), so a phase holds the plugin's own work in it. A meter made by the plugin
itself (``--co2-all``, a budget without the fixture) measures the whole call phase: the
phase is its node. Under xdist each worker sends its tree to the controller when it ends
(``workeroutput``), where the files and the summary are made (``profile_output``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ..reporting.profile import Node, Profile
from .profile_output import WORKER_KEY, ProfileOutput, ProfileXdist

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..measure.meter import Meter
    from ..measure.window import Window
    from .provider import BackendProvider

_LEFT_OPEN = "a fixture or region that was still open when its parent ended was closed with it"


class ProfileRecorder:
    """Builds the tree of the tests this process runs (see the module's docstring)."""

    def __init__(
        self,
        provider: BackendProvider,
        profile: Profile,
        process: str,
        keep: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._provider = provider
        self.process = process
        self._keep = keep  # appends a line to the run's journal (None: no journal)
        self.profile = profile
        self.roots: list[Node] = profile.processes.setdefault(process, [])
        self._stack: list[tuple[Node, float]] = []  # open nodes, with their start time
        self._backend: Backend | None = None
        self._clock: Callable[[], float] = time.perf_counter
        self._method = "none"
        self.failure: str | None = None

    # -- readings -----------------------------------------------------------------------
    def _now(self) -> tuple[int, float] | None:
        """The backend's cumulative energy (integer µJ) and the clock; None once a read
        failed (the profile stops there, with a note; the tests go on)."""
        if self.failure is not None:
            return None
        try:
            backend = self._backend
            if backend is None:
                backend = self._backend = self._provider.backend  # opened (and idle) first
                self._clock = getattr(backend, "clock", time.perf_counter)
                self._method = backend.method
            if "torch" in sys.modules:  # queued GPU work belongs to the span that queued it
                from ..backends.cuda import synchronize_all

                synchronize_all()
            t = self._clock()
            return round(math.fsum(backend.read_j()) * 1e6), t
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self.profile.notes.append(
                f"the energy backend failed ({self.failure}); the profile stops there"
            )
            while self._stack:  # what is open ends where its last reading was
                node, _ = self._stack.pop()
                node.end_uj = max(
                    [node.start_uj] + [c.start_uj + c.energy_uj for c in node.children]
                )
            return None

    def open(self, name: str, kind: str, scope: str | None = None) -> Node | None:
        now = self._now()
        if now is None:
            return None
        uj, t = now
        node = Node(name=name, kind=kind, start_uj=uj, method=self._method, scope=scope)
        (self._stack[-1][0].children if self._stack else self.roots).append(node)
        self._stack.append((node, t))
        return node

    def close(self, node: Node | None) -> None:
        """End ``node`` (and anything still open inside it, with a note)."""
        if node is None or not any(n is node for n, _ in self._stack):
            return
        now = self._now()
        if now is None:
            return
        uj, t = now
        while self._stack:
            top, t0 = self._stack.pop()
            top.end_uj = max(uj, top.start_uj)  # a counter that went back: 0, not negative
            top.duration_s = max(t - t0, 0.0)
            if top is node:
                return
            if _LEFT_OPEN not in self.profile.notes:
                self.profile.notes.append(_LEFT_OPEN)

    def _span(self, name: str, kind: str) -> Generator[None, Any, Any]:
        node = self.open(name, kind)
        try:
            return (yield)
        finally:
            self.close(node)

    # -- hooks ----------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        node = self.open(item.nodeid, "test")
        try:
            return (yield)
        finally:
            self.close(node)
            if self._keep is not None and node is not None and node.end_uj is not None:
                from ..reporting.storage import JOURNAL_PROFILE_KEY

                self._keep({JOURNAL_PROFILE_KEY: {"process": self.process, "tree": node.to_dict()}})

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._span("setup", "phase"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._span("call", "phase"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._span("teardown", "phase"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        node = self.open(fixturedef.argname, "fixture", scope=fixturedef.scope)
        try:
            result = yield
        finally:
            self.close(node)
        if fixturedef.argname == "co2_meter":
            from ..measure.meter import Meter

            if isinstance(result, Meter):
                self.attach(result)
        return result

    def attach(self, meter: Meter) -> None:
        """Listen to ``meter``'s windows: each is a region node (the listeners it already
        has, a device lock, run first on entry and last on exit)."""
        enter0, exit0 = meter.on_window_enter, meter.on_window_exit
        regions: dict[int, Node] = {}

        def enter(window: Window) -> None:
            if enter0 is not None:
                enter0(window)
            node = self.open(window.name, "region")
            if node is not None:
                regions[id(window)] = node

        def exit_(window: Window) -> Sequence[str] | None:
            self.close(regions.pop(id(window), None))
            return None if exit0 is None else exit0(window)

        meter.on_window_enter = enter
        meter.on_window_exit = exit_

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller makes the outputs
            workeroutput[WORKER_KEY] = {
                "tests": [root.to_dict() for root in self.roots],
                "notes": list(self.profile.notes),
            }


def register(
    config: pytest.Config,
    provider: BackendProvider,
    path: str,
    role: str,
    *,
    show: bool = True,
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Register the profile's hooks: the recorder where tests run, the outputs where the
    run is reported (``role``: ``single``, ``worker`` or ``controller``; ``show``: the top
    entries in the summary; ``keep``: appends each finished test's tree to the journal of a
    single process)."""
    profile = Profile()
    if role != "controller":
        workerinput = getattr(config, "workerinput", None) or {}
        process = str(workerinput.get("workerid", "main"))
        config.pluginmanager.register(
            ProfileRecorder(provider, profile, process, keep if role == "single" else None),
            "pytest-co2-profile-recorder",
        )
    if role != "worker":
        config.pluginmanager.register(ProfileOutput(profile, path, show=show), "pytest-co2-profile")
    if role == "controller" and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(ProfileXdist(profile), "pytest-co2-profile-xdist")
