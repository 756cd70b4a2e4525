"""The pure parts of ``benchmarks/``: shapes, budgets, the per-sample projection, relation
checks, the verdict against the paper, result transport and DDP combination. No torch needed; everything is exact."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `benchmarks`

from benchmarks import paper as P
from benchmarks import verdict as V
from benchmarks import verdict_ratios as VQ
from benchmarks import verdict_render as VT
from benchmarks import verdict_rules as VR
from benchmarks import workloads as w
from benchmarks.harness import concat, sample_measurement
from benchmarks.registry import PaperAccounting, Registry, growth_check, synth_key, train_key
from pytest_co2.backends.base import Device, Method
from pytest_co2.meter import DeviceEnergy, Measurement, Stats


def measurement(
    per_window: list[float],
    *,
    unit: str = "step",
    shared: bool = False,
    energy_j: float | None = None,
) -> Measurement:
    total = math.fsum(per_window) if energy_j is None else energy_j
    device = Device("cpu:process", "cpu", "test cpu", Method.ESTIMATED, 0.0, shared)
    return Measurement(
        name="m",
        unit=unit,
        steps=len(per_window),
        units=len(per_window),
        warmup=1,
        duration_s=float(len(per_window)),
        energy_j=total,
        energy_per_unit_j=Stats.of(per_window, total, len(per_window)),
        unit_energies_j=tuple(per_window),
        method="estimated",
        devices=(DeviceEnergy(device, total),),
        backend="test",
    )


# -- shapes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", w.SCALES)
def test_latent_shapes_fit_a_three_level_unet(scale):
    for image in w.IMAGE_SIZES.values():
        latent = w.latent_shape(image, scale)
        assert len(latent) == image.dims
        assert all(s >= 4 and s % 4 == 0 for s in latent), (image.key, latent)


def test_paper_latents_are_image_over_four():
    assert w.latent_shape(w.IMAGE_SIZES["3d-256x256x192"]) == (64, 64, 48)
    assert w.latent_shape(w.IMAGE_SIZES["2d-512"]) == (128, 128)
    assert w.latent_shape(w.IMAGE_SIZES["3d-64"], "smoke") == (4, 4, 4)
    assert w.image_shape(w.IMAGE_SIZES["3d-64"], "smoke") == (16, 16, 16)


def test_smoke_widths_suit_group_norm_and_heads():
    for model in w.MODELS.values():
        small = w.unet_at(model, "smoke")
        assert all(c % small.norm_num_groups == 0 for c in small.channels)
        for c, h, attn in zip(
            small.channels, small.num_head_channels, small.attention_levels, strict=False
        ):
            assert (h == 0) == (not attn) and (h == 0 or c % h == 0)
    assert w.unet_at(w.MODELS["2d-medium"], "paper") is w.MODELS["2d-medium"]
    with pytest.raises(ValueError, match="unknown scale"):
        w.unet_at(w.MODELS["2d-medium"], "tiny")


def test_image_labels_follow_the_paper():
    assert [i.label for i in w.IMAGE_SIZES.values()] == [
        "192²",
        "256²",
        "320²",
        "512²",
        "64³",
        "128³",
        "192³",
        "256²×192",
    ]


# -- budgets --------------------------------------------------------------------------------------


def test_budget_at_a_published_size_is_value_plus_std_as_energy():
    b = P.image_budget("synth", "3d-256x256x192")
    assert b.kg_eu27 == pytest.approx(362.3 + 1.0)
    assert b.kwh == pytest.approx((362.3 + 1.0) / (0.251 * 1.55))
    assert (b.unit, b.n) == ("sample", 10_000)


def test_budget_between_published_sizes_is_the_ceiling():
    assert P.image_budget("train", "3d-128").kwh == P.image_budget("train", "3d-256x256x192").kwh
    assert P.image_budget("train", "2d-192").kg_eu27 == pytest.approx(0.56)


def test_model_and_sampler_budgets():
    medium = P.model_budget("train", "3d-192", "medium")
    assert P.model_budget("train", "3d-192", "small").kwh == medium.kwh
    assert P.model_budget("train", "3d-192", "large").kwh == pytest.approx(medium.kwh * 1.4)
    assert P.model_budget("synth", "3d-192", "large").kwh == pytest.approx(
        P.model_budget("synth", "3d-192", "medium").kwh * 1.8
    )
    assert P.sampler_budget("3d-64", 200).kwh == pytest.approx(
        P.image_budget("synth", "3d-64").kwh * 0.2
    )


def test_budget_scales_linearly_with_the_target():
    b = P.image_budget("train", "2d-512")
    assert b.scaled_kwh(300_000) == pytest.approx(2 * b.kwh)


# -- the per-sample projection ----------------------------------------------------------------------


def test_sample_is_steps_times_step_energy_plus_decode():
    step = measurement([10.0, 12.0, 11.0])
    decode = measurement([100.0, 100.0], unit="decode")
    m = sample_measurement(step, decode, 1000, name="s", extrapolate=10_000)
    assert m.unit == "sample" and m.extrapolate == 10_000
    assert m.energy_per_unit_j.mean == pytest.approx(1000 * 11.0 + 100.0)
    assert m.energy_per_unit_j.std == pytest.approx(1000 * 1.0)  # decode spread is 0
    assert m.unit_energies_j == pytest.approx((10_100.0, 12_100.0, 11_100.0))
    assert m.energy_j == pytest.approx(33.0 + 200.0)  # what was measured
    assert m.units * m.energy_per_unit_j.mean == pytest.approx(m.energy_j)
    assert m.project().energy_kwh == pytest.approx(11_100.0 * 10_000 / 3.6e6)
    assert "1000 denoising steps" in m.notes[0]


def test_reused_decode_is_not_counted_twice():
    step = measurement([10.0, 10.0])
    decode = measurement([50.0, 50.0], unit="decode")
    m = sample_measurement(
        step, decode, 200, name="s", extrapolate=None, decode_measured_here=False
    )
    assert m.energy_j == 20.0 and m.duration_s == 2.0
    assert m.energy_per_unit_j.mean == pytest.approx(2050.0)
    assert "earlier test" in m.notes[0]


def test_concat_pools_windows():
    m = concat(
        [measurement([1.0]), measurement([3.0]), measurement([2.0])],
        name="ddim step",
        warmup=1,
        note="round-robin",
    )
    assert (m.steps, m.units, m.energy_j, m.windows) == (3, 3, 6.0, 3)
    assert m.energy_per_unit_j.mean == 2.0 and m.energy_per_unit_j.std == pytest.approx(1.0)
    assert m.devices[0].energy_j == 6.0 and m.notes[0] == "round-robin"


# -- relations and results ---------------------------------------------------------------------------


def acc(kwh: float, ci: float) -> PaperAccounting:
    return PaperAccounting(1, "iteration", kwh, ci / 2, ci, kwh, ci)


def test_growth_check():
    assert growth_check([("a", acc(1, 0.1)), ("b", acc(2, 0.1))]) == ([], [])
    bad, unsure = growth_check([("a", acc(3, 0.1)), ("b", acc(2, 0.1))])
    assert len(bad) == 1 and not unsure
    bad, unsure = growth_check([("a", acc(3, 5.0)), ("b", acc(2, 0.1))])
    assert not bad and len(unsure) == 1
    bad, unsure = growth_check([("a", acc(3, math.nan)), ("b", acc(2, 0.1))])
    assert not bad and len(unsure) == 1  # one window: no interval, cannot tell


def test_paper_accounting_uses_the_papers_n_and_eq1():
    a = PaperAccounting.of(measurement([3.6e6 / 150_000] * 2, unit="iteration"))
    assert a.n == 150_000 and a.energy_kwh == pytest.approx(1.0)
    assert a.kg == pytest.approx(0.251 * 1.55)


def test_registry_round_trip():
    r = Registry()
    r.add(train_key("3d-medium", "3d-64"), measurement([1.0, 2.0], unit="iteration"))
    r.add(
        synth_key("3d-medium", "3d-64", "ddim", 200, "samplers"),
        measurement([5.0, 6.0], unit="sample"),
    )
    r.figures["fig3"] = {"dec_over_feb": 1.44}
    r.session["scale"] = "smoke"
    other = Registry()
    other.merge_json(r.to_json())
    assert other.results == r.results and other.figures == r.figures and other.session == r.session
    assert other.require([train_key("3d-medium", "3d-64"), train_key("3d-large", "3d-192")]) == [
        train_key("3d-large", "3d-192")
    ]


def test_ddp_combine_sums_per_process_estimates_and_not_shared_counters():
    from benchmarks import ddp

    parts = [measurement([2.0, 2.0], unit="iteration"), measurement([3.0, 3.0], unit="iteration")]
    m = ddp.combine(parts)
    assert m.ranks == 2 and m.energy_j == pytest.approx(10.0)
    shared = [measurement([2.0, 2.0], shared=True), measurement([2.1, 2.1], shared=True)]
    m = ddp.combine(shared)
    assert m.ranks == 2 and m.energy_j == pytest.approx(4.0)  # one node: the shared counter once
    assert "shared devices counted once per node" in m.notes[-1]
    m = ddp.combine(shared, nodes=["a", "b"])  # two nodes: each node's counter counts
    assert m.nodes == 2 and m.energy_j == pytest.approx(8.2)


# -- the verdict against the paper ---------------------------------------------------------------

#: Seconds per step of the project's notes (2 cores), used as joules: iterations x 100 J/s,
#: samples x 100,000 (1000 steps x 100 J/s).
TRAIN_J = {"2d-192": 87.0, "2d-256": 144.0, "2d-320": 241.0, "2d-512": 672.0}
TRAIN_J |= {"3d-64": 102.0, "3d-128": 513.0, "3d-192": 2700.0, "3d-256x256x192": 6960.0}
SYNTH_J = {"2d-192": 27e3, "2d-256": 44e3, "2d-320": 71e3, "2d-512": 207e3}
SYNTH_J |= {"3d-64": 32e3, "3d-128": 158e3, "3d-192": 828e3, "3d-256x256x192": 1950e3}
#: (phase, image) -> (small, large) per-unit joules.
MODEL_J = {
    ("train", "2d-256"): (30.0, 449.0),
    ("train", "3d-192"): (638.0, 14_300.0),
    ("synth", "2d-256"): (9.1e3, 133e3),
    ("synth", "3d-192"): (183e3, 4180e3),
}


def paper_like(scale: str = "paper") -> Registry:
    """A session with every family's results, costs shaped like a 2-core CPU's."""
    r = Registry()
    r.session["scale"] = scale
    unit = {"train": "iteration", "synth": "sample"}
    for image, j in TRAIN_J.items():
        model = w.model_for(w.IMAGE_SIZES[image].dims, "medium").key
        r.add(train_key(model, image), measurement([j] * 3, unit="iteration"))
        r.add(synth_key(model, image), measurement([SYNTH_J[image]] * 3, unit="sample"))
    for (phase, image), (small, large) in MODEL_J.items():
        dims = w.IMAGE_SIZES[image].dims
        make = train_key if phase == "train" else synth_key
        for size, j in (("small", small), ("large", large)):
            r.add(make(w.model_for(dims, size).key, image), measurement([j] * 3, unit=unit[phase]))
    r.add(
        train_key("3d-medium", "3d-64", "single-process"),
        measurement([100.0, 104.0], unit="iteration"),
    )
    r.add(
        train_key("3d-medium", "3d-64", "ddp-gloo-2"), measurement([118.0, 122.0], unit="iteration")
    )
    for kind, n in w.SAMPLERS:
        r.add(
            synth_key("3d-medium", "3d-64", kind, n, "samplers"),
            measurement([32.0 * n] * 3, unit="sample"),
        )
    r.figures["fig3"] = {
        "regions": {"synth": {"PL": [666.0, 0.0], "SE": [7.0, 0.0]}},
        "months": {"2022-02": [370.7, 0.0, 370.7], "2022-12": [535.0, 0.0, 535.0]},
        "dec_over_feb": 535.0 / 370.7,
    }
    return r


def table(fs: list[VR.Finding]) -> list[tuple[str, str, str, str]]:
    return [(f"{f.figure} {f.claim}", f.paper, f.ours, f.status) for f in fs]


def test_verdict_at_paper_scale():
    fs = V.findings(paper_like())
    assert table(fs) == [
        ("Fig. 1 2D train", "x2.0 192²-512²", "x7.7", VR.HARDWARE),
        ("Fig. 1 3D train", "x12 64³-256²×192", "x68", VR.HARDWARE),
        ("Fig. 1 2D synth", "x4.8 192²-512²", "x7.7", VR.HELD),
        ("Fig. 1 3D synth", "x61 64³-256²×192", "x61", VR.HELD),
        ("Fig. 2 train", "+30% to +40%/size", "+212% to +430%", VR.HARDWARE),
        ("Fig. 2 synth", "+60% to +80%/size", "+202% to +405%", VR.HARDWARE),
        ("Fig. 3 region", "PL/SE x94", "PL/SE x95 (666/7)", VR.HELD),
        ("Fig. 3 month DE", "up to +50%", "+44% max/min", VR.HELD),
        ("Fig. 4a DDP", "4 GPUs: no cut", "2 procs: x1.18", VR.HELD),
        ("Fig. 4b DDIM 200", "0.20 x DDPM 1000", "0.200 ± 0.000", VR.HELD),
        ("Sec. 3.1 synth > train", "at every size", "8/8, x19-x21", VR.HELD),
    ]
    assert fs[0].reason == VR.REASON_COMPUTE and fs[2].reason == ""
    assert "x2.7 to x14 in parameters" in fs[4].reason


def test_verdict_contradictions_and_noise():
    r = paper_like()
    # 3D synthesis drops from 192³ to 256²×192 far beyond the intervals: did not hold
    r.add(synth_key("3d-medium", "3d-256x256x192"), measurement([1e3] * 3, unit="sample"))
    # distributed training halves the energy per batch, beyond the intervals
    r.add(
        train_key("3d-medium", "3d-64", "ddp-gloo-2"), measurement([50.0, 52.0], unit="iteration")
    )
    # DDIM 200 costs 0.5 of DDPM 1000, but its windows spread widely: inconclusive
    r.add(
        synth_key("3d-medium", "3d-64", "ddim", 200, "samplers"),
        measurement([1.0, 31999.0], unit="sample"),
    )
    r.session["runs"] = {  # measured on a quiet CPU
        "train/3d-medium/3d-64/single-process": {"contention": {"pressure": 0.02, "steal": 0.0}},
        "train/3d-medium/3d-64/ddp-gloo-2": {"contention": {"pressure": 0.03, "steal": None}},
    }
    by = {f"{f.figure} {f.claim}": f for f in V.findings(r)}
    assert by["Fig. 1 3D synth"].status == VR.NOT_HELD
    assert by["Fig. 4a DDP"].status == VR.NOT_HELD
    assert by["Fig. 4a DDP"].reason == (
        "0.50 x the single process's energy per batch, beyond the 95% intervals (±1.18 kWh) "
        "on a quiet CPU (CPU pressure 3% (some), steal 0%)"
    )
    assert by["Fig. 4b DDIM 200"].status == VR.INCONCLUSIVE
    assert by["Sec. 3.1 synth > train"].ours == "7/8, x0.0096-x21"
    assert by["Sec. 3.1 synth > train"].status == VR.NOT_HELD


def test_verdict_at_smoke_scale_and_without_results():
    fs = V.findings(paper_like("smoke"))
    assert [f.status for f in fs] == [VR.NOT_JUDGED] * 6 + [VR.HELD, VR.HELD, VR.NOT_JUDGED] + [
        VR.HELD
    ] * 2
    assert {f.reason for f in fs if f.status == VR.NOT_JUDGED} == {VR.REASON_SMOKE}
    empty = V.findings(Registry())
    assert [f.status for f in empty] == [VR.NOT_RUN] * 11 and all(f.ours == "" for f in empty)


def test_distributed_check_under_load_or_unknown_load_is_inconclusive():
    from benchmarks.host import Contention

    single, ddp = acc(1.0, 0.01), acc(0.73, 0.01)
    assert VR.ddp_check(single, ddp, Contention(0.45, 0.01)) == (
        VR.INCONCLUSIVE,
        "inconclusive under load: 0.73 x the single process's energy per batch "
        "(CPU pressure 45% (some), steal 1%)",
    )
    assert VR.ddp_check(single, ddp, Contention(None, None)) == (
        VR.INCONCLUSIVE,
        "inconclusive, load unknown: 0.73 x the single process's energy per batch "
        "(CPU pressure unknown (no /proc/pressure/cpu))",
    )
    assert VR.ddp_check(single, ddp, None)[1].endswith("(no contention recorded)")
    # steal alone (no pressure file) can show the load
    assert VR.ddp_check(single, ddp, Contention(None, 0.2))[0] == VR.INCONCLUSIVE
    assert VR.ddp_check(single, ddp, Contention(0.05, 0.0))[0] == VR.NOT_HELD
    assert VR.ddp_check(single, acc(0.96, 0.01), Contention(0.9, 0.0)) == (
        VR.HELD,
        "0.96 x the single process's energy per batch",
    )


def test_budget_notes_name_fewer_steps_and_skips():
    r = paper_like()
    r.add(train_key("3d-large", "3d-192"), measurement([1.0e3], unit="iteration"))
    r.session["runs"] = {
        "train/3d-large/3d-192": {
            "label": "train 3d-large 192³",
            "steps": 1,
            "default_steps": 2,
            "reduced": True,
        },
        "train/3d-medium/3d-256x256x192": {
            "label": "train 3d-medium 256²×192",
            "steps": 2,
            "default_steps": 3,
            "reduced": True,
        },
        "samplers/3d-medium/3d-64": {
            "label": "synth 3d-medium 64³ 5 samplers",
            "skipped": "over the budget: needs about 40 s (1 warm-up + 1 round), 12 s of the "
            "budget left for it",
        },
        "train/2d-medium/2d-192": {"label": "x", "steps": 3, "default_steps": 8, "reduced": False},
    }
    del r.results[synth_key("3d-medium", "3d-64", "ddim", 200, "samplers")]
    fewer, skipped = VQ.budget_notes(r)
    rel = VQ._rel_ci95(r, "train/3d-medium/3d-256x256x192")
    assert fewer == [
        "train 3d-large 192³: 1 step (default 2): no interval",
        f"train 3d-medium 256²×192: 2 steps (default 3): interval ±{rel:.0%}",
    ]
    assert skipped == [
        "synth 3d-medium 64³ 5 samplers: over the budget: needs about 40 s (1 warm-up + 1 "
        "round), 12 s of the budget left for it"
    ]
    by = {f"{f.figure} {f.claim}": f for f in V.findings(r)}
    assert by["Fig. 4b DDIM 200"].status == VR.NOT_RUN
    assert by["Fig. 4b DDIM 200"].reason == "synth 3d-medium 64³ 5 samplers skipped, " + (
        "over the budget: needs about 40 s (1 warm-up + 1 round), 12 s of the budget left for it"
    )
    lines = VT.render_terminal(V.findings(r), VQ.ratios(r), 80, fewer, skipped)
    assert max(len(line) for line in lines) <= 80
    i = lines.index("fewer measured steps than the default (the job budget):")
    assert lines[i + 1] == "  train 3d-large 192³: 1 step (default 2): no interval"
    assert lines[i + 3 : i + 6] == [
        "skipped by the job:",
        "  synth 3d-medium 64³ 5 samplers: over the budget: needs about 40 s (1 warm-up +",
        "    1 round), 12 s of the budget left for it",
    ]
    data = VT.verdict_json(r)
    assert data["fewer_steps"] == fewer and data["skipped"] == skipped


def test_a_size_skipped_by_the_job_makes_its_finding_inconclusive():
    r = paper_like()
    del r.results[train_key("3d-large", "3d-192")]
    why = "over the budget: needs about 10 min 59 s (1 warm-up + 1 iteration), 1 min 19 s left"
    r.session["runs"] = {"train/3d-large/3d-192": {"label": "train 3d-large 192³", "skipped": why}}
    by = {f"{f.figure} {f.claim}": f for f in V.findings(r)}
    fig2 = by["Fig. 2 train"]
    assert (fig2.ours, fig2.status) == ("+212% to +380%", VR.INCONCLUSIVE)
    assert fig2.reason == "train 3d-large 192³ skipped, " + why
    del r.results[train_key("3d-medium", "3d-256x256x192")]
    r.session["runs"]["train/3d-medium/3d-256x256x192"] = {"label": "t", "skipped": why}
    fig1 = {f"{f.figure} {f.claim}": f for f in V.findings(r)}["Fig. 1 3D train"]
    assert (fig1.ours, fig1.status, fig1.reason) == (
        "x26 64³-192³",
        VR.INCONCLUSIVE,
        "t skipped, " + why,
    )
    # missing for another reason (deselected): not run, as before
    r.session["runs"] = {}
    assert {f"{f.figure} {f.claim}": f for f in V.findings(r)}["Fig. 2 train"].status == VR.NOT_RUN
    lines = VT.render_terminal(V.findings(r), VQ.ratios(r), 100)
    assert max(len(line) for line in lines) <= 100


def test_ratio_check_decides_with_the_interval():
    b = acc(1.0, 0.0)
    assert VR.ratio_check(acc(0.22, 0.0), b, 0.2, 0.05) == (VR.HELD, 0.22, 0.0)
    status, ratio, half = VR.ratio_check(acc(0.5, 0.0), b, 0.2, 0.05)
    assert (status, ratio, half) == (VR.NOT_HELD, 0.5, 0.0)
    status, ratio, half = VR.ratio_check(acc(0.5, 0.4), b, 0.2, 0.05)  # miss 0.25 < half 0.4
    assert status == VR.INCONCLUSIVE and half == pytest.approx(0.4)
    status, _, half = VR.ratio_check(acc(0.5, math.nan), b, 0.2, 0.05)  # one window: no interval
    assert status == VR.INCONCLUSIVE and math.isnan(half)
    status, _, half = VR.ratio_check(acc(0.5, 0.1), acc(1.0, 0.2), 0.2, 0.05)
    assert status == VR.NOT_HELD and half == pytest.approx(0.5 * math.hypot(0.2, 0.2))


def test_factor_status_and_worst():
    assert VR.factor_status(4.0, 2.0) == VR.HELD and VR.factor_status(1.0, 2.0) == VR.HELD
    assert VR.factor_status(4.1, 2.0) == VR.HARDWARE and VR.factor_status(0.9, 2.0) == VR.HARDWARE
    assert VR.factor_status(0.0, 2.0) == VR.NOT_HELD
    assert VR.worst([VR.HELD, VR.HARDWARE, VR.INCONCLUSIVE]) == VR.INCONCLUSIVE
    assert VR.worst([VR.HELD, VR.NOT_HELD]) == VR.NOT_HELD and VR.worst([]) == VR.NOT_RUN


def test_references_are_the_papers_figures():
    assert VQ.reference(train_key("2d-medium", "2d-192")) == (0.40, True)
    assert VQ.reference(synth_key("3d-medium", "3d-256x256x192")) == (362.3, True)
    kg, published = VQ.reference(train_key("3d-medium", "3d-192"))  # between sizes: the ceiling
    assert not published and kg == pytest.approx(9.9)
    kg, published = VQ.reference(synth_key("3d-large", "3d-192"))
    assert not published and kg == pytest.approx(363.3 * 1.8)
    kg, _ = VQ.reference(synth_key("3d-medium", "3d-64", "ddim", 200, "samplers"))
    assert kg == pytest.approx((5.95 + 0.17) * 0.2)
    kg, _ = VQ.reference(train_key("3d-medium", "3d-64", "ddp-gloo-2"))
    assert kg == pytest.approx(0.74 + 0.22)


def test_ratios_in_the_papers_order_with_labels():
    rs = VQ.ratios(paper_like())
    assert len(rs) == 31
    assert [r.label for r in rs[:3]] == [
        "train 2d-small 256²",
        "train 2d-medium 192²",
        "train 2d-medium 256²",
    ]
    first = rs[1]
    assert first.ours_kg == pytest.approx(87.0 * 150_000 / 3.6e6 * 0.251 * 1.55)
    assert (first.paper_kg, first.published) == (0.40, True)
    assert first.ratio == pytest.approx(first.ours_kg / 0.40)
    labels = [r.label for r in rs]
    assert "train 3d-medium 64³ DDP gloo x2" in labels and "train 3d-medium 64³ 1 process" in labels
    i = labels.index("synth 3d-medium 64³ DDPM 1000")
    assert labels[i - 1 : i + 6] == [
        "synth 3d-medium 64³",
        *(f"synth 3d-medium 64³ {k.upper()} {n}" for k, n in w.SAMPLERS),
        "synth 3d-medium 128³",
    ]
    assert (
        VQ.key_label(train_key("3d-medium", "3d-192"), "smoke")
        == "train 3d-medium smoke 48³ (192³/4, w/8)"
    )


def test_terminal_verdict_fits_100_columns():
    r = paper_like()
    lines = VT.render_terminal(V.findings(r), VQ.ratios(r))
    assert max(len(line) for line in lines) <= 100
    assert len(lines) == 1 + 31 + 1 + 1 + 11 + 4 + 1
    assert lines[1] == "  train 2d-small 256²             0.486 / ≤0.99  x0.49"
    assert lines[34] == (
        "Fig. 1 2D train         x2.0 192²-512²     x7.7               hardware-dependent (1)"
    )
    assert lines[-1] == "verdict: 4 hardware-dependent, 7 held"
    stopped = VT.render_terminal(V.findings(r), VQ.ratios(r), interrupted=True)
    assert stopped[: len(lines) - 1] == lines[:-1]
    assert " ".join(x.strip() for x in stopped[len(lines) - 1 :]) == (
        "verdict: 4 hardware-dependent, 7 held (the run was interrupted: what it did not reach "
        "is not run, not failed)"
    )


def test_narrow_terminals_shorten_text_never_numbers():
    r = paper_like()
    narrow = VT.render_terminal(V.findings(r), VQ.ratios(r), width=80)
    assert max(len(line) for line in narrow) == 80
    assert narrow[44] == "Sec. 3.1 synth > …  at every size      8/8, x19-x21       held"
    tiny = VT.render_terminal(V.findings(r), VQ.ratios(r), width=60)
    assert max(len(line) for line in tiny) <= 60
    assert tiny[10] == "  train 3d-medium 64³ DDP gloo x2  1.95 / ≤0.96   x2.0"
    # the paper's column goes (its claims are in paper.md), the verdict words shorten
    assert tiny[35:37] == [
        "finding                 ours               verdict",
        "Fig. 1 2D train         x7.7               hw-dependent (1)",
    ]
    # smoke labels: whole at 80 columns; at 60 the divisors go, every number stays whole
    smoke = paper_like("smoke")
    lines = VT.render_terminal(V.findings(smoke), VQ.ratios(smoke), width=80)
    assert max(len(line) for line in lines) <= 80
    assert lines[9] == "  train 3d-medium smoke 16³ (64³/4, w/8) DDP gloo x2  1.95 / ≤0.96   x2.0"
    lines = VT.render_terminal(V.findings(smoke), VQ.ratios(smoke), width=60)
    assert max(len(line) for line in lines) <= 60
    assert not any("…" in line for line in lines[2:33])
    assert lines[10] == "  train 3d-medium smoke 16³ DDP gloo x2  1.95 / ≤0.96   x2.0"


def test_verdict_json_and_markdown():
    r = paper_like()
    data = VT.verdict_json(r)
    assert data["scale"] == "paper" and len(data["findings"]) == 11 and len(data["vs_paper"]) == 31
    assert data["findings"][9] == {
        "figure": "Fig. 4b",
        "claim": "DDIM 200",
        "paper": "0.20 x DDPM 1000",
        "ours": "0.200 ± 0.000",
        "status": "held",
        "reason": "",
    }
    assert data["vs_paper"][1]["paper_kg"] == 0.40 and data["vs_paper"][1]["published"] is True
    md = VT.render_markdown(V.findings(r), VQ.ratios(r))
    assert md[0] == "## Verdict" and md[4] == (
        f"| Fig. 1 2D train | x2.0 192²-512² | x7.7 | hardware-dependent | {VR.REASON_COMPUTE} |"
    )


def test_smoke_labels_carry_the_divisors():
    assert w.scaled_label(w.IMAGE_SIZES["3d-64"], "paper") == "64³"
    assert w.scaled_label(w.IMAGE_SIZES["3d-64"], "smoke") == "smoke 16³ (64³/4, w/8)"
    assert (
        w.scaled_label(w.IMAGE_SIZES["3d-256x256x192"], "smoke") == "smoke 64²×48 (256²×192/4, w/8)"
    )


def test_outputs_line_names_the_folder(tmp_path):
    from benchmarks.outputs import outputs_line

    out = tmp_path / "co2-out"
    out.mkdir()
    names = ("co2.json", "paper.md", "paper-fig1.png", "paper-fig2.png", "missing.md")
    files = [str(out / n) for n in names]
    for f in files[:4]:
        open(f, "w").close()
    assert outputs_line(str(out), files) == (
        f"co2 outputs in {out}/: co2.json, paper.md, 2 charts (paper-fig*.png)"
    )
    other = str(tmp_path / "elsewhere.json")
    open(other, "w").close()
    assert outputs_line(str(out), [other, files[1]]) == f"co2 outputs in {out}/: paper.md, {other}"
    assert outputs_line(None, [other]) == f"co2 outputs: {other}"
    assert outputs_line(str(out), [files[4]]) is None
