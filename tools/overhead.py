"""Wall time of 200 trivial tests: plain, plugin loaded, --co2-all and --co2-profile.

--co2-profile reads the backend at every test, phase and fixture setup (opt-in: no goal).
Goals: plugin loaded <= 1.02x plain, --co2-all <= 1.05x plain. Median of several runs,
each in a fresh subprocess, after one discarded warm-up run per variant. Wall time and CPU
time (user + system of the child) are both printed: on a shared VM the CPU time is the
steadier of the two. The children run with bytecode caching on (PYTHONDONTWRITEBYTECODE
removed), as on a user's machine: without it every run recompiles (and pytest re-rewrites)
the plugin's modules, which measures the compiler rather than the plugin.

    python tools/overhead.py [--tests 200] [--runs 7] [--against DIR]

``--against DIR`` also runs the plugin of another checkout (DIR first on ``PYTHONPATH``, e.g.
a worktree of the previous revision), interleaved with this one's: a before/after comparison
made under the same load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cwd: Path, extra: list[str], tree: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pytest run in a subprocess (``tree``: a checkout
    put first on PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    t0, c0 = time.perf_counter(), _children_cpu_s()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - t0, _children_cpu_s() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", metavar="DIR", help="also time another checkout's plugin")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cwd = Path(d)
        body = "\n".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(args.tests))
        (cwd / "test_trivial.py").write_text(body)
        (cwd / "pytest.ini").write_text("[pytest]\n")
        variants: dict[str, tuple[list[str], str | None]] = {
            "plain (-p no:co2)": (["-p", "no:co2"], None),
            "plugin loaded": ([], None),
            "--co2-all": (["--co2-all"], None),
            "--co2-profile": (["--co2-profile=profile.folded"], None),
        }
        if args.against:
            other = os.path.abspath(args.against)
            variants["plugin loaded (against)"] = ([], other)
            variants["--co2-all (against)"] = (["--co2-all"], other)
        for extra, tree in variants.values():  # warm-up: bytecode caches, OS file cache
            run(cwd, extra, tree)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for _ in range(args.runs):  # interleave the variants so drift hits all alike
            for name, (extra, tree) in variants.items():
                times[name].append(run(cwd, extra, tree))
    base = times["plain (-p no:co2)"]
    plain_wall = statistics.median(w for w, _ in base)
    plain_cpu = statistics.median(c for _, c in base)
    for name, ts in times.items():
        wall = statistics.median(w for w, _ in ts)
        cpu = statistics.median(c for _, c in ts)
        print(
            f"{name:>24}: wall {wall:.3f} s ({wall / plain_wall:.3f}x plain), "
            f"CPU {cpu:.3f} s ({cpu / plain_cpu:.3f}x plain); medians of {args.runs} runs"
        )


if __name__ == "__main__":
    main()
