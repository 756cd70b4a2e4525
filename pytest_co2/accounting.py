"""Eq. 1 bound to one session's settings: region (and month), PUE, what-if regions.

Kept apart from ``session.py`` so that the plugin can check and bind the accounting at
start-up without importing the meter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import Settings

if TYPE_CHECKING:
    from .meter import Projection


class Accounting:
    """Eq. 1 bound to the session's region, month, PUE and what-if regions."""

    def __init__(self, settings: Settings) -> None:
        from .intensity import lookup

        self.settings = settings
        self.intensity = lookup(
            settings.region,
            settings.month,
            intensity_g_per_kwh=settings.intensity,
            csv_path=settings.intensity_file,
        )
        self.whatif = {
            r: lookup(r, None, csv_path=settings.intensity_file) for r in settings.regions
        }
        self._cache: dict[tuple[str, str | None], Any] = {}

    def intensity_for(self, region: str | None = None, month: str | None = None) -> Any:
        if region is None and month is None:
            return self.intensity
        from .intensity import lookup

        key = (region or self.settings.region, month)
        if key not in self._cache:
            self._cache[key] = lookup(key[0], month, csv_path=self.settings.intensity_file)
        return self._cache[key]

    def emission(
        self, projection: Projection, region: str | None = None, month: str | None = None
    ) -> Any:
        from .carbon import emission

        return emission(
            projection.energy_kwh,
            self.intensity_for(region, month),
            self.settings.pue,
            std_kwh=projection.std_kwh,  # NaN (one window) stays NaN: never a silent 0
            ci95_kwh=projection.ci95_kwh,
        )
