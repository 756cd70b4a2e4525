"""Re-render a saved report for another region, month or PUE, without measuring again.

Energies stay as measured; each measurement's emission is recomputed from its projection
(``energy_kwh``, ``std_kwh``, ``ci95_kwh``) with Eq. 1, and its what-if columns, budget
verdicts and the totals follow; the ``sci`` block's rows are recomputed, the ``profile`` and
``defer`` blocks kept (``reporting.blocks``).
"""

from __future__ import annotations

from dataclasses import replace

from ..carbon.emission import DEFAULT_PUE, Emission, emission
from ..carbon.intensity import lookup
from ..carbon.intensity_value import Intensity
from ..constants import DEFAULT_REGION
from .blocks import rerendered_blocks
from .budget import evaluate
from .json_report import Report
from .model import Result, TestRecord
from .session_parts import RerenderInfo


def _own_intensity(e: Emission) -> Intensity:
    """The intensity an emission was computed with (exactly, including a user value)."""
    year, mon = (int(e.month[:4]), int(e.month[5:7])) if e.month else (None, None)
    return Intensity(
        region=e.region, name=e.region, g_per_kwh=e.intensity_g_per_kwh,
        year=year, month=mon, source=e.source,
    )  # fmt: skip


def rerender(
    report: Report,
    *,
    region: str | None = None,
    month: str | None = None,
    pue: float | None = None,
    intensity_file: str | None = None,
) -> Report:
    """A copy of ``report`` whose emissions are for ``region``/``month``/``pue``.

    Unset values keep what each measurement used. Raises ValueError (e.g. IntensityError)
    with one line for an unknown region or a month without data.
    """
    session = report.session
    settings = dict(session.settings)
    new_pue = float(pue) if pue is not None else float(session.setting("pue", DEFAULT_PUE))
    target: Intensity | None = None
    if region is not None or month is not None:
        target = lookup(
            region or session.setting("region") or DEFAULT_REGION, month, csv_path=intensity_file
        )
    whatif_cache: dict[str, Intensity] = {}

    def redo(r: Result) -> Result:
        p = r.projection
        em = emission(
            p.energy_kwh, target or _own_intensity(r.emission), new_pue,
            std_kwh=p.std_kwh, ci95_kwh=p.ci95_kwh,
        )  # fmt: skip
        whatif = {}
        for w in r.whatif_co2e_kg:
            if w not in whatif_cache:
                whatif_cache[w] = lookup(w, None, csv_path=intensity_file)
            whatif[w] = emission(p.energy_kwh, whatif_cache[w], new_pue).co2e_kg
        return replace(r, emission=em, whatif_co2e_kg=whatif)

    tests = []
    for t in report.tests:
        results = [redo(r) for r in t.results]
        budget = t.budget
        if budget is not None and results:
            budget = evaluate(budget.budget, results)
        tests.append(TestRecord(t.nodeid, t.outcome, results, budget))
    if target is not None:
        settings["region"], settings["month"] = target.region, target.month_text
    settings["pue"] = new_pue
    session = replace(
        session,
        intensity=target if target is not None else session.intensity,
        settings=settings,
        rerendered=RerenderInfo(
            region=None if target is None else target.region,
            month=None if target is None else target.month_text,
            pue=new_pue,
        ),
    )
    # the comparison (and the advice) were for the original accounting
    return Report(session=session, tests=tests, extra=rerendered_blocks(report.extra, tests))
