"""Re-render a saved JSON report for another region, month or PUE, without measuring again.

Energies stay as measured; each measurement's emission is recomputed from its projection
(``energy_kwh``, ``std_kwh``, ``ci95_kwh``) with :func:`pytest_co2.carbon.emission`, and
its equivalents, what-if columns, budget verdicts and the totals follow.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from .intensity import Intensity


def _own_intensity(emission: Mapping[str, Any]) -> Intensity:
    """The intensity an entry was computed with (exactly, including a user value)."""
    month = emission.get("month")
    year, mon = (int(month[:4]), int(month[5:7])) if month else (None, None)
    return Intensity(
        region=str(emission["region"]),
        name=str(emission["region"]),
        g_per_kwh=float(emission["intensity_g_per_kwh"]),
        year=year,
        month=mon,
        source=str(emission.get("source", "")),
    )


def check_report(report: Mapping[str, Any]) -> None:
    """ValueError (one line) unless ``report`` has what re-rendering needs."""
    session = report.get("session")
    if not isinstance(session, Mapping) or not isinstance(session.get("settings"), Mapping):
        raise ValueError("no session settings")
    if not isinstance(session.get("intensity"), Mapping):
        raise ValueError("no session intensity")
    tests = report.get("tests")
    if not isinstance(tests, list):
        raise ValueError("no list of tests")
    for t in tests:
        if (
            not isinstance(t, Mapping)
            or "nodeid" not in t
            or not isinstance(t.get("measurements"), list)
        ):
            raise ValueError("a test without nodeid or measurements")
        for e in t["measurements"]:
            for key in ("name", "unit", "method", "projection", "emission"):
                if not isinstance(e, Mapping) or key not in e:
                    raise ValueError(f"a measurement of {t['nodeid']} without {key!r}")


def rerender(
    report: Mapping[str, Any],
    *,
    region: str | None = None,
    month: str | None = None,
    pue: float | None = None,
    intensity_file: str | None = None,
) -> dict[str, Any]:
    """A copy of ``report`` whose emissions are for ``region``/``month``/``pue``.

    Unset values keep what each measurement used. Raises ValueError (e.g. IntensityError)
    with one line for an unknown region or a month without data.
    """
    from .budget import Budget
    from .carbon import emission
    from .equivalents import equivalents
    from .intensity import lookup
    from .meter import Projection
    from .table import totals

    out = copy.deepcopy(dict(report))
    session = out.setdefault("session", {})
    settings = session.setdefault("settings", {})
    new_pue = float(pue) if pue is not None else float(settings.get("pue", 1.55))
    target: Intensity | None = None
    if region is not None or month is not None:
        target = lookup(region or settings.get("region") or "EU27", month, csv_path=intensity_file)
    whatif_cache: dict[str, Intensity] = {}
    for test in out.get("tests", []):
        for e in test.get("measurements", []):
            p = Projection.from_dict(e["projection"])
            intensity = target or _own_intensity(e["emission"])
            em = emission(p.energy_kwh, intensity, new_pue, std_kwh=p.std_kwh, ci95_kwh=p.ci95_kwh)
            e["emission"] = em.to_dict()
            e["equivalents"] = equivalents(em.co2e_kg)
            whatif = {}
            for r in e.get("whatif_co2e_kg", {}):
                if r not in whatif_cache:
                    whatif_cache[r] = lookup(r, None, csv_path=intensity_file)
                whatif[r] = emission(p.energy_kwh, whatif_cache[r], new_pue).co2e_kg
            e["whatif_co2e_kg"] = whatif
        budget = test.get("budget")
        if budget and test.get("measurements"):
            entries = test["measurements"]
            energy = math.fsum(x["projection"]["energy_kwh"] for x in entries)
            co2e = math.fsum(x["emission"]["co2e_kg"] for x in entries)
            std_e = math.sqrt(math.fsum((x["projection"]["std_kwh"] or 0.0) ** 2 for x in entries))
            std_c = math.sqrt(math.fsum((x["emission"]["std_kg"] or 0.0) ** 2 for x in entries))
            em0 = entries[0]["emission"]
            what = f"in {em0['region']}{' ' + em0['month'] if em0.get('month') else ''}"
            how = " + ".join(dict.fromkeys(x["method"] for x in entries))
            message = Budget(kg=budget.get("kg"), kwh=budget.get("kwh")).check(
                energy, std_e, co2e, std_c, what, how
            )
            budget.update(energy_kwh=energy, co2e_kg=co2e, passed=message is None, message=message)
    if target is not None:
        session["intensity"] = target.to_dict()
        settings["region"], settings["month"] = target.region, target.month_text
    settings["pue"] = new_pue
    session["rerendered"] = {
        "region": None if target is None else target.region,
        "month": None if target is None else target.month_text,
        "pue": new_pue,
        "note": "emissions recomputed from the saved energies; nothing was measured again",
    }
    out["totals"] = totals(out.get("tests", []))
    out.pop("comparison", None)  # deltas were for the original accounting
    return out
