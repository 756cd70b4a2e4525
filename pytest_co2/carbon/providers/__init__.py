"""Live and forecast grid carbon intensity (``--co2-intensity-source``), opt-in, offline-first.

Providers (Electricity Maps, the UK National Grid carbon intensity API, a local file) sit
behind one small interface (:mod:`.base`); :mod:`.resolve` looks the value up once per
session, through the on-disk cache (:mod:`.cache`), and falls back to the shipped data with
a warning when the provider cannot answer. Only the standard library is used (``urllib``).
"""

from __future__ import annotations

from .base import (
    ForecastPoint,
    IntensityWarning,
    Provider,
    ProviderError,
    Reading,
    SourceError,
)
from .resolve import SOURCES, Resolved, make_provider, parse_source, resolve_intensity

__all__ = [
    "SOURCES",
    "ForecastPoint",
    "IntensityWarning",
    "Provider",
    "ProviderError",
    "Reading",
    "Resolved",
    "SourceError",
    "make_provider",
    "parse_source",
    "resolve_intensity",
]
