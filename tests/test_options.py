"""The option table (pytest_co2.options): one declaration for the plugin and the command."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pytest_co2.backends.nvml import GpuSelection
from pytest_co2.cli import build_parser
from pytest_co2.options import HELP_SECTIONS, OPTION, OPTIONS, Settings, add_options


def _parser(prefix: str, **kw: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_options(parser.add_argument, prefix, **kw)
    return parser


def test_every_setting_is_an_option_in_field_order() -> None:
    names = [f.name for f in dataclasses.fields(Settings)]
    assert [opt.dest for opt in OPTIONS] == names[:-1] and names[-1] == "sources"
    region = OPTION["region"]
    assert (region.flag_name(), region.flag_name(""), region.ini, region.env) == (
        "--co2-region",
        "--region",
        "co2_region",
        "PYTEST_CO2_REGION",
    )
    assert OPTION["quiet_runtime"].negative_flag_name() == "--co2-no-quiet-runtime"


def test_every_option_is_in_one_help_section() -> None:
    listed = [name for _, names in HELP_SECTIONS for name in names]
    assert sorted(listed) == sorted(opt.dest for opt in OPTIONS)
    assert len(set(listed)) == len(listed)


def test_the_plugin_prefix_parses_into_the_settings_types() -> None:
    args = _parser("co2-", dest_prefix="co2_").parse_args(
        [
            "--co2-region=sweden",
            "--co2-cpu-watts-per-thread=0.5,2",
            "--co2-gpus=0,1",
            "--co2-regions=SE,poland",
            "--co2-no-exclusive",
            "--co2-compare",
        ]
    )
    assert (args.co2_region, args.co2_cpu_watts_per_thread) == ("SE", (0.5, 2.0))
    assert args.co2_gpus == GpuSelection("list", ("cuda:0", "cuda:1"))
    assert (args.co2_regions, args.co2_exclusive, args.co2_compare) == (
        ("SE", "PL"),
        False,
        "latest",
    )
    assert args.co2_pue is None and args.co2_advise is None  # not given: None, not the default


def test_no_prefix_names_and_one_line_errors() -> None:
    parser = _parser("", names=("pue", "intensity"))
    assert parser.parse_args(["--pue", "1.2"]).pue == 1.2
    with pytest.raises(argparse.ArgumentError) as info:
        parser.parse_args(["--intensity", "-5"])
    assert str(info.value) == (
        "argument --intensity: invalid intensity '-5': give a carbon intensity in g CO2e/kWh, "
        "a number >= 0"
    )
    # only the names asked for (unknown arguments: SystemExit before Python 3.13, then an
    # ArgumentError under exit_on_error=False; parse_known_args says the same on every one)
    assert parser.parse_known_args(["--region", "SE"])[1] == ["--region", "SE"]


def test_the_command_takes_its_shared_arguments_from_the_table() -> None:
    sub = build_parser()._subparsers._group_actions[0].choices
    helps = {(name, a.dest): a.help for name, p in sub.items() for a in p._actions if a.help}
    pue = "power usage effectiveness of the data centre, >= 1"
    assert helps[("convert", "pue")] == f"{pue} (default: 1.55, the paper's)"
    assert helps[("report", "pue")] == f"{pue} (default: the report's)"
    assert helps[("regions", "month")] == "only regions with data for this month"
    assert helps[("convert", "intensity_file")] == OPTION["intensity_file"].text()


def test_every_lazy_parser_resolves_to_a_callable() -> None:
    import importlib

    lazy = [opt for opt in OPTIONS if hasattr(opt.parse, "lazy_target")]
    assert len(lazy) >= 8  # the backends', decisions', reports' and intensity parsers
    for opt in lazy:
        module, _, name = opt.parse.lazy_target.partition(":")  # type: ignore[attr-defined]
        assert callable(getattr(importlib.import_module(module, "pytest_co2"), name)), opt.dest
        assert opt.parse.__name__ == name


def test_declaring_the_options_imports_no_backend_decision_or_report_module() -> None:
    """Every pytest run declares the options: that must stay cheap (see tools/overhead.py)."""
    import subprocess
    import sys

    code = (
        "import sys, argparse, pytest_co2.options as o; "
        "o.add_options(argparse.ArgumentParser().add_argument, 'co2-'); "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('pytest_co2.backends', 'pytest_co2.measure', 'pytest_co2.reporting', "
        "'pytest_co2.carbon'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_settings_are_fixed_once_made_and_read_back_as_given() -> None:
    from dataclasses import FrozenInstanceError, replace

    from pytest_co2.options import Settings

    s = Settings(pue=1.2, region="SE", sources={"pue": "command line", "region": "ini"})
    with pytest.raises(FrozenInstanceError, match="'pue'"):
        s.pue = 2.0
    with pytest.raises(FrozenInstanceError):
        del s.region
    changed = replace(s, pue=1.3)
    assert (changed.pue, changed.region, s.pue) == (1.3, "SE", 1.2)
    assert repr(s) == "Settings(pue=1.2, region='SE')"
