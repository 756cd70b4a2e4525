"""Check pytest-co2's GPU path on one NVIDIA GPU in about 2 minutes: one JSON, one screen.

    python tools/gpu_check.py [--out DIR] [--device N] [--dry-run] [--paper]

Checks, on CUDA device ``--device`` (default 0): the instant power field's value type; idle
power cold (before any work) and warm (after); a CUDA context created inside a measured
window; the energy counter against instant power sampled every 2 ms over 10 s of on/off
load (a sensor that sees part of the time shows here); a window shorter than the counter's
measured period against the bound the backend gives; the time of ``step()`` with NVML on; a
spawned DDP rank measuring ``cuda:0`` through the environment hand-off; a pytest-xdist run
on the GPU whose total matches one process's. ``--paper`` adds every benchmark family at
paper scale (minutes more).

``--dry-run`` runs every check end to end against the emulator (``tests/gpu_emulator.py``: a
fake pynvml on a power trace and a fake clock; torch's CUDA calls replaced), on any machine,
in under a minute. Without an NVIDIA GPU (and without ``--dry-run``) it says so in one line
and exits 0 (writing only ``gpu_check.json`` with the reason, where ``--out`` or ``$OUT`` names
a folder). Results: ``gpu_check.json`` and ``gpu_check.txt`` (the summary) in ``--out``
(default ``$OUT`` if set, else ``./gpu-check``). Exit 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path[:0] = [str(ROOT), str(TOOLS)]

import gpu_check_checks as checks  # noqa: E402

BENCH_FAMILIES = (
    "test_inference_steps.py",
    "test_distributed.py",
    "test_region_month.py",
    "test_image_size.py",
    "test_model_size.py",
)


class Results:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()

    def run(self, name: str, fn: Callable[[], checks.Outcome]) -> None:
        """Run one check; one that raises is a failure, and the others go on."""
        t = time.perf_counter()
        try:
            ok, value, detail = fn()
        except Exception as exc:
            ok, value, detail = False, None, f"raised {type(exc).__name__}: {exc}"
        self.checks.append(
            {
                "check": name,
                "ok": ok,
                "value": value,
                "detail": detail,
                "seconds": round(time.perf_counter() - t, 2),
            }
        )
        print(f"[{time.perf_counter() - self.t0:6.1f} s] {_mark(ok):4} {name}", flush=True)

    @property
    def failed(self) -> bool:
        return any(c["ok"] is False for c in self.checks)


def _mark(ok: bool | None) -> str:
    return {True: "ok", False: "FAIL", None: "info"}[ok]


def summary(data: dict[str, Any]) -> str:
    """One screen: the device, then one line per check (value cut to fit 100 columns)."""
    lines = [
        f"pytest-co2 GPU check: {data['device']} ({data['mode']}), {data['status']} in "
        f"{data['elapsed_s']:.0f} s"
    ]
    for c in data["checks"]:
        value = json.dumps(c["value"], default=str) if c["value"] is not None else "-"
        line = f"  {_mark(c['ok']):4} {c['check']}: {value}"
        lines.append(line if len(line) <= 100 else line[:97] + "...")
    failed = [c for c in data["checks"] if c["ok"] is False]
    lines.extend(f"  FAIL {c['check']}: {c['detail'][:92]}" for c in failed)
    return "\n".join(lines)


def no_gpu_reason() -> str | None:
    """Why this machine has no usable NVIDIA GPU, or None when it has one."""
    from pytest_co2.backends.gpu_presence import gpu_host_kind

    if sys.platform.startswith("linux") and gpu_host_kind() is None:
        return "no NVIDIA driver: no /proc/driver/nvidia, /dev/nvidiactl or /dev/dxg"
    try:
        import pynvml
    except ImportError:
        return "pynvml is not installed (pip install 'pytest-co2[nvidia]')"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"nvmlInit failed: {exc}"
    try:
        if int(pynvml.nvmlDeviceGetCount()) == 0:
            return "NVML reports no GPU"
    finally:
        pynvml.nvmlShutdown()
    return None


def run_checks(r: Results, rig: Any, tmp: Path) -> None:
    r.run("instant power field: value type", lambda: checks.instant_field(rig))
    backend = rig.open_backend(gpus=str(rig.device))  # NVML index: no CUDA context yet
    try:
        r.run("idle cold (before any work)", lambda: checks.idle(rig, backend, "cold"))
        r.run("CUDA context created inside a window", lambda: checks.context_in_window(rig))
        r.run("step() time with NVML on", lambda: checks.step_cost(rig, backend))
        r.run("window shorter than the counter period", lambda: checks.short_window(rig, backend))
        r.run("counter vs instant power, 10 s on/off", lambda: checks.counter_vs_instant(rig))
        r.run("DDP rank measures cuda:0 via hand-off", lambda: checks.ddp_rank(rig, backend, tmp))
        r.run("xdist totals match one process", lambda: checks.xdist_totals(rig, tmp))
        r.run("idle warm (after the work)", lambda: checks.idle(rig, backend, "warm"))
    finally:
        backend.close()


def run_paper(r: Results, budget_s: float, tmp: Path) -> None:
    """Every benchmark family at paper scale on the GPU, sharing ``budget_s``."""
    deadline = time.perf_counter() + budget_s
    for i, family in enumerate(BENCH_FAMILIES):
        share = (deadline - time.perf_counter()) / (len(BENCH_FAMILIES) - i)

        def bench(family: str = family, share: float = share) -> checks.Outcome:
            if share < 10:
                return None, None, "no time left in --bench-budget-s"
            cmd = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                f"benchmarks/{family}", "--co2-scale=paper", "--co2-backend=nvml",
                f"--co2-bench-budget={int(share)}s", f"--co2-json={tmp / family}.json",
            ]  # fmt: skip
            proc = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, timeout=share + 60, check=False
            )
            tail = proc.stdout.strip().splitlines()[-1:] or [""]
            return proc.returncode in (0, 5), proc.returncode, tail[0]

        r.run(f"benchmark {family} (paper scale)", bench)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--out", help="folder for gpu_check.json and gpu_check.txt (default $OUT)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--dry-run", action="store_true", help="every check against the emulator")
    p.add_argument("--paper", action="store_true", help="add the benchmarks at paper scale")
    p.add_argument("--bench-budget-s", type=float, default=300.0, help="seconds for --paper")
    p.add_argument("--rank", metavar="OUT", help=argparse.SUPPRESS)  # the DDP rank's process
    args = p.parse_args(argv)
    if args.rank:
        return checks.rank_main(args.rank)
    if not args.dry_run:
        reason = no_gpu_reason()
        if reason is not None:
            print(f"gpu_check: no NVIDIA GPU here ({reason}); nothing to check, exit 0")
            if args.out or os.environ.get("OUT"):  # for a runner that collects the file
                out = Path(args.out or os.environ["OUT"])
                out.mkdir(parents=True, exist_ok=True)
                data = {"status": "no NVIDIA GPU", "reason": reason, "checks": []}
                (out / "gpu_check.json").write_text(json.dumps(data, indent=2) + "\n")
            return 0
    from gpu_check_rig import EmuRig, RealRig

    out = Path(args.out or os.environ.get("OUT") or "gpu-check")
    r = Results()
    rig: Any = EmuRig(args.device) if args.dry_run else RealRig(args.device)
    data: dict[str, Any] = {"mode": "dry run (emulator)" if args.dry_run else "real GPU"}
    try:
        data.update(rig.describe())
        with tempfile.TemporaryDirectory(prefix="co2-gpu-check-") as tmp:
            run_checks(r, rig, Path(tmp))
            if args.paper and not args.dry_run:
                run_paper(r, args.bench_budget_s, Path(tmp))
    finally:
        rig.close()
    data["elapsed_s"] = round(time.perf_counter() - r.t0, 1)
    data["status"] = "failed" if r.failed else "passed"
    data["checks"] = r.checks
    text = summary(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "gpu_check.txt").write_text(text + "\n")
    print(text)
    print(f"gpu_check: wrote {out / 'gpu_check.json'}")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
