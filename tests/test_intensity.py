"""Region and month look-ups of carbon intensity (pytest_co2.carbon.intensity)."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_co2.carbon.intensity import list_regions, lookup, monthly_coverage, monthly_values
from pytest_co2.carbon.intensity_tables import Table, data_text
from pytest_co2.carbon.intensity_value import (
    Intensity,
    IntensityError,
    format_age,
    format_g_per_kwh,
    parse_month,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "pytest_co2" / "data"
SHARED = REPO.parent / "shared" / "data"  # shared/ lies beside the checkout (CI too)
OWID = "Our World in Data / Ember"
HINT = "Use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"


# ------------------------------------------------------------------------ shipped table


def test_default_region_is_eu27_from_the_paper() -> None:
    it = lookup()
    assert (it.region, it.name, it.g_per_kwh, it.year, it.month) == (
        "EU27",
        "European Union (27)",
        251.0,
        2022,
        None,
    )
    assert "Table 1 of the paper" in it.source
    assert lookup(None) == it


@pytest.mark.parametrize(
    "code,value",
    [("EU27", 251.0), ("SE", 7.0), ("DE", 366.0), ("PL", 666.0), ("CN", 582.0), ("US", 390.0)],
)
def test_paper_table1_wins_over_eea_and_owid(code: str, value: float) -> None:
    it = lookup(code)
    assert it.g_per_kwh == value
    assert it.year == 2022
    assert "Table 1 of the paper" in it.source


def test_eea_wins_over_owid() -> None:
    at = lookup("AT")
    assert (at.name, at.g_per_kwh, at.year) == ("Austria", 80.0, 2022)
    assert at.source.startswith("EEA co2-emission-intensity-15")
    assert lookup("GB").g_per_kwh == 225.0


def test_owid_countries_via_carbontracker() -> None:
    no = lookup("NO")
    assert (no.name, no.g_per_kwh, no.year) == ("Norway", 30.75, 2024)
    assert no.source.startswith(OWID) and "carbontracker" in no.source and "MIT" in no.source
    assert lookup("CF").g_per_kwh == 0.0  # a real zero, not a missing value


@pytest.mark.parametrize("text", ["SE", "se", "Sweden", "sweden", "  SWEDEN ", "sE"])
def test_region_by_code_or_name_any_case(text: str) -> None:
    assert lookup(text).region == "SE"


@pytest.mark.parametrize("text", ["US-CA", "us-ca", "California", "CALIFORNIA"])
def test_us_states(text: str) -> None:
    it = lookup(text)
    assert (it.region, it.name, it.g_per_kwh, it.year) == ("US-CA", "California", 179.1, 2023)
    assert "eGRID2023" in it.source


def test_us_state_names_are_proper_case_and_country_wins_a_shared_name() -> None:
    assert lookup("US-DC").name == "District of Columbia"
    assert lookup("us-wv").name == "West Virginia"
    assert lookup("georgia").region == "GE"  # the country; the state is US-GA
    assert (lookup("US-GA").name, lookup("US-GA").g_per_kwh) == ("Georgia", 325.4)
    with pytest.raises(IntensityError):
        lookup("US-US")  # eGRID's national row is left out: US is the paper's


@pytest.mark.parametrize("text", ["WORLD", "world", "World"])
def test_world_has_a_sourced_value(text: str) -> None:
    it = lookup(text)
    assert (it.region, it.name, it.g_per_kwh, it.year) == ("WORLD", "World", 445.0, 2024)
    assert "IEA" in it.source and "carbontracker" in it.source


@pytest.mark.parametrize(
    "text,code",
    [
        ("EU", "EU27"),
        ("european union", "EU27"),
        ("UK", "GB"),
        ("usa", "US"),
        ("United States", "US"),
    ],
)
def test_aliases(text: str, code: str) -> None:
    assert lookup(text).region == code


def test_every_shipped_row_has_a_source_and_a_unique_code() -> None:
    with (DATA / "intensity_yearly.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["region", "name", "g_co2e_per_kwh", "year", "source"]
    assert len(rows) == 265
    codes = [r["region"] for r in rows]
    assert len(set(codes)) == len(codes)
    for r in rows:
        assert r["source"].strip() and r["name"].strip()
        value = float(r["g_co2e_per_kwh"])
        assert math.isfinite(value) and value >= 0
    assert sum(r["region"].startswith("US-") for r in rows) == 51
    assert sum(r["source"].startswith(OWID) for r in rows) == 182


@pytest.mark.skipif(
    not SHARED.is_dir() or importlib.util.find_spec("carbontracker") is None,
    reason="needs ../shared/data beside the checkout and carbontracker to rebuild the table",
)
def test_shipped_data_is_reproducible_from_the_build_script(tmp_path: Path) -> None:
    script = REPO / "tools" / "build_intensity_data.py"
    spec = importlib.util.spec_from_file_location("build_intensity_data", script)
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.main(["--shared", str(SHARED), "--out", str(tmp_path)]) == 0
    for name in (
        "intensity_yearly.csv",
        "de_monthly_intensity_2022_2023.csv",
        "equivalence_factors.csv",
    ):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


# ------------------------------------------------------------------------------ errors


def test_unknown_region_suggests_the_closest() -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("Swedn")
    assert str(exc.value) == f"unknown region 'Swedn': did you mean SE (Sweden)? {HINT}"


def test_unknown_region_without_suggestion() -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("XX")
    assert str(exc.value) == (
        "unknown region 'XX': use an ISO code (SE, DE, US-CA) or a name; "
        "`pytest-co2 regions` lists them"
    )


def test_several_suggestions() -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("Germny")
    assert str(exc.value).startswith("unknown region 'Germny': did you mean DE (Germany)")
    assert "\n" not in str(exc.value)


def test_empty_region() -> None:
    with pytest.raises(IntensityError, match=r"^empty region"):
        lookup("  ")


def test_intensity_error_is_a_value_error() -> None:
    assert issubclass(IntensityError, ValueError)


# ------------------------------------------------------------------------------ months


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2022-12", (2022, 12)),
        ("2023-01", (2023, 1)),
        ("2022-2", (2022, 2)),
        (" 2022-02 ", (2022, 2)),
    ],
)
def test_parse_month(text: str, expected: tuple[int, int]) -> None:
    assert parse_month(text) == expected


@pytest.mark.parametrize("text", ["2022-13", "2022-00", "22-12", "2022/12", "", "dec", "2022-1-1"])
def test_parse_month_rejects(text: str) -> None:
    with pytest.raises(IntensityError) as exc:
        parse_month(text)
    assert str(exc.value) == (
        f"invalid month {text!r}: use YYYY-MM with a month 01..12, e.g. 2022-12"
    )


def test_monthly_germany() -> None:
    dec = lookup("DE", "2022-12")
    feb = lookup("germany", "2022-02")
    assert (dec.region, dec.name, dec.g_per_kwh, dec.year, dec.month) == (
        "DE",
        "Germany",
        535.0,
        2022,
        12,
    )
    assert (feb.g_per_kwh, feb.month) == (370.7, 2)
    assert lookup("DE", "2023-07").g_per_kwh == 286.3
    assert "Electricity Maps" in dec.source and "ODbL" in dec.source and "lifecycle" in dec.source
    assert dec.label == "DE 2022-12 535 g/kWh"
    assert feb.label == "DE 2022-02 370.7 g/kWh"


def test_month_for_a_region_without_monthly_data_is_an_error() -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("SE", "2022-12")
    assert str(exc.value) == (
        "no monthly data for SE (Sweden): monthly intensities exist for DE; "
        "drop the month to use the yearly value"
    )


def test_month_outside_the_data_lists_available_months() -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("DE", "2021-12")
    assert str(exc.value) == "no data for DE in 2021-12: available months 2022-01 to 2023-12"


def test_monthly_coverage() -> None:
    assert monthly_coverage() == {"DE": "2022-01 to 2023-12"}


# ---------------------------------------------------------------------- custom values


def test_custom_intensity() -> None:
    it = lookup(None, intensity_g_per_kwh=42)
    assert it == Intensity("custom", "custom", 42.0, None, None, "user value")
    assert it.label == "custom 42 g/kWh"
    se = lookup("se", "2022-12", intensity_g_per_kwh=1.5)  # the month is recorded, not looked up
    assert se == Intensity("SE", "Sweden", 1.5, 2022, 12, "user value")
    assert lookup("my-dc", intensity_g_per_kwh=0).region == "my-dc"


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "abc"])
def test_custom_intensity_rejects(bad: object) -> None:
    with pytest.raises(IntensityError, match=r"^invalid intensity .*a number >= 0$"):
        lookup(None, intensity_g_per_kwh=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- user CSV


def _write(tmp_path: Path, text: str, name: str = "ci.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_csv_rows_win_over_shipped_data(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "region,year,month,g_co2e_per_kwh,source\n"
        "sweden,2023,,12.5,my utility\n"
        "DE,2022,12,500,\n"
        "MYDC,2024,,100,\n"
        "MYDC,2023,,90,\n"
        "\n",
    )
    se = lookup("SE", csv_path=path)
    assert se == Intensity("SE", "Sweden", 12.5, 2023, None, "my utility")
    assert lookup("DE", "2022-12", csv_path=path) == Intensity(
        "DE", "Germany", 500.0, 2022, 12, "user file ci.csv"
    )
    assert lookup("DE", "2022-11", csv_path=path).g_per_kwh == 493.4  # shipped month kept
    assert lookup("DE", csv_path=path).g_per_kwh == 366.0
    assert lookup("mydc", csv_path=path).g_per_kwh == 100.0  # latest year
    assert lookup("SE").g_per_kwh == 7.0  # the shipped data is untouched
    codes = [it.region for it in list_regions(csv_path=path)]
    assert "MYDC" in codes and len(codes) == 266


def test_user_csv_without_month_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "region,year,g_co2e_per_kwh\nPL,2023,600\n")
    assert lookup("PL", csv_path=path).g_per_kwh == 600.0


@pytest.mark.parametrize(
    "text,problem",
    [
        (
            "region,month\nSE,1\n",
            "line 1: header lacks year, g_co2e_per_kwh; expected "
            "region,year,month,g_co2e_per_kwh (month and source optional)",
        ),
        (
            "region,year,month,g_co2e_per_kwh\nSE,2023,,abc\n",
            "line 2: g_co2e_per_kwh 'abc' is not a number >= 0",
        ),
        (
            "region,year,month,g_co2e_per_kwh\nSE,2023,,7\nSE,2023,,-1\n",
            "line 3: g_co2e_per_kwh '-1' is not a number >= 0",
        ),
        (
            "region,year,month,g_co2e_per_kwh\nDE,2022,13,400\n",
            "line 2: month '13' is not a month 1..12 (or empty)",
        ),
        ("region,year,month,g_co2e_per_kwh\nDE,,12,400\n", "line 2: a month needs a year"),
        (
            "region,year,month,g_co2e_per_kwh\nDE,22a,,400\n",
            "line 2: year '22a' is not a year such as 2022",
        ),
        ("region,year,month,g_co2e_per_kwh\n,2022,,400\n", "line 2: empty region"),
        (
            "region,year,month,g_co2e_per_kwh\nDE,2022,,400,x\n",
            "line 2: 5 fields but the header has 4",
        ),
    ],
)
def test_malformed_user_csv(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(IntensityError) as exc:
        lookup("SE", csv_path=path)
    assert str(exc.value) == f"{path}, {problem}"


def test_missing_user_csv(tmp_path: Path) -> None:
    with pytest.raises(IntensityError) as exc:
        lookup("SE", csv_path=tmp_path / "nope.csv")
    assert str(exc.value) == (
        f"cannot read intensity file {str(tmp_path / 'nope.csv')!r}: No such file or directory"
    )


# ------------------------------------------------------------------------ list, record


def test_list_regions() -> None:
    items = list_regions()
    assert len(items) == 265
    assert [it.region for it in items[:2]] == ["EU27", "WORLD"]
    assert items[-1].region == "US-WY"
    assert all(it.month is None for it in items)
    assert list_regions("2022-12") == [lookup("DE", "2022-12")]
    assert list_regions("2021-01") == []
    with pytest.raises(IntensityError):
        list_regions("2022-13")


def test_intensity_round_trip_and_labels() -> None:
    for it in (lookup("SE"), lookup("DE", "2022-12"), lookup(None, intensity_g_per_kwh=3)):
        d = it.to_dict()
        assert Intensity.from_dict(json.loads(json.dumps(d))) == it
    assert lookup("SE").to_dict() == {
        "region": "SE",
        "name": "Sweden",
        "g_per_kwh": 7.0,
        "year": 2022,
        "month": None,
        "source": "EEA 2022, as given in Table 1 of the paper",
    }
    assert lookup("SE").label == "SE 7 g/kWh (2022)"
    assert lookup("AE").label == "AE 492.7 g/kWh (2023)"


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ, reason="mutmut's trampolines import modules of their own"
)
def test_import_is_cheap() -> None:
    code = (
        "import sys; import pytest_co2; before = set(sys.modules)\n"
        "import pytest_co2.carbon.intensity, pytest_co2.carbon, pytest_co2.carbon.equivalents\n"
        "import pytest_co2.carbon.intensity_tables as t\n"
        "new = set(sys.modules) - before\n"
        "heavy = {m for m in new if m.split('.')[0] in ('numpy', 'tabulate', 'difflib', 'json')}\n"
        "assert not heavy, heavy\n"
        "assert t.shipped_table.cache_info().currsize == 0\n"
    )
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)


def test_user_region_with_only_monthly_data(tmp_path: Path) -> None:
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh\nMYDC,2024,3,50\nMYDC,2024,4,60\n")
    assert lookup("mydc", "2024-04", csv_path=path).g_per_kwh == 60.0
    with pytest.raises(IntensityError) as exc:
        lookup("MYDC", csv_path=path)
    assert str(exc.value) == (
        "no yearly value for MYDC: only monthly data (2024-03 to 2024-04); give a month"
    )
    assert monthly_coverage(csv_path=path) == {
        "DE": "2022-01 to 2023-12",
        "MYDC": "2024-03 to 2024-04",
    }


def test_user_csv_quoted_fields_and_line_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'region,year,month,g_co2e_per_kwh,source\nSE,2023,,9,"two\nlines, quoted"\nDE,2023,,?,\n',
    )
    with pytest.raises(IntensityError) as exc:
        lookup("SE", csv_path=path)
    assert str(exc.value) == f"{path}, line 4: g_co2e_per_kwh '?' is not a number >= 0"
    path = _write(tmp_path, 'region,year,g_co2e_per_kwh,source\nSE,2023,9,"two\nlines, quoted"\n')
    assert lookup("SE", csv_path=path).source == "two\nlines, quoted"


# ------------------------------------------------------ issue 12: user regions, large files


def test_parse_region_defers_regions_the_file_may_define(tmp_path: Path) -> None:
    from pytest_co2.carbon.intensity import parse_region, resolve_region

    assert parse_region("sweden") == "SE" and parse_region(" eu ") == "EU27"
    assert parse_region("My  DC") == "My DC"  # unknown to the shipped data: kept for the file
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh,name\nMYDC,2024,,42,My DC\n")
    assert lookup(parse_region("My DC"), csv_path=path).g_per_kwh == 42.0
    assert lookup(parse_region("mydc"), csv_path=path).region == "MYDC"
    assert resolve_region("my dc", csv_path=path) == "MYDC"
    assert resolve_region("Sweden") == "SE"
    with pytest.raises(IntensityError) as exc:
        resolve_region("Swedn")
    assert str(exc.value) == f"unknown region 'Swedn': did you mean SE (Sweden)? {HINT}"
    with pytest.raises(IntensityError, match="unknown region 'MYDC'"):
        resolve_region("MYDC")  # without the file


@pytest.mark.parametrize("bad", ["", "  ", "a,b", "x\ty" + "\x00", "z" * 81])
def test_parse_region_rejects(bad: str) -> None:
    from pytest_co2.carbon.intensity import parse_region

    with pytest.raises(IntensityError, match=r"^(empty region|invalid region)"):
        parse_region(bad)


def test_a_region_only_in_the_intensity_file_is_the_session_region(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".csv", ci="region,year,month,g_co2e_per_kwh\nMYDC,2024,,42\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--co2-backend=constant:1",
        "--co2-json=r.json",
        "--co2-intensity-file=ci.csv",
        "--co2-region=mydc",
        "--co2-regions=MYDC,SE",
    )
    assert result.ret == 0, result.stderr.str()
    session = json.loads((pytester.path / "r.json").read_text())["session"]
    assert session["intensity"]["region"] == "MYDC"


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the user files parsed from here on (the parse cache starts empty)."""
    from pytest_co2.carbon import intensity_file

    calls: list[str] = []
    real = intensity_file._parse_user_csv

    def counting(where: str) -> object:
        calls.append(Path(where).name)
        return real(where)

    monkeypatch.setattr(intensity_file, "_parse_user_csv", counting)
    monkeypatch.setattr(intensity_file, "_user_cache", {})
    return calls


def test_a_user_file_is_parsed_once_per_version(tmp_path: Path, parsed: list[str]) -> None:
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh\nMYDC,2024,,42\n")
    for _ in range(3):  # the option check, the session, a what-if: one parse
        assert lookup("MYDC", csv_path=path).g_per_kwh == 42.0
    list_regions(csv_path=path)
    monthly_coverage(csv_path=path)
    assert parsed == ["ci.csv"]
    path.write_text("region,year,month,g_co2e_per_kwh\nMYDC,2024,,43.5\n", encoding="utf-8")
    assert lookup("MYDC", csv_path=path).g_per_kwh == 43.5  # a new version is read again
    assert parsed == ["ci.csv", "ci.csv"]


def test_at_most_four_parsed_user_files_are_kept(tmp_path: Path, parsed: list[str]) -> None:
    paths = [
        _write(tmp_path, f"region,year,g_co2e_per_kwh\nSE,2024,{i}\n", f"{i}.csv") for i in range(5)
    ]
    for i, path in enumerate(paths):
        assert lookup("SE", csv_path=path).g_per_kwh == float(i)
    assert lookup("SE", csv_path=paths[1]).g_per_kwh == 1.0  # still cached
    assert parsed == ["0.csv", "1.csv", "2.csv", "3.csv", "4.csv"]
    assert lookup("SE", csv_path=paths[0]).g_per_kwh == 0.0  # the oldest was dropped
    assert parsed == ["0.csv", "1.csv", "2.csv", "3.csv", "4.csv", "0.csv"]


def test_blank_lines_january_zeros_bom_and_the_latest_yearly_row(tmp_path: Path) -> None:
    path = tmp_path / "ci.csv"
    path.write_bytes(
        b"\xef\xbb\xbf\r\n"  # a byte-order mark, then a blank line before the header
        b"Region , Year , Month , G_CO2E_PER_KWH\r\n"
        b"\r\n"
        b"MYDC,2022,,100\r\n"
        b"MYDC,2024,,300\r\n"
        b"MYDC,2023,,200\r\n"  # an older year after a newer one: the newer stays
        b"MYDC,2024,,300.0\r\n"  # the same year again with the same value: allowed
        b",,,\r\n"
        b"MYDC,2024,01,0\r\n"  # January, written 01; zero intensity is allowed
        b"MYDC,2024,1,-0\r\n"  # January again: -0 is 0, the same value
        b"MYDC,2024,2, 7.5 \r\n"
        b"\r\n"
    )
    it = lookup("mydc", csv_path=path)
    assert (it.g_per_kwh, it.year, it.month) == (300.0, 2024, None)
    jan = lookup("MYDC", "2024-01", csv_path=path)
    assert jan == Intensity("MYDC", "MYDC", 0.0, 2024, 1, "user file ci.csv")
    assert math.copysign(1.0, jan.g_per_kwh) == 1.0
    assert lookup("MYDC", "2024-02", csv_path=path).g_per_kwh == 7.5
    assert monthly_coverage(csv_path=path)["MYDC"] == "2024-01 to 2024-02"
    assert [i.region for i in list_regions("2024-01", csv_path=path)] == ["MYDC"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "MYDC,2024,3,100\nOTHER,2024,3,5\nmydc,2024,03,120\n",
            "line 4: MYDC 2024-03 is 120 g/kWh here but 100 g/kWh at line 2",
        ),
        (
            "MYDC,2023,,50\n\nMYDC,2023,,50\nMYDC,2023,, 51\n",
            "line 5: MYDC year 2023 is 51 g/kWh here but 50 g/kWh at line 2",
        ),
        (  # the first line is found past another region, another month and a blank year
            "OTHER,2024,3,5\nMYDC,2024,2,7\nMYDC,,,9\nMYDC,2024,3,100\nmydc,2024,03,120\n",
            "line 6: MYDC 2024-03 is 120 g/kWh here but 100 g/kWh at line 5",
        ),
    ],
)
def test_two_rows_for_one_region_and_period_are_an_error_naming_both_lines(
    tmp_path: Path, rows: str, message: str
) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("region,year,month,g_co2e_per_kwh\n" + rows, encoding="utf-8")
    with pytest.raises(IntensityError) as exc:
        lookup("MYDC", csv_path=path)
    assert str(exc.value) == (
        f"{path}, {message}: expected one value per region and period (remove one of the rows)"
    )


def test_the_first_line_is_found_in_short_rows_after_a_blank_line_and_a_bom(
    tmp_path: Path,
) -> None:
    """Columns in another order, rows without year and month (a blank year), a BOM and a
    blank line before the header: the first line is found again all the same."""
    path = tmp_path / "short.csv"
    path.write_bytes(
        b"\xef\xbb\xbf  \r\ng_co2e_per_kwh,region,year,month\r\n50,MYDC\r\n51,MYDC\r\n"
    )
    with pytest.raises(IntensityError) as exc:
        lookup("MYDC", csv_path=path)
    assert str(exc.value) == (
        f"{path}, line 4: MYDC year (blank) is 51 g/kWh here but 50 g/kWh at line 3: "
        "expected one value per region and period (remove one of the rows)"
    )


def test_a_conflict_whose_first_line_cannot_be_read_again_says_an_earlier_line(
    tmp_path: Path,
) -> None:
    from pytest_co2.carbon.intensity_file import _conflict

    where = str(tmp_path / "gone.csv")  # removed after its parse: the second pass finds nothing
    assert str(_conflict(where, 3, "MYDC", None, None, 50.0, 51.0)) == (
        f"{where}, line 3: MYDC year (blank) is 51 g/kWh here but 50 g/kWh at an earlier "
        "line: expected one value per region and period (remove one of the rows)"
    )


def _big_csv(path: Path, regions: int) -> int:
    rows = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("region,year,month,g_co2e_per_kwh,source\n")
        for r in range(regions):
            for y in range(1979, 2025):
                for m in ["", *map(str, range(1, 13))]:
                    f.write(f"ZZ{r:04d},{y},{m},{(r * 7 + y + len(m)) % 900}.25,grid data v1\n")
                    rows += 1
    return rows


class _LineCountingFile:
    """A text file that counts the lines read through it and refuses a whole-file read."""

    def __init__(self, fh: Any, counts: list[int]) -> None:
        self.fh, self.counts, self.i = fh, counts, len(counts)
        counts.append(0)

    def __iter__(self) -> Iterator[str]:
        for line in self.fh:
            self.counts[self.i] += 1
            yield line

    def read(self, *args: Any) -> str:
        raise AssertionError("the whole file read at once")

    def __enter__(self) -> _LineCountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def test_a_large_user_file_is_parsed_streaming_and_compactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: a 27 MB file took 18 s and 936 MB (read whole, an object per row, twice).
    Measured in what does not depend on the machine's load: the lines read (one pass, line
    by line) and the peak memory per row (no object per row)."""
    import tracemalloc

    from pytest_co2.carbon import intensity_file, intensity_tables

    path = tmp_path / "big.csv"
    rows = _big_csv(path, 100)  # 59,800 rows, 2.3 MB
    intensity_tables.shipped_table()
    lines_read: list[int] = []  # per opening of a file
    monkeypatch.setattr(
        intensity_file,
        "open",
        lambda *a, **kw: _LineCountingFile(open(*a, **kw), lines_read),  # noqa: SIM115
        raising=False,
    )
    tracemalloc.start()
    try:
        assert (
            lookup("ZZ0042", "2003-04", csv_path=path).g_per_kwh == (42 * 7 + 2003 + 1) % 900 + 0.25
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / rows < 250, f"{peak / rows:.0f} bytes per row"  # was ~550 here, ~60 now
    assert lines_read == [rows + 1]  # one pass: the header and each row, once
    assert lookup("ZZ0099", csv_path=path).year == 2024
    assert lines_read == [rows + 1]  # the parsed table is kept: not read again


# -- exact values: data that exposes each rule ----------------------------------------
_HINT = "Use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"
_DE_SOURCE = (
    "Monthly unweighted mean of Electricity Maps hourly data for zone DE (Electricity Maps "
    "free datasets, ODbL); computed from the hourly series; lifecycle value"
)


def test_format_age_divides_by_an_hour_and_a_day() -> None:
    # 170856 s = 47.46 h: one second more per hour would print 47.4
    assert format_age(170856) == "47.5 h"
    # 8644364 s = 100.0505 days: one second more per day would print 100.0
    assert format_age(8644364) == "100.1 days"


def test_format_g_per_kwh_one_decimal_from_ten() -> None:
    assert format_g_per_kwh(10.04) == "10.0"  # 3 significant digits would drop the decimal
    assert format_g_per_kwh(9.96) == "9.96"


def test_format_g_per_kwh_float_noise_scales_with_the_value() -> None:
    assert format_g_per_kwh(1_000_000.0001) == "1000000"  # within 1e-9 of a large value
    assert format_g_per_kwh(1.5e-9) == "1.5e-09"  # below 1: the tolerance is 1e-9 itself


def test_the_largest_intensity_accepted_is_10000() -> None:
    from pytest_co2.carbon.intensity_value import parse_g_per_kwh

    assert parse_g_per_kwh("10000") == 10000.0
    with pytest.raises(IntensityError, match=r"^invalid intensity '10000.5': .*at most 10000$"):
        parse_g_per_kwh("10000.5")


def test_shipped_data_files_are_read_as_package_data() -> None:
    assert data_text("intensity_yearly.csv").startswith("region,name,g_co2e_per_kwh,year,source")
    assert data_text("de_monthly_intensity_2022_2023.csv").startswith(
        "region,year,month,g_co2e_per_kwh_lifecycle"
    )


def test_a_month_without_a_name_is_named_by_its_code() -> None:
    table = Table({}, {"XQ": {2024 * 12 + 2: 5.5}}, {"XQ": "s"}, {})
    assert table.month("XQ", 2024, 3) == Intensity("XQ", "XQ", 5.5, 2024, 3, "s")


def test_a_shipped_month_takes_the_user_files_name(tmp_path: Path) -> None:
    # the file names Germany but gives no month: the shipped month keeps its value and
    # source, with the user's name
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh,source,name\nDE,2023,,400,,My DE\n")
    assert lookup("DE", "2022-11", csv_path=path) == Intensity(
        "DE", "My DE", 493.4, 2022, 11, _DE_SOURCE
    )
    assert lookup("DE", csv_path=path) == Intensity(
        "DE", "My DE", 400.0, 2023, None, "user file ci.csv"
    )


@pytest.mark.parametrize(
    ("rows", "query", "suggestions"),
    [
        pytest.param(  # code and name both close: six close spellings give three regions
            "".join(f"ZZYZX{a},2024,,1,,ZZYZX{b}\n" for a, b in ("AB", "CD", "EF", "GH")),
            "zzyzx",
            "ZZYZXG (ZZYZXH), ZZYZXE (ZZYZXF) or ZZYZXC (ZZYZXD)",
            id="codes-not-spellings",
        ),
        pytest.param(  # four close codes: three are shown
            "".join(f"QQA{i},2024,,1,,Far name {i}\n" for i in range(1, 5)),
            "qqa",
            "QQA4 (Far name 4), QQA3 (Far name 3) or QQA2 (Far name 2)",
            id="at-most-three",
        ),
    ],
)
def test_unknown_region_suggests_three_regions(
    tmp_path: Path, rows: str, query: str, suggestions: str
) -> None:
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh,source,name\n" + rows)
    with pytest.raises(IntensityError) as err:
        lookup(query, csv_path=path)
    assert str(err.value) == f"unknown region {query!r}: did you mean {suggestions}? {_HINT}"


def test_quoted_line_breaks_are_kept_as_written(tmp_path: Path) -> None:
    # the csv module needs newline="" to keep a quoted CRLF
    path = _write(tmp_path, 'region,year,g_co2e_per_kwh,source\r\nSE,2024,3,"a\r\nb"\r\n')
    assert lookup("SE", csv_path=path).source == "a\r\nb"


def test_blank_rows_before_the_header_and_long_blank_rows_are_skipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        ",,\n \n"  # blank rows before the header
        "region,year,month,g_co2e_per_kwh\n"
        "SE,2023,,5\n"
        ",,,,,,\n"  # more fields than the header, all blank: skipped, not the end
        " ,  \n"  # fewer fields, all blank
        "XA,2024,,6\n",
    )
    assert lookup("SE", csv_path=path).g_per_kwh == 5.0
    assert lookup("XA", csv_path=path).g_per_kwh == 6.0


def test_a_blank_month_is_a_yearly_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh\nXB,2024,  ,7\n")
    assert lookup("XB", csv_path=path) == Intensity("XB", "XB", 7.0, 2024, None, "user file ci.csv")


@pytest.mark.parametrize(
    "rows,value",
    [
        ("XC,1,,5\nXC,,,7\n", 5.0),  # a row without a year is older than year 1
        ("XC,0,,5\nXC,,,7\n", 7.0),  # ... and ties with year 0, where the later row wins
    ],
)
def test_a_yearly_row_without_a_year_ranks_as_year_zero(
    tmp_path: Path, rows: str, value: float
) -> None:
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh\n" + rows)
    assert lookup("XC", csv_path=path).g_per_kwh == value


def test_custom_intensity_for_a_region_without_data_is_named_by_the_region() -> None:
    assert lookup("Mars", intensity_g_per_kwh=12) == Intensity(
        "Mars", "Mars", 12.0, None, None, "user value"
    )
    assert lookup("se", "2023-02", intensity_g_per_kwh=3.5) == Intensity(
        "SE", "Sweden", 3.5, 2023, 2, "user value"
    )


def test_empty_region_message() -> None:
    with pytest.raises(IntensityError) as err:
        lookup("   ")
    assert str(err.value) == (
        "empty region: use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"
    )


def test_list_regions_with_an_empty_month_lists_yearly_values() -> None:
    assert list_regions("") == list_regions(None)
    assert list_regions("")[0].month is None


def test_monthly_values_of_a_region_only_in_the_user_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "region,year,month,g_co2e_per_kwh\nXD,2024,2,4\nXD,2024,1,3\n")
    assert monthly_values("xd", csv_path=path) == [
        Intensity("XD", "XD", 3.0, 2024, 1, "user file ci.csv"),
        Intensity("XD", "XD", 4.0, 2024, 2, "user file ci.csv"),
    ]


def test_the_shipped_yearly_table_made_on_look_up_equals_a_full_csv_read() -> None:
    """Every yearly value and name, read line by line on look-up, is what the csv module
    reads from the whole file (the later of two rows for a code wins, as in a dict)."""
    from pytest_co2.carbon.intensity_tables import shipped_table, yearly_lines

    expected: dict[str, Intensity] = {}
    for row in csv.DictReader(data_text("intensity_yearly.csv").splitlines()):
        code = row["region"]
        expected[code] = Intensity(
            code, row["name"], float(row["g_co2e_per_kwh"]), int(row["year"]), None, row["source"]
        )
    table = shipped_table()
    assert list(table.yearly) == list(expected) and len(table.yearly) == len(expected)
    assert {code: table.yearly[code] for code in table.yearly} == expected
    assert table.names == {code: it.name for code, it in expected.items()}
    assert "XX" not in table.yearly
    with pytest.raises(KeyError):
        table.yearly["XX"]
    # quoted codes and names, another column order, blank lines and a repeated code
    text = (
        'name,region,year,g_co2e_per_kwh,source\n"Korea, Rep.",KR,2022,436,"a, b"\n\n'
        'Sweden,SE,2022,45,x\n"Sweden, again",SE,2023,40,y\n'
    )
    yearly, names = yearly_lines(text)
    assert names == {"KR": "Korea, Rep.", "SE": "Sweden, again"}
    assert yearly["KR"] == Intensity("KR", "Korea, Rep.", 436.0, 2022, None, "a, b")
    assert yearly["SE"] == Intensity("SE", "Sweden, again", 40.0, 2023, None, "y")
    header = "region,name,g_co2e_per_kwh,year,source\n"
    fast, _ = yearly_lines(header + '"S,E",Swe,45,2022,"q, r"\n')
    assert fast["S,E"] == Intensity("S,E", "Swe", 45.0, 2022, None, "q, r")
    quoted, names = yearly_lines(header + '"SE",Sweden,45,2022,x\nFI,"Finland",79,2022,y\n')
    assert names == {"SE": "Sweden", "FI": "Finland"}
    assert quoted["SE"].region == "SE" and quoted["FI"].name == "Finland"


def test_plain_yearly_lines_are_split_without_the_csv_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Codes and names are found by splitting a line at its commas; the csv module reads
    only the header and lines with quotes there (and a line when its value is looked up)."""
    from pytest_co2.carbon import intensity_tables

    read: list[list[str]] = []

    def counting_reader(lines: list[str]) -> Any:
        read.append(list(lines))
        return csv.reader(lines)

    monkeypatch.setattr(intensity_tables, "csv", type("Csv", (), {"reader": counting_reader}))
    text = 'region,name,g_co2e_per_kwh,year,source\nSE,Sweden,45,2022,"a, b"\n"DE",Germany,380,2022,c\n'
    yearly, names = intensity_tables.yearly_lines(text)
    assert names == {"SE": "Sweden", "DE": "Germany"}
    assert read == [["region,name,g_co2e_per_kwh,year,source"], ['"DE",Germany,380,2022,c']]
    assert yearly["SE"].source == "a, b" and len(read) == 3
