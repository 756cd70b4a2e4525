"""Checks against real energy counters. Skipped, with the reason, where the hardware is absent
(this project's CI VM has neither an NVIDIA GPU nor readable RAPL)."""

from __future__ import annotations

import time

import pytest

from pytest_co2.backends import BackendError, make_backend
from pytest_co2.meter import Meter

pytestmark = pytest.mark.hardware


def _open(spec: str):  # type: ignore[no-untyped-def]
    try:
        return make_backend(spec)
    except BackendError as exc:
        pytest.skip(f"no usable {spec} here: {exc}")


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_rapl_counts_a_busy_second() -> None:
    backend = _open("rapl")
    with backend:
        meter = Meter(backend)
        with meter.measure("busy") as w:
            _busy(1.0)
        m = w.measurement
        assert m is not None and m.method == "counter"
        # a busy core on any package draws well over 1 W and far less than 1 kW
        assert 1.0 < m.mean_power_w < 1000.0, m


def test_nvml_counts_gpu_work() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    backend = _open("nvml")
    with backend:
        meter = Meter(backend)
        x = torch.randn(8192, 8192, device="cuda")
        with meter.measure("matmul") as w:
            for _ in range(20):
                for _ in range(10):
                    x = torch.tanh(x @ x)
                w.step()  # the meter synchronizes CUDA at each step
        m = w.measurement
        assert m is not None and m.method in ("counter", "polled")
        assert m.energy_j > 0 and 10.0 < m.mean_power_w < 2000.0, m
