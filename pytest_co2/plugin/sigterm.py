"""SIGTERM (a CI timeout, ``kill``) ends the run like Ctrl-C: pytest stops, and the summary
and the reports are written. Only where nobody else handles SIGTERM already."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

# pytest's banner shows where the interrupt was raised (this handler): the message says why
STOPPED = "SIGTERM (a CI timeout or kill): the run was stopped, not a crash"


def install() -> Any:
    """Turn SIGTERM into KeyboardInterrupt; the previous handler (to :func:`restore`), or
    None when nothing was installed (not the main thread, or SIGTERM is handled already)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def on_sigterm(signum: int, frame: Any) -> None:
        if fired:
            return  # the run is ending already: a second SIGTERM must not break its teardown
        fired.append(signum)
        raise KeyboardInterrupt(STOPPED)

    fired: list[int] = []

    return signal.signal(signal.SIGTERM, on_sigterm)


def restore(previous: Any) -> None:
    """Put back the handler :func:`install` replaced."""
    with contextlib.suppress(ValueError, TypeError):  # not the main thread any more: leave it
        signal.signal(signal.SIGTERM, previous)
