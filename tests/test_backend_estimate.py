"""The CPU estimate: CPU time x (full - idle) + idle x CPUs held x wall time, per thread.

Machines are fake ``/proc`` + ``/sys`` trees (tests/fake_machine.py); watts per thread are the
SPECpower medians shipped in ``pytest_co2/data/cpu_power_per_thread.csv``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import pytest
from fake_machine import KVM_DMI, cpuinfo_text, make_tree

from pytest_co2.backends import BackendError, BackendWarning, Method, cpu_power, make_backend
from pytest_co2.backends import estimate as est
from pytest_co2.backends.cpu_power import (
    TDP_IDLE_FRACTION,
    PerThreadPower,
    PowerRow,
    load_power_table,
    parse_watts_per_thread,
    power_table,
)
from pytest_co2.backends.cpuinfo import CpuInfo
from pytest_co2.backends.estimate import EstimateBackend
from pytest_co2.backends.virtualization import Virtualization, in_container

GIB = 2**30
ROOT = Path(__file__).resolve().parents[1]


class Fake:
    """A settable value, callable like the injected clock / CPU time / RSS readers."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


def zen5_guest(root: Path) -> Path:
    """The project's runner: KVM, 2 vCPUs, model name masked as ``AMD EPYC``, family 26."""
    return make_tree(
        root,
        cpuinfo_text(2, family=26, model=2, name="AMD EPYC", flags="fpu avx2 hypervisor"),
        dmi=KVM_DMI,
        cpus_allowed="0-1",
        cgroup_files={"cpu.max": "max 100000\n"},
    )


def backend_on(root: Path, **kw: object) -> tuple[EstimateBackend, Fake, Fake]:
    cpu, clock = Fake(100.0), Fake(1000.0)
    backend = EstimateBackend(
        root=root, process_times=cpu, clock=clock, rss_bytes=lambda: GIB, **kw
    )  # type: ignore[arg-type]
    return backend, cpu, clock


# -- the acceptance machines -----------------------------------------------------------------
def test_masked_zen5_kvm_guest(tmp_path: Path) -> None:
    backend, cpu, clock = backend_on(zen5_guest(tmp_path))
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.2166, 1.1781)
    assert backend.cpus_held == 2.0
    assert backend.basis == (
        "estimated: KVM guest, AMD Zen 5 (CPUID family 26), SPECpower median of 43 servers: "
        "0.22 W idle / 1.18 W full per thread, 2 vCPUs held"
    )
    assert backend.devices[0].label == backend.basis
    assert backend.header_line() == "CPU " + backend.basis
    assert backend.notes[0] == backend.basis
    assert "model name 'AMD EPYC' is not a CPU model in the SPECpower table" in backend.notes
    assert (
        "SPECpower spread: IQR idle 0.20-0.25 W, full 1.12-1.41 W per thread, published "
        "2024-2026 (ssj2008, whole server at the wall)"
    ) in backend.notes
    assert backend.cpu_model_name == "AMD EPYC"
    assert list(backend.read_j()) == [0.0, 0.0]
    cpu.value += 1.0  # one busy second of one thread
    clock.value += 1.0
    busy_j = backend.read_j()[0]
    assert busy_j == pytest.approx((1.1781 - 0.2166) + 0.2166 * 2, abs=1e-12)  # 1.3947 J
    clock.value += 1.0  # one sleeping second: the idle of the 2 vCPUs held
    assert backend.read_j()[0] - busy_j == pytest.approx(0.2166 * 2, abs=1e-12)
    assert 0.4 <= busy_j <= 4.0 and busy_j / 2 > 0.2166 * 2


def test_named_epyc_7763_guest_with_4_vcpus(tmp_path: Path) -> None:
    name = "AMD EPYC 7763 64-Core Processor"
    root = make_tree(
        tmp_path,
        cpuinfo_text(4, family=25, model=1, name=name, flags="fpu avx2 hypervisor"),
        dmi={"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"},
        cpus_allowed="0-3",
    )
    backend, cpu, clock = backend_on(root)
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.4219, 1.8379)
    assert backend.basis == (
        "estimated: Hyper-V guest, AMD EPYC 7763 64-Core Processor (Zen 3), SPECpower median "
        "of 20 servers with this CPU: 0.42 W idle / 1.84 W full per thread, 4 vCPUs held"
    )
    cpu.value += 3.0  # 3 CPU-seconds in 2 s
    clock.value += 2.0
    assert backend.read_j()[0] == pytest.approx(3 * (1.8379 - 0.4219) + 0.4219 * 4 * 2, abs=1e-12)


@pytest.mark.parametrize(
    "stepping, arch, n, idle_w, full_w, shown",
    [
        (7, "Intel Cascade Lake", 77, 0.6027, 4.0381, "0.60 W idle / 4.04 W full"),
        (5, "Intel Cascade Lake", 77, 0.6027, 4.0381, "0.60 W idle / 4.04 W full"),
        (4, "Intel Skylake-SP", 78, 0.5324, 4.1183, "0.53 W idle / 4.12 W full"),
    ],
)
def test_bare_metal_cascade_lake_vs_skylake_sp(
    tmp_path: Path, stepping: int, arch: str, n: int, idle_w: float, full_w: float, shown: str
) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(
            80,
            vendor="GenuineIntel",
            family=6,
            model=85,
            stepping=stepping,
            name="Intel(R) Xeon(R) CPU @ 2.50GHz",
            siblings=40,
            flags="fpu avx512f",
        ),
        dmi={"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R740"},
        cpus_allowed="0-79",
    )
    backend, cpu, clock = backend_on(root)
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (idle_w, full_w)
    assert backend.basis == (
        f"estimated: bare metal, {arch} (CPUID family 6 model 85 stepping {stepping}), "
        f"SPECpower median of {n} servers: {shown} per thread, 80 threads held"
    )
    assert (
        "machine: no hypervisor CPU flag; DMI sys_vendor 'Dell Inc.', product_name 'PowerEdge R740'"
        in backend.notes
    )
    cpu.value += 1.0
    clock.value += 1.0
    assert backend.read_j()[0] == pytest.approx(full_w - idle_w + idle_w * 80, abs=1e-12)


def test_container_with_cpu_max_of_1_5_cpus_on_a_64_thread_host(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(
            64,
            vendor="GenuineIntel",
            family=6,
            model=143,
            stepping=8,
            name="Intel(R) Xeon(R) Platinum 8480+",
            siblings=64,
        ),
        cpus_allowed="0-63",
        cgroup="0::/\n",
        cgroup_files={"cpu.max": "150000 100000\n"},
        files={".dockerenv": ""},
    )
    backend, cpu, clock = backend_on(root)
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.8125, 3.2098)
    assert backend.cpus_held == 1.5
    assert backend.basis == (
        "estimated: container, bare metal, Intel(R) Xeon(R) Platinum 8480+ (Sapphire Rapids), "
        "SPECpower median of 13 servers with this CPU: 0.81 W idle / 3.21 W full per thread, "
        "1.5 CPUs held (cgroup v2 cpu.max 150000 100000 of 64 visible)"
    )
    cpu.value += 1.5
    clock.value += 1.0
    assert backend.read_j()[0] == pytest.approx(1.5 * (3.2098 - 0.8125) + 0.8125 * 1.5, abs=1e-12)


def test_unknown_cpu_uses_recent_median_labelled_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(est, "_WARNED", set())
    root = make_tree(
        tmp_path,
        cpuinfo_text(4, vendor="CentaurHauls", family=7, model=59, name="VIA Nano X2", flags="fpu"),
        cpus_allowed="0-3",
    )
    expected = (
        "estimated: bare metal, unknown CPU 'VIA Nano X2' (vendor CentaurHauls, no CPUID "
        "family/model), SPECpower median of 393 servers published 2021+ (CPU unknown: set "
        "--co2-cpu-watts-per-thread=IDLE,FULL): 0.69 W idle / 2.85 W full per thread, "
        "4 threads held"
    )
    with pytest.warns(BackendWarning) as record:
        backend, _, _ = backend_on(root)
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.6875, 2.8517)
    assert backend.basis == expected
    assert [str(w.message) for w in record] == [
        "CPU estimate for an unknown CPU 'VIA Nano X2' (vendor CentaurHauls, no CPUID "
        "family/model): SPECpower median of 393 servers published 2021+ (CPU unknown: set "
        "--co2-cpu-watts-per-thread=IDLE,FULL)"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend_on(root)  # once per process and CPU


# -- fallbacks --------------------------------------------------------------------------------
def test_missing_cpuinfo_cgroup_and_dmi_fall_back_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(est, "_WARNED", set())
    monkeypatch.setattr(os, "cpu_count", lambda: 8)  # not this machine's
    root = make_tree(tmp_path, None, cpus_allowed="0-2", cgroup=None)
    with pytest.warns(BackendWarning):
        backend, _, _ = backend_on(root)
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.6875, 2.8517)
    cpuinfo = root / "proc" / "cpuinfo"
    assert any(
        n.startswith(f"CPU identification: {cpuinfo} unreadable")
        and n.endswith("using the next fallback")
        for n in backend.notes
    )
    assert (
        f"CPUs held: no cgroup in {root / 'proc/self/cgroup'}: no CPU quota read; using the next limit"
        in backend.notes
    )
    assert f"machine: no CPU flags; DMI unreadable ({root / 'sys/class/dmi/id'})" in backend.notes
    assert backend.cpus_held == 3  # min(visible: os.cpu_count() 8, the affinity mask 0-2)


def test_malformed_cpu_max_falls_back_to_the_affinity_mask(tmp_path: Path) -> None:
    root = zen5_guest(tmp_path)
    (root / "sys/fs/cgroup/cpu.max").write_text("1.5 CPUs\n")
    backend, _, _ = backend_on(root)
    assert backend.cpus_held == 2.0
    assert (
        f"CPUs held: malformed {root / 'sys/fs/cgroup/cpu.max'}: '1.5 CPUs'; using the next limit"
        in backend.notes
    )


def test_named_cpu_without_results_uses_its_microarchitecture(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(
            8, family=25, model=1, name="AMD EPYC 7B13 64-Core Processor", flags="hypervisor"
        ),
        dmi={"sys_vendor": "Google", "product_name": "Google Compute Engine"},
        cpus_allowed="0-7",
    )
    backend, _, _ = backend_on(root)
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.4238, 1.916)
    assert backend.basis == (
        "estimated: KVM guest, AMD EPYC 7B13 64-Core Processor (Zen 3), SPECpower median of 28 "
        "servers: 0.42 W idle / 1.92 W full per thread, 8 vCPUs held"
    )


# -- overrides --------------------------------------------------------------------------------
def test_watts_per_thread_override_wins(tmp_path: Path) -> None:
    backend, cpu, clock = backend_on(
        zen5_guest(tmp_path), watts_per_thread=(0.5, 3.0), cpu_tdp_w=200.0
    )
    assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.5, 3.0)
    assert backend.basis == (
        "estimated: KVM guest, AMD Zen 5 (CPUID family 26), user --co2-cpu-watts-per-thread: "
        "0.50 W idle / 3.00 W full per thread, 2 vCPUs held"
    )
    cpu.value += 1.0
    clock.value += 1.0
    assert backend.read_j()[0] == pytest.approx(2.5 + 1.0, abs=1e-12)


def test_cpu_tdp_is_full_load_per_package_thread_with_a_fixed_idle_fraction(tmp_path: Path) -> None:
    backend, cpu, clock = backend_on(zen5_guest(tmp_path), cpu_tdp_w=100.0, n_cpus=4)
    assert (backend.full_w_per_thread, backend.idle_w_per_thread) == (25.0, 6.0)
    assert (backend.tdp_w, backend.tdp_source, backend.n_cpus) == (100.0, "user --co2-cpu-tdp", 4)
    assert backend.basis == (
        "estimated: KVM guest, AMD Zen 5 (CPUID family 26), user --co2-cpu-tdp 100 W / 4 threads "
        "per package (given), idle 0.24 x full: 6.00 W idle / 25 W full per thread, "
        "2 vCPUs held"
    )
    cpu.value += 2.0
    clock.value += 1.0
    assert backend.read_j()[0] == pytest.approx(2 * 19.0 + 6.0 * 2, abs=1e-12)


def test_cpu_tdp_in_a_vm_divides_by_the_host_package_not_the_vcpus(tmp_path: Path) -> None:
    name = "AMD EPYC 7763 64-Core Processor"
    root = make_tree(
        tmp_path,
        cpuinfo_text(4, family=25, model=1, name=name, flags="hypervisor"),
        cpus_allowed="0-3",
    )
    backend, _, _ = backend_on(root, cpu_tdp_w=280.0)
    assert backend.full_w_per_thread == 280.0 / 128  # 128 threads per 7763 package, not 4
    assert backend.n_cpus == 128
    assert "280 W / 128 threads per package (SPECpower servers with this CPU)" in backend.basis
    masked, _, _ = backend_on(zen5_guest(tmp_path / "z5"), cpu_tdp_w=320.0)
    assert masked.full_w_per_thread == 1.0  # median Zen 5 package: 320 threads
    assert "(median of AMD Zen 5 servers)" in masked.basis


def test_tdp_idle_fraction_matches_the_table() -> None:
    recent = power_table().recent
    assert recent.idle_w / recent.full_w == pytest.approx(TDP_IDLE_FRACTION, abs=0.005)


@pytest.mark.parametrize(
    "text, expected", [("0.4,2", (0.4, 2.0)), (" 0 , 1.5 ", (0.0, 1.5)), ("2,2", (2.0, 2.0))]
)
def test_parse_watts_per_thread(text: str, expected: tuple[float, float]) -> None:
    assert parse_watts_per_thread(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1,2,3", "a,b", "3,2", "-1,2", "0,0", "nan,1", "1,inf"])
def test_parse_watts_per_thread_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_watts_per_thread(text)
    assert str(info.value) == (
        f"invalid watts per thread {text!r}: expected --co2-cpu-watts-per-thread=IDLE,FULL in "
        "watts per thread, 0 <= IDLE <= FULL, e.g. 0.4,2"
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"cpu_tdp_w": 0.0},
        {"cpu_tdp_w": -5.0},
        {"cpu_tdp_w": float("nan")},
        {"memory_w_per_gb": -1.0},
        {"n_cpus": 0},
        {"cpus_held": 0.0},
        {"watts_per_thread": (3.0, 1.0)},
    ],
)
def test_invalid_arguments(kw: dict[str, object]) -> None:
    with pytest.raises(BackendError, match="invalid"):
        EstimateBackend(**kw)  # type: ignore[arg-type]


def test_make_backend_passes_the_override() -> None:
    with make_backend("estimate", cpu_watts_per_thread=(0.25, 1.5)) as backend:
        assert (backend.idle_w_per_thread, backend.full_w_per_thread) == (0.25, 1.5)  # type: ignore[attr-defined]
        assert "user --co2-cpu-watts-per-thread: 0.25 W idle / 1.50 W full" in backend.describe()


# -- memory ----------------------------------------------------------------------------------
def test_memory_is_in_the_cpu_figure_by_default(tmp_path: Path) -> None:
    backend, _, clock = backend_on(zen5_guest(tmp_path))
    clock.value += 10.0
    assert backend.read_j()[1] == 0.0
    assert (
        backend.devices[1].label
        == "process memory: in the CPU figure (SPECpower whole-server watts)"
    )
    assert backend.memory_w_per_gb == 0.0


def test_memory_term_when_asked_for(tmp_path: Path) -> None:
    cpu, rss, clock = Fake(10.0), Fake(2 * GIB), Fake(1000.0)
    backend = EstimateBackend(
        root=zen5_guest(tmp_path),
        memory_w_per_gb=0.375,
        process_times=cpu,
        rss_bytes=rss,  # type: ignore[arg-type]
        clock=clock,
    )
    assert backend.devices[1].label == "process RSS x 0.375 W/GB"
    clock.value = 1000.05  # 50 ms at 2 GiB x 0.375 W/GB = 0.75 W
    assert backend.read_j()[1] == pytest.approx(0.0375, rel=1e-12)
    assert rss.calls == 1  # cached: not re-read within 0.1 s
    clock.value = 1001.0  # closes the 1 s segment at 0.75 W, starts one at the new RSS
    rss.value = 4 * GIB
    assert backend.read_j()[1] == pytest.approx(0.75, rel=1e-12)
    clock.value = 1003.0  # 2 s at 4 GiB = 1.5 W
    assert backend.read_j()[1] == pytest.approx(0.75 + 3.0, rel=1e-12)


# -- the table -------------------------------------------------------------------------------
def test_shipped_table_rows() -> None:
    table = power_table()
    assert (table.recent.n, table.recent.idle_w, table.recent.full_w) == (393, 0.6875, 2.8517)
    zen5 = table.architectures["zen5"]
    assert (zen5.n, zen5.idle_w, zen5.full_w, zen5.idle_q1, zen5.full_q3) == (
        43,
        0.2166,
        1.1781,
        0.2027,
        1.4062,
    )
    assert table.models["epyc 7763"].n == 20
    assert table.models["gold 6248"].kind == "name"
    with pytest.raises(ValueError, match="no 'recent' row"):
        load_power_table("kind,key\nmodel,x\n")


SOURCE = ROOT.parent / "shared" / "data" / "cpu-power"


@pytest.mark.skipif(not SOURCE.is_dir(), reason="the SPECpower source data is not here")
def test_build_tool_regenerates_the_shipped_table(tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "build_cpu_power.py"),
            "--source",
            str(SOURCE),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    shipped = ROOT / "pytest_co2" / "data" / "cpu_power_per_thread.csv"
    assert out.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")


# -- on this machine ---------------------------------------------------------------------------
def _busy(seconds: float) -> None:
    t = time.process_time()
    x = 0
    while time.process_time() - t < seconds:
        x += 1


def _rusage_cpu_s() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _bracketed_read(backend: EstimateBackend) -> tuple[float, tuple[float, float, float, float]]:
    """A reading, and the wall clock and CPU time just before and just after it."""
    t_a, c_a = time.perf_counter(), est.process_cpu_s()
    (energy_j, _) = backend.read_j()
    t_b, c_b = time.perf_counter(), est.process_cpu_s()
    return energy_j, (t_a, c_a, t_b, c_b)


@pytest.mark.parametrize("work", ["busy", "sleep"])
def test_busy_loop_and_sleep_here(work: str) -> None:
    """2 W per CPU second (2.5 full - 0.5 idle) and 1 W of idle (0.5 W x 2 CPUs held) per wall
    second, on this process's real clocks. The reads' CPU time and wall time lie between what
    the clocks said around them, so the energy lies between two bounds however long a busy
    runner paused this process (on a quiet one they are microseconds apart)."""
    backend = EstimateBackend(watts_per_thread=(0.5, 2.5), cpus_held=2.0)
    e0, (t0a, c0a, t0b, c0b) = _bracketed_read(backend)
    if work == "busy":
        _busy(0.3)
    else:
        time.sleep(0.3)
    e1, (t1a, c1a, t1b, c1b) = _bracketed_read(backend)
    assert t1a - t0b >= 0.3
    low = 2.0 * (c1a - c0b) + 1.0 * (t1a - t0b)
    high = 2.0 * (c1b - c0a) + 1.0 * (t1b - t0a)
    assert low - 1e-9 <= e1 - e0 <= high + 1e-9


def test_finished_children_are_counted() -> None:
    r0 = _rusage_cpu_s()
    backend = EstimateBackend(watts_per_thread=(0.0, 100.0), cpus_held=1.0)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt=time.process_time()\nwhile time.process_time()-t<0.2: pass",
        ],
        check=True,
    )
    (energy_j, _) = backend.read_j()
    # the child's 0.2 CPU seconds (its own process_time; rusage accounts them within 5%), and
    # no more than all CPU time of this process and its children around the reading
    assert 0.2 * 100.0 * 0.95 <= energy_j <= (_rusage_cpu_s() - r0) * 100.0 * 1.05


def test_machine_probes_and_devices() -> None:
    backend = EstimateBackend()
    cpu_dev, mem_dev = backend.devices
    assert (cpu_dev.id, cpu_dev.kind, mem_dev.id, mem_dev.kind) == (
        "cpu:process",
        "cpu",
        "memory:process",
        "memory",
    )
    assert all(d.method is Method.ESTIMATED and not d.shared for d in backend.devices)
    assert backend.method == "estimated" and backend.basis.startswith("estimated: ")
    assert 0 < cpu_dev.update_period_s <= 0.01
    assert 0 <= backend.idle_w_per_thread <= backend.full_w_per_thread
    assert backend.tdp_w > 0 and backend.n_cpus >= 1 and backend.cpu_model_name
    energy = backend.read_j()
    assert len(energy) == 2 and all(e >= 0 for e in energy)


def test_read_j_is_cheap() -> None:
    """Target: a few microseconds of CPU. Counted in this thread's CPU time, not the wall
    clock, so that other jobs on a busy runner do not count (the bound is still loose)."""
    backend = EstimateBackend(cpu_tdp_w=100.0)
    costs = []
    for _ in range(50):
        t = time.thread_time()
        for _ in range(100):
            backend.read_j()
        costs.append((time.thread_time() - t) / 100)
    assert statistics.median(costs) < 50e-6


def test_cpu_tdp_on_bare_metal_divides_by_the_real_package_threads(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(
            96,
            vendor="GenuineIntel",
            family=6,
            model=85,
            stepping=7,
            name="Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
            siblings=48,
        ),
        cpus_allowed="0-95",
    )
    backend, _, _ = backend_on(root, cpu_tdp_w=150.0)
    assert (backend.full_w_per_thread, backend.idle_w_per_thread) == (3.125, 0.75)
    assert backend.basis == (
        "estimated: bare metal, Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz (Cascade Lake), user "
        "--co2-cpu-tdp 150 W / 48 threads per package (/proc/cpuinfo siblings), idle 0.24 x "
        "full: 0.75 W idle / 3.12 W full per thread, 96 threads held"
    )


# -- issue 16: the exact figures, labels and fallbacks ----------------------------------------
class _Usage:
    def __init__(self, **fields: float) -> None:
        self.__dict__.update(fields)


class FakeResource:
    """Stands in for the ``resource`` module: getrusage by who, recorded."""

    RUSAGE_SELF, RUSAGE_CHILDREN = "self", "children"

    def __init__(self, by_who: dict[str, _Usage]) -> None:
        self.by_who: dict[str, _Usage] = by_who
        self.asked: list[str] = []

    def getrusage(self, who: str) -> _Usage:
        self.asked.append(who)
        return self.by_who[who]


def test_rss_from_proc_self_statm_is_the_second_field_in_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = []

    def fake_open(path: str, mode: str) -> object:
        import io

        opened.append((path, mode))
        return io.BytesIO(b"9000 250 30 4 0 80 0\n")

    monkeypatch.setattr(est, "open", fake_open, raising=False)
    assert est.rss_bytes_proc() == 250 * est._PAGE_BYTES
    assert opened == [("/proc/self/statm", "rb")]
    assert os.sysconf("SC_PAGE_SIZE") == est._PAGE_BYTES


def test_rss_here_is_that_of_this_process() -> None:
    statm = Path("/proc/self/statm").read_text().split()
    here = est.rss_bytes_proc()
    assert here == pytest.approx(int(statm[1]) * os.sysconf("SC_PAGE_SIZE"), rel=0.05)
    assert est.rss_bytes_peak() > 0


@pytest.mark.parametrize(("system", "expected"), [("Linux", 2048 * 1024), ("Darwin", 2048)])
def test_peak_rss_is_in_kib_except_on_macos(
    monkeypatch: pytest.MonkeyPatch, system: str, expected: int
) -> None:
    fake = FakeResource({"self": _Usage(ru_maxrss=2048)})
    monkeypatch.setattr(est, "_resource", fake)
    monkeypatch.setattr(est.platform, "system", lambda: system)
    assert est.rss_bytes_peak() == expected
    assert fake.asked == ["self"]


@pytest.mark.parametrize("error", [OSError("no /proc"), ValueError("x"), IndexError("y")])
def test_unreadable_statm_falls_back_to_the_peak_rss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def broken() -> int:
        raise error

    monkeypatch.setattr(est, "rss_bytes_proc", broken)
    backend = EstimateBackend(
        root=zen5_guest(tmp_path), process_times=Fake(0.0), clock=Fake(0.0), memory_w_per_gb=1.0
    )  # type: ignore[arg-type]
    assert "memory: /proc/self/statm is unreadable; using the peak RSS" in backend.notes
    assert backend._rss_bytes is est.rss_bytes_peak


def test_statm_is_the_default_rss_reader(tmp_path: Path) -> None:
    backend = EstimateBackend(root=zen5_guest(tmp_path), process_times=Fake(0.0), clock=Fake(0.0))  # type: ignore[arg-type]
    assert backend._rss_bytes is est.rss_bytes_proc
    assert not any("statm" in n for n in backend.notes)


def test_process_cpu_seconds_add_the_waited_for_children(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeResource({"children": _Usage(ru_utime=1.5, ru_stime=0.25)})
    monkeypatch.setattr(est, "_resource", fake)
    monkeypatch.setattr(est.time, "process_time", lambda: 2.0)
    assert est.process_cpu_s() == 3.75
    assert fake.asked == ["children"]


@pytest.mark.parametrize(
    ("resolution", "ticks_hz", "expected"),
    [(1e-9, 100, 1e-6), (0.02, 100, 0.01), (0.004, 100, 0.004), (1e-5, 1000, 1e-5)],
)
def test_cpu_time_resolution(
    monkeypatch: pytest.MonkeyPatch, resolution: float, ticks_hz: int, expected: float
) -> None:
    class Info:
        pass

    info = Info()
    info.resolution = resolution  # type: ignore[attr-defined]
    asked = []

    def clock_info(name: str) -> Info:
        asked.append(name)
        return info

    monkeypatch.setattr(est.time, "get_clock_info", clock_info)
    monkeypatch.setattr(est.os, "sysconf", lambda name: ticks_hz if name == "SC_CLK_TCK" else 0)
    assert est.cpu_time_resolution_s() == expected
    assert asked == ["process_time"]


def test_the_rss_segment_closes_at_exactly_the_refresh_time(tmp_path: Path) -> None:
    rss, clock = Fake(2 * GIB), Fake(0.0)
    backend = EstimateBackend(
        root=zen5_guest(tmp_path),
        memory_w_per_gb=0.375,
        process_times=Fake(0.0),
        rss_bytes=rss,  # type: ignore[arg-type]
        clock=clock,
    )
    assert est.RSS_REFRESH_S == 0.1
    rss.value = 4 * GIB
    clock.value = 0.1  # 0.1 s at 0.75 W, then the new RSS (1.5 W)
    assert backend.read_j()[1] == pytest.approx(0.075, rel=1e-12)
    clock.value = 0.15
    assert backend.read_j()[1] == pytest.approx(0.075 + 1.5 * 0.05, rel=1e-12)
    assert rss.calls == 2
    assert "memory: process RSS x 0.375 W/GB, RSS sampled at most every 0.1 s" in backend.notes


def test_cpu_energy_is_dynamic_cpu_seconds_plus_idle_of_the_cpus_held(tmp_path: Path) -> None:
    cpu, clock = Fake(50.0), Fake(20.0)
    backend = EstimateBackend(
        root=zen5_guest(tmp_path),
        process_times=cpu,
        clock=clock,  # type: ignore[arg-type]
        watts_per_thread=(0.5, 2.0),
        cpus_held=4.0,
    )
    assert (backend.dynamic_w_per_thread, backend.idle_w_held, backend.cpu_w_per_thread) == (
        1.5,
        2.0,
        2.0,
    )
    assert backend.devices[0].update_period_s == 0.0  # injected CPU time: no resolution
    cpu.value, clock.value = 53.0, 30.0  # 3 CPU-seconds in 10 s
    assert list(backend.read_j()) == [3 * 1.5 + 2.0 * 10, 0.0]
    assert backend.basis.endswith("0.50 W idle / 2.00 W full per thread, 4 vCPUs held")


@pytest.mark.parametrize(
    ("kw", "held"),
    [
        ({"cpus_held": 1.0}, "1 thread held"),
        ({"cpus_held": 2.0, "cpu_share": 0.25}, "0.5 of 2 CPUs held (this process's share)"),
        ({"cpus_held": 3.0, "cpu_share": 1 / 3}, "1 of 3 CPUs held (this process's share)"),
    ],
)
def test_the_cpus_held_in_the_label(tmp_path: Path, kw: dict[str, float], held: str) -> None:
    root = make_tree(tmp_path, cpuinfo_text(4, name="AMD EPYC 7763 64-Core Processor"))
    backend, _, _ = backend_on(root, **kw)
    assert backend.basis.endswith(f" per thread, {held}")
    assert backend.cpus_held == kw["cpus_held"] * kw.get("cpu_share", 1.0)


def test_an_affinity_mask_in_the_label(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path, cpuinfo_text(8, name="AMD EPYC 7763 64-Core Processor"), cpus_allowed="0-2"
    )
    backend, _, _ = backend_on(root)
    assert backend.basis.endswith(" per thread, 3 threads held (affinity mask of 8 visible)")


def test_legacy_tdp_figures_without_a_tdp(tmp_path: Path) -> None:
    name = "AMD EPYC 7763 64-Core Processor"
    backend, _, _ = backend_on(make_tree(tmp_path, cpuinfo_text(4, name=name, siblings=6)))
    assert backend.n_cpus == 6  # the package's siblings
    assert backend.tdp_w == pytest.approx(1.8379 * 6, rel=1e-12)
    assert backend.tdp_source == (
        "SPECpower median of 20 servers with this CPU x 6 threads, not a TDP"
    )
    assert backend.cpu_model_name == name
    given, _, _ = backend_on(make_tree(tmp_path / "g", cpuinfo_text(4, name=name)), n_cpus=3)
    assert given.n_cpus == 3 and given.tdp_w == pytest.approx(1.8379 * 3, rel=1e-12)


@pytest.mark.parametrize(
    ("watts", "shown"),
    [((0.5, 9.994), "0.50 W idle / 9.99 W full"), ((0.5, 10.0), "0.50 W idle / 10 W full")],
)
def test_watts_are_shown_with_two_decimals_below_10(
    tmp_path: Path, watts: tuple[float, float], shown: str
) -> None:
    backend, _, _ = backend_on(zen5_guest(tmp_path), watts_per_thread=watts)
    assert f"{shown} per thread" in backend.basis


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cpu_tdp_w": 0.0}, "invalid CPU TDP 0.0: expected watts > 0, e.g. 65"),
        ({"cpu_tdp_w": float("inf")}, "invalid CPU TDP inf: expected watts > 0, e.g. 65"),
        ({"memory_w_per_gb": -1.0}, "invalid memory power -1.0: expected W/GB >= 0"),
        ({"memory_w_per_gb": float("nan")}, "invalid memory power nan: expected W/GB >= 0"),
        ({"n_cpus": 0}, "invalid thread count 0: expected >= 1"),
        ({"cpus_held": 0.0}, "invalid CPUs held 0.0: expected a number > 0"),
        ({"cpus_held": float("inf")}, "invalid CPUs held inf: expected a number > 0"),
        (
            {"watts_per_thread": (3.0, 1.0)},
            "invalid watts per thread '3.0,1.0': expected --co2-cpu-watts-per-thread=IDLE,FULL "
            "in watts per thread, 0 <= IDLE <= FULL, e.g. 0.4,2",
        ),
    ],
)
def test_invalid_arguments_say_what_is_accepted(kw: dict[str, object], message: str) -> None:
    with pytest.raises(BackendError) as info:
        EstimateBackend(**kw)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_boundary_arguments_are_accepted(tmp_path: Path) -> None:
    backend, _, _ = backend_on(zen5_guest(tmp_path), memory_w_per_gb=0.0, n_cpus=1)
    assert backend.n_cpus == 1 and backend.memory_w_per_gb == 0.0
    zero_idle, _, _ = backend_on(zen5_guest(tmp_path / "z"), watts_per_thread=(0.0, 1.0))
    assert zero_idle.idle_w_held == 0.0


def test_cpu_model_reads_the_model_name(tmp_path: Path) -> None:
    root = make_tree(tmp_path, cpuinfo_text(2, name="AMD EPYC 7763 64-Core Processor"))
    assert est.cpu_model(root) == "AMD EPYC 7763 64-Core Processor"
    assert est.cpu_model(str(root)) == "AMD EPYC 7763 64-Core Processor"


# -- exact values: data that exposes each rule ----------------------------------------
HEADER = (
    "kind,key,microarchitecture,vendor,n,idle_w,full_w,idle_q1,idle_q3,full_q1,full_q3,"
    "threads_per_chip,years"
)
TABLE_TEXT = "\n".join(
    [
        HEADER,
        "recent,all results 2021+,,,10,0.5,2.5,0.25,0.75,1.5,3.5,64,2021-2026",
        "microarchitecture,zen3,AMD Zen 3,amd,4,0.3,1.5,0.2,0.4,1.25,1.75,96,2021-2022",
        "microarchitecture,zen5,AMD Zen 5,amd,3,0.2,1.2,0.1,0.3,1.0,1.4,,2024-2025",
        "model,epyc 7763,zen3,amd,2,0.35,1.6,0.3,0.4,1.5,1.7,128,2021",
        "model,epyc 8888,zen9,amd,1,0.45,1.9,0.4,0.5,1.8,2.0,,2026",
        "name,epyc 7543,zen3,amd",
        "name,epyc 7000",
    ]
)
# A table parsed inside each test (at import time no mutant is active).
TABLE = load_power_table(TABLE_TEXT)
ZEN3 = PowerRow(
    "microarchitecture", "zen3", "AMD Zen 3", "amd", 4, 0.3, 1.5, 0.2, 0.4, 1.25, 1.75, 96.0,
    "2021-2022",
)  # fmt: skip
ZEN5 = PowerRow(
    "microarchitecture", "zen5", "AMD Zen 5", "amd", 3, 0.2, 1.2, 0.1, 0.3, 1.0, 1.4, 0.0,
    "2024-2025",
)  # fmt: skip
EPYC_7763 = PowerRow(
    "model", "epyc 7763", "zen3", "amd", 2, 0.35, 1.6, 0.3, 0.4, 1.5, 1.7, 128.0, "2021"
)
BARE = Virtualization(is_vm=False, hypervisor="", evidence="no hypervisor flag")
KVM = Virtualization(is_vm=True, hypervisor="KVM", evidence="hypervisor CPU flag")
NAME_7763 = "AMD EPYC 7763 64-Core Processor"


def test_every_column_of_the_table_is_read() -> None:
    table = load_power_table(TABLE_TEXT)
    assert table == TABLE
    assert TABLE.recent == PowerRow(
        "recent", "all results 2021+", "", "", 10, 0.5, 2.5, 0.25, 0.75, 1.5, 3.5, 64.0,
        "2021-2026",
    )  # fmt: skip
    assert TABLE.architectures == {"zen3": ZEN3, "zen5": ZEN5}
    assert TABLE.models["epyc 7763"] == EPYC_7763
    assert TABLE.models["epyc 7543"] == PowerRow("name", "epyc 7543", "zen3", "amd")
    assert TABLE.models["epyc 7000"] == PowerRow("name", "epyc 7000", "", "")
    assert TABLE.model_vendors == {
        "epyc 7763": "amd",
        "epyc 8888": "amd",
        "epyc 7543": "amd",
        "epyc 7000": "",
    }
    assert ZEN3.spread == "IQR idle 0.20-0.40 W, full 1.25-1.75 W per thread, published 2021-2022"


def test_a_short_line_takes_the_defaults_of_its_missing_columns() -> None:
    table = load_power_table(f"{HEADER}\nrecent,all\nmicroarchitecture,x,,,,,,,,,,,")
    assert table.recent == PowerRow("recent", "all", "", "")
    assert table.architectures["x"] == PowerRow("microarchitecture", "x", "", "")


def test_model_rows_are_found_in_the_text_whole_and_the_later_line_wins() -> None:
    text = "\r\n".join(
        [
            HEADER,
            "recent,old,,,1,1,2,1,1,2,2,8,2019",
            "model,epyc 70001,zen3,amd,1,0.1,1.1",  # longer: not "epyc 7000"; short: defaults
            "name,epyc 7000,zen2,amd",
            "model,epyc 7000,zen3,amd,5,0.5,1.5,0,0,1,1,8,2021",  # later than its name row
            "name,gold 1,,intel",
            "name,gold 1,broadwell,intel",
            "recent,new,,,2,1,2,1,1,2,2,8,2020",
        ]
    )
    table = load_power_table(text)
    assert table.recent.key == "new"
    assert (table.models["epyc 7000"].kind, table.models["epyc 7000"].n) == ("model", 5)
    assert table.models["epyc 70001"].n == 1
    assert table.models["gold 1"] == PowerRow("name", "gold 1", "broadwell", "intel")
    assert table.models.get("epyc 700") is None and "epyc" not in table.models
    with pytest.raises(KeyError, match="epyc 700"):
        table.models["epyc 700"]
    assert table.models["epyc 70001"].years == "" and table.models["epyc 70001"].full_w == 1.1
    assert table.model_vendors.get("gold 1") == "intel" and table.model_vendors.get("x") is None
    assert list(table.models) == ["epyc 70001", "epyc 7000", "gold 1"] and len(table.models) == 3
    assert dict(table.model_vendors) == {"epyc 70001": "amd", "epyc 7000": "amd", "gold 1": "intel"}


@pytest.mark.parametrize("text", ["", HEADER, f"{HEADER}\nmodel,x,zen3,amd,1,1,2,1,1,2,2,8,2021"])
def test_a_table_without_a_recent_row_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^CPU power table has no 'recent' row$"):
        load_power_table(text)


def test_short_architecture_names() -> None:
    assert cpu_power._short("AMD Zen 3") == "Zen 3"
    assert cpu_power._short("Intel Cascade Lake") == "Cascade Lake"
    assert cpu_power._short("Zen3") == "Zen3"


# -- identification --------------------------------------------------------------------------


def test_the_model_name_wins_over_cpuid_with_a_note() -> None:
    zen5_cpuid = CpuInfo(vendor="AMD", family=26, model=2, model_name=NAME_7763)
    assert cpu_power.identify(zen5_cpuid, TABLE) == (
        EPYC_7763,
        ZEN3,
        f"{NAME_7763} (Zen 3)",
        [f"model name {NAME_7763!r} (AMD Zen 3) wins over CPUID family 26"],
    )
    agreeing = CpuInfo(vendor="AMD", family=25, model=1, model_name=NAME_7763)
    assert cpu_power.identify(agreeing, TABLE) == (EPYC_7763, ZEN3, f"{NAME_7763} (Zen 3)", [])
    no_cpuid = CpuInfo(vendor="AMD", model_name=NAME_7763)
    assert cpu_power.identify(no_cpuid, TABLE)[3] == []


def test_a_model_whose_architecture_has_no_row_is_labelled_by_its_name() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name="AMD EPYC 8888")
    row, arch, label, notes = cpu_power.identify(cpu, TABLE)
    assert (row, arch, label, notes) == (TABLE.models["epyc 8888"], None, "AMD EPYC 8888", [])


def test_a_name_row_gives_its_architecture() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name="AMD EPYC 7543 32-Core Processor")
    assert cpu_power.identify(cpu, TABLE) == (
        None,
        ZEN3,
        "AMD EPYC 7543 32-Core Processor (Zen 3)",
        ["model name 'AMD EPYC 7543 32-Core Processor' (AMD Zen 3) wins over CPUID family 26"],
    )


def test_an_unknown_name_falls_back_to_cpuid_then_to_unknown() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name="AMD Mystery 1")
    assert cpu_power.identify(cpu, TABLE) == (
        None,
        ZEN5,
        "AMD Zen 5 (CPUID family 26)",
        ["model name 'AMD Mystery 1' is not a CPU model in the SPECpower table"],
    )
    intel = CpuInfo(vendor="Intel", family=6, model=85, stepping=7, model_name="Intel Mystery")
    how = "CPUID family 6 model 85 stepping 7"
    assert cpu_power.identify(intel, TABLE) == (
        None,
        None,
        f"unknown CPU 'Intel Mystery' (vendor Intel, {how})",
        [
            "model name 'Intel Mystery' is not a CPU model in the SPECpower table",
            f"cascadelake ({how}) has no SPECpower results",
        ],
    )
    assert cpu_power.identify(CpuInfo(), TABLE) == (
        None,
        None,
        "unknown CPU (no vendor, no CPUID family/model)",
        ["microarchitecture not identified (no CPUID family/model)"],
    )


# -- the watts -------------------------------------------------------------------------------


def test_the_watts_of_each_source_exactly() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name=NAME_7763, siblings=32)
    note = (f"model name {NAME_7763!r} (AMD Zen 3) wins over CPUID family 26",)
    label = f"{NAME_7763} (Zen 3)"
    user = cpu_power.resolve_power(cpu, BARE, watts_per_thread=(0.5, 3.0), table=TABLE)
    assert user == PerThreadPower(0.5, 3.0, label, "user --co2-cpu-watts-per-thread", notes=note)
    tdp = cpu_power.resolve_power(cpu, BARE, tdp_w=80.0, table=TABLE)
    assert tdp == PerThreadPower(
        2.5 * 0.24,
        2.5,
        label,
        "user --co2-cpu-tdp 80 W / 32 threads per package (/proc/cpuinfo siblings), "
        "idle 0.24 x full",
        "",
        False,
        32.0,
        note,
    )
    model = cpu_power.resolve_power(cpu, BARE, table=TABLE)
    assert model == PerThreadPower(
        0.35, 1.6, label, "SPECpower median of 2 servers with this CPU", EPYC_7763.spread, False,
        None, note,
    )  # fmt: skip
    zen5 = CpuInfo(vendor="AMD", family=26, model=2)
    arch = cpu_power.resolve_power(zen5, BARE, table=TABLE)
    assert (arch.idle_w, arch.full_w, arch.source, arch.spread, arch.unknown) == (
        0.2,
        1.2,
        "SPECpower median of 3 servers",
        ZEN5.spread,
        False,
    )
    unknown = cpu_power.resolve_power(CpuInfo(), BARE, table=TABLE)
    assert unknown == PerThreadPower(
        0.5,
        2.5,
        "unknown CPU (no vendor, no CPUID family/model)",
        "SPECpower median of 10 servers published 2021+ "
        "(CPU unknown: set --co2-cpu-watts-per-thread=IDLE,FULL)",
        TABLE.recent.spread,
        True,
        None,
        ("microarchitecture not identified (no CPUID family/model)",),
    )


def test_tdp_in_a_vm_without_package_figures_uses_the_recent_servers() -> None:
    zen5 = CpuInfo(vendor="AMD", family=26, model=2, siblings=4)
    p = cpu_power.resolve_power(zen5, KVM, tdp_w=128.0, table=TABLE)
    assert (p.full_w, p.idle_w, p.threads_per_package) == (2.0, 2.0 * 0.24, 64.0)
    assert p.source == (
        "user --co2-cpu-tdp 128 W / 64 threads per package "
        "(VM: host package unknown, median of recent servers), idle 0.24 x full"
    )


def test_the_threads_of_one_package_first_that_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = CpuInfo(siblings=12)

    def threads(
        cpu: CpuInfo, vm: Virtualization, model: PowerRow | None, arch: PowerRow | None
    ) -> tuple[float, str]:
        return cpu_power._package_threads(cpu, vm, model, arch, TABLE, None)

    assert cpu_power._package_threads(cpu, BARE, None, None, TABLE, 7.0) == (7.0, "given")
    assert threads(cpu, BARE, EPYC_7763, ZEN3) == (12.0, "/proc/cpuinfo siblings")
    assert threads(cpu, KVM, EPYC_7763, ZEN3) == (128.0, "SPECpower servers with this CPU")
    one = PowerRow("model", "m", "zen3", "amd", threads_per_chip=1.0)
    assert threads(cpu, KVM, one, ZEN5) == (1.0, "SPECpower servers with this CPU")
    none = PowerRow("model", "m", "zen5", "amd", threads_per_chip=0.0)
    assert threads(cpu, KVM, none, ZEN3) == (96.0, "median of AMD Zen 3 servers")
    one_arch = PowerRow("microarchitecture", "a", "A", "amd", threads_per_chip=1.0)
    assert threads(cpu, KVM, None, one_arch) == (1.0, "median of A servers")
    assert threads(cpu, KVM, None, ZEN5) == (
        64.0,
        "VM: host package unknown, median of recent servers",
    )
    monkeypatch.setattr(est.os, "cpu_count", lambda: 6)
    assert threads(CpuInfo(), BARE, None, ZEN5) == (6.0, "os.cpu_count()")
    monkeypatch.setattr(est.os, "cpu_count", lambda: None)
    assert threads(CpuInfo(), BARE, None, None) == (1.0, "os.cpu_count()")


# -- the backend's own edges -----------------------------------------------------------------


def test_the_windows_cpu_seconds_and_no_peak_rss_without_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    times = types.SimpleNamespace(user=1.0, system=2.0, children_user=4.0, children_system=8.0)
    monkeypatch.setattr(est, "_resource", None)
    monkeypatch.setattr(est.os, "times", lambda: times)
    assert est.process_cpu_s() == 15.0
    assert est.rss_bytes_peak() == 0


def test_clock_ticks_unknown_are_taken_as_10_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sysconf(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(est.os, "sysconf", no_sysconf)
    monkeypatch.setattr(
        est.time, "get_clock_info", lambda name: types.SimpleNamespace(resolution=0.5)
    )
    assert est.cpu_time_resolution_s() == 0.01


def _machine(root: Path, **kw: object) -> Path:
    return make_tree(root, cpuinfo_text(4, family=26, model=2, name="AMD EPYC 9555"), **kw)  # type: ignore[arg-type]


def test_a_given_model_name_is_normalized_and_the_devices_are_exact(tmp_path: Path) -> None:
    backend = est.EstimateBackend(
        root=_machine(tmp_path),
        cpu_model="  AMD   EPYC 7763  64-Core Processor ",
        process_times=lambda: 0.0,
        clock=lambda: 0.0,
        cpu_tdp_w=0.5,  # any watts above 0 are accepted
    )
    assert backend.cpu_info.model_name == NAME_7763
    assert backend.cpu_info.family == 26  # the rest of /proc/cpuinfo is kept
    assert backend.cpu_model_name == NAME_7763
    cpu, memory = backend.devices
    assert (cpu.shared, cpu.update_period_s, memory.shared, memory.update_period_s) == (
        False,
        0.0,
        False,
        0.0,
    )
    assert (
        "memory: in the CPU figure (SPECpower watts are whole servers), not counted again"
        in backend.notes
    )
    assert memory.label == "process memory: in the CPU figure (SPECpower whole-server watts)"


def test_a_cpu_quota_outside_a_container_marker_is_labelled_container(tmp_path: Path) -> None:
    root = _machine(tmp_path, cgroup_files={"cpu.max": "150000 100000\n"}, cpus_allowed="0-3")
    backend = est.EstimateBackend(root=root, process_times=lambda: 0.0, clock=lambda: 0.0)
    assert not in_container(root)
    assert backend.basis.startswith("estimated: container, bare metal, ")
    plain = est.EstimateBackend(
        root=_machine(tmp_path / "plain", cpus_allowed="0-3"),
        process_times=lambda: 0.0,
        clock=lambda: 0.0,
    )
    assert plain.basis.startswith("estimated: bare metal, ")


def test_the_legacy_thread_count_and_model_name_fallbacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = est.EstimateBackend(
        root=_machine(tmp_path), process_times=lambda: 0.0, clock=lambda: 0.0
    )
    power = PerThreadPower(0.5, 2.0, "x", "s")
    monkeypatch.setattr(est.platform, "processor", lambda: "  ")
    backend._legacy_attributes(CpuInfo(siblings=None, logical_cpus=3), power, None, None)
    assert (backend.cpu_model_name, backend.n_cpus, backend.tdp_w) == ("unknown CPU", 3, 6.0)
    assert backend.tdp_source == "s x 3 threads, not a TDP"
    monkeypatch.setattr(est.os, "cpu_count", lambda: 5)
    backend._legacy_attributes(CpuInfo(), power, None, None)
    assert backend.n_cpus == 5
    monkeypatch.setattr(est.os, "cpu_count", lambda: None)
    backend._legacy_attributes(CpuInfo(), power, None, None)
    assert backend.n_cpus == 1
    small = PerThreadPower(0.5, 2.0, "x", "s", threads_per_package=0.4)
    backend._legacy_attributes(CpuInfo(siblings=8), small, None, None)
    assert backend.n_cpus == 1
    monkeypatch.setattr(est.platform, "processor", lambda: " Zen ")
    backend._legacy_attributes(CpuInfo(), power, None, None)
    assert backend.cpu_model_name == "Zen"


def test_cpu_model_without_a_name_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(est.platform, "processor", lambda: "")
    assert est.cpu_model(make_tree(tmp_path, "processor\t: 0\n")) == "unknown CPU"
    monkeypatch.setattr(est.platform, "processor", lambda: " x86_64 ")
    assert est.cpu_model(tmp_path) == "x86_64"
    with pytest.raises(
        BackendError, match=r"^invalid CPU TDP 0\.0: expected watts > 0, e\.g\. 65$"
    ):
        est.EstimateBackend(cpu_tdp_w=0.0, root=tmp_path)
