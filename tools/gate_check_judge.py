"""gate_check.py's judges: each design part's decision on saved runs (the whole figure, the
work part, adjacent runs paired in time, the paired mode's sequential rule), the acceptance
table, and ``--rejudge`` of saved results."""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from pytest_co2.measure.decisions import compare_decision

THRESHOLD = [0.10]  # the fail threshold of this invocation (set by main)
AB_PAIRS = [4]  # pairs at the paired mode's first look (pytest-co2 ab --runs; set by main)
AB_MAX_PAIRS = [32]  # pairs at its last look (pytest-co2 ab --max-runs; set by main)


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


def all_pairs(paths: list[Path], threshold: float, scales: list[float]) -> int:
    """Offline, every pairing of a file's runs (not only against the run saved as its
    baseline): each unchanged run (the baseline, the paired mode's A runs and the unchanged
    reruns) as the baseline of every other unchanged run (false fails) and of every +25%
    run (catches), judged by the plugin's rule with the drift allowance scaled by each of
    ``scales`` (1: as shipped, 0: none). One saved baseline can land high or low for a whole
    round; the pairings show the rates a user meets over many baselines. Pairs share runs:
    they are not independent."""
    from pytest_co2.measure import drift

    shipped = drift.combined_cv
    print(
        f"{'allowance':>9} {'file':20} {'workload':8} {'condition':9} "
        f"{'false fails':>18} {'caught':>18} {'+25% inconclusive':>18}"
    )
    try:
        for scale in scales:
            drift.combined_cv = lambda *d, s=scale: s * shipped(*d)  # type: ignore[assignment]
            for path in paths:
                for r in json.loads(path.read_text(encoding="utf-8")):
                    for cond in ("quiet", "loaded"):
                        if cond not in r:
                            continue
                        same = [
                            r["base_entry"],
                            *(r[cond].get("A") or []),
                            *r[cond]["1.0"]["entries"],
                        ]
                        grown = r[cond]["1.25"]["entries"]
                        false = [rule(b, c, threshold) for b, c in itertools.permutations(same, 2)]
                        caught = [rule(b, c, threshold) for b in same for c in grown]
                        print(
                            f"{scale:>8g}x {path.name:20} {r['name']:8} {cond:9} "
                            f"{_rate(false, 'regression'):>18} {_rate(caught, 'regression'):>18} "
                            f"{_rate(caught, 'inconclusive'):>18}"
                        )
    finally:
        drift.combined_cv = shipped
    return 0


def _rate(outcomes: list[str], which: str) -> str:
    n = outcomes.count(which)
    return f"{n}/{len(outcomes)} ({n / len(outcomes):.0%})" if outcomes else "n/a"
