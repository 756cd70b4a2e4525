"""tools/co_tenants.py: busy co-tenants that start, stop, and never outlive their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "co_tenants.py"
PATIENCE_S = 60.0  # a process's exit is seen within milliseconds; this is room for a busy runner


def _gone(pid: int) -> bool:
    """The process ended (a zombie that nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not all(_gone(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if not _gone(p)]
        time.sleep(0.01)


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_the_command_runs_under_the_co_tenants_and_its_exit_code_is_returned() -> None:
    proc = subprocess.run(
        [sys.executable, str(TOOL), "-n", "1", "--", sys.executable, "-c", "raise SystemExit(3)"],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
        check=False,
    )
    assert proc.returncode == 3
    assert "co-tenants: 1 busy processes" in proc.stderr
    assert "the command exited 3" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--"], "no command"), (["-n", "-1", "--", "true"], "invalid number of co-tenants -1")],
)
def test_bad_arguments_are_a_usage_error(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(TOOL), *args],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
        check=False,
    )
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_co_tenants_end_with_the_process_that_started_them(how: str) -> None:
    """Stopped on leaving the context manager; and when their parent is killed (no clean-up
    runs), they see their stdin pipe close and end too."""
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(TOOL.parent)!r})\n"
        "from co_tenants import CoTenants\n"
        "with CoTenants(2) as t:\n"
        "    print(*t.pids, flush=True)\n"
        f"    {'sys.stdin.readline()' if how == 'exit' else 'time.sleep(600)'}\n"
        "print('stopped', flush=True)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None and parent.stdin is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and not any(_gone(p) for p in pids)
    if how == "exit":
        parent.stdin.write("\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "stopped"  # after both ended
        assert all(_gone(p) for p in pids)
    else:
        os.kill(parent.pid, signal.SIGKILL)
        _wait_gone(pids)
    parent.wait(PATIENCE_S)
    parent.stdin.close()
    parent.stdout.close()
