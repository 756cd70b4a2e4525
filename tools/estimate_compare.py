"""What pytest-co2's CPU estimate, codecarbon and carbontracker report for the same workloads here.

Three workloads, each measured by all three at once: a busy loop on one thread, a sleep, and a
small torch training loop (an MLP on random data, CPU). Printed side by side: CPU joules from
each, pytest-co2's figure with its measured idle power subtracted (``--co2-subtract-idle``),
and the watts per hardware thread each one assumed. All of it runs offline:

- codecarbon: ``OfflineEmissionsTracker(tracking_mode="process")`` (no network by design);
- carbontracker: its CPU component (``IntelCPU`` where RAPL is readable, else ``GenericCPU``,
  the order carbontracker itself tries), sampled every 0.1 s; the ``CarbonTracker`` class
  would also look up the location and carbon intensity online, which is not needed for energy.

    python tools/estimate_compare.py [--seconds 3] [--idle-seconds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pytest_co2.backends.estimate import EstimateBackend, process_cpu_s
from pytest_co2.meter import measure_idle_w

KWH_J = 3.6e6


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def train(seconds: float) -> None:
    import torch  # imported (and warmed) before the measurement by main()

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(512, 256), torch.randint(0, 10, (512,))
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


# -- codecarbon ------------------------------------------------------------------------------
class Codecarbon:
    def __init__(self) -> None:
        self.why = ""
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as exc:
            self.why = f"codecarbon not importable: {exc} (pip install codecarbon)"
            return
        self._cls = OfflineEmissionsTracker
        self.w_per_thread = ""

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        out: dict[str, float] = {}
        tracker = self._cls(
            tracking_mode="process",
            country_iso_code="DEU",
            save_to_file=False,
            log_level="error",
            measure_power_secs=1,
        )
        tracker.start()
        try:
            yield out
        finally:
            tracker.stop()
            data = tracker.final_emissions_data
            out["cpu_j"] = data.cpu_energy * KWH_J
            out["ram_j"] = data.ram_energy * KWH_J
            out["ram_w"] = data.ram_power
            cpu = next((h for h in tracker._hardware if type(h).__name__ == "CPU"), None)
            tdp = getattr(cpu, "_tdp", None)
            threads = data.cpu_count or os.cpu_count() or 1
            if tdp:
                self.w_per_thread = (
                    f"{tdp / threads:g} W per thread x the process's CPU load "
                    f"({tdp:g} W for {threads:g} threads, mode {data.tracking_mode})"
                )


# -- carbontracker -------------------------------------------------------------------------
class Carbontracker:
    def __init__(self) -> None:
        self.why = ""
        try:
            logging.getLogger("carbontracker").setLevel(logging.ERROR)
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                from carbontracker.components.cpu.generic import GenericCPU
                from carbontracker.components.cpu.intel import IntelCPU

                intel = IntelCPU(pids=[os.getpid()], devices_by_pid=False)
                self.handler: Any = (
                    intel
                    if intel.available()
                    else GenericCPU(pids=[os.getpid()], devices_by_pid=False)
                )
                self.handler.init()
        except Exception as exc:  # any failure is reported, not raised
            self.why = f"carbontracker CPU component unusable: {type(exc).__name__}: {exc}"
            return
        self.name = type(self.handler).__name__
        tdp = getattr(self.handler, "tdp", None)
        threads = os.cpu_count() or 1
        matched = getattr(self.handler, "find_matching_tdp", lambda: None)() is not None
        what = "its TDP" if matched else "the mean TDP of its table (CPU not matched)"
        self.w_per_thread = (
            f"{tdp / threads:.3g} W per thread whatever the load ({self.name}: {tdp:.3g} W "
            f"= {what} / 2 for the whole machine, {threads} threads)"
            if tdp
            else f"{self.name} (measured)"
        )

    @contextlib.contextmanager
    def measure(self, period_s: float = 0.1) -> Iterator[dict[str, float]]:
        out: dict[str, float] = {}
        stop = threading.Event()
        samples: list[tuple[float, float]] = []

        def poll() -> None:
            while True:
                samples.append((time.perf_counter(), sum(self.handler.power_usage())))
                if stop.wait(period_s):
                    samples.append((time.perf_counter(), sum(self.handler.power_usage())))
                    return

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield out
        finally:
            stop.set()
            thread.join()
            out["cpu_j"] = sum((t1 - t0) * p0 for (t0, p0), (t1, _) in itertools.pairwise(samples))


# -- pytest-co2 ---------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    wall_s: float
    cpu_s: float
    ours_j: float
    ours_dyn_j: float
    cc: dict[str, float]
    ct: dict[str, float]


def run(
    name: str,
    work: Callable[[float], None],
    seconds: float,
    ours: EstimateBackend,
    idle_w: float,
    cc: Codecarbon,
    ct: Carbontracker,
) -> Row:
    cc_out: dict[str, float] = {}
    ct_out: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        if not cc.why:
            cc_out = stack.enter_context(cc.measure())
        if not ct.why:
            ct_out = stack.enter_context(ct.measure())
        t0, c0, e0 = time.perf_counter(), process_cpu_s(), ours.read_j()[0]
        work(seconds)
        t1, c1, e1 = time.perf_counter(), process_cpu_s(), ours.read_j()[0]
    wall = t1 - t0
    return Row(name, wall, c1 - c0, e1 - e0, e1 - e0 - idle_w * wall, cc_out, ct_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per workload")
    parser.add_argument("--idle-seconds", type=float, default=2.0, help="idle measurement")
    args = parser.parse_args()

    ours = EstimateBackend()
    idle_w = measure_idle_w(ours, args.idle_seconds)[0]
    cc, ct = Codecarbon(), Carbontracker()
    rows = [
        run("busy loop", busy, args.seconds, ours, idle_w, cc, ct),
        run("sleep", time.sleep, args.seconds, ours, idle_w, cc, ct),
    ]
    try:
        import torch

        train(0.2)  # import and first-step costs outside the measurement
        rows.append(
            run(
                f"torch MLP ({torch.get_num_threads()} thr)",
                train,
                args.seconds,
                ours,
                idle_w,
                cc,
                ct,
            )
        )
    except ImportError as exc:
        print(f"torch workload skipped: {exc}")

    print(f"pytest-co2: {ours.basis}")
    print(
        f"  idle measured over {args.idle_seconds:g} s: {idle_w:.3f} W (subtracted in 'pytest-co2 -idle')"
    )
    print(f"codecarbon: {cc.why or cc.w_per_thread}")
    print(f"carbontracker: {ct.why or ct.w_per_thread}")
    print()
    head = f"{'workload':<22}{'wall s':>7}{'CPU s':>7}  {'pytest-co2 J':>12}{'-idle J':>9}  {'codecarbon CPU J':>16}{'(+RAM J)':>10}  {'carbontracker J':>15}"
    print(head)
    print("-" * len(head))
    for r in rows:
        cc_cpu = f"{r.cc['cpu_j']:.2f}" if "cpu_j" in r.cc else "n/a"
        cc_ram = f"{r.cc['ram_j']:.2f}" if "ram_j" in r.cc else ""
        ct_cpu = f"{r.ct['cpu_j']:.2f}" if "cpu_j" in r.ct else "n/a"
        print(
            f"{r.name:<22}{r.wall_s:>7.2f}{r.cpu_s:>7.2f}  {r.ours_j:>12.2f}{r.ours_dyn_j:>9.2f}  "
            f"{cc_cpu:>16}{cc_ram:>10}  {ct_cpu:>15}"
        )
    print()
    print(
        "Per busy thread-second: pytest-co2 charges",
        f"{ours.full_w_per_thread:.2f} W",
        f"(of which {ours.idle_w_per_thread:.2f} W idle, charged for {ours.cpus_held:g} CPUs held all the time)",
    )
    if any("ram_w" in r.cc for r in rows):
        print(
            f"codecarbon RAM: {rows[0].cc.get('ram_w', 0):g} W constant (pytest-co2 counts memory inside the SPECpower watts)"
        )


if __name__ == "__main__":
    main()
