"""Print the median cost of one ``Window.step()`` on the estimate and constant backends.

Target: 10 us or less. A script, not a timed test: machines are shared and noisy.

    python tools/bench_step_cost.py [--steps 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from pytest_co2.backends import make_backend
from pytest_co2.meter import Meter


def step_cost_us(spec: str, steps: int, repeats: int = 5) -> float:
    backend = make_backend(spec)
    meter = Meter(backend)
    medians = []
    for _ in range(repeats):
        with meter.measure("bench") as w:
            t0 = time.perf_counter_ns()
            for _ in range(steps):
                w.step()
            medians.append((time.perf_counter_ns() - t0) / steps / 1e3)
    backend.close()
    return statistics.median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    for spec in ("estimate", "constant:100"):
        print(
            f"{spec:>14}: step() median {step_cost_us(spec, args.steps):.2f} us over {args.steps} steps x 5"
        )


if __name__ == "__main__":
    main()
