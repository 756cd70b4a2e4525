"""The checks of ``tools/gpu_check.py``: each measures one thing on a rig (a real GPU or the
emulator, ``tools/gpu_check_rig.py``) and returns ``(ok, value, detail)``: ok True/False
where the check has a pass condition, None where it reports a figure."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gpu_check_rig import ROOT

Outcome = tuple[bool | None, Any, str]
ON_OFF_S = 10.0  # the on/off load of the counter vs instant-power check
BURST_S, GAP_S = 0.03, 0.07  # on/off at the sensor's 100 ms cycle: its phase decides


def _counter_j(rig: Any) -> float:
    return float(rig.nvml.nvmlDeviceGetTotalEnergyConsumption(rig.handle)) / 1000.0


def _counter_at_change(rig: Any, max_s: float = 0.5) -> tuple[float, float]:
    """The time and value of the counter just after it next changes (read every 1 ms), so
    a difference of two such readings spans the time between them, not between refreshes."""
    t0, first = rig.clock(), _counter_j(rig)
    while rig.clock() - t0 < max_s:
        rig.sleep(0.001)
        now, value = rig.clock(), _counter_j(rig)
        if value != first:
            return now, value
    return rig.clock(), _counter_j(rig)


def _instant_w(rig: Any) -> float:
    from pytest_co2.backends.nvml_power import field_value

    (v,) = rig.nvml.nvmlDeviceGetFieldValues(rig.handle, [rig.nvml.NVML_FI_DEV_POWER_INSTANT])
    if int(v.nvmlReturn) != 0:
        raise rig.nvml.NVMLError(int(v.nvmlReturn))
    return field_value(v) * 1e-3


def _meter(backend: Any, **kw: Any) -> Any:
    """A meter whose windows start and end the backend's fine sampling (as the plugin's)."""
    from pytest_co2.meter import Meter

    return Meter(
        backend,
        on_window_enter=lambda w: backend.window_enter(),
        on_window_exit=lambda w: backend.window_exit(),
        contention=None,
        **kw,
    )


def instant_field(rig: Any) -> Outcome:
    """The instant power field: its value type and the watts it decodes to."""
    (v,) = rig.nvml.nvmlDeviceGetFieldValues(rig.handle, [rig.nvml.NVML_FI_DEV_POWER_INSTANT])
    if int(v.nvmlReturn) != 0:
        return None, None, f"NVML_FI_DEV_POWER_INSTANT not supported (return {v.nvmlReturn})"
    w = _instant_w(rig)
    value = {"valueType": int(v.valueType), "watts": round(w, 2)}
    ok = 1.0 < w < 2000.0
    return ok, value, "decoded by the union member its valueType names (nvml_power.field_value)"


def idle(rig: Any, backend: Any, when: str) -> Outcome:
    """Idle power over 2 s, by the counter (``cold``: before any work; ``warm``: after)."""
    from pytest_co2.measure.idle import measure_idle_w

    rig.sleep(1.0 if when == "warm" else 0.0)  # the last load's tail
    (w,) = measure_idle_w(backend, 2.0, sleep=rig.sleep, clock=rig.clock)
    ok: bool | None = None
    detail = f"{when} idle over 2 s from the energy counter"
    if rig.emulated:
        from gpu_check_rig import EMU_IDLE_W, EMU_WARM_IDLE_W

        want = EMU_IDLE_W if when == "cold" else EMU_WARM_IDLE_W
        ok = abs(w - want) <= 0.5
        detail += f" (emulated trace: {want:g} W)"
    return ok, round(w, 2), detail


def context_in_window(rig: Any) -> Outcome:
    """A CUDA context created inside a measured window: its GPU is measured, not partial."""
    backend = rig.open_backend(gpus=None)  # auto, before this process has a context
    try:
        meter = _meter(backend)
        with meter.measure("context") as w:
            rig.make_context()
            rig.load(1.0)
            rig.sleep(1.0)
            rig.wait_load()
            w.step()
        m = w.measurement
        ids = [d.device.id for d in m.devices]
        ok = m.energy_j > 0 and f"gpu:{rig.device}" in ids and m.complete
        value = {"energy_j": round(m.energy_j, 2), "devices": ids, "complete": m.complete}
        return ok, value, "; ".join(m.notes)[:300]
    finally:
        backend.close()


def counter_vs_instant(rig: Any) -> Outcome:
    """Over 10 s of on/off load (30 ms on, 70 ms off): the counter's energy against the
    instant power field sampled every 2 ms and integrated. A sensor that sees only part of
    the time (A100/H100: 25 ms of every 100 ms) makes them differ."""
    samples: list[tuple[float, float]] = []
    t0, e0 = _counter_at_change(rig)
    rig.load(ON_OFF_S, on_s=BURST_S, off_s=GAP_S)
    while rig.clock() - t0 < ON_OFF_S:
        samples.append((rig.clock(), _instant_w(rig)))
        rig.sleep(0.002)
    rig.wait_load()
    rig.sleep(0.3)  # let the counter publish the last slice
    t1, e1 = _counter_at_change(rig)
    sampled_j = math.fsum(
        0.5 * (p0 + p1) * (b - a) for (a, p0), (b, p1) in itertools.pairwise(samples)
    )
    counter_j = e1 - e0
    span = samples[-1][0] - samples[0][0]
    idle_tail_j = samples[-1][1] * (t1 - t0 - span)  # the counter's span is a bit longer
    sampled_j += max(idle_tail_j, 0.0)
    value: dict[str, Any] = {
        "counter_j": round(counter_j, 1),
        "instant_sampled_j": round(sampled_j, 1),
        "instant_over_counter": round(sampled_j / counter_j, 3) if counter_j else None,
        "samples": len(samples),
        "seconds": round(t1 - t0, 2),
    }
    ok: bool | None = None
    ref = rig.reference_j(t0, t1)
    if ref is not None:  # the emulator knows the truth: the counter must hold it
        value["true_j"] = round(ref, 1)
        ok = abs(counter_j - ref) <= 0.01 * ref
    detail = (
        "instant power sampled every 2 ms vs the energy counter; a ratio far from 1 is the "
        "part-time sensor (the counter is the figure pytest-co2 uses)"
    )
    return ok, value, detail


def short_window(rig: Any, backend: Any) -> Outcome:
    """A window a third of the counter's measured period, under steady load, against the
    bound the backend gives (fine-sampled instant power); reference: the counter's mean
    power over the second around it (steady load) x the window, or the emulator's truth."""
    period = backend.period_s(rig.device)
    rig.load(4.0)
    rig.sleep(1.0)
    ta, ea = rig.clock(), _counter_j(rig)
    rig.sleep(1.0)
    meter = _meter(backend)
    t_in = rig.clock()
    with meter.measure("short") as w:
        rig.sleep(period / 3)
        w.step()
    t_out = rig.clock()
    rig.sleep(1.0)
    tb, eb = rig.clock(), _counter_j(rig)
    rig.wait_load()
    m = w.measurement
    notes = [n for n in m.notes if n.startswith("fine-sampled")]
    bound = float(notes[0].split("error bound ")[1].split(" J")[0]) if notes else math.nan
    truth = rig.reference_j(t_in, t_out)  # the emulator's exact integral
    if truth is not None:
        ref, tolerance = truth, 1e-6 * truth
    else:  # steady load: the counter's mean power (quantized to its period) x the window
        ref = (eb - ea) / (tb - ta) * m.duration_s
        tolerance = (0.05 + period / (tb - ta)) * ref
    err = abs(m.energy_j - ref)
    ok = bool(notes) and err <= (0.0 if math.isnan(bound) else bound) + tolerance
    value = {
        "period_ms": round(period * 1e3, 2),
        "window_ms": round(m.duration_s * 1e3, 2),
        "energy_j": round(m.energy_j, 4),
        "reference_j": round(ref, 4),
        "bound_j": None if math.isnan(bound) else round(bound, 4),
    }
    detail = (
        "reference: the emulator's exact energy"
        if truth is not None
        else "reference: the counter's mean power over 2 s of the same steady load x the window"
    )
    return ok, value, detail + ("" if notes else "; NO fine-sampled note: " + "; ".join(m.notes))


def step_cost(rig: Any, backend: Any) -> Outcome:
    """The wall time of one ``step()`` with NVML on (a counter read per step)."""
    steps = 200 if rig.emulated else 2000
    meter = _meter(backend)
    with meter.measure("steps") as w:
        t = time.perf_counter()
        for _ in range(steps):
            w.step()
        per_step = (time.perf_counter() - t) / steps
        rig.sleep(0.5)
        w.step()
    us = per_step * 1e6
    if rig.emulated:  # the emulator's cost, not NVML's: a figure, no verdict
        return None, {"us_per_step": round(us, 1), "steps": steps}, "emulated NVML: not NVML's cost"
    return us < 1000.0, {"us_per_step": round(us, 1), "steps": steps}, "wall time per step()"


# -- child processes ---------------------------------------------------------------------------


def _env(rig: Any, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "tools"), env.get("PYTHONPATH", "")) if p
    )
    env.update(rig.child_env())
    env.update(extra)
    return env


def ddp_rank(rig: Any, backend: Any, tmp: Path) -> Outcome:
    """A spawned rank (RANK=0, LOCAL_RANK=0, WORLD_SIZE=1) measures cuda:0 with
    ``rank_meter()`` and nothing else: the backend comes through the hand-off."""
    from pytest_co2.measure.handoff import publish

    restore = publish(backend)
    out = tmp / "rank0.json"
    try:
        e0 = _counter_j(rig)
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--rank", str(out)],
            env=_env(rig, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        parent_j = _counter_j(rig) - e0 if not rig.emulated else None
    finally:
        restore()
    if proc.returncode != 0:
        return False, proc.returncode, (proc.stdout + proc.stderr)[-400:]
    got = json.loads(out.read_text())
    m = got["measurement"]
    ids = [d["id"] for d in m["devices"]]
    label = got["label"] or ""
    ok = (
        m["backend"] == "nvml"
        and ids == ["gpu:0"]
        and m["method"] == "counter"
        and "handed by the pytest-co2 session" in label
        and "measuring cuda:0" in label
        and m["energy_j"] > 0
    )
    value: dict[str, Any] = {"energy_j": round(m["energy_j"], 2), "devices": ids}
    if got.get("true_j") is not None:
        value["true_j"] = round(got["true_j"], 2)
        ok = ok and abs(m["energy_j"] - got["true_j"]) <= 0.02 * got["true_j"] + 1.0
    if parent_j is not None:  # the parent's counter saw the rank's window and more
        value["parent_counter_j"] = round(parent_j, 2)
        ok = ok and m["energy_j"] <= parent_j * 1.01
    return ok, value, label[:300]


def rank_main(out: str) -> int:
    """The rank process of :func:`ddp_rank` (``gpu_check.py --rank OUT``)."""
    node = None
    if os.environ.get("GPU_CHECK_EMULATED"):
        from gpu_check_rig import install_child_emulator

        node = install_child_emulator()
    else:
        import torch

        torch.ones(1, device="cuda:0")  # the rank's context on its GPU
    from pytest_co2.distributed import rank_meter

    meter = rank_meter(contention=None)
    true_j = None
    with meter.measure("rank") as w:
        t0 = node.clock() if node is not None else 0.0
        if node is not None:
            from gpu_check_rig import gpu_work

            gpu_work(node, 0.6)
            true_j = node.true_energy_j(0, t0, node.clock())
        else:
            _torch_load(2.0)
        w.step()
    meter.backend.close()
    data = {
        "measurement": w.measurement.to_dict(),
        "label": getattr(meter.backend, "rank_label", None),
        "true_j": true_j,
    }
    Path(out).write_text(json.dumps(data))
    return 0


def _torch_load(seconds: float) -> None:
    import torch

    x = torch.randn(8192, 8192, device="cuda:0", dtype=torch.float16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        x @ x
        torch.cuda.synchronize()


XDIST_TESTS = """
import pytest

@pytest.mark.parametrize("k", range(4))
def test_work(co2_meter, gpu_work, k):
    with co2_meter.measure("work") as w:
        gpu_work(WORK_S)
        w.step()
"""
REAL_CONFTEST = """
import time, pytest, torch

@pytest.fixture
def gpu_work():
    x = torch.randn(8192, 8192, device="cuda:0", dtype=torch.float16)
    def work(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            x @ x
            torch.cuda.synchronize()
    return work
"""
EMU_CONFTEST = """
import pytest
from gpu_check_rig import gpu_work as _work, install_child_emulator

NODE = install_child_emulator()  # this process's emulated GPU

@pytest.fixture
def gpu_work():
    return lambda seconds: _work(NODE, seconds)
"""


def xdist_totals(rig: Any, tmp: Path) -> Outcome:
    """Four tests of the same GPU work, in one process and with ``-n 2``: the totals match
    (the windows are locked per GPU under xdist, so neither counts the other's work)."""
    try:
        import xdist  # noqa: F401
    except ImportError:
        return None, None, "pytest-xdist not installed"
    # >= 10 counter periods, so the counter's figure is used: emulated, 150 periods of 10 ms,
    # as the period measured at open grows with the probe loop's delay on a busy machine
    work_s = 1.5 if rig.emulated else 2.0
    (tmp / "test_gpu_work.py").write_text(XDIST_TESTS.replace("WORK_S", repr(work_s)))
    (tmp / "conftest.py").write_text(EMU_CONFTEST if rig.emulated else REAL_CONFTEST)
    runs: dict[str, Any] = {}
    for name, extra in (("single", []), ("xdist", ["-n", "2"])):
        cmd = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
            *extra, str(tmp / "test_gpu_work.py"), "--co2-backend=nvml", "--co2-gpus=cuda:0",
            f"--co2-json={tmp / name}.json", "--co2-report=off",
        ]  # fmt: skip
        runs[name] = subprocess.Popen(
            cmd, cwd=tmp, env=_env(rig), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if not rig.emulated:  # one real GPU: one run at a time
            runs[name] = (runs[name], runs[name].communicate(timeout=240)[0])
    totals: dict[str, Any] = {}
    for name, run in runs.items():
        proc, output = run if isinstance(run, tuple) else (run, run.communicate(timeout=240)[0])
        report = tmp / f"{name}.json"
        if proc.returncode != 0 or not report.exists():
            return False, {name: proc.returncode}, output[-400:]
        data = json.loads(report.read_text())
        totals[name] = float(data["totals"]["energy_j"])
        if name == "xdist":
            totals["lock"] = (data.get("session", {}).get("exclusive") or {}).get("mode")
    ratio = totals["xdist"] / totals["single"] if totals["single"] else math.nan
    ok = abs(ratio - 1.0) <= 0.10 and totals["lock"] == "lock"
    value = {
        "single_j": round(totals["single"], 1),
        "xdist_j": round(totals["xdist"], 1),
        "ratio": round(ratio, 3),
        "lock": totals["lock"],
    }
    detail = "4 tests of the same GPU work; totals within 10%, xdist windows locked per GPU"
    if rig.emulated:
        detail += (
            " (emulated: each process has its own emulated GPU, with the same UUID, so the "
            "workers' locks still serialize their windows; the two runs go at once)"
        )
    return ok, value, detail
