"""The pure parts of ``benchmarks/``: shapes, budgets, the per-sample projection, relation
checks, result transport and DDP combination. No torch needed; everything is exact."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `benchmarks`

from benchmarks import paper as P
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
