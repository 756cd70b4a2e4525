"""Run ``pytest_co2.__main__.main`` in-process and capture what it printed."""

from __future__ import annotations

import pytest

from pytest_co2.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``pytest-co2 ARGV``."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err
