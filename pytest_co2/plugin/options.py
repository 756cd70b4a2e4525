"""The option table (``pytest_co2.options``) on pytest: the ``co2`` groups, ini keys, precedence.

Every option ``--co2-foo-bar`` is also the ini key ``co2_foo_bar`` and the environment
variable ``PYTEST_CO2_FOO_BAR``. The command line wins, then the environment, then the ini.
Command-line values are checked by the options' parsers as argparse types, so a bad one is a
pytest usage error naming the value and what is accepted; environment and ini values are
checked in :func:`resolve` by the same parsers and raise :class:`pytest.UsageError` the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from .. import options
from ..options import HELP_SECTIONS, OPTIONS, PLUGIN_PREFIX, Settings

DEST_PREFIX = "co2_"  # config.getoption("co2_region")
#: The settings that choose the intensity: checked at start when one of them is given (the
#: default region needs no check, so a run that gives none reads no intensity table here).
_INTENSITY_CHOICE = ("region", "regions", "month", "intensity", "intensity_file")


def add_options(parser: pytest.Parser) -> None:
    """Every option in its section of ``--help`` (``options.HELP_SECTIONS``), and its ini key."""
    for title, names in HELP_SECTIONS:
        group = parser.getgroup(f"co2 {title}", f"energy and carbon (pytest-co2): {title}")
        options.add_options(group.addoption, PLUGIN_PREFIX, dest_prefix=DEST_PREFIX, names=names)
    for opt in OPTIONS:
        parser.addini(
            opt.ini, help=f"{opt.text()} (also {opt.flag_name()}, {opt.env})", default=None
        )


def resolve(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge command line, environment and ini into :class:`Settings` (raises UsageError)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        cli = config.getoption(DEST_PREFIX + opt.dest, default=None)
        if cli is not None:
            values[opt.dest] = cli
            sources[opt.dest] = "command line"
            continue
        for where, raw in ((opt.env, env.get(opt.env)), (f"ini {opt.ini}", config.getini(opt.ini))):
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                values[opt.dest] = opt.parse(raw)
            except ValueError as exc:
                raise pytest.UsageError(f"{where}: {exc}") from None
            sources[opt.dest] = where
            break
    settings = Settings(**values, sources=sources)
    return _check_combination(settings)


def _check_combination(s: Settings) -> Settings:
    """Cross-option checks: the regions and month must resolve, with the intensity file
    (a region it defines is selectable); returns the settings with canonical region codes."""
    if s.subtract_idle and not s.idle:
        raise pytest.UsageError(
            "--co2-subtract-idle needs the idle power measured first: add --co2-idle=SECONDS (e.g. 2)"
        )
    if not any(name in s.sources for name in _INTENSITY_CHOICE):
        return s
    from ..carbon.intensity import lookup, resolve_region

    csv = s.intensity_file
    try:
        region = resolve_region(s.region, csv_path=csv)
    except ValueError as exc:
        raise pytest.UsageError(f"--co2-region: {exc}") from None
    try:
        regions = tuple(resolve_region(r, csv_path=csv) for r in s.regions)
    except ValueError as exc:
        raise pytest.UsageError(f"--co2-regions: {exc}") from None
    try:
        lookup(region, s.month, intensity_g_per_kwh=s.intensity, csv_path=csv)
        for r in regions:
            lookup(r, None, csv_path=csv)  # what-ifs use yearly values
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return replace(s, region=region, regions=regions)
