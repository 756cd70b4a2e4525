"""Exact tests of the CPU estimate's table, identification and watts (issue 16): a small table
whose figures differ in every column, so that a swapped field, a lost note or a wrong fallback
changes an asserted value."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from fake_machine import cpuinfo_text, make_tree

from pytest_co2.backends import BackendError
from pytest_co2.backends import estimate as est
from pytest_co2.backends.cpuinfo import CpuInfo, Virtualization
from pytest_co2.backends.estimate import PerThreadPower, PowerRow, load_power_table

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


@pytest.mark.parametrize("text", ["", HEADER, f"{HEADER}\nmodel,x,zen3,amd,1,1,2,1,1,2,2,8,2021"])
def test_a_table_without_a_recent_row_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^CPU power table has no 'recent' row$"):
        load_power_table(text)


def test_short_architecture_names() -> None:
    assert est._short("AMD Zen 3") == "Zen 3"
    assert est._short("Intel Cascade Lake") == "Cascade Lake"
    assert est._short("Zen3") == "Zen3"


# -- identification --------------------------------------------------------------------------


def test_the_model_name_wins_over_cpuid_with_a_note() -> None:
    zen5_cpuid = CpuInfo(vendor="AMD", family=26, model=2, model_name=NAME_7763)
    assert est.identify(zen5_cpuid, TABLE) == (
        EPYC_7763,
        ZEN3,
        f"{NAME_7763} (Zen 3)",
        [f"model name {NAME_7763!r} (AMD Zen 3) wins over CPUID family 26"],
    )
    agreeing = CpuInfo(vendor="AMD", family=25, model=1, model_name=NAME_7763)
    assert est.identify(agreeing, TABLE) == (EPYC_7763, ZEN3, f"{NAME_7763} (Zen 3)", [])
    no_cpuid = CpuInfo(vendor="AMD", model_name=NAME_7763)
    assert est.identify(no_cpuid, TABLE)[3] == []


def test_a_model_whose_architecture_has_no_row_is_labelled_by_its_name() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name="AMD EPYC 8888")
    row, arch, label, notes = est.identify(cpu, TABLE)
    assert (row, arch, label, notes) == (TABLE.models["epyc 8888"], None, "AMD EPYC 8888", [])


def test_a_name_row_gives_its_architecture() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name="AMD EPYC 7543 32-Core Processor")
    assert est.identify(cpu, TABLE) == (
        None,
        ZEN3,
        "AMD EPYC 7543 32-Core Processor (Zen 3)",
        ["model name 'AMD EPYC 7543 32-Core Processor' (AMD Zen 3) wins over CPUID family 26"],
    )


def test_an_unknown_name_falls_back_to_cpuid_then_to_unknown() -> None:
    cpu = CpuInfo(vendor="AMD", family=26, model=2, model_name="AMD Mystery 1")
    assert est.identify(cpu, TABLE) == (
        None,
        ZEN5,
        "AMD Zen 5 (CPUID family 26)",
        ["model name 'AMD Mystery 1' is not a CPU model in the SPECpower table"],
    )
    intel = CpuInfo(vendor="Intel", family=6, model=85, stepping=7, model_name="Intel Mystery")
    how = "CPUID family 6 model 85 stepping 7"
    assert est.identify(intel, TABLE) == (
        None,
        None,
        f"unknown CPU 'Intel Mystery' (vendor Intel, {how})",
        [
            "model name 'Intel Mystery' is not a CPU model in the SPECpower table",
            f"cascadelake ({how}) has no SPECpower results",
        ],
    )
    assert est.identify(CpuInfo(), TABLE) == (
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
    user = est.resolve_power(cpu, BARE, watts_per_thread=(0.5, 3.0), table=TABLE)
    assert user == PerThreadPower(0.5, 3.0, label, "user --co2-cpu-watts-per-thread", notes=note)
    tdp = est.resolve_power(cpu, BARE, tdp_w=80.0, table=TABLE)
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
    model = est.resolve_power(cpu, BARE, table=TABLE)
    assert model == PerThreadPower(
        0.35, 1.6, label, "SPECpower median of 2 servers with this CPU", EPYC_7763.spread, False,
        None, note,
    )  # fmt: skip
    zen5 = CpuInfo(vendor="AMD", family=26, model=2)
    arch = est.resolve_power(zen5, BARE, table=TABLE)
    assert (arch.idle_w, arch.full_w, arch.source, arch.spread, arch.unknown) == (
        0.2,
        1.2,
        "SPECpower median of 3 servers",
        ZEN5.spread,
        False,
    )
    unknown = est.resolve_power(CpuInfo(), BARE, table=TABLE)
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
    p = est.resolve_power(zen5, KVM, tdp_w=128.0, table=TABLE)
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
        return est._package_threads(cpu, vm, model, arch, TABLE, None)

    assert est._package_threads(cpu, BARE, None, None, TABLE, 7.0) == (7.0, "given")
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
    assert not est.in_container(root)
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
