"""Every measurement's energy per unit across the saved runs (``pytest-co2 history``).

The runs (``--co2-save``, ``.co2/*.json``) are put in commit order: the commit time, then the
save time; a run without a commit (saved before commits were recorded, or outside git) is
placed by its save time. Each measurement's per-unit energy is shown with its 95% interval,
and each run is judged against a reference run with the compare's own decision
(:meth:`.baseline.Delta.decide`): the first run of a series is the reference; the first later
run whose change is significant (a regression over the threshold, or an improvement: the
reference a regression over it) is flagged and becomes the next reference.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..frozen import Frozen, record
from ..measure.stats import t975
from .baseline import delta_label
from .delta import FailSpec, compare_tests
from .vcs import CommitInfo, parse_time

if TYPE_CHECKING:
    from ..measure.decisions import CompareDecision
    from .model import Result, TestRecord

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no significant change"


@record
class SavedRun(Frozen):
    """One saved report: its name (file stem), when it was saved, its commit (None: none
    recorded) and its tests."""

    name: str
    path: str
    saved: _dt.datetime
    vcs: CommitInfo | None
    tests: tuple[TestRecord, ...]

    @property
    def order_key(self) -> tuple[_dt.datetime, _dt.datetime, str]:
        committed = None if self.vcs is None else self.vcs.committed_at
        return (committed or self.saved, self.saved, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "saved": self.saved.isoformat(timespec="seconds"),
            "vcs": None if self.vcs is None else self.vcs.to_dict(),
            "ordered_by": "save time" if self.vcs is None else "commit time",
        }


def load_runs(storage_dir: str | os.PathLike[str]) -> tuple[list[SavedRun], list[str]]:
    """The saved runs of ``storage_dir`` in commit order, and a line for each file that
    could not be read (skipped)."""
    from .storage import load_report, saved_runs

    runs, skipped = [], []
    for path in saved_runs(storage_dir):
        try:
            report = load_report(path, what="saved run")
        except ValueError as exc:
            skipped.append(" ".join(str(exc).split()))
            continue
        s = report.session
        mtime = _dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        saved = parse_time(s.finished) or parse_time(s.started) or mtime
        runs.append(SavedRun(path.stem, os.fspath(path), saved, s.vcs, tuple(report.tests)))
    return sorted(runs, key=lambda r: r.order_key), skipped


@record
class Point(Frozen):
    """One run's figure for a measurement: the per-unit energy (J) with its 95% interval
    (NaN: one window, no spread), the change against the reference run with the compare's
    decision (None for the first run), and the flag (``regression``/``improvement``) of a
    significant change."""

    run: int  # index into History.runs
    unit: str
    mean_j: float
    low_j: float
    high_j: float
    windows: int
    method: str
    reference: int | None = None
    decision: CompareDecision | None = None
    verdict: str | None = None
    flagged: bool = False

    def to_dict(self, runs: Sequence[SavedRun]) -> dict[str, Any]:
        return {
            "run": runs[self.run].name,
            "unit": self.unit,
            "energy_per_unit_j": self.mean_j,
            "low_j": _json(self.low_j),
            "high_j": _json(self.high_j),
            "windows": self.windows,
            "method": self.method,
            "reference": None if self.reference is None else runs[self.reference].name,
            "verdict": self.verdict,
            "flagged": self.flagged,
            "decision": None if self.decision is None else self.decision.to_dict(),
        }


@record
class Series(Frozen):
    """One measurement (test id and measurement name) over the runs that made it."""

    nodeid: str
    name: str
    points: tuple[Point, ...]

    @property
    def label(self) -> str:
        return delta_label(self.nodeid, self.name)

    @property
    def first_change(self) -> Point | None:
        return next((p for p in self.points if p.flagged), None)


@record
class History(Frozen):
    """The runs in order, every matching measurement's series, the threshold."""

    runs: tuple[SavedRun, ...]
    series: tuple[Series, ...]
    spec: FailSpec
    storage_dir: str
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "storage_dir": self.storage_dir,
            "threshold": str(self.spec),
            "runs": [r.to_dict() for r in self.runs],
            "skipped": list(self.skipped),
            "series": [
                {
                    "nodeid": s.nodeid,
                    "name": s.name,
                    "first_change": None
                    if (f := s.first_change) is None
                    else self.runs[f.run].name,
                    "points": [p.to_dict(self.runs) for p in s.points],
                }
                for s in self.series
            ],
        }


def _json(x: float) -> float | None:
    return x if math.isfinite(x) else None


def matches(label: str, nodeid: str, pattern: str | None) -> bool:
    """``pattern``: a glob (``*``, ``?``, ``[``) matched against the test id or its label
    with the measurement name, else a substring of either."""
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(label, pattern)
    return pattern in label


def _point(index: int, r: Result) -> Point:
    s = r.measurement.energy_per_unit_j
    half = t975(s.n - 1) * s.sem if s.n >= 2 and math.isfinite(s.sem) else math.nan
    return Point(index, r.measurement.unit, s.mean, s.mean - half, s.mean + half, s.n, "mean")


def _judge(
    cur: TestRecord, ref: TestRecord, name: str, spec: FailSpec
) -> tuple[CompareDecision | None, str | None]:
    """The compare's decision of ``cur`` against ``ref`` for one measurement, and the verdict:
    a regression, an improvement (``ref`` a regression over ``cur``), no significant change
    (neither way), else the forward decision's outcome (inconclusive)."""
    from ..measure.decisions import NO_REGRESSION

    forward = next(d for d in compare_tests([cur], [ref]) if d.name == name).decide(spec)
    if forward is None:
        return None, None
    if forward.failed:
        return forward, REGRESSION
    backward = next(d for d in compare_tests([ref], [cur]) if d.name == name).decide(spec)
    if backward is not None and backward.failed:
        return forward, IMPROVEMENT
    if forward.outcome == NO_REGRESSION and getattr(backward, "outcome", None) == NO_REGRESSION:
        return forward, NO_CHANGE
    return forward, forward.outcome


def build_history(
    runs: Sequence[SavedRun],
    spec: FailSpec,
    *,
    pattern: str | None = None,
    storage_dir: str = "",
    skipped: Sequence[str] = (),
) -> History:
    """Every measurement matching ``pattern`` over ``runs`` (already in order), judged."""
    keys: dict[tuple[str, str], None] = {}
    for run in runs:
        for t in run.tests:
            for r in t.results:
                if matches(delta_label(t.nodeid, r.name), t.nodeid, pattern):
                    keys[(t.nodeid, r.name)] = None
    series = []
    for nodeid, name in keys:
        points: list[Point] = []
        ref: TestRecord | None = None
        ref_index: int | None = None
        for i, run in enumerate(runs):
            test = next((t for t in run.tests if t.nodeid == nodeid), None)
            result = (
                None if test is None else next((r for r in test.results if r.name == name), None)
            )
            if test is None or result is None:
                continue
            point = _point(i, result)
            if ref is not None:
                decision, verdict = _judge(test, ref, name, spec)
                flagged = verdict in (REGRESSION, IMPROVEMENT)
                point = replace(
                    point, reference=ref_index, decision=decision, verdict=verdict, flagged=flagged
                )
                if flagged:
                    ref, ref_index = test, i
            else:
                ref, ref_index = test, i
            points.append(point)
        series.append(Series(nodeid, name, tuple(points)))
    return History(tuple(runs), tuple(series), spec, storage_dir, tuple(skipped))


def history(
    storage_dir: str | os.PathLike[str],
    spec: FailSpec,
    *,
    pattern: str | None = None,
    last: int | None = None,
) -> History:
    """The history of the saved runs in ``storage_dir`` (the last ``last`` in order)."""
    runs, skipped = load_runs(storage_dir)
    if last is not None:
        runs = runs[-last:] if last > 0 else []
    return build_history(
        runs, spec, pattern=pattern, storage_dir=os.fspath(Path(storage_dir)), skipped=skipped
    )
