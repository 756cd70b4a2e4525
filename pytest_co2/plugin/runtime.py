"""A quiet runtime for stable CPU figures: idle threads sleep instead of spinning.

libgomp (torch's OpenMP) and OpenBLAS (numpy's) let idle worker threads spin for a while
before they sleep; the CPU-time estimate charges that spinning as work, so the same torch
step was charged 3-6x more in some runs than in others on a 2-vCPU VM
(``tools/noise_probe.py``), and freed tensor memory unmapped and faulted in again every step
added 11-15% kernel time. So, before conftests import torch (``pytest_load_initial_conftests``)
and each only where the user did not choose: ``OMP_WAIT_POLICY=PASSIVE``, numpy's OpenBLAS on
one thread, and glibc's trim/mmap thresholds at 1 GiB. The header and JSON say what was done;
``--co2-no-quiet-runtime`` leaves the runtime alone.

The environment is set before conftests run (:func:`apply_environment`); the process's own
settings, which need ``ctypes`` (OpenBLAS's thread count where numpy was imported first, and
glibc's thresholds), are made on first use (:class:`QuietRuntime`): when the header is shown
or a test measures, before any measured code runs. A run that measures nothing and shows no
header (``-q``) does not import ``ctypes``.
"""

from __future__ import annotations

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


def apply_environment(env: MutableMapping[str, str], *, numpy_loaded: bool) -> list[str]:
    """The environment's part (before torch or numpy is imported); what was done."""
    done: list[str] = []
    if VARIABLE in env:
        done.append(f"{VARIABLE}={env[VARIABLE]} as set by the user")
    elif "torch" in sys.modules:
        done.append(f"torch was imported before pytest-co2 could set {VARIABLE}=PASSIVE")
    else:
        env[VARIABLE] = "PASSIVE"
        done.append(f"{VARIABLE}=PASSIVE")
    if not _blas_chosen(env) and not numpy_loaded:
        env["OPENBLAS_NUM_THREADS"] = "1"
        done.append("OpenBLAS on 1 thread")
    return done


def apply_process(env: Mapping[str, str]) -> list[str]:
    """The process's part, through ``ctypes``: OpenBLAS on one thread where numpy was loaded
    before the environment could say so, and glibc's thresholds; what was done."""
    done: list[str] = []
    if not _blas_chosen(env) and "numpy" in sys.modules and _one_blas_thread():
        done.append("OpenBLAS on 1 thread")
    if _keep_freed_memory():
        done.append("glibc keeps freed memory up to 1 GiB")
    return done


def line(done: Sequence[str]) -> str:
    return (
        "runtime: " + ", ".join(done) + " (idle threads sleep, not spin, so CPU figures are "
        "stable; --co2-no-quiet-runtime keeps the defaults)"
    )


class QuietRuntime:
    """The quiet runtime of a pytest process: the environment set at once, the process's part
    made on the first :meth:`line` (the header, the first measurement, the JSON)."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self._env = os.environ if environ is None else environ
        self._done = apply_environment(self._env, numpy_loaded="numpy" in sys.modules)
        self._line: str | None = None

    def line(self) -> str:
        """What was done, in one line; the process's part is made on the first call."""
        if self._line is None:
            self._line = line(self._done + apply_process(self._env))
        return self._line


def _blas_chosen(env: Mapping[str, str]) -> bool:
    return "OPENBLAS_NUM_THREADS" in env or "OMP_NUM_THREADS" in env  # the user's choice


def _one_blas_thread() -> bool:
    import ctypes

    numpy_dir = os.path.dirname(str(getattr(sys.modules["numpy"], "__file__", "") or ""))
    libs = os.path.join(numpy_dir, os.pardir, "numpy.libs")
    try:
        names = sorted(n for n in os.listdir(libs) if "openblas" in n)
    except OSError:
        names = []
    for path in (os.path.join(libs, n) for n in names):
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
                return True
    return False


def _keep_freed_memory() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)) and bool(
        mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
    )
