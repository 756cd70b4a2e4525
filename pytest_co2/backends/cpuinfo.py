"""What CPU this is, whether it is a virtual machine, and how many CPUs the process may use.

Everything here reads plain files under a ``root`` folder (``/`` by default) so tests can
pass fake trees: ``proc/cpuinfo``, ``proc/self/status`` (``Cpus_allowed_list``),
``proc/self/cgroup`` with ``sys/fs/cgroup/...`` (``cpu.max`` of cgroup v2, or
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of v1) and ``sys/class/dmi/id/*``. Nothing
raises on a missing or malformed file: the result says what was missing and the caller
falls back.

- :func:`read_cpuinfo`: vendor, CPUID family/model/stepping, model name, flags, threads.
- :func:`microarchitecture`: CPUID family/model (stepping where it matters, e.g.
  Skylake-SP vs Cascade Lake) -> an id of the shipped power table, and how it was found.
- :func:`detect_vm`: the ``hypervisor`` CPU flag decides; DMI names the hypervisor.
- :func:`cpu_allowance`: the CPUs the process may use, min(visible CPUs, affinity mask,
  cgroup CPU quota), possibly fractional (a quota of 1.5 CPUs).
- :func:`normalize_cpu_model` / :func:`match_cpu_model`: model name -> table key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ROOT = Path("/")
# Test-only: the test suite names a fake machine's "/" here so that its runs see one host
# everywhere; unset (every user), host facts come from the real "/".
HOST_ROOT_ENV = "_PYTEST_CO2_HOST_ROOT"


def host_root() -> Path:
    """Where backends read host facts by default: ``/``, or ``$_PYTEST_CO2_HOST_ROOT``."""
    return Path(os.environ.get(HOST_ROOT_ENV) or DEFAULT_ROOT)


# -- /proc/cpuinfo ------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuInfo:
    """What ``/proc/cpuinfo`` says about the first CPU, and how many CPUs it lists."""

    vendor: str = ""  # "AMD", "Intel", "Hygon", "Arm", or the raw vendor_id; "" if unknown
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    model_name: str = ""
    flags: frozenset[str] = frozenset()
    cpuid_level: int | None = None
    logical_cpus: int = 0  # "processor" entries; 0 if unreadable
    siblings: int | None = None  # threads per package as the kernel sees it (a VM: vCPUs)
    arm_implementer: int | None = None
    arm_part: int | None = None
    problem: str = ""  # why the file gave nothing usable, "" if it was fine


_VENDORS = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel", "HygonGenuine": "Hygon"}


def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def read_cpuinfo(path: str | Path = "/proc/cpuinfo") -> CpuInfo:
    """Parse ``path`` (``/proc/cpuinfo`` format); never raises."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return CpuInfo(problem=f"{path} unreadable ({exc.strerror or exc})")
    first: dict[str, str] = {}
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "processor":
            processors += 1
        first.setdefault(key, value.strip())
    if not first:
        return CpuInfo(problem=f"{path} has no 'key : value' lines")
    raw_vendor = first.get("vendor_id", "")
    implementer = _int(first.get("cpu implementer"), 16)
    vendor = _VENDORS.get(raw_vendor, raw_vendor)
    if not vendor and implementer is not None:
        vendor = "Arm"
    flags = first.get("flags") or first.get("features") or ""
    name = first.get("model name", "")
    info = CpuInfo(
        vendor=vendor,
        family=_int(first.get("cpu family")),
        model=_int(first.get("model")) if raw_vendor else None,
        stepping=_int(first.get("stepping")),
        model_name=" ".join(name.split()),
        flags=frozenset(flags.split()),
        cpuid_level=_int(first.get("cpuid level")),
        logical_cpus=processors,
        siblings=_int(first.get("siblings")),
        arm_implementer=implementer,
        arm_part=_int(first.get("cpu part"), 16),
    )
    if not vendor and info.family is None and not info.model_name:
        return CpuInfo(logical_cpus=processors, problem=f"{path} names no CPU vendor or model")
    return info


# -- microarchitecture from CPUID ------------------------------------------------------------
# Intel family 6 model -> table id (models from Intel's SDM and the Linux intel-family.h).
_INTEL_FAMILY6: dict[int, str] = {
    42: "sandybridge",
    45: "sandybridge",
    58: "ivybridge",
    62: "ivybridge",
    60: "haswell",
    63: "haswell",
    69: "haswell",
    70: "haswell",
    61: "broadwell",
    71: "broadwell",
    79: "broadwell",
    86: "broadwell",
    78: "skylake",
    94: "skylake",
    165: "coffeelake",  # Comet Lake: the same core, Coffee Lake figures
    166: "coffeelake",
    106: "icelake",
    108: "icelake",
    125: "icelake",
    126: "icelake",
    167: "rocketlake",
    143: "sapphirerapids",
    207: "emeraldrapids",
    173: "graniterapids",
    174: "graniterapids",
    175: "sierraforest",
    183: "raptorlake",
    186: "raptorlake",
    191: "raptorlake",
}
_INTEL_AMX = frozenset({"sapphirerapids", "emeraldrapids", "graniterapids"})
# Arm (implementer 0x41) part -> table id
_ARM_PARTS = {0xD0C: "neoverse-n1", 0xD4F: "neoverse-v2"}


def _amd_zen(family: int, model: int) -> str | None:
    if family == 23:  # 0x17: Zen / Zen+ below model 0x30, Zen 2 from 0x30
        return "zen" if model < 0x30 else "zen2"
    if family == 25:  # 0x19: Zen 4 in these model ranges, Zen 3 (and 3+) otherwise
        zen4 = 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF
        return "zen4" if zen4 else "zen3"
    if family == 26:  # 0x1A
        return "zen5"
    return None


def microarchitecture(cpu: CpuInfo) -> tuple[str | None, str]:
    """(table id or None, how it was found) from the CPUID fields of ``cpu``.

    The CPU flags overrule a CPUID model that cannot have them (hypervisors may report a
    templated model): AMX means Sapphire Rapids or later (Granite Rapids with ``amx_fp16``
    or a CPUID level of 0x24, the AVX10 leaf), AVX-512 on AMD family 25 means Zen 4.
    """
    family, model, stepping = cpu.family, cpu.model, cpu.stepping
    arch: str | None = None
    if cpu.vendor in ("AMD", "Hygon") and family is not None:
        how = f"CPUID family {family}"
        arch = "zen" if cpu.vendor == "Hygon" and family == 24 else None
        if arch is None and model is not None:
            arch = _amd_zen(family, model)
            if family == 25:
                how += f" model {model:#x}"
                if arch == "zen3" and "avx512f" in cpu.flags:
                    arch, how = "zen4", how + " with AVX-512"
        return arch, how
    if cpu.vendor == "Intel" and family is not None and model is not None:
        how = f"CPUID family {family} model {model}"
        if family == 6:
            arch = _INTEL_FAMILY6.get(model)
            if model == 85:  # Skylake-SP steppings 0-4, Cascade Lake 5-7, Cooper Lake 10-11
                how += f" stepping {stepping}"
                if stepping is None:
                    arch = "skylake-sp"
                else:
                    arch = (
                        "skylake-sp"
                        if stepping < 5
                        else "cooperlake"
                        if stepping >= 10
                        else "cascadelake"
                    )
            elif model in (142, 158):  # Kaby Lake below stepping 10 (Skylake core), Coffee Lake
                how += f" stepping {stepping}"
                arch = "coffeelake" if (stepping or 0) >= 10 else "skylake"
        if "amx_tile" in cpu.flags and arch not in _INTEL_AMX:
            granite = "amx_fp16" in cpu.flags or (cpu.cpuid_level or 0) >= 0x24
            evidence = "amx_tile" + (
                " and CPUID level 36" if granite and "amx_fp16" not in cpu.flags else ""
            )
            how = f"CPU flag {evidence}; {how} does not fit"
            arch = "graniterapids" if granite else "sapphirerapids"
        return arch, how
    if cpu.arm_implementer is not None:
        how = f"CPU implementer {cpu.arm_implementer:#x} part {cpu.arm_part or 0:#x}"
        arch = _ARM_PARTS.get(cpu.arm_part or -1) if cpu.arm_implementer == 0x41 else None
        return arch, how
    return None, "no CPUID family/model" + (f" ({cpu.problem})" if cpu.problem else "")


# -- model names ---------------------------------------------------------------------------
_NOISE = re.compile(
    r"\((?:r|tm|c)\)|®|™|,|\[[^\]]*\]|\bdell sku\b|\b\d+-core\b|\b\d+-bit\b"
    r"|\b(?:intel|amd|xeon|processor|cpu|multi-core)\b|@.*$"
    r"|\bwith radeon\b.*$"
)
_VERSION = re.compile(r"v\d+")


def normalize_cpu_model(name: str) -> str:
    """Lower-case tokens of a CPU model without vendor, brand, trademarks and frequency."""
    text = re.sub(r"\bxeon-d\s+", "d-", name.lower())  # "Xeon-D 2776NT" = "D-2776NT"
    return " ".join(_NOISE.sub(" ", text).split())


def model_vendor(name: str) -> str:
    """``amd``, ``arm`` or ``intel``: whose names a CPU description may match."""
    low = name.lower()
    if re.search(r"\b(?:amd|opteron|epyc|ryzen|hygon)\b", low):
        return "amd"
    if re.search(r"\b(?:arm|ampere|altra|grace|neoverse|graviton|cortex)\b", low):
        return "arm"
    return "intel"


def match_cpu_model(name: str, keys: Mapping[str, str]) -> str | None:
    """The longest key of ``keys`` (normalized name -> vendor) found in ``name``, or None.

    Keys match whole tokens of the same vendor; a key without a version does not match a
    name whose next token is one (``E3-1230`` is not ``E3-1230 v6``).
    """
    tokens = normalize_cpu_model(name).split()
    vendor = model_vendor(name)
    for length in range(len(tokens), 0, -1):
        for start in range(len(tokens) - length + 1):
            candidate = " ".join(tokens[start : start + length])
            if keys.get(candidate) != vendor:
                continue
            after = tokens[start + length] if start + length < len(tokens) else ""
            if not _VERSION.fullmatch(after):
                return candidate
    return None


# -- virtual machine ------------------------------------------------------------------------
@dataclass(frozen=True)
class Virtualization:
    is_vm: bool
    hypervisor: str  # "KVM", "Hyper-V", ...; "" when not named
    evidence: str  # e.g. "hypervisor CPU flag; DMI sys_vendor 'QEMU'"

    @property
    def label(self) -> str:
        """``KVM guest``, ``VM guest`` or ``bare metal``."""
        if not self.is_vm:
            return "bare metal"
        return f"{self.hypervisor} guest" if self.hypervisor else "VM guest"


# (substring of sys_vendor / product_name / bios_vendor, lower case) -> hypervisor
_DMI_HYPERVISORS = (
    ("qemu", "KVM"),
    ("kvm", "KVM"),
    ("openstack", "KVM"),
    ("google compute engine", "KVM"),
    ("amazon ec2", "KVM"),  # Nitro; .metal instances have the same DMI but no hypervisor flag
    ("bochs", "KVM"),
    ("microsoft corporation virtual machine", "Hyper-V"),
    ("vmware", "VMware"),
    ("xen", "Xen"),
    ("innotek", "VirtualBox"),
    ("virtualbox", "VirtualBox"),
    ("parallels", "Parallels"),
    ("bhyve", "bhyve"),
)
_DMI_FILES = ("sys_vendor", "product_name", "bios_vendor", "board_vendor")


def read_dmi(dmi_dir: str | Path) -> dict[str, str]:
    """The readable, non-empty DMI fields of :data:`_DMI_FILES` under ``dmi_dir``."""
    fields = {}
    for name in _DMI_FILES:
        try:
            value = (Path(dmi_dir) / name).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if value:
            fields[name] = " ".join(value.split())
    return fields


def detect_vm(cpu: CpuInfo, dmi_dir: str | Path) -> Virtualization:
    """A VM when the ``hypervisor`` flag is set (or, without flags, when DMI names one)."""
    dmi = read_dmi(dmi_dir)
    text = " ".join(dmi.get(k, "") for k in ("sys_vendor", "product_name", "bios_vendor")).lower()
    named = next((hv for key, hv in _DMI_HYPERVISORS if key in text), "")
    dmi_part = (
        "; DMI " + ", ".join(f"{k} {v!r}" for k, v in dmi.items() if k != "board_vendor")
        if dmi
        else f"; DMI unreadable ({dmi_dir})"
    )
    if "hypervisor" in cpu.flags:
        return Virtualization(True, named, "hypervisor CPU flag" + dmi_part)
    if not cpu.flags and named:
        return Virtualization(True, named, "no CPU flags" + dmi_part)
    return Virtualization(
        False, "", ("no hypervisor CPU flag" if cpu.flags else "no CPU flags") + dmi_part
    )


# -- CPUs the process may use ----------------------------------------------------------------
@dataclass(frozen=True)
class CpuAllowance:
    """How many CPUs (hardware threads) the process may use, and why."""

    cpus: float  # min of the limits below that are known; >= 0.01
    visible: int  # CPUs the kernel shows (cpuinfo processors, else os.cpu_count)
    affinity: int | None = None  # CPUs in the affinity mask
    quota_cpus: float | None = None  # cgroup CPU quota / period
    quota_source: str = ""  # e.g. "cgroup v2 cpu.max 150000 100000"
    notes: tuple[str, ...] = field(default=())

    @property
    def limited_by(self) -> str:
        """What sets :attr:`cpus`: ``quota``, ``affinity`` or ``visible``."""
        if self.quota_cpus is not None and self.cpus == self.quota_cpus:
            return "quota"
        if self.affinity is not None and self.cpus == self.affinity < self.visible:
            return "affinity"
        return "visible"


def parse_cpu_list(text: str) -> int | None:
    """Number of CPUs in a kernel CPU list such as ``0-3,8,10-11``; None if malformed."""
    count = 0
    for part in text.strip().split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            return None
        count += (int(hi) - int(lo) + 1) if sep else 1
    return count if count > 0 else None


def _affinity(root: Path) -> tuple[int | None, str]:
    status = root / "proc" / "self" / "status"
    try:
        for line in status.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Cpus_allowed_list":
                count = parse_cpu_list(value)
                if count is None:
                    return None, f"malformed Cpus_allowed_list {value.strip()!r} in {status}"
                return count, ""
    except OSError:
        pass
    if root == DEFAULT_ROOT and hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), ""
    return None, f"no Cpus_allowed_list in {status}"


def _cgroup_paths(root: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu controller path) of this process from proc/self/cgroup."""
    v2 = v1 = None
    try:
        lines = (root / "proc" / "self" / "cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "cpu" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _ancestors(path: str) -> list[str]:
    """``/a/b`` -> ``["a/b", "a", ""]``: the cgroup and its parents, as relative paths."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _quota_v2(root: Path, path: str) -> tuple[float | None, str, list[str]]:
    best: float | None = None
    source, notes = "", []
    for rel in _ancestors(path):
        file = root / "sys" / "fs" / "cgroup" / rel / "cpu.max"
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        fields = text.split()
        if len(fields) == 2 and fields[0] == "max":
            continue
        try:
            quota, period = float(fields[0]), float(fields[1])
        except (ValueError, IndexError):
            notes.append(f"malformed {file}: {text!r}")
            continue
        if quota > 0 and period > 0 and (best is None or quota / period < best):
            best, source = quota / period, f"cgroup v2 cpu.max {fields[0]} {fields[1]}"
    return best, source, notes


def _quota_v1(root: Path, path: str) -> tuple[float | None, str, list[str]]:
    best: float | None = None
    source, notes = "", []
    for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        base = root / "sys" / "fs" / "cgroup" / mount
        if not base.is_dir():
            continue
        for rel in _ancestors(path):
            d = base / rel
            try:
                quota_text = (d / "cpu.cfs_quota_us").read_text(encoding="utf-8").strip()
                period_text = (d / "cpu.cfs_period_us").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            try:
                quota, period = float(quota_text), float(period_text)
            except ValueError:
                notes.append(f"malformed cfs quota/period in {d}: {quota_text!r} {period_text!r}")
                continue
            if quota > 0 and period > 0 and (best is None or quota / period < best):
                best = quota / period
                source = (
                    f"cgroup v1 cpu.cfs_quota_us {quota_text} / cpu.cfs_period_us {period_text}"
                )
        break
    return best, source, notes


def cpu_allowance(root: str | Path = DEFAULT_ROOT, visible: int | None = None) -> CpuAllowance:
    """min(visible CPUs, affinity mask, cgroup quota) under ``root``; never raises.

    ``visible`` defaults to the processors of ``root/proc/cpuinfo``, else ``os.cpu_count()``.
    The quota of a cgroup is the smallest quota/period of it and its parents.
    """
    root = Path(root)
    notes: list[str] = []
    if visible is None or visible < 1:
        visible = read_cpuinfo(root / "proc" / "cpuinfo").logical_cpus or os.cpu_count() or 1
    affinity, why = _affinity(root)
    if why:
        notes.append(why)
    v2, v1 = _cgroup_paths(root)
    quota, source = None, ""
    if v2 is not None:
        quota, source, more = _quota_v2(root, v2)
        notes.extend(more)
    if quota is None and v1 is not None:
        quota, source, more = _quota_v1(root, v1)
        notes.extend(more)
    if v2 is None and v1 is None:
        notes.append(f"no cgroup in {root / 'proc' / 'self' / 'cgroup'}: no CPU quota read")
    limits = [float(visible)] + [x for x in (affinity, quota) if x is not None]
    return CpuAllowance(
        cpus=max(min(limits), 0.01),
        visible=visible,
        affinity=affinity,
        quota_cpus=quota,
        quota_source=source,
        notes=tuple(notes),
    )


def in_container(root: str | Path = DEFAULT_ROOT) -> bool:
    """A container marker file exists (``/.dockerenv``, ``/run/.containerenv``)."""
    root = Path(root)
    return (root / ".dockerenv").exists() or (root / "run" / ".containerenv").exists()
