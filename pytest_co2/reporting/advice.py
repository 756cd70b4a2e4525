"""Carbon-aware advice from one measurement: where (and when) the same work emits least.

Eq. 1 is linear in the intensity, so a measured energy gives the CO2e of every candidate
region (yearly values) and of every month with data, without measuring again. The paper's
strongest practical finding is this spread: up to 94x between regions, 50% between months.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..carbon.accounting import Accounting
from ..carbon.emission import co2e_kg
from ..carbon.intensity import Intensity, lookup, monthly_values, paper_regions
from .fmt import fmt_num, region_text
from .model import TestRecord, Totals, all_results


@dataclass(frozen=True)
class Choice:
    """Where and when: a region (and month) with its intensity and the work's CO2e there."""

    region: str
    month: str | None
    g_per_kwh: float
    co2e_kg: float

    def text(self) -> str:
        return region_text(self.region, self.month)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "month": self.month,
            "g_per_kwh": self.g_per_kwh,
            "co2e_kg": self.co2e_kg,
        }


@dataclass(frozen=True)
class Advice:
    """The current choice, the lowest-emission region (yearly) and month (with data)."""

    current: Choice
    best_region: Choice
    best_month: Choice | None

    @staticmethod
    def saving(better: Choice, current: Choice) -> float:
        """Relative change of CO2e, e.g. -0.99 for 99% less."""
        return better.co2e_kg / current.co2e_kg - 1.0 if current.co2e_kg > 0 else 0.0

    def describe(self) -> str:
        """``run in SE: 0.0043 kg instead of 0.405 kg in PL (-99%)``, and the best month."""
        cur, best = self.current, self.best_region
        if best.co2e_kg >= cur.co2e_kg:
            text = f"{cur.text()} is already the lowest-emission region of the candidates"
        else:
            text = (
                f"run in {best.text()}: {fmt_num(best.co2e_kg)} kg instead of "
                f"{fmt_num(cur.co2e_kg)} kg in {cur.text()} ({self.saving(best, cur):+.0%})"
            )
        m = self.best_month
        if m is not None and m.co2e_kg < cur.co2e_kg and m.region == cur.region:
            text += f"; in {m.region} the lowest month with data is {m.month}: {fmt_num(m.co2e_kg)} kg ({self.saving(m, cur):+.0%})"
        elif m is not None and m.region != cur.region:
            text += f"; {m.region}'s lowest month with data is {m.month}: {fmt_num(m.co2e_kg)} kg"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict(),
            "best_region": self.best_region.to_dict(),
            "best_region_saving": self.saving(self.best_region, self.current),
            "best_month": None if self.best_month is None else self.best_month.to_dict(),
            "best_month_saving": None
            if self.best_month is None
            else self.saving(self.best_month, self.current),
            "text": self.describe(),
        }


def candidates(regions: Sequence[str] = ()) -> list[str]:
    """The candidate regions: those given, else the paper's Table 1."""
    return list(regions) or paper_regions()


@dataclass(frozen=True)
class Candidates:
    """The intensities to choose from, looked up once per session: Eq. 1 is linear in the
    intensity, so the lowest one is the lowest emission for any energy."""

    current: Intensity
    best_region: Intensity
    best_month: Intensity | None

    @classmethod
    def find(
        cls, current: Intensity, regions: Sequence[str], *, intensity_file: str | None = None
    ) -> Candidates:
        yearly = [lookup(r, None, csv_path=intensity_file) for r in regions]
        best = min([*yearly, current], key=lambda it: it.g_per_kwh)
        months = monthly_values(current.region, csv_path=intensity_file)
        if not months:  # no monthly data here: the best month of any candidate that has some
            months = [it for r in regions for it in monthly_values(r, csv_path=intensity_file)]
        best_month = min(months, key=lambda it: it.g_per_kwh) if months else None
        return cls(current, best, best_month)

    def advice(self, energy_kwh: float, pue: float) -> Advice:
        """The advice for ``energy_kwh`` (IT energy) at ``pue``."""

        def choice(it: Intensity) -> Choice:
            return Choice(
                it.region, it.month_text, it.g_per_kwh, co2e_kg(energy_kwh, it.g_per_kwh, pue)
            )

        month = None if self.best_month is None else choice(self.best_month)
        return Advice(choice(self.current), choice(self.best_region), month)


def advise(
    energy_kwh: float,
    current: Intensity,
    pue: float,
    regions: Sequence[str],
    *,
    intensity_file: str | None = None,
) -> Advice:
    """Advice for ``energy_kwh`` (IT energy) now emitted at ``current``."""
    return Candidates.find(current, regions, intensity_file=intensity_file).advice(energy_kwh, pue)


def advise_run(
    tests: Sequence[TestRecord], accounting: Accounting, regions: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``advice`` block of a report: for the session and for each test."""
    regs = candidates(regions)
    found = Candidates.find(accounting.intensity, regs, intensity_file=accounting.intensity_file)
    pue = accounting.pue
    session = found.advice(Totals.of(all_results(tests)).energy_kwh, pue)
    per_test: Mapping[str, Any] = {
        t.nodeid: found.advice(sum(r.projection.energy_kwh for r in t.results), pue).to_dict()
        for t in tests
    }
    return {"candidates": regs, "session": session.to_dict(), "tests": dict(per_test)}
