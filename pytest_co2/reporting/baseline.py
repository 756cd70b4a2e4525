"""Baselines: save a run, compare a later one with it, fail on regressions (pure).

``--co2-save=NAME`` stores the JSON report as ``.co2/NAME.json``; ``--co2-compare`` loads
one (by name, by path, or the latest saved) and matches measurements by test id and
measurement name; ``--co2-compare-fail=energy:10%`` turns a larger increase into a failing
session. Each check returns a message or None, as in pytest-benchmark.

What is compared: the projected energy (kWh) and CO2e (kg) of each measurement. When both
runs projected to a target (``--co2-extrapolate``) and the targets differ, the baseline is
rescaled per unit so that only the per-unit energy is compared. The per-measurement deltas
and their decisions are :mod:`.delta`'s; here: the option values, the comparison of a run and
its lines.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..constants import STORAGE_DIR
from ..fmt import fmt_num, fmt_pct
from ..frozen import Frozen, record
from .delta import FIELDS, Delta, FailSpec, compare_tests, missing_from
from .model import TestRecord
from .session import SessionInfo

if TYPE_CHECKING:
    from ..measure.decisions import CompareDecision


# -- --co2-compare-fail ------------------------------------------------------------------------


def parse_fail_specs(text: str) -> tuple[FailSpec, ...]:
    """``energy:10%`` or ``co2e:5%,energy:10%`` -> FailSpecs; ValueError with one line."""
    specs: list[FailSpec] = []
    for raw in str(text).split(","):
        part = raw.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\w+):\s*([0-9.eE+]+)\s*%", part)
        try:
            percent = float(m.group(2)) if m else math.nan
        except ValueError:
            percent = math.nan
        bad_percent = not (math.isfinite(percent) and percent >= 0)
        if m is None or m.group(1).lower() not in FIELDS or bad_percent:
            raise ValueError(
                f"invalid --co2-compare-fail {part!r}: expected FIELD:PERCENT% with FIELD energy "
                "or co2e, e.g. energy:10% or co2e:5% (comma-separated for several)"
            )
        specs.append(FailSpec(m.group(1).lower(), percent))
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


@record
class Baseline(Frozen):
    """A saved run: its session facts and its test records (``storage.load_baseline``)."""

    session: SessionInfo
    tests: list[TestRecord]


def check(delta: Delta, spec: FailSpec) -> str | None:
    """None unless ``delta`` is a confident regression for ``spec``: then a line naming the
    test, its change with the 95% interval, and the spec."""
    decision = dict(delta.decisions).get(str(spec)) or delta.decide(spec)
    if decision is None or not decision.failed:
        return None
    return _line(delta, spec, decision, "exceeds")


def delta_label(nodeid: str, name: str) -> str:
    """``test_x.py::test_a`` or ``test_x.py::test_a [train]`` (a default measurement unnamed)."""
    return nodeid if name in ("default", "call") else f"{nodeid} [{name}]"


def decision_text(decision: CompareDecision) -> str:
    """The decision's one line, with what to do when it is too noisy: the precision each
    run needs, as the option that asks for it."""
    from ..fmt import fmt_rel_pm

    text = decision.describe()
    need = decision.needed_precision
    if need is not None and need > 0 and decision.contention is None:
        tail = f"; needs {fmt_rel_pm(need)} per run to decide"
        if text.endswith(tail):
            text = text[: -len(tail)] + (
                f"; to decide, measure both runs to {fmt_rel_pm(need)} "
                f"(--co2-precision={need * 100:.2g}%, more steps or a longer --co2-max-time)"
            )
    return text


def _line(delta: Delta, spec: FailSpec, decision: CompareDecision, verb: str) -> str:
    """One decided comparison; the change is the decision's (the trimmed estimate over the
    per-window samples), the figures before and after are the projections."""
    now, base = delta.values(spec.field)
    unit = "kWh" if spec.field == "energy" else "kg CO2e"
    return (
        f"{delta_label(delta.nodeid, delta.name)}: {FIELDS[spec.field]} "
        f"{fmt_num(base)} -> {fmt_num(now)} {unit}{', per unit' if delta.per_unit else ''} "
        f"{verb} --co2-compare-fail={spec}: {decision_text(decision)}"
    )


def verdict_line(c: Comparison, width: int = 100) -> str | None:
    """``co2: FAILED: 1 regression (test_a +60.4%, 95% +32.0% to +95.0%)``, fitted to
    ``width``; None when the comparison fails nothing."""
    from ..measure.decisions import INCONCLUSIVE

    items = []
    for d in c.deltas:
        for _, dec in d.decisions:
            if dec.failed and dec.outcome != INCONCLUSIVE:
                name = delta_label(d.nodeid.rpartition("::")[2] or d.nodeid, d.name)
                interval = "" if math.isnan(dec.low) else f", {_short(dec).partition(', ')[2]}"
                items.append(f"{name} {fmt_pct(dec.change * 100)}{interval}")
    unsure = max(0, len(c.failures) - len(items))  # --co2-compare-strict: too noisy fails
    if not items and not unsure:
        return None
    heads = []
    if items:
        heads.append(f"{len(items)} {'regression' if len(items) == 1 else 'regressions'}")
    if unsure:
        heads.append(f"{unsure} too noisy to judge (--co2-compare-strict)")
    head = "co2: FAILED: " + ", ".join(heads)
    for shown in range(len(items), -1, -1):
        more = len(items) - shown
        parts = items[:shown] + ([f"{more} more"] if more else [])
        line = head + (f" ({'; '.join(parts)})" if parts else "")
        if len(line) <= width:
            return line
    return head[:width]


def decided(deltas: Sequence[Delta], specs: Sequence[FailSpec]) -> list[Delta]:
    """The deltas with their decisions for every spec (one place decides)."""
    from dataclasses import replace

    out = []
    for d in deltas:
        pairs = tuple((str(s), dec) for s in specs if (dec := d.decide(s)) is not None)
        out.append(replace(d, decisions=pairs))
    return out


def failures(deltas: Sequence[Delta], specs: Sequence[FailSpec]) -> list[str]:
    """Every confident regression, one line each."""
    return [msg for d in deltas for s in specs if (msg := check(d, s)) is not None]


def inconclusive(deltas: Sequence[Delta], specs: Sequence[FailSpec]) -> list[str]:
    """Every comparison too noisy to decide, one line each (with the precision it needs)."""
    from ..measure.decisions import INCONCLUSIVE

    lines = []
    for d in deltas:
        for spec in specs:
            decision = dict(d.decisions).get(str(spec)) or d.decide(spec)
            if decision is not None and decision.outcome == INCONCLUSIVE:
                lines.append(_line(d, spec, decision, "is too noisy to judge against"))
    return lines


# -- the comparison ------------------------------------------------------------------------


@record
class Comparison(Frozen):
    """This run against a baseline: the JSON report's ``comparison`` block."""

    baseline: str
    baseline_started: str | None
    baseline_intensity: Mapping[str, Any] | None
    deltas: tuple[Delta, ...]
    missing: tuple[tuple[str, str], ...]
    fail_specs: tuple[FailSpec, ...]
    failures: tuple[str, ...]
    inconclusive: tuple[str, ...] = ()

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
            "inconclusive": list(self.inconclusive),
        }


def compare(
    baseline_path: str | os.PathLike[str],
    baseline: Baseline,
    tests: Sequence[TestRecord],
    specs: Sequence[FailSpec] = (),
    *,
    strict: bool = False,
) -> Comparison:
    """Compare ``tests`` with a loaded baseline and apply the fail specs."""
    deltas = decided(compare_tests(tests, baseline.tests), specs)
    unsure = inconclusive(deltas, specs)
    return Comparison(
        baseline=os.fspath(baseline_path),
        baseline_started=baseline.session.started,
        baseline_intensity=None
        if baseline.session.intensity is None
        else baseline.session.intensity.to_dict(),
        deltas=tuple(deltas),
        missing=tuple(missing_from(tests, baseline.tests)),
        fail_specs=tuple(specs),
        failures=tuple(failures(deltas, specs)) + (tuple(unsure) if strict else ()),
        inconclusive=tuple(unsure),
    )


def _short(d: CompareDecision) -> str:
    """``regression, 95% +18.2% to +32.0%`` or ``no regression (no interval)``."""
    if math.isnan(d.low):
        return f"{d.outcome} (no interval)"
    return f"{d.outcome}, 95% {fmt_pct(d.low * 100)} to {fmt_pct(d.high * 100)}"


def render_comparison(c: Comparison, width: int = 100) -> list[str]:
    """The summary's comparison lines: one row per measurement, with the decision of the
    first fail spec (change and 95% interval) when there is one. Columns that do not fit
    ``width`` are left out (the before figure first, then Δ CO2e), never the test or the
    decision; test names stay distinct (:func:`..fmt.row_labels`)."""
    from tabulate import tabulate

    from ..fmt import row_labels, shared_dropped_width

    rows = []
    for d in c.deltas:
        decision = d.decisions[0][1] if d.decisions else None
        verdict = "" if decision is None else _short(decision)
        rows.append(
            [
                delta_label(d.nodeid, d.name),
                "-" if d.base_energy_kwh is None else fmt_num(d.base_energy_kwh),
                fmt_num(d.energy_kwh),
                fmt_pct(d.percent("energy")),
                fmt_pct(d.percent("co2e")) + (" (per unit)" if d.per_unit else ""),
                verdict,
            ]
        )
    headers = [
        "test",
        "kWh before",
        "kWh now",
        "Δ energy",
        "Δ CO2e",
        "decision" + (f" ({c.fail_specs[0]})" if c.fail_specs else ""),
    ]
    keep = list(range(len(headers)))

    def need(cols: list[int]) -> int:
        widths = [max([len(headers[i]) + 2, *(len(r[i]) for r in rows)]) for i in cols[1:]]
        return sum(widths) + 2 * (len(cols) - 1)

    reserve = min(24, shared_dropped_width([r[0] for r in rows]))  # for the test column
    for drop in (1, 4, 2):  # kWh before, Δ CO2e, kWh now
        if need(keep) + reserve <= width:
            break
        keep.remove(drop)
    room = max(reserve, width - need(keep))
    labels, dropped = row_labels([r[0] for r in rows], room)
    table = [[label, *(r[i] for i in keep[1:])] for label, r in zip(labels, rows, strict=True)]
    lines = tabulate(
        table, headers=[headers[i] for i in keep], tablefmt="simple", disable_numparse=True
    ).splitlines()
    lines = [line.rstrip() for line in lines]
    if dropped:
        from ..fmt import wrap

        lines += wrap(f"test names without their {dropped}", width)
    if c.missing:
        lines.append(f"not measured in this run: {len(c.missing)} measurement(s) of the baseline")
    return lines
