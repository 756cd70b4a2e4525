"""Eq. 1 bound to one session: region (and month), PUE, what-if regions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..constants import DEFAULT_REGION
from .emission import DEFAULT_PUE, Emission, co2e_kg, emission
from .intensity import lookup
from .intensity_value import Intensity

if TYPE_CHECKING:
    from ..measure.records import Projection
    from .providers.base import ForecastPoint


class Accounting:
    """Eq. 1 bound to a region, month, PUE and what-if regions (checked when built)."""

    def __init__(
        self,
        region: str = DEFAULT_REGION,
        month: str | None = None,
        *,
        pue: float = DEFAULT_PUE,
        intensity_g_per_kwh: float | None = None,
        intensity_file: str | None = None,
        whatif_regions: Sequence[str] = (),
        intensity: Intensity | None = None,
        forecast: Sequence[ForecastPoint] = (),
    ) -> None:
        """``intensity``: an already resolved value (a provider's, see
        ``carbon.providers``) used instead of the shipped data; ``forecast``: its forecast."""
        self.region = region
        self.month = month
        self.pue = pue
        self.intensity_file = intensity_file
        self.intensity = intensity or lookup(
            region, month, intensity_g_per_kwh=intensity_g_per_kwh, csv_path=intensity_file
        )
        self.forecast = tuple(forecast)
        self.whatif = {r: lookup(r, None, csv_path=intensity_file) for r in whatif_regions}
        self._cache: dict[tuple[str, str | None], Intensity] = {}

    def intensity_for(self, region: str | None = None, month: str | None = None) -> Intensity:
        if region is None and month is None:
            return self.intensity
        key = (region or self.region, month)
        if key not in self._cache:
            self._cache[key] = lookup(key[0], month, csv_path=self.intensity_file)
        return self._cache[key]

    def emission(
        self, projection: Projection, region: str | None = None, month: str | None = None
    ) -> Emission:
        return emission(
            projection.energy_kwh,
            self.intensity_for(region, month),
            self.pue,
            std_kwh=projection.std_kwh,  # NaN (one window) stays NaN: never a silent 0
            ci95_kwh=projection.ci95_kwh,
        )

    def whatif_of(self, energy_kwh: float) -> dict[str, float]:
        """The CO2e of ``energy_kwh`` in each what-if region (yearly intensities): the
        ``co2e_kg`` of their emissions."""
        return {r: co2e_kg(energy_kwh, i.g_per_kwh, self.pue) for r, i in self.whatif.items()}
