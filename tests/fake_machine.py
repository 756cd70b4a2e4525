"""Fake ``/proc`` and ``/sys`` trees for the CPU identification and estimate tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def cpuinfo_text(
    n: int,
    *,
    vendor: str = "AuthenticAMD",
    family: int | None = 26,
    model: int | None = 2,
    stepping: int | None = 1,
    name: str | None = "AMD EPYC",
    flags: str = "fpu sse2 avx2",
    siblings: int | None = None,
    extra: str = "",
) -> str:
    """``n`` processor entries in the x86 ``/proc/cpuinfo`` format."""
    blocks = []
    for i in range(n):
        lines = [f"processor\t: {i}", f"vendor_id\t: {vendor}"]
        if family is not None:
            lines.append(f"cpu family\t: {family}")
        if model is not None:
            lines.append(f"model\t\t: {model}")
        if name is not None:
            lines.append(f"model name\t: {name}")
        if stepping is not None:
            lines.append(f"stepping\t: {stepping}")
        lines.append(f"siblings\t: {siblings if siblings is not None else n}")
        lines.append(f"flags\t\t: {flags}")
        blocks.append("\n".join(lines) + extra)
    return "\n\n".join(blocks) + "\n"


def make_tree(
    root: Path,
    cpuinfo: str | None,
    *,
    dmi: Mapping[str, str] | None = None,
    cpus_allowed: str | None = "0-1",
    cgroup: str | None = "0::/\n",
    cgroup_files: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write a machine under ``root``; ``None`` leaves the file out. Returns ``root``."""

    def write(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    root.mkdir(parents=True, exist_ok=True)
    if cpuinfo is not None:
        write("proc/cpuinfo", cpuinfo)
    if cpus_allowed is not None:
        write("proc/self/status", f"Name:\tpython\nCpus_allowed_list:\t{cpus_allowed}\n")
    if cgroup is not None:
        write("proc/self/cgroup", cgroup)
    for rel, text in (cgroup_files or {}).items():
        write(f"sys/fs/cgroup/{rel}", text)
    for name, text in (dmi or {}).items():
        write(f"sys/class/dmi/id/{name}", text + "\n")
    for rel, text in (files or {}).items():
        write(rel, text)
    return root


KVM_DMI = {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}


FAKE_HOST_CPU = "AMD EPYC 9654 96-Core Processor"
FAKE_HOST_CPUS = 4


def fake_host(root: Path) -> Path:
    """The machine every test sees by default (``tests/conftest.py``): bare metal, 4 threads of
    an AMD EPYC 9654 (a SPECpower model), all allowed, no cgroup quota, no RAPL, no GPU."""
    return make_tree(
        root,
        cpuinfo_text(FAKE_HOST_CPUS, family=25, model=17, name=FAKE_HOST_CPU, siblings=192),
        cpus_allowed=f"0-{FAKE_HOST_CPUS - 1}",
        files={"sys/class/powercap/.keep": "", "dev/.keep": ""},
    )
