"""Each config's :class:`~benchmarks.budget.Spec` for the job budget's plan (reference costs,
peak RSS), found from the ``bench_config`` marker of the tests that measure it, and the
order of a test's stage (measures, renders, checks a relation)."""

from __future__ import annotations

from typing import Any

import pytest

from .budget import Spec
from .registry import Key
from .settings import bench_settings

CONFIG_MARKER = "bench_config"
SAMPLERS_ID = "samplers/3d-medium/3d-64"


def stage(item: pytest.Item) -> int:
    """0: measures; 1: renders an earlier measurement (Fig. 3); 2: a relation check."""
    names = getattr(item, "fixturenames", ())
    if "bench_registry" not in names:
        return 0
    return 1 if "bench" in names else 2


def config_id(key: Key | str) -> str:
    return key if isinstance(key, str) else key.id


def make_spec(key: Key | str, settings: dict[str, Any], single: Spec | None = None) -> Spec:
    """The planner's view of one config (reference costs, peak RSS) from its registry key."""
    from . import costs
    from . import workloads as w
    from .verdict_ratios import key_label

    scale = settings["scale"]
    steps = dict(
        time_budget_s=settings["time_budget_s"],
        min_steps=settings["min_steps"],
        warmup=settings["warmup"],
    )
    smoke_rss = 0.5  # GB: tiny shapes; the check matters at paper scale
    if isinstance(key, str):  # the samplers' round-robin
        model, image = w.INFERENCE_CONFIG
        label = f"synth {model} {w.scaled_label(w.IMAGE_SIZES[image], scale)} {len(w.SAMPLERS)} samplers"
        return Spec(
            costs.samplers_config(key, label, decode=True, **steps),
            smoke_rss if scale == "smoke" else costs.peak_rss_gb("synth", model, image),
            image,
            costs.samplers_config(key, label, decode=False, **steps),
        )
    label = key_label(key, scale)
    if key.phase == "train" and key.variant.startswith("ddp-"):
        world = int(key.variant.rsplit("-", 1)[1])
        base = (
            single.config if single else costs.train_config(key.model, key.image, "", "", **steps)
        )
        rss = costs.peak_rss_gb("train", key.model, key.image, world)
        return Spec(
            costs.ddp_config(key.id, label, base, world), smoke_rss if scale == "smoke" else rss
        )
    rss = costs.peak_rss_gb(key.phase, key.model, key.image)
    rss = smoke_rss if scale == "smoke" else rss
    if key.phase == "train":
        return Spec(costs.train_config(key.model, key.image, key.id, label, **steps), rss)
    return Spec(
        costs.synth_config(key.model, key.image, key.id, label, decode=True, **steps),
        rss,
        key.image,
        costs.synth_config(key.model, key.image, key.id, label, decode=False, **steps),
    )


def config_key(item: pytest.Item) -> Key | str | None:
    mark = item.get_closest_marker(CONFIG_MARKER)
    return mark.args[0] if mark is not None else None


def collect_specs(config: pytest.Config, items: list[pytest.Item]) -> dict[str, Spec]:
    """The configs these items measure (several tests may share one: samplers, reuse)."""
    settings = bench_settings(config)
    specs: dict[str, Spec] = {}
    for item in items:
        key = config_key(item)
        if key is None or config_id(key) in specs:
            continue
        single = None
        if isinstance(key, Key) and key.variant.startswith("ddp-"):
            single = specs.get(Key("train", key.model, key.image, "", "single-process").id)
        specs[config_id(key)] = make_spec(key, settings, single)
    return specs
