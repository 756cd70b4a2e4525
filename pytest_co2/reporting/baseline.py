"""Baselines: save a run, compare a later one with it, fail on regressions (pure).

``--co2-save=NAME`` stores the JSON report as ``.co2/NAME.json``; ``--co2-compare`` loads
one (by name, by path, or the latest saved) and matches measurements by test id and
measurement name; ``--co2-compare-fail=energy:10%`` turns a larger increase into a failing
session. Each check returns a message or None, as in pytest-benchmark.

What is compared: the projected energy (kWh) and CO2e (kg) of each measurement. When both
runs projected to a target (``--co2-extrapolate``) and the targets differ, the baseline is
rescaled per unit so that only the per-unit energy is compared.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fmt import fmt_num, fmt_pct
from .model import Result, TestRecord

STORAGE_DIR = ".co2"
FIELDS = {"energy": "energy", "co2e": "CO2e"}
LATEST = "latest"


# -- --co2-compare-fail ------------------------------------------------------------------------


@dataclass(frozen=True)
class FailSpec:
    """Fail when ``field`` (energy or co2e) grows by more than ``percent`` % over the baseline."""

    field: str
    percent: float

    def __str__(self) -> str:
        return f"{self.field}:{self.percent:g}%"


def parse_fail_specs(text: str) -> tuple[FailSpec, ...]:
    """``energy:10%`` or ``co2e:5%,energy:10%`` -> FailSpecs; ValueError with one line."""
    specs: list[FailSpec] = []
    for raw in str(text).split(","):
        part = raw.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\w+):\s*([0-9.eE+]+)\s*%", part)
        field = m.group(1).lower() if m else ""
        try:
            percent = float(m.group(2)) if m else math.nan
        except ValueError:
            percent = math.nan
        if field not in FIELDS or not (math.isfinite(percent) and percent >= 0):
            raise ValueError(
                f"invalid --co2-compare-fail {part!r}: expected FIELD:PERCENT% with FIELD energy "
                "or co2e, e.g. energy:10% or co2e:5% (comma-separated for several)"
            )
        specs.append(FailSpec(field, percent))
    if not specs:
        raise ValueError(f"empty --co2-compare-fail={text!r}: expected e.g. energy:10%")
    return tuple(specs)


def parse_save_name(text: str) -> str:
    """A baseline name, stored as ``.co2/NAME.json``: letters, digits, '.', '_', '-'."""
    name = str(text).strip()
    if name.endswith(".json"):
        name = name[: -len(".json")]
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", name):
        raise ValueError(
            f"invalid --co2-save name {text!r}: expected letters, digits, '.', '_' or '-' "
            f"(saved as {STORAGE_DIR}/NAME.json)"
        )
    return name


# -- storage -------------------------------------------------------------------------------


def saved_path(storage_dir: str | os.PathLike[str], name: str) -> Path:
    return Path(storage_dir) / f"{name}.json"


def saved_runs(storage_dir: str | os.PathLike[str]) -> list[Path]:
    """The saved reports in ``storage_dir``, oldest first (by modification time, then name)."""
    d = Path(storage_dir)
    if not d.is_dir():
        return []
    files = [p for p in d.glob("*.json") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def resolve_baseline(value: str | None, storage_dir: str | os.PathLike[str]) -> Path:
    """The file ``--co2-compare=value`` names: the latest saved (None, '' or 'latest'), a
    saved NAME, or a PATH to a report. ValueError with one line when there is none."""
    runs = saved_runs(storage_dir)
    if value in (None, "", LATEST):
        if not runs:
            raise ValueError(
                f"--co2-compare: no saved run in {os.fspath(storage_dir)}: save one first with "
                "--co2-save=NAME"
            )
        return runs[-1]
    named = saved_path(storage_dir, value[:-5] if value.endswith(".json") else value)
    if named.is_file():
        return named
    if os.path.isfile(value):
        return Path(value)
    have = ", ".join(p.stem for p in runs) or "none"
    raise ValueError(
        f"--co2-compare: no baseline {value!r}: neither {os.fspath(named)} nor a file {value!r} "
        f"exists (saved runs: {have})"
    )


@dataclass(frozen=True)
class Baseline:
    """A saved run: its session facts and its test records."""

    session: Mapping[str, Any]
    tests: list[TestRecord]


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read and validate a saved report; ValueError with one line naming the file and the
    first bad field when it is not one."""
    from .json_report import load_report

    report = load_report(path, what="baseline")
    return Baseline(session=report.session, tests=report.tests)


# -- deltas --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """One measurement now and in the baseline (``base_*`` None when it is new)."""

    nodeid: str
    name: str
    energy_kwh: float
    co2e_kg: float
    base_energy_kwh: float | None
    base_co2e_kg: float | None
    per_unit: bool = False  # the baseline was rescaled to this run's projection target

    @property
    def is_new(self) -> bool:
        return self.base_energy_kwh is None

    def values(self, field: str) -> tuple[float, float | None]:
        """(now, baseline) of ``field`` (energy or co2e)."""
        if field == "energy":
            return self.energy_kwh, self.base_energy_kwh
        return self.co2e_kg, self.base_co2e_kg

    def percent(self, field: str) -> float | None:
        """Relative change in % (None for a new measurement; inf from a zero baseline)."""
        now, base = self.values(field)
        if base is None:
            return None
        if base == 0:
            return 0.0 if now == 0 else math.inf
        return (now - base) / base * 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "name": self.name,
            "energy_kwh": self.energy_kwh,
            "base_energy_kwh": self.base_energy_kwh,
            "energy_pct": _json_pct(self.percent("energy")),
            "co2e_kg": self.co2e_kg,
            "base_co2e_kg": self.base_co2e_kg,
            "co2e_pct": _json_pct(self.percent("co2e")),
            "per_unit": self.per_unit,
        }


def _json_pct(x: float | None) -> float | str | None:
    if x is None:
        return None
    return x if math.isfinite(x) else "inf"


def _by_key(tests: Iterable[TestRecord]) -> dict[tuple[str, str], Result]:
    return {(t.nodeid, r.name): r for t in tests for r in t.results}


def compare_tests(tests: Iterable[TestRecord], baseline_tests: Iterable[TestRecord]) -> list[Delta]:
    """A delta for every measurement of this run, matched by (test id, measurement name)."""
    base = _by_key(baseline_tests)
    out = []
    for (nodeid, name), r in _by_key(tests).items():
        p, em = r.projection, r.emission
        b = base.get((nodeid, name))
        if b is None:
            out.append(Delta(nodeid, name, p.energy_kwh, em.co2e_kg, None, None))
            continue
        bp = b.projection
        scale, per_unit = 1.0, False
        if not p.measured and not bp.measured and bp.n != p.n and bp.n:
            scale, per_unit = p.n / bp.n, True
        out.append(
            Delta(
                nodeid,
                name,
                p.energy_kwh,
                em.co2e_kg,
                bp.energy_kwh * scale,
                b.emission.co2e_kg * scale,
                per_unit,
            )
        )
    return out


def missing_from(
    tests: Iterable[TestRecord], baseline_tests: Iterable[TestRecord]
) -> list[tuple[str, str]]:
    """Measurements of the baseline that this run did not make."""
    now = _by_key(tests)
    return [k for k in _by_key(baseline_tests) if k not in now]


def check(delta: Delta, spec: FailSpec) -> str | None:
    """None when ``delta`` is within ``spec``, else a line naming the test and its delta."""
    pct = delta.percent(spec.field)
    if pct is None or pct <= spec.percent + 1e-9:  # float noise at the boundary is no regression
        return None
    now, base = delta.values(spec.field)
    unit = "kWh" if spec.field == "energy" else "kg CO2e"
    return (
        f"{delta.nodeid} [{delta.name}]: {FIELDS[spec.field]} {fmt_pct(pct)} "
        f"({fmt_num(base)} -> {fmt_num(now)} {unit}{', per unit' if delta.per_unit else ''}) "
        f"exceeds --co2-compare-fail={spec}"
    )


def failures(deltas: Sequence[Delta], specs: Sequence[FailSpec]) -> list[str]:
    """Every failing check, one line each."""
    return [msg for d in deltas for s in specs if (msg := check(d, s)) is not None]


# -- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """This run against a baseline: the JSON report's ``comparison`` block."""

    baseline: str
    baseline_started: str | None
    baseline_intensity: Mapping[str, Any] | None
    deltas: tuple[Delta, ...]
    missing: tuple[tuple[str, str], ...]
    fail_specs: tuple[FailSpec, ...]
    failures: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "baseline_started": self.baseline_started,
            "baseline_intensity": None
            if self.baseline_intensity is None
            else dict(self.baseline_intensity),
            "deltas": [d.to_dict() for d in self.deltas],
            "missing": [{"nodeid": n, "name": m} for n, m in self.missing],
            "fail_specs": [str(s) for s in self.fail_specs],
            "failures": list(self.failures),
        }


def compare(
    baseline_path: str | os.PathLike[str],
    baseline: Baseline,
    tests: Sequence[TestRecord],
    specs: Sequence[FailSpec] = (),
) -> Comparison:
    """Compare ``tests`` with a loaded baseline and apply the fail specs."""
    deltas = compare_tests(tests, baseline.tests)
    return Comparison(
        baseline=os.fspath(baseline_path),
        baseline_started=baseline.session.get("started"),
        baseline_intensity=baseline.session.get("intensity"),
        deltas=tuple(deltas),
        missing=tuple(missing_from(tests, baseline.tests)),
        fail_specs=tuple(specs),
        failures=tuple(failures(deltas, specs)),
    )


def render_comparison(c: Comparison) -> list[str]:
    """The summary's comparison lines: one row per measurement (tabulate)."""
    from tabulate import tabulate

    def opt(x: float | None) -> str:
        return "-" if x is None else fmt_num(x)

    rows = [
        [
            d.nodeid,
            d.name,
            opt(d.base_energy_kwh),
            fmt_num(d.energy_kwh),
            fmt_pct(d.percent("energy")),
            opt(d.base_co2e_kg),
            fmt_num(d.co2e_kg),
            fmt_pct(d.percent("co2e")) + (" (per unit)" if d.per_unit else ""),
        ]
        for d in c.deltas
    ]
    headers = [
        "test",
        "measurement",
        "kWh before",
        "kWh now",
        "Δ energy",
        "kg before",
        "kg now",
        "Δ CO2e",
    ]
    lines = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True).splitlines()
    if c.missing:
        lines.append(f"not measured in this run: {len(c.missing)} measurement(s) of the baseline")
    return lines
