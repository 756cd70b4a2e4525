"""Carbon-aware deferral (``co2_defer``, ``--co2-defer-above``): against a local Electricity
Maps server on 127.0.0.1 whose answers and forecast are fixed, with the deferral's clock set
by hand, so that every reason is exact; offline and without a source the tests run."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from intensity_server import (
    IntensityServer,
    em_forecast,
    em_latest,
    start_server,
    uk_fw24h,
    uk_national,
)
from terminal_text import unwrapped

from pytest_co2.carbon.defer import decide, parse_defer_above
from pytest_co2.carbon.intensity import lookup
from pytest_co2.carbon.intensity_value import Intensity
from pytest_co2.carbon.providers.base import ForecastPoint
from pytest_co2.plugin import defer as defer_plugin

NOW = dt.datetime(2026, 12, 3, 8, 10, tzinfo=dt.timezone.utc)
HOURS = [412.0, 400.0, 350.0, 300.0, 250.0, 181.0, 200.0] + [420.0] * 17  # from 08:00 UTC
LIVE = "DE 412 g/kWh now (Electricity Maps (lifecycle, estimated); live, zone DE, at 2026-12-03T08:00:00Z)"
DEFERRED = f"defer: {LIVE} is above 300 g/kWh; 181 g/kWh expected at 13:00 UTC (in 4.8 h)"

TESTS = """
import pytest

@pytest.mark.co2_defer(above=300)
def test_marked():
    pass

@pytest.mark.co2_defer(above=450)
def test_marked_higher():
    pass

def test_meter(co2_meter):
    with co2_meter.measure("x"):
        pass

@pytest.mark.co2_budget(kg=1)
def test_budget():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[IntensityServer]:
    """Electricity Maps for DE: 412 g/kWh at 08:00 UTC, the forecast ``HOURS``; the
    deferral's clock at 08:10 UTC."""
    monkeypatch.setattr(defer_plugin, "_utcnow", lambda: NOW)
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "secret")
    for s in start_server():
        start = dt.datetime(2026, 12, 3, 8, tzinfo=dt.timezone.utc)
        s.serve("/v3/carbon-intensity/latest", em_latest("DE", 412))
        s.serve("/v3/carbon-intensity/forecast", em_forecast("DE", start, HOURS))
        yield s


def em_args(url: str) -> tuple[str, ...]:
    return (
        "--co2-backend=constant:100", "--co2-json=r.json", "-p", "no:cacheprovider",
        "--co2-region=DE", "--co2-intensity-source=electricitymaps",
        f"--co2-intensity-url={url}/v3",
    )  # fmt: skip


def defer_block(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "r.json").read_text())
    return data["defer"]  # type: ignore[no-any-return]


def skip_reasons(result: pytest.HookRecorder) -> dict[str, str]:
    """Each skipped test's reason, from the reports (not the terminal)."""
    out = {}
    for rep in result.getreports("pytest_runtest_logreport"):
        if rep.skipped:
            assert isinstance(rep.longrepr, tuple)
            out[rep.nodeid.split("::")[-1]] = rep.longrepr[2].removeprefix("Skipped: ")
    return out


def test_above_the_threshold_a_marked_test_is_deferred_with_the_best_start(
    pytester: pytest.Pytester, server: IntensityServer
) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.inline_run(*em_args(server.url))
    result.assertoutcome(passed=4, skipped=1)
    assert skip_reasons(result) == {"test_marked": DEFERRED}
    block = defer_block(pytester)
    assert (block["deferred"], block["ran"]) == (1, 1)
    (marked,) = [e for n, e in block["tests"].items() if n.endswith("::test_marked")]
    assert marked == {
        "deferred": True,
        "reason": DEFERRED,
        "above_g_per_kwh": 300.0,
        "now_g_per_kwh": 412.0,
        "best_start": {
            "start": "2026-12-03T13:00:00Z",
            "duration_s": 1.0,
            "mean_g_per_kwh": 181.0,
            "now_g_per_kwh": 412.0,
            "saving": 181 / 412 - 1,
        },
    }
    (higher,) = [e for n, e in block["tests"].items() if n.endswith("::test_marked_higher")]
    assert higher["reason"] == f"ran: {LIVE} is not above 450 g/kWh"
    assert not higher["deferred"]
    assert len(server.requests) == 2  # latest and forecast, once for the session


def test_the_option_defers_the_tests_that_measure_and_a_marker_wins(
    pytester: pytest.Pytester, server: IntensityServer
) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.inline_run(*em_args(server.url), "--co2-defer-above=300")
    result.assertoutcome(passed=2, skipped=3)  # test_marked_higher (450) and test_plain run
    assert skip_reasons(result) == {
        "test_marked": DEFERRED,
        "test_meter": DEFERRED,
        "test_budget": DEFERRED,
    }
    block = defer_block(pytester)
    assert sorted(n.split("::")[1] for n in block["tests"]) == [
        "test_budget",
        "test_marked",
        "test_marked_higher",
        "test_meter",
    ]


def test_the_summary_says_what_was_deferred_and_why(
    pytester: pytest.Pytester, server: IntensityServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest(*em_args(server.url), "--co2-defer-above=300")
    result.assert_outcomes(passed=2, skipped=3)
    unwrapped(result).fnmatch_lines(
        [
            f"co2 defer: 3 tests deferred (skipped): {LIVE} is above 300 g/kWh; 181 g/kWh "
            "expected at 13:00 UTC (in 4.8 h)",
            "co2 defer: 1 test subject to deferral ran: *is not above 450 g/kWh",
        ]
    )


def test_offline_the_tests_run_and_say_why(
    pytester: pytest.Pytester, server: IntensityServer
) -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pytester.makepyfile(TESTS)
    result = pytester.inline_run(*em_args(f"http://127.0.0.1:{port}"), "--co2-defer-above=1")
    result.assertoutcome(passed=5)
    block = defer_block(pytester)
    assert (block["deferred"], block["ran"]) == (0, 4)
    reasons = {e["reason"] for e in block["tests"].values()}
    assert len(reasons) == 1
    reason = reasons.pop()
    assert reason.startswith(
        "ran: no live intensity: the provider did not answer (electricitymaps zone DE: cannot "
        f"reach 127.0.0.1:{port}: "
    )


def test_a_failing_provider_and_no_source_run_the_tests(
    pytester: pytest.Pytester, server: IntensityServer
) -> None:
    server.serve("/v3/carbon-intensity/latest", {"error": "down for maintenance"}, status=503)
    pytester.makepyfile(TESTS)
    result = pytester.inline_run(*em_args(server.url))
    result.assertoutcome(passed=5)
    reasons = {e["reason"] for e in defer_block(pytester)["tests"].values()}
    assert reasons == {
        "ran: no live intensity: the provider did not answer (electricitymaps zone DE: HTTP 503 "
        f"from 127.0.0.1:{server.port}: down for maintenance)"
    }
    result = pytester.inline_run(
        "--co2-backend=constant:100", "--co2-json=r.json", "--co2-defer-above=1"
    )
    result.assertoutcome(passed=5)
    block = defer_block(pytester)
    assert (block["deferred"], block["ran"]) == (0, 4)
    assert {e["reason"] for e in block["tests"].values()} == {
        "ran: no live intensity: --co2-intensity-source is not given"
    }


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "co2_defer(above='x')",
            "co2_defer(above='x'): invalid deferral threshold 'x': expected a carbon intensity in "
            "g CO2e/kWh, a number >= 0 and <= 10000 (e.g. 300)",
        ),
        (
            "co2_defer(above=-1)",
            "co2_defer(above=-1): invalid deferral threshold -1: expected a carbon intensity in "
            "g CO2e/kWh, a number >= 0 and <= 10000 (e.g. 300)",
        ),
        (
            "co2_defer(above=True)",
            "co2_defer(above=True): invalid deferral threshold True: expected a carbon intensity "
            "in g CO2e/kWh, a number >= 0 and <= 10000 (e.g. 300)",
        ),
        (
            "co2_defer",
            "co2_defer needs a threshold: give co2_defer(above=G_PER_KWH) or "
            "--co2-defer-above=G_PER_KWH",
        ),
        (
            "co2_defer(300, below=2)",
            "co2_defer: unexpected arguments (300,) {'below': 2}: expected "
            "co2_defer(above=G_PER_KWH), e.g. co2_defer(above=300)",
        ),
    ],
)
def test_a_bad_marker_fails_its_test_with_one_line(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(f"import pytest\n\n@pytest.mark.{marker}\ndef test_x():\n    pass\n")
    result = pytester.inline_run()
    (report,) = [r for r in result.getreports("pytest_runtest_logreport") if r.failed]
    assert (report.when, str(report.longrepr)) == ("setup", message)


def test_a_bad_option_is_a_usage_error_and_the_marker_is_listed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--co2-defer-above=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --co2-defer-above: invalid deferral threshold 'lots': expected a carbon "
            "intensity in g CO2e/kWh, a number >= 0 and <= 10000 (e.g. 300)"
        ]
    )
    result = pytester.runpytest("--markers")
    unwrapped(result).fnmatch_lines(["@pytest.mark.co2_defer(above=G_PER_KWH): skip the test *"])


@pytest.fixture
def uk_server() -> Iterator[IntensityServer]:
    yield from start_server()


def test_under_xdist_the_controller_asks_once_and_each_worker_decides(
    pytester: pytest.Pytester, uk_server: IntensityServer
) -> None:
    """The workers' clocks cannot be set from here: the forecast is relative to now."""
    pytest.importorskip("xdist")
    now = dt.datetime.now(dt.timezone.utc)
    t = now.replace(minute=now.minute // 30 * 30, second=0, microsecond=0)
    uk_server.serve("/intensity", uk_national(t, forecast=300, actual=310))
    uk_server.serve("/intensity/*", uk_fw24h(t, [310] * 4 + [90] * 44))
    pytester.makepyfile(TESTS)
    result = pytester.runpytest(
        "-n", "2", "--co2-backend=constant:100", "--co2-json=r.json", "-p", "no:cacheprovider",
        "--co2-intensity-source=ukgrid", f"--co2-intensity-url={uk_server.url}",
        "--co2-defer-above=300",
    )  # fmt: skip
    result.assert_outcomes(passed=2, skipped=3)
    assert len(uk_server.requests) == 2  # the controller's; the workers were handed the value
    block = defer_block(pytester)
    deferred = {e["reason"] for e in block["tests"].values() if e["deferred"]}
    assert block["deferred"] == 3 and len(deferred) == 1  # the same decision in both workers
    assert deferred.pop().startswith(
        "defer: GB 310 g/kWh now (UK National Grid ESO carbon intensity API (actual); live, "
        f"zone GB, at {t:%Y-%m-%dT%H:%M}:00Z) is above 300 g/kWh; 90 g/kWh expected at "
    )


# -- the decision, pure ----------------------------------------------------------------------


def live(g: float, **kw: Any) -> Intensity:
    fields: dict[str, Any] = {"provenance": "live", "zone": "DE", "at": "2026-12-03T08:00:00Z"}
    fields.update(kw)
    return Intensity("DE", "Germany", g, None, None, "EM", **fields)


def points(*values: float) -> tuple[ForecastPoint, ...]:
    start = dt.datetime(2026, 12, 3, 8, tzinfo=dt.timezone.utc)
    return tuple(
        ForecastPoint(start + dt.timedelta(hours=i), start + dt.timedelta(hours=i + 1), g)
        for i, g in enumerate(values)
    )


def test_decide_words_each_case() -> None:
    now_text = "DE 412 g/kWh now (EM; live, zone DE, at 2026-12-03T08:00:00Z) is above 300 g/kWh"
    assert decide(live(412), (), 300, NOW).reason == (
        f"defer: {now_text}; no later start in the next 24 h has a lower forecast"
    )
    assert decide(live(412), points(412, 350), 300, NOW).reason == (
        f"defer: {now_text}; the forecast stays above it: lowest 350 g/kWh at 09:00 UTC (in 50 min)"
    )
    late = dt.datetime(2026, 12, 3, 22, 30, tzinfo=dt.timezone.utc)
    night = points(*[412.0] * 16 + [100.0] * 8)  # 100 from 00:00 UTC the next day
    assert decide(live(412), night, 300, late).reason.endswith(
        "; 100 g/kWh expected at 00:00 UTC tomorrow (in 1.5 h)"
    )
    assert decide(live(300), (), 300, NOW).defer is False  # above, not at
    stale = live(412, provenance="cached", age_s=7200.0, reason="stale: the provider failed: x")
    assert decide(stale, (), 300, NOW).reason == (
        "ran: no live intensity: only a stale cached value (cached 2.0 h ago, zone DE, at "
        "2026-12-03T08:00:00Z (stale: the provider failed: x))"
    )
    fresh = live(412, provenance="cached", age_s=60.0)
    assert decide(fresh, (), 300, NOW).defer is True
    assert decide(lookup("DE"), (), 1, NOW).reason == (
        "ran: no live intensity: --co2-intensity-source is not given"
    )
    assert decide(None, (), 1, NOW).defer is False


@pytest.mark.parametrize("value", ["nan", "inf", "10001", "", None, False])
def test_parse_defer_above_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^invalid deferral threshold "):
        parse_defer_above(value)


def test_parse_defer_above_accepts() -> None:
    assert (parse_defer_above("300"), parse_defer_above(0), parse_defer_above(" 12.5 ")) == (
        300.0,
        0.0,
        12.5,
    )
