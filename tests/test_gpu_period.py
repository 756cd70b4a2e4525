"""The counter period measured at open, on the emulator with a probe loop that runs late
(a busy machine descheduling it): judged from the changes against the probe's own reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gpu_emulator import EmuGpu, Node, Trace
from test_gpu_backend import MY_PID, align, energies, meter_of, unlocked_guard

from pytest_co2.backends.amdsmi import AmdsmiBackend
from pytest_co2.backends.gpu.probe import AT_MOST, MEASURED, SPARSE, UNCHANGED, probe_periods
from pytest_co2.backends.nvml import NvmlBackend


def late_sleep(node: Node, gaps_s: Callable[[int], float]) -> Callable[[float], None]:
    """A sleep that wakes late: the ``k``-th call moves the clock by ``gaps_s(k)``."""
    calls = [0]

    def sleep(_seconds: float) -> None:
        calls[0] += 1
        node.clock.advance(gaps_s(calls[0]))

    return sleep


def open_nvml(node: Node, sleep: Callable[[float], None]) -> NvmlBackend:
    return NvmlBackend(
        node.nvml(), clock=node.clock, sleep=sleep, visible_devices=None,
        nvidia_visible_devices=None, pid=MY_PID, gpus="all",
    )  # fmt: skip


def open_amd(node: Node, sleep: Callable[[float], None]) -> AmdsmiBackend:
    return AmdsmiBackend(
        node.amdsmi(), clock=node.clock, sleep=sleep, rocr_visible_devices=None,
        hip_visible_devices=None, cuda_visible_devices=None, pid=MY_PID, gpus="all",
    )  # fmt: skip


def amd_gpu(**kw: Any) -> EmuGpu:
    return EmuGpu(name="AMD Instinct MI250X", counter_period_s=0.01, **kw)


def test_a_probe_descheduled_now_and_then_still_measures_the_period() -> None:
    node = Node([amd_gpu(counter_phase_s=0.0033)])
    every_25th_late = late_sleep(node, lambda k: 0.05 if k % 25 == 0 else 0.001)
    with open_amd(node, every_25th_late) as backend:
        assert backend.counter_periods["amdgpu:0"]["how"] == MEASURED
        assert backend.devices[0].update_period_s == pytest.approx(0.01, abs=1e-9)


def test_a_probe_too_late_for_every_read_takes_the_documented_period() -> None:
    node = Node([amd_gpu()])
    with open_amd(node, late_sleep(node, lambda k: 0.08)) as backend:
        fact = backend.counter_periods["amdgpu:0"]
        assert fact["how"] == AT_MOST and fact["probe_changes"] == fact["probe_reads"] == 5
        assert backend.devices[0].update_period_s == 0.01  # AMD's documented 10 ms, not 80 ms
        (note,) = [n for n in backend.notes if "energy counter" in n]
        assert "period taken as 10 ms (the documented 10 ms): at open every one of 5 reads" in note
        assert "the read gap is not taken as the period" in note


def test_the_documented_period_is_capped_by_what_the_reads_prove() -> None:
    node = Node([EmuGpu(counter_period_s=0.02)])  # NVML's documented period is 100 ms
    with open_nvml(node, late_sleep(node, lambda k: 0.06)) as backend:
        assert backend.counter_periods["gpu:0"]["how"] == AT_MOST
        # 6 reads 60 ms apart all saw a change: 6 refreshes within 360 ms, so <= 72 ms
        assert backend.devices[0].update_period_s == pytest.approx(0.072, abs=1e-9)
        assert any("capped at the 72 ms the reads prove" in n for n in backend.notes)


def test_reads_too_sparse_to_tell_fall_back_to_the_documented_period() -> None:
    node = Node([EmuGpu(counter_period_s=0.01)])
    with open_nvml(node, late_sleep(node, lambda k: 0.008)) as backend:
        assert backend.counter_periods["gpu:0"]["how"] == SPARSE
        assert backend.devices[0].update_period_s == 0.1
        assert any(
            "assumed to update every 100 ms (the documented period): at open the probe's "
            "reads, a median 8 ms apart (it ran late), were too sparse" in n
            for n in backend.notes
        )


def test_a_counter_that_did_not_change_at_open_is_said_so() -> None:
    node = Node([EmuGpu(counter_period_s=1.0, counter_phase_s=0.5)])
    node.clock.t = 1000.0  # the probe ends before the next refresh (1000.5)
    with open_nvml(node, node.clock.sleep) as backend:
        assert backend.counter_periods["gpu:0"]["how"] == UNCHANGED
        assert backend.devices[0].update_period_s == 0.1
        assert any("the counter did not change in 351 reads at open" in n for n in backend.notes)


def test_four_identical_tests_after_a_late_probe_count_the_same() -> None:
    """Four 0.4 s windows at 350 W on a 10 ms counter, after a probe that ran 80 ms late:
    each is 140 J, from the counter, trusted (before: a period of 80 ms, so these windows
    were too short for it: power x time at the two ends, or up to 20% quantization error)."""
    node = Node([amd_gpu(trace=Trace(70.0), sensor_period_s=0.1, sensor_window_s=0.025)])
    with open_amd(node, late_sleep(node, lambda k: 0.08)) as backend:
        backend.sleep = node.clock.sleep
        meter = meter_of(backend, unlocked_guard(backend))
        figures = []
        for k in range(4):
            align(node, 0.01)
            node.clock.advance(0.013 * k)  # each test starts at another point of the sensor
            align(node, 0.01)
            with meter.measure(f"test {k}") as m:
                node.work(0, 0.4, 350.0)
            figures.append(energies(m.measurement)["amdgpu:0"])
            notes = " ".join(m.measurement.notes)
            assert "instant power x time" not in notes and "quantization error" not in notes
        assert figures == pytest.approx([140.0] * 4, abs=2e-5)  # one 15.3 uJ tick


@pytest.mark.parametrize("gap_s", [0.001, 0.05])
def test_probe_periods_on_a_pure_reader(gap_s: float) -> None:
    t = [0.0]
    period_s = 0.01

    def read() -> list[int | None]:
        return [int(t[0] / period_s + 1e-9), None]

    def sleep(_: float) -> None:
        t[0] += gap_s

    a, b = probe_periods(read, lambda: t[0], sleep, 0.35)
    assert (a.kind, b.kind) == ((MEASURED if gap_s < 0.005 else AT_MOST), UNCHANGED)
    # 7 reads 50 ms apart, each saw a change: 7 refreshes in 350 ms, so at most 350 / 6 ms
    assert a.period_s(0.1) == pytest.approx(0.01 if gap_s < 0.005 else 0.35 / 6, abs=1e-9)


def test_the_json_says_how_each_counter_period_was_obtained() -> None:
    import datetime as dt
    import json

    from pytest_co2.reporting.session import SessionInfo, session_info

    node = Node([amd_gpu()])
    with open_amd(node, late_sleep(node, lambda k: 0.08)) as backend:
        info = session_info({}, backend, dt.datetime.now())
    d = json.loads(json.dumps(info.to_dict()))
    assert d["gpu_counter_periods"] == {
        "amdgpu:0": {
            "period_s": 0.01, "how": "at most", "probe_reads": 5, "probe_changes": 5,
            "probe_read_gap_s": pytest.approx(0.08, abs=1e-9),
        }
    }  # fmt: skip
    assert any("the read gap is not taken as the period" in n for n in d["backend_notes"])
    assert SessionInfo.from_dict(d).to_dict()["gpu_counter_periods"] == d["gpu_counter_periods"]


def test_a_window_after_refreshes_not_read_yet_starts_from_them() -> None:
    """A fine-sampled window's base is the counter as its first reading sees it (before: the
    last value read, so a window of >= one period also counted the refreshes before it)."""
    node = Node([EmuGpu(trace=Trace(100.0))])
    with open_nvml(node, node.clock.sleep) as backend:
        meter = meter_of(backend, unlocked_guard(backend))
        node.clock.advance(0.25)  # the counter refreshes; nothing reads it
        align(node)
        with meter.measure("one second") as m:
            node.clock.advance(1.0)
        assert energies(m.measurement) == {"gpu:0": 100.0}


def test_an_xdist_workers_facts_say_how_its_counter_periods_were_obtained() -> None:
    from types import SimpleNamespace

    from pytest_co2.options import Settings
    from pytest_co2.plugin.provider import BackendProvider

    node = Node([amd_gpu()])
    backend = open_amd(node, late_sleep(node, lambda k: 0.08))
    config = SimpleNamespace(hook=SimpleNamespace(pytest_co2_make_backend=lambda **kw: backend))
    provider = BackendProvider(config, Settings(backend="amdsmi"))  # type: ignore[arg-type]
    assert provider.backend is backend
    facts = provider.facts().to_dict()  # what a worker sends the controller (and the JSON)
    assert facts["gpu_counter_periods"]["amdgpu:0"]["how"] == AT_MOST
    assert facts["gpu_counter_periods"]["amdgpu:0"]["period_s"] == 0.01
    backend.close()
