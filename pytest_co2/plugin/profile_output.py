"""``--co2-profile``'s outputs, where the run is reported (the single process or the xdist
controller): the collapsed stacks and the speedscope file, the top entries in the terminal
summary and the ``profile`` block of the JSON report. The recording is ``profile``."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ..files import write_text_atomic
from ..reporting.profile import Profile, top_lines

TITLE = "co2 energy profile"  # the summary section
TOP = 5  # entries in the summary and the report's ``top``
WORKER_KEY = "pytest_co2_profile"  # a worker's tree in xdist's ``workeroutput``


def speedscope_path(path: str) -> str:
    """Where the speedscope file goes beside the collapsed stacks at ``path``:
    ``co2-profile.folded`` -> ``co2-profile.speedscope.json``."""
    return os.path.splitext(path)[0] + ".speedscope.json"


class ProfileOutput:
    """Writes the profile's files at the end of the run and prints its summary lines."""

    def __init__(self, profile: Profile, path: str, *, show: bool = True) -> None:
        self.profile = profile
        self.path = path
        self.show = show  # the top entries (not under --co2-report=off)
        self.written: list[str] = []
        self.errors: list[str] = []

    def pytest_co2_update_json(self, config: pytest.Config, report: dict[str, Any]) -> None:
        report["profile"] = self.profile.to_dict(TOP)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        import json

        speedscope = json.dumps(self.profile.speedscope(), separators=(",", ":"), allow_nan=False)
        collapsed = "".join(line + "\n" for line in self.profile.collapsed())
        for path, text in ((self.path, collapsed), (speedscope_path(self.path), speedscope)):
            try:
                write_text_atomic(path, text)
            except OSError as exc:
                self.errors.append(f"co2: could not write the profile to {path}: {exc}")
            else:
                self.written.append(path)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from ..fmt import printable, wrap
        from .terminal import terminal_width

        tr = terminalreporter
        width = terminal_width(tr)
        lines = top_lines(self.profile, TOP) if self.show else []
        lines += [f"co2: {note}" for note in self.profile.notes]
        if self.written:
            lines.append("co2 profile written to " + " and ".join(self.written))
        if lines or self.errors:
            tr.write_sep("=", TITLE)
        for line in lines:
            for part in wrap(line, width):
                tr.write_line(printable(part))
        for error in self.errors:
            tr.write_line(printable(error), yellow=True)


class ProfileXdist:
    """The controller's side under xdist: each worker's tree, when the worker ends."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if not data:
            return
        worker = str(getattr(getattr(node, "gateway", None), "id", "worker"))
        self.profile.add(worker, data.get("tests", ()))
        for note in data.get("notes", ()):
            if note not in self.profile.notes:
                self.profile.notes.append(note)
