"""The session's state and how it ends: one object per process, registered as a plugin.

It owns what a run measures with (the accounting, the backend provider, the collector of
test records), makes the meters, registers the per-test hooks (``runtest``) once some test
measures, and finishes the run (comparison, reports, exit status). The terminal's part
(header, summary) is ``terminal.Co2Terminal``, registered beside it, which only reads this
state.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from ..options import Settings
from . import sigterm, xdist
from .runtest import (
    Co2BudgetWarning,
    LogReports,
    RuntestHooks,
    budget_of,
    measures,
    unmarked,
    warn_at,
)

if TYPE_CHECKING:
    from ..carbon.accounting import Accounting
    from ..reporting.baseline import Baseline, Comparison
    from ..reporting.json_report import Report
    from ..reporting.origin import OriginInfo
    from ..reporting.session import SessionInfo
    from ..reporting.storage import Journal
    from ..reporting.vcs import CommitInfo
    from .fixture import Co2Meter
    from .progress import ProgressLine
    from .provider import BackendProvider
    from .runtime import QuietRuntime

RUNTIME_KEY: pytest.StashKey[QuietRuntime] = pytest.StashKey()  # see ``runtime``
__all__ = ["RUNTIME_KEY", "Co2BudgetWarning", "Co2Session"]


class Co2Session:
    """Per-process session state, registered as a plugin so its hooks can reach it."""

    def __init__(self, config: pytest.Config, settings: Settings, progress: ProgressLine) -> None:
        from .collector import Collector
        from .live_intensity import resolve_live
        from .writer import ReportWriter

        self.config = config
        self.settings = settings
        self.role = xdist.role(config)
        self.is_worker = self.role == "worker"
        self.started = _dt.datetime.now().astimezone()
        self.live = resolve_live(config, settings)  # --co2-intensity-source, once, at start
        self.collector = Collector()
        self.progress = progress
        self.writer = ReportWriter()
        self.baseline_path, self.baseline = self._load_baseline()
        self.comparison: Comparison | None = None
        self._warned: set[str] = set()
        self.recovery_note: str | None = None  # a killed run's journal recovered at start
        self.journal: Journal | None = None
        target = settings.json or self.saved_path()
        if not self.is_worker:
            self._check_paths(target)
        if target is not None and not self.is_worker:
            self.journal, self.recovery_note = self.writer.open_journal(target)
        self._sigterm = None if self.is_worker else sigterm.install()
        self._runtest: RuntestHooks | None = None
        if settings.all or self.role == "controller":  # a controller collects every worker's
            self.measure_tests()

    @functools.cached_property
    def provider(self) -> BackendProvider:
        """This process's backend provider, made when first asked for (it opens the backend
        only on first use in turn)."""
        from .provider import BackendProvider

        provider = BackendProvider(self.config, self.settings)
        provider.on_lock_wait = self.progress.lock_wait
        return provider

    @functools.cached_property
    def accounting(self) -> Accounting:
        """Eq. 1 for this session, built when a figure is first converted or shown (the
        options that choose the intensity were checked at start): a run that measures
        nothing reads no intensity table."""
        from ..carbon.accounting import Accounting
        from .live_intensity import region_for

        s, live = self.settings, self.live
        return Accounting(
            region_for(live, s),
            s.month,
            pue=s.pue,
            intensity_g_per_kwh=s.intensity,
            intensity_file=s.intensity_file,
            whatif_regions=s.regions,
            intensity=None if live is None else live.intensity,
            forecast=() if live is None else live.forecast,
        )

    def _check_paths(self, target: str | None) -> None:
        """Every file this run writes or reads, resolved once: two that are one file is a
        usage error naming both options; the reports are watched for another writer."""
        from .writer import check_paths

        s = self.settings
        source = s.intensity_source or ""
        journal = None if target is None else target + ".journal.jsonl"
        outputs = {
            "--co2-json": s.json,
            "--co2-save": self.saved_path(),
            "--co2-markdown": s.markdown,
            "the journal of the report": journal,
        }
        inputs = {
            "--co2-compare": self.baseline_path,
            "--co2-intensity-file": s.intensity_file,
            "--co2-intensity-source": source[5:] if source.startswith("file:") else None,
        }
        saved = outputs["--co2-save"]
        # comparing with a saved run and saving over it is the usual cycle: the baseline is
        # read at start-up, before this run writes
        if self.baseline_path and saved and _same(self.baseline_path, saved):
            inputs["--co2-compare"] = None
        check_paths(outputs, inputs)
        self.writer.watch([p for p in (s.json, self.saved_path(), s.markdown) if p])

    def measure_tests(self) -> None:
        """Register the per-test hooks (once): some test measures, so the quiet runtime's
        process part is made now, before any measured code."""
        if self._runtest is None:
            self.runtime_line()
            self._runtest = RuntestHooks(self)
            self.config.pluginmanager.register(self._runtest, "pytest-co2-runtest")
            if self.reports_outcomes():
                self.config.pluginmanager.register(LogReports(self), "pytest-co2-reports-log")

    def writes_report(self) -> bool:
        """Whether the run ends with a report file: ``--co2-json``, ``--co2-save``,
        ``--co2-markdown``."""
        s = self.settings
        return bool(s.json or s.save or s.markdown)

    def reports_outcomes(self) -> bool:
        """Whether the tests' outcomes are said anywhere: in a report file or its journal,
        or by the xdist controller, which receives the workers' records with them. The
        terminal summary and the gates do not read them."""
        if self.is_worker:
            return False
        return self.role == "controller" or self.journal is not None or self.writes_report()

    def measure_known(self) -> bool:
        """Whether this process is known to measure: a test does (the per-test hooks are
        registered), or ``--co2-profile`` reads every test."""
        return self._runtest is not None or self.settings.profile is not None

    def runtime_line(self) -> str | None:
        """What the quiet runtime did (None: switched off)."""
        quiet = self.config.stash.get(RUNTIME_KEY, None)
        return None if quiet is None else quiet.line()

    def report_phases(self) -> None:
        """A test has a meter of its own (the fixture): its phases' records go on their
        reports (see ``runtest.PhaseReports``)."""
        self.measure_tests()
        assert self._runtest is not None
        self._runtest.report_phases()

    @pytest.hookimpl(trylast=True)  # after the hooks that add markers
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if measures(items, self.settings):
            self.measure_tests()
            assert self._runtest is not None
            self._runtest.unmarked = unmarked(items)

    # -- baseline ----------------------------------------------------------------------------
    @property
    def storage_dir(self) -> str:
        from ..reporting.storage import STORAGE_DIR

        return os.path.join(str(self.config.rootpath), STORAGE_DIR)

    def saved_path(self) -> str | None:
        """Where ``--co2-save=NAME`` saves this run (None without it)."""
        if not self.settings.save:
            return None
        from ..reporting.storage import saved_path

        return os.fspath(saved_path(self.storage_dir, self.settings.save))

    def _load_baseline(self) -> tuple[str | None, Baseline | None]:
        """Load the ``--co2-compare`` run now (checked at start-up, before this run may save
        over it): a bad one is a usage error naming the file and the first bad field."""
        s = self.settings
        if self.is_worker or (s.compare is None and not s.compare_fail):
            return None, None
        from ..reporting.storage import load_baseline, resolve_baseline

        try:
            path = resolve_baseline(s.compare, self.storage_dir)
            return os.fspath(path), load_baseline(path)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    # -- fixture ---------------------------------------------------------------------------
    def make_meter(self, item: pytest.Item) -> Co2Meter:
        from .fixture import Co2Meter

        self.measure_tests()  # a fixture requested at run time (``request.getfixturevalue``)
        assert self._runtest is not None
        backend = self.provider.backend
        for message in self.provider.take_warnings():
            warn_at(item, message)
        try:
            budget = budget_of(item, self.settings, self._runtest.unmarked)
        except ValueError:
            budget = None  # reported as a failure by pytest_runtest_call
        meter = Co2Meter(
            backend,
            self.accounting,
            self.settings,
            budget=budget,
            on_record=self.collector.on_record,
            progress=self.progress.update if self.progress.enabled() else None,
            idle_w=self.provider.idle_w if self.settings.subtract_idle else None,
        )
        meter.warn = self._warn_once
        guard = self.provider.window_guard()
        if guard is not None:
            meter.on_window_enter = guard.enter
            meter.on_window_exit = guard.exit
        return meter

    def _warn_once(self, message: str) -> None:
        """A warning per cause per session (not per test or per window)."""
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    # -- the report --------------------------------------------------------------------------
    def session_info(self) -> SessionInfo:
        """The report's session block as of now (the run has not ended)."""
        from ..reporting.session import session_info
        from ..reporting.session_parts import IdleInfo

        s, controller = self.settings, self.role == "controller"
        more: dict[str, Any] = {}
        if controller:
            workers = dict(self.provider.worker_facts)
            policies = [f.exclusive for f in workers.values() if f.exclusive]
            more.update(
                backend=self.provider.describe(),
                workers=workers,
                exclusive=policies[0] if policies else None,  # the same in every worker
            )
        else:
            more["exclusive"] = self.provider.exclusive_info()
            if s.idle:
                more["idle"] = IdleInfo(
                    seconds=s.idle,
                    power_w=self.provider.facts().idle_w,
                    subtracted=s.subtract_idle,
                    extra=self.provider.idle_extra(),
                )
        if self.live is not None and self.live.forecast:  # --co2-intensity-source's forecast
            more["intensity_forecast"] = tuple(self.live.forecast)
        more["origin"] = self.origin()
        if s.save:  # the commit a saved run measured: git asked once, only when saving
            more["vcs"] = self.commit
        info = session_info(
            s.to_dict(),
            None if controller else self.provider.backend,
            self.started,
            intensity=self.accounting.intensity,
            runtime=self.runtime_line(),
            xdist_workers=xdist.worker_count(self.config) if controller else None,
            **more,
        )
        return info.ended(exit_status=None, interrupted=False)

    @functools.cached_property
    def commit(self) -> CommitInfo | None:
        """The git commit checked out at the root dir (None: no git, no repository)."""
        from ..constants import STORAGE_DIR
        from ..reporting.vcs import detect_commit

        return detect_commit(str(self.config.rootpath), ignore=(STORAGE_DIR,))

    def origin(self) -> OriginInfo:
        """Host key, run, shard (pytest-split's ``--group``/``--splits``, pytest-shard's
        ``--shard-id``/``--num-shards`` where given) and rank
        facts of this process, for ``pytest-co2 combine``."""
        from ..reporting.origin import detect

        def int_option(name: str) -> int | None:
            value = getattr(self.config.option, name, None)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        group, splits = int_option("group"), int_option("splits")  # pytest-split
        shard_id, shards = int_option("shard_id"), int_option("num_shards")  # pytest-shard
        if group is None and shard_id is not None and shards:
            group, splits = shard_id + 1, shards  # 0-based there
        return detect(os.environ, run_id=self.settings.run_id, group=group, splits=splits)

    def advice(self) -> dict[str, Any] | None:
        """The ``--co2-advise`` block for the records so far."""
        if not self.settings.advise or not self.collector.records():
            return None
        from ..reporting.advice import advise_run

        return advise_run(self.collector.records(), self.accounting, self.settings.regions)

    def report(self, exit_status: int | None, interrupted: bool) -> Report:
        from ..reporting.json_report import Report

        session = self.session_info().ended(exit_status=exit_status, interrupted=interrupted)
        block = self.advice()
        return Report(
            session=session,
            tests=self.collector.records(),
            comparison=self.comparison,
            extra={} if block is None else {"advice": block},
        )

    # -- the end -----------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            from .provider import WORKER_FACTS_KEY

            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[WORKER_FACTS_KEY] = self.provider.facts().to_dict()
            return
        status = int(exitstatus)
        interrupted = status == pytest.ExitCode.INTERRUPTED
        if self.baseline is not None and self.baseline_path is not None:
            from ..reporting.baseline import compare

            self.comparison = compare(
                self.baseline_path,
                self.baseline,
                self.collector.records(),
                self.settings.compare_fail,
                strict=self.settings.compare_strict,
            )
            if self.comparison.failures and status == pytest.ExitCode.OK:
                session.exitstatus = status = pytest.ExitCode.TESTS_FAILED
        s = self.settings
        if not self.writes_report():
            return
        report = self.report(status, interrupted)
        data = report.to_dict()
        self.config.hook.pytest_co2_update_json(config=self.config, report=data)
        report.extra.update({k: data[k] for k in ("profile", "defer", "sci") if k in data})
        written, saved = self.writer.outputs(
            data,
            report,
            json_path=s.json,
            saved=self.saved_path(),
            markdown=s.markdown,
            interrupted=interrupted,
        )
        if not saved and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a baseline not saved is an error
        if self.journal is not None:
            self.journal.close(remove=written)
            if self.journal.error:
                self.writer.errors.append(self.journal.error)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if "provider" in self.__dict__:  # made (see ``provider``)
            self.provider.close()
        if self._sigterm is not None:
            sigterm.restore(self._sigterm)


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
