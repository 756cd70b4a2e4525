"""Software Carbon Intensity (ISO/IEC 21031:2024, the Green Software Foundation's SCI), pure:
``SCI = ((E x I) + M) / R`` per functional unit R.

- E: the energy of one unit, IT energy x PUE (kWh);
- I: the location-based carbon intensity (g CO2e/kWh); the SCI admits no market-based
  figure, so a market-based one (GHG Protocol Scope 2 dual reporting) is shown beside the
  score, never in it;
- M: the embodied emissions of the hardware share used, amortised over its lifetime:
  ``kg x time reserved / lifetime x resource share``, for the machine (share: a fraction,
  e.g. the CPUs held / the machine's CPUs) and for each GPU used (share 1 per GPU);
- R: one unit of the measurement (an iteration, a sample, an image).

The embodied figures are the user's (``--co2-embodied``, ``--co2-embodied-gpu``): none is
shipped.
"""

from __future__ import annotations

import math
from typing import Any

from ..constants import J_PER_KWH
from ..frozen import Frozen, record

YEAR_S = 365.25 * 86400.0  # a Julian year: lifetimes in years amortise per second by this
MAX_EMBODIED_KG = 1e6  # a rack of GPUs is tens of tonnes at most
MAX_YEARS = 100.0


def _number(text: str, what: str, spec: str, lo: float, hi: float, *, lo_open: bool) -> float:
    try:
        x = float(text)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    ok = math.isfinite(x) and (x > lo if lo_open else x >= lo) and x <= hi
    if not ok:
        bound = f"> {lo:g}" if lo_open else f">= {lo:g}"
        raise ValueError(
            f"invalid {what} {text.strip()!r} in {spec!r}: expected a number {bound} and <= {hi:g}"
        )
    return x


@record
class Embodied(Frozen):
    """A user-given embodied figure: kg CO2e of one machine (or GPU) over its lifetime;
    ``share``: the machine's resource share, when given (None: from the CPUs held)."""

    kg: float
    years: float
    share: float | None = None

    @property
    def g_per_s(self) -> float:
        """Embodied grams per second of the whole machine (or GPU) over its lifetime."""
        return self.kg * 1000.0 / (self.years * YEAR_S)

    def to_dict(self) -> dict[str, Any]:
        return {"kg": self.kg, "years": self.years, "share": self.share}


def _parse(text: str, with_share: bool) -> Embodied:
    spec = str(text)
    usage = "KG,YEARS[,SHARE] (e.g. 1200,4)" if with_share else "KG,YEARS (e.g. 150,4)"
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in ((2, 3) if with_share else (2,)) or not all(parts):
        raise ValueError(f"invalid embodied figure {spec!r}: expected {usage}")
    kg = _number(parts[0], "embodied kg CO2e", spec, 0.0, MAX_EMBODIED_KG, lo_open=False)
    years = _number(parts[1], "lifetime in years", spec, 0.0, MAX_YEARS, lo_open=True)
    share = None
    if len(parts) == 3:
        share = _number(parts[2], "resource share", spec, 0.0, 1.0, lo_open=True)
    return Embodied(kg, years, share)


def parse_embodied(text: str) -> Embodied:
    """``KG,YEARS[,SHARE]``: a machine's embodied kg CO2e, its lifetime in years and,
    optionally, the share of it this run holds (0 < SHARE <= 1)."""
    return _parse(text, with_share=True)


def parse_embodied_gpu(text: str) -> Embodied:
    """``KG,YEARS``: one GPU's embodied kg CO2e and its lifetime in years."""
    return _parse(text, with_share=False)


@record
class Sci(Frozen):
    """One measurement's SCI per unit, and its parts (grams CO2e per unit)."""

    energy_kwh: float  # E: IT energy x PUE of one unit
    seconds: float  # time reserved for one unit (the measured windows' time / units)
    operational_g: float  # E x I (location-based)
    machine_g: float  # M of the machine's share
    gpu_g: float  # M of the GPUs used
    market_operational_g: float | None = None  # E x the market-based factor

    @property
    def embodied_g(self) -> float:
        return self.machine_g + self.gpu_g

    @property
    def sci_g(self) -> float:
        """``(E x I + M) / R`` for R = 1 unit."""
        return self.operational_g + self.embodied_g

    @property
    def market_g(self) -> float | None:
        """The market-based counterpart (not an SCI score): ``E x I_market + M``."""
        if self.market_operational_g is None:
            return None
        return self.market_operational_g + self.embodied_g


def sci_per_unit(
    energy_j_per_unit: float,
    seconds_per_unit: float,
    *,
    pue: float,
    g_per_kwh: float,
    machine: Embodied | None = None,
    machine_share: float = 1.0,
    gpus: int = 0,
    gpu: Embodied | None = None,
    market_g_per_kwh: float | None = None,
) -> Sci:
    """The SCI of one unit that took ``energy_j_per_unit`` (IT energy) and
    ``seconds_per_unit`` of reserved time."""
    e_kwh = energy_j_per_unit / J_PER_KWH * pue
    machine_g = 0.0 if machine is None else machine.g_per_s * seconds_per_unit * machine_share
    gpu_g = 0.0 if gpu is None else gpu.g_per_s * seconds_per_unit * gpus
    market = None if market_g_per_kwh is None else e_kwh * market_g_per_kwh
    return Sci(e_kwh, seconds_per_unit, e_kwh * g_per_kwh, machine_g, gpu_g, market)
