"""``pytest-co2 combine``: one report from the reports of a sharded run or a cluster job (pure
but for reading files).

Like ``coverage combine``: each CI shard or cluster task writes its own report; a final job
joins them, and the joined file is an ordinary report (``report``, ``advise``, ``compare``
and the plots read it). Totals are exact sums (``math.fsum``) of every test kept.

Rules, each said in ``session.combined.notes``:

- the same file given twice is read once (a warning); two different reports of the same
  run, shard and rank are refused (a retried job: keep one);
- reports of different runs are refused unless ``allow_mixed``;
- shards ``k/N`` not among the inputs are listed as missing;
- node-level devices (``shared``: a RAPL package, a GPU, a simulated node device) read by
  several processes on one host key over overlapping time are counted once: the process
  with the lowest local rank (then rank) keeps them, the others' measurements lose those
  devices' energy (their per-process devices stay);
- the ``profile``, ``defer`` and ``sci`` blocks are joined as ``reporting.blocks`` says.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..frozen import Frozen, record
from ..measure.records import Measurement
from .blocks import Input, combined_blocks
from .json_report import Report
from .model import ReportError, Result, TestRecord
from .origin import OriginInfo
from .session import SessionInfo
from .session_parts import CombinedInfo
from .storage import JOURNAL_SUFFIX, load_report


class CombineError(ReportError):
    """Inputs that cannot be combined (mixed runs, a shard twice, no report): one line."""


@record
class Part(Frozen):
    """One input report and where it was read from."""

    path: str
    report: Report

    @property
    def origin(self) -> OriginInfo | None:
        return self.report.session.origin

    def label(self) -> str:
        o = self.origin
        if o is None:
            return self.path
        bits = [f"shard {o.shard}" if o.shard else "", "" if o.rank is None else f"rank {o.rank}"]
        who = ", ".join(b for b in bits if b)
        return f"{self.path} ({who})" if who else self.path


def report_files(paths: Iterable[str]) -> list[str]:
    """The report files ``paths`` name: files as given, folders searched for ``*.json``
    (recursively, sorted). CombineError when a path does not exist or names no report."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(
                os.fspath(f) for f in Path(p).rglob("*.json") if f.is_file() and f.name[0] != "."
            )
            if not found:
                raise CombineError(f"no report (*.json) in the folder {p!r}")
            out.extend(found)
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise CombineError(f"no file or folder {p!r}: expected report files or folders")
    return [f for f in out if not f.endswith(JOURNAL_SUFFIX)]


def load_parts(paths: Iterable[str]) -> tuple[list[Part], list[str]]:
    """The reports, each file once (a file named twice is read once, with a warning)."""
    parts: list[Part] = []
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for path in report_files(paths):
        real = os.path.realpath(path)
        if real in seen:
            warnings.append(f"{path} is {seen[real]} given again: read once")
            continue
        seen[real] = path
        parts.append(Part(path, load_report(path)))
    if not parts:
        raise CombineError("no report to combine")
    return parts, warnings


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _overlap(a: SessionInfo, b: SessionInfo) -> bool:
    """Whether two runs' spans (to the second, inclusive) overlap; unknown spans do."""
    a0, a1, b0, b1 = (_time(x) for x in (a.started, a.finished, b.started, b.finished))
    if None in (a0, a1, b0, b1):
        return True
    assert a0 is not None and a1 is not None and b0 is not None and b1 is not None
    return a0 <= b1 and b0 <= a1


def _identity(part: Part) -> tuple[Any, ...] | None:
    o = part.origin
    if o is None or o.run_id is None:
        return None
    return (o.run_id, o.shard, o.host_key if o.local_rank is not None else None, o.rank)


def _check_runs(parts: Sequence[Part], allow_mixed: bool, notes: list[str]) -> list[Part]:
    """Refuse a shard twice and mixed runs (unless ``allow_mixed``); drop exact duplicates."""
    kept: list[Part] = []
    by_id: dict[tuple[Any, ...], Part] = {}
    for part in parts:
        key = _identity(part)
        if key is not None and key in by_id:
            first = by_id[key]
            if first.report.to_dict() == part.report.to_dict():
                notes.append(f"{part.path} is the same report as {first.path}: counted once")
                continue
            raise CombineError(
                f"{first.label()} and {part.label()} are two reports of the same run "
                f"{key[0]!r} and shard: keep one (a retried job?)"
            )
        if key is not None:
            by_id[key] = part
        kept.append(part)
    runs = {p.origin.run_id if p.origin else None for p in kept}
    if len(runs) > 1 and not allow_mixed:
        named = ", ".join(f"{p.path}: {p.origin.run_id if p.origin else None}" for p in kept)
        raise CombineError(
            f"the reports are of {len(runs)} different runs ({named}): combine the shards of "
            "one run, or pass --allow-mixed (a run without an id: set --co2-run-id)"
        )
    if len(runs) > 1:
        notes.append(f"--allow-mixed: {len(runs)} runs combined")
    return kept


def _missing_shards(parts: Sequence[Part], notes: list[str]) -> tuple[str, ...]:
    totals = {p.origin.shard_total for p in parts if p.origin and p.origin.shard_total}
    if not totals:
        return ()
    total = max(totals)
    have = sorted({p.origin.shard_index for p in parts if p.origin and p.origin.shard_index})
    missing = [k for k in range(1, total + 1) if k not in have]
    if missing:
        notes.append(
            f"{len(have)} of {total} shards: shard(s) {', '.join(map(str, missing))} missing"
        )
    else:
        notes.append(f"all {total} shards")
    return tuple(f"{k}/{total}" for k in missing)


def _shared_ids(report: Report) -> set[str]:
    return {
        d.device.id for t in report.tests for r in t.results for d in r.measurement.devices
        if d.device.shared
    }  # fmt: skip


def drop_devices(m: Measurement, ids: set[str], note: str) -> tuple[Measurement, float]:
    """``m`` without the devices ``ids`` (their energy taken off; per-window energies scaled
    by the same factor, exact when the power is steady), and that factor."""
    dropped = [d for d in m.devices if d.device.id in ids]
    if not dropped:
        return m, 1.0
    energy_j = m.energy_j - math.fsum(d.energy_j for d in dropped)
    scale = energy_j / m.energy_j if m.energy_j else 0.0
    s = m.energy_per_unit_j
    stats = replace(
        s, mean=energy_j / m.units if m.units else math.nan, std=s.std * scale, sem=s.sem * scale
    )
    out = replace(
        m,
        energy_j=energy_j,
        unit_energies_j=tuple(x * scale for x in m.unit_energies_j),
        energy_per_unit_j=stats,
        devices=tuple(d for d in m.devices if d.device.id not in ids),
        notes=(*m.notes, note),
    )
    return out, scale


def _scaled(r: Result, ids: set[str], note: str) -> Result:
    m, k = drop_devices(r.measurement, ids, note)
    if k == 1.0:
        return r
    p, e = r.projection, r.emission
    return Result(
        measurement=m,
        projection=replace(
            p, energy_kwh=p.energy_kwh * k, std_kwh=p.std_kwh * k, ci95_kwh=p.ci95_kwh * k
        ),
        emission=replace(
            e,
            energy_kwh=e.energy_kwh * k,
            facility_energy_kwh=e.facility_energy_kwh * k,
            co2e_kg=e.co2e_kg * k,
            std_kg=e.std_kg * k,
            ci95_kg=e.ci95_kg * k,
        ),
        whatif_co2e_kg={reg: kg * k for reg, kg in r.whatif_co2e_kg.items()},
    )


def _count_node_devices_once(parts: Sequence[Part], notes: list[str]) -> list[list[TestRecord]]:
    """Each part's tests, with node-level devices already read on its host key over
    overlapping time by a process of lower local rank (then rank) taken off."""

    def rank_order(i: int) -> tuple[int, int, int]:
        o = parts[i].origin
        return (*(o.order if o is not None else (1 << 30, 1 << 30)), i)

    order = sorted(range(len(parts)), key=rank_order)
    out: list[list[TestRecord]] = [list(p.report.tests) for p in parts]
    for pos, i in enumerate(order):
        part = parts[i]
        if part.origin is None:
            continue
        ids: set[str] = set()
        readers: list[str] = []
        for j in order[:pos]:
            other = parts[j]
            if other.origin is None or other.origin.host_key != part.origin.host_key:
                continue
            if not _overlap(other.report.session, part.report.session):
                continue
            common = _shared_ids(other.report) & _shared_ids(part.report)
            if common:
                ids |= common
                readers.append(other.label())
        if not ids:
            continue
        note = (
            f"node-level device(s) {', '.join(sorted(ids))} of host {part.origin.host_key} "
            f"read over the same time by {', '.join(readers)}: counted once there, "
            f"not in {part.label()}"
        )
        notes.append(note)
        out[i] = [
            TestRecord(t.nodeid, t.outcome, [_scaled(r, ids, note) for r in t.results], t.budget)
            for t in out[i]
        ]
    return out


def _merged_session(parts: Sequence[Part], combined: CombinedInfo) -> SessionInfo:
    sessions = [p.report.session for p in parts]
    first = sessions[0]
    starts = [s.started for s in sessions if s.started]
    ends = [s.finished for s in sessions if s.finished]
    backends = list(dict.fromkeys(s.backend for s in sessions if s.backend))
    statuses = [s.exit_status for s in sessions if s.exit_status is not None]
    hosts = list(dict.fromkeys(s.host for s in sessions if s.host))
    return replace(
        first,
        started=min(starts, key=lambda t: _time(t) or 0.0) if starts else None,
        finished=max(ends, key=lambda t: _time(t) or 0.0) if ends else None,
        host=", ".join(hosts) or None,
        backend="; ".join(b for b in backends if b) or None,
        workers=None,
        exit_status=max(statuses) if statuses else None,
        interrupted=any(bool(s.interrupted) for s in sessions),
        origin=None,
        combined=combined,
        recovered_from=None,
    )


def combine(parts: Sequence[Part], *, allow_mixed: bool = False) -> Report:
    """One report from ``parts`` (see the module's rules); CombineError when refused."""
    notes: list[str] = []
    kept = _check_runs(parts, allow_mixed, notes)
    missing = _missing_shards(kept, notes)
    tests_of = _count_node_devices_once(kept, notes)
    seen: dict[str, str] = {}
    for part, tests in zip(kept, tests_of, strict=True):
        for t in tests:
            if t.nodeid in seen and seen[t.nodeid] != part.path:
                notes.append(f"{t.nodeid} is in {seen[t.nodeid]} and {part.path}: both kept")
            seen.setdefault(t.nodeid, part.path)
    inputs = tuple(
        {
            "path": part.path,
            "run_id": part.origin.run_id if part.origin else None,
            "shard": part.origin.shard if part.origin else None,
            "host_key": part.origin.host_key if part.origin else part.report.session.host,
            "rank": part.origin.rank if part.origin else None,
            "local_rank": part.origin.local_rank if part.origin else None,
            "started": part.report.session.started,
            "finished": part.report.session.finished,
            "tests": [t.nodeid for t in tests],
        }
        for part, tests in zip(kept, tests_of, strict=True)
    )
    info = CombinedInfo(inputs=inputs, notes=tuple(notes), missing_shards=missing)
    return Report(
        session=_merged_session(kept, info),
        tests=[t for tests in tests_of for t in tests],
        extra=combined_blocks(_block_inputs(kept, tests_of)),
    )


def _block_inputs(parts: Sequence[Part], tests_of: Sequence[list[TestRecord]]) -> list[Input]:
    """The inputs as ``reporting.blocks`` joins them, each named by its shard and rank (its
    path when it has neither, or when another input has the same)."""
    out: list[Input] = []
    for part, tests in zip(parts, tests_of, strict=True):
        o = part.origin
        who = {} if o is None else {"shard": o.shard, "rank": o.rank}
        who = {k: v for k, v in who.items() if v is not None}
        label = ", ".join(f"{k} {v}" for k, v in who.items()) or part.path
        if any(i.label == label for i in out):
            label = part.path
        out.append(Input(part.path, label, who, tests, part.report.extra))
    return out


def summary(report: Report) -> list[str]:
    """The lines ``pytest-co2 combine`` prints: inputs, notes, totals."""
    c = report.session.combined
    if c is None:
        return []
    tot = report.totals
    lines = [
        f"combined {len(c.inputs)} report(s): {len(report.tests)} tests, "
        f"{tot.measurements} measurements, {tot.energy_j:.6g} J measured, "
        f"{tot.energy_kwh:.6g} kWh projected, {tot.co2e_kg:.6g} kg CO2e"
    ]
    for x in c.inputs:
        where = ", ".join(
            f"{k} {x[k]}" for k in ("run_id", "shard", "rank") if x.get(k) is not None
        )
        lines.append(f"  {x['path']}: {len(x['tests'])} tests" + (f" ({where})" if where else ""))
    lines.extend(f"note: {n}" for n in c.notes)
    if c.missing_shards:
        lines.append(f"missing shard(s): {', '.join(c.missing_shards)}: the totals are partial")
    return lines
