"""Time one workload standalone: ``python -m benchmarks.timing 3d-medium 3d-192 --phase train``
(a planning tool: plain PyTorch/MONAI, no pytest, no energy)."""

from __future__ import annotations

from collections.abc import Callable

from .builders import build_decoder, build_unet
from .steps import DecodeStep, DenoiseStep, TrainStep
from .workloads import IMAGE_SIZES, MODELS, SCALES, latent_shape


def time_steps(step: Callable[[], None], n: int = 3, warmup: int = 1) -> list[float]:
    """Wall seconds of ``n`` calls after ``warmup`` calls (for planning, not for reports)."""
    import time

    for _ in range(warmup):
        step()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a planning tool
    import argparse

    import torch

    p = argparse.ArgumentParser(description="time one workload standalone")
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("image", choices=sorted(IMAGE_SIZES))
    p.add_argument("--phase", choices=("train", "synth", "decode"), default="train")
    p.add_argument("--scale", choices=SCALES, default="paper")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-n", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    image = IMAGE_SIZES[a.image]
    latent = latent_shape(image, a.scale)
    if a.phase == "decode":
        step: Callable[[], None] = DecodeStep(build_decoder(image.dims, a.scale), latent)
    else:
        unet = build_unet(MODELS[a.model], a.scale)
        step = TrainStep(unet, latent) if a.phase == "train" else DenoiseStep(unet, latent)
    times = time_steps(step, n=a.n)
    print(
        f"{a.model} {a.image} {a.phase} {a.scale} latent {latent}: "
        + ", ".join(f"{t:.3f}" for t in times)
        + " s"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
