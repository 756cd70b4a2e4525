"""Busy co-tenants: N processes that each keep one CPU busy with a pure-Python loop, the way
other jobs on a shared CI runner do, so that a test suite can be run under load.

As a context manager::

    with CoTenants(2):
        ...  # both vCPUs of a 2-vCPU runner are contended

As a command: ``python tools/co_tenants.py [-n N] -- CMD ARGS...`` runs CMD while the
co-tenants run (default N: one per CPU, ``os.cpu_count()``), stops them after and exits with
CMD's exit code.

Each co-tenant reads its stdin, a pipe whose only writer is the process that started it: the
read ends when that process exits, however it ends (``kill -9`` included), and the co-tenant
exits with it. None outlives its parent by more than a scheduling tick.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType

# The co-tenant: a thread blocks on stdin and ends the process at EOF; the main thread spins.
HOG = """
import os, sys, threading

def watch():
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
    os._exit(0)

threading.Thread(target=watch, daemon=True).start()
x = 0
while True:
    x = (x * 1103515245 + 12345) % 2147483648
"""

STOP_TIMEOUT_S = 10.0


class CoTenants:
    """``n`` busy processes (default: one per CPU) from ``__enter__`` to ``__exit__``."""

    def __init__(self, n: int | None = None) -> None:
        count = (os.cpu_count() or 1) if n is None else n
        if count < 0:
            raise ValueError(f"invalid number of co-tenants {n!r}: expected a whole number >= 0")
        self.n = count
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> CoTenants:
        for _ in range(self.n):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", HOG],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    close_fds=True,
                )
            )
        return self

    def stop(self) -> None:
        """Close each pipe (the co-tenant exits), then wait; kill any that is still there."""
        for proc in self.procs:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def __enter__(self) -> CoTenants:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: stop CMD and the co-tenants


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="co_tenants.py",
        description="Run CMD while N busy co-tenant processes contend for the CPUs.",
    )
    parser.add_argument(
        "-n",
        type=int,
        default=None,
        help="number of busy processes (default: one per CPU, os.cpu_count())",
    )
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command: expected -- CMD ARGS...")
    try:
        tenants = CoTenants(args.n)
    except ValueError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, _terminate)
    start = time.monotonic()
    with tenants:
        print(
            f"co-tenants: {tenants.n} busy processes ({os.cpu_count()} CPUs) while running: "
            + " ".join(cmd),
            file=sys.stderr,
            flush=True,
        )
        proc = subprocess.Popen(cmd)
        try:
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    print(
        f"co-tenants: stopped; the command exited {rc} after {time.monotonic() - start:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
