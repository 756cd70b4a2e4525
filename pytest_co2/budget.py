"""The ``co2_budget`` marker: parse its arguments, check a test's projected total against it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MARKER = "co2_budget"
MARKER_HELP = (
    f"{MARKER}(kg=None, kwh=None, extrapolate=None, unit=None, region=None): fail the test when "
    "the projected emissions (kg CO2e) or energy (kWh) of its measurements exceed the budget. "
    "extrapolate/unit set the projection target for this test; region its grid region."
)
_ALLOWED = ("kg", "kwh", "extrapolate", "unit", "region")


class BudgetError(ValueError):
    """Bad marker arguments: the message names the bad value and what is accepted."""


@dataclass(frozen=True)
class Budget:
    kg: float | None = None
    kwh: float | None = None
    extrapolate: int | None = None
    unit: str | None = None
    region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kg": self.kg,
            "kwh": self.kwh,
            "extrapolate": self.extrapolate,
            "unit": self.unit,
            "region": self.region,
        }

    @classmethod
    def from_marker(cls, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Budget:
        if args:
            if len(args) > 1 or "kg" in kwargs:
                raise BudgetError(
                    f"{MARKER}: positional arguments {args!r}: expected co2_budget(kg=..., kwh=...)"
                )
            kwargs = {"kg": args[0], **kwargs}
        unknown = sorted(set(kwargs) - set(_ALLOWED))
        if unknown:
            raise BudgetError(
                f"{MARKER}: unknown argument(s) {', '.join(unknown)}: accepted are {', '.join(_ALLOWED)}"
            )
        kg = _limit("kg", kwargs.get("kg"))
        kwh = _limit("kwh", kwargs.get("kwh"))
        if kg is None and kwh is None:
            raise BudgetError(
                f"{MARKER}: needs kg= or kwh= (a number > 0), e.g. @pytest.mark.co2_budget(kg=0.5)"
            )
        n = kwargs.get("extrapolate")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise BudgetError(f"{MARKER}: invalid extrapolate={n!r}: expected a whole number >= 1")
        unit = kwargs.get("unit")
        if unit is not None and (not isinstance(unit, str) or not unit):
            raise BudgetError(
                f"{MARKER}: invalid unit={unit!r}: expected a unit name such as 'iteration'"
            )
        region = kwargs.get("region")
        if region is not None:
            from .intensity import lookup

            try:
                region = lookup(str(region)).region
            except ValueError as exc:
                raise BudgetError(f"{MARKER}: {exc}") from None
        return cls(kg=kg, kwh=kwh, extrapolate=n, unit=unit, region=region)

    def applies_to(self, unit: str) -> bool:
        """Whether ``extrapolate`` targets measurements of ``unit``."""
        return self.unit is None or self.unit == unit

    def check(
        self, energy_kwh: float, std_kwh: float, co2e_kg: float, std_kg: float, what: str, how: str
    ) -> str | None:
        """None when within budget, else the failure message.

        ``what`` reads like "for 150,000 iterations in SE", ``how`` like "estimated CPU".
        """
        from .table import fmt_num

        if self.kg is not None and co2e_kg > self.kg:
            return (
                f"projected {_pm(co2e_kg, std_kg)} kg CO2e {what} exceeds the budget of {self.kg:g} kg "
                f"({fmt_num(energy_kwh)} kWh, {how})"
            )
        if self.kwh is not None and energy_kwh > self.kwh:
            return (
                f"projected {_pm(energy_kwh, std_kwh)} kWh {what} exceeds the budget of {self.kwh:g} kWh "
                f"({fmt_num(co2e_kg)} kg CO2e, {how})"
            )
        return None


def _limit(name: str, value: Any) -> float | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
    if not ok:
        raise BudgetError(f"{MARKER}: invalid {name}={value!r}: expected a number > 0")
    return float(value)


def _pm(value: float, std: float) -> str:
    from .table import fmt_num

    if std is None or not math.isfinite(std):
        return fmt_num(value)
    return f"{fmt_num(value)} +- {fmt_num(std)}"
