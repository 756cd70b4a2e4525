"""What ``auto`` picks on this machine, and what it reports for a 2 s busy loop and a 2 s sleep.

The busy loop should read as its CPU time x TDP per thread (plus a small memory term), the
sleep as close to zero CPU energy.

    python tools/estimate_check.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time

from pytest_co2.backends import make_backend
from pytest_co2.backends.estimate import process_cpu_s
from pytest_co2.meter import Meter


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    backend = make_backend("auto")
    print(f"auto chose: {backend.describe()} (method {backend.method})")
    for note in backend.notes:
        print(f"  note: {note}")
    part = next(p for p in (backend, *getattr(backend, "parts", ())) if hasattr(p, "tdp_w"))
    per_thread_w = part.tdp_w / part.n_cpus
    meter = Meter(backend)
    for name, work in (("busy loop", busy), ("sleep", time.sleep)):
        cpu0 = process_cpu_s()
        with meter.measure(name) as w:
            work(args.seconds)
        cpu_s = process_cpu_s() - cpu0
        m = w.measurement
        assert m is not None
        by_kind = {d.device.kind: d.energy_j for d in m.devices}
        print(
            f"{name:>9}: {m.duration_s:.2f} s wall, {cpu_s:.3f} s CPU -> CPU {by_kind.get('cpu', 0):.2f} J "
            f"(CPU time x {per_thread_w:g} W/thread = {cpu_s * per_thread_w:.2f} J), "
            f"memory {by_kind.get('memory', 0):.3f} J [{m.method}]"
        )
    backend.close()


if __name__ == "__main__":
    main()
