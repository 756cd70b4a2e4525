"""The plugin's terminal output with its wrapped lines joined again, so that assertions on it
hold at any terminal width and with any temporary path length."""

from __future__ import annotations

import re

import pytest

HEADER_CONTINUATION = "co2:   "  # the header's wrapped lines (plugin: wrap(..., indent=...))
SUMMARY_CONTINUATION = re.compile(r"  (?=\S)")  # the summary's wrapped lines: two spaces
SUMMARY_TITLE = "co2 emissions summary"
PROFILE_TITLE = "co2 energy profile"  # --co2-profile's section, wrapped the same way


def _join(previous: str, rest: str) -> str:
    # the plugin wraps between words only (a path or a hyphenated word stays whole)
    return previous + " " + rest


def unwrap(lines: list[str]) -> list[str]:
    """``lines`` with each wrapped header entry (``co2: ...``) and each wrapped line of the
    ``co2 emissions summary`` section joined into one line."""
    out: list[str] = []
    in_summary = False
    for line in lines:
        if line.startswith("=") and line.rstrip("=").strip():
            in_summary = SUMMARY_TITLE in line or PROFILE_TITLE in line
        if out and line.startswith(HEADER_CONTINUATION) and out[-1].startswith("co2: "):
            out[-1] = _join(out[-1], line[len(HEADER_CONTINUATION) :])
        elif out and in_summary and SUMMARY_CONTINUATION.match(line):
            out[-1] = _join(out[-1], line[2:])
        else:
            out.append(line)
    return out


def unwrapped(result: pytest.RunResult) -> pytest.LineMatcher:
    """``result.stdout`` with the plugin's wrapped lines joined (see :func:`unwrap`)."""
    return pytest.LineMatcher(unwrap(result.outlines))


def header(result: pytest.RunResult) -> list[str]:
    """The plugin's header entries (``co2: ...``), each on one line."""
    return [line for line in unwrap(result.outlines) if line.startswith("co2: ")]
