"""The backend boundary: every reading a backend returns is checked before a window uses it,
and a read that does not return within a bound is abandoned.

A backend (built in or made by a ``pytest_co2_make_backend`` hook) may misbehave: return
``None``, the wrong number of values, text, NaN, a value near the float limit, or never
return. A bad reading raises :class:`ReadingError` where it is read; the meter treats it as
a lost device (the window ends, partial, with the reason) and the user's test never sees
the plugin's internals. A read that hangs past the bound raises :class:`ReadTimeout`, and
every later read of that backend fails at once: the session goes on and writes its reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, BackendError

if TYPE_CHECKING:
    import queue

__all__ = ["MAX_READING_J", "ReadTimeout", "ReadingError", "check_reading", "guard_backend"]

#: The largest cumulative reading accepted (J): about 30 GW for a year, beyond any device
#: (an NVML counter, in mJ in 64 bits, ends at 1.8e16 J). Sums of readings stay finite.
MAX_READING_J = 1e18


class ReadingError(BackendError):
    """A backend returned something that is not a reading."""


class ReadTimeout(BackendError):
    """A backend read did not return within the bound."""


def check_reading(values: Any, n_devices: int, what: str = "read_j()") -> tuple[float, ...]:
    """``values`` as a tuple of floats, one per device, each finite and within
    +-:data:`MAX_READING_J`; ReadingError (one line) naming what is wrong."""
    if values.__class__ is tuple and len(values) == n_devices:  # the usual reading, as is
        for v in values:
            if v.__class__ is not float or not -MAX_READING_J <= v <= MAX_READING_J:
                break
        else:
            return values
    if not isinstance(values, (list, tuple)):
        raise ReadingError(
            f"the backend's {what} returned {_show(values)}: expected a list of {n_devices} "
            "numbers (joules, one per device)"
        )
    if len(values) != n_devices:
        raise ReadingError(
            f"the backend's {what} returned {len(values)} values for {n_devices} device(s): "
            "expected one per device"
        )
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ReadingError(
                f"the backend's {what} returned {_show(v)} for device {i}: expected a number"
            )
        if not -MAX_READING_J <= v <= MAX_READING_J:  # False for NaN
            raise ReadingError(
                f"the backend's {what} returned {_show(v)} for device {i}: expected a finite "
                f"number of joules within +-{MAX_READING_J:g}"
            )
        out.append(float(v))
    return tuple(out)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _BoundedCaller:
    """Runs calls on one daemon thread and waits for each at most ``timeout_s``; after a
    timeout the thread is abandoned (it may never return) and every later call fails."""

    def __init__(self, timeout_s: float, what: str) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self.hung: str | None = None
        import queue  # here: a backend whose reads never block needs none

        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], list[Any], threading.Event]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            fn, box, done = self._jobs.get()
            try:
                box.append((True, fn()))
            except BaseException as exc:  # handed back to the caller
                box.append((False, exc))
            done.set()

    def call(self, fn: Callable[[], Any]) -> Any:
        if self.hung is not None:
            raise ReadTimeout(self.hung)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pytest-co2-read", daemon=True)
            self._thread.start()
        box: list[Any] = []
        done = threading.Event()
        self._jobs.put((fn, box, done))
        if not done.wait(self.timeout_s):
            self.hung = (
                f"{self.what} did not return within {self.timeout_s:g} s "
                "(--co2-read-timeout): the device is dropped for the rest of the session"
            )
            raise ReadTimeout(self.hung)
        ok, value = box[0]
        if not ok:
            raise value
        return value


def guard_backend(backend: Backend, timeout_s: float | None) -> Backend:
    """Check ``backend``'s readings at the boundary (its ``read_j`` and ``read_power_w``
    replaced on the instance, so that it stays what it is), each read bounded by
    ``timeout_s`` (None or 0: unbounded, read in the caller's thread). A ``close`` after a
    hung read is skipped: it would hang too. A backend with its own clock (a simulated one)
    is read in the caller's thread: its energy is a function of that clock, read there; so is
    one whose reads never block (``Backend.reads_never_block``: the CPU estimate)."""
    raw_read: Callable[[], Any] = backend.read_j
    raw_power: Callable[[], Any] = backend.read_power_w
    raw_close: Callable[[], None] = backend.close
    bounded = (
        timeout_s
        and not hasattr(backend, "clock")
        and not getattr(backend, "reads_never_block", False)
    )
    caller = _BoundedCaller(timeout_s or 0.0, f"the backend {backend.name!r}") if bounded else None

    def read_j() -> Sequence[float]:
        values = raw_read() if caller is None else caller.call(raw_read)
        return check_reading(values, len(backend.devices))

    def read_power_w() -> Sequence[float] | None:
        values = raw_power() if caller is None else caller.call(raw_power)
        if values is None:
            return None
        if not isinstance(values, (list, tuple)) or len(values) != len(backend.devices):
            raise ReadingError(
                f"the backend's read_power_w() returned {_show(values)}: expected None or "
                f"{len(backend.devices)} numbers (watts, NaN where a device has none)"
            )
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise ReadingError(
                f"the backend's read_power_w() returned {_show(values)}: expected numbers"
            )
        return tuple(float(v) for v in values)

    def close() -> None:
        if caller is None or caller.hung is None:
            raw_close()

    backend.read_j = read_j  # type: ignore[method-assign]
    backend.read_power_w = read_power_w  # type: ignore[method-assign]
    backend.close = close  # type: ignore[method-assign]
    return backend
