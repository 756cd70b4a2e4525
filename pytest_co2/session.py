"""One pytest session's state: the backend, carbon accounting, the fixture object, results.

Kept free of pytest hooks so it can be unit-tested; ``plugin.py`` only wires it in.
Results travel as JSON-safe dicts ("entries"): a worker (or the single process) turns each
:class:`Measurement` into an entry with its projection, emission and equivalents, puts the
entries on the test report, and the controlling process collects them from the reports.
The same path serves runs with and without pytest-xdist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .accounting import Accounting
from .backends.base import Backend
from .budget import Budget
from .meter import Measurement, Meter, Projection, Window
from .options import Settings


@dataclass
class TestResult:
    """Everything measured for one test id, as the controller sees it."""

    nodeid: str
    outcome: str = "passed"
    entries: list[dict[str, Any]] = field(default_factory=list)
    budget: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "measurements": self.entries,
            "budget": self.budget,
        }


class Co2Meter(Meter):
    """The ``co2_meter`` fixture: a :class:`Meter` bound to the session's settings.

    Adds what a test needs beyond measuring: :meth:`record` for measurements made elsewhere
    (DDP ranks), :meth:`emission_for` for other regions and months, the test's budget
    (its ``extrapolate`` overrides the session's targets for this test).
    """

    def __init__(
        self,
        backend: Backend,
        accounting: Accounting,
        settings: Settings,
        *,
        budget: Budget | None = None,
        on_record: Callable[[Measurement], None] | None = None,
        progress: Callable[[Window], None] | None = None,
        idle_w: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            backend,
            extrapolate=settings.extrapolate,
            account=self._account_default,
            progress=progress,
            on_record=on_record,
            idle_w=idle_w,
        )
        self.accounting = accounting
        self.settings = settings
        self.budget = budget

    @property
    def backend_spec(self) -> str:
        return self.settings.backend

    def _account_default(self, projection: Projection) -> Any:
        region = self.budget.region if self.budget is not None else None
        return self.accounting.emission(projection, region)

    def target_for(self, m: Measurement) -> int | None:
        """The projection target: the measurement's own, else the budget's, else the session's."""
        if m.extrapolate is not None:
            return m.extrapolate
        if (
            self.budget is not None
            and self.budget.extrapolate is not None
            and self.budget.applies_to(m.unit)
        ):
            return self.budget.extrapolate
        return self.extrapolate.get(m.unit)

    def projection_of(self, m: Measurement) -> Projection:
        return m.project(self.target_for(m))

    def record(self, m: Measurement) -> Measurement:
        """Add a measurement made elsewhere (e.g. :meth:`Measurement.combine` of DDP ranks)."""
        if not isinstance(m, Measurement):
            raise TypeError(
                f"record() takes a pytest_co2.meter.Measurement, not {type(m).__name__}"
            )
        self._record(m)
        return m

    def emission_for(
        self,
        m: Measurement | Projection,
        region: str | None = None,
        month: str | None = None,
        extrapolate: int | None = None,
    ) -> Any:
        """The emission of a measurement (or projection) in another region or month."""
        if isinstance(m, Measurement):
            projection = (
                m.project(extrapolate) if extrapolate is not None else self.projection_of(m)
            )
        else:
            projection = m
        return self.accounting.emission(projection, region, month)


def entry_for(meter: Co2Meter, m: Measurement) -> dict[str, Any]:
    """The JSON-safe record of one measurement with its projection, emission and equivalents."""
    from .equivalents import equivalents

    projection = meter.projection_of(m)
    emission = meter.emission_of(m)
    whatif = {r: meter.accounting.emission(projection, r).co2e_kg for r in meter.accounting.whatif}
    return {
        **m.to_dict(),
        "projection": projection.to_dict(),
        "emission": emission.to_dict(),
        "equivalents": equivalents(emission.co2e_kg),
        "whatif_co2e_kg": whatif,
    }


def how_measured(entries: list[dict[str, Any]]) -> str:
    """e.g. "estimated CPU", "counter GPU + estimated CPU", "simulated"."""
    parts: dict[str, set[str]] = {}
    for e in entries:
        for d in e.get("devices", ()):
            kind = d["kind"].upper() if d["kind"] in ("cpu", "gpu", "dram") else d["kind"]
            if d["kind"] == "simulated":
                kind = ""
            parts.setdefault(d["method"], set()).add(kind)
    out = []
    for method, kinds in parts.items():
        ks = "/".join(sorted(k for k in kinds if k))
        out.append(f"{method} {ks}".strip())
    return " + ".join(out) or "unmeasured"


def check_budget(
    budget: Budget, meter: Co2Meter, entries: list[dict[str, Any]]
) -> tuple[dict[str, Any], str | None]:
    """Compare the test's projected total with its budget: (budget record, failure message)."""
    from .table import fmt_count

    energy = math.fsum(e["projection"]["energy_kwh"] for e in entries)
    co2e = math.fsum(e["emission"]["co2e_kg"] for e in entries)
    std_e = math.sqrt(math.fsum((e["projection"]["std_kwh"] or 0.0) ** 2 for e in entries))
    std_c = math.sqrt(math.fsum((e["emission"]["std_kg"] or 0.0) ** 2 for e in entries))
    targets = dict.fromkeys(
        f"{fmt_count(e['projection']['n'])} {_plural(e['unit'], e['projection']['n'])}"
        for e in entries
    )
    region = entries[0]["emission"]["region"] if entries else meter.accounting.intensity.region
    month = entries[0]["emission"].get("month") if entries else None
    what = f"for {' + '.join(targets)} in {region}{' ' + month if month else ''}"
    message = (
        budget.check(energy, std_e, co2e, std_c, what, how_measured(entries))
        if entries
        else ("no measurement was recorded, so the budget cannot be checked")
    )
    record = {
        **budget.to_dict(),
        "energy_kwh": energy,
        "co2e_kg": co2e,
        "passed": message is None,
        "message": message,
    }
    return record, message


def _plural(unit: str, n: int) -> str:
    if n == 1 or unit.endswith("s"):
        return unit
    return unit + "s"
