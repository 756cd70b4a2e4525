"""Fig. 2: small, medium and large models at 2D 256² and 3D 192³, training and synthesis.

The medium runs are the image-size family's (same model, same image): when that family ran
first in this session they are reused and these params skip with a note, saving the 3D
192³ training iterations.
"""

from __future__ import annotations

import warnings

import pytest

from . import workloads as w
from .builders import build_unet, count_params
from .paper import model_budget
from .registry import growth_check, synth_key, train_key
from .test_image_size import skip_if_measured as _skip_if_measured


def _params(phase: str) -> list:
    out = []
    for dims, image_key in w.MODEL_SIZE_IMAGES.items():
        for size in w.MODEL_SIZES:
            model = w.model_for(dims, size)
            out.append(
                pytest.param(
                    model.key,
                    image_key,
                    id=model.key,
                    marks=[
                        pytest.mark.paper_budget(model_budget(phase, image_key, size)),
                        pytest.mark.bench_config(
                            (train_key if phase == "train" else synth_key)(model.key, image_key)
                        ),
                    ],
                )
            )
    return out


@pytest.mark.parametrize("model_key,image_key", _params("train"))
def test_train(bench, co2_meter, model_key, image_key):
    _skip_if_measured(bench.registry, train_key(model_key, image_key))
    m = bench.train(co2_meter, model_key, image_key)
    assert m.complete and m.steps >= 1 and m.energy_j > 0


@pytest.mark.parametrize("model_key,image_key", _params("synth"))
def test_synthesis(bench, co2_meter, model_key, image_key):
    _skip_if_measured(bench.registry, synth_key(model_key, image_key))
    m = bench.synth(co2_meter, model_key, image_key)
    assert m.complete and m.energy_per_unit_j.mean > 0


def test_param_counts():
    """The config table's parameter counts are counted (on the meta device: no memory)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    for model in w.MODELS.values():
        with torch.device("meta"):
            unet = build_unet(model, "paper", device="meta")
        assert count_params(unet) == model.params, model.key
        with torch.device("meta"):  # smoke widths must build too (group norm, heads)
            build_unet(model, "smoke", device="meta")


# -- relations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["train", "synth"])
@pytest.mark.parametrize("dims", [2, 3])
def test_emissions_grow_with_model_size(bench_registry, bench_scale, phase, dims):
    """Section 3.2: bigger models emit more, in training and synthesis."""
    if bench_scale != "paper":
        pytest.skip(
            "smoke scale: fixed costs dominate tiny widths, so sizes do not rank (use --co2-scale=paper)"
        )
    image_key = w.MODEL_SIZE_IMAGES[dims]
    make = train_key if phase == "train" else synth_key
    keys = [make(w.model_for(dims, s).key, image_key) for s in w.MODEL_SIZES]
    missing = bench_registry.require(keys)
    if missing:
        pytest.skip(f"needs this session's results for {', '.join(k.id for k in missing)}")
    bad, unsure = growth_check(
        [(s, bench_registry.paper(k)) for s, k in zip(w.MODEL_SIZES, keys, strict=False)]
    )
    if unsure:
        warnings.warn(
            f"{dims}D {phase}: inconclusive, the measurements are too noisy: {'; '.join(unsure)}",
            stacklevel=1,
        )
    assert not bad, f"{dims}D {phase} does not grow with model size: {'; '.join(bad)}"
