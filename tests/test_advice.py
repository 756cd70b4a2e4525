"""Carbon-aware advice: the lowest-emission region and month for the measured work, exact
with a simulated device (Eq. 1 is linear in the intensity)."""

from __future__ import annotations

import json

import pytest
from terminal_text import unwrapped

from pytest_co2.carbon.intensity import lookup, paper_regions
from pytest_co2.reporting.advice import advise

RUN = """
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.25)
"""


def test_advice_for_poland_and_for_germany_in_december_2022() -> None:
    pl = advise(1000.0, lookup("PL"), 1.0, paper_regions())
    assert (pl.best_region.region, pl.best_region.co2e_kg, pl.current.co2e_kg) == ("SE", 7.0, 666.0)
    assert pl.describe().startswith("run in SE: 7.00 kg instead of 666 kg in PL (-99%)")
    de = advise(1000.0, lookup("DE", "2022-12"), 1.0, paper_regions())
    assert de.best_month is not None and de.best_month.region == "DE"
    assert de.describe().endswith(
        f"in DE the lowest month with data is {de.best_month.month}: "
        f"{de.best_month.co2e_kg:.0f} kg ({de.best_month.co2e_kg / 535.0 - 1:+.0%})"
    )
    se = advise(1000.0, lookup("SE"), 1.0, ["SE", "FR"])
    assert se.describe().startswith("SE is already the lowest-emission region")


def test_co2_advise_in_the_summary_json_and_markdown(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(RUN)
    result = fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-region=PL", "--co2-pue=1", "--co2-extrapolate=1000",
        "--co2-advise", "--co2-json=r.json", "--co2-markdown=r.md", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    # 25 J x 1,000 = 25,000 J = 0.006944 kWh: PL 666 g -> 4.62e-3 kg, SE 7 g -> 4.86e-5 kg
    unwrapped(result).fnmatch_lines(
        ["co2 advice: run in SE: 4.86e-5 kg instead of 0.00462 kg in PL (-99%)*"]
    )
    advice = json.loads((fake_clock_pytester.path / "r.json").read_text())["advice"]
    assert advice["session"]["best_region"]["region"] == "SE"
    assert advice["session"]["best_region"]["co2e_kg"] == pytest.approx(25_000 / 3.6e6 * 7 / 1000)
    assert advice["session"]["best_region_saving"] == pytest.approx(7 / 666 - 1)
    assert list(advice["tests"]) == [
        "test_co2_advise_in_the_summary_json_and_markdown.py::test_train"
    ]
    assert (
        "Advice: run in SE: 4.86e-5 kg instead of 0.00462 kg in PL (-99%)"
        in (fake_clock_pytester.path / "r.md").read_text()
    )


def test_pytest_co2_advise_reads_a_saved_run(
    fake_clock_pytester: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli_helpers import run_cli

    fake_clock_pytester.makepyfile(RUN)
    fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-region=PL", "--co2-pue=1", "--co2-extrapolate=1000",
        "--co2-json=r.json", "-p", "no:cacheprovider",
    ).assert_outcomes(passed=1)  # fmt: skip
    path = str(fake_clock_pytester.path / "r.json")
    capsys.readouterr()  # the inner run's output
    monkeypatch.setenv("COLUMNS", "100")  # the candidates line whole (80 columns wrap it)
    rc, out, _ = run_cli(capsys, "advise", path, "--regions", "SE,FR,PL")
    assert rc == 0
    # one answer for the session, every candidate asked for, and tests only where they differ
    assert out.splitlines() == [
        "session: run in SE: 4.86e-5 kg instead of 0.00462 kg in PL (-99%)",
        "candidates (yearly): SE 7 g/kWh 4.86e-5 kg, FR 74 g/kWh 0.000514 kg, PL 666 g/kWh "
        "0.00462 kg",
        "1 of 1 tests: the same choice as the session (each test's figures: --json)",
    ]
    rc, out, _ = run_cli(capsys, "advise", path, "--regions", "SE,FR", "--json")
    data = json.loads(out)
    assert (
        rc == 0
        and data["candidates"] == ["SE", "FR"]
        and data["session"]["best_region"]["region"] == "SE"
    )
