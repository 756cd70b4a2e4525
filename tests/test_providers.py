"""Live intensity providers against a local server on 127.0.0.1 (recorded-shape answers):
success, forecast, timeout, 401, 429, 500, malformed and wrong-shape JSON, an unknown zone,
the cache (fresh, stale, corrupt), a missing token and an unknown source."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from intensity_server import (
    IntensityServer,
    em_forecast,
    em_latest,
    start_server,
    uk_fw24h,
    uk_national,
    uk_regional,
    uk_regional_fw24h,
    utc,
)

from pytest_co2.carbon.intensity import lookup
from pytest_co2.carbon.intensity_value import Intensity
from pytest_co2.carbon.providers import (
    ForecastPoint,
    ProviderError,
    Reading,
    SourceError,
    parse_source,
    resolve_intensity,
)
from pytest_co2.carbon.providers.cache import FORMAT, Cache
from pytest_co2.carbon.providers.electricitymaps import ElectricityMaps
from pytest_co2.carbon.providers.file import IntensityFile
from pytest_co2.carbon.providers.ukgrid import UkGrid

NOW = utc("2026-12-03T08:10:00Z")
T0 = utc("2026-12-03T08:00:00Z")
ANSWER_S = 30.0  # a local server answers well within this on a loaded runner; only the
#                 timeout tests (a delayed answer) use short limits


@pytest.fixture
def server() -> Iterator[IntensityServer]:
    yield from start_server()


def em(server: IntensityServer, zone: str = "DE") -> ElectricityMaps:
    return ElectricityMaps(zone, token="tok-123", base_url=server.url + "/v3")


def uk(server: IntensityServer, zone: str = "GB") -> UkGrid:
    return UkGrid(zone, base_url=server.url, clock=lambda: NOW)


def serve_em(server: IntensityServer, zone: str = "DE") -> None:
    server.serve("/v3/carbon-intensity/latest", em_latest(zone, 312))
    server.serve("/v3/carbon-intensity/forecast", em_forecast(zone, T0, [300, 250, 400]))


# -- success ----------------------------------------------------------------------------------


def test_electricitymaps_latest_and_forecast(server: IntensityServer) -> None:
    serve_em(server)
    reading = em(server).fetch(ANSWER_S)
    assert (reading.zone, reading.g_per_kwh, reading.at) == ("DE", 312.0, "2026-12-03T08:00:00Z")
    assert reading.source == "Electricity Maps (lifecycle, estimated)"
    assert [(p.start, p.end, p.g_per_kwh) for p in reading.forecast] == [
        (T0, utc("2026-12-03T09:00Z"), 300.0),
        (utc("2026-12-03T09:00Z"), utc("2026-12-03T10:00Z"), 250.0),
        (utc("2026-12-03T10:00Z"), utc("2026-12-03T11:00Z"), 400.0),
    ]
    assert server.paths() == [
        "/v3/carbon-intensity/latest?zone=DE",
        "/v3/carbon-intensity/forecast?zone=DE",
    ]
    headers = {k.lower(): v for k, v in server.requests[0][1].items()}
    assert headers["auth-token"] == "tok-123"


def test_electricitymaps_without_forecast_still_gives_the_live_value(
    server: IntensityServer,
) -> None:
    server.serve("/v3/carbon-intensity/latest", em_latest("FR", 31))
    server.serve("/v3/carbon-intensity/forecast", {"error": "Forbidden"}, status=403)
    reading = em(server, "fr").fetch(ANSWER_S)
    assert (reading.zone, reading.g_per_kwh, reading.forecast) == ("FR", 31.0, ())
    assert reading.notes == (
        f"no forecast: HTTP 403 from 127.0.0.1:{server.port}: Forbidden "
        "(the token lacks this zone or endpoint)",
    )


def test_ukgrid_national_actual_and_fw24h(server: IntensityServer) -> None:
    server.serve("/intensity", uk_national(T0, forecast=180, actual=172))
    server.serve("/intensity/2026-12-03T08:10Z/fw24h", uk_fw24h(T0, [180, 120, 90]))
    reading = uk(server).fetch(ANSWER_S)
    assert (reading.zone, reading.g_per_kwh, reading.at) == ("GB", 172.0, "2026-12-03T08:00:00Z")
    assert reading.source == "UK National Grid ESO carbon intensity API (actual)"
    assert [p.g_per_kwh for p in reading.forecast] == [180.0, 120.0, 90.0]
    assert reading.forecast[2].end == utc("2026-12-03T09:30Z")


def test_ukgrid_national_without_actual_uses_the_forecast(server: IntensityServer) -> None:
    server.serve("/intensity", uk_national(T0, forecast=180, actual=None))
    server.serve("/intensity/*", uk_fw24h(T0, [180]))
    reading = uk(server).fetch(ANSWER_S)
    assert (reading.g_per_kwh, reading.source) == (
        180.0,
        "UK National Grid ESO carbon intensity API (forecast)",
    )


def test_ukgrid_region(server: IntensityServer) -> None:
    server.serve("/regional/regionid/13", uk_regional(13, T0, 95))
    server.serve(
        "/regional/intensity/2026-12-03T08:10Z/fw24h/regionid/13",
        uk_regional_fw24h(13, T0, [95, 60]),
    )
    reading = uk(server, "13").fetch(ANSWER_S)
    assert (reading.zone, reading.zone_name, reading.g_per_kwh) == ("GB-13", "London", 95.0)
    assert reading.source == "UK National Grid ESO carbon intensity API (forecast, London)"
    assert [p.g_per_kwh for p in reading.forecast] == [95.0, 60.0]


# -- failures: one line each, naming what failed -------------------------------------------------


def test_timeout(server: IntensityServer) -> None:
    server.serve("/intensity", uk_national(T0), delay_s=1.0)
    with pytest.raises(ProviderError) as exc:
        uk(server).fetch(0.2)
    assert str(exc.value) == f"no answer from 127.0.0.1:{server.port} within 0.2 s"


@pytest.mark.parametrize(
    ("status", "body", "tail"),
    [
        (401, {"error": "Invalid auth-token"}, "Invalid auth-token (check the token)"),
        (429, {"error": "Too many requests"}, "Too many requests (rate limited: try again later)"),
        (500, b"Internal Server Error", "Internal Server Error"),
    ],
)
def test_http_errors(server: IntensityServer, status: int, body: object, tail: str) -> None:
    server.serve("/v3/carbon-intensity/latest", body, status=status)
    with pytest.raises(ProviderError) as exc:
        em(server).fetch(ANSWER_S)
    assert str(exc.value) == f"HTTP {status} from 127.0.0.1:{server.port}: {tail}"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "bad token tok-123 for zone DE"}),  # a JSON error echoing the token
        (500, b"upstream said: auth-token=tok-123; tok-123 rejected"),  # plain text, twice
    ],
)
def test_a_token_echoed_by_the_provider_is_redacted(
    server: IntensityServer, status: int, body: object
) -> None:
    server.serve("/v3/carbon-intensity/latest", body, status=status)
    with pytest.raises(ProviderError) as exc:
        em(server).fetch(ANSWER_S)
    assert "tok-123" not in str(exc.value)
    assert str(exc.value).count("[redacted]") == (1 if status == 401 else 2)
    # the token was sent, so the redaction is not the absence of a token
    assert {k.lower(): v for k, v in server.requests[-1][1].items()}["auth-token"] == "tok-123"


def test_redact_replaces_the_longest_secret_first() -> None:
    from pytest_co2.carbon.providers.http import redact

    assert redact("a abcd abcdef z", ["abcd", "abcdef", "", "ab"]) == ("a [redacted] [redacted] z")


def test_an_answer_nested_too_deeply_is_a_provider_error(server: IntensityServer) -> None:
    server.serve("/intensity", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ProviderError) as exc:
        uk(server).fetch(5.0)
    assert str(exc.value) == (
        f"the answer from 127.0.0.1:{server.port} is nested too deeply to be an intensity answer"
    )


def test_unknown_zone_answered_by_the_provider(server: IntensityServer) -> None:
    server.serve(
        "/v3/carbon-intensity/latest", {"error": "Zone 'XX-NOPE' does not exist"}, status=404
    )
    with pytest.raises(ProviderError, match=r"HTTP 404 .*: Zone 'XX-NOPE' does not exist$"):
        em(server, "XX-NOPE").fetch(ANSWER_S)
    server.serve(
        "/regional/regionid/7",
        {"error": {"code": "400 Bad Request", "message": "Please enter a valid region id"}},
        status=400,
    )
    with pytest.raises(ProviderError, match=r"HTTP 400 .*: Please enter a valid region id$"):
        uk(server, "GB-7").fetch(ANSWER_S)


def test_malformed_json(server: IntensityServer) -> None:
    server.serve("/intensity", b'{"data": [{"from": ')
    with pytest.raises(ProviderError) as exc:
        uk(server).fetch(ANSWER_S)
    assert str(exc.value) == (
        f'the answer from 127.0.0.1:{server.port} is not JSON: \'{{"data": [{{"from":\''
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": {}}, "UK grid /intensity: 'data' is not a non-empty list of periods"),
        ({"data": [{"from": "x"}]}, "UK grid /intensity: a period has no 'intensity' object"),
        (
            {"data": [{"from": "yesterday", "intensity": {"actual": 5}}]},
            "UK grid 'from' 'yesterday' is not an ISO datetime",
        ),
        ([1, 2], "UK grid answered list, not an object"),
        (
            uk_national(T0, forecast=-3, actual=None),
            "UK grid 'forecast' -3 is not a number >= 0",
        ),
    ],
)
def test_wrong_shape_ukgrid(server: IntensityServer, body: object, message: str) -> None:
    server.serve("/intensity", body)
    with pytest.raises(ProviderError) as exc:
        uk(server).fetch(ANSWER_S)
    assert str(exc.value) == message


def test_wrong_shape_electricitymaps(server: IntensityServer) -> None:
    server.serve("/v3/carbon-intensity/latest", {"zone": "DE", "carbonIntensity": "lots"})
    with pytest.raises(ProviderError, match=r"^Electricity Maps 'carbonIntensity' 'lots' is not"):
        em(server).fetch(ANSWER_S)
    server.serve("/v3/carbon-intensity/latest", em_latest("PL", 600))
    with pytest.raises(ProviderError, match=r"answered for zone 'PL', not 'DE'$"):
        em(server).fetch(ANSWER_S)


def test_missing_token_unknown_source_and_bad_zones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN", raising=False)
    with pytest.raises(SourceError, match=r"needs an API token: set ELECTRICITYMAPS_TOKEN"):
        ElectricityMaps("DE")
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "from-env")
    assert ElectricityMaps("DE").token == "from-env"
    with pytest.raises(SourceError) as exc:
        parse_source("wattime")
    assert str(exc.value) == (
        "unknown intensity source 'wattime': expected electricitymaps, ukgrid or file:PATH"
    )
    with pytest.raises(SourceError, match=r"^intensity source file 'nope.json' does not exist$"):
        parse_source("file:nope.json")
    assert (parse_source(" UKGrid "), parse_source("none")) == ("ukgrid", "")
    with pytest.raises(SourceError, match=r"^unknown UK grid zone 'GB-99': expected GB"):
        UkGrid("GB-99")
    with pytest.raises(SourceError, match=r"^invalid Electricity Maps zone 'EU27'"):
        ElectricityMaps("EU27", token="t")


# -- resolution and the cache ------------------------------------------------------------------


def _resolve(
    provider: object,
    tmp_path: Path,
    ttl_s: float = 3600.0,
    now: dt.datetime = NOW,
    timeout_s: float = ANSWER_S,
):
    return resolve_intensity(
        provider,  # type: ignore[arg-type]
        fallback=lookup("GB"),
        cache=Cache(tmp_path / "cache", ttl_s),
        timeout_s=timeout_s,
        clock=lambda: now,
    )


def serve_uk(server: IntensityServer, actual: float = 172) -> None:
    server.serve("/intensity", uk_national(T0, forecast=180, actual=actual))
    server.serve("/intensity/*", uk_fw24h(T0, [180, 120]))


def test_live_then_fresh_cache_without_a_request(server: IntensityServer, tmp_path: Path) -> None:
    serve_uk(server)
    live = _resolve(uk(server), tmp_path)
    assert (live.intensity.provenance, live.intensity.g_per_kwh, live.warnings) == (
        "live",
        172.0,
        (),
    )
    assert live.intensity.to_dict() == {
        "region": "GB",
        "name": "United Kingdom",
        "g_per_kwh": 172.0,
        "year": None,
        "month": None,
        "source": "UK National Grid ESO carbon intensity API (actual)",
        "provenance": "live",
        "zone": "GB",
        "at": "2026-12-03T08:00:00Z",
        "fetched_at": "2026-12-03T08:10:00Z",
    }
    assert len(server.requests) == 2
    later = _resolve(uk(server), tmp_path, now=NOW + dt.timedelta(minutes=20))
    assert len(server.requests) == 2  # no request: the cache is fresh
    it = later.intensity
    assert (it.provenance, it.g_per_kwh, it.age_s, it.reason) == ("cached", 172.0, 1200.0, None)
    assert it.provenance_text == "cached 20 min ago, zone GB, at 2026-12-03T08:00:00Z"
    assert [p.g_per_kwh for p in later.forecast] == [180.0, 120.0]
    assert Intensity.from_dict(json.loads(json.dumps(it.to_dict()))) == it


def test_stale_cache_refetched_and_used_when_the_provider_fails(
    server: IntensityServer, tmp_path: Path
) -> None:
    serve_uk(server, actual=172)
    _resolve(uk(server), tmp_path)
    serve_uk(server, actual=150)
    two_hours = NOW + dt.timedelta(hours=2)
    fresh = _resolve(uk(server), tmp_path, now=two_hours)  # stale: asked again
    assert (fresh.intensity.provenance, fresh.intensity.g_per_kwh) == ("live", 150.0)
    server.serve("/intensity", {"error": "boom"}, status=500)
    stale = _resolve(uk(server), tmp_path, now=two_hours + dt.timedelta(hours=3))
    it = stale.intensity
    assert (it.provenance, it.g_per_kwh, it.age_s) == ("cached", 150.0, 3 * 3600.0)
    assert it.reason == f"stale: the provider failed: HTTP 500 from 127.0.0.1:{server.port}: boom"
    assert stale.warnings == (
        f"pytest-co2: --co2-intensity-source=ukgrid zone GB: HTTP 500 from "
        f"127.0.0.1:{server.port}: boom; using the cached value of {it.provenance_text}",
    )


def test_no_cache_and_a_failing_provider_falls_back_to_shipped_data(
    server: IntensityServer, tmp_path: Path
) -> None:
    server.serve("/intensity", uk_national(T0), delay_s=1.0)
    out = _resolve(uk(server), tmp_path, timeout_s=0.2)
    shipped = lookup("GB")
    it = out.intensity
    assert (it.g_per_kwh, it.source, it.provenance) == (
        shipped.g_per_kwh,
        shipped.source,
        "fallback",
    )
    assert it.reason == f"ukgrid zone GB: no answer from 127.0.0.1:{server.port} within 0.2 s"
    assert it.provenance_text == f"fallback to shipped data: {it.reason}"
    assert out.forecast == ()
    assert out.warnings[0].startswith(
        "pytest-co2: --co2-intensity-source=ukgrid zone GB: no answer from "
    )
    assert out.warnings[0].endswith("or drop --co2-intensity-source")


def test_corrupt_cache_warns_and_is_refetched(server: IntensityServer, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = cache.path("ukgrid", "GB")
    assert path is not None
    os.makedirs(os.path.dirname(path))
    Path(path).write_text("{not json")
    serve_uk(server)
    out = _resolve(uk(server), tmp_path)
    assert out.intensity.provenance == "live"
    assert len(out.warnings) == 1 and out.warnings[0].startswith(
        f"pytest-co2: intensity cache {path!r} is unreadable ("
    )
    assert out.warnings[0].endswith("; ignored, it is fetched again")
    assert json.loads(Path(path).read_text())["format"] == FORMAT  # rewritten
    # a cache of the wrong shape, and the provider down: the shipped data
    Path(path).write_text(json.dumps({"format": FORMAT, "reading": {"zone": "GB"}}))
    server.serve("/intensity", b"oops", status=502)
    out = _resolve(uk(server), tmp_path, ttl_s=0)
    assert out.intensity.provenance == "fallback"
    assert "is unusable: field 'provider' is missing or not text" in out.warnings[0]


def test_file_source_json_and_csv(tmp_path: Path) -> None:
    j = tmp_path / "ci.json"
    j.write_text(
        json.dumps(
            {
                "zone": "DE",
                "g_per_kwh": 280,
                "datetime": "2026-12-03T08:00Z",
                "forecast": [
                    {"from": "2026-12-03T08:00Z", "to": "2026-12-03T09:00Z", "g_per_kwh": 280},
                    {"from": "2026-12-03T09:00Z", "to": "2026-12-03T10:00Z", "g_per_kwh": 140},
                ],
            }
        )
    )
    out = resolve_intensity(IntensityFile(str(j)), fallback=lookup("DE"))
    assert (out.intensity.provenance, out.intensity.region, out.intensity.g_per_kwh) == (
        "file",
        "DE",
        280.0,
    )
    assert out.intensity.source == "intensity file ci.json"
    assert out.forecast[1] == ForecastPoint(
        utc("2026-12-03T09:00Z"), utc("2026-12-03T10:00Z"), 140.0
    )
    c = tmp_path / "ci.csv"
    c.write_text(
        "datetime,g_co2e_per_kwh\n2026-12-03T07:00Z,300\n2026-12-03T08:00Z,200\n2026-12-03T09:00Z,100\n"
    )
    r = IntensityFile(str(c), "PL", clock=lambda: NOW).fetch(0)
    assert (r.zone, r.g_per_kwh, r.at, len(r.forecast)) == ("PL", 200.0, "2026-12-03T08:00:00Z", 3)
    c.write_text("datetime,g_co2e_per_kwh\n2026-12-03T07:00Z,-1\n")
    with pytest.raises(SourceError) as exc:
        IntensityFile(str(c))
    assert (
        str(exc.value)
        == f"intensity source file {str(c)!r}: line 2: g_co2e_per_kwh -1.0 is not a number >= 0"
    )
    c.write_text("when,value\n")
    with pytest.raises(SourceError, match=r"expected a CSV header datetime,g_co2e_per_kwh"):
        IntensityFile(str(c))


def test_reading_round_trip() -> None:
    r = Reading(
        "ukgrid",
        "GB-13",
        "London",
        95.0,
        "2026-12-03T08:00:00Z",
        "x",
        (ForecastPoint(T0, NOW, 1.0),),
        ("n",),
    )
    assert Reading.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_nothing_listening(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = UkGrid("GB", base_url=f"http://127.0.0.1:{port}", clock=lambda: NOW)
    with pytest.raises(ProviderError, match=rf"^cannot reach 127\.0\.0\.1:{port}: "):
        provider.fetch(0.5)
    assert _resolve(provider, tmp_path).intensity.provenance == "fallback"
