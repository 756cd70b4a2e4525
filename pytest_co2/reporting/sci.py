"""The SCI block of a report (``sci``) and its summary lines, from the test records: each
measurement's Software Carbon Intensity per unit (``carbon.sci``), its projection, and the
boundary (what is in E, what is in M, what is left out), as ISO/IEC 21031 asks to disclose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..carbon.sci import YEAR_S, Embodied, Sci, sci_per_unit
from ..fmt import fmt_count, fmt_num, plural
from ..frozen import Frozen, record
from .model import Result, TestRecord

STANDARD = "ISO/IEC 21031:2024 (Software Carbon Intensity, Green Software Foundation)"
FORMULA = "SCI = ((E x I) + M) / R"
MARKET_NOTE = (
    "market-based (GHG Protocol Scope 2): E x the given market-based factor + M; not an SCI "
    "score, which admits location-based intensity only"
)


@record
class SciSetup(Frozen):
    """The run's inputs to M and the market-based figures."""

    machine: Embodied | None = None
    machine_share: float = 1.0
    share_basis: str = ""  # how the machine's share was found
    gpu: Embodied | None = None
    market_g_per_kwh: float | None = None
    subtract_idle: bool = False


def gpus_of(r: Result) -> int:
    """The GPUs a measurement read (each is charged its embodied share)."""
    return len({d.device.id for d in r.measurement.devices if d.device.kind == "gpu"})


def sci_of(r: Result, setup: SciSetup) -> Sci | None:
    """The measurement's SCI per unit (None: no unit was measured)."""
    m = r.measurement
    if m.units <= 0:
        return None
    return sci_per_unit(
        m.energy_per_unit_j.mean,
        m.duration_s / m.units,
        pue=r.emission.pue,
        g_per_kwh=r.emission.intensity_g_per_kwh,
        machine=setup.machine,
        machine_share=setup.machine_share,
        gpus=gpus_of(r),
        gpu=setup.gpu,
        market_g_per_kwh=setup.market_g_per_kwh,
    )


def sci_entry(nodeid: str, r: Result, s: Sci) -> dict[str, Any]:
    """One measurement's row of the block."""
    n = r.projection.n
    e = r.emission
    intensity = {"region": e.region, "g_per_kwh": e.intensity_g_per_kwh, "source": e.source}
    intensity.update({k: v for k in ("provenance", "zone", "at") if (v := getattr(e, k))})
    market = None
    if s.market_g is not None:
        market = {"operational_g_per_unit": s.market_operational_g, "total_g_per_unit": s.market_g}
    return {
        "nodeid": nodeid,
        "name": r.measurement.name,
        "functional_unit": r.measurement.unit,
        "seconds_per_unit": s.seconds,
        "energy_kwh_per_unit": s.energy_kwh,
        "intensity": {**intensity, "basis": "location-based"},
        "operational_g_per_unit": s.operational_g,
        "embodied_machine_g_per_unit": s.machine_g,
        "embodied_gpu_g_per_unit": s.gpu_g,
        "gpus": gpus_of(r),
        "embodied_g_per_unit": s.embodied_g,
        "sci_g_per_unit": s.sci_g,
        "market_based": market,
        "projection": {
            "n": n,
            "unit": r.measurement.unit,
            "sci_g": s.sci_g * n,
            "market_based_g": None if s.market_g is None else s.market_g * n,
        },
    }


def boundary(results: Sequence[Result], setup: SciSetup) -> dict[str, Any]:
    """What is in E, what is in M and what is left out."""
    methods = sorted({r.measurement.method for r in results})
    devices = sorted(
        {f"{d.device.label} ({d.device.kind})" for r in results for d in r.measurement.devices}
    )
    energy = (
        f"the measured windows' energy per unit ({', '.join(methods) or 'none'}; devices: "
        f"{'; '.join(devices) or 'none'}) x PUE (the data centre's overhead)"
    )
    if setup.subtract_idle:
        energy += "; the idle power measured at start is subtracted (--co2-subtract-idle)"
    parts, left_out = [], []
    if setup.machine is not None:
        m = setup.machine
        parts.append(
            f"the machine: {m.kg:g} kg CO2e over {m.years:g} years x the time reserved per unit "
            f"x share {setup.machine_share:.4g} ({setup.share_basis})"
        )
    else:
        left_out.append("the machine's embodied emissions (no --co2-embodied given)")
    gpus = any(gpus_of(r) for r in results)
    if setup.gpu is not None:
        parts.append(
            f"each GPU a measurement read: {setup.gpu.kg:g} kg CO2e over {setup.gpu.years:g} "
            "years x the time reserved per unit"
        )
    elif gpus:
        left_out.append("the GPUs' embodied emissions (no --co2-embodied-gpu given)")
    embodied = "; ".join(parts) or "none given: M = 0, so the score understates"
    excluded = [
        *left_out,
        "energy outside the measured windows: warm-up steps, fixtures, collection, the test runner",
        "devices the backend does not read (e.g. disks, network; memory unless the backend "
        "counts it)",
        "embodied emissions of the network, storage and the rest of the data centre",
        "market-based instruments (certificates, contracts): not in the SCI score",
    ]
    return {
        "E": energy,
        "I": "location-based: the grid intensity of each measurement's emission (its source "
        "is on each entry)",
        "M": embodied,
        "R": "one unit of each measurement (steps() and measure(): an iteration, a sample, ...)",
        "time_reserved": "the measured windows' wall time / the units measured",
        "excluded": excluded,
    }


def sci_block(tests: Sequence[TestRecord], setup: SciSetup) -> dict[str, Any]:
    """The JSON report's ``sci`` block."""
    pairs = [(t.nodeid, r) for t in tests for r in t.results]
    entries = [sci_entry(n, r, s) for n, r in pairs if (s := sci_of(r, setup)) is not None]
    return {
        "standard": STANDARD,
        "formula": FORMULA,
        "units": "g CO2e per functional unit",
        "year_s": YEAR_S,
        "embodied": {
            "machine": None if setup.machine is None else setup.machine.to_dict(),
            "machine_share": setup.machine_share if setup.machine is not None else None,
            "machine_share_basis": setup.share_basis if setup.machine is not None else None,
            "gpu": None if setup.gpu is None else setup.gpu.to_dict(),
        },
        "market_g_per_kwh": setup.market_g_per_kwh,
        "market_note": MARKET_NOTE if setup.market_g_per_kwh is not None else None,
        "boundary": boundary([r for _, r in pairs], setup),
        "measurements": entries,
    }


def sci_lines(tests: Sequence[TestRecord], setup: SciSetup, max_rows: int | None) -> list[str]:
    """A heading and one line per measurement: SCI per unit, its parts, the projection."""
    return block_lines(sci_block(tests, setup), max_rows)


def block_lines(block: Mapping[str, Any], max_rows: int | None) -> list[str]:
    """:func:`sci_lines` from a report's ``sci`` block (``pytest-co2 report``)."""
    out = [f"co2 SCI per unit ({FORMULA}, location-based; boundary in the JSON report)"]
    rows = list(block.get("measurements") or ())
    for row in rows[:max_rows]:
        unit, n = row["functional_unit"], row["projection"]["n"]
        line = (
            f"{row['nodeid']} [{row['name']}]: {fmt_num(row['sci_g_per_unit'])} g/{unit} (E x I "
            f"{fmt_num(row['operational_g_per_unit'])} + M {fmt_num(row['embodied_g_per_unit'])}); "
            f"{fmt_count(n)} {plural(unit, n)}: {fmt_num(row['projection']['sci_g'])} g"
        )
        market = row.get("market_based")
        if market is not None:
            line += f"; market-based {fmt_num(market['total_g_per_unit'])} g/{unit} (not SCI)"
        out.append(line)
    if max_rows is not None and len(rows) > max_rows:
        out.append(f"... {len(rows) - max_rows} more in the JSON report (--co2-report=full: all)")
    return out
