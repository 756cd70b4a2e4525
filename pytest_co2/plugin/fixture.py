"""The ``co2_meter`` fixture object: a :class:`Meter` bound to the session's accounting.

Free of pytest hooks so it can be unit-tested; the plugin builds one per test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend
from ..carbon.accounting import Accounting
from ..carbon.emission import Emission, co2e_kg, eq1_kg
from ..constants import J_PER_KWH
from ..measure.assemble import Readings, plain_energy
from ..measure.meter import Meter
from ..measure.records import Measurement, Projection
from ..measure.window import Window, WindowError
from ..options import Settings
from ..reporting.model import Budget, Numbers, Result

if TYPE_CHECKING:
    from ..reporting.model import TestRecord
    from ..reporting.terminal import SummaryRow


class Co2Meter(Meter):
    """The ``co2_meter`` fixture: a :class:`Meter` bound to the session's accounting.

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
            precision=settings.precision or None,
            max_time_s=settings.max_time,
        )
        self.accounting = accounting
        self.settings = settings
        self.budget = budget
        # a run that saves or compares a baseline aims --co2-precision at the part the gate
        # compares (the CPU estimate's work part), not at the full figure
        self.stop_on_work = bool(
            settings.save or settings.compare is not None or settings.compare_fail
        )
        self.ended_test: str | None = None  # set when its test ends: it measures no more

    def _check_live(self) -> None:
        if self.ended_test is not None:
            raise WindowError(
                f"this co2_meter belongs to the test {self.ended_test!r}, which has ended: its "
                "measurements would be recorded nowhere; use the co2_meter fixture of the "
                "running test"
            )

    def measure(self, name: str = "default", **kw: Any) -> Window:
        self._check_live()
        return super().measure(name, **kw)

    def steps(self, n: int, **kw: Any) -> Iterator[int]:
        self._check_live()
        return super().steps(n, **kw)

    def _account_default(self, projection: Projection) -> Emission:
        region = self.budget.region if self.budget is not None else None
        return self.accounting.emission(projection, region)

    def target_for(self, m: Measurement) -> int | None:
        """The projection target: the measurement's own, else the budget's, else the session's."""
        return self._target(m.extrapolate, m.unit)

    def _target(self, own: int | None, unit: str) -> int | None:
        if own is not None:
            return own
        b = self.budget
        if b is not None and b.extrapolate is not None and b.applies_to(unit):
            return b.extrapolate
        return self.extrapolate.get(unit)

    def projection_of(self, m: Measurement) -> Projection:
        return m.project(self.target_for(m))

    def result_of(self, m: Measurement) -> Result:
        """The measurement with its projection, emission and what-if CO2e: the typed record
        every output is made from."""
        projection = self.projection_of(m)
        return Result(
            measurement=m,
            projection=projection,
            emission=self._account_default(projection),
            whatif_co2e_kg=self.accounting.whatif_of(projection.energy_kwh),
        )

    def numbers_of(self, windows: Sequence[Readings]) -> list[Numbers | None]:
        """The figures of closed, deferred windows (what each read) that the summary ranks
        and totals, without making their records: exactly ``result_of(assemble(r)).numbers()``.
        None where they are not plain arithmetic (see :func:`plain_energy`), or not a valid
        energy (the record's emission says why): make the record."""
        accounting = self.accounting
        region = self.budget.region if self.budget is not None else None
        g_per_kwh, pue = accounting.intensity_for(region).g_per_kwh, accounting.pue
        co2e_kg(0.0, g_per_kwh, pue)  # checks the intensity and the PUE once, as Eq. 1 does
        whatif = [(r, i.g_per_kwh) for r, i in accounting.whatif.items()]
        for _, g in whatif:
            co2e_kg(0.0, g, pue)
        out: list[Numbers | None] = []
        nan, isfinite = math.nan, math.isfinite
        targets: dict[tuple[int | None, str], int | None] = {}  # by (own target, unit)
        for ended in windows:
            plain = plain_energy(ended)
            if plain is None:
                out.append(None)
                continue
            duration_s, energy_j, units = plain
            key = (ended.extrapolate, ended.unit)
            target = targets[key] if key in targets else targets.setdefault(key, self._target(*key))
            mean_j = energy_j / units if units else nan  # as Stats.of, for one step
            energy_kwh = mean_j * (round(units) if target is None else int(target)) / J_PER_KWH
            if not (isfinite(energy_kwh) and energy_kwh >= 0):
                out.append(None)
                continue
            regions: dict[str, float] = {}
            for r, g in whatif:
                regions[r] = eq1_kg(energy_kwh, g, pue)
            out.append(
                (
                    duration_s,
                    energy_j,
                    energy_kwh,
                    nan,  # one step: no spread (Stats.of)
                    eq1_kg(energy_kwh, g_per_kwh, pue),  # co2e_kg(), checked above
                    nan,
                    regions,
                )
            )
        return out

    def summary_row(self, test: TestRecord, ended: Readings, numbers: Numbers) -> SummaryRow:
        """The summary's row of a closed, deferred window (what it read) whose figures are
        ``numbers`` (from :meth:`numbers_of`, not None), without making its record: exactly
        ``SummaryRow.of(test, result_of(assemble(ended)))``."""
        from ..reporting.terminal import SummaryRow

        duration_s, energy_j, energy_kwh, _, co2e_kg, std_kg, whatif = numbers
        units = math.fsum(ended.units)
        target = self._target(ended.extrapolate, ended.unit)
        return SummaryRow(
            test, ended.name, ended.complete, ended.method, ended.unit, len(ended.units),
            min(ended.seen, ended.warmup), energy_j / units if units else math.nan, math.nan,
            duration_s, round(units) if target is None else int(target), target is None,
            energy_kwh, co2e_kg, std_kg, whatif,
        )  # fmt: skip

    def record(self, m: Measurement) -> Measurement:
        """Add a measurement made elsewhere (e.g. :meth:`Measurement.combine` of DDP ranks)."""
        if not isinstance(m, Measurement):
            raise TypeError(
                f"record() takes a pytest_co2.meter.Measurement, not {type(m).__name__}"
            )
        self._check_live()
        self._record(m)
        return m

    def emission_for(
        self,
        m: Measurement | Projection,
        region: str | None = None,
        month: str | None = None,
        extrapolate: int | None = None,
    ) -> Emission:
        """The emission of a measurement (or projection) in another region or month."""
        if isinstance(m, Measurement):
            projection = (
                m.project(extrapolate) if extrapolate is not None else self.projection_of(m)
            )
        else:
            projection = m
        return self.accounting.emission(projection, region, month)
