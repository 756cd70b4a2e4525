"""Fig. 3 and Table 1: one measurement, rendered for every region and every month of 2022 in
Germany with ``co2_meter.emission_for`` (no measuring again).

The measurement is the image-size family's 3D 192³ medium run when this session has it;
otherwise this test measures the 3D 64³ medium synthesis itself (a few seconds).
"""

from __future__ import annotations

import pytest

from . import workloads as w
from .paper import FIG3_MONTHS, PAPER_N, TABLE1
from .registry import synth_key, train_key

MODEL, IMAGE = w.REGION_SOURCE
FALLBACK = w.INFERENCE_CONFIG


def test_table1_intensities():
    """The shipped yearly intensities are the paper's Table 1."""
    from pytest_co2.carbon.intensity import lookup

    for region, g in TABLE1.items():
        assert lookup(region).g_per_kwh == g, region


def test_regions_and_months(bench, co2_meter, bench_registry):
    from pytest_co2.carbon.intensity import lookup

    synth = bench_registry.get(synth_key(MODEL, IMAGE))
    train = bench_registry.get(train_key(MODEL, IMAGE))
    source = f"{MODEL} {w.IMAGE_SIZES[IMAGE].label}, measured by the image-size family"
    if synth is None:  # e.g. skipped by the job budget: the small 3D synthesis instead
        synth = bench_registry.get(synth_key(*FALLBACK))
        train = None
        where = "measured by the image-size family"
        if synth is None:
            synth = bench.synth(co2_meter, *FALLBACK)
            where = "measured here"
        source = f"{FALLBACK[0]} {w.IMAGE_SIZES[FALLBACK[1]].label} synthesis, {where} (fallback)"

    phases = {"synth": synth} if train is None else {"train": train, "synth": synth}
    regions = {
        phase: {r: co2_meter.emission_for(m, region=r, extrapolate=PAPER_N[m.unit]) for r in TABLE1}
        for phase, m in phases.items()
    }
    months = {
        mo: co2_meter.emission_for(synth, region="DE", month=mo, extrapolate=PAPER_N["sample"])
        for mo in FIG3_MONTHS
    }

    for phase, by_region in regions.items():
        pl, se = by_region["PL"].co2e_kg, by_region["SE"].co2e_kg
        assert pl / se == pytest.approx(666 / 7, rel=1e-9), phase
        for r, e in by_region.items():
            assert e.intensity_g_per_kwh == TABLE1[r]
    dec_feb = months["2022-12"].co2e_kg / months["2022-02"].co2e_kg
    shipped = lookup("DE", "2022-12").g_per_kwh / lookup("DE", "2022-02").g_per_kwh
    assert dec_feb == pytest.approx(shipped, rel=1e-9)

    bench_registry.figures["fig3"] = {
        "source": source,
        "pue": co2_meter.settings.pue,
        "regions": {
            phase: {r: [e.co2e_kg, e.std_kg] for r, e in by.items()}
            for phase, by in regions.items()
        },
        "months": {mo: [e.co2e_kg, e.std_kg, e.intensity_g_per_kwh] for mo, e in months.items()},
        "dec_over_feb": dec_feb,
    }
