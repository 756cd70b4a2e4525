"""The run's output folder (``--co2-out``): where the JSON, the markdown and the paper report
go unless given, and the last line that names what was written."""

from __future__ import annotations

import argparse
import os

import pytest

DEFAULT_OUT = "co2-out"


def out_dir(text: str) -> str | None:
    """``--co2-out``: a folder (created when needed) or ``off``."""
    if text.strip().lower() in ("off", "none", "no", ""):
        return None
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"invalid --co2-out {text!r}: a file, expected a folder or off"
        )
    return text


def _user_set(config: pytest.Config, dest: str) -> bool:
    """Did the user give the plugin's option ``dest`` (command line, environment or ini)?"""
    if getattr(config.option, "co2_" + dest, None) is not None:
        return True
    if os.environ.get("PYTEST_CO2_" + dest.upper(), "").strip():
        return True
    try:
        return bool(str(config.getini("co2_" + dest) or "").strip())
    except ValueError:
        return False


def default_outputs(config: pytest.Config) -> dict[str, str]:
    """Put the JSON, the markdown and the paper report into ``--co2-out`` unless given.

    Runs before the plugin's (trylast) ``pytest_configure`` resolves its settings, so the
    plugin writes the JSON and markdown there as if they had been on the command line.
    Returns what goes where (empty with ``--co2-out=off``).
    """
    out = config.getoption("co2_bench_out")
    if out is None or not hasattr(config.option, "co2_json"):
        return {}
    written: dict[str, str] = {}
    for dest, name in (("json", "co2.json"), ("markdown", "co2.md")):
        if not _user_set(config, dest):
            setattr(config.option, "co2_" + dest, os.path.join(out, name))
            written[dest] = os.path.join(out, name)
    if config.getoption("co2_bench_paper_report") is None:
        config.option.co2_bench_paper_report = os.path.join(out, "paper.md")
        written["paper"] = os.path.join(out, "paper.md")
    if written:
        os.makedirs(out, exist_ok=True)
    return written


def outputs_line(out: str | None, written: list[str]) -> str | None:
    """``co2 outputs in co2-out/: co2.json, co2.md, paper.md, 4 charts (paper-fig*.png)``

    Files outside ``out`` (given with --co2-json ...) are named by their path."""
    files = [p for p in written if os.path.isfile(p)]
    if not files:
        return None
    folder = os.path.normpath(out) if out is not None else None
    inside = [os.path.basename(p) for p in files if os.path.dirname(p) == folder]
    outside = [p for p in files if os.path.dirname(p) != folder]
    charts = [n for n in inside if n.endswith(".png")]
    names = [n for n in inside if not n.endswith(".png")]
    if charts:
        stem = os.path.commonprefix(charts)  # noqa: RUF071 - file names, not paths
        names.append(f"{len(charts)} chart{'s' * (len(charts) > 1)} ({stem}*.png)")
    if not inside:
        return "co2 outputs: " + ", ".join(outside)
    return f"co2 outputs in {folder}/: " + ", ".join(names + outside)
