"""Tests whose data exposes each rule of pytest_co2.carbon.intensity (issue 16's mutation run).

Each test names the rule it pins; the values sit where a changed constant, operator or
argument gives a different, exactly compared result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_co2.carbon.intensity import (
    Intensity,
    IntensityError,
    _data_text,
    _Table,
    format_age,
    format_g_per_kwh,
    list_regions,
    lookup,
    monthly_values,
)

_HINT = "Use an ISO code (SE, DE, US-CA) or a name; `pytest-co2 regions` lists them"
_DE_SOURCE = (
    "Monthly unweighted mean of Electricity Maps hourly data for zone DE (Electricity Maps "
    "free datasets, ODbL); computed from the hourly series; lifecycle value"
)


def _write(tmp_path: Path, text: str, name: str = "ci.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_format_age_divides_by_an_hour_and_a_day() -> None:
    # 170856 s = 47.46 h: one second more per hour would print 47.4
    assert format_age(170856) == "47.5 h"
    # 8644364 s = 100.0505 days: one second more per day would print 100.0
    assert format_age(8644364) == "100.1 days"


def test_format_g_per_kwh_one_decimal_from_ten() -> None:
    assert format_g_per_kwh(10.04) == "10.0"  # 3 significant digits would drop the decimal
    assert format_g_per_kwh(9.96) == "9.96"


def test_shipped_data_files_are_read_as_package_data() -> None:
    assert _data_text("intensity_yearly.csv").startswith("region,name,g_co2e_per_kwh,year,source")
    assert _data_text("de_monthly_intensity_2022_2023.csv").startswith(
        "region,year,month,g_co2e_per_kwh_lifecycle"
    )


def test_a_month_without_a_name_is_named_by_its_code() -> None:
    table = _Table({}, {"XQ": {2024 * 12 + 2: 5.5}}, {"XQ": "s"}, {})
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
