"""Regenerate ``pytest_co2/data/cpu_power_per_thread.csv`` from the SPECpower results.

Input: the folder of Cloud Carbon Footprint's ccf-coefficients files (default
``../shared/data/cpu-power`` next to the repository): ``SPECpower-*.csv`` (SPEC
power_ssj2008 results: whole servers at the wall, average watts at 100 % load and at active
idle) and the lists of CPU model names per microarchitecture (``amd-*.csv``, ``intel-*.csv``).

Per result: watts per hardware thread = server watts / (chips x cores per chip x threads per
core), at full load and at active idle. Each result is assigned a CPU model (its description
matched against the lists, longest name first) and through it a microarchitecture. Shipped,
per microarchitecture and per CPU model with results, and over all results published since
:data:`RECENT_FROM_YEAR` (the fallback for an unknown CPU):

- ``n``: number of results;
- ``idle_w`` / ``full_w``: the **median** watts per thread;
- ``idle_q1``..``full_q3``: the first and third quartiles (the spread, IQR);
- ``threads_per_chip``: the median threads of one package (for ``--co2-cpu-tdp``).

Rows of ``kind`` ``name`` carry no figures: they map a CPU model name without results to its
microarchitecture. Run ``python tools/build_cpu_power.py [--source DIR] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pytest_co2.backends.cpuinfo import match_cpu_model, model_vendor
from pytest_co2.backends.cpuinfo import normalize_cpu_model as normalize

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "cpu-power"
DEFAULT_OUT = ROOT / "pytest_co2" / "data" / "cpu_power_per_thread.csv"

# Results published in this year or later form the "unknown CPU" fallback (the last five
# years of the data, which reach March 2026).
RECENT_FROM_YEAR = 2021

# list file stem -> (microarchitecture id, display name). intel-skylake.csv is the union
# of the server and client lists; it only fills names missing from both.
LISTS: dict[str, tuple[str, str]] = {
    "amd-epyc-gen1": ("zen", "AMD Zen"),
    "amd-epyc-gen2": ("zen2", "AMD Zen 2"),
    "amd-epyc-gen3": ("zen3", "AMD Zen 3"),
    "amd-epyc-gen4": ("zen4", "AMD Zen 4"),
    "amd-epyc-gen5": ("zen5", "AMD Zen 5"),
    "amd-neoverse-n1": ("neoverse-n1", "Arm Neoverse N1"),
    "intel-sandybridge": ("sandybridge", "Intel Sandy Bridge"),
    "intel-ivybridge": ("ivybridge", "Intel Ivy Bridge"),
    "intel-haswell": ("haswell", "Intel Haswell"),
    "intel-broadwell": ("broadwell", "Intel Broadwell"),
    "intel-skylake-server": ("skylake-sp", "Intel Skylake-SP"),
    "intel-skylake-client": ("skylake", "Intel Skylake"),
    "intel-coffeelake": ("coffeelake", "Intel Coffee Lake"),
    "intel-cascadelake": ("cascadelake", "Intel Cascade Lake"),
    "intel-icelake": ("icelake", "Intel Ice Lake"),
    "intel-sapphirerapids": ("sapphirerapids", "Intel Sapphire Rapids"),
    "intel-emeraldrapids": ("emeraldrapids", "Intel Emerald Rapids"),
    "intel-graniterapids": ("graniterapids", "Intel Granite Rapids"),
}
SKYLAKE_UNION = "intel-skylake"

# CPU models with results that the lists lack, by the vendors' product families (facts
# from the AMD and Intel product pages): EPYC 9704 (Bergamo, Zen 4c) and 4004 (Zen 4),
# Xeon E-2300 (Rocket Lake), Xeon 6 E-cores (Sierra Forest), Xeon Cooper Lake (3rd gen
# 4/8-socket "H" parts), Xeon Ice Lake-SP/-D, E-2400 (Raptor Lake), NVIDIA Grace (Neoverse
# V2).
EXTRA_NAMES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "zen4": (
        "zen4",
        "AMD Zen 4",
        ("EPYC 9754", "EPYC 9754S", "EPYC 9734", "EPYC 4344P", "EPYC 4584PX"),
    ),
    "rocketlake": ("rocketlake", "Intel Rocket Lake", ("E-2356G", "E-2388G")),
    "sierraforest": ("sierraforest", "Intel Sierra Forest", ("6780E", "6766E")),
    "cooperlake": ("cooperlake", "Intel Cooper Lake", ("8380H", "8380HL", "8376HL")),
    "icelake": (
        "icelake",
        "Intel Ice Lake",
        (
            "5318Y",
            "6314U",
            "6336Y",
            "6338N",
            "8352M",
            "8352Y",
            "8360Y",
            "8368Q",
            "D-2776NT",
            "D-2775TE",
        ),
    ),
    "cascadelake": ("cascadelake", "Intel Cascade Lake", ("8276M",)),
    "sapphirerapids": ("sapphirerapids", "Intel Sapphire Rapids", ("6433N",)),
    "emeraldrapids": ("emeraldrapids", "Intel Emerald Rapids", ("6548Y",)),
    "raptorlake": ("raptorlake", "Intel Raptor Lake", ("E-2488",)),
    "neoverse-v2": ("neoverse-v2", "Arm Neoverse V2", ("Grace Superchip",)),
}
# Xeon Scalable names are also matched without their tier ("Xeon 8480+" = "Platinum 8480+").
TIERS = frozenset({"bronze", "silver", "gold", "platinum"})

# Cores per chip of the few results whose thread fields disagree (e.g. total threads twice
# chips x cores x threads per core), from the vendors' product pages.
CORES_PER_CHIP_FIX: dict[str, int] = {
    "6980p": 128,
    "epyc 9965": 192,
    "6780e": 144,
    "8180": 28,
    "epyc 8534p": 64,
    "8592+": 64,
    "6787p": 86,
    "e5-2470": 8,
    "e5-4650l": 8,
    "x3470": 4,
    "6174": 12,
    "l5420": 4,
}


def vendor_of(stem: str) -> str:
    """The vendor of a list file: ``amd-neoverse-n1`` holds Ampere/Graviton Arm parts."""
    return "arm" if "neoverse" in stem else stem.split("-", maxsplit=1)[0]


@dataclass(frozen=True)
class Result:
    description: str
    year: int
    threads: int
    chips: int
    full_w: float
    idle_w: float


def read_results(path: Path) -> tuple[list[Result], list[str]]:
    """The results of one SPECpower CSV, and a note for each fixed or skipped row."""
    results, notes = [], []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            desc = row["CPU Description"].strip()
            chips, per_chip = int(row["Chips"]), int(row["# Cores Per Chip"])
            tpc, total = int(row["# Threads Per Core"]), int(row["Total Threads"])
            cores = int(row["# Cores"])
            if total != chips * per_chip * tpc or cores != chips * per_chip:
                padded = f" {normalize(desc)} "
                key = next((k for k in CORES_PER_CHIP_FIX if f" {k} " in padded), None)
                if key is None:
                    notes.append(f"skipped (thread fields disagree): {desc} {row['System']}")
                    continue
                fixed = chips * CORES_PER_CHIP_FIX[key] * tpc
                notes.append(f"threads {total} -> {fixed}: {desc}, {row['System']}")
                total = fixed
            full, idle = float(row["avg. watts @ 100%"]), float(row["avg. watts @ active idle"])
            if total <= 0 or not (full > idle > 0):
                notes.append(f"skipped (watts or threads): {desc} {row['System']}")
                continue
            year = int(row["Published"].strip()[-4:])
            results.append(Result(desc, year, total, chips, full, idle))
    return results, notes


Names = dict[str, tuple[str, str, str]]


def read_names(source: Path) -> Names:
    """Normalized CPU model name -> (microarchitecture id, display name, vendor)."""
    names: Names = {}
    for stem, (arch_id, display) in LISTS.items():
        for line in (source / f"{stem}.csv").read_text(encoding="utf-8").splitlines():
            key = normalize(line)
            if key:
                names.setdefault(key, (arch_id, display, vendor_of(stem)))
    for line in (source / f"{SKYLAKE_UNION}.csv").read_text(encoding="utf-8").splitlines():
        key = normalize(line)
        if key and key not in names:
            server = key.split()[0] in TIERS
            arch_id, display = LISTS["intel-skylake-server" if server else "intel-skylake-client"]
            names[key] = (arch_id, display, "intel")
    for arch_id, display, extra in EXTRA_NAMES.values():
        for name in extra:
            names.setdefault(normalize(name), (arch_id, display, model_vendor(name)))
    for key, arch in list(names.items()):
        tier, _, rest = key.partition(" ")
        if tier in TIERS and rest:
            names.setdefault(rest, arch)
    return names


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3); for one value all three are it."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def stats_row(
    kind: str, key: str, arch: str, vendor: str, results: Iterable[Result]
) -> dict[str, str]:
    group = list(results)
    idle = quartiles([r.idle_w / r.threads for r in group])
    full = quartiles([r.full_w / r.threads for r in group])
    per_chip = statistics.median(r.threads / r.chips for r in group)
    return {
        "kind": kind,
        "key": key,
        "microarchitecture": arch,
        "vendor": vendor,
        "n": str(len(group)),
        "idle_w": f"{idle[1]:.4f}",
        "full_w": f"{full[1]:.4f}",
        "idle_q1": f"{idle[0]:.4f}",
        "idle_q3": f"{idle[2]:.4f}",
        "full_q1": f"{full[0]:.4f}",
        "full_q3": f"{full[2]:.4f}",
        "threads_per_chip": f"{per_chip:g}",
        "years": f"{min(r.year for r in group)}-{max(r.year for r in group)}",
    }


FIELDS = [
    "kind",
    "key",
    "microarchitecture",
    "vendor",
    "n",
    "idle_w",
    "full_w",
    "idle_q1",
    "idle_q3",
    "full_q1",
    "full_q3",
    "threads_per_chip",
    "years",
]


def build(source: Path) -> tuple[list[dict[str, str]], list[str]]:
    """The table's rows and the notes (fixed/skipped/unassigned results)."""
    spec = sorted(source.glob("SPECpower-*.csv"))
    if not spec:
        raise SystemExit(f"no SPECpower-*.csv in {source}: pass --source DIR")
    results, notes = read_results(spec[-1])
    names = read_names(source)
    by_model: dict[str, list[Result]] = defaultdict(list)
    by_arch: dict[str, list[Result]] = defaultdict(list)
    displays = {arch_id: display for arch_id, display, _ in names.values()}
    vendors = {arch_id: vendor for arch_id, _, vendor in names.values()}
    keys = {name: vendor for name, (_, _, vendor) in names.items()}
    unassigned = 0
    for r in results:
        name = match_cpu_model(r.description, keys)
        if name is None:
            unassigned += 1
            continue
        by_model[name].append(r)
        by_arch[names[name][0]].append(r)
    notes.append(f"{len(results)} results read from {spec[-1].name}, {unassigned} not assigned")
    rows = [
        stats_row(
            "recent",
            f"all results {RECENT_FROM_YEAR}+",
            "",
            "",
            (r for r in results if r.year >= RECENT_FROM_YEAR),
        )
    ]
    for arch_id in sorted(by_arch):
        row = stats_row(
            "microarchitecture", arch_id, displays[arch_id], vendors[arch_id], by_arch[arch_id]
        )
        rows.append(row)
    for name in sorted(by_model):
        rows.append(stats_row("model", name, names[name][0], names[name][2], by_model[name]))
    for name in sorted(set(names) - set(by_model)):
        arch_id, _, vendor = names[name]
        rows.append({"kind": "name", "key": name, "microarchitecture": arch_id, "vendor": vendor})
    return rows, notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--verbose", action="store_true", help="print every fixed/skipped row")
    args = parser.parse_args(argv)
    rows, notes = build(args.source)
    if any("," in v or '"' in v for row in rows for v in row.values()):
        raise SystemExit("a field holds a comma or quote: the package reads the table unquoted")
    with args.out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for note in notes if args.verbose else notes[-1:]:
        print(note, file=sys.stderr)
    for row in rows:
        if row["kind"] in ("recent", "microarchitecture"):
            print(
                f"{row['key']:>16} n={row['n']:>4}  idle {row['idle_w']} W/thread "
                f"(IQR {row['idle_q1']}-{row['idle_q3']})  full {row['full_w']} W/thread "
                f"(IQR {row['full_q1']}-{row['full_q3']})  {row['years']}"
            )
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
