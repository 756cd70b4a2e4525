"""Live progress of long measurements on pytest's current terminal line."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from ..fmt import fmt_num

if TYPE_CHECKING:
    from ..measure.window import Window

PROGRESS_AFTER_S = 3.0  # only measurements that run longer than this show progress
LOG_EVERY_S = 30.0  # without a terminal (CI logs): a line at most this often per measurement


class ProgressLine:
    """Rewrites the terminal's current line as pytest left it plus a progress text, past
    output capture, and blanks it again when the test ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._shown = False
        self._width = 0
        self._logged: dict[int, float] = {}  # window -> elapsed_s of its last log line

    def enabled(self) -> bool:
        if xdist_worker(self.config) or self.config.get_verbosity() < 0:
            return False
        return self.config.pluginmanager.get_plugin("terminalreporter") is not None

    def _tty(self) -> bool:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        return bool(getattr(tr, "isatty", False))

    def update(self, window: Window) -> None:
        """The meter's progress callback: a live line on a terminal, and in a CI log a line
        at most every 30 s for measurements that run long."""
        elapsed = window.elapsed_s
        if elapsed < PROGRESS_AFTER_S:
            return
        text = progress_text(window)
        if self._tty():
            self._write(" " + text)
            self._shown = True
            return
        last = self._logged.get(id(window))
        if (last is None and elapsed >= 10.0) or (
            last is not None and elapsed - last >= LOG_EVERY_S
        ):
            self._logged[id(window)] = elapsed
            self._log(text)

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

    def _log(self, text: str) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        ctx: Any = (
            capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        )
        if tr is None:
            return
        with ctx:
            tr.write_line(text)

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


def progress_text(window: Window) -> str:
    """``co2 train: 12/40 iterations, 38 s, 1,234 J so far, about 90 s left``."""
    done, total = window.steps_done, window.total
    text = (
        f"co2 {window.name}: {done}{f'/{total}' if total else ''} {window.unit}s, "
        f"{window.elapsed_s:.0f} s, {fmt_num(window.energy_so_far_j)} J so far"
    )
    if total and done and total > done and window.measured_s > 0:
        text += f", about {window.measured_s / done * (total - done):.0f} s left"
    return text


def xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
