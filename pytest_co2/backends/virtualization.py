"""Whether this is a virtual machine or a container, from plain files under a ``root`` folder.

:func:`detect_vm`: the ``hypervisor`` CPU flag decides; DMI (``sys/class/dmi/id/*``) names
the hypervisor. :func:`in_container`: a container marker file exists. Nothing raises on a
missing or malformed file.
"""

from __future__ import annotations

from pathlib import Path

from ..frozen import Frozen, record
from .cpuinfo import DEFAULT_ROOT, CpuInfo


@record
class Virtualization(Frozen):
    """Whether this machine is a VM guest, of which hypervisor, and how that was told."""

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


def in_container(root: str | Path = DEFAULT_ROOT) -> bool:
    """A container marker file exists (``/.dockerenv``, ``/run/.containerenv``)."""
    root = Path(root)
    return (root / ".dockerenv").exists() or (root / "run" / ".containerenv").exists()
