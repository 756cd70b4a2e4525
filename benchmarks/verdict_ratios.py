"""Ours / the paper's kg CO2e per configuration (the paper's reference for each config, in
the paper's order), and what the job budget changed: configs with fewer steps, configs
skipped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import paper as P
from . import workloads as w
from .planner import steps_note
from .registry import Key, Registry
from .verdict_rules import config_run_id


@dataclass(frozen=True)
class Ratio:
    """Our projected kg CO2e over the paper's for one config, both accounted like the paper."""

    label: str
    ours_kg: float
    paper_kg: float
    published: bool  # False: the paper gives no number; the reference is derived (paper.py)

    @property
    def ratio(self) -> float:
        return self.ours_kg / self.paper_kg if self.paper_kg > 0 else math.nan


def reference(key: Key) -> tuple[float, bool]:
    """The paper's kg CO2e for ``key``'s config at its N, and whether it is published.

    Published: the Fig. 1 value. Otherwise the derivation of ``paper.py`` (a range's ceiling,
    Fig. 2's growth, Fig. 4b's steps / 1000, Fig. 4a's single GPU), which is an upper bound.
    """
    size = w.MODELS[key.model].size
    if key.phase == "train":
        if key.variant.startswith("ddp-"):
            spec = P.ddp_budget(key.image)
        else:
            fig = P.fig1_figure("train", key.image) if size == "medium" else None
            if fig is not None:
                return fig.kg, True
            spec = P.model_budget("train", key.image, size)
        return spec.kg_eu27, False
    steps = key.sampler.split("-")[1]
    if key.variant == "samplers":
        return P.sampler_budget(key.image, int(steps)).kg_eu27, False
    fig = P.fig1_figure("synth", key.image) if size == "medium" else None
    if fig is not None:
        return fig.kg, True
    return P.model_budget("synth", key.image, size).kg_eu27, False


def key_label(key: Key, scale: str = "paper") -> str:
    """``train 3d-medium 192³``, ``synth 3d-medium 64³ DDIM 200``, ``... DDP gloo x2``."""
    image = w.scaled_label(w.IMAGE_SIZES[key.image], scale)
    label = f"{key.phase} {key.model} {image}"
    if key.variant == "samplers":
        kind, steps = key.sampler.split("-")
        label += f" {kind.upper()} {steps}"
    elif key.variant.startswith("ddp-"):
        _, backend, world = key.variant.split("-")
        label += f" DDP {backend} x{world}"
    elif key.variant == "single-process":
        label += " 1 process"
    return label


def _order(key: Key) -> tuple[Any, ...]:
    """Phase, dims, model size, image size, variant, fewer steps last (the paper's order)."""
    model = w.MODELS.get(key.model)
    images = list(w.IMAGE_SIZES)
    steps = -int(key.sampler.split("-")[1]) if key.sampler else 0
    return (
        key.phase != "train",
        model.dims if model else 0,
        w.MODEL_SIZES.index(model.size) if model else 0,
        images.index(key.image) if key.image in images else 0,
        key.variant,
        steps,
    )


def ratios(registry: Registry) -> list[Ratio]:
    """Ours / the paper's for every measured config, in the paper's order."""
    scale = registry.session.get("scale", "paper")
    out = []
    for key in sorted(registry.results, key=_order):
        acc = registry.paper(key)
        if acc is None or key.model not in w.MODELS:
            continue
        ref, published = reference(key)
        out.append(Ratio(key_label(key, scale), acc.kg, ref, published))
    return out


def _rel_ci95(registry: Registry, run_id: str) -> float:
    """The 95% interval of the config's per-unit energy, relative to its mean."""
    for key in registry.results:
        if config_run_id(key) == run_id:
            acc = registry.paper(key)
            if acc is not None and acc.energy_kwh > 0:
                return acc.ci95_kwh / acc.energy_kwh
    return math.nan


def budget_notes(registry: Registry) -> tuple[list[str], list[str]]:
    """(configs with fewer steps than the default, configs skipped) as ``label: note`` lines."""
    runs = registry.session.get("runs", {})
    fewer, skipped = [], []
    for run_id, r in runs.items():
        if r.get("skipped"):
            skipped.append(f"{r.get('label', run_id)}: {r['skipped']}")
        elif r.get("reduced") and r.get("steps", 0) < r.get("default_steps", 0):
            note = steps_note(r["steps"], r["default_steps"], _rel_ci95(registry, run_id))
            fewer.append(f"{r.get('label', run_id)}: {note}")
    return fewer, skipped
