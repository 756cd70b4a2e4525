"""Command line: ``pytest-co2 convert|regions|report|advise|ab|combine|compare|history``.

Each subcommand is one ``cmd_*`` function in a module of this package (``accounting``,
``reports``, ``history``), registered by that module's ``add_parsers``; it receives the parsed
arguments and returns an exit code. Bad input is reported as one line,
``pytest-co2: error: ...``, with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..carbon.intensity_value import IntensityError
from ..fmt import printable
from . import accounting, history, reports
from .common import PROG, Parser, UsageError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands set ``func`` to their ``cmd_*`` function. The shared
    arguments (region, month, intensity, intensity file, PUE, regions) are the plugin's
    options without the ``co2-`` prefix (``pytest_co2.options``), parsed the same way."""
    parser = Parser(
        prog=PROG,
        description="Energy to CO2e, the paper's Eq. 1: kWh x PUE x carbon intensity.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    accounting.add_parsers(sub)
    reports.add_parsers(sub)
    history.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pytest-co2`` and ``python -m pytest_co2``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    out = sys.stdout
    sys.stdout = _Escaping(out)  # a report's names print escaped
    try:
        return int(args.func(args))
    except (IntensityError, UsageError) as exc:
        parser.error(printable(str(exc)))
    finally:
        sys.stdout = out


class _Escaping:
    """A text stream that escapes control characters (newline and tab kept): what a report
    holds (a test's name) never drives the terminal. JSON output is unchanged (json.dumps
    escapes them already)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(printable(text, keep="\n\t")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
