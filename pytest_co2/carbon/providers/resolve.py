"""Once per session: which intensity the run uses, from a provider, its cache or the shipped
data, and a record of where it came from (the provenance of
:class:`~..intensity_value.Intensity`)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from collections.abc import Callable
from dataclasses import field

from ...frozen import Frozen, record
from ..intensity_value import Intensity, format_g_per_kwh
from .base import ForecastPoint, Provider, ProviderError, Reading, SourceError, iso
from .cache import Cache, CacheError

SOURCES = ("electricitymaps", "ukgrid", "file")
DEFAULT_TIMEOUT_S = 5.0


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def parse_source(text: str) -> str:
    """``electricitymaps``, ``ukgrid`` or ``file:PATH`` (the file must exist); also ``none``/
    ``shipped`` (the shipped data, as without the option) -> ``""``. SourceError otherwise."""
    raw = str(text).strip()
    name, colon, path = raw.partition(":")
    name = name.strip().lower()
    if name in ("none", "shipped", "off") and not colon:
        return ""
    if name == "file":
        if not path.strip():
            raise SourceError(
                f"--co2-intensity-source={raw!r}: give the file as file:PATH (JSON or CSV)"
            )
        if not os.path.isfile(path):
            raise SourceError(f"intensity source file {path!r} does not exist")
        return f"file:{path}"
    if name in SOURCES and not colon:
        return name
    raise SourceError(
        f"unknown intensity source {raw!r}: expected electricitymaps, ukgrid or file:PATH"
    )


def default_zone(source: str, region: str) -> str:
    """The zone a source is asked for when --co2-intensity-zone is not given."""
    if source == "ukgrid":
        return "GB"
    return region


def make_provider(
    source: str,
    zone: str | None,
    *,
    base_url: str | None = None,
    token: str | None = None,
    clock: Callable[[], _dt.datetime] = _utcnow,
    default_zone: str = "file",
) -> Provider:
    """The provider for a parsed source and zone; SourceError (a usage error) when the zone
    or the token is unusable."""
    if source.startswith("file:"):
        from .file import IntensityFile

        return IntensityFile(source[5:], zone, clock=clock, default_zone=default_zone)
    if source == "electricitymaps":
        from .electricitymaps import ElectricityMaps

        return ElectricityMaps(zone or "", token=token, base_url=base_url)
    if source == "ukgrid":
        from .ukgrid import UkGrid

        return UkGrid(zone or "GB", base_url=base_url, clock=clock)
    raise SourceError(f"unknown intensity source {source!r}: expected {', '.join(SOURCES)}")


@record
class Resolved(Frozen):
    """The session's intensity and forecast, with the warnings to show and provider notes."""

    intensity: Intensity
    forecast: tuple[ForecastPoint, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _intensity(
    reading: Reading,
    base: Intensity,
    provenance: str,
    *,
    fetched_at: str | None = None,
    age_s: float | None = None,
    reason: str | None = None,
) -> Intensity:
    """The reading as the session's intensity; region and name from the zone where the
    shipped data knows it (``base``: the shipped value of that region)."""
    known = reading.zone == base.region or reading.zone.startswith(base.region + "-")
    name = base.name if known else reading.zone
    if reading.zone_name:
        name = f"{name}, {reading.zone_name}"
    return Intensity(
        region=base.region if known else reading.zone,
        name=name,
        g_per_kwh=reading.g_per_kwh,
        year=None,
        month=None,
        source=reading.source,
        provenance=provenance,
        zone=reading.zone,
        at=reading.at,
        fetched_at=fetched_at,
        age_s=age_s,
        reason=reason,
    )


def resolve_intensity(
    provider: Provider,
    *,
    fallback: Intensity,
    cache: Cache | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    clock: Callable[[], _dt.datetime] = _utcnow,
) -> Resolved:
    """Look the intensity up once: a fresh cache entry without a request, else the provider
    (the answer is cached), else a stale cache entry, else ``fallback`` (the shipped data),
    each labelled; never raises for a provider or cache failure (a warning says what
    happened and how to fix it)."""
    label = f"--co2-intensity-source={provider.name} zone {provider.zone}"
    if not provider.cacheable:
        reading = provider.fetch(timeout_s)  # a local file, read and checked at start-up
        return Resolved(_intensity(reading, fallback, "file"), reading.forecast, (), reading.notes)
    cache = cache or Cache(None)
    warnings: list[str] = []
    cached = None
    try:
        cached = cache.load(provider.name, provider.zone)
    except CacheError as exc:
        warnings.append(f"pytest-co2: {exc}; ignored, it is fetched again")
    now = clock()
    if cached is not None:
        reading, fetched = cached
        age_s = (now - fetched).total_seconds()
        if 0 <= age_s < cache.ttl_s:
            it = _intensity(reading, fallback, "cached", fetched_at=iso(fetched), age_s=age_s)
            return Resolved(it, reading.forecast, tuple(warnings), reading.notes)
    try:
        reading = provider.fetch(timeout_s)
    except ProviderError as exc:
        if cached is not None:
            reading, fetched = cached
            age_s = max(0.0, (now - fetched).total_seconds())
            reason = f"stale: the provider failed: {exc}"
            it = _intensity(
                reading, fallback, "cached", fetched_at=iso(fetched), age_s=age_s, reason=reason
            )
            warnings.append(
                f"pytest-co2: {label}: {exc}; using the cached value of {it.provenance_text}"
            )
            return Resolved(it, reading.forecast, tuple(warnings), reading.notes)
        reason = f"{provider.name} zone {provider.zone}: {exc}"
        it = dataclasses.replace(fallback, provenance="fallback", zone=provider.zone, reason=reason)
        warnings.append(
            f"pytest-co2: {label}: {exc}; using the shipped data instead: {fallback.region} "
            f"{format_g_per_kwh(fallback.g_per_kwh)} g/kWh ({fallback.source}). Check the "
            "network, the zone and the token, or drop --co2-intensity-source"
        )
        return Resolved(it, (), tuple(warnings))
    try:
        cache.store(reading, now)
    except OSError as exc:
        warnings.append(f"pytest-co2: cannot write the intensity cache: {exc}")
    it = _intensity(reading, fallback, "live", fetched_at=iso(now))
    return Resolved(it, reading.forecast, tuple(warnings), reading.notes)
