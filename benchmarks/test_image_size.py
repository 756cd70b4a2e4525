"""Fig. 1: training and synthesis of the medium 2D and 3D LDMs at every image size.

Training: 150,000 iterations (or ``--co2-extrapolate``); synthesis: 10,000 samples of 1000
DDPM steps + one decode each. The relation checks at the end read the session's results.
"""

from __future__ import annotations

import warnings

import pytest

from . import workloads as w
from .paper import image_budget
from .registry import PaperAccounting, growth_check, synth_key, train_key


def _model(image_key: str) -> str:
    return w.model_for(w.IMAGE_SIZES[image_key].dims, w.IMAGE_SIZE_MODEL).key


def _params(phase: str) -> list:
    make = train_key if phase == "train" else synth_key
    return [
        pytest.param(
            key,
            id=key,
            marks=[
                pytest.mark.paper_budget(image_budget(phase, key)),
                pytest.mark.bench_config(make(_model(key), key)),
            ],
        )
        for key in w.IMAGE_SIZES
    ]


def skip_if_measured(registry, key) -> None:
    """The same config (Fig. 1's medium runs are Fig. 2's) measured by an earlier test."""
    m = registry.get(key)
    if m is not None:
        pytest.skip(f"reused: {m.name!r} was measured by an earlier test of this session")


@pytest.mark.parametrize("image_key", _params("train"))
def test_train(bench, co2_meter, image_key):
    skip_if_measured(bench.registry, train_key(_model(image_key), image_key))
    m = bench.train(co2_meter, _model(image_key), image_key)
    assert m.complete and m.steps >= 1 and m.energy_j > 0


@pytest.mark.parametrize("image_key", _params("synth"))
def test_synthesis(bench, co2_meter, image_key):
    skip_if_measured(bench.registry, synth_key(_model(image_key), image_key))
    m = bench.synth(co2_meter, _model(image_key), image_key)
    assert m.complete and m.unit == "sample" and m.energy_per_unit_j.mean > 0


# -- relations of the paper's findings that hold on any hardware ------------------------------


def _series(registry, phase: str, dims: int) -> list[tuple[str, PaperAccounting]]:
    keys = [k for k, i in w.IMAGE_SIZES.items() if i.dims == dims]
    make = train_key if phase == "train" else synth_key
    wanted = [make(_model(k), k) for k in keys]
    missing = registry.require(wanted)
    if missing:
        pytest.skip(
            f"needs this session's results for {', '.join(m.id for m in missing)} "
            "(deselected, failed, or measured in another xdist worker)"
        )
    return [
        (w.IMAGE_SIZES[k].label, registry.paper(key)) for k, key in zip(keys, wanted, strict=False)
    ]


@pytest.mark.parametrize("phase", ["train", "synth"])
@pytest.mark.parametrize("dims", [2, 3])
def test_emissions_grow_with_image_size(bench_registry, bench_scale, phase, dims):
    """Section 3.1: larger images cost more, in training and synthesis, 2D and 3D."""
    if bench_scale != "paper":
        pytest.skip(
            "smoke scale: fixed costs dominate tiny shapes, so sizes do not rank (use --co2-scale=paper)"
        )
    series = _series(bench_registry, phase, dims)
    bad, unsure = growth_check(series)
    if unsure:
        warnings.warn(
            f"{dims}D {phase}: inconclusive, the measurements are too noisy: {'; '.join(unsure)}",
            stacklevel=1,
        )
    assert not bad, f"{dims}D {phase} does not grow with image size: {'; '.join(bad)}"


@pytest.mark.parametrize("dims", [2, 3])
def test_synthesis_exceeds_training(bench_registry, dims):
    """Section 3.1: 10,000 samples emit more than 150,000 training iterations, at every size."""
    train = _series(bench_registry, "train", dims)
    synth = _series(bench_registry, "synth", dims)
    for (label, t), (_, s) in zip(train, synth, strict=False):
        assert s.energy_kwh > t.energy_kwh, (
            f"{label}: synthesis of {s.n:,} samples {s.energy_kwh:.4g} kWh <= "
            f"training {t.n:,} iterations {t.energy_kwh:.4g} kWh"
        )
