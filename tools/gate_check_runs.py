"""gate_check.py's runs: one pytest run of a workload with its JSON entry, the co-tenants
of the "loaded" condition, and a workload's baseline, unchanged and +25% reruns."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gate_check_judge import offline, per_unit, rule
from gate_check_workloads import HOG, QUIET_CONFTEST, TESTS, WORK_ENV


def start_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` co-tenant processes (tools/co_tenants.py is not used: a plain loop suffices)."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]
    time.sleep(1.0)  # let them reach the loop
    return procs


def stop_hogs(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def plugin_outcome(report: dict[str, Any], name: str) -> tuple[str, str]:
    """(outcome, line) of the plugin's decision for measurement ``name`` (first fail spec)."""
    for d in (report.get("comparison") or {}).get("deltas", ()):
        if d.get("name") == name and d.get("decisions"):
            dec = next(iter(d["decisions"].values()))
            from pytest_co2.measure.decisions import CompareDecision

            return dec["outcome"], CompareDecision.from_dict(dec).describe()
    return "none", ""


def run_pytest(
    workdir: Path, test_file: str, work: float, extra: list[str], env: dict[str, str], tag: str
) -> dict[str, Any]:
    """One pytest run; returns its exit code, wall time and the JSON entry of the test."""
    report = workdir / f"{tag}.json"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        test_file,
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--co2-backend=estimate",
        f"--co2-json={report}",
        *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env={**env, WORK_ENV: str(work)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    entry: dict[str, Any] = {}
    ref: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if report.is_file():
        data = json.loads(report.read_text(encoding="utf-8"))
        for t in data.get("tests", ()):
            for m in t.get("measurements", ()):
                if m["name"] == "reference":
                    ref = m
                else:
                    entry = m
    if not entry:
        sys.stderr.write(
            f"{tag}: no measurement in the report\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n"
        )
    outcome, line = plugin_outcome(data, entry.get("name", "train"))
    return {
        "rc": proc.returncode,
        "wall_s": wall,
        "entry": entry,
        "reference": ref,
        "tag": tag,
        "outcome": outcome,
        "line": line,
    }


def check_workload(
    name: str,
    k: int,
    extra: list[str],
    env: dict[str, str],
    threshold: float,
    cv: float,
    quiet: bool = False,
    conditions: tuple[str, ...] = ("quiet", "loaded"),
    hogs: int = 2,
    ab: bool = True,
) -> dict[str, Any]:
    """One quiet baseline, then ``k`` unchanged and ``k`` +25% reruns per condition
    (``loaded``: ``hogs`` co-tenants started after the baseline, stopped after the runs).
    With ``ab``, each unchanged/+25% pair is preceded by one more unchanged run without the
    gate: the A side of the paired mode (A U G, A U G, ...; A and B under the same hogs)."""
    out: dict[str, Any] = {"name": name}
    with tempfile.TemporaryDirectory(prefix=f"gate-{name}-") as tmp:
        workdir = Path(tmp)
        test_file = f"test_gate_{name}.py"
        (workdir / test_file).write_text(TESTS[name], encoding="utf-8")
        (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        if quiet:
            (workdir / "conftest.py").write_text(QUIET_CONFTEST, encoding="utf-8")
        base = run_pytest(workdir, test_file, 1.0, ["--co2-save=base", *extra], env, "base")
        if base["rc"] != 0 or not base["entry"]:
            raise SystemExit(f"{name}: the baseline run failed (exit {base['rc']})")
        out.update(
            base_j=per_unit(base["entry"]),
            base_windows=base["entry"].get("windows"),
            base_entry=base["entry"],
        )
        gate = ["--co2-compare=base", f"--co2-compare-fail=energy:{threshold * 100:g}%", *extra]
        for cond in conditions:
            procs = start_hogs(hogs) if cond == "loaded" else []
            runs: list[tuple[float, dict[str, Any]]] = []
            a_side: list[dict[str, Any]] = []  # the paired mode's A runs (unchanged)
            try:
                for i in range(k):  # interleaved: drift of the machine hits all kinds alike
                    for work in (("A", 1.0), 1.0, 1.25) if ab else (1.0, 1.25):
                        if isinstance(work, tuple):
                            a_side.append(
                                run_pytest(workdir, test_file, 1.0, extra, env, f"{cond}-{i}-A")
                            )
                            continue
                        tag = f"{cond}-{i}-{work}"
                        runs.append((work, run_pytest(workdir, test_file, work, gate, env, tag)))
                        print(f"  {name} {cond} run {len(runs)}/{2 * k}", file=sys.stderr)
            finally:
                stop_hogs(procs)
            out[cond] = {str(w): summarize(base, [r for x, r in runs if x == w], threshold, cv)
                         for w in (1.0, 1.25)}  # fmt: skip
            out[cond]["A"] = [r["entry"] for r in a_side]
    return out


def summarize(
    base: dict[str, Any], rs: list[dict[str, Any]], threshold: float, cv: float
) -> dict[str, Any]:
    rs = [r for r in rs if r["entry"]]
    be = base["entry"]
    b_full, b_work = per_unit(be), be.get("work_energy_j")

    def work_delta(e: dict[str, Any]) -> float:
        if not b_work or not e.get("work_energy_j"):
            return math.nan
        return (e["work_energy_j"] / e["units"]) / (b_work / be["units"]) - 1

    return {
        "runs": len(rs),
        "failed": sum(r["rc"] != 0 for r in rs),
        "outcomes": [r["outcome"] for r in rs],
        "lines": [r["line"] for r in rs],
        "full_changes": [per_unit(r["entry"]) / b_full - 1 for r in rs],
        "work_changes": [work_delta(r["entry"]) for r in rs],
        "offline_full": [offline(be, r["entry"], threshold, cv, "full") for r in rs],
        "offline_work": [offline(be, r["entry"], threshold, cv, "work") for r in rs],
        "rule": [rule(be, r["entry"], threshold) for r in rs],
        "contention": [r["entry"].get("contention") for r in rs],
        "entries": [r["entry"] for r in rs],
        "wall_s": statistics.fmean(r["wall_s"] for r in rs) if rs else math.nan,
    }
