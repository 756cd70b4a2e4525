"""DDP ranks and GPUs: the parent measures the GPUs its descendants use, and a GPU backend
rebuilt in a rank from its keyword arguments measures the rank's own GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_co2.distributed import open_rank_backend

# -- the parent measures the GPUs its ranks use (descendant PIDs) ---------------------------


def test_descendants_from_a_proc_tree(tmp_path: Path) -> None:
    from pytest_co2.backends.procs import descendant_pids

    tree = {10: 1, 11: 10, 12: 11, 13: 1, 14: 13, 15: 10}
    for pid, ppid in tree.items():
        (tmp_path / str(pid)).mkdir()
        name = "(a) b)" if pid == 12 else "(python)"  # a name with spaces and ')'
        (tmp_path / str(pid) / "stat").write_text(f"{pid} {name} S {ppid} 1 1 0\n")
    (tmp_path / "self").mkdir()
    assert descendant_pids(10, str(tmp_path)) == {11, 12, 15}
    assert descendant_pids(13, str(tmp_path)) == {14}
    assert descendant_pids(12, str(tmp_path)) == set()
    assert descendant_pids(10, str(tmp_path / "missing")) == set()


def test_the_parent_measures_the_gpu_its_spawned_rank_uses(tmp_path: Path) -> None:
    """8 GPUs, none with a context of the test process; a child process (a rank) on GPU 3:
    the implicit selection narrows to GPU 3, not GPU 5 of an unrelated process."""
    import subprocess
    import sys

    from gpu_emulator import Node

    from pytest_co2.backends.nvml import NvmlBackend

    node = Node.eight_gpus()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        node.gpus[3].pids = (child.pid,)
        backend = NvmlBackend(
            node.nvml(), visible_devices=None, nvidia_visible_devices=None,
            clock=node.clock, sleep=node.clock.advance, probe_period_s=None,
        )  # fmt: skip
        try:
            assert [d.id for d in backend.devices] == ["gpu:3"]
        finally:
            backend.close()
    finally:
        child.kill()
        child.wait()


def test_a_gpu_backend_rebuilt_by_its_kwargs_measures_the_ranks_gpu() -> None:
    spec = {
        "version": 1,
        "name": "amdsmi",
        "composite": False,
        "parts": [
            {
                "type": "factory",
                "factory": f"{__name__}:KwargsGpu",
                "kwargs": {"poll_interval_s": 0.02, "gpus": "auto"},
            }
        ],
        "notes": [],
    }
    rank = open_rank_backend(spec, env={"LOCAL_RANK": "2", "WORLD_SIZE": "4", "RANK": "6"})
    assert rank.kwargs == {"poll_interval_s": 0.02, "gpus": "cuda:2"}
    assert rank.notes[-1].endswith("(given spec; measuring cuda:2)")


class KwargsGpu:
    """Stands for a GPU backend a rank rebuilds from ``rank_kwargs()``."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self.notes, self.name = kwargs, [], "amdsmi"

    def close(self) -> None:
        pass
