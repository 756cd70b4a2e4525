"""Live progress of long measurements on pytest's current terminal line."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from ..measure.meter import Window
from ..reporting.fmt import fmt_num

PROGRESS_AFTER_S = 3.0  # only measurements that run longer than this show progress


class ProgressLine:
    """Rewrites the terminal's current line as pytest left it plus a progress text, past
    output capture, and blanks it again when the test ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._shown = False
        self._width = 0

    def enabled(self) -> bool:
        if xdist_worker(self.config) or self.config.get_verbosity() < 0:
            return False
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        return tr is not None and bool(getattr(tr, "isatty", False))

    def update(self, window: Window) -> None:
        """The meter's progress callback."""
        if window.elapsed_s < PROGRESS_AFTER_S:
            return
        total = f"/{window.total}" if window.total else ""
        self._write(
            f" co2 {window.name}: {window.steps_done}{total} {window.unit}s, "
            f"{window.elapsed_s:.0f} s, {fmt_num(window.energy_so_far_j)} J so far"
        )
        self._shown = True

    def lock_wait(self, state: Any) -> None:
        """The device lock's ``on_wait`` callback: say that the window waits, and for how long."""
        if not self.enabled():
            return
        if state.done:
            self.clear()
        else:
            self._write(" co2 " + state.describe())
            self._shown = True

    def clear(self) -> None:
        """Blank the progress text, keep pytest's line."""
        if self._shown:
            self._write("")
            self._shown = False

    def _write(self, text: str) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        tw = getattr(tr, "_tw", None)
        out = getattr(tw, "_file", None)
        if out is None:
            return
        prefix = getattr(tw, "_current_line", "")
        ctx: Any = (
            capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        )
        with ctx:
            out.write("\r" + prefix + text.ljust(self._width) + ("" if text else "\r" + prefix))
            out.flush()
        self._width = max(self._width, len(text))


def xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
