"""Median cost of ``Backend.read_j()`` in microseconds: the meter's per-boundary overhead.

    python tools/bench_read_cost.py [--rounds 200] [--calls 200]

Each round times ``--calls`` back-to-back calls; the figure is the median over rounds of the
per-call time (and the fastest round, for reference). ``rapl (fake tree)`` reads a fake
powercap tree on the local file system, so it measures the backend's own cost plus a
``pread``, not the kernel's RAPL MSR read.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_co2.backends.base import Backend
from pytest_co2.backends.constant import ConstantBackend
from pytest_co2.backends.estimate import EstimateBackend
from pytest_co2.backends.rapl import RaplBackend


def per_call_us(read: Callable[[], object], rounds: int, calls: int) -> tuple[float, float]:
    """(median, min) over ``rounds`` of the mean time per call, in microseconds."""
    for _ in range(calls):  # warm up
        read()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        t = clock()
        for _ in range(calls):
            read()
        samples.append((clock() - t) / calls / 1000.0)
    return statistics.median(samples), min(samples)


def fake_powercap(root: Path) -> Path:
    for entry, name in [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:1", "dram"),
        ("intel-rapl:1", "package-1"),
    ]:
        d = root / entry
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text("123456789\n")
        (d / "max_energy_range_uj").write_text("262143328850\n")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, Backend]] = [
            ("constant", ConstantBackend(100.0)),
            ("estimate", EstimateBackend(cpu_tdp_w=100.0)),
            (
                "rapl (fake tree, 3 domains)",
                RaplBackend(fake_powercap(Path(tmp) / "pc"), poll_interval_s=3600),
            ),
        ]
        print(f"read_j() cost, median of {args.rounds} rounds x {args.calls} calls")
        print(f"{'backend':<30} {'median us':>10} {'min us':>10}")
        for name, backend in backends:
            median_us, min_us = per_call_us(backend.read_j, args.rounds, args.calls)
            print(f"{name:<30} {median_us:>10.2f} {min_us:>10.2f}")
            backend.close()


if __name__ == "__main__":
    main()
