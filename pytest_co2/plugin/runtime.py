"""A quiet runtime for stable CPU figures: idle OpenMP threads sleep instead of spinning.

libgomp (torch's OpenMP) lets idle worker threads spin for a while before they sleep; the
CPU-time estimate charges that spinning as work, so the same torch step was charged 3-6x
more in some runs than in others on a 2-vCPU VM (``tools/noise_probe.py``). With
``OMP_WAIT_POLICY=PASSIVE`` they sleep at once. The variable is read when the OpenMP
runtime loads, so it is set before conftests are imported (``pytest_load_initial_conftests``)
and only when the user did not set it; the header says what was done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence

VARIABLE = "OMP_WAIT_POLICY"
ENV_SWITCH = "PYTEST_CO2_QUIET_RUNTIME"


def wanted(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether the quiet runtime is on: the command line, then the environment (ini values
    are read too late: the runtime may be loaded by then)."""
    for arg in reversed(list(args)):
        if arg == "--co2-no-quiet-runtime":
            return False
        if arg == "--co2-quiet-runtime":
            return True
    value = environ.get(ENV_SWITCH, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def apply(environ: MutableMapping[str, str] | None = None) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless set; return what was done (for the header)."""
    env = os.environ if environ is None else environ
    if VARIABLE in env:
        return f"runtime: {VARIABLE}={env[VARIABLE]} as set by the user"
    if "torch" in sys.modules:
        return f"runtime: torch was imported before pytest-co2 could set {VARIABLE}=PASSIVE"
    env[VARIABLE] = "PASSIVE"
    return (
        f"runtime: {VARIABLE}=PASSIVE (idle OpenMP threads sleep, not spin, so CPU figures are "
        "stable; --co2-no-quiet-runtime keeps the default)"
    )
