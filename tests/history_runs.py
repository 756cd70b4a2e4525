"""Saved runs for the history tests, made by hand: exact per-window samples, fake commits."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from pytest_co2.backends.base import Device, Method
from pytest_co2.carbon.emission import Emission
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.json_report import Report
from pytest_co2.reporting.model import Result, TestRecord
from pytest_co2.reporting.session import SessionInfo
from pytest_co2.reporting.storage import write_atomic
from pytest_co2.reporting.vcs import CommitInfo

#: Five windows' energy per step (J): mean 1.0, sample std 0.0158, 95% half-width 0.0196.
BASE_J = (1.0, 0.98, 1.02, 0.99, 1.01)


def result(name: str, samples: Sequence[float], unit: str = "step") -> Result:
    device = Device("cpu:process", "cpu", "cpu", Method.ESTIMATED, 0.0, False)
    total = math.fsum(samples)
    m = Measurement(
        name=name, unit=unit, steps=len(samples), units=float(len(samples)), warmup=0,
        duration_s=1.0, energy_j=total, energy_per_unit_j=Stats.of(samples, total, len(samples)),
        unit_energies_j=tuple(samples), method="estimated",
        devices=(DeviceEnergy(device, total),), backend="estimate",
    )  # fmt: skip
    kwh = total / 3.6e6
    p = Projection(
        n=len(samples), unit=unit, energy_kwh=kwh, std_kwh=0.0, ci95_kwh=0.0, measured=True
    )
    e = Emission("SE", None, 7.0, "test", 1.0, kwh, kwh, kwh * 7e-3, math.nan, math.nan)
    return Result(m, p, e)


def record(nodeid: str, *results: Result) -> TestRecord:
    return TestRecord(nodeid, results=list(results))


def commit(n: int, day: int, *, dirty: bool = False, branch: str | None = "main") -> CommitInfo:
    """A fake commit: hash n repeated, committed on 2026-01-DAY at 10:00 UTC."""
    full = f"{n:x}" * 40
    return CommitInfo(full, full[:7], branch, dirty, f"2026-01-{day:02d}T10:00:00+00:00")


def save(
    storage: Path,
    name: str,
    tests: Sequence[TestRecord],
    *,
    saved_day: int,
    vcs: CommitInfo | None = None,
) -> Path:
    """``storage/NAME.json`` finished on 2026-01-SAVED_DAY at 12:00 UTC (also its mtime)."""
    when = f"2026-01-{saved_day:02d}T12:00:00+00:00"
    session = SessionInfo(started=when, finished=when, vcs=vcs)
    path = storage / f"{name}.json"
    write_atomic(path, Report(session=session, tests=list(tests)).to_dict())
    stamp = 1767268800 + (saved_day - 1) * 86400 + 7200  # 2026-01-01T12:00Z + days
    os.utime(path, (stamp, stamp))
    return path


def scaled(factor: float, samples: Sequence[float] = BASE_J) -> tuple[float, ...]:
    return tuple(x * factor for x in samples)
