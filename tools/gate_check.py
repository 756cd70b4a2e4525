"""False-fail and detection rates of the regression gate on this machine.

For each workload (a numpy MLP step and a small torch conv-net training step, both written
as the README shows: ``for _ in co2_meter.steps(20, warmup=3): ...``) in a temporary
directory: one run saves a baseline (``--co2-save=base``), then ``k`` unchanged reruns and
``k`` runs with 25% more work per step are compared with it through the plugin's CLI
(``--co2-compare=base --co2-compare-fail=energy:10%``). The +25% runs repeat the identical
op 5 times per step instead of 4, so their CPU work is exactly +25% (more rows in a batch
would not scale it exactly). A run counts as failed when pytest exits non-zero. Printed:
false fails of the unchanged runs, detections of the +25% runs, the per-unit changes.

Before each unchanged/+25% pair one more unchanged run is made without the gate: the A
side of the paired mode, under the same conditions (A U G, A U G, ...). The paired column
is ``pytest-co2 ab``'s sequential rule (looks at 4, 6, 9, 14, 16 pairs at 99% each) applied
to the pool of k pairs from k different starts: rotations of one pool, not independent
decisions; a decision that would need more pairs than the pool holds ends inconclusive
(``ab`` would run more). The same saved runs are also judged offline by each design part
(the whole figure, the work part, adjacent runs paired in time).

    python tools/gate_check.py -k 8 --json out.json
    python tools/gate_check.py -k 4 --workloads numpy --conditions loaded --no-ab
    python tools/gate_check.py --env OMP_WAIT_POLICY=PASSIVE --torch-threads 1
    python tools/gate_check.py --rejudge a.json,b.json   # no runs: today's rule, pooled

Measured figures: see the README ("Gates on a shared CI runner").
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
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

from pytest_co2.measure.decisions import compare_decision  # noqa: E402

THRESHOLD = [0.10]  # the fail threshold of this invocation (set by main)
AB_PAIRS = [4]  # pairs at the paired mode's first look (pytest-co2 ab --runs; set by main)
AB_MAX_PAIRS = [16]  # pairs at its last look (pytest-co2 ab --max-runs; set by main)
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

REPS = round(4 * float(os.environ.get("{WORK_ENV}", "1")))  # 4 unchanged, 5 at +25%


{REFERENCE}

def test_numpy_train(co2_meter):
    reference(co2_meter)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 1024)), rng.standard_normal((128, 256))
    w = rng.standard_normal((1024, 256)) * 0.01
    for _ in co2_meter.steps(20, warmup=3, name="train"):
        for _ in range(REPS):  # the identical op each time: the work scales with REPS exactly
            pred = np.tanh(x @ w)
            grad = x.T @ ((pred - y) * (1 - pred**2)) / 128
'''

TORCH_TEST = f'''
import os
{TORCH_NET}
REPS = round(4 * float(os.environ.get("{WORK_ENV}", "1")))  # 4 unchanged, 5 at +25%
THREADS = int(os.environ.get("GATE_CHECK_TORCH_THREADS", "0"))


{REFERENCE}

def test_torch_train(co2_meter):
    reference(co2_meter)
    if THREADS:
        torch.set_num_threads(THREADS)
    net, opt, x, y = make_net()
    x, y = x[:16], y[:16]
    for _ in co2_meter.steps(20, warmup=3, name="train"):
        train_step(net, opt, x, y, repeat=REPS)  # the identical step REPS times
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


#: A co-tenant: a CPU-bound Python loop that also walks a 32 MiB buffer (cache and memory
#: bandwidth, as a neighbour's job would), started twice for the "loaded" condition.
HOG = """
import sys
buf = bytearray(32 << 20)
i = 0
while True:
    buf[i] = (buf[i] + 1) & 255
    i = (i + 4099) % len(buf)
"""


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


def per_unit(entry: dict[str, Any]) -> float:
    return float(entry["energy_per_unit_j"]["mean"])


def offline(
    base: dict[str, Any], entry: dict[str, Any], threshold: float, cv: float, kind: str
) -> str:
    """The outcome of one design choice on saved samples: ``full`` (the whole estimated
    energy, no contention: the gate before this change), ``work`` (the work part, no
    contention), ``work+ref`` (the work part scaled by the reference workload)."""
    from pytest_co2.measure.estimates import estimate

    key = "unit_energies_j" if kind == "full" else "work_unit_energies_j"
    b, c = base.get(key), entry.get(key)
    if not b or not c:
        return "n/a"
    return compare_decision(
        estimate(b, "trimmed"), estimate(c, "trimmed"), threshold, between_run_cv=cv
    ).outcome


def rule(base: dict[str, Any], entry: dict[str, Any], threshold: float) -> str:
    """The plugin's decision (work part, contention) on two saved entries, offline."""
    from pytest_co2.measure.records import Measurement
    from pytest_co2.reporting.delta import Delta, FailSpec

    def meas(e: dict[str, Any]) -> Measurement:
        c = e.get("contention")
        if c is not None and c.get("cpus") is None:  # saved before the CPU count was kept
            e = {**e, "contention": {**c, "cpus": os.cpu_count()}}
        return Measurement.from_dict(e)

    b, c = meas(base), meas(entry)
    delta = Delta(
        "t", "train", c.energy_j, 0.0, b.energy_j, 0.0,
        samples=c.unit_energies_j, base_samples=b.unit_energies_j,
        work_samples=c.work_unit_energies_j, base_work_samples=b.work_unit_energies_j,
        contention=c.contention, base_contention=b.contention,
    )  # fmt: skip
    d = delta.decide(FailSpec("energy", threshold * 100))
    return "n/a" if d is None else d.outcome


def paired(
    entries: list[dict[str, Any]], others: list[dict[str, Any]], threshold: float
) -> list[str]:
    """Paired in time: run i of ``others`` as the baseline of run i of ``entries`` (adjacent
    runs of one condition, as an ABAB job would make them); for two lists of the same kind,
    run i against run i + 1."""
    if entries is others:
        return [rule(a, b, threshold) for a, b in itertools.pairwise(entries)]
    return [rule(a, b, threshold) for a, b in zip(others, entries, strict=False)]


def ab_value(entry: dict[str, Any]) -> float:
    """What ``pytest-co2 ab`` pairs: the trimmed center of the work part (else the full)."""
    from pytest_co2.measure.estimates import estimate

    xs = entry.get("work_unit_energies_j") or entry["unit_energies_j"]
    return estimate(xs, "trimmed").center_j


def ab_mode(
    a: list[dict[str, Any]], b: list[dict[str, Any]], threshold: float, pairs: int
) -> list[str]:
    """The paired mode's outcomes on runs i of ``a`` and ``b`` (interleaved A B), as
    ``pytest-co2 ab --runs PAIRS`` decides: looks at PAIRS, x1.5, ... up to
    ``AB_MAX_PAIRS`` pairs, each at the level that keeps all its looks at 95%, stopping at
    the first look that decides. Decision j takes the pool's pairs from j on, cyclically;
    a decision that would need more pairs than the pool holds ends inconclusive (``ab``
    would go on). The k decisions are rotations of one pool of k pairs: not independent.
    Each outcome is suffixed with the pairs it took (``regression@6``)."""
    from pytest_co2.measure.paired import look_schedule, paired_decision, sequential_level

    m = min(len(a), len(b))
    va, vb = [ab_value(e) for e in a[:m]], [ab_value(e) for e in b[:m]]
    schedule = look_schedule(pairs, max(pairs, AB_MAX_PAIRS[0]))
    level = sequential_level(len(schedule))
    out = []
    for j in range(m):
        order = [(j + i) % m for i in range(m)]
        outcome, used = "inconclusive", m
        for n in (x for x in schedule if x <= m):
            d = paired_decision(
                [va[i] for i in order[:n]], [vb[i] for i in order[:n]], threshold + 1e-12,
                level=level,
            )  # fmt: skip
            outcome, used = d.outcome, n
            if outcome != "inconclusive":
                break
        out.append(f"{outcome}@{used}")
    return out


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


def counts(outcomes: list[str]) -> str:
    """``3 reg / 4 inc / 1 ok`` (regression, inconclusive, no regression); for the paired
    mode's ``outcome@pairs`` also the median pairs taken (``, 6 pairs``)."""
    bare = [o.partition("@")[0] for o in outcomes]
    n = {o: bare.count(o) for o in set(bare)}
    text = (
        f"{n.get('regression', 0)} reg / {n.get('inconclusive', 0)} inc / "
        f"{n.get('no regression', 0)} ok"
    )
    used = [int(o.partition("@")[2]) for o in outcomes if "@" in o]
    return text + (f", {statistics.median(used):g} pairs" if used else "")


def _median_pct(xs: list[float]) -> str:
    ys = [x for x in xs if math.isfinite(x)]
    return f"{statistics.median(ys) * 100:+.0f}%" if ys else "n/a"


def _wait(cs: list[dict[str, Any] | None]) -> str:
    ws = [c["wait_share"] for c in cs if c and c.get("wait_share") is not None]
    ps = [c["cpu_pressure"] for c in cs if c and c.get("cpu_pressure") is not None]
    w = f"{statistics.median(ws) * 100:.0f}%" if ws else "?"
    p = f"{statistics.median(ps) * 100:.0f}%" if ps else "?"
    return f"{w}/{p}"


def print_table(results: list[dict[str, Any]]) -> None:
    """The acceptance table: per workload and condition, false fails and catches, with the
    offline outcome of each design part on the same samples."""
    head = (
        f"{'workload':8} {'condition':9} {'kind':9} {'gate fails':>10}  {'plugin decisions':24} "
        f"{'full, no contention':24} {'work, no contention':24} {'paired in time':24} "
        f"{'ab mode (sequential)':32} {'Δfull':>6} {'Δwork':>6} {'wait/PSI':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        b = r["base_entry"].get("contention") or {}
        bw = b.get("wait_share")
        print(
            f"{r['name']:8} baseline: wait {'?' if bw is None else f'{bw * 100:.0f}%'}, "
            f"{r['base_windows']} windows, {r['base_j']:.4g} J/step"
        )
        for cond in ("quiet", "loaded"):
            if cond not in r:
                continue
            same, grown = r[cond]["1.0"]["entries"], r[cond]["1.25"]["entries"]
            pairs = {
                "1.0": paired(same, same, THRESHOLD[0]),
                "1.25": paired(grown, same, THRESHOLD[0]),
            }
            a_side = r[cond].get("A") or []
            ab = {
                "1.0": ab_mode(a_side, same, THRESHOLD[0], AB_PAIRS[0]),
                "1.25": ab_mode(a_side, grown, THRESHOLD[0], AB_PAIRS[0]),
            }
            for work, label in (("1.0", "unchanged"), ("1.25", "+25%")):
                p = r[cond][work]
                print(
                    f"{r['name']:8} {cond:9} {label:9} {p['failed']:>4}/{p['runs']:<5}  "
                    f"{counts(p['outcomes']):24} {counts(p['offline_full']):24} "
                    f"{counts(p['offline_work']):24} {counts(pairs[work]):24} {counts(ab[work]):32} "
                    f"{_median_pct(p['full_changes']):>6} "
                    f"{_median_pct(p['work_changes']):>6} {_wait(p['contention']):>9}"
                )


def rejudge(paths: list[Path], threshold: float, cv: float) -> int:
    """Offline: the design parts' outcomes on the samples previous runs saved (the plugin
    column is then today's rule on them, not what the plugin said in the run). Several
    files of the same workloads are pooled: each run judged against its own file's
    baseline, the lists concatenated (the paired mode then has a larger pool of pairs)."""
    pooled: dict[str, dict[str, Any]] = {}
    for path in paths:
        for r in json.loads(path.read_text(encoding="utf-8")):
            for cond in ("quiet", "loaded"):
                for part in (r[cond][w] for w in ("1.0", "1.25") if cond in r):
                    es = part["entries"]
                    part["offline_full"] = [
                        offline(r["base_entry"], e, threshold, cv, "full") for e in es
                    ]
                    part["offline_work"] = [
                        offline(r["base_entry"], e, threshold, cv, "work") for e in es
                    ]
                    part["outcomes"] = [rule(r["base_entry"], e, threshold) for e in es]
            if r["name"] not in pooled:
                pooled[r["name"]] = r
                continue
            _pool(pooled[r["name"]], r)
    print_table(list(pooled.values()))
    return 0


def _pool(into: dict[str, Any], r: dict[str, Any]) -> None:
    """Append the runs of ``r`` to ``into`` (same workload), condition by condition."""
    for cond in ("quiet", "loaded"):
        if cond not in r or cond not in into:
            continue
        into[cond]["A"] = into[cond].get("A", []) + r[cond].get("A", [])
        for w in ("1.0", "1.25"):
            a, b = into[cond][w], r[cond][w]
            for key, value in b.items():
                if isinstance(value, list):
                    a[key] = a.get(key, []) + value
            a["runs"] += b["runs"]
            a["failed"] += b["failed"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", type=int, default=8, help="unchanged and +25%% runs per workload (each)")
    ap.add_argument("--workloads", default="numpy,torch", help="comma-separated: numpy, torch")
    ap.add_argument(
        "--conditions", default="quiet,loaded", help="comma-separated: quiet, loaded (co-tenants)"
    )
    ap.add_argument("--hogs", type=int, default=2, help="co-tenant processes when loaded (2)")
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
        help="a conftest sets OpenBLAS to one thread and glibc malloc thresholds (QUIET_CONFTEST)",
    )
    ap.add_argument(
        "--rejudge",
        default="",
        help="no runs: judge the samples of --json files again (comma-separated: pooled; with "
        "--between-run-cv, --threshold)",
    )
    ap.add_argument(
        "--reference",
        action="store_true",
        help="each test first measures a fixed numpy reference (kept in the JSON)",
    )
    ap.add_argument(
        "--ab-pairs", type=int, default=4, help="paired mode: pairs at the first look (--runs, 4)"
    )
    ap.add_argument(
        "--ab-max-pairs", type=int, default=16, help="paired mode: pairs at most (--max-runs, 16)"
    )
    ap.add_argument(
        "--no-ab", action="store_true", help="no A runs for the paired mode (2k runs, not 3k)"
    )
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args(argv)
    THRESHOLD[0] = args.threshold / 100
    AB_PAIRS[0] = args.ab_pairs
    AB_MAX_PAIRS[0] = args.ab_max_pairs
    if args.rejudge:
        paths = [Path(x) for x in args.rejudge.split(",") if x]
        return rejudge(paths, args.threshold / 100, args.between_run_cv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    conds = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    bad = [n for n in names if n not in TESTS] + [c for c in conds if c not in ("quiet", "loaded")]
    if bad or args.k < 1:
        ap.error(f"{bad} / k {args.k}: expected workloads {list(TESTS)}, conditions quiet/loaded")
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
        f"workload and condition {conds} ({args.hogs} co-tenants when loaded); extra options "
        f"{extra or 'none'}; env {args.env or 'none'}; quiet runtime {args.quiet_runtime}; "
        f"load {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    t0 = time.perf_counter()
    results = []
    for name in names:
        results.append(
            check_workload(
                name,
                args.k,
                extra,
                env,
                threshold,
                args.between_run_cv,
                args.quiet_runtime,
                conds,
                args.hogs,
                not args.no_ab,
            )
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    print()
    print_table(results)
    print(f"\nload {os.getloadavg()[0]:.2f} at end; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
