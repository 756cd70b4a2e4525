"""The emulator itself: its sensors behave as documented (exact on the fake clock)."""

from __future__ import annotations

import pytest
from gpu_emulator import NVML_FI_DEV_POWER_INSTANT, EmuGpu, Node, Trace


def test_trace_integral_is_exact_with_warm_idle() -> None:
    trace = Trace(50.0, warm_idle_w=80.0).burst(10.0, 2.0, 300.0)
    assert trace.energy_j(9.0, 14.0) == 50.0 + 600.0 + 2 * 80.0
    assert trace.power_w(9.9) == 50.0 and trace.power_w(12.0) == 80.0


def test_counter_refreshes_every_100_ms_and_lags_power() -> None:
    node = Node([EmuGpu(trace=Trace(100.0))])
    nvml = node.nvml()
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    node.clock.t = 10.0
    e0 = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    node.clock.t = 10.05  # no refresh yet
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(h) == e0
    node.clock.t = 10.1
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(h) - e0 == 10_000  # 100 W x 0.1 s
    node.work(0, 1.0, 400.0)  # 11.1 now
    assert nvml.nvmlDeviceGetPowerUsage(h) == pytest.approx(400_000, abs=1)  # the mean of 1 s
    node.clock.advance(0.5)
    assert nvml.nvmlDeviceGetPowerUsage(h) == pytest.approx(250_000, abs=1)  # still half burst


def test_instant_sensor_sees_a_quarter_of_the_time() -> None:
    node = Node([EmuGpu(trace=Trace(100.0))])
    node.gpus[0].trace.square(10.0, 20.0, 500.0, 0.1, 0.25)  # on exactly when the sensor looks
    nvml = node.nvml()
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    node.clock.t = 15.05
    (v,) = nvml.nvmlDeviceGetFieldValues(h, [NVML_FI_DEV_POWER_INSTANT])
    assert v.valueType == 1 and v.value.uiVal == 500_000  # the true mean is 200 W
    assert node.true_energy_j(0, 10.0, 20.0) == pytest.approx(2000.0)
