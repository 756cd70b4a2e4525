"""Wall time of 200 trivial tests: plain pytest, with the plugin loaded, and with --co2-all.

Goals: plugin loaded <= 1.02x plain, --co2-all <= 1.05x plain. Median of several runs,
each in a fresh subprocess.

    python tools/overhead.py [--tests 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cwd: Path, extra: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=cwd, check=True, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cwd = Path(d)
        body = "\n".join(f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(args.tests))
        (cwd / "test_trivial.py").write_text(body)
        (cwd / "pytest.ini").write_text("[pytest]\n")
        variants = {
            "plain (-p no:co2)": ["-p", "no:co2"],
            "plugin loaded": [],
            "--co2-all": ["--co2-all"],
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.runs):  # interleave the variants so drift hits all alike
            for name, extra in variants.items():
                times[name].append(run(cwd, extra))
    plain = statistics.median(times["plain (-p no:co2)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:>18}: median {med:.3f} s over {args.runs} runs  ({med / plain:.3f}x plain)")


if __name__ == "__main__":
    main()
