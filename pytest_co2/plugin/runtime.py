"""A quiet runtime for stable CPU figures: idle threads sleep instead of spinning.

libgomp (torch's OpenMP) and OpenBLAS (numpy's) let idle worker threads spin for a while
before they sleep; the CPU-time estimate charges that spinning as work, so the same torch
step was charged 3-6x more in some runs than in others on a 2-vCPU VM
(``tools/noise_probe.py``), and freed tensor memory unmapped and faulted in again every step
added 11-15% kernel time. So, before conftests import torch (``pytest_load_initial_conftests``)
and each only where the user did not choose: ``OMP_WAIT_POLICY=PASSIVE``, numpy's OpenBLAS on
one thread, and glibc's trim/mmap thresholds at 1 GiB. The header and JSON say what was done;
``--co2-no-quiet-runtime`` leaves the runtime alone.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from ..options import OPTION

VARIABLE = "OMP_WAIT_POLICY"
_OPTION = OPTION["quiet_runtime"]
ENV_SWITCH = _OPTION.env  # PYTEST_CO2_QUIET_RUNTIME
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_KEEP_BYTES = 1 << 30


def wanted(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether the quiet runtime is on: the command line, then the environment (ini values
    are read too late: the runtime may be loaded by then)."""
    for arg in reversed(list(args)):
        if arg == _OPTION.negative_flag_name():
            return False
        if arg == _OPTION.flag_name():
            return True
    value = environ.get(ENV_SWITCH, "").strip().lower()
    return value not in ("0", "false", "no", "off")


def apply(environ: MutableMapping[str, str] | None = None, *, process: bool = True) -> str:
    """Quiet the runtime where the user did not choose; return what was done (one line).
    ``process=False`` changes only ``environ`` (tests)."""
    env = os.environ if environ is None else environ
    done: list[str] = []
    if VARIABLE in env:
        done.append(f"{VARIABLE}={env[VARIABLE]} as set by the user")
    elif "torch" in sys.modules:
        done.append(f"torch was imported before pytest-co2 could set {VARIABLE}=PASSIVE")
    else:
        env[VARIABLE] = "PASSIVE"
        done.append(f"{VARIABLE}=PASSIVE")
    blas = _one_blas_thread(env, process)
    if blas:
        done.append(blas)
    if process and _keep_freed_memory():
        done.append("glibc keeps freed memory up to 1 GiB")
    return (
        "runtime: " + ", ".join(done) + " (idle threads sleep, not spin, so CPU figures are "
        "stable; --co2-no-quiet-runtime keeps the defaults)"
    )


def _one_blas_thread(env: MutableMapping[str, str], process: bool) -> str | None:
    if "OPENBLAS_NUM_THREADS" in env or "OMP_NUM_THREADS" in env:
        return None  # the user's choice
    if "numpy" not in sys.modules or not process:
        env["OPENBLAS_NUM_THREADS"] = "1"
        return "OpenBLAS on 1 thread"
    numpy_dir = os.path.dirname(str(getattr(sys.modules["numpy"], "__file__", "") or ""))
    pattern = os.path.join(numpy_dir, os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(pattern):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in (
            "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            if hasattr(lib, name):
                getattr(lib, name)(1)
                return "OpenBLAS on 1 thread"
    return None


def _keep_freed_memory() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)) and bool(
        mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
    )
