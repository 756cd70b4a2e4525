"""What every subcommand shares: the one-line usage error, the parser class that prints it,
the terminal width, wrapped printing and loading a saved report."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ..reporting.json_report import Report

PROG = "pytest-co2"


class UsageError(Exception):
    """Bad input found after parsing (unknown region, malformed file): exit 2, one line."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr: ``pytest-co2: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {' '.join(message.split())}\n")


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` first), 100 when unknown."""
    import shutil

    return max(40, shutil.get_terminal_size((100, 24)).columns)


def print_wrapped(text: str, columns: int) -> None:
    from ..fmt import wrap

    for line in wrap(text, columns):
        print(line)


def load(path: str) -> Report:
    """A saved report, or the journal a killed run left beside it; UsageError (one line)."""
    from ..reporting.storage import JOURNAL_SUFFIX, journal_path_for, load_report, read_journal

    journal = path if path.endswith(JOURNAL_SUFFIX) else journal_path_for(path)
    try:
        if path.endswith(JOURNAL_SUFFIX) or (not os.path.exists(path) and os.path.exists(journal)):
            report = read_journal(journal)  # a killed run: its finished tests
            print(
                f"{PROG}: {path} recovered from the journal {journal} of a killed run",
                file=sys.stderr,
            )
            return report
        return load_report(path)
    except ValueError as exc:  # unreadable, not JSON, another schema, a bad field: one line
        raise UsageError(" ".join(str(exc).split())) from None
