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
    for part in str(text).split(","):
        part = part.strip()
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


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a saved report; ValueError with one line when it is not one."""
    import json

    from .report import load_report

    try:
        return load_report(path)
    except OSError as exc:
        raise ValueError(
            f"cannot read baseline {os.fspath(path)!r}: {exc.strerror or exc}"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"baseline {os.fspath(path)!r} is not JSON: {exc}") from None


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

    def percent(self, field: str) -> float | None:
        """Relative change in % (None for a new measurement; inf from a zero baseline)."""
        now, base = (
            (self.energy_kwh, self.base_energy_kwh)
            if field == "energy"
            else (self.co2e_kg, self.base_co2e_kg)
        )
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


def _entries(tests: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(t["nodeid"], e["name"]): e for t in tests for e in t.get("measurements", ())}


def compare_tests(
    tests: Iterable[Mapping[str, Any]], baseline_tests: Iterable[Mapping[str, Any]]
) -> list[Delta]:
    """A delta for every measurement of this run, matched by (test id, measurement name)."""
    base = _entries(baseline_tests)
    out = []
    for (nodeid, name), e in _entries(tests).items():
        p, em = e["projection"], e["emission"]
        b = base.get((nodeid, name))
        if b is None:
            out.append(Delta(nodeid, name, p["energy_kwh"], em["co2e_kg"], None, None))
            continue
        bp, bem = b["projection"], b["emission"]
        scale, per_unit = 1.0, False
        if not p.get("measured") and not bp.get("measured") and bp["n"] != p["n"] and bp["n"]:
            scale, per_unit = p["n"] / bp["n"], True
        out.append(
            Delta(
                nodeid,
                name,
                p["energy_kwh"],
                em["co2e_kg"],
                bp["energy_kwh"] * scale,
                bem["co2e_kg"] * scale,
                per_unit,
            )
        )
    return out


def missing_from(
    tests: Iterable[Mapping[str, Any]], baseline_tests: Iterable[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """Measurements of the baseline that this run did not make."""
    now = _entries(tests)
    return [k for k in _entries(baseline_tests) if k not in now]


def check(delta: Delta, spec: FailSpec) -> str | None:
    """None when ``delta`` is within ``spec``, else a line naming the test and its delta."""
    pct = delta.percent(spec.field)
    if pct is None or pct <= spec.percent + 1e-9:  # float noise at the boundary is no regression
        return None
    from .table import fmt_num

    now, base, unit = (
        (delta.energy_kwh, delta.base_energy_kwh, "kWh")
        if spec.field == "energy"
        else (delta.co2e_kg, delta.base_co2e_kg, "kg CO2e")
    )
    return (
        f"{delta.nodeid} [{delta.name}]: {FIELDS[spec.field]} {fmt_pct(pct)} "
        f"({fmt_num(base)} -> {fmt_num(now)} {unit}{', per unit' if delta.per_unit else ''}) "
        f"exceeds --co2-compare-fail={spec}"
    )


def failures(deltas: Sequence[Delta], specs: Sequence[FailSpec]) -> list[str]:
    """Every failing check, one line each."""
    return [msg for d in deltas for s in specs if (msg := check(d, s)) is not None]


def fmt_pct(pct: float | None) -> str:
    """``+20.0%``, ``-3.1%``, ``new``, ``+inf%``."""
    if pct is None:
        return "new"
    if math.isinf(pct):
        return "+inf%"
    return f"{pct:+.1f}%"


# -- report --------------------------------------------------------------------------------


def comparison_block(
    baseline_path: str | os.PathLike[str],
    baseline: Mapping[str, Any],
    tests: Sequence[Mapping[str, Any]],
    specs: Sequence[FailSpec] = (),
) -> dict[str, Any]:
    """The JSON report's ``comparison`` block (also what the summary and markdown render)."""
    base_tests = baseline.get("tests", [])
    deltas = compare_tests(tests, base_tests)
    session = baseline.get("session", {})
    return {
        "baseline": os.fspath(baseline_path),
        "baseline_started": session.get("started"),
        "baseline_intensity": session.get("intensity"),
        "deltas": [d.to_dict() for d in deltas],
        "missing": [{"nodeid": n, "name": m} for n, m in missing_from(tests, base_tests)],
        "fail_specs": [str(s) for s in specs],
        "failures": failures(deltas, specs),
    }


def render_comparison(block: Mapping[str, Any]) -> list[str]:
    """The summary's comparison lines: one row per measurement (tabulate)."""
    from tabulate import tabulate

    from .table import fmt_num

    rows = []
    for d in block["deltas"]:
        rows.append(
            [
                d["nodeid"],
                d["name"],
                fmt_num(d["base_energy_kwh"]) if d["base_energy_kwh"] is not None else "-",
                fmt_num(d["energy_kwh"]),
                _pct_text(d["energy_pct"]),
                fmt_num(d["base_co2e_kg"]) if d["base_co2e_kg"] is not None else "-",
                fmt_num(d["co2e_kg"]),
                _pct_text(d["co2e_pct"]) + (" (per unit)" if d["per_unit"] else ""),
            ]
        )
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
    if block.get("missing"):
        lines.append(
            f"not measured in this run: {len(block['missing'])} measurement(s) of the baseline"
        )
    return lines


def _pct_text(pct: float | str | None) -> str:
    if pct == "inf":
        return "+inf%"
    return fmt_pct(pct)  # type: ignore[arg-type]
