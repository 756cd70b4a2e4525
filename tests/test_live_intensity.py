"""End to end: ``--co2-intensity-source`` with the simulated backend on a fake clock and a
local server on 127.0.0.1 (the tests never reach the network): the provenance in the
summary, the JSON and the markdown, the exact CO2e from the served intensity, the cache,
the fallback, usage errors, the forecast advice and xdist workers that ask nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from intensity_server import IntensityServer, em_forecast, em_latest, start_server, uk_fw24h
from terminal_text import unwrapped

RUN = """
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.25)
"""
BASE = ("--co2-backend=constant:100", "--co2-pue=1", "--co2-extrapolate=1000", "--co2-json=r.json")
ENERGY_KWH = 25_000 / 3.6e6  # 4 x 0.25 s x 100 W = 100 J for 4 steps; 25 J x 1,000


def kg(g_per_kwh: float) -> float:
    return ENERGY_KWH * g_per_kwh / 1000


@pytest.fixture
def server() -> Iterator[IntensityServer]:
    yield from start_server()


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # summary lines unwrapped


def half_hour_now() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(minute=now.minute // 30 * 30, second=0, microsecond=0)


def serve_ukgrid(server: IntensityServer, actual: float = 200) -> None:
    """GB now ``actual``; the forecast 200 for 2 h, then 50 for 2 h, then 200 (half-hours)."""

    def national() -> dict[str, Any]:
        t = half_hour_now()
        return {
            "data": [
                {
                    "from": t.strftime("%Y-%m-%dT%H:%MZ"),
                    "to": (t + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ"),
                    "intensity": {"forecast": actual + 5, "actual": actual, "index": "moderate"},
                }
            ]
        }

    server.serve("/intensity", national)
    server.serve(
        "/intensity/*", lambda: uk_fw24h(half_hour_now(), [200] * 4 + [50] * 4 + [200] * 40)
    )


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "r.json").read_text())  # type: ignore[no-any-return]


def test_ukgrid_live_then_cached(
    fake_clock_pytester: pytest.Pytester,
    server: IntensityServer,
    wide: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_ukgrid(server)
    fake_clock_pytester.makepyfile(RUN)
    args = (*BASE, "--co2-intensity-source=ukgrid", f"--co2-intensity-url={server.url}")
    result = fake_clock_pytester.runpytest(*args, "--co2-advise", "--co2-markdown=r.md")
    result.assert_outcomes(passed=1)
    unwrapped(result).fnmatch_lines(
        [
            "co2: region GB 200 g CO2e/kWh (UK National Grid ESO carbon intensity API (actual); "
            "live, zone GB, at *Z); PUE 1;*",
            "region GB 200 g CO2e/kWh (UK National Grid ESO carbon intensity API (actual); live, "
            "zone GB, at *Z), PUE 1; ± is*",
            "co2 advice: *; start at *Z (in *): 0.000347 kg instead of 0.00139 kg now (-75%; "
            "forecast 50 vs 200 g/kWh over the 4 min run)",
        ]
    )
    assert len(server.requests) == 2  # /intensity and its fw24h, once
    data = report(fake_clock_pytester)
    intensity = data["session"]["intensity"]
    assert (intensity["provenance"], intensity["zone"], intensity["g_per_kwh"]) == (
        "live",
        "GB",
        200.0,
    )
    assert intensity["at"].endswith("Z") and intensity["fetched_at"].endswith("Z")
    emission = data["tests"][0]["measurements"][0]["emission"]
    assert (emission["provenance"], emission["zone"], emission["at"]) == (
        "live",
        "GB",
        intensity["at"],
    )
    assert emission["co2e_kg"] == pytest.approx(kg(200), rel=1e-12)
    start = data["advice"]["session"]["best_start"]
    assert (start["mean_g_per_kwh"], start["now_g_per_kwh"], start["duration_s"]) == (
        50.0,
        200.0,
        250.0,
    )
    assert start["co2e_kg"] == pytest.approx(kg(50), rel=1e-12)
    md = (fake_clock_pytester.path / "r.md").read_text()
    assert (
        "Region GB, 200 g CO2e/kWh (UK National Grid ESO carbon intensity API (actual); live, zone GB, at "
        in md
    )
    assert "start at " in md
    # `pytest-co2 advise` on the saved run: the live value and its forecast, from the JSON
    from cli_helpers import run_cli

    capsys.readouterr()
    rc, out, _ = run_cli(capsys, "advise", str(fake_clock_pytester.path / "r.json"))
    assert rc == 0
    assert out.splitlines()[0].startswith(
        "session: run in SE: 4.86e-5 kg instead of 0.00139 kg in GB (-96%)"
    )
    session_advice = " ".join(out.split("\ncandidates")[0].split())  # unwrapped
    assert "; start at " in session_advice
    # the second run within the hour: the cache, no request
    result = fake_clock_pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    assert len(server.requests) == 2
    unwrapped(result).fnmatch_lines(
        ["co2: region GB 200 g CO2e/kWh (*; cached * ago, zone GB, at *"]
    )
    assert report(fake_clock_pytester)["session"]["intensity"]["provenance"] == "cached"


def test_a_failing_provider_falls_back_and_the_test_passes(
    fake_clock_pytester: pytest.Pytester, server: IntensityServer, wide: None
) -> None:
    server.serve("/intensity", {"error": {"code": "500", "message": "down"}}, status=500)
    fake_clock_pytester.makepyfile(RUN)
    result = fake_clock_pytester.runpytest(
        *BASE, "--co2-intensity-source=ukgrid", f"--co2-intensity-url={server.url}",
        "--co2-intensity-timeout=30",
    )  # fmt: skip
    result.assert_outcomes(passed=1, warnings=1)
    unwrapped(result).fnmatch_lines(
        [
            "*IntensityWarning: pytest-co2: --co2-intensity-source=ukgrid zone GB: HTTP 500 from "
            f"127.0.0.1:{server.port}: down; using the shipped data instead: GB *",
        ]
    )
    data = report(fake_clock_pytester)
    intensity = data["session"]["intensity"]
    assert (intensity["provenance"], intensity["zone"]) == ("fallback", "GB")
    assert intensity["reason"] == f"ukgrid zone GB: HTTP 500 from 127.0.0.1:{server.port}: down"
    from pytest_co2.carbon.intensity import lookup

    shipped = lookup("GB")
    assert (intensity["g_per_kwh"], intensity["source"]) == (shipped.g_per_kwh, shipped.source)
    emission = data["tests"][0]["measurements"][0]["emission"]
    assert emission["provenance"] == "fallback"
    assert emission["co2e_kg"] == pytest.approx(kg(shipped.g_per_kwh), rel=1e-12)


def test_electricitymaps_from_the_environment(
    fake_clock_pytester: pytest.Pytester,
    server: IntensityServer,
    monkeypatch: pytest.MonkeyPatch,
    wide: None,
) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    server.serve("/v3/carbon-intensity/latest", em_latest("DE", 312))
    server.serve("/v3/carbon-intensity/forecast", em_forecast("DE", now, [312] * 24))
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "secret")
    monkeypatch.setenv("PYTEST_CO2_INTENSITY_SOURCE", "electricitymaps")
    monkeypatch.setenv("PYTEST_CO2_INTENSITY_URL", server.url + "/v3")
    fake_clock_pytester.makepyfile(RUN)
    result = fake_clock_pytester.runpytest(*BASE, "--co2-region=DE", "--co2-advise")
    result.assert_outcomes(passed=1)
    unwrapped(result).fnmatch_lines(
        [
            "co2: region DE 312 g CO2e/kWh (Electricity Maps (lifecycle, estimated); live, zone "
            "DE, at 2026-12-03T08:00:00Z); *",
            "co2 advice: *; starting now is the lowest-emission start of a 4 min run in the next 24 h",
        ]
    )
    assert server.paths()[0] == "/v3/carbon-intensity/latest?zone=DE"
    emission = report(fake_clock_pytester)["tests"][0]["measurements"][0]["emission"]
    assert emission["co2e_kg"] == pytest.approx(kg(312), rel=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--co2-intensity-source=wattime"],
            "*--co2-intensity-source: unknown intensity source 'wattime': expected "
            "electricitymaps, ukgrid or file:PATH",
        ),
        (
            ["--co2-intensity-source=file:missing.json"],
            "*intensity source file 'missing.json' does not exist",
        ),
        (
            ["--co2-intensity-source=electricitymaps", "--co2-region=DE"],
            "ERROR: --co2-intensity-source=electricitymaps needs an API token: set "
            "ELECTRICITYMAPS_TOKEN*",
        ),
        (
            ["--co2-intensity-source=electricitymaps"],
            "ERROR: --co2-intensity-source=electricitymaps needs a zone: region 'EU27' is not*",
        ),
        (
            ["--co2-intensity-source=ukgrid", "--co2-intensity-zone=GB-42"],
            "ERROR: unknown UK grid zone 'GB-42': expected GB (national) or a region id 1-17*",
        ),
        (
            ["--co2-intensity-source=ukgrid", "--co2-month=2022-12", "--co2-region=DE"],
            "ERROR: --co2-month and --co2-intensity-source=ukgrid both choose the intensity: "
            "give one of them",
        ),
        (
            ["--co2-intensity-zone=DE"],
            "ERROR: --co2-intensity-zone needs --co2-intensity-source (electricitymaps, ukgrid "
            "or file:PATH)",
        ),
    ],
)
def test_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN", raising=False)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_file_source_and_no_source_keeps_todays_records(
    fake_clock_pytester: pytest.Pytester, wide: None
) -> None:
    fake_clock_pytester.makepyfile(RUN)
    fake_clock_pytester.makefile(
        ".json", ci=json.dumps({"zone": "SE", "g_per_kwh": 12, "datetime": "2026-12-03T08:00Z"})
    )
    result = fake_clock_pytester.runpytest(*BASE, "--co2-intensity-source=file:ci.json")
    result.assert_outcomes(passed=1)
    unwrapped(result).fnmatch_lines(
        [
            "co2: region SE 12 g CO2e/kWh (intensity file ci.json; file, zone SE, at 2026-12-03T08:00:00Z); *"
        ]
    )
    emission = report(fake_clock_pytester)["tests"][0]["measurements"][0]["emission"]
    assert (emission["provenance"], emission["co2e_kg"]) == (
        "file",
        pytest.approx(kg(12), rel=1e-12),
    )
    result = fake_clock_pytester.runpytest(*BASE, "--co2-region=SE")
    data = report(fake_clock_pytester)
    assert set(data["session"]["intensity"]) == {
        "region",
        "name",
        "g_per_kwh",
        "year",
        "month",
        "source",
    }
    emission = data["tests"][0]["measurements"][0]["emission"]
    assert not {"provenance", "zone", "at", "reason"} & set(emission)
    unwrapped(result).fnmatch_lines(
        ["co2: region SE 7 g CO2e/kWh (EEA 2022, as given in Table 1 of the paper); PUE 1; *"]
    )


def test_xdist_workers_make_no_request(
    fake_clock_pytester: pytest.Pytester, server: IntensityServer
) -> None:
    pytest.importorskip("xdist")
    serve_ukgrid(server, actual=150)
    fake_clock_pytester.makepyfile(RUN + RUN.replace("test_train", "test_other"))
    result = fake_clock_pytester.runpytest(
        *BASE, "-n", "2", "-p", "no:cacheprovider", "--co2-intensity-source=ukgrid",
        f"--co2-intensity-url={server.url}",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    assert len(server.requests) == 2  # the controller's two; the workers were handed the value
    tests = report(fake_clock_pytester)["tests"]
    assert [t["measurements"][0]["emission"]["co2e_kg"] for t in tests] == [
        pytest.approx(kg(150), rel=1e-12)
    ] * 2


def test_help_asks_nothing(
    pytester: pytest.Pytester, server: IntensityServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_ukgrid(server)
    monkeypatch.setenv("PYTEST_CO2_INTENSITY_SOURCE", "ukgrid")
    monkeypatch.setenv("PYTEST_CO2_INTENSITY_URL", server.url)
    result = pytester.runpytest("--help")
    assert result.ret == 0
    unwrapped(result).fnmatch_lines(["*--co2-intensity-source=SOURCE*"])
    assert server.requests == []
