"""Carbon accounting, the paper's Eq. 1: CO2e = E [kWh] x PUE x CI [g/kWh].

``energy_kwh`` is always the IT energy (what the counters measure), before PUE; the facility
energy is ``energy_kwh x pue``. Uncertainties (std, 95 % CI half-width) are carried linearly,
as the paper does: the std of the energy scaled by the same factors.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..constants import DEFAULT_PUE, J_PER_KWH
from ..frozen import Frozen, record

if TYPE_CHECKING:
    from .intensity_value import Intensity

__all__ = [
    "DEFAULT_PUE",
    "J_PER_KWH",
    "Emission",
    "co2e_kg",
    "emission",
    "g_to_kg",
    "j_to_kwh",
    "kg_to_g",
    "kwh_to_j",
    "parse_energy_kwh",
    "parse_pue",
]


def j_to_kwh(energy_j: float) -> float:
    return energy_j / J_PER_KWH


def kwh_to_j(energy_kwh: float) -> float:
    return energy_kwh * J_PER_KWH


def g_to_kg(mass_g: float) -> float:
    return mass_g / 1000.0


def kg_to_g(mass_kg: float) -> float:
    return mass_kg * 1000.0


def _number(text: str | float) -> float:
    if isinstance(text, bool):
        raise ValueError
    return float(text)  # float() itself ignores surrounding whitespace


#: The largest PUE accepted (real facilities are below 3; 100 leaves room for what-ifs): with the bounds on intensity and
#: energy, the products of a conversion stay finite.
MAX_PUE = 100.0
#: The largest energy one conversion accepts (kWh): a terawatt-hour.
MAX_ENERGY_KWH = 1e9


def parse_pue(text: str | float) -> float:
    """A power usage effectiveness: a number >= 1.0 and <= 100, else ValueError (one line)."""
    try:
        value = _number(text)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and value >= 1.0):
        raise ValueError(
            f"invalid PUE {str(text)!r}: a power usage effectiveness is a number >= 1.0 "
            f"(the paper uses {DEFAULT_PUE})"
        )
    if value > MAX_PUE:
        raise ValueError(f"invalid PUE {str(text)!r}: expected at most {MAX_PUE:g}")
    return value


def parse_energy_kwh(text: str | float) -> float:
    """An energy in kWh: a number >= 0 and <= 1e9 (a TWh), else ValueError (one line)."""
    try:
        value = _number(text)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"invalid energy {str(text)!r}: give the energy in kWh, a number >= 0")
    if value > MAX_ENERGY_KWH:
        raise ValueError(
            f"invalid energy {str(text)!r}: give the energy in kWh, at most {MAX_ENERGY_KWH:g}"
        )
    return value


def _check_nonneg(what: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"invalid {what} {value!r}: expected a finite number >= 0")


def co2e_kg(energy_kwh: float, intensity_g_per_kwh: float, pue: float = DEFAULT_PUE) -> float:
    """Eq. 1: ``energy_kwh x pue x intensity_g_per_kwh / 1000`` (kg CO2e)."""
    _check_nonneg("energy_kwh", energy_kwh)
    _check_nonneg("intensity_g_per_kwh", intensity_g_per_kwh)
    parse_pue(pue)
    return eq1_kg(energy_kwh, intensity_g_per_kwh, pue)


def eq1_kg(energy_kwh: float, intensity_g_per_kwh: float, pue: float) -> float:
    """Eq. 1 on values already checked (see :func:`co2e_kg`, which checks them)."""
    return energy_kwh * pue * intensity_g_per_kwh / 1000.0


@record
class Emission(Frozen):
    """The CO2e of an energy at one intensity, with the uncertainty carried linearly."""

    region: str
    month: str | None  # "2022-12" when a monthly intensity was used
    intensity_g_per_kwh: float
    source: str
    pue: float
    energy_kwh: float  # IT energy, before PUE
    facility_energy_kwh: float  # energy_kwh x pue
    co2e_kg: float
    std_kg: float
    ci95_kg: float
    # With --co2-intensity-source: live, cached, file or fallback, the provider's zone, the
    # datetime of the value and why it fell back. None (absent from the dict): shipped data.
    provenance: str | None = None
    zone: str | None = None
    at: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}  # cheaper than asdict
        for key in ("std_kg", "ci95_kg"):  # NaN (spread unknown, one window) -> null
            if not math.isfinite(d[key]):
                d[key] = None
        for key in _PROVENANCE:
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Emission:
        month = d.get("month")
        return cls(
            region=str(d["region"]),
            month=None if month is None else str(month),
            intensity_g_per_kwh=float(d["intensity_g_per_kwh"]),
            source=str(d.get("source", "")),
            pue=float(d["pue"]),
            energy_kwh=float(d["energy_kwh"]),
            facility_energy_kwh=float(d["facility_energy_kwh"]),
            co2e_kg=float(d["co2e_kg"]),
            std_kg=math.nan if d.get("std_kg") is None else float(d["std_kg"]),
            ci95_kg=math.nan if d.get("ci95_kg") is None else float(d["ci95_kg"]),
            **{k: str(d[k]) for k in _PROVENANCE if d.get(k) is not None},
        )


_PROVENANCE = ("provenance", "zone", "at", "reason")


def emission(
    energy_kwh: float,
    intensity: Intensity,
    pue: float = DEFAULT_PUE,
    *,
    std_kwh: float = 0.0,
    ci95_kwh: float = 0.0,
) -> Emission:
    """Apply Eq. 1 to ``energy_kwh`` (and its std / 95 % CI half-width) at ``intensity``.

    A NaN std or interval means "unknown" (e.g. a single window) and stays NaN.
    """
    if not math.isnan(std_kwh):
        _check_nonneg("std_kwh", std_kwh)
    if not math.isnan(ci95_kwh):
        _check_nonneg("ci95_kwh", ci95_kwh)
    ci = intensity.g_per_kwh
    return Emission(
        region=intensity.region,
        month=intensity.month_text,
        intensity_g_per_kwh=ci,
        source=intensity.source,
        pue=pue,
        energy_kwh=energy_kwh,
        facility_energy_kwh=energy_kwh * pue,
        co2e_kg=co2e_kg(energy_kwh, ci, pue),
        std_kg=math.nan if math.isnan(std_kwh) else co2e_kg(std_kwh, ci, pue),
        ci95_kg=math.nan if math.isnan(ci95_kwh) else co2e_kg(ci95_kwh, ci, pue),
        **_provenance_of(intensity),
    )


def _provenance_of(intensity: Intensity) -> dict[str, str | None]:
    provenance = intensity.provenance
    if provenance == "shipped":
        return {}
    return {
        "provenance": provenance,
        "zone": intensity.zone,
        "at": intensity.at,
        "reason": intensity.reason,
    }
