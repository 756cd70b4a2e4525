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
is ``pytest-co2 ab``'s sequential rule (looks at 4, 6, 9, 14, 21, 32 pairs at 99.17% each) applied
to the pool of k pairs from k different starts: rotations of one pool, not independent
decisions; a decision that would need more pairs than the pool holds ends inconclusive
(``ab`` would run more). The same saved runs are also judged offline by each design part
(the whole figure, the work part, adjacent runs paired in time).

    python tools/gate_check.py -k 8 --json out.json
    python tools/gate_check.py -k 4 --workloads numpy --conditions loaded --no-ab
    python tools/gate_check.py --env OMP_WAIT_POLICY=PASSIVE --torch-threads 1
    python tools/gate_check.py --rejudge a.json,b.json   # no runs: today's rule, pooled
    python tools/gate_check.py --rejudge a.json --all-pairs 1,0.5,0   # every pairing of runs

``--all-pairs`` judges every unchanged run as the baseline of every other run, not only the
one the round saved: one baseline can land high or low for a whole round, and the pairings
show the rates over many baselines (with the drift allowance scaled, to see what it buys).

Measured figures: see the README ("Gates on a shared CI runner").
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_check_judge import (  # noqa: E402
    AB_MAX_PAIRS,
    AB_PAIRS,
    THRESHOLD,
    all_pairs,
    print_table,
    rejudge,
)
from gate_check_runs import check_workload  # noqa: E402
from gate_check_workloads import REFERENCE_ENV, TESTS  # noqa: E402


def _offline(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--rejudge`` (with ``--all-pairs``): decisions on saved runs, nothing run."""
    if not args.rejudge:
        ap.error("--all-pairs judges saved runs: give their files with --rejudge")
    paths = [Path(x) for x in args.rejudge.split(",") if x]
    if not args.all_pairs:
        return rejudge(paths, args.threshold / 100, args.between_run_cv)
    try:
        scales = [float(x) for x in args.all_pairs.split(",") if x]
    except ValueError:
        ap.error(f"invalid --all-pairs {args.all_pairs!r}: expected numbers, e.g. 1,0.5,0")
    return all_pairs(paths, args.threshold / 100, scales)


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
        "--all-pairs",
        default="",
        metavar="SCALES",
        help="with --rejudge: every pairing of each file's runs, the drift allowance scaled by "
        "each of SCALES (comma-separated, e.g. 1,0.5,0; 1 is the plugin's)",
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
        "--ab-max-pairs", type=int, default=32, help="paired mode: pairs at most (--max-runs, 32)"
    )
    ap.add_argument(
        "--no-ab", action="store_true", help="no A runs for the paired mode (2k runs, not 3k)"
    )
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args(argv)
    THRESHOLD[0] = args.threshold / 100
    AB_PAIRS[0] = args.ab_pairs
    AB_MAX_PAIRS[0] = args.ab_max_pairs
    if args.rejudge or args.all_pairs:
        return _offline(ap, args)
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
