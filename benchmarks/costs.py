"""What each paper-scale config costs on the reference machine: the planner's starting point.

Reference: a 2-vCPU AMD EPYC guest (Zen 4, AVX-512), torch 2.13 CPU, 2 threads, batch 1.
Seconds per step are the standalone timings of ``shared/notes/monai-ldm-on-cpu.md`` x 1.2,
the ratio of the benchmark session's measured steps to them on that machine (3D medium
256²x192 training 84 s vs 69.6 s, 3D large 192³ 177 s vs 143 s); the first training
iteration took 2.2x a later one there (183 s vs 84 s, 371 s vs 177 s). The planner scales
the whole table by how fast this machine has been so far (``planner.speed_factor``), so only
the ratios between configs need to hold.

Peak RSS: the process's peak with the workload alone (``python -m benchmarks.peak_rss``,
see README, Memory), plus the 1 GB the quiet runtime may keep (glibc's freed memory).
"""

from __future__ import annotations

from . import workloads as w
from .planner import Config, default_steps

SESSION_OVER_STANDALONE = 1.2
#: seconds per training iteration and per denoising step (standalone, notes)
_TRAIN_S = {
    ("2d-medium", "2d-192"): 0.87,
    ("2d-medium", "2d-256"): 1.44,
    ("2d-medium", "2d-320"): 2.41,
    ("2d-medium", "2d-512"): 6.72,
    ("3d-medium", "3d-64"): 1.02,
    ("3d-medium", "3d-128"): 5.13,
    ("3d-medium", "3d-192"): 27.0,
    ("3d-medium", "3d-256x256x192"): 69.6,
    ("2d-small", "2d-256"): 0.30,
    ("2d-large", "2d-256"): 4.49,
    ("3d-small", "3d-192"): 6.38,
    ("3d-large", "3d-192"): 143.0,
}
_SYNTH_S = {
    ("2d-medium", "2d-192"): 0.27,
    ("2d-medium", "2d-256"): 0.44,
    ("2d-medium", "2d-320"): 0.71,
    ("2d-medium", "2d-512"): 2.07,
    ("3d-medium", "3d-64"): 0.32,
    ("3d-medium", "3d-128"): 1.58,
    ("3d-medium", "3d-192"): 8.28,
    ("3d-medium", "3d-256x256x192"): 19.5,
    ("2d-small", "2d-256"): 0.091,
    ("2d-large", "2d-256"): 1.33,
    ("3d-small", "3d-192"): 1.83,
    ("3d-large", "3d-192"): 41.8,
}
#: one decode with the benchmarks' small VQ-VAE decoders (estimated from the notes' 20 s for
#: a 4x wider 3D decoder at 256²x192)
_DECODE_S = {
    "2d-192": 0.1,
    "2d-256": 0.15,
    "2d-320": 0.25,
    "2d-512": 0.6,
    "3d-64": 0.1,
    "3d-128": 0.6,
    "3d-192": 2.0,
    "3d-256x256x192": 4.5,
}
#: peak RSS in GB (train, synth) with the workload alone
PEAK_RSS_GB = {
    ("2d-medium", "2d-192"): (1.5, 0.6),
    ("2d-medium", "2d-256"): (1.6, 0.6),
    ("2d-medium", "2d-320"): (1.7, 0.6),
    ("2d-medium", "2d-512"): (2.3, 0.7),
    ("3d-medium", "3d-64"): (1.5, 0.6),
    ("3d-medium", "3d-128"): (1.6, 0.6),
    ("3d-medium", "3d-192"): (3.1, 1.0),
    ("3d-medium", "3d-256x256x192"): (5.0, 1.3),
    ("2d-small", "2d-256"): (0.6, 0.3),
    ("2d-large", "2d-256"): (3.6, 1.1),
    ("3d-small", "3d-192"): (1.3, 0.6),
    ("3d-large", "3d-192"): (10.0, 2.5),
}
QUIET_RUNTIME_GB = 1.0
FIRST_TRAIN_FACTOR = 2.2  # first training iteration / a later one
FIRST_SYNTH_FACTOR = 1.5
DDP_SPAWN_S = 9.0  # notes: 2 gloo processes
DDP_STEP_FACTOR = 2.4  # a DDP step (each rank one batch on one thread) / a 2-thread step
#: smoke scale: the paper-scale table x this before anything is measured
SMOKE_PRIOR = 0.01


def _build_s(model: str) -> float:
    return 0.5 + w.MODELS[model].params / 1e8


def _decode_run_s(image: str, time_budget_s: float, warmup: int, min_steps: int) -> float:
    d = _DECODE_S[image]
    return (warmup + default_steps(d, time_budget_s / 2, min_steps, 50)) * d


def train_config(
    model: str,
    image: str,
    key: str,
    label: str,
    *,
    time_budget_s: float,
    min_steps: int = 2,
    warmup: int = 1,
) -> Config:
    step = _TRAIN_S[(model, image)] * SESSION_OVER_STANDALONE
    return Config(
        key,
        label,
        step,
        warmup * FIRST_TRAIN_FACTOR * step + _build_s(model),
        default_steps(step, time_budget_s, min_steps, 50),
        "iteration",
        warmup,
        time_budget_s=time_budget_s,
        min_steps=min_steps,
    )


def synth_config(
    model: str,
    image: str,
    key: str,
    label: str,
    *,
    time_budget_s: float,
    decode: bool,
    min_steps: int = 2,
    warmup: int = 1,
) -> Config:
    step = _SYNTH_S[(model, image)] * SESSION_OVER_STANDALONE
    fixed = warmup * FIRST_SYNTH_FACTOR * step + _build_s(model)
    if decode:
        fixed += _decode_run_s(image, time_budget_s, warmup, min_steps)
    return Config(
        key,
        label,
        step,
        fixed,
        default_steps(step, time_budget_s, min_steps, 50),
        "step",
        warmup,
        time_budget_s=time_budget_s,
        min_steps=min_steps,
    )


def samplers_config(
    key: str, label: str, *, time_budget_s: float, decode: bool, min_steps: int = 2, warmup: int = 1
) -> Config:
    """The round-robin of Fig. 4b's samplers: one step = one round of every sampler."""
    model, image = w.INFERENCE_CONFIG
    one = _SYNTH_S[(model, image)] * SESSION_OVER_STANDALONE
    rnd = one * len(w.SAMPLERS)
    fixed = warmup * FIRST_SYNTH_FACTOR * rnd + _build_s(model)
    if decode:
        fixed += _decode_run_s(image, time_budget_s, warmup, min_steps)
    return Config(
        key,
        label,
        rnd,
        fixed,
        default_steps(rnd, time_budget_s * len(w.SAMPLERS), min_steps, 50),
        "round",
        warmup,
        time_budget_s=time_budget_s * len(w.SAMPLERS),
        min_steps=min_steps,
    )


def ddp_config(key: str, label: str, single: Config, world: int = 2) -> Config:
    """DDP after its single process: as many steps, each rank one batch on one thread."""
    step = single.step_s * DDP_STEP_FACTOR
    return Config(
        key,
        label,
        step,
        DDP_SPAWN_S + single.warmup * FIRST_TRAIN_FACTOR * step,
        single.default_steps,
        "step",
        single.warmup,
        after=single.key,
    )


def peak_rss_gb(phase: str, model: str, image: str, world: int = 1) -> float:
    """The config's peak RSS estimate in GB (the quiet runtime's 1 GB included)."""
    train, synth = PEAK_RSS_GB[(model, image)]
    return (train if phase == "train" else synth) * world + QUIET_RUNTIME_GB
