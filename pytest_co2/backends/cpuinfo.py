"""What CPU this is: vendor, CPUID family/model/stepping, model name and microarchitecture.

Everything here reads ``proc/cpuinfo`` under a ``root`` folder (``/`` by default) so tests
can pass fake trees; nothing raises on a missing or malformed file: the result says what was
missing and the caller falls back.

- :func:`read_cpuinfo`: vendor, CPUID family/model/stepping, model name, flags, threads.
- :func:`microarchitecture`: CPUID family/model (stepping where it matters, e.g.
  Skylake-SP vs Cascade Lake) -> an id of the shipped power table, and how it was found.
- :func:`normalize_cpu_model` / :func:`match_cpu_model`: model name -> table key.

Whether it is a virtual machine: :mod:`.virtualization`; the CPUs the process may use:
:mod:`.cpu_allowance`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..frozen import Frozen, record

DEFAULT_ROOT = Path("/")
# Test-only: the test suite names a fake machine's "/" here so that its runs see one host
# everywhere; unset (every user), host facts come from the real "/".
HOST_ROOT_ENV = "_PYTEST_CO2_HOST_ROOT"


def host_root() -> Path:
    """Where backends read host facts by default: ``/``, or ``$_PYTEST_CO2_HOST_ROOT``."""
    return Path(os.environ.get(HOST_ROOT_ENV) or DEFAULT_ROOT)


# -- /proc/cpuinfo ------------------------------------------------------------------------
@record
class CpuInfo(Frozen):
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
# Scanned with string methods, not regular expressions: compiling the patterns cost about 2.7 M
# instructions, paid by every run that opens the CPU estimate. Word boundaries are those of
# ``re``'s ``\b``: a word character is alphanumeric or ``_``.
_NOISE_WORDS = ("intel", "amd", "xeon", "processor", "cpu", "multi-core")
_AMD_WORDS = ("amd", "opteron", "epyc", "ryzen", "hygon")
_ARM_WORDS = ("arm", "ampere", "altra", "grace", "neoverse", "graviton", "cortex")


def _word_char(text: str, i: int) -> bool:
    """Whether ``text[i]`` exists and is a word character."""
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")


def _word_at(text: str, i: int, word: str) -> bool:
    """Whether ``word`` (of word characters at both ends) stands at ``i`` as a whole word."""
    return (
        text.startswith(word, i)
        and not _word_char(text, i - 1)
        and not _word_char(text, i + len(word))
    )


def _has_word(text: str, words: tuple[str, ...]) -> bool:
    for word in words:
        i = text.find(word)
        while i >= 0:
            if _word_at(text, i, word):
                return True
            i = text.find(word, i + 1)
    return False


def _to_line_end(text: str, i: int) -> int | None:
    """Where ``.*$`` from ``i`` ends: the end, or a newline that is the last character;
    None where a newline comes before (no match)."""
    k = text.find("\n", i)
    return len(text) if k < 0 else (k if k == len(text) - 1 else None)


def _mark_end(text: str, i: int) -> int | None:
    """A trademark sign: ``(r)``, ``(tm)``, ``(c)``."""
    mark = next((m for m in ("(r)", "(tm)", "(c)") if text.startswith(m, i)), None)
    return None if mark is None else i + len(mark)


def _bracket_end(text: str, i: int) -> int | None:
    k = text.find("]", i + 1)
    return None if k < 0 else k + 1


def _count_end(text: str, i: int) -> int | None:
    """A count of cores or bits: ``64-core``, ``64-bit``."""
    j = i
    while j < len(text) and text[j].isdecimal():
        j += 1
    tail = next((t for t in ("-core", "-bit") if text.startswith(t, j)), "")
    return j + len(tail) if tail and not _word_char(text, j + len(tail)) else None


def _word_end(text: str, i: int) -> int | None:
    """A vendor or brand word, ``dell sku``, or ``with radeon`` and the rest of the line."""
    word = next((w for w in (*_NOISE_WORDS, "dell sku") if _word_at(text, i, w)), None)
    if word is not None:
        return i + len(word)
    return _to_line_end(text, i + 11) if _word_at(text, i, "with radeon") else None


#: Noise that may start anywhere, by its first character (the rest start a word).
_ANYWHERE: dict[str, Callable[[str, int], int | None]] = {
    "(": _mark_end,
    "®": lambda text, i: i + 1,
    "™": lambda text, i: i + 1,
    ",": lambda text, i: i + 1,
    "[": _bracket_end,
    "@": lambda text, i: _to_line_end(text, i + 1),  # the frequency: "@ 2.50GHz"
}


def _noise_end(text: str, i: int) -> int | None:
    """The end of the noise that starts at ``i`` (trademarks, commas, bracketed text, core
    and bit counts, vendor and brand words, the frequency after ``@``, ``with radeon ...``),
    None where none does."""
    c = text[i]
    anywhere = _ANYWHERE.get(c)
    if anywhere is not None:
        return anywhere(text, i)
    if _word_char(text, i - 1):
        return None
    return _count_end(text, i) if c.isdecimal() else _word_end(text, i)


def normalize_cpu_model(name: str) -> str:
    """Lower-case tokens of a CPU model without vendor, brand, trademarks and frequency."""
    text, out, i = name.lower(), [], 0
    while i < len(text):  # "Xeon-D 2776NT" = "D-2776NT"
        if text.startswith("xeon-d", i):
            j = i + 6
            while j < len(text) and text[j].isspace():
                j += 1
            if j > i + 6 and not _word_char(text, i - 1):
                out.append("d-")
                i = j
                continue
        out.append(text[i])
        i += 1
    text, out, i = "".join(out), [], 0
    while i < len(text):
        end = _noise_end(text, i)
        if end is None:
            out.append(text[i])
            i += 1
        else:
            out.append(" ")
            i = end
    return " ".join("".join(out).split())


def model_vendor(name: str) -> str:
    """``amd``, ``arm`` or ``intel``: whose names a CPU description may match."""
    low = name.lower()
    if _has_word(low, _AMD_WORDS):
        return "amd"
    if _has_word(low, _ARM_WORDS):
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
            if not (after[:1] == "v" and after[1:].isdecimal()):  # a version: v6
                return candidate
    return None
