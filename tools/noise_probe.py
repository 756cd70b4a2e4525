"""Where does the CPU time of a small torch training step vary between runs?

Runs a small conv-net training step (the kind of test the README shows) in fresh processes,
several runs per configuration, and records each step's process CPU time (what the
``estimate`` backend charges: user + system time of all threads), wall time, minor page
faults and the VM's steal time. Configurations vary the torch thread count against the
cores, OpenMP spin-waiting (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME``) and
glibc's allocator thresholds; warm-up length is analysed afterwards from the same runs.
Runs are interleaved (round-robin over configurations) so that a change of the machine's
load hits every configuration alike.

    python tools/noise_probe.py --runs 6 --steps 50 [--json out.json] [--only NAME,NAME]

Prints, per configuration: CPU ms per step, the within-run spread (median over runs of the
per-step coefficient of variation, and of the 20-step mean's relative standard error), the
between-run spread (coefficient of variation of the run means, and max/min), the system-time
share, page faults per step, CPU/wall (above 1: more than one thread busy, spinning included).

Findings on the project's 2-core VM (torch 2.13 CPU, libgomp, glibc 2.36), 2026-12-03, while
other agents shared the machine (1-min load 2.4-6.6 in the first pass of 6 runs x 7
configurations, 6.7-8.8 in the rerun of 5 runs x 5; between-run CV = CV of the 20-step means):

- Two torch threads with libgomp's default spin-waiting are the source: 160-180 ms of CPU
  per step against 30-34 ms with one thread, between-run CV 31-62%, run means 3-6x apart.
  A thread waiting at a barrier spins while the other one waits for a core the other
  agents hold; the estimate charges the spinning as energy. ``KMP_BLOCKTIME=0`` does
  nothing (Intel OpenMP's knob; torch ships libgomp).
- ``OMP_WAIT_POLICY=PASSIVE`` removes it: 39 ms, between-run CV 3.2-3.5% (4.8-6.1% in the
  heavier rerun), within-run CV 8-11%. ``GOMP_SPINCOUNT=0`` is close (40 ms, 5-10%).
- The allocator is the next source: ~2,700 minor page faults per step (glibc unmaps freed
  tensor buffers and faults them in again), 11-15% of the CPU time in the kernel. With
  ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` at 1 GiB (or mallopt in-process):
  0-120 faults per step, 0-3% system time, within-run CV 3-6%, between-run CV 2.1-2.5%
  with one thread (4.4-5.1% under load 7-9); PASSIVE + malloc with two threads: 36 ms,
  within 5.6-5.8%, between 4.8-6.3% under load 7-9.
- Warm-up is not a between-run source: the first step costs 1.3-2.3x the steady state,
  from the second on steps are within a few % of it; 3 or 10 warm-up steps change the
  between-run CV by less than the run-to-run scatter of the figure itself.
- What remains (2-6% between runs, growing with the machine's load) is contention: CPU/wall
  0.6-0.85 for a single thread means the process waited for a core; more windows in one
  run do not shrink it, which is why a compare needs a between-run term or a reference.
- numpy's OpenBLAS (2 threads) spins the same way (tools/gate_check.py shows it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Any

#: The workload, shared with tools/gate_check.py: a small conv net, about 30-40 ms a step
#: with two threads on the project's 2-core VM.
TORCH_NET = """
import torch
from torch import nn


def make_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 14 * 14, 10),
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))
    return net, opt, x, y


def train_step(net, opt, x, y, repeat=1):
    for _ in range(repeat):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
"""

#: name -> (torch threads via torch.set_num_threads, extra environment of the child)
CONFIGS: dict[str, tuple[int, dict[str, str]]] = {
    "2thr": (2, {}),  # torch's default here: one thread per core
    "1thr": (1, {}),
    "2thr+PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "2thr+SPIN0": (2, {"GOMP_SPINCOUNT": "0"}),
    "2thr+BLOCKTIME0": (2, {"KMP_BLOCKTIME": "0"}),  # Intel OpenMP's knob; torch ships libgomp
    "1thr+malloc1G": (
        1,
        {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)},
    ),
    "2thr+malloc1G": (
        2,
        {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)},
    ),
    "2thr+PASSIVE+malloc1G": (
        2,
        {
            "OMP_WAIT_POLICY": "PASSIVE",
            "MALLOC_MMAP_THRESHOLD_": str(2**30),
            "MALLOC_TRIM_THRESHOLD_": str(2**30),
        },
    ),
}


def _steal_ticks() -> int:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        return int(fields[8])  # cpu user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return 0


def child(threads: int, steps: int) -> dict[str, Any]:
    """One run: ``steps`` training steps, each one's CPU/wall/fault figures."""
    import resource

    namespace: dict[str, Any] = {}
    exec(TORCH_NET, namespace)
    import torch

    torch.set_num_threads(threads)
    net, opt, x, y = namespace["make_net"]()
    load0 = os.getloadavg()[0]
    steal0 = _steal_ticks()
    cpu, user, sys_, wall, faults = [], [], [], [], []
    t0, c0, o0 = time.perf_counter(), time.process_time(), os.times()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        namespace["train_step"](net, opt, x, y)
        t1, c1, o1 = time.perf_counter(), time.process_time(), os.times()
        f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu.append(c1 - c0)
        user.append(o1.user - o0.user)
        sys_.append(o1.system - o0.system)
        wall.append(t1 - t0)
        faults.append(f1 - f0)
        t0, c0, o0, f0 = t1, c1, o1, f1
    return {
        "threads": torch.get_num_threads(),
        "cpu_s": cpu,
        "user_s": user,
        "sys_s": sys_,
        "wall_s": wall,
        "minflt": faults,
        "load1": load0,
        "steal_ticks": _steal_ticks() - steal0,
    }


def _cv(xs: list[float]) -> float:
    return statistics.stdev(xs) / statistics.fmean(xs) if len(xs) > 1 else math.nan


def summarize(runs: list[dict[str, Any]], warmup: int, measured: int) -> dict[str, float]:
    """Spread figures of the steps ``warmup .. warmup+measured`` of each run."""
    means, within_cv, within_rse, sys_share, faults, ratio = [], [], [], [], [], []
    for r in runs:
        cpu = r["cpu_s"][warmup : warmup + measured]
        wall = r["wall_s"][warmup : warmup + measured]
        means.append(statistics.fmean(cpu))
        within_cv.append(_cv(cpu))
        within_rse.append(_cv(cpu) / math.sqrt(len(cpu)))
        sys_share.append(
            sum(r["sys_s"][warmup : warmup + measured])
            / max(
                sum(r["user_s"][warmup : warmup + measured])
                + sum(r["sys_s"][warmup : warmup + measured]),
                1e-12,
            )
        )
        faults.append(statistics.fmean(r["minflt"][warmup : warmup + measured]))
        ratio.append(sum(cpu) / sum(wall))
    return {
        "cpu_ms": statistics.fmean(means) * 1e3,
        "within_cv": statistics.median(within_cv),
        "within_rse": statistics.median(within_rse),
        "between_cv": _cv(means),
        "max_over_min": max(means) / min(means),
        "sys_share": statistics.fmean(sys_share),
        "faults_per_step": statistics.fmean(faults),
        "cpu_per_wall": statistics.fmean(ratio),
        "runs": len(runs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=6, help="fresh processes per configuration")
    ap.add_argument(
        "--steps", type=int, default=50, help="training steps per run (warm-up included)"
    )
    ap.add_argument("--measured", type=int, default=20, help="steps a measurement averages")
    ap.add_argument("--only", default="", help="comma-separated configuration names (default all)")
    ap.add_argument("--json", default="", help="write the raw per-step data here")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}: accepted are {list(CONFIGS)}")
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    start = time.time()
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} CPUs", flush=True)
    for r in range(args.runs):
        for name in names:
            threads, extra = CONFIGS[name]
            env = {**os.environ, **extra}
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}/{args.runs} done ({time.time() - start:.0f} s)", flush=True)
    print(f"load average at end: {os.getloadavg()}")
    loads = [x["load1"] for v in results.values() for x in v]
    steal = sum(x["steal_ticks"] for v in results.values() for x in v)
    print(
        f"1-min load at run starts: min {min(loads):.2f}, max {max(loads):.2f}; steal ticks {steal}"
    )
    m = args.measured
    head = (
        f"{'configuration':16} {'warm':>4} {'CPU ms':>7} {'within cv':>9} {'rse mean':>8} "
        f"{'between cv':>10} {'max/min':>7} {'sys %':>6} {'flt/step':>8} {'cpu/wall':>8}"
    )
    print(head)
    print("-" * len(head))
    for name in names:
        for warm in sorted({3, 10, args.steps - m}):
            s = summarize(results[name], warm, m)
            print(
                f"{name:16} {warm:>4} {s['cpu_ms']:7.1f} {s['within_cv']:9.1%} {s['within_rse']:8.1%} "
                f"{s['between_cv']:10.1%} {s['max_over_min']:7.3f} {s['sys_share']:6.1%} "
                f"{s['faults_per_step']:8.0f} {s['cpu_per_wall']:8.2f}"
            )
    print("\nfirst steps / steady state (CPU time, mean over runs):")
    for name in names:
        steady = statistics.fmean(
            statistics.fmean(r["cpu_s"][args.steps - m :]) for r in results[name]
        )
        firsts = [statistics.fmean(r["cpu_s"][i] for r in results[name]) / steady for i in range(8)]
        print(f"  {name:16} " + " ".join(f"{f:5.2f}" for f in firsts))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
