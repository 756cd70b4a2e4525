"""CPU identification, VM detection and the CPUs a process may use, from fake trees."""

from __future__ import annotations

import csv
import re
from importlib import resources
from pathlib import Path

import pytest
from fake_machine import KVM_DMI, cpuinfo_text, make_tree
from hypothesis import given
from hypothesis import strategies as st

from pytest_co2.backends.cpu_allowance import cpu_allowance, parse_cpu_list
from pytest_co2.backends.cpuinfo import (
    CpuInfo,
    match_cpu_model,
    microarchitecture,
    model_vendor,
    normalize_cpu_model,
    read_cpuinfo,
)
from pytest_co2.backends.virtualization import detect_vm


def test_read_cpuinfo_masked_zen5_guest(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo_text(2, flags="fpu avx2 hypervisor"), encoding="utf-8")
    cpu = read_cpuinfo(path)
    assert (cpu.vendor, cpu.family, cpu.model, cpu.stepping) == ("AMD", 26, 2, 1)
    assert (cpu.model_name, cpu.logical_cpus, cpu.siblings) == ("AMD EPYC", 2, 2)
    assert "hypervisor" in cpu.flags and cpu.problem == ""
    assert microarchitecture(cpu) == ("zen5", "CPUID family 26")


def test_read_cpuinfo_missing_and_malformed(tmp_path: Path) -> None:
    missing = read_cpuinfo(tmp_path / "nope")
    assert missing.problem.startswith(f"{tmp_path / 'nope'} unreadable")
    assert microarchitecture(missing)[0] is None
    bad = tmp_path / "bad"
    bad.write_text("garbage without colons\n\x00\x01", encoding="utf-8")
    assert read_cpuinfo(bad).problem == f"{bad} has no 'key : value' lines"
    riscv = tmp_path / "riscv"
    riscv.write_text("processor\t: 0\nhart\t\t: 0\nisa\t\t: rv64imafdc\n", encoding="utf-8")
    info = read_cpuinfo(riscv)
    assert info.problem == f"{riscv} names no CPU vendor or model" and info.logical_cpus == 1
    assert microarchitecture(info) == (None, f"no CPUID family/model ({info.problem})")


def test_read_cpuinfo_arm(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n",
        encoding="utf-8",
    )
    cpu = read_cpuinfo(path)
    assert (cpu.vendor, cpu.arm_implementer, cpu.arm_part) == ("Arm", 0x41, 0xD0C)
    assert microarchitecture(cpu) == ("neoverse-n1", "CPU implementer 0x41 part 0xd0c")


def _cpu(vendor: str, family: int, model: int, stepping: int = 0, **kw: object) -> CpuInfo:
    return CpuInfo(vendor=vendor, family=family, model=model, stepping=stepping, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cpu, expected",
    [
        (_cpu("AMD", 23, 0x01), ("zen", "CPUID family 23")),
        (_cpu("AMD", 23, 0x31), ("zen2", "CPUID family 23")),
        (_cpu("AMD", 25, 0x01), ("zen3", "CPUID family 25 model 0x1")),
        (_cpu("AMD", 25, 0x11), ("zen4", "CPUID family 25 model 0x11")),
        (_cpu("AMD", 25, 0xA0), ("zen4", "CPUID family 25 model 0xa0")),
        (
            _cpu("AMD", 25, 0x01, flags=frozenset({"avx512f"})),
            ("zen4", "CPUID family 25 model 0x1 with AVX-512"),
        ),
        (_cpu("AMD", 26, 0x11), ("zen5", "CPUID family 26")),
        (_cpu("AMD", 21, 0x02), (None, "CPUID family 21")),
        (_cpu("Hygon", 24, 0x01), ("zen", "CPUID family 24")),
        (_cpu("Intel", 6, 85, 4), ("skylake-sp", "CPUID family 6 model 85 stepping 4")),
        (_cpu("Intel", 6, 85, 5), ("cascadelake", "CPUID family 6 model 85 stepping 5")),
        (_cpu("Intel", 6, 85, 7), ("cascadelake", "CPUID family 6 model 85 stepping 7")),
        (_cpu("Intel", 6, 85, 11), ("cooperlake", "CPUID family 6 model 85 stepping 11")),
        (_cpu("Intel", 6, 158, 9), ("skylake", "CPUID family 6 model 158 stepping 9")),
        (_cpu("Intel", 6, 158, 10), ("coffeelake", "CPUID family 6 model 158 stepping 10")),
        (_cpu("Intel", 6, 106), ("icelake", "CPUID family 6 model 106")),
        (_cpu("Intel", 6, 143), ("sapphirerapids", "CPUID family 6 model 143")),
        (_cpu("Intel", 6, 207), ("emeraldrapids", "CPUID family 6 model 207")),
        (_cpu("Intel", 6, 173), ("graniterapids", "CPUID family 6 model 173")),
        (_cpu("Intel", 6, 167), ("rocketlake", "CPUID family 6 model 167")),
        (_cpu("Intel", 6, 1), (None, "CPUID family 6 model 1")),
        # a templated CPUID model that cannot have AMX: the flags decide
        (
            _cpu("Intel", 6, 167, flags=frozenset({"amx_tile"}), cpuid_level=32),
            ("sapphirerapids", "CPU flag amx_tile; CPUID family 6 model 167 does not fit"),
        ),
        (
            _cpu("Intel", 6, 167, flags=frozenset({"amx_tile"}), cpuid_level=36),
            (
                "graniterapids",
                "CPU flag amx_tile and CPUID level 36; CPUID family 6 model 167 does not fit",
            ),
        ),
        (
            _cpu("Intel", 6, 167, flags=frozenset({"amx_tile", "amx_fp16"})),
            ("graniterapids", "CPU flag amx_tile; CPUID family 6 model 167 does not fit"),
        ),
        (
            _cpu("Intel", 6, 143, flags=frozenset({"amx_tile"})),
            ("sapphirerapids", "CPUID family 6 model 143"),
        ),
    ],
)
def test_microarchitecture(cpu: CpuInfo, expected: tuple[str | None, str]) -> None:
    assert microarchitecture(cpu) == expected


def test_this_machine_cpuinfo_reads() -> None:
    cpu = read_cpuinfo()
    arch, how = microarchitecture(cpu)
    assert cpu.problem == "" or arch is None
    assert how


def test_model_names() -> None:
    assert normalize_cpu_model("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz") == "gold 6248"
    assert normalize_cpu_model("AMD EPYC 7763 64-Core Processor") == "epyc 7763"
    assert normalize_cpu_model("AMD Ryzen 7 5800H with Radeon Graphics") == "ryzen 7 5800h"
    assert normalize_cpu_model("Intel Xeon-D 2776NT") == "d-2776nt"
    keys = {"epyc 7763": "amd", "e3-1230": "intel", "6238": "intel", "epyc 7b13": "amd"}
    assert match_cpu_model("AMD EPYC 7763 64-Core Processor", keys) == "epyc 7763"
    assert match_cpu_model("AMD EPYC", keys) is None  # masked
    assert match_cpu_model("Intel Xeon E3-1230 v6", keys) is None  # not the v1 part
    assert match_cpu_model("Intel Xeon E3-1230", keys) == "e3-1230"
    assert match_cpu_model("AMD Opteron 6238", keys) is None  # an Intel name, an AMD CPU
    assert match_cpu_model("Intel(R) Xeon(R) Gold 6238 CPU", keys) == "6238"


# The scanner's specification: the regular expressions it replaced (compiling them cost
# more than the rest of opening the CPU estimate).
NOISE = re.compile(
    r"\((?:r|tm|c)\)|®|™|,|\[[^\]]*\]|\bdell sku\b|\b\d+-core\b|\b\d+-bit\b"
    r"|\b(?:intel|amd|xeon|processor|cpu|multi-core)\b|@.*$"
    r"|\bwith radeon\b.*$"
)


def normalized_by_regex(name: str) -> str:
    text = re.sub(r"\bxeon-d\s+", "d-", name.lower())
    return " ".join(NOISE.sub(" ", text).split())


def vendor_by_regex(name: str) -> str:
    low = name.lower()
    if re.search(r"\b(?:amd|opteron|epyc|ryzen|hygon)\b", low):
        return "amd"
    if re.search(r"\b(?:arm|ampere|altra|grace|neoverse|graviton|cortex)\b", low):
        return "arm"
    return "intel"


def _shipped_names() -> list[str]:
    names = []
    for table in ("cpu_power.csv", "cpu_power_per_thread.csv"):
        text = resources.files("pytest_co2.data").joinpath(table).read_text(encoding="utf-8")
        rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].startswith("#")]
        names += [cell for row in rows for cell in row]
    return names


def test_model_names_are_scanned_as_the_regular_expressions_said() -> None:
    names = _shipped_names()
    assert len(names) > 1000
    for name in names:
        assert normalize_cpu_model(name) == normalized_by_regex(name), name
        assert model_vendor(name) == vendor_by_regex(name), name


PIECES = [
    "intel", "amd", "xeon", "xeon-d", "processor", "cpu", "multi-core", "dell sku", "dell",
    "sku", "(r)", "(tm)", "(c)", "(", ")", "®", "™", ",", "[", "]", "@", "\n", " ", "\t",
    "2", "64", "-core", "-bit", "with radeon", "with", "radeon", "_", "é", "x", "v", "6",
    "epyc", "arm", "ampere", "altra", "graviton", "grace", "-", "Intel", "AMD", "٣",
]  # fmt: skip


@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_any_text_is_scanned_as_the_regular_expressions_said(name: str) -> None:
    assert normalize_cpu_model(name) == normalized_by_regex(name)
    assert model_vendor(name) == vendor_by_regex(name)


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == 7
    assert parse_cpu_list("5") == 1
    assert parse_cpu_list("") is None
    assert parse_cpu_list("0-x") is None


def test_detect_vm(tmp_path: Path) -> None:
    hv = CpuInfo(vendor="AMD", flags=frozenset({"hypervisor"}))
    metal = CpuInfo(vendor="AMD", flags=frozenset({"fpu"}))
    kvm = make_tree(tmp_path / "kvm", None, dmi=KVM_DMI) / "sys/class/dmi/id"
    vm = detect_vm(hv, kvm)
    assert (vm.is_vm, vm.hypervisor, vm.label) == (True, "KVM", "KVM guest")
    assert vm.evidence == (
        "hypervisor CPU flag; DMI sys_vendor 'QEMU', product_name 'Standard PC (Q35 + ICH9, 2009)'"
    )
    hyperv = make_tree(
        tmp_path / "hv",
        None,
        dmi={"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"},
    )
    assert detect_vm(hv, hyperv / "sys/class/dmi/id").label == "Hyper-V guest"
    nodmi = detect_vm(hv, tmp_path / "none")
    assert (nodmi.label, nodmi.evidence) == (
        "VM guest",
        f"hypervisor CPU flag; DMI unreadable ({tmp_path / 'none'})",
    )
    # EC2 .metal: the DMI of a VM but no hypervisor flag -> bare metal
    ec2 = make_tree(tmp_path / "ec2", None, dmi={"sys_vendor": "Amazon EC2"})
    assert detect_vm(metal, ec2 / "sys/class/dmi/id").label == "bare metal"
    # no flags at all (cpuinfo unreadable): DMI decides
    assert detect_vm(CpuInfo(), kvm).label == "KVM guest"


def test_allowance_visible_and_affinity(tmp_path: Path) -> None:
    root = make_tree(tmp_path, cpuinfo_text(8), cpus_allowed="0-7")
    a = cpu_allowance(root)
    assert (a.cpus, a.visible, a.affinity, a.quota_cpus, a.limited_by) == (8, 8, 8, None, "visible")
    root = make_tree(tmp_path, cpuinfo_text(8), cpus_allowed="2,4-5")
    a = cpu_allowance(root)
    assert (a.cpus, a.affinity, a.limited_by) == (3, 3, "affinity")


def test_allowance_cgroup_v2_quota_nested(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(64),
        cpus_allowed="0-63",
        cgroup="0::/kubepods/pod1/ctr\n",
        cgroup_files={
            "kubepods/cpu.max": "max 100000\n",
            "kubepods/pod1/cpu.max": "150000 100000\n",
            "kubepods/pod1/ctr/cpu.max": "400000 100000\n",
        },
    )
    a = cpu_allowance(root)
    assert (a.cpus, a.visible, a.quota_cpus) == (1.5, 64, 1.5)
    assert (a.quota_source, a.limited_by, a.notes) == (
        "cgroup v2 cpu.max 150000 100000",
        "quota",
        (),
    )


def test_allowance_cgroup_v1_quota(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(64),
        cpus_allowed="0-63",
        cgroup="12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n",
        cgroup_files={
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        },
    )
    a = cpu_allowance(root)
    assert (a.cpus, a.quota_source) == (
        2.5,
        "cgroup v1 cpu.cfs_quota_us 250000 / cpu.cfs_period_us 100000",
    )
    # unlimited v1 quota (-1): no quota
    (tmp_path / "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_allowance(root).quota_cpus is None


def test_allowance_malformed_and_missing_files(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path,
        cpuinfo_text(4),
        cpus_allowed="zero-three",
        cgroup="0::/ctr\n",
        cgroup_files={"ctr/cpu.max": "lots\n"},
    )
    a = cpu_allowance(root)
    assert a.cpus == 4 and a.quota_cpus is None and a.affinity is None
    assert a.notes == (
        f"malformed Cpus_allowed_list 'zero-three' in {root / 'proc/self/status'}",
        f"malformed {root / 'sys/fs/cgroup/ctr/cpu.max'}: 'lots'",
    )
    bare = make_tree(tmp_path / "bare", cpuinfo_text(2), cpus_allowed=None, cgroup=None)
    b = cpu_allowance(bare)
    assert b.cpus == 2
    assert b.notes == (
        f"no Cpus_allowed_list in {bare / 'proc/self/status'}",
        f"no cgroup in {bare / 'proc/self/cgroup'}: no CPU quota read",
    )
    assert cpu_allowance(tmp_path / "empty", visible=3).cpus == 3  # nothing at all


def test_allowance_here() -> None:
    a = cpu_allowance()
    assert 0 < a.cpus <= a.visible
