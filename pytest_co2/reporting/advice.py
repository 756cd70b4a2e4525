"""Carbon-aware advice from one measurement: where (and when) the same work emits least.

Eq. 1 is linear in the intensity, so a measured energy gives the CO2e of every candidate
region (yearly values) and of every month with data, without measuring again. The paper's
strongest practical finding is this spread: up to 94x between regions, 50% between months.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..carbon.accounting import Accounting
from ..carbon.emission import co2e_kg
from ..carbon.forecast import best_start
from ..carbon.intensity import lookup, monthly_values, paper_regions
from ..carbon.intensity_value import Intensity, IntensityError, format_age, format_g_per_kwh
from ..carbon.providers.base import ForecastPoint, iso
from ..fmt import fmt_num, region_text
from ..frozen import Frozen, record
from .model import Result, TestRecord, all_results


@record
class Choice(Frozen):
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


@record
class Advice(Frozen):
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


@record
class Candidates(Frozen):
    """The intensities to choose from, looked up once per session: Eq. 1 is linear in the
    intensity, so the lowest one is the lowest emission for any energy."""

    current: Intensity
    best_region: Intensity
    best_month: Intensity | None

    @classmethod
    def find(
        cls, current: Intensity, regions: Sequence[str], *, intensity_file: str | None = None
    ) -> Candidates:
        # a live value stands for its region: its yearly average is no other choice
        live = current.provenance != "shipped"
        yearly = [
            lookup(r, None, csv_path=intensity_file)
            for r in regions
            if not (live and r == current.region)
        ]
        best = min([*yearly, current], key=lambda it: it.g_per_kwh)
        try:
            months = monthly_values(current.region, csv_path=intensity_file)
        except IntensityError:  # a live zone the shipped data does not know
            months = []
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


def projected_duration_s(results: Sequence[Result]) -> float:
    """How long the projected work takes: each measurement's seconds per unit x its units."""
    return math.fsum(
        r.measurement.duration_s * r.projection.n / r.measurement.units
        for r in results
        if r.measurement.units > 0
    )


def start_advice(
    forecast: Sequence[ForecastPoint],
    energy_kwh: float,
    duration_s: float,
    current: Intensity,
    pue: float,
    now: _dt.datetime,
) -> dict[str, Any]:
    """The best start in the next 24 h for a run of ``duration_s`` and ``energy_kwh`` (spread
    evenly over the run): the forecast's figures and a sentence."""
    best = best_start(forecast, duration_s, now, current_g_per_kwh=current.g_per_kwh)
    run = format_age(duration_s)
    if best is None:
        return {
            "best_start": None,
            "text": f"the forecast does not cover a run of {run} starting in the next 24 h",
        }
    kg = co2e_kg(energy_kwh, best.mean_g_per_kwh, pue)
    now_kg = None if best.now_g_per_kwh is None else co2e_kg(energy_kwh, best.now_g_per_kwh, pue)
    d = {**best.to_dict(), "co2e_kg": kg, "now_co2e_kg": now_kg}
    saving = best.saving
    if now_kg is None or saving is None or best.start <= now or saving >= 0:
        text = f"starting now is the lowest-emission start of a {run} run in the next 24 h"
    else:
        wait = format_age((best.start - now).total_seconds())
        text = (
            f"start at {iso(best.start)} (in {wait}): {fmt_num(kg)} kg instead of "
            f"{fmt_num(now_kg)} kg now ({saving:+.0%}; forecast "
            f"{format_g_per_kwh(best.mean_g_per_kwh)} vs "
            f"{format_g_per_kwh(best.now_g_per_kwh or 0.0)} g/kWh over the {run} run)"
        )
    return {"best_start": d, "text": text}


def advise_run(
    tests: Sequence[TestRecord],
    accounting: Accounting,
    regions: Sequence[str] = (),
    *,
    now: _dt.datetime | None = None,
) -> dict[str, Any]:
    """The ``advice`` block of a report: for the session and for each test; with a forecast
    (``accounting.forecast``), also the best start time in the next 24 h."""
    regs = candidates(regions)
    found = Candidates.find(accounting.intensity, regs, intensity_file=accounting.intensity_file)
    pue = accounting.pue
    forecast = getattr(accounting, "forecast", ())
    when = now or _dt.datetime.now(_dt.timezone.utc)

    def block(results: Sequence[Result]) -> dict[str, Any]:
        energy = math.fsum(r.projection.energy_kwh for r in results)
        d = found.advice(energy, pue).to_dict()
        if forecast:
            start = start_advice(
                forecast, energy, projected_duration_s(results), accounting.intensity, pue, when
            )
            d["best_start"] = start["best_start"]
            d["text"] += "; " + start["text"]
        return d

    per_test: Mapping[str, Any] = {t.nodeid: block(t.results) for t in tests}
    return {"candidates": regs, "session": block(all_results(tests)), "tests": dict(per_test)}
