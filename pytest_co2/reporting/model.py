"""The typed result model: what a run measured, projected and emitted, test by test.

It flows from the fixture to every output: the terminal summary, the JSON report, the
markdown, JUnit properties, baselines, re-rendering and budget verdicts all read these
records. Dicts are made only at the JSON / pytest-xdist boundary (``to_dict``) and read back
with ``from_dict``, which names the first bad field (:class:`ReportError`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any

from ..carbon.emission import Emission
from ..carbon.equivalents import equivalents
from ..frozen import Frozen, record
from ..measure.records import Measurement, Projection
from ..measure.stats import json_num, num

SCHEMA_VERSION = 1


class ReportError(ValueError):
    """A report or baseline that is not what the schema says: names the first bad field."""


#: The figures of a result that the summary ranks and totals: (duration_s, energy_j,
#: projected energy_kwh, std_kwh, co2e_kg, std_kg, whatif_co2e_kg). See :meth:`Result.numbers`.
Numbers = tuple[float, float, float, float, float, float, Mapping[str, float]]


@record
class Result(Frozen):
    """One measurement with its projection, its emission and the what-if regions' CO2e."""

    measurement: Measurement
    projection: Projection
    emission: Emission
    whatif_co2e_kg: Mapping[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.measurement.name

    @property
    def key(self) -> str:
        return self.measurement.name

    def numbers(self) -> Numbers:
        """What :class:`Totals` sums, and the summary ranks by (``co2e_kg``)."""
        m, p, e = self.measurement, self.projection, self.emission
        return (
            m.duration_s,
            m.energy_j,
            p.energy_kwh,
            p.std_kwh,
            e.co2e_kg,
            e.std_kg,
            self.whatif_co2e_kg,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.measurement.to_dict(),
            "projection": self.projection.to_dict(),
            "emission": self.emission.to_dict(),
            "equivalents": equivalents(self.emission.co2e_kg),
            "whatif_co2e_kg": dict(self.whatif_co2e_kg),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        return cls(
            measurement=Measurement.from_dict(d),
            projection=Projection.from_dict(d["projection"]),
            emission=Emission.from_dict(dict(d["emission"])),
            whatif_co2e_kg={
                str(k): float(v) for k, v in dict(d.get("whatif_co2e_kg") or {}).items()
            },
        )


@record
class Budget(Frozen):
    """A test's ``co2_budget``: limits (kg CO2e and/or kWh) and its projection target."""

    kg: float | None = None
    kwh: float | None = None
    extrapolate: int | None = None
    unit: str | None = None
    region: str | None = None

    def applies_to(self, unit: str) -> bool:
        """Whether ``extrapolate`` targets measurements of ``unit``."""
        return self.unit is None or self.unit == unit

    def to_dict(self) -> dict[str, Any]:
        return {
            "kg": self.kg,
            "kwh": self.kwh,
            "extrapolate": self.extrapolate,
            "unit": self.unit,
            "region": self.region,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Budget:
        def opt_float(key: str) -> float | None:
            return None if d.get(key) is None else float(d[key])

        return cls(
            kg=opt_float("kg"),
            kwh=opt_float("kwh"),
            extrapolate=None if d.get("extrapolate") is None else int(d["extrapolate"]),
            unit=None if d.get("unit") is None else str(d["unit"]),
            region=None if d.get("region") is None else str(d["region"]),
        )


@record
class BudgetVerdict(Frozen):
    """A test's projected total against its budget, as recorded (JSON ``budget``);
    ``message`` says why it failed. Each quantity is decided by
    ``measure.budget_decision.budget_verdict`` (a
    :class:`~pytest_co2.measure.budget_decision.BudgetDecision`)."""

    budget: Budget
    energy_kwh: float
    std_kwh: float
    co2e_kg: float
    std_kg: float
    passed: bool
    message: str | None = None
    outcome: str = ""  # "under", "over", "close" (too close to call: a warning), "unmeasured"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.budget.to_dict(),
            "outcome": self.outcome or ("under" if self.passed else "over"),
            "energy_kwh": json_num(self.energy_kwh),  # null: nothing was measured
            "std_kwh": json_num(self.std_kwh),
            "co2e_kg": json_num(self.co2e_kg),
            "std_kg": json_num(self.std_kg),
            "passed": self.passed,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetVerdict:
        return cls(
            budget=Budget.from_dict(d),
            energy_kwh=num(d["energy_kwh"]),
            std_kwh=num(d.get("std_kwh")),
            co2e_kg=num(d["co2e_kg"]),
            std_kg=num(d.get("std_kg")),
            passed=bool(d["passed"]),
            message=None if d.get("message") is None else str(d["message"]),
            outcome=str(d.get("outcome") or ("under" if d["passed"] else "over")),
        )


class TestRecord:
    """Everything measured for one test id (mutable: results come phase by phase). A plain
    class: one is made per measured test, and ``dataclass`` would compile three methods at
    import."""

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name
    __slots__ = ("budget", "nodeid", "outcome", "results")

    def __init__(
        self,
        nodeid: str,
        outcome: str = "passed",
        results: list[Result] | None = None,
        budget: BudgetVerdict | None = None,
    ) -> None:
        self.nodeid = nodeid
        self.outcome = outcome
        self.results: list[Result] = [] if results is None else results
        self.budget = budget

    def _fields(self) -> tuple[Any, ...]:
        return (self.nodeid, self.outcome, self.results, self.budget)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        return (
            f"TestRecord(nodeid={self.nodeid!r}, outcome={self.outcome!r}, "
            f"results={self.results!r}, budget={self.budget!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "measurements": [r.to_dict() for r in self.results],
            "budget": None if self.budget is None else self.budget.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TestRecord:
        budget = d.get("budget")
        return cls(
            nodeid=str(d["nodeid"]),
            outcome=str(d.get("outcome", "passed")),
            results=[Result.from_dict(e) for e in d["measurements"]],
            budget=None if not budget else BudgetVerdict.from_dict(budget),
        )


def rss(values: Iterable[float]) -> float:
    """Root sum of squares; NaN (unknown) when any part is unknown, never a silent 0."""
    return math.sqrt(math.fsum(v * v for v in values))


@record
class Totals(Frozen):
    """Sums over every measurement of a run (spreads added in quadrature)."""

    measurements: int
    duration_s: float
    energy_j: float
    energy_kwh: float
    std_kwh: float
    co2e_kg: float
    std_kg: float
    whatif_co2e_kg: Mapping[str, float]

    @classmethod
    def of(cls, results: Sequence[Result]) -> Totals:
        return cls.summed([x.numbers() for x in results])

    @classmethod
    def summed(cls, rows: Sequence[Numbers]) -> Totals:
        """The totals of results given by their :meth:`Result.numbers`."""
        duration, energy, kwh, std_kwh, co2e, std_kg, whatif = (
            zip(*rows, strict=True) if rows else ((),) * 7
        )
        regions = dict.fromkeys(r for x in whatif for r in x)
        return cls(
            measurements=len(rows),
            duration_s=math.fsum(duration),
            energy_j=math.fsum(energy),
            energy_kwh=math.fsum(kwh),
            std_kwh=rss(std_kwh),
            co2e_kg=math.fsum(co2e),
            std_kg=rss(std_kg),
            whatif_co2e_kg={r: math.fsum(x.get(r, 0.0) for x in whatif) for r in regions},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "measurements": self.measurements,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "energy_kwh": self.energy_kwh,
            "std_kwh": json_num(self.std_kwh),
            "co2e_kg": self.co2e_kg,
            "std_kg": json_num(self.std_kg),
            "whatif_co2e_kg": dict(self.whatif_co2e_kg),
        }


def all_results(tests: Iterable[TestRecord]) -> list[Result]:
    return [r for t in tests for r in t.results]


def ranked(tests: Iterable[TestRecord]) -> list[tuple[TestRecord, Result]]:
    """(test, result) pairs, largest projected emissions first."""
    pairs = [(t, r) for t in tests for r in t.results]
    pairs.sort(key=lambda p: -p[1].emission.co2e_kg)
    return pairs


def tests_from_dicts(items: Any, where: str = "tests") -> list[TestRecord]:
    """Rebuild test records from JSON, naming the first bad field in a :class:`ReportError`."""
    if not isinstance(items, list):
        raise ReportError(f"{where}: expected a list of tests")
    out = []
    for i, t in enumerate(items):
        here = f"{where}[{i}]"
        if not isinstance(t, Mapping):
            raise ReportError(f"{here}: expected an object")
        for key in ("nodeid", "measurements"):
            if key not in t:
                raise ReportError(f"{here}: missing field {key!r}")
        if not isinstance(t["measurements"], list):
            raise ReportError(f"{here}.measurements: expected a list")
        for j, e in enumerate(t["measurements"]):
            _check_result(e, f"{here}.measurements[{j}]")
        try:
            out.append(TestRecord.from_dict(t))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReportError(f"{here}: bad value ({type(exc).__name__}: {exc})") from None
    return out


_RESULT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "unit": str,
    "steps": int,
    "duration_s": (int, float),
    "energy_j": (int, float),
    "method": str,
    "energy_per_unit_j": Mapping,
    "projection": Mapping,
    "emission": Mapping,
}
_NESTED = {
    "projection": ("n", "unit", "energy_kwh"),
    "emission": ("region", "intensity_g_per_kwh", "pue", "energy_kwh", "co2e_kg"),
    "energy_per_unit_j": ("mean",),
}


def _check_result(e: Any, where: str) -> None:
    if not isinstance(e, Mapping):
        raise ReportError(f"{where}: expected an object")
    for key, kind in _RESULT_FIELDS.items():
        if key not in e:
            raise ReportError(f"{where}: missing field {key!r}")
        if not isinstance(e[key], kind) or isinstance(e[key], bool):
            raise ReportError(f"{where}.{key}: unexpected value {e[key]!r}")
    for key, inner in _NESTED.items():
        for sub in inner:
            if sub not in e[key]:
                raise ReportError(f"{where}.{key}: missing field {sub!r}")
    for key, part in _AMOUNTS:
        value = e[key] if part is None else e[key][part]
        if value is None and part is not None:
            continue
        if not _amount_ok(value):
            name = key if part is None else f"{key}.{part}"
            raise ReportError(
                f"{where}.{name}: unexpected value {value!r}: expected a number >= 0 and "
                f"<= {MAX_AMOUNT:g}"
            )


#: The largest amount (J, kWh, kg, s, g/kWh) a report may hold: sums and products of a
#: report's amounts stay finite.
MAX_AMOUNT = 1e30
_AMOUNTS: tuple[tuple[str, str | None], ...] = (
    ("duration_s", None),
    ("energy_j", None),
    ("energy_per_unit_j", "mean"),
    ("projection", "energy_kwh"),
    ("emission", "intensity_g_per_kwh"),
    ("emission", "pue"),
    ("emission", "energy_kwh"),
    ("emission", "co2e_kg"),
)


def _amount_ok(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value <= MAX_AMOUNT  # False for NaN
    )
