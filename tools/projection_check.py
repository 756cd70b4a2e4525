"""Project 20 steps of a steady CPU workload to 1000 steps and compare with 1000 measured steps.

Goal: the projection within 5% of the measurement. Uses the default backend (``auto``).

    python tools/projection_check.py [--backend auto] [--work 200000]
"""

from __future__ import annotations

import argparse

from pytest_co2.backends import make_backend
from pytest_co2.meter import Meter


def work(n: int) -> int:
    acc = 0
    for i in range(n):
        acc += i * i % 7
    return acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--work", type=int, default=200_000, help="loop iterations per step")
    args = parser.parse_args()
    backend = make_backend(args.backend)
    meter = Meter(backend)
    for _ in meter.steps(20, warmup=2, name="short"):
        work(args.work)
    for _ in meter.steps(1000, name="long"):
        work(args.work)
    short, long = meter.measurements
    projected = short.project(1000)
    err = projected.energy_j / long.energy_j - 1
    print(f"backend: {backend.describe()}")
    print(
        f"20 steps:   {short.energy_per_unit_j.mean:.4f} J/step ± {short.energy_per_unit_j.std:.4f} "
        f"({short.duration_s:.2f} s, {short.windows} windows)"
    )
    print(
        f"projected to 1000 steps: {projected.energy_j:.2f} J "
        f"(95% CI ± {projected.ci95_kwh * 3.6e6:.2f} J)"
    )
    print(f"measured over 1000 steps: {long.energy_j:.2f} J ({long.duration_s:.2f} s)")
    print(
        f"projection error: {err:+.2%} ({'within' if abs(err) <= 0.05 else 'OUTSIDE'} the 5% goal)"
    )
    backend.close()


if __name__ == "__main__":
    main()
