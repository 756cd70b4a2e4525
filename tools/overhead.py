"""Cost of pytest-co2 on 200 trivial tests: plain, plugin loaded, --co2-all and --co2-profile.

--co2-profile reads the backend at every test, phase and fixture setup (opt-in: no goal).
Goals: plugin loaded <= 1.02x plain, --co2-all <= 1.05x plain. Each run is a fresh pytest
subprocess; one discarded warm-up run per variant first. The children run with bytecode
caching on (PYTHONDONTWRITEBYTECODE removed), as on a user's machine: without it every run
recompiles (and pytest re-rewrites) the plugin's modules, which measures the compiler rather
than the plugin. Every variant's tree (this checkout, or ``--against DIR``) is put first on
``PYTHONPATH``.

Printed, per variant:

- ratios: the median wall time and CPU time (user + system of the child) of ``--runs``
  rounds, over plain's, and the middle half of the rounds' own wall ratios (variant over the
  plain run of the same round): a spread wider than a goal's margin means the host decided. A round runs every variant once, back to back, in an order rotated
  by one each round (no variant always runs first), so that drift hits all alike;
- per test: the plugin's cost in ms per test, (variant - plain) / tests, the median over the
  rounds of the difference within each round (wall and CPU). On a VM whose CPU speed flips
  between states for seconds at a time (as this project's did, by 1.7x), the within-round
  difference moves much less than the ratio of medians;
- Python calls: a deterministic measure of the plugin's work, from one extra run per variant
  under ``sys.setprofile``: the calls of functions whose code lies in the variant's
  ``pytest_co2/`` (generator resumptions included), per test (inside
  ``pytest_runtest_protocol``, divided by the tests run) and for the rest of the run
  (import, configure, collection, summary, reports). It does not move with the host's speed;
  only time-dependent branches (a contention snapshot is reused for 20 ms) can move it a
  little.

- instructions (``--instructions``): one run per variant under valgrind's cachegrind
  (``--cache-sim=no``; ``PYTHONHASHSEED=0``, OpenBLAS on one thread), its count of executed
  instructions over plain's. Nearly deterministic (0.2% between runs), so a change's effect
  shows on a host whose speed flips (valgrind must be on PATH). Instructions are not time (an
  import's compile and a tight loop differ in instructions per cycle). Valgrind runs the
  child 10-50x slower, and the plugin has branches that depend on elapsed time (a contention
  snapshot is re-read once 20 ms have passed; a window of 20 ms or more reads a second one):
  on valgrind's clock a run of trivial tests took them several times as often as at full
  speed, and more still when the host was busy. So the counted runs see a clock slowed by
  valgrind's dilation: ``time.perf_counter`` and ``time.monotonic`` advance at 1/D of their
  rate, where D is pytest's session time of plain under valgrind over its median at full
  speed (measured first, printed with the session time each counted run reported, which
  should come out near plain's at full speed). ``--no-slowed-clock`` counts on valgrind's
  clock instead.

    python tools/overhead.py [--tests 200] [--runs 7] [--against DIR] [--instructions]
        [--no-slowed-clock] [--header]

``--header`` also runs plain and plugin loaded at pytest's default verbosity: every other
variant runs with ``-q``, which shows no header, and the plugin's header is work of its own.

``--against DIR`` also runs the plugin of another checkout (DIR first on ``PYTHONPATH``, e.g.
the main checkout or a worktree of the previous revision), interleaved with this one's: a
before/after comparison made under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent.parent)  # this checkout
PLAIN = "plain (-p no:co2)"
PLAIN_HEADER = "plain, header shown"
LOADED_HEADER = "plugin loaded, header shown"

# The child of a counted run: argv is TREE OUT -- pytest args. It counts the Python calls made
# in TREE/pytest_co2/ inside and outside the tests' run protocol, and writes them to OUT.
COUNTER = """
import json, os, sys
import pytest
tree, out, _, *args = sys.argv[1:]
pkg = os.path.join(os.path.abspath(tree), "pytest_co2") + os.sep
counts = {"test": 0, "other": 0, "tests": 0}
where = ["other"]
def profile(frame, event, arg):
    if event == "call" and frame.f_code.co_filename.startswith(pkg):
        counts[where[0]] += 1
class Marker:
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        counts["tests"] += 1
        where[0] = "test"
        try:
            return (yield)
        finally:
            where[0] = "other"
sys.setprofile(profile)
try:
    code = pytest.main(args, plugins=[Marker()])
finally:
    sys.setprofile(None)
with open(out, "w") as f:
    json.dump(counts, f)
sys.exit(int(code))
"""

# The child of a counted run: argv is D -- pytest args. The clocks the plugin and pytest read
# advance at 1/D of their rate (D: valgrind's dilation), then pytest runs as ``python -m pytest``.
SLOWED = """
import runpy, sys, time
scale = 1.0 / float(sys.argv[1])
def slowed(clock):
    t0 = clock()
    return lambda: t0 + (clock() - t0) * scale
time.perf_counter = slowed(time.perf_counter)
time.monotonic = slowed(time.monotonic)
sys.argv[:] = ["pytest", *sys.argv[3:]]
runpy.run_module("pytest", run_name="__main__", alter_sys=True)
"""
SESSION_S = re.compile(rb" in ([0-9.]+)s")


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _env(tree: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _pytest_args(extra: list[str]) -> list[str]:
    return ["-q", "-p", "no:cacheprovider", *extra]


def run(cwd: Path, extra: list[str], tree: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pytest run in a subprocess, ``tree`` first on
    PYTHONPATH."""
    t0, c0 = time.perf_counter(), _children_cpu_s()
    subprocess.run(
        [sys.executable, "-m", "pytest", *_pytest_args(extra)],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        env=_env(tree),
    )
    return time.perf_counter() - t0, _children_cpu_s() - c0


def count_calls(cwd: Path, extra: list[str], tree: str) -> tuple[float, int]:
    """(calls per test, calls outside the tests) that ``tree``'s pytest_co2 makes in one run."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "counts.json")
        subprocess.run(
            [sys.executable, "-c", COUNTER, tree, out, "--", *_pytest_args(extra)],
            cwd=cwd,
            check=True,
            stdout=subprocess.DEVNULL,
            env=_env(tree),
        )
        with open(out) as f:
            counts = json.load(f)
    return counts["test"] / max(counts["tests"], 1), int(counts["other"])


def session_s(stdout: bytes) -> float:
    """pytest's own session time, from its last line ("200 passed in 0.35s")."""
    found = SESSION_S.findall(stdout)
    if not found:
        raise RuntimeError(f"no session time in pytest's output:\n{stdout.decode()[-500:]}")
    return float(found[-1])


def count_instructions(
    cwd: Path, extra: list[str], tree: str, dilation: float | None
) -> tuple[int, float]:
    """(instructions, pytest's session seconds) of one pytest run under cachegrind, after a
    run that writes the bytecode caches. ``dilation``: the clocks advance at 1/D of their
    rate (see the module's docstring); None: valgrind's own clock."""
    run(cwd, extra, tree)
    child = ["-m", "pytest"] if dilation is None else ["-c", SLOWED, repr(dilation), "--"]
    with tempfile.TemporaryDirectory() as d:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={os.path.join(d, 'cg.out')}",
                sys.executable,
                *child,
                *_pytest_args(extra),
            ],
            cwd=cwd,
            check=True,
            capture_output=True,
            # the same dict layouts every run, and no OpenBLAS threads (numpy is imported by
            # pytest-randomly, where installed): their spin-wait counts vary with timing
            env={**_env(tree), "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"},
        )
    for line in done.stderr.decode().splitlines():
        if "I" in line and "refs:" in line:
            count = int(line.split("refs:")[1].replace(",", "").strip())
            return count, session_s(done.stdout)
    raise RuntimeError(f"no instruction count in cachegrind's output:\n{done.stderr.decode()}")


def plain_session_s(cwd: Path, runs: int = 5) -> float:
    """The median of pytest's session time of plain at full speed."""
    out = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *_pytest_args(["-p", "no:co2"])],
            cwd=cwd,
            check=True,
            capture_output=True,
            env=_env(HERE),
        )
        out.append(session_s(done.stdout))
    return statistics.median(out)


def rounds(
    cwd: Path, variants: dict[str, tuple[list[str], str]], n: int
) -> dict[str, list[tuple[float, float]]]:
    """``n`` rounds of every variant, the order rotated by one each round."""
    names = list(variants)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    for r in range(n):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            extra, tree = variants[name]
            times[name].append(run(cwd, extra, tree))
    return times


def _spread(ts: list[tuple[float, float]], base: list[tuple[float, float]]) -> str:
    """The middle half of the rounds' wall ratios (variant / plain of the same round): when it
    is wider than a goal's margin, the host's drift decides the ratio, not the plugin."""
    if len(ts) < 4 or ts is base:
        return ""
    ratios = [w / bw for (w, _), (bw, _) in zip(ts, base, strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return f"; rounds {q1:.3f}-{q3:.3f}x (middle half)"


Counts = dict[str, tuple[int, float]]


def count_all(
    cwd: Path, variants: dict[str, tuple[list[str], str]], *, slowed: bool
) -> tuple[Counts, float | None, float | None]:
    """(instructions and session seconds per variant, the dilation D, plain's session seconds
    at full speed); D and those seconds are None on valgrind's clock."""
    dilation = full_s = None
    if slowed:
        full_s = plain_session_s(cwd)
        _, valgrind_s = count_instructions(cwd, ["-p", "no:co2"], HERE, None)
        dilation = valgrind_s / full_s
    counts = {
        name: count_instructions(cwd, extra, tree, dilation)
        for name, (extra, tree) in variants.items()
    }
    return counts, dilation, full_s


def print_counts(counts: Counts, dilation: float | None, full_s: float | None) -> None:
    """The instruction counts, over plain's."""
    if dilation is None:
        print("instructions (cachegrind, one run each; valgrind's clock):")
    else:
        print(
            f"instructions (cachegrind, one run each; clocks slowed {dilation:.1f}x, valgrind's "
            f"dilation of plain's session, {full_s:.2f} s at full speed):"
        )
    plain_count = counts[PLAIN][0]
    for name, (count, seen_s) in counts.items():
        print(
            f"{name:>24}: {count / 1e9:.3f} G ({count / plain_count:.3f}x plain); "
            f"session {seen_s:.2f} s on its clock"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", metavar="DIR", help="also time another checkout's plugin")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (cachegrind)"
    )
    parser.add_argument(
        "--no-slowed-clock",
        dest="slowed",
        action="store_false",
        help="count on valgrind's clock (default: clocks slowed by valgrind's dilation)",
    )
    parser.add_argument(
        "--header",
        action="store_true",
        help="also run plain and plugin loaded at pytest's default verbosity (the header shown)",
    )
    args = parser.parse_args()
    variants: dict[str, tuple[list[str], str]] = {
        PLAIN: (["-p", "no:co2"], HERE),
        "plugin loaded": ([], HERE),
        "--co2-all": (["--co2-all"], HERE),
        "--co2-profile": (["--co2-profile=profile.folded"], HERE),
    }
    if args.header:  # -q (the other variants) shows no header: a run without it may do less
        variants[PLAIN_HEADER] = (["-p", "no:co2", "--verbosity=0"], HERE)
        variants[LOADED_HEADER] = (["--verbosity=0"], HERE)
    if args.against:
        other = os.path.abspath(args.against)
        variants["plugin loaded (against)"] = ([], other)
        variants["--co2-all (against)"] = (["--co2-all"], other)
    with tempfile.TemporaryDirectory() as d:
        cwd = Path(d)
        body = "\n".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(args.tests))
        (cwd / "test_trivial.py").write_text(body)
        (cwd / "pytest.ini").write_text("[pytest]\n")
        for extra, tree in variants.values():  # warm-up: bytecode caches, OS file cache
            run(cwd, extra, tree)
        times = rounds(cwd, variants, args.runs)
        calls = {
            name: count_calls(cwd, extra, tree)
            for name, (extra, tree) in variants.items()
            if name != PLAIN
        }
        counted = count_all(cwd, variants, slowed=args.slowed) if args.instructions else None
    base = times[PLAIN]
    plain_wall = statistics.median(w for w, _ in base)
    plain_cpu = statistics.median(c for _, c in base)
    print(f"{args.tests} trivial tests, {args.runs} rounds (medians); this checkout: {HERE}")
    for name, ts in times.items():
        wall = statistics.median(w for w, _ in ts)
        cpu = statistics.median(c for _, c in ts)
        print(
            f"{name:>24}: wall {wall:.3f} s ({wall / plain_wall:.3f}x plain), "
            f"CPU {cpu:.3f} s ({cpu / plain_cpu:.3f}x plain){_spread(ts, base)}"
        )
    print("per test (median over rounds of (variant - plain) / tests), Python calls in pytest_co2:")
    for name, ts in times.items():
        if name == PLAIN:
            continue
        ms = 1000.0 / args.tests
        wall_ms = statistics.median((w - bw) * ms for (w, _), (bw, _) in zip(ts, base, strict=True))
        cpu_ms = statistics.median((c - bc) * ms for (_, c), (_, bc) in zip(ts, base, strict=True))
        per_test, outside = calls[name]
        print(
            f"{name:>24}: {wall_ms:+.3f} ms wall, {cpu_ms:+.3f} ms CPU per test; "
            f"{per_test:.1f} calls per test, {outside} outside the tests"
        )

    if counted is not None:
        print_counts(*counted)
    if args.header:
        wall = statistics.median(w for w, _ in times[LOADED_HEADER]) / statistics.median(
            w for w, _ in times[PLAIN_HEADER]
        )
        ratio = ""
        if counted is not None:
            n = counted[0]
            ratio = f", instructions {n[LOADED_HEADER][0] / n[PLAIN_HEADER][0]:.3f}x"
        print(f"header shown, plugin loaded over plain: wall {wall:.3f}x{ratio}")


if __name__ == "__main__":
    main()
