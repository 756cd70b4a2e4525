"""Where this process sits in a pytest-xdist run, without importing xdist.

Transport needs no code of its own: pytest serializes a test report with
``report.__dict__`` (``_pytest.reports._report_to_json``) and rebuilds it with the extra
keys as attributes (``TestReport(**extra)``), so the JSON-safe ``co2_entries`` and
``co2_budget`` that a worker sets in ``pytest_runtest_makereport`` reach the controller's
``pytest_runtest_logreport`` as they are (``tests/test_xdist.py`` checks the round trip).
"""

from __future__ import annotations

import os
from typing import Any, Literal

Role = Literal["worker", "controller", "single"]


def role(config: Any) -> Role:
    """``worker`` in an xdist worker, ``controller`` in the process that drives workers.

    Only ``config.workerinput`` makes a worker: a pytest run nested in a worker (pytester)
    inherits ``PYTEST_XDIST_WORKER`` but is a session of its own that must report.
    """
    if hasattr(config, "workerinput"):
        return "worker"
    option = getattr(config, "option", None)
    if getattr(option, "dist", "no") not in (None, "no") and getattr(option, "tx", None):
        return "controller"
    return "single"


def under_xdist(config: Any) -> bool:
    """Whether processes of an xdist run measure concurrently with this one: a worker, a
    controller, or a process started inside a worker (``PYTEST_XDIST_WORKER`` is set)."""
    return role(config) != "single" or bool(os.environ.get("PYTEST_XDIST_WORKER"))


def worker_count(config: Any) -> int:
    """How many xdist workers run (1 without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "workercount" in workerinput:
        return int(workerinput["workercount"])
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
        try:
            return int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
        except ValueError:
            pass
    if role(config) == "controller":
        return len(config.option.tx)
    return 1
