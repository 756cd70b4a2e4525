"""One measurement now and in a baseline: the fail spec, the delta and its decision (pure).

:func:`compare_tests` matches a run's measurements with a baseline's by test id and
measurement name; :meth:`Delta.decide` says regression, no regression or inconclusive for a
:class:`FailSpec` from both runs' per-window samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..constants import J_PER_KWH
from ..frozen import Frozen, record
from .model import Result, TestRecord

if TYPE_CHECKING:
    from ..measure.contention import Contention
    from ..measure.decisions import CompareDecision

#: What a gate compares when both runs have the work part of an estimated figure.
WORK_QUANTITY = "CPU work: the estimate less its wall-time idle share"

FIELDS = {"energy": "energy", "co2e": "CO2e"}


@record
class FailSpec(Frozen):
    """Fail when ``field`` (energy or co2e) grows by more than ``percent`` % over the baseline."""

    field: str
    percent: float

    def __str__(self) -> str:
        return f"{self.field}:{self.percent:g}%"


@record
class Delta(Frozen):
    """One measurement now and in the baseline (``base_*`` None when it is new)."""

    nodeid: str
    name: str
    energy_kwh: float
    co2e_kg: float
    base_energy_kwh: float | None
    base_co2e_kg: float | None
    per_unit: bool = False  # the baseline was rescaled to this run's projection target
    # per-unit samples (J per unit, per window) of each run, and CO2e per J of each run
    samples: tuple[float, ...] = ()
    base_samples: tuple[float, ...] = ()
    base_mean_j: float | None = None  # a baseline without samples: its mean only
    mean_j: float | None = None
    kg_per_j: float = 0.0
    base_kg_per_j: float = 0.0
    decisions: tuple[tuple[str, CompareDecision], ...] = ()  # (fail spec, decision)
    # the part the process's own work controls (the CPU estimate's energy less its
    # wall-time idle share), per window, when both runs have it; and each run's contention
    work_samples: tuple[float, ...] = ()
    base_work_samples: tuple[float, ...] = ()
    contention: Contention | None = None
    base_contention: Contention | None = None

    @property
    def is_new(self) -> bool:
        return self.base_energy_kwh is None

    def values(self, field: str) -> tuple[float, float | None]:
        """(now, baseline) of ``field`` (energy or co2e)."""
        if field == "energy":
            return self.energy_kwh, self.base_energy_kwh
        if field == "co2e":
            return self.co2e_kg, self.base_co2e_kg
        raise ValueError(f"unknown field {field!r}: expected energy or co2e")

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
            "decisions": {spec: d.to_dict() for spec, d in self.decisions},
        }

    def decide(self, spec: FailSpec) -> CompareDecision | None:
        """Regression, no regression or inconclusive for ``spec``, from both runs' per-window
        per-unit samples (the 20% trimmed mean; CO2e scales them by each run's kg per J).

        Where both runs have the work part of an estimated figure (the energy less the
        wall-time idle share, which a co-tenant inflates by slowing the run down), that is
        compared; the full figures stay in the report. A difference in the runs' contention
        widens the interval, or makes the outcome inconclusive (:mod:`..measure.contention`);
        windows that drifted over a run add that drift as a between-run spread
        (:mod:`..measure.drift`).
        """
        if self.is_new:
            return None
        from ..measure.contention import contention_allowance
        from ..measure.decisions import compare_decision

        base: Sequence[float] | float
        cur: Sequence[float] | float = self.samples or (self.mean_j or 0.0)
        base = self.base_samples or (self.base_mean_j if self.base_mean_j is not None else 0.0)
        quantity = "energy"
        if self.work_samples and self.base_work_samples:
            cur, base, quantity = self.work_samples, self.base_work_samples, WORK_QUANTITY
        allow = contention_allowance(self.base_contention, self.contention)
        between_cv, reason = allow.between_run_cv, allow.text
        drift = run_drift(base, cur)
        if drift is not None:
            between_cv = max(between_cv, drift.cv)  # the run queue's allowance guesses the same
            if not allow.refuse:
                reason = f"{reason}; {drift.text}" if reason else drift.text
        if spec.field == "co2e":
            cur = (
                [x * self.kg_per_j for x in cur]
                if not isinstance(cur, float)
                else cur * self.kg_per_j
            )
            base = (
                [x * self.base_kg_per_j for x in base]
                if not isinstance(base, float)
                else base * self.base_kg_per_j
            )
        # one window without spread: the point change decides only when clearly off the
        # threshold (below half of it, or above 1.5 times it); else inconclusive. A change
        # equal to the threshold (up to float noise) is no regression.
        return compare_decision(
            base,
            cur,
            spec.percent / 100.0 + 1e-12,
            method="trimmed",
            point_guard=0.5,
            quantity=quantity,
            between_run_cv=between_cv,
            allowance=allow.relative,
            contention=reason,
            refuse=allow.refuse,
        )


@record
class RunDrift(Frozen):
    """The between-run spread two runs' own drift amounts to, and its line."""

    cv: float
    text: str


def run_drift(base: Sequence[float] | float, current: Sequence[float] | float) -> RunDrift | None:
    """The drift of each run's windows (:func:`..measure.drift.drift_cv`) as one between-run
    spread per run, with the text that names it; None when neither run drifted beyond what
    its windows' scatter explains (or neither has the windows to tell)."""
    from ..measure.drift import MENTION_CV, combined_cv, drift_cv

    drifts = [None if isinstance(x, float) else drift_cv(x) for x in (base, current)]
    cv = combined_cv(*drifts)
    if cv < MENTION_CV:
        return None

    def pct(d: float | None) -> str:
        return "unknown" if d is None else f"±{d * 100:.2g}%"

    return RunDrift(
        cv,
        f"±{cv * 100:.2g}% allowed between runs: the machine's speed drifted within the runs "
        f"(block means of the windows {pct(drifts[0])} in the baseline, {pct(drifts[1])} now)",
    )


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
        if p.measured == bp.measured and bp.n != p.n and bp.n:  # adaptive steps too: per unit
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
                samples=r.measurement.unit_energies_j,
                base_samples=b.measurement.unit_energies_j,
                base_mean_j=b.measurement.energy_per_unit_j.mean,
                mean_j=r.measurement.energy_per_unit_j.mean,
                kg_per_j=_kg_per_j(r),
                base_kg_per_j=_kg_per_j(b),
                work_samples=r.measurement.work_unit_energies_j,
                base_work_samples=b.measurement.work_unit_energies_j,
                contention=r.measurement.contention,
                base_contention=b.measurement.contention,
            )
        )
    return out


def _kg_per_j(r: Result) -> float:
    """CO2e per joule of a result (its intensity x PUE), to turn J samples into kg."""
    j = r.projection.energy_kwh * J_PER_KWH
    return r.emission.co2e_kg / j if j > 0 else 0.0


def missing_from(
    tests: Iterable[TestRecord], baseline_tests: Iterable[TestRecord]
) -> list[tuple[str, str]]:
    """Measurements of the baseline that this run did not make."""
    now = _by_key(tests)
    return [k for k in _by_key(baseline_tests) if k not in now]
