"""False-fail and detection rates of the regression gate on this machine.

For each workload (a numpy MLP step and a small torch conv-net training step, both written
as the README shows: ``for _ in co2_meter.steps(20, warmup=3): ...``) in a temporary
directory: one run saves a baseline (``--co2-save=base``), then ``k`` unchanged reruns and
``k`` runs with 25% more work per step (25% more rows in the batch; interleaved with the
unchanged ones) are compared with it through the plugin's CLI
(``--co2-compare=base --co2-compare-fail=energy:10%``). A run counts as failed when pytest
exits non-zero. Printed: false fails of the unchanged runs, detections of the +25% runs,
the per-unit changes, and the time per test.

The same saved runs are also judged offline by :func:`pytest_co2.measure.decisions.compare_decision`
on their per-window samples (``unit_energies_j``), so the three-outcome rule can be read
beside today's point compare before it is wired in.

    python tools/gate_check.py -k 4 --workloads numpy,torch
    python tools/gate_check.py -k 8 --pytest-args="--co2-precision=3%"   # future options
    python tools/gate_check.py --env OMP_WAIT_POLICY=PASSIVE --torch-threads 1
    python tools/gate_check.py -k 8 --quiet-runtime --reference --json out.json
    python tools/gate_check.py --rejudge out.json --between-run-cv 0.03   # no runs

Measured on the project's 2-core VM (shared with other agents, 1-min load 2-6), k = 8,
``energy:10%``, today's point compare: default runtime: numpy 2/8 false fails and 2/8
detected, torch 5/8 false fails (8/8 detected); with ``--quiet-runtime``: numpy 0/8 and
8/8, torch 0/8 and 8/8 (and 1/8 false fail for numpy, 4/8 detections for torch in a
rerun while the load fell from 3.8 to 1.9 after the baseline was saved).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from noise_probe import TORCH_NET  # noqa: E402

from pytest_co2.measure.decisions import compare_decision, estimate_of_entry  # noqa: E402

WORK_ENV = "GATE_CHECK_WORK"  # 1.0 unchanged, 1.25 for +25% work per step

REFERENCE_ENV = "GATE_CHECK_REFERENCE"  # 1: each test first measures a fixed reference

#: A short fixed numpy workload measured in every run (``--reference``): its change between
#: runs is the machine's drift, divided out by the offline decisions.
REFERENCE = f'''

def reference(co2_meter):
    if os.environ.get("{REFERENCE_ENV}") != "1":
        return
    import numpy as np

    a = np.random.default_rng(1).standard_normal((192, 192)) * 0.1
    for _ in co2_meter.steps(20, warmup=3, name="reference"):
        for _ in range(6):
            a = np.tanh(a @ a)
'''

NUMPY_TEST = f'''
import os

import numpy as np

WORK = float(os.environ.get("{WORK_ENV}", "1"))


{REFERENCE}

def test_numpy_train(co2_meter):
    reference(co2_meter)
    rng = np.random.default_rng(0)
    rows = round(512 * WORK)
    x, y = rng.standard_normal((rows, 1024)), rng.standard_normal((rows, 256))
    w = rng.standard_normal((1024, 256)) * 0.01
    for _ in co2_meter.steps(20, warmup=3, name="train"):
        pred = np.tanh(x @ w)
        w = w - 1e-3 * (x.T @ ((pred - y) * (1 - pred**2)) / rows)
'''

TORCH_TEST = f'''
import os
{TORCH_NET}
WORK = float(os.environ.get("{WORK_ENV}", "1"))
THREADS = int(os.environ.get("GATE_CHECK_TORCH_THREADS", "0"))


{REFERENCE}

def test_torch_train(co2_meter):
    reference(co2_meter)
    if THREADS:
        torch.set_num_threads(THREADS)
    net, opt, x, y = make_net()
    rows = round(64 * WORK)
    x, y = torch.randn(rows, 3, 32, 32), torch.randint(0, 10, (rows,))
    for _ in co2_meter.steps(20, warmup=3, name="train"):
        train_step(net, opt, x, y)
'''

TESTS = {"numpy": NUMPY_TEST, "torch": TORCH_TEST}

#: What the plugin could do in-process before a test imports torch (``--quiet-runtime``):
#: OpenMP threads that sleep instead of spinning at barriers (libgomp reads the variable
#: when torch loads it), numpy's OpenBLAS on one thread (its threads spin too, and numpy is
#: already imported, so only its own setter works), and glibc thresholds high enough that
#: freed tensor memory is kept instead of being unmapped and faulted in again every step
#: (mallopt works at any time).
QUIET_CONFTEST = """
import ctypes
import glob
import os

import numpy

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*")
for _path in glob.glob(_libs):
    _blas = ctypes.CDLL(_path)
    for _name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"):
        if hasattr(_blas, _name):
            getattr(_blas, _name)(1)
            break
_libc = ctypes.CDLL(None)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
_libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)  # returns 1 when accepted (glibc 2.36 here)
"""


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
    return {"rc": proc.returncode, "wall_s": wall, "entry": entry, "reference": ref, "tag": tag}


def per_unit(entry: dict[str, Any]) -> float:
    return float(entry["energy_per_unit_j"]["mean"])


def check_workload(
    name: str,
    k: int,
    extra: list[str],
    env: dict[str, str],
    threshold: float,
    cv: float,
    quiet: bool = False,
) -> dict[str, Any]:
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
        gate = [
            "--co2-compare=base",
            f"--co2-compare-fail=energy:{threshold * 100:g}%",
            *extra,
        ]
        runs: list[tuple[float, dict[str, Any]]] = []
        for i in range(k):  # interleaved so that drift of the machine hits both kinds alike
            for work in (1.0, 1.25):
                runs.append((work, run_pytest(workdir, test_file, work, gate, env, f"r{i}-{work}")))
                print(f"  {name} run {len(runs)}/{2 * k} done", file=sys.stderr, flush=True)
    b_est = estimate_of_entry(base["entry"])
    b_mean = per_unit(base["entry"])
    out: dict[str, Any] = {
        "name": name,
        "base_j": b_mean,
        "base_windows": base["entry"].get("windows"),
        "base_unit_energies_j": base["entry"].get("unit_energies_j"),
        "base_reference_j": base["reference"].get("unit_energies_j"),
    }
    for work in (1.0, 1.25):
        rs = [r for w, r in runs if w == work and r["entry"]]
        deltas = [per_unit(r["entry"]) / b_mean - 1 for r in rs]
        decisions = [
            compare_decision(b_est, estimate_of_entry(r["entry"]), threshold, between_run_cv=cv)  # type: ignore[arg-type]
            for r in rs
        ]
        with_ref = [
            compare_decision(
                b_est,  # type: ignore[arg-type]
                estimate_of_entry(r["entry"]),  # type: ignore[arg-type]
                threshold,
                between_run_cv=cv,
                reference_base=base["reference"]["unit_energies_j"],
                reference_current=r["reference"]["unit_energies_j"],
            )
            for r in rs
            if base["reference"] and r["reference"]
        ]
        out[str(work)] = {
            "outcomes_ref": [d.outcome for d in with_ref],
            "reference_changes": [d.reference_change for d in with_ref],
            "reference_j": [r["reference"].get("unit_energies_j") for r in rs],
            "failed": sum(r["rc"] != 0 for r in rs),
            "runs": len(rs),
            "deltas": deltas,
            "outcomes": [d.outcome for d in decisions],
            "lines": [d.describe() for d in decisions],
            "unit_energies_j": [r["entry"].get("unit_energies_j") for r in rs],
            "wall_s": statistics.fmean(r["wall_s"] for r in rs),
            "measured_s": statistics.fmean(float(r["entry"]["duration_s"]) for r in rs),
            "steps": statistics.fmean(int(r["entry"]["steps"]) for r in rs),
        }
    return out


def rejudge(path: Path, threshold: float, cv: float) -> int:
    """Offline: the three-outcome decisions on the samples a previous run saved."""
    from pytest_co2.measure.decisions import estimate

    for r in json.loads(path.read_text(encoding="utf-8")):
        if not r.get("base_unit_energies_j"):
            print(f"{r['name']}: no samples saved in {path}")
            continue
        base = estimate(r["base_unit_energies_j"])
        for work in ("1.0", "1.25"):
            refs = r[work].get("reference_j") or [None] * len(r[work]["unit_energies_j"])
            ref_base = r.get("base_reference_j")
            outcomes = [
                compare_decision(
                    base,
                    estimate(xs),
                    threshold,
                    between_run_cv=cv,
                    reference_base=ref_base if ref_base and rx else None,
                    reference_current=rx if ref_base and rx else None,
                ).outcome
                for xs, rx in zip(r[work]["unit_energies_j"], refs, strict=True)
            ]
            counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
            label = "unchanged" if work == "1.0" else "+25%"
            scaled = " (scaled by the reference)" if ref_base else ""
            print(f"{r['name']:6} {label:9} between-run cv {cv:g}{scaled}: {counts}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", type=int, default=4, help="unchanged and +25%% runs per workload (each)")
    ap.add_argument("--workloads", default="numpy,torch", help="comma-separated: numpy, torch")
    ap.add_argument(
        "--threshold", type=float, default=10.0, help="--co2-compare-fail energy %% (10)"
    )
    ap.add_argument(
        "--pytest-args",
        default="",
        help="more plugin options for every run, e.g. --co2-precision=3%%",
    )
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the pytest runs")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch.set_num_threads in the test (0: default)",
    )
    ap.add_argument(
        "--between-run-cv",
        type=float,
        default=0.0,
        help="offline decisions: between-run spread (fraction)",
    )
    ap.add_argument(
        "--quiet-runtime",
        action="store_true",
        help="a conftest sets OMP_WAIT_POLICY=PASSIVE and glibc malloc thresholds (see QUIET_CONFTEST)",
    )
    ap.add_argument(
        "--rejudge",
        default="",
        help="no runs: judge the samples of a --json file again (with --between-run-cv, --threshold)",
    )
    ap.add_argument(
        "--reference",
        action="store_true",
        help="each test first measures a fixed numpy reference; decisions also scaled by it",
    )
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args(argv)
    if args.rejudge:
        return rejudge(Path(args.rejudge), args.threshold / 100, args.between_run_cv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    bad = [n for n in names if n not in TESTS]
    if bad or args.k < 1:
        ap.error(f"workloads {bad} / k {args.k}: expected workloads from {list(TESTS)} and k >= 1")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    if args.reference:
        env[REFERENCE_ENV] = "1"
    if args.torch_threads:
        env["GATE_CHECK_TORCH_THREADS"] = str(args.torch_threads)
    for kv in args.env:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            ap.error(f"invalid --env {kv!r}: expected KEY=VALUE")
        env[key] = value
    extra = shlex.split(args.pytest_args)
    threshold = args.threshold / 100
    print(
        f"gate check: energy:{args.threshold:g}%, k={args.k} unchanged + {args.k} at +25% work per "
        f"workload; extra options {extra or 'none'}; env {args.env or 'none'}; "
        f"torch threads {args.torch_threads or 'default'}; quiet runtime {args.quiet_runtime}; load {os.getloadavg()[0]:.2f} at start"
    )
    results = []
    for name in names:
        r = check_workload(
            name, args.k, extra, env, threshold, args.between_run_cv, args.quiet_runtime
        )
        results.append(r)
        same, grown = r["1.0"], r["1.25"]
        print(f"\n{name}: baseline {r['base_j']:.4g} J/step over {r['base_windows']} windows")
        print(
            f"  plugin gate: false fails {same['failed']}/{same['runs']} unchanged, "
            f"detected {grown['failed']}/{grown['runs']} at +25%"
        )
        for label, part in (("unchanged", same), ("+25%", grown)):
            print(f"  {label:9} changes: " + ", ".join(f"{d * 100:+.1f}%" for d in part["deltas"]))
            counts = {o: part["outcomes"].count(o) for o in sorted(set(part["outcomes"]))}
            print(f"  {label:9} decisions.py (between-run cv {args.between_run_cv:g}): {counts}")
            if part["outcomes_ref"]:
                refs = ", ".join(f"{d * 100:+.1f}%" for d in part["reference_changes"])
                counts = {
                    o: part["outcomes_ref"].count(o) for o in sorted(set(part["outcomes_ref"]))
                }
                print(f"  {label:9} reference changes: {refs}")
                print(f"  {label:9} decisions.py scaled by the reference: {counts}")
        print(
            f"  time per test: {same['wall_s']:.1f} s wall for the pytest run, "
            f"{same['measured_s']:.2f} s measured over {same['steps']:.0f} steps (unchanged runs)"
        )
    print(f"\nload {os.getloadavg()[0]:.2f} at end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
