"""``python -m pytest_co2 report``: re-render a saved run for another region or month."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli as cli

from pytest_co2.carbon.intensity import lookup

RUN = """
import pytest

@pytest.mark.co2_budget(kg=0.001)
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.25)

def test_sample(co2_meter, clock):
    with co2_meter.measure("sample", unit="sample"):
        clock.advance(1.0)
"""
# train: 25 J/iteration x 1,000 = 25,000 J; sample: 100 J (measured)
TRAIN_KWH, SAMPLE_KWH = 25_000 / 3.6e6, 100 / 3.6e6


@pytest.fixture
def saved_report(fake_clock_pytester: pytest.Pytester) -> Path:
    fake_clock_pytester.makepyfile(RUN)
    result = fake_clock_pytester.runpytest(
        "--co2-backend=constant:100",
        "--co2-pue=1.2",
        "--co2-region=SE",
        "--co2-extrapolate=1000",
        "--co2-regions=DE",
        "--co2-json=r.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    return fake_clock_pytester.path / "r.json"


def _by_name(data: dict) -> dict[str, dict]:
    return {e["name"]: e for t in data["tests"] for e in t["measurements"]}


def test_rerender_for_poland_and_for_germany_in_december_2022(
    saved_report: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = json.loads(saved_report.read_text())
    assert original["tests"][0]["budget"]["passed"] is True  # 0.00694 kWh x 1.2 x 7 g = 5.8e-5 kg

    for args, g_per_kwh in (
        (["--region", "PL"], 666.0),
        (["--region", "DE", "--month", "2022-12"], None),
    ):
        rc, out, err = cli(capsys, "report", str(saved_report), *args, "--json")
        assert (rc, err) == (0, "")
        data = json.loads(out)
        expected = lookup("DE", "2022-12") if g_per_kwh is None else lookup("PL")
        assert data["session"]["intensity"]["g_per_kwh"] == expected.g_per_kwh
        m = _by_name(data)
        for name, kwh in (("default", TRAIN_KWH), ("sample", SAMPLE_KWH)):
            # same energies as measured, emissions recomputed
            assert m[name]["energy_j"] == _by_name(original)[name]["energy_j"]
            assert m[name]["projection"] == _by_name(original)[name]["projection"]
            assert m[name]["projection"]["energy_kwh"] == pytest.approx(kwh, rel=1e-12)
            assert m[name]["emission"]["region"] == expected.region
            assert m[name]["emission"]["co2e_kg"] == pytest.approx(
                kwh * 1.2 * expected.g_per_kwh / 1000, rel=1e-12
            )
            assert m[name]["equivalents"]["car_km"] == pytest.approx(
                m[name]["emission"]["co2e_kg"] * 1000 / 108.2, rel=1e-9
            )
        assert m["default"]["whatif_co2e_kg"]["DE"] == pytest.approx(
            TRAIN_KWH * 1.2 * lookup("DE").g_per_kwh / 1000
        )
        assert data["totals"]["energy_kwh"] == original["totals"]["energy_kwh"]
        assert data["totals"]["co2e_kg"] == pytest.approx(
            (TRAIN_KWH + SAMPLE_KWH) * 1.2 * expected.g_per_kwh / 1000, rel=1e-12
        )
        budget = data["tests"][0]["budget"]
        assert budget["passed"] is False  # 0.00694 kWh x 1.2 x >= 300 g > 0.001 kg
        assert "exceeds the budget of 0.001 kg" in budget["message"]
    assert data["session"]["settings"]["month"] == "2022-12"


def test_rerender_text_markdown_and_pue(
    saved_report: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = cli(capsys, "report", str(saved_report), "--region", "PL")
    assert rc == 0
    lines = out.splitlines()
    # the first line, wrapped to the terminal (the report's path is as long as the tmp path)
    assert " ".join(out.split()).startswith(
        f"{saved_report}: region PL 666 g CO2e/kWh, PUE 1.2 (energies as measured; emissions "
        "recomputed)"
    )
    assert any("test_train" in line and "OVER" in line for line in lines)
    assert any(line.startswith("TOTAL") for line in lines)
    rc, out, _ = cli(
        capsys,
        "report",
        str(saved_report),
        "--region",
        "DE",
        "--month",
        "2022-12",
        "--markdown",
        "--pue",
        "1",
    )
    assert rc == 0
    assert out.startswith("### CO2e of this test run\n")
    assert f"Region DE 2022-12, {lookup('DE', '2022-12').g_per_kwh:g} g CO2e/kWh; PUE 1;" in out
    # no region: each measurement keeps its own intensity; only the PUE changes
    rc, out, _ = cli(capsys, "report", str(saved_report), "--pue", "2.4", "--json")
    m = _by_name(json.loads(out))["default"]
    assert m["emission"]["region"] == "SE"
    assert m["emission"]["co2e_kg"] == pytest.approx(TRAIN_KWH * 2.4 * 7 / 1000, rel=1e-12)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read report '{path}': No such file or directory"),
        ("not json", "report '{path}' is not JSON: Expecting value: line 1 column 1 (char 0)"),
        (
            '{"schema_version": 99}',
            "report '{path}' is not a pytest-co2 report of schema version 1",
        ),
        ('{"schema_version": 1, "tests": []}', "report '{path}': missing field 'session'"),
        (
            '{"schema_version": 1, "session": {}, "tests": [{"outcome": "passed"}]}',
            "report '{path}': tests[0]: missing field 'nodeid'",
        ),
        (
            '{"schema_version": 1, "session": {}, "tests": [{"nodeid": "t", "measurements": [{"name": "m"}]}]}',
            "report '{path}': tests[0].measurements[0]: missing field 'unit'",
        ),
        (b"\xff\xfe", "report '{path}' is not UTF-8 text: invalid start byte at byte 0"),
    ],
)
def test_bad_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "r.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    rc, out, err = cli(capsys, "report", str(path))
    assert (rc, out) == (2, "")
    assert err == "pytest-co2: error: " + message.format(path=path) + "\n"


def test_bad_region_and_month(saved_report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "report", str(saved_report), "--region", "Atlantis")
    assert (
        rc == 2
        and err.startswith("pytest-co2: error: unknown region 'Atlantis'")
        and err.count("\n") == 1
    )
    rc, _, err = cli(capsys, "report", str(saved_report), "--region", "SE", "--month", "2022-12")
    assert rc == 2 and "no monthly data for SE" in err and err.count("\n") == 1


def test_module_entry_point(saved_report: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_co2",
            "report",
            str(saved_report),
            "--region",
            "PL",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["session"]["rerendered"]["region"] == "PL"
