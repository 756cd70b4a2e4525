"""``--co2-intensity-source``: the session's live intensity, looked up once at configure time
(never inside a measured window), through the cache in ``.pytest_cache``; handed to xdist
workers by the controller so that they make no request of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..options import Settings

if TYPE_CHECKING:
    from ..carbon.providers import Resolved

WORKER_KEY = "co2_intensity"  # in workerinput: the controller's resolved intensity
_NOT_ZONES = ("EU27", "WORLD")


def _zone(s: Settings) -> str | None:
    from ..carbon.providers.resolve import default_zone

    if s.intensity_zone or s.intensity_source.startswith("file:"):
        return s.intensity_zone  # a file names its zone, else --co2-region
    if s.intensity_source == "electricitymaps" and s.region in _NOT_ZONES:
        raise pytest.UsageError(
            f"--co2-intensity-source=electricitymaps needs a zone: region {s.region!r} is not "
            "an Electricity Maps zone; give --co2-intensity-zone=ZONE (e.g. DE) or a country "
            "with --co2-region"
        )
    if s.intensity_source == "ukgrid" and "region" in s.sources and s.region != "GB":
        raise pytest.UsageError(
            f"--co2-intensity-source=ukgrid serves Great Britain only, not region {s.region!r}: "
            "drop --co2-region or give --co2-region=GB (regions: --co2-intensity-zone=GB-N)"
        )
    return default_zone(s.intensity_source, s.region)


def _fallback_region(zone: str, s: Settings) -> str:
    """The shipped region that stands in for the zone (its own, else --co2-region)."""
    from ..carbon.intensity import resolve_region
    from ..carbon.intensity_value import IntensityError

    for candidate in (zone, zone.split("-", maxsplit=1)[0]):
        try:
            return resolve_region(candidate, csv_path=s.intensity_file)
        except IntensityError:
            continue
    return s.region


def resolve_live(config: pytest.Config, s: Settings) -> Resolved | None:
    """The resolved live intensity, None without ``--co2-intensity-source``. Usage errors
    (conflicting options, a bad zone, no token, a bad file) raise; provider trouble does not."""
    if not s.intensity_source:
        given = [
            n for n in ("intensity_zone", "intensity_url") if s.sources.get(n) == "command line"
        ]
        if given:
            raise pytest.UsageError(
                f"--co2-{given[0].replace('_', '-')} needs --co2-intensity-source "
                "(electricitymaps, ukgrid or file:PATH)"
            )
        return None
    if getattr(config.option, "help", False):
        return None  # --help configures the plugins too: it asks nothing
    from ..carbon.intensity import lookup
    from ..carbon.intensity_value import Intensity
    from ..carbon.providers import ForecastPoint, IntensityWarning, Resolved, SourceError
    from ..carbon.providers.cache import Cache
    from ..carbon.providers.resolve import make_provider, resolve_intensity

    for conflict, chosen in (
        ("--co2-intensity", s.intensity is not None),
        ("--co2-month", s.month),
    ):
        if chosen:
            raise pytest.UsageError(
                f"{conflict} and --co2-intensity-source={s.intensity_source} both choose the "
                "intensity: give one of them"
            )
    handed = getattr(config, "workerinput", {}).get(WORKER_KEY)
    if handed:  # an xdist worker: the controller looked it up already
        forecast = tuple(ForecastPoint.from_dict(p) for p in handed.get("forecast", ()))
        return Resolved(Intensity.from_dict(handed["intensity"]), forecast)
    zone = _zone(s)
    try:
        provider = make_provider(
            s.intensity_source, zone, base_url=s.intensity_url, default_zone=s.region
        )
    except SourceError as exc:
        raise pytest.UsageError(str(exc)) from None
    fallback = lookup(_fallback_region(provider.zone, s), None, csv_path=s.intensity_file)
    cache = getattr(config, "cache", None)
    folder = None if cache is None else cache.mkdir("pytest-co2")
    resolved = resolve_intensity(
        provider,
        fallback=fallback,
        cache=Cache(folder, s.intensity_cache_ttl),
        timeout_s=s.intensity_timeout,
    )
    for message in resolved.warnings:
        config.issue_config_time_warning(IntensityWarning(message), stacklevel=2)
    return resolved


def region_for(resolved: Resolved | None, s: Settings) -> str:
    """The session's region for Eq. 1's other look-ups (budgets, months): the live value's
    region where the shipped data knows it, else --co2-region."""
    if resolved is None:
        return s.region
    from ..carbon.intensity import resolve_region
    from ..carbon.intensity_value import IntensityError

    try:
        return resolve_region(resolved.intensity.region, csv_path=s.intensity_file)
    except IntensityError:
        return s.region


def for_workers(resolved: Resolved | None) -> dict[str, Any] | None:
    """What the controller hands to each xdist worker (JSON-safe)."""
    if resolved is None:
        return None
    return {
        "intensity": resolved.intensity.to_dict(),
        "forecast": [p.to_dict() for p in resolved.forecast],
    }


def header_lines(resolved: Resolved | None) -> list[str]:
    """Provider notes for the report header (e.g. a zone without a forecast)."""
    if resolved is None:
        return []
    return [f"co2: intensity source note: {note}" for note in resolved.notes]
