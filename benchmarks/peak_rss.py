"""Peak memory of benchmark workloads: a planning tool (``python -m benchmarks.peak_rss``).

Runs jobs ``PHASE:MODEL:IMAGE`` (phase train, synth or decode) one after another in one child
process, as the benchmark session does (models cached, one per config), and prints after
each job the process's peak RSS so far and its current RSS. ``--release`` frees each job's
model afterwards and returns freed heap memory to the system (``gc`` + glibc
``malloc_trim``), which is what ``harness.Bench.release`` does between families.

    python -m benchmarks.peak_rss train:3d-large:3d-192 synth:3d-large:3d-192
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from . import workloads as w
from .builders import build_decoder, build_unet, release_memory
from .steps import DecodeStep, DenoiseStep, TrainStep


def current_rss_bytes() -> int:
    """Resident set size now (``/proc/self/statm``; 0 where there is none)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """This process's peak RSS (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def parse_job(text: str) -> tuple[str, str, str]:
    try:
        phase, model, image = text.split(":")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid job {text!r}: expected PHASE:MODEL:IMAGE, e.g. train:3d-large:3d-192"
        ) from None
    if phase not in ("train", "synth", "decode") or model not in w.MODELS:
        raise argparse.ArgumentTypeError(
            f"invalid job {text!r}: phase train|synth|decode, model one of {', '.join(w.MODELS)}"
        )
    if image not in w.IMAGE_SIZES:
        raise argparse.ArgumentTypeError(
            f"invalid job {text!r}: image one of {', '.join(w.IMAGE_SIZES)}"
        )
    return phase, model, image


def run_jobs(
    jobs: list[tuple[str, str, str]], *, scale: str, calls: int, release: bool
) -> list[dict[str, Any]]:
    """Run each job ``calls`` times in this process; one row of memory figures per job."""
    import torch

    unets: dict[str, Any] = {}
    rows = []
    for phase, model_key, image_key in jobs:
        image = w.IMAGE_SIZES[image_key]
        latent = w.latent_shape(image, scale)
        t0 = time.perf_counter()
        if phase == "decode":
            step: Any = DecodeStep(build_decoder(image.dims, scale), latent)
        else:
            if model_key not in unets:
                unets[model_key] = build_unet(w.MODELS[model_key], scale)
            unet = unets[model_key]
            step = TrainStep(unet, latent) if phase == "train" else DenoiseStep(unet, latent)
        for _ in range(calls):
            step()
        if isinstance(step, TrainStep):
            step.close()
        del step
        if release:
            unets.pop(model_key, None)
            release_memory()
        rows.append(
            {
                "job": f"{phase}:{model_key}:{image_key}",
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_rss_gb": round(peak_rss_bytes() / 1e9, 2),
                "rss_after_gb": round(current_rss_bytes() / 1e9, 2),
                "threads": torch.get_num_threads(),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a planning tool
    p = argparse.ArgumentParser(description="peak RSS of benchmark workloads")
    p.add_argument("jobs", nargs="+", type=parse_job, metavar="PHASE:MODEL:IMAGE")
    p.add_argument("--scale", choices=w.SCALES, default="paper")
    p.add_argument("--calls", type=int, default=2, help="steps per job (default 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--release", action="store_true", help="free each model after its job")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if not a.child:  # measure in a fresh process, so the figures are the jobs' alone
        cmd = [sys.executable, "-m", "benchmarks.peak_rss", "--child", *(argv or sys.argv[1:])]
        sys.exit(subprocess.call(cmd))
    import torch

    torch.set_num_threads(a.threads)
    run_jobs(a.jobs, scale=a.scale, calls=a.calls, release=a.release)


if __name__ == "__main__":  # pragma: no cover
    main()
