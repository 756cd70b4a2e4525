"""What ``tools/gpu_check.py`` measures on: one real NVIDIA GPU, or the emulator (--dry-run).

A rig gives the checks the NVML module and the GPU's handle, a clock and a sleep, GPU load
(steady or on/off, started in the background for a given time), a CUDA context made on
demand, a backend opened on it, and what a child process (a DDP rank, a pytest run) needs
to measure the same GPU. :class:`RealRig` uses pynvml and torch; :class:`EmuRig` uses
``tests/gpu_emulator.py`` (a fake pynvml on a power trace and a fake clock; torch's CUDA
calls are replaced by trace changes), so every check runs end to end without a GPU. A child
process of a dry run (``GPU_CHECK_EMULATED=1``) installs an emulator whose clock follows
real time (:func:`install_child_emulator`): its own GPU, not the parent's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EMULATED_ENV = "GPU_CHECK_EMULATED"
EMU_IDLE_W, EMU_WARM_IDLE_W, EMU_LOAD_W = 60.0, 75.0, 350.0


def _emulator() -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    import gpu_emulator

    return gpu_emulator


class RealRig:
    """One NVIDIA GPU through pynvml, loaded by torch matmuls."""

    emulated = False

    def __init__(self, device: int) -> None:
        import pynvml
        import torch

        self.device = device
        self.nvml = pynvml
        self.torch = torch if torch.cuda.is_available() else None
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(device)
        self._thread: threading.Thread | None = None

    def clock(self) -> float:
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def describe(self) -> dict[str, Any]:
        name = self.nvml.nvmlDeviceGetName(self.handle)
        return {
            "device": name.decode() if isinstance(name, bytes) else str(name),
            "driver": str(self.nvml.nvmlSystemGetDriverVersion()),
            "torch": None if self.torch is None else self.torch.__version__,
        }

    def make_context(self) -> None:
        """This process's CUDA context on the device (torch), and a first small matmul."""
        if self.torch is None:
            raise RuntimeError("torch has no CUDA here: the load-based checks need it")
        x = self.torch.ones(1024, 1024, device=f"cuda:{self.device}")
        (x @ x).sum().item()

    def load(self, seconds: float, on_s: float | None = None, off_s: float = 0.0) -> None:
        """Matmul load on the device from now for ``seconds`` (``on_s`` on, ``off_s`` off,
        repeated; steady when ``on_s`` is None), on a thread: returns at once."""
        self.make_context()
        torch, dev = self.torch, self.device
        x = torch.randn(8192, 8192, device=f"cuda:{dev}", dtype=torch.float16)
        end = time.perf_counter() + seconds

        def run() -> None:
            with torch.cuda.device(dev):
                while (now := time.perf_counter()) < end:
                    stop_on = min(end, now + (on_s if on_s is not None else seconds))
                    while time.perf_counter() < stop_on:
                        x @ x
                        torch.cuda.synchronize(dev)
                    if off_s > 0:
                        time.sleep(max(0.0, min(off_s, end - time.perf_counter())))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def wait_load(self) -> None:
        if self._thread is not None:
            self._thread.join(120)
            self._thread = None

    def open_backend(self, **kw: Any) -> Any:
        from pytest_co2.backends.nvml import NvmlBackend

        return NvmlBackend(**kw)

    def reference_j(self, t0: float, t1: float) -> float | None:
        return None  # no ground truth on real hardware: the checks compare sources

    def child_env(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        self.wait_load()
        self.nvml.nvmlShutdown()


class EmuRig:
    """The emulator: one H100 with a part-time instant sensor, on a fake clock."""

    emulated = True

    def __init__(self, device: int = 0) -> None:
        emu = _emulator()
        self.emu = emu
        self.device = device
        self.node = emu.Node(
            [emu.EmuGpu(trace=emu.Trace(EMU_IDLE_W, EMU_WARM_IDLE_W), counter_phase_s=0.013)]
        )
        self.nvml = self.node.nvml()
        sys.modules["pynvml"] = self.nvml  # what every import of pynvml in this process gets
        self.handle = self.nvml.nvmlDeviceGetHandleByIndex(device)

    def clock(self) -> float:
        return float(self.node.clock())

    def sleep(self, seconds: float) -> None:
        self.node.clock.advance(seconds)

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.nvml.nvmlDeviceGetName(self.handle) + " (emulated)",
            "driver": "tests/gpu_emulator.py",
            "torch": None,
        }

    def make_context(self) -> None:
        gpu = self.node.gpus[self.device]
        if os.getpid() not in gpu.pids:
            gpu.pids = (*gpu.pids, os.getpid())
            self.node.work(self.device, 0.2, 120.0)  # creating a context draws some power

    def load(self, seconds: float, on_s: float | None = None, off_s: float = 0.0) -> None:
        self.make_context()
        trace, t = self.node.gpus[self.device].trace, self.node.clock()
        if on_s is None:
            trace.burst(t, seconds, EMU_LOAD_W)
        else:
            trace.square(t, t + seconds, EMU_LOAD_W, on_s + off_s, on_s / (on_s + off_s))

    def wait_load(self) -> None:
        """Nothing runs in the background: the trace already holds the load."""

    def open_backend(self, **kw: Any) -> Any:
        from pytest_co2.backends.nvml import NvmlBackend

        kw.setdefault("probe_period_s", 0.35)
        return NvmlBackend(
            self.nvml, visible_devices=None, nvidia_visible_devices=None,
            clock=self.node.clock, sleep=self.node.clock.advance, **kw,
        )  # fmt: skip

    def reference_j(self, t0: float, t1: float) -> float | None:
        return self.node.true_energy_j(self.device, t0, t1)

    def child_env(self) -> dict[str, str]:
        return {EMULATED_ENV: "1"}

    def close(self) -> None:
        sys.modules.pop("pynvml", None)


def install_child_emulator() -> Any:
    """In a child process of a dry run: an emulated GPU (low idle, so that the work
    dominates; a 10 ms counter, so that a short test spans many periods) in
    ``sys.modules['pynvml']``, on a clock following real time; returns the node. Its load:
    ``gpu_work(node, seconds)``."""
    emu = _emulator()
    gpu = emu.EmuGpu(trace=emu.Trace(10.0), counter_period_s=0.01)  # short runs: counter
    node = emu.Node([gpu], clock=emu.EmuClock(follow=time.perf_counter))  # real time
    sys.modules["pynvml"] = node.nvml()
    return node


def gpu_work(node: Any, seconds: float, watts: float = EMU_LOAD_W) -> None:
    """``seconds`` of emulated GPU work in a child process (the trace, then a real sleep)."""
    node.gpus[0].pids = (*node.gpus[0].pids, os.getpid())
    node.gpus[0].trace.burst(node.clock(), seconds, watts)
    time.sleep(seconds)
