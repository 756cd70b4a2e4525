"""The tests gate_check.py runs (numpy and torch training steps, as the README writes
them), the conftest of ``--quiet-runtime`` and the co-tenant of the "loaded" condition."""

from __future__ import annotations

from noise_probe import TORCH_NET

WORK_ENV = "GATE_CHECK_WORK"  # 1.0 unchanged, 1.25 for +25% work per step

REFERENCE_ENV = "GATE_CHECK_REFERENCE"  # 1: each test first measures a fixed reference

#: A short fixed numpy workload measured in every run (``--reference``): its change between
#: runs is the machine's drift, divided out by the offline decisions.
REFERENCE = f'''

def reference(co2_meter):
    if os.environ.get("{REFERENCE_ENV}") != "1":
        return
    import numpy as np

    a = np.random.default_rng(1).standard_normal((192, 192)) * 0.1
    for _ in co2_meter.steps(20, warmup=3, name="reference"):
        for _ in range(6):
            a = np.tanh(a @ a)
'''

NUMPY_TEST = f'''
import os

import numpy as np

REPS = round(4 * float(os.environ.get("{WORK_ENV}", "1")))  # 4 unchanged, 5 at +25%


{REFERENCE}

def test_numpy_train(co2_meter):
    reference(co2_meter)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 1024)), rng.standard_normal((128, 256))
    w = rng.standard_normal((1024, 256)) * 0.01
    for _ in co2_meter.steps(20, warmup=3, name="train"):
        for _ in range(REPS):  # the identical op each time: the work scales with REPS exactly
            pred = np.tanh(x @ w)
            grad = x.T @ ((pred - y) * (1 - pred**2)) / 128
'''

TORCH_TEST = f'''
import os
{TORCH_NET}
REPS = round(4 * float(os.environ.get("{WORK_ENV}", "1")))  # 4 unchanged, 5 at +25%
THREADS = int(os.environ.get("GATE_CHECK_TORCH_THREADS", "0"))


{REFERENCE}

def test_torch_train(co2_meter):
    reference(co2_meter)
    if THREADS:
        torch.set_num_threads(THREADS)
    net, opt, x, y = make_net()
    x, y = x[:16], y[:16]
    for _ in co2_meter.steps(20, warmup=3, name="train"):
        train_step(net, opt, x, y, repeat=REPS)  # the identical step REPS times
'''

TESTS = {"numpy": NUMPY_TEST, "torch": TORCH_TEST}

#: What the plugin could do in-process before a test imports torch (``--quiet-runtime``):
#: OpenMP threads that sleep instead of spinning at barriers (libgomp reads the variable
#: when torch loads it), numpy's OpenBLAS on one thread (its threads spin too, and numpy is
#: already imported, so only its own setter works), and glibc thresholds high enough that
#: freed tensor memory is kept instead of being unmapped and faulted in again every step
#: (mallopt works at any time).
QUIET_CONFTEST = """
import ctypes
import glob
import os

import numpy

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*")
for _path in glob.glob(_libs):
    _blas = ctypes.CDLL(_path)
    for _name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"):
        if hasattr(_blas, _name):
            getattr(_blas, _name)(1)
            break
_libc = ctypes.CDLL(None)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
_libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)  # returns 1 when accepted (glibc 2.36 here)
"""


#: A co-tenant: a CPU-bound Python loop that also walks a 32 MiB buffer (cache and memory
#: bandwidth, as a neighbour's job would), started twice for the "loaded" condition.
HOG = """
import sys
buf = bytearray(32 << 20)
i = 0
while True:
    buf[i] = (buf[i] + 1) & 255
    i = (i + 4099) % len(buf)
"""
