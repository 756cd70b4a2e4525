"""The command line: ``pytest-co2 convert`` and ``pytest-co2 regions`` (pytest_co2.__main__)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli as run

from pytest_co2.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def convert_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    rc, out, err = run(capsys, "convert", *argv, "--json")
    assert (rc, err) == (0, "")
    return json.loads(out)


def test_parser_has_one_function_per_subcommand() -> None:
    parser = build_parser()
    args = parser.parse_args(["convert", "--energy-kwh", "1"])
    assert args.func.__name__ == "cmd_convert"
    assert parser.parse_args(["regions"]).func.__name__ == "cmd_regions"


def test_convert_sweden(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "convert", "--energy-kwh", "1000", "--region", "SE", "--pue", "1")
    assert (rc, err) == (0, "")
    assert out == (
        "7.0 kg CO2e = 1,000 kWh x PUE 1 x 7 g/kWh\n"
        "intensity: SE (Sweden), 2022; source: EEA 2022, as given in Table 1 of the paper\n"
        "= 64.7 km by car, 852 smartphone charges, a 29 km flight, "
        "426 days of a tree seedling's growth, 0.651% of a person's annual 1.5\u00a0°C budget\n"
    )


def test_convert_poland(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "convert", "--energy-kwh", "1000", "--region", "poland", "--pue", "1")
    assert rc == 0
    assert out.splitlines()[0] == "666.0 kg CO2e = 1,000 kWh x PUE 1 x 666 g/kWh"


def test_convert_json(capsys: pytest.CaptureFixture[str]) -> None:
    d = convert_json(capsys, "--energy-kwh", "1000", "--region", "SE", "--pue", "1")
    assert d["co2e_kg"] == 7.0
    assert (d["energy_kwh"], d["pue"], d["facility_energy_kwh"]) == (1000.0, 1.0, 1000.0)
    assert d["intensity"] == {
        "region": "SE",
        "name": "Sweden",
        "g_per_kwh": 7.0,
        "year": 2022,
        "month": None,
        "source": "EEA 2022, as given in Table 1 of the paper",
    }
    assert set(d["equivalents"]) == {
        "car_km",
        "smartphone_charges",
        "flight_km",
        "tree_seedlings_10y",
        "annual_budget_1p5c_pct",
    }
    assert d["equivalents"]["car_km"] == pytest.approx(7000 / 108.2, rel=1e-12)


def test_convert_default_region_and_pue(capsys: pytest.CaptureFixture[str]) -> None:
    d = convert_json(capsys, "--energy-kwh", "1000")
    assert (d["intensity"]["region"], d["pue"], d["co2e_kg"]) == ("EU27", 1.55, 389.05)


def test_convert_paper_figure(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "convert", "--energy-kwh", "1443.4", "--region", "EU27", "--pue", "1")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "362.3 kg CO2e = 1,443.4 kWh x PUE 1 x 251 g/kWh"
    assert lines[2] == (
        "= 3,348 km by car, 44,075 smartphone charges, a 1,500 km flight, "
        "6.04 tree seedlings grown 10 years, 33.7% of a person's annual 1.5\u00a0°C budget"
    )


def test_germany_december_vs_february_2022(capsys: pytest.CaptureFixture[str]) -> None:
    dec = convert_json(capsys, "--energy-kwh", "1000", "--region", "DE", "--month", "2022-12")
    feb = convert_json(capsys, "--energy-kwh", "1000", "--region", "DE", "--month", "2022-02")
    assert (dec["intensity"]["g_per_kwh"], dec["intensity"]["month"]) == (535.0, 12)
    assert (feb["intensity"]["g_per_kwh"], feb["intensity"]["month"]) == (370.7, 2)
    assert dec["co2e_kg"] == pytest.approx(829.25, rel=1e-12)  # 1000 x 1.55 x 535 / 1000
    assert feb["co2e_kg"] == pytest.approx(574.585, rel=1e-12)
    assert dec["co2e_kg"] / feb["co2e_kg"] == pytest.approx(535.0 / 370.7, rel=1e-12)
    assert "Electricity Maps" in dec["intensity"]["source"]


def test_convert_custom_intensity_and_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = convert_json(capsys, "--energy-kwh", "10", "--pue", "1", "--intensity", "100")
    assert (d["co2e_kg"], d["intensity"]["region"], d["intensity"]["source"]) == (
        1.0,
        "custom",
        "user value",
    )
    path = tmp_path / "ci.csv"
    path.write_text("region,year,month,g_co2e_per_kwh,source\nSE,2024,,20,mine\n", "utf-8")
    d = convert_json(
        capsys, "--energy-kwh", "10", "--pue", "1", "--region", "SE", "--intensity-file", str(path)
    )
    assert (d["co2e_kg"], d["intensity"]["source"], d["intensity"]["year"]) == (0.2, "mine", 2024)


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["convert", "--energy-kwh", "1", "--region", "XX"],
            "unknown region 'XX': use an ISO code (SE, DE, US-CA) or a name; "
            "`pytest-co2 regions` lists them",
        ),
        (
            ["convert", "--energy-kwh", "1", "--region", "Swedn"],
            "unknown region 'Swedn': did you mean SE (Sweden)? Use an ISO code (SE, DE, US-CA) "
            "or a name; `pytest-co2 regions` lists them",
        ),
        (
            ["convert", "--energy-kwh", "-1"],
            "argument --energy-kwh: invalid energy '-1': give the energy in kWh, a number >= 0",
        ),
        (
            ["convert", "--energy-kwh", "abc"],
            "argument --energy-kwh: invalid energy 'abc': give the energy in kWh, a number >= 0",
        ),
        (
            ["convert", "--energy-kwh", "1", "--pue", "0.9"],
            "argument --pue: invalid PUE '0.9': a power usage effectiveness is a number >= 1.0 "
            "(the paper uses 1.55)",
        ),
        (
            ["convert", "--energy-kwh", "1", "--month", "2022-13"],
            "argument --month: invalid month '2022-13': use YYYY-MM with a month 01..12, "
            "e.g. 2022-12",
        ),
        (
            ["convert", "--energy-kwh", "1", "--region", "SE", "--month", "2022-12"],
            "no monthly data for SE (Sweden): monthly intensities exist for DE; "
            "drop the month to use the yearly value",
        ),
        (
            ["convert", "--energy-kwh", "1", "--region", "DE", "--month", "2024-01"],
            "no data for DE in 2024-01: available months 2022-01 to 2023-12",
        ),
        (
            ["convert", "--energy-kwh", "1", "--intensity", "-5"],
            "argument --intensity: invalid intensity '-5': give a carbon intensity in g CO2e/kWh, "
            "a number >= 0",
        ),
        (["convert"], "the following arguments are required: --energy-kwh"),
        (
            ["regions", "--month", "2021-01"],
            "no region has data for 2021-01: monthly data exists for DE 2022-01 to 2023-12",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc, out, err = run(capsys, *argv)
    assert (rc, out) == (2, "")
    assert err == f"pytest-co2: error: {message}\n"


def test_malformed_intensity_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("region,year,month,g_co2e_per_kwh\nSE,2023,,x\n", "utf-8")
    rc, out, err = run(capsys, "convert", "--energy-kwh", "1", "--intensity-file", str(path))
    assert (rc, out) == (2, "")
    assert err == f"pytest-co2: error: {path}, line 2: g_co2e_per_kwh 'x' is not a number >= 0\n"


def test_regions_table_and_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    rc, out, _ = run(capsys, "regions")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["region", "name", "g/kWh", "year", "(month)", "source"]
    # one row per region, cut (never wrapped) to the width, and a line that says so
    assert len(lines) == 2 + 265 + 1 and max(len(line) for line in lines) == 80
    assert lines[2].split()[:4] == ["EU27", "European", "Union", "(27)"]
    assert lines[2].endswith("…")
    assert lines[-1] == "names and sources cut to 80 columns: --json has them whole"
    assert any(line.split()[:3] == ["SE", "Sweden", "7"] for line in lines)
    rc, out, _ = run(capsys, "regions", "--json")
    items = json.loads(out)
    assert len(items) == 265 and items[0]["region"] == "EU27"
    rc, out, _ = run(capsys, "regions", "--month", "2022-12", "--json")
    assert [(d["region"], d["g_per_kwh"], d["month"]) for d in json.loads(out)] == [
        ("DE", 535.0, 12)
    ]


def _subprocess(*argv: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run(
        [sys.executable, "-m", "pytest_co2", *argv],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def test_python_m_convert() -> None:
    proc = _subprocess("convert", "--energy-kwh", "1000", "--region", "PL", "--pue", "1", "--json")
    assert (proc.returncode, proc.stderr) == (0, "")
    d = json.loads(proc.stdout)
    assert d["co2e_kg"] == 666.0
    assert d["intensity"]["source"] == "EEA 2022, as given in Table 1 of the paper"


def test_python_m_bad_input_has_no_traceback() -> None:
    proc = _subprocess("convert", "--energy-kwh", "1", "--pue", "0.9")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("pytest-co2: error: argument --pue: invalid PUE '0.9'")


def test_every_subcommand_reaches_its_function() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    funcs = {name: p.get_default("func").__name__ for name, p in sub.items()}
    assert funcs == {
        "convert": "cmd_convert",
        "regions": "cmd_regions",
        "advise": "cmd_advise",
        "report": "cmd_report",
        "ab": "cmd_ab",
        "combine": "cmd_combine",
        "compare": "cmd_compare",
        "history": "cmd_history",
    }


def test_the_cli_modules_stay_small() -> None:
    sizes = {
        p.name: len(p.read_text().splitlines()) for p in (REPO / "pytest_co2/cli").glob("*.py")
    }
    assert set(sizes) >= {"__init__.py", "common.py", "history.py"}
    assert max(sizes.values()) < 400, sizes


def test_python_m_history_without_saved_runs(tmp_path: Path) -> None:
    proc = _subprocess("history", "--storage-dir", str(tmp_path))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"pytest-co2: error: no saved run in {tmp_path}: save runs with pytest --co2-save=NAME\n"
    )
