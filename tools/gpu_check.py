"""Check pytest-co2's GPU path on one NVIDIA GPU in under 8 minutes; one JSON and one table out.

    python tools/gpu_check.py [--out DIR] [--device N] [--quick] [--bench-budget-s 240]

Checks, on CUDA device ``--device`` (default 0): NVML support (energy counter, power, the
instant power field, architecture, MIG mode, running processes); the counter's update
period and monotonicity under load; read latency; windows of 10 ms to 1 s against an
integral of instant power sampled every ~2 ms (counter difference and two-point power x
time); ``cuda.synchronize_all``; device selection (index, UUID prefix, empty, in-use);
a second process's load bleeding into an idle window; pytest-xdist locking; then the
hardware tests (``tests/test_hardware.py``, marker ``hardware``) and every benchmark family
at paper scale (``--co2-time-budget=0.5``) with its paper-relation verdicts.

Results: ``gpu_check.json`` and ``gpu_check.md`` in ``--out`` (default ``$OUT`` if set, else
``./gpu-check``). Exit 0 when nothing failed; 1 when a check failed. Without an NVIDIA GPU it
prints "no NVIDIA GPU" with the reason and exits 0 (writing the files only when ``--out`` or
``$OUT`` names a folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOWS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
BENCH_FAMILIES = (
    "test_inference_steps.py",
    "test_distributed.py",
    "test_region_month.py",
    "test_image_size.py",
    "test_model_size.py",
)


# -- results -----------------------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()

    def add(self, name: str, ok: bool | None, value: Any = None, detail: str = "") -> None:
        self.checks.append({"check": name, "ok": ok, "value": value, "detail": detail})
        mark = {True: "ok", False: "FAIL", None: "info"}[ok]
        print(f"[{time.perf_counter() - self.t0:6.1f} s] {mark:4} {name}: {_short(value)} {detail}")

    def run(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # one broken check must not hide the others
            self.add(name, False, None, f"raised {type(exc).__name__}: {exc}")

    @property
    def failed(self) -> bool:
        return any(c["ok"] is False for c in self.checks)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def write_outputs(out: Path, data: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    lines = [
        "# pytest-co2 GPU check",
        "",
        f"{data.get('device', 'no device')}; {data.get('status')}; "
        f"{data.get('elapsed_s', 0):.0f} s",
        "",
        "| check | result | value | detail |",
        "| --- | --- | --- | --- |",
    ]
    for c in data.get("checks", []):
        mark = {True: "ok", False: "**FAIL**", None: "info"}[c["ok"]]
        value = _short(c["value"]).replace("|", "\\|")
        lines.append(f"| {c['check']} | {mark} | {value} | {c['detail'].replace('|', '/')} |")
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print(f"gpu_check: wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")


# -- no GPU ------------------------------------------------------------------------------------


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


# -- GPU load ----------------------------------------------------------------------------------


class Load:
    """Steady matmul load on one CUDA device from a thread."""

    def __init__(self, torch: Any, device: int, n: int = 8192) -> None:
        self.torch, self.device, self.n = torch, device, n
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        torch = self.torch
        dev = torch.device("cuda", self.device)
        x = torch.randn(self.n, self.n, device=dev, dtype=torch.float16)

        def loop() -> None:
            with torch.cuda.device(dev):
                y = x
                while not self.stop.is_set():
                    for _ in range(8):
                        y = x @ x
                    torch.cuda.synchronize(dev)
                del y

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        time.sleep(0.5)  # ramp up
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
        self.torch.cuda.synchronize(self.device)


class Sampler:
    """Instant power (W) sampled every ~2 ms by a thread: the reference integral."""

    def __init__(self, read_w: Callable[[], float], interval_s: float = 0.002) -> None:
        self.read_w, self.interval_s = read_w, interval_s
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.perf_counter(), self.read_w()))
            time.sleep(self.interval_s)

    def __enter__(self) -> Sampler:
        self.thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def integral_j(self, t_a: float, t_b: float) -> float:
        pts = [(t, p) for t, p in list(self.samples) if t_a <= t <= t_b]
        before = [(t, p) for t, p in self.samples if t < t_a][-1:]
        after = [(t, p) for t, p in self.samples if t > t_b][:1]
        pts = before + pts + after
        if len(pts) < 2:
            return math.nan
        total = 0.0
        for (t0, p0), (t1, p1) in itertools.pairwise(pts):
            lo, hi = max(t0, t_a), min(t1, t_b)
            if hi <= lo:
                continue

            def at(
                t: float, t0: float = t0, p0: float = p0, t1: float = t1, p1: float = p1
            ) -> float:
                return p0 + (p1 - p0) * (t - t0) / (t1 - t0)

            total += 0.5 * (at(lo) + at(hi)) * (hi - lo)
        return total


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# -- checks ------------------------------------------------------------------------------------


def check_api(r: Results, nvml: Any, h: Any) -> dict[str, bool]:
    support: dict[str, bool] = {}

    def probe(name: str, fn: Callable[[], Any]) -> None:
        try:
            value = fn()
            support[name] = True
            r.add(f"api {name}", True, value)
        except Exception as exc:
            support[name] = False
            r.add(f"api {name}", None, None, f"not available: {exc}")

    probe(
        "nvmlDeviceGetTotalEnergyConsumption (mJ)",
        lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h),
    )
    probe("nvmlDeviceGetPowerUsage (mW)", lambda: nvml.nvmlDeviceGetPowerUsage(h))

    from pytest_co2.backends.nvml import field_value

    def field() -> str:
        (v,) = nvml.nvmlDeviceGetFieldValues(h, [nvml.NVML_FI_DEV_POWER_INSTANT])
        if v.nvmlReturn != 0:
            raise nvml.NVMLError(v.nvmlReturn)
        return f"{field_value(v):g} (valueType {getattr(v, 'valueType', '?')})"

    probe("NVML_FI_DEV_POWER_INSTANT (mW)", field)
    probe("nvmlDeviceGetArchitecture", lambda: nvml.nvmlDeviceGetArchitecture(h))
    probe("nvmlDeviceGetMigMode", lambda: list(nvml.nvmlDeviceGetMigMode(h)))
    probe(
        "nvmlDeviceGetComputeRunningProcesses (pids)",
        lambda: [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)],
    )
    ok = support["nvmlDeviceGetTotalEnergyConsumption (mJ)"]
    r.add("energy counter present", ok, None, "" if ok else "pre-Volta: the polled path is used")
    return support


def check_latency(r: Results, nvml: Any, h: Any, support: dict[str, bool]) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "counter": lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h),
        "power usage": lambda: nvml.nvmlDeviceGetPowerUsage(h),
        "instant field": lambda: nvml.nvmlDeviceGetFieldValues(h, [nvml.NVML_FI_DEV_POWER_INSTANT]),
    }
    keys = dict(
        zip(
            calls,
            [
                "nvmlDeviceGetTotalEnergyConsumption (mJ)",
                "nvmlDeviceGetPowerUsage (mW)",
                "NVML_FI_DEV_POWER_INSTANT (mW)",
            ],
            strict=True,
        )
    )
    for name, fn in calls.items():
        if not support.get(keys[name]):
            continue
        times = []
        for _ in range(2000):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        times.sort()
        value = {"median_us": round(times[1000] * 1e6, 1), "p99_us": round(times[1980] * 1e6, 1)}
        r.add(f"read latency {name}", True, value)


def check_counter_period(r: Results, nvml: Any, h: Any, torch: Any, device: int) -> float | None:
    changes: list[float] = []
    backwards = 0
    with Load(torch, device):
        last = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
        end = time.perf_counter() + 3.0
        while time.perf_counter() < end:
            v = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
            if v != last:
                changes.append(time.perf_counter())
                backwards += v < last
                last = v
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    if not gaps:
        r.add("counter update period", False, None, "the counter did not change in 3 s under load")
        return None
    period = statistics.median(gaps)
    value = {
        "median_ms": round(period * 1e3, 2),
        "min_ms": round(min(gaps) * 1e3, 2),
        "max_ms": round(max(gaps) * 1e3, 2),
        "updates": len(gaps),
    }
    ok = period <= 0.1
    r.add(
        "counter update period", ok, value, "pytest-co2 assumes <= 100 ms (COUNTER_UPDATE_PERIOD_S)"
    )
    r.add("counter monotonic", backwards == 0, backwards, "decreases seen in 3 s under load")
    return period


def check_windows(
    r: Results, nvml: Any, h: Any, torch: Any, device: int, period_s: float | None
) -> None:
    from pytest_co2.backends.integrator import short_window_energy_j
    from pytest_co2.backends.nvml import NvmlBackend, field_value

    def field_w() -> float:
        (v,) = nvml.nvmlDeviceGetFieldValues(h, [nvml.NVML_FI_DEV_POWER_INSTANT])
        return field_value(v) * 1e-3 if v.nvmlReturn == 0 else math.nan

    if math.isnan(field_w()):
        r.add("windows vs instant power", None, None, "no instant power field: no reference")
        return
    rows = {}
    with NvmlBackend(gpus=f"cuda:{device}") as backend, Load(torch, device), Sampler(field_w) as s:
        for length in WINDOWS_S:
            reps = max(3, min(20, int(2.0 / length)))
            counter_err, two_point_err = [], []
            for _ in range(reps):
                t_a = time.perf_counter()
                (e_a,) = backend.read_j()
                p_a = (backend.read_power_w() or [math.nan])[0]
                _busy(length)
                (e_b,) = backend.read_j()
                p_b = (backend.read_power_w() or [math.nan])[0]
                t_b = time.perf_counter()
                time.sleep(0.01)  # let the sampler pass t_b
                ref = s.integral_j(t_a, t_b)
                if not ref > 0:
                    continue
                counter_err.append(abs((e_b - e_a) - ref) / ref)
                if math.isfinite(p_a + p_b):
                    two_point_err.append(
                        abs(short_window_energy_j(p_a, p_b, t_b - t_a) - ref) / ref
                    )
            rows[f"{length * 1e3:g} ms"] = {
                "counter_median_err": round(statistics.median(counter_err), 3)
                if counter_err
                else None,
                "power_x_time_median_err": round(statistics.median(two_point_err), 3)
                if two_point_err
                else None,
                "reps": reps,
            }
    r.add("windows 10 ms - 1 s vs instant-power integral", None, rows, "median |relative error|")
    # The meter's rule: power x time below 10 counter periods. Check it picks the better one.
    threshold = 10 * (period_s or 0.1)
    worse = []
    for length in WINDOWS_S:
        row = rows[f"{length * 1e3:g} ms"]
        c, p = row["counter_median_err"], row["power_x_time_median_err"]
        if c is None or p is None:
            continue
        chosen, other = (p, c) if length < threshold else (c, p)
        if chosen > other + 0.05:
            worse.append(f"{length * 1e3:g} ms")
    r.add(
        "short-window rule picks the better source",
        not worse,
        {"threshold_ms": round(threshold * 1e3, 1), "worse_at": worse},
        "power x time below 10 counter periods, counter above",
    )


def check_sync(r: Results, nvml: Any, h: Any, torch: Any, device: int) -> None:
    from pytest_co2.backends import cuda as cuda_helpers

    dev = torch.device("cuda", device)
    x = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
    torch.cuda.synchronize(dev)
    t = time.perf_counter()
    for _ in range(200):
        y = x @ x
    queued_s = time.perf_counter() - t
    t = time.perf_counter()
    n = cuda_helpers.synchronize_all()
    waited_s = time.perf_counter() - t
    del y
    ok = n >= 1 and waited_s > queued_s
    r.add(
        "synchronize_all waits for queued work",
        ok,
        {"devices_synced": n, "enqueue_s": round(queued_s, 3), "sync_waited_s": round(waited_s, 3)},
        "the work is queued asynchronously, so the sync must wait longer than the enqueue",
    )
    r.add("context devices (torch)", None, cuda_helpers.context_device_indices())


def check_selection(r: Results, nvml: Any, h: Any, device: int) -> None:
    from pytest_co2.backends import BackendUnavailable
    from pytest_co2.backends.nvml import NvmlBackend

    uuid = nvml.nvmlDeviceGetUUID(h)
    uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    mine = None

    def ids(**kw: Any) -> list[str]:
        with NvmlBackend(**kw) as b:
            return [d.id for d in b.devices]

    b = NvmlBackend(gpus=f"cuda:{device}")
    with b:
        mine = [d.id for d in b.devices]
        r.add("select --co2-gpus=cuda:N", len(mine) == 1, mine, f"UUID {b.device_uuids[0]}")
    r.add("select GPU- UUID prefix", ids(gpus=uuid[:12]) == mine, uuid[:12])
    r.add(
        "select CUDA_VISIBLE_DEVICES index", len(ids(visible_devices=str(device))) == 1, str(device)
    )
    try:
        ids(visible_devices="")
        r.add("select CUDA_VISIBLE_DEVICES empty", False, "", "should select no GPU")
    except BackendUnavailable as exc:
        r.add("select CUDA_VISIBLE_DEVICES empty", True, "", str(exc))
    auto = ids(visible_devices=None, nvidia_visible_devices=None)
    r.add("select auto (GPU with this process's context)", auto == mine, auto)
    pids = [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)]
    r.add(
        "NVML lists this process",
        None,
        os.getpid() in pids,
        "False in a container with its own PID namespace: torch's contexts are used then",
    )


def check_bleed(r: Results, nvml: Any, h: Any, device: int) -> None:
    def power_over(seconds: float) -> float:
        e0, t0 = nvml.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
        time.sleep(seconds)
        e1, t1 = nvml.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()
        return float(e1 - e0) / 1000.0 / (t1 - t0)

    idle_w = power_over(2.0)
    code = textwrap.dedent(
        f"""
        import time, torch
        x = torch.randn(8192, 8192, device="cuda:{device}", dtype=torch.float16)
        y = x @ x
        torch.cuda.synchronize()
        print("loaded", flush=True)
        end = time.time() + 5
        while time.time() < end:
            for _ in range(8):
                y = x @ x
            torch.cuda.synchronize()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the other process is loading the GPU now
        time.sleep(0.5)
        busy_w = power_over(2.0)
    finally:
        proc.wait(60)
    r.add(
        "another process's load bleeds into an idle window",
        None,
        {"idle_w": round(idle_w, 1), "idle_window_with_other_load_w": round(busy_w, 1)},
        "a shared GPU counts every process: why --co2-exclusive locks under xdist",
    )


def check_xdist(r: Results, device: int, tmp: Path) -> None:
    try:
        import xdist  # noqa: F401
    except ImportError:
        r.add("xdist locking", None, None, "pytest-xdist not installed")
        return
    (tmp / "test_two.py").write_text(
        textwrap.dedent(
            f"""
            import json, os, time, pytest, torch

            @pytest.mark.parametrize("k", [0, 1])
            def test_gpu(co2_meter, k):
                x = torch.randn(4096, 4096, device="cuda:{device}")
                with co2_meter.measure("w") as w:
                    t0 = time.time()
                    for _ in range(20):
                        x = torch.tanh(x @ x)
                        w.step()
                    t1 = time.time()
                with open(os.path.join(os.path.dirname(__file__), f"span{{k}}.json"), "w") as fh:
                    json.dump([t0, t1], fh)
            """
        )
    )
    report = tmp / "xdist.json"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        *_plugin_args(),
        "-n",
        "2",
        str(tmp / "test_two.py"),
        "--co2-backend=nvml",
        f"--co2-json={report}",
        f"--co2-gpus=cuda:{device}",
    ]
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=180, cwd=tmp, env=_env()
    )
    if proc.returncode != 0 and "--co2-gpus" in proc.stderr:
        cmd.pop()  # the option is not wired yet: measure the in-use GPU
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=180, cwd=tmp, env=_env()
        )
    if proc.returncode != 0:
        r.add("xdist locking", False, proc.returncode, proc.stdout[-300:] + proc.stderr[-300:])
        return
    spans = [json.loads((tmp / f"span{k}.json").read_text()) for k in (0, 1)]
    overlap = max(0.0, min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0]))
    mode = json.loads(report.read_text()).get("session", {}).get("exclusive", {}).get("mode")
    r.add(
        "xdist locking",
        mode == "lock" and overlap == 0.0,
        {"mode": mode, "overlap_s": round(overlap, 3)},
    )


def _plugin_args() -> list[str]:
    """``-p pytest_co2.plugin`` when pytest-co2 is importable but not installed (no entry point)."""
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="pytest11")}
    return [] if "pytest_co2.plugin" in names else ["-p", "pytest_co2.plugin"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _junit_summary(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"junit": "missing"}
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    out: dict[str, Any] = {"passed": 0, "failed": [], "skipped": 0}
    for c in cases:
        name = c.get("name", "")
        if c.find("failure") is not None or c.find("error") is not None:
            out["failed"].append(name)
        elif c.find("skipped") is not None:
            out["skipped"] += 1
        else:
            out["passed"] += 1
    return out


def check_pytest(r: Results, name: str, args: list[str], timeout_s: float, junit: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        *_plugin_args(),
        f"--junitxml={junit}",
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=max(10, timeout_s),
            cwd=ROOT,
            env=_env(),
        )
    except subprocess.TimeoutExpired:
        r.add(name, False, None, f"timed out after {timeout_s:.0f} s")
        return
    summary = _junit_summary(junit)
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    r.add(name, proc.returncode in (0, 5) and not summary.get("failed"), summary, " ".join(tail))


# -- main --------------------------------------------------------------------------------------


def _open_device(r: Results, nvml: Any, device: int) -> tuple[Any, Any]:
    """torch (None without CUDA) and the NVML handle of ``cuda:device``, matched by UUID."""
    torch: Any = None
    try:
        import torch as _torch

        torch = _torch if _torch.cuda.is_available() else None
    except ImportError:
        pass
    if torch is None:
        r.add("torch with CUDA", False, None, "load-based checks skipped; NVML index used")
        return None, nvml.nvmlDeviceGetHandleByIndex(device)
    torch.ones(1, device=f"cuda:{device}")  # this process's context on the device
    uuid = str(torch.cuda.get_device_properties(device).uuid)
    return torch, nvml.nvmlDeviceGetHandleByUUID("GPU-" + uuid)


def run_gpu_checks(r: Results, nvml: Any, torch: Any, h: Any, device: int) -> None:
    support = check_api(r, nvml, h)
    r.run("read latency", lambda: check_latency(r, nvml, h, support))
    if torch is None:
        return
    period: list[float | None] = [None]
    if support.get("nvmlDeviceGetTotalEnergyConsumption (mJ)"):

        def _period() -> None:
            period[0] = check_counter_period(r, nvml, h, torch, device)

        r.run("counter update period", _period)
        r.run("windows", lambda: check_windows(r, nvml, h, torch, device, period[0]))
    r.run("sync", lambda: check_sync(r, nvml, h, torch, device))
    r.run("selection", lambda: check_selection(r, nvml, h, device))
    r.run("bleed", lambda: check_bleed(r, nvml, h, device))
    with tempfile.TemporaryDirectory(prefix="co2-gpu-check-") as tmp:
        r.run("xdist locking", lambda: check_xdist(r, device, Path(tmp)))


def run_suites(r: Results, out: Path, bench_budget_s: float, time_limit_s: float) -> None:
    """The hardware tests, then every benchmark family at paper scale within the budget."""
    with tempfile.TemporaryDirectory(prefix="co2-gpu-check-") as tmp:
        left = time_limit_s - (time.perf_counter() - r.t0)
        check_pytest(
            r,
            "hardware tests",
            ["tests/test_hardware.py", "-m", "hardware", "-rs"],
            min(120.0, left - 30),
            Path(tmp) / "hw.xml",
        )
        budget = min(bench_budget_s, time_limit_s - (time.perf_counter() - r.t0) - 10)
        deadline = time.perf_counter() + budget
        out.mkdir(parents=True, exist_ok=True)
        for i, family in enumerate(BENCH_FAMILIES):
            share = (deadline - time.perf_counter()) / (len(BENCH_FAMILIES) - i)
            if share < 10:
                r.add(f"benchmark {family}", None, None, "no time left in --bench-budget-s")
                continue
            report = out / f"paper-{family[5:-3]}.md"
            check_pytest(
                r,
                f"benchmark {family} (paper scale)",
                [
                    f"benchmarks/{family}",
                    "--co2-scale=paper",
                    "--co2-time-budget=0.5",
                    "--co2-backend=nvml",
                    f"--co2-paper-report={report}",
                ],
                share,
                Path(tmp) / f"{family}.xml",
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--out", help="folder for gpu_check.json and gpu_check.md (default $OUT)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--quick", action="store_true", help="skip the hardware tests and benchmarks")
    p.add_argument("--bench-budget-s", type=float, default=240.0, help="seconds for benchmarks")
    p.add_argument("--time-limit-s", type=float, default=460.0, help="whole run (default 460)")
    args = p.parse_args(argv)
    explicit = args.out or os.environ.get("OUT")
    out = Path(explicit or "gpu-check")
    r = Results()
    reason = no_gpu_reason()
    if reason is not None:
        print(f"gpu_check: no NVIDIA GPU here ({reason}); nothing to check, exiting 0")
        if explicit:
            r.add("no NVIDIA GPU", None, None, reason)
            write_outputs(out, {"status": "no NVIDIA GPU", "reason": reason, "checks": r.checks})
        return 0

    import pynvml as nvml

    nvml.nvmlInit()
    data: dict[str, Any] = {"status": "ran"}
    try:
        torch, h = _open_device(r, nvml, args.device)
        name = nvml.nvmlDeviceGetName(h)
        data["device"] = name.decode() if isinstance(name, bytes) else str(name)
        data["driver"] = str(nvml.nvmlSystemGetDriverVersion())
        run_gpu_checks(r, nvml, torch, h, args.device)
        if not args.quick:
            run_suites(r, out, args.bench_budget_s, args.time_limit_s)
    finally:
        nvml.nvmlShutdown()
    data["elapsed_s"] = time.perf_counter() - r.t0
    data["checks"] = r.checks
    data["status"] = "failed" if r.failed else "passed"
    write_outputs(out, data)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
