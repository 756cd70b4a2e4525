"""The plugin's own warnings among those a test recorded."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from pytest_co2.backends import BackendWarning


def backend_messages(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    """The texts of the BackendWarnings in ``caught``, in order.

    A recorder also catches what the garbage collector says while the block runs, such as
    another test's leaked file (ResourceWarning): an assertion on every message would fail
    at random.
    """
    return [str(w.message) for w in caught if issubclass(w.category, BackendWarning)]
