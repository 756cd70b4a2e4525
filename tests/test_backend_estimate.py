"""The CPU-time x TDP and RSS x W/GB estimate."""

from __future__ import annotations

import os
import resource
import statistics
import time
import warnings

import pytest

from pytest_co2.backends import BackendError, BackendWarning, Method
from pytest_co2.backends import estimate as est
from pytest_co2.backends.estimate import (
    DEFAULT_TDP_W,
    MEMORY_W_PER_GB,
    EstimateBackend,
    cpu_model,
    lookup_tdp,
    normalize_cpu_name,
    threads_per_package,
)

GIB = 2**30


class Fake:
    """A settable value, callable like the injected clock / CPU time / RSS readers."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


def make(cpu: Fake, rss: Fake, clock: Fake, **kw: object) -> EstimateBackend:
    kw.setdefault("cpu_tdp_w", 100.0)
    kw.setdefault("n_cpus", 4)
    return EstimateBackend(process_times=cpu, rss_bytes=rss, clock=clock, **kw)  # type: ignore[arg-type]


def test_exact_with_fake_sources() -> None:
    cpu, rss, clock = Fake(10.0), Fake(2 * GIB), Fake(1000.0)
    backend = make(cpu, rss, clock)
    assert backend.cpu_w_per_thread == 25.0
    assert list(backend.read_j()) == [0.0, 0.0]
    cpu.value = 12.0  # 2 CPU-seconds at 100 W / 4 threads
    clock.value = 1000.05  # 50 ms at 2 GiB x 0.375 W/GB = 0.75 W
    assert backend.read_j() == pytest.approx((50.0, 0.0375), rel=1e-12)
    assert rss.calls == 1  # cached: not re-read within 0.1 s
    clock.value = 1001.0  # closes the 1 s segment at 0.75 W, starts one at the new RSS
    rss.value = 4 * GIB
    assert backend.read_j()[1] == pytest.approx(0.75, rel=1e-12)
    assert rss.calls == 2
    clock.value = 1003.0  # 2 s at 4 GiB = 1.5 W
    assert backend.read_j()[1] == pytest.approx(0.75 + 3.0, rel=1e-12)


def test_memory_term_can_be_switched_off() -> None:
    cpu, rss, clock = Fake(0.0), Fake(8 * GIB), Fake(0.0)
    backend = make(cpu, rss, clock, memory_w_per_gb=0.0)
    clock.value = 100.0
    assert list(backend.read_j()) == [0.0, 0.0]
    assert backend.devices[1].label == "process RSS x 0 W/GB"


def test_devices_and_labels() -> None:
    backend = EstimateBackend(cpu_tdp_w=65.0, cpu_model="Some CPU", n_cpus=8)
    cpu_dev, mem_dev = backend.devices
    assert (cpu_dev.id, cpu_dev.kind, mem_dev.id, mem_dev.kind) == (
        "cpu:process",
        "cpu",
        "memory:process",
        "memory",
    )
    assert cpu_dev.label == "Some CPU (TDP 65 W / 8 threads, user --co2-cpu-tdp)"
    assert mem_dev.label == "process RSS x 0.375 W/GB"
    assert all(d.method is Method.ESTIMATED and not d.shared for d in backend.devices)
    assert backend.method == "estimated"
    # process_time (ns) is finer than clock ticks; getrusage's microseconds bound it
    assert 0 < cpu_dev.update_period_s <= 0.01
    assert backend.tdp_w == 65.0 and backend.tdp_source == "user --co2-cpu-tdp"
    assert backend.cpu_model_name == "Some CPU" and backend.n_cpus == 8
    assert any("0.375 W/GB" in n and "Crucial" in n for n in backend.notes)


def _busy(seconds: float) -> None:
    t = time.process_time()
    x = 0
    while time.process_time() - t < seconds:
        x += 1


def _rusage_cpu_s() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _times_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def test_busy_loop_is_cpu_time_times_tdp_per_thread_and_sleep_is_near_zero() -> None:
    backend = EstimateBackend(cpu_tdp_w=100.0, memory_w_per_gb=0.0, n_cpus=4)
    w_per_thread = 25.0

    t0, r0 = os.times(), _rusage_cpu_s()
    (e0, _) = backend.read_j()
    _busy(0.5)
    (e1, _) = backend.read_j()
    t1, r1 = os.times(), _rusage_cpu_s()
    busy_j = e1 - e0
    assert busy_j == pytest.approx((r1 - r0) * w_per_thread, rel=0.02)  # microsecond rusage
    # os.times counts in clock ticks (10 ms at 100 Hz): 2 % plus up to two ticks
    ticks_s = 2.0 / os.sysconf("SC_CLK_TCK")
    times_s = (t1.user + t1.system + t1.children_user + t1.children_system) - (
        t0.user + t0.system + t0.children_user + t0.children_system
    )
    assert abs(busy_j - times_s * w_per_thread) <= 0.02 * busy_j + ticks_s * w_per_thread
    assert busy_j >= 0.5 * w_per_thread * 0.98

    (s0, _) = backend.read_j()
    time.sleep(0.5)
    (s1, _) = backend.read_j()
    assert 0.0 <= s1 - s0 < 0.02 * busy_j


def test_finished_children_are_counted() -> None:
    import subprocess
    import sys

    backend = EstimateBackend(cpu_tdp_w=100.0, memory_w_per_gb=0.0, n_cpus=1)
    r0 = _rusage_cpu_s()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt=time.process_time()\nwhile time.process_time()-t<0.2: pass",
        ],
        check=True,
    )
    (energy_j, _) = backend.read_j()
    assert energy_j >= 0.2 * 100.0 * 0.95
    assert energy_j == pytest.approx((_rusage_cpu_s() - r0) * 100.0, rel=0.05)


def test_unknown_cpu_uses_the_default_with_a_note_and_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(est, "_WARNED_MODELS", set())
    model = "Intel(R) Xeon(R) Processor"
    expected = (
        f"CPU model {model!r} is not in the TDP table; using the default 100 W: "
        "set --co2-cpu-tdp=WATTS for your CPU"
    )
    with pytest.warns(BackendWarning) as record:
        backend = EstimateBackend(cpu_model=model, n_cpus=2)
    assert [str(w.message) for w in record] == [expected]
    assert backend.tdp_w == DEFAULT_TDP_W == 100.0 and backend.tdp_w > 0
    assert backend.tdp_source == "default"
    assert expected in backend.notes
    assert backend.devices[0].label == f"{model} (TDP 100 W / 2 threads, default)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = EstimateBackend(cpu_model=model, n_cpus=2)  # once per process: no warning
    assert expected in again.notes


def test_known_cpu_uses_its_table_tdp() -> None:
    # the paper's machine
    backend = EstimateBackend(cpu_model="AMD EPYC 7513 32-Core Processor", n_cpus=64)
    assert backend.tdp_w == 200.0
    assert backend.tdp_source == "carbontracker TDP table"
    assert backend.cpu_w_per_thread == 200.0 / 64
    assert backend.devices[0].label == (
        "AMD EPYC 7513 32-Core Processor (TDP 200 W / 64 threads, carbontracker TDP table)"
    )


@pytest.mark.parametrize(
    "model, tdp_w",
    [
        ("AMD EPYC 7513 32-Core Processor", 200.0),
        ("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", 120.0),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 205.0),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", 95.0),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", 65.0),  # not i7-870, not i7-8700K
        ("AMD Ryzen 9 5950X 16-Core Processor", 105.0),
        ("AMD Ryzen 7 5800H with Radeon Graphics", 54.0),
        ("Apple M1 Pro", 10.0),  # the longest table name contained: "Apple M1"
        ("Intel Celeron 1000A", 29.5),  # the table's "27.29.5" range: upper bound
        ("Intel(R) Xeon(R) Processor", None),
        ("Intel(R) Xeon(R) CPU @ 2.20GHz", None),
        ("", None),
    ],
)
def test_lookup_tdp(model: str, tdp_w: float | None) -> None:
    found, why = lookup_tdp(model)
    assert found == tdp_w
    assert (f"{model!r} is not in the TDP table" in why) == (tdp_w is None)


def test_normalize_cpu_name() -> None:
    assert normalize_cpu_name("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz") == "intel core i7-8700k"
    assert normalize_cpu_name("AMD EPYC 7513 32-Core Processor") == "amd epyc 7513"


def test_machine_probes() -> None:
    assert cpu_model().strip()
    assert threads_per_package() >= 1
    backend = EstimateBackend()
    assert backend.tdp_w > 0 and backend.n_cpus >= 1
    energy = backend.read_j()
    assert len(energy) == 2 and all(e >= 0 for e in energy)
    assert backend.read_j()[1] >= energy[1]


@pytest.mark.parametrize(
    "kw",
    [
        {"cpu_tdp_w": 0.0},
        {"cpu_tdp_w": -5.0},
        {"cpu_tdp_w": float("nan")},
        {"memory_w_per_gb": -1.0},
        {"n_cpus": 0},
    ],
)
def test_invalid_arguments(kw: dict[str, float]) -> None:
    with pytest.raises(BackendError, match="invalid"):
        EstimateBackend(**kw)  # type: ignore[arg-type]


def test_default_memory_figure() -> None:
    assert MEMORY_W_PER_GB == 0.375


def test_read_j_is_cheap() -> None:
    """Target: a few microseconds; the bound here is loose so a busy CI box passes."""
    backend = EstimateBackend(cpu_tdp_w=100.0)
    costs = []
    for _ in range(50):
        t = time.perf_counter()
        for _ in range(100):
            backend.read_j()
        costs.append((time.perf_counter() - t) / 100)
    assert statistics.median(costs) < 50e-6
