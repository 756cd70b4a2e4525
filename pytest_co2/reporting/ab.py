"""``pytest-co2 ab``: the paired A/B gate of two revisions on one machine.

A git worktree of the baseline revision (A) is made in a temporary folder; A and the
current working tree (B) then run the same pytest arguments alternately, A B A B ...,
``runs`` times each, each run writing ``--co2-json`` to a temporary file. A runs with its
folder as the working directory and its checkout (and ``src/`` if present) first on
``PYTHONPATH``, so that A's tests and A's project code are measured. Both sides load this
pytest-co2 (a link to it comes first on ``PYTHONPATH``): the meter is the same, only the
project code differs. Run ``i`` of A and run ``i`` of B are paired; each measurement (test
id and name) present in every run is decided by :func:`..measure.paired.paired_decision`
on the per-run per-unit energies (the 20% trimmed mean of the windows; the CPU estimate's
work part where every run has it). The worktree and the reports are removed afterwards.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..fmt import fmt_num, fmt_pct, fmt_sig
from ..frozen import Frozen, record
from .delta import WORK_QUANTITY, FailSpec
from .storage import load_report

if TYPE_CHECKING:
    from ..measure.decisions import CompareDecision
    from .json_report import Report

DEFAULT_RUNS = 4  # pairs at the first look
DEFAULT_MAX_RUNS = 32  # pairs at the last look (4, 6, 9, 14, 21, 32: 99.17% intervals each)
DEFAULT_MAX_TIME_S = 1800.0  # no pair starts that would likely end after this


class ABError(Exception):
    """Bad input or a failed run, as one line (the CLI exits 2)."""


@record
class Side(Frozen):
    """One side of the A/B: its label, checkout root, working directory and environment."""

    label: str
    root: Path
    cwd: Path
    env: Mapping[str, str]


#: Runs pytest for one side; returns (exit code, the tail of its output).
Runner = Callable[[Side, Sequence[str], Path], tuple[int, str]]


def run_pytest(side: Side, pytest_args: Sequence[str], report: Path) -> tuple[int, str]:
    """``python -m pytest ARGS --co2-json=REPORT`` in the side's folder and environment."""
    cmd = [sys.executable, "-m", "pytest", *pytest_args, "-p", "no:cacheprovider"]
    proc = subprocess.run(
        [*cmd, f"--co2-json={report}"],
        cwd=side.cwd,
        env=dict(side.env),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr)[-1500:]


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _python_roots(root: Path) -> list[str]:
    return [str(root)] + ([str(root / "src")] if (root / "src").is_dir() else [])


def _env(base: Mapping[str, str], first: Sequence[str], drop_under: Path) -> dict[str, str]:
    """``base`` with ``first`` ahead on PYTHONPATH, and entries inside ``drop_under`` (the
    current tree, for side A) removed so that B's code does not shadow A's."""
    kept = [
        p
        for p in base.get("PYTHONPATH", "").split(os.pathsep)
        if p and not _inside(Path(p), drop_under)
    ]
    return {**base, "PYTHONPATH": os.pathsep.join([*first, *kept])}


def _inside(p: Path, root: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


@record
class Row(Frozen):
    """One measurement's paired values and decision."""

    nodeid: str
    name: str
    base: tuple[float, ...]
    current: tuple[float, ...]
    quantity: str


def per_run_values(reports: Sequence[Report]) -> dict[tuple[str, str], tuple[list[float], str]]:
    """(test id, name) -> (one per-unit energy per report, what it is), for the measurements
    present in every report. The value is the trimmed center of the CPU estimate's work part
    where every report has it, else of the full per-window energies, else the run's mean."""
    from ..measure.estimates import estimate
    from ..measure.records import Measurement

    per: list[dict[tuple[str, str], Measurement]] = []
    for rep in reports:
        per.append({(t.nodeid, r.name): r.measurement for t in rep.tests for r in t.results})
    keys = [k for k in per[0] if all(k in p for p in per)] if per else []
    out: dict[tuple[str, str], tuple[list[float], str]] = {}
    for key in keys:
        ms = [p[key] for p in per]
        if all(m.work_unit_energies_j for m in ms):
            vals = [estimate(m.work_unit_energies_j, "trimmed").center_j for m in ms]
            out[key] = (vals, WORK_QUANTITY)
        elif all(m.unit_energies_j for m in ms):
            vals = [estimate(m.unit_energies_j, "trimmed").center_j for m in ms]
            out[key] = (vals, "energy")
        else:
            out[key] = ([m.energy_per_unit_j.mean for m in ms], "energy")
    return out


def decide_rows(
    a_reports: Sequence[Report], b_reports: Sequence[Report], spec: FailSpec, level: float = 0.95
) -> list[tuple[Row, CompareDecision | str]]:
    """Each measurement present in every run, with its paired decision (energy specs only)."""
    from ..measure.paired import paired_decision

    k = len(a_reports)
    values = per_run_values([*a_reports, *b_reports])
    out: list[tuple[Row, CompareDecision | str]] = []
    for (nodeid, name), (vals, quantity) in values.items():
        row = Row(nodeid, name, tuple(vals[:k]), tuple(vals[k:]), quantity)
        try:
            dec: CompareDecision | str = paired_decision(
                row.base, row.current, spec.percent / 100 + 1e-12, quantity=quantity, level=level
            )
        except ValueError as exc:
            dec = str(exc)
        out.append((row, dec))
    return out


def parse_spec(text: str) -> FailSpec:
    """``energy:10%`` -> FailSpec; ab decides on energy only (both sides share the intensity)."""
    from .baseline import parse_fail_specs

    try:
        specs = parse_fail_specs(text)
    except ValueError as exc:
        raise ABError(str(exc).replace("--co2-compare-fail", "--fail")) from None
    if len(specs) != 1 or specs[0].field != "energy":
        raise ABError(f"invalid --fail {text!r}: expected one energy threshold, e.g. energy:10%")
    return specs[0]


def _revision(here: Path, against: str) -> tuple[Path, str]:
    """(checkout root, commit) for ``against``; ABError outside a checkout or for a bad REV."""
    top = _git(here, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ABError(f"{here} is not inside a git checkout: ab makes a worktree of REV from one")
    root = Path(top.stdout.strip()).resolve()
    rev = _git(root, "rev-parse", "--verify", "--quiet", f"{against}^{{commit}}")
    if rev.returncode != 0 or not rev.stdout.strip():
        raise ABError(f"unknown revision {against!r}: expected a commit, branch or tag of {root}")
    return root, rev.stdout.strip()


def _one_pair(
    sides: Mapping[str, Side],
    pytest_args: Sequence[str],
    i: int,
    tmp: Path,
    runner: Runner,
    echo: Callable[[str], None],
) -> dict[str, Report]:
    """Pair ``i``: one run of A, then one of B; their reports."""
    out: dict[str, Report] = {}
    for label in ("A", "B"):
        path = tmp / f"{label}-{i}.json"
        rc, tail = runner(sides[label], pytest_args, path)
        if not path.is_file():
            raise ABError(
                f"run {i + 1} of {label} wrote no report (pytest exit {rc}): "
                f"{' '.join(tail.split())[-300:]}"
            )
        if rc != 0:
            echo(f"ab: run {i + 1} of {label}: pytest exit {rc} (measurements kept)")
        try:
            out[label] = load_report(path)
        except ValueError as exc:
            raise ABError(" ".join(str(exc).split())) from None
    return out


@record
class Plan(Frozen):
    """How many pairs: the looks (pair counts at which to decide), each look's interval
    level, and the wall-clock cap after which no new pair starts."""

    looks: tuple[int, ...]
    level: float
    max_time_s: float | None


def make_plan(runs: int, max_runs: int | None, max_time_s: float | None) -> Plan:
    """The :class:`Plan` of ``--runs K`` (the first look), ``--max-runs M`` (the last; None:
    the larger of K and :data:`DEFAULT_MAX_RUNS`) and ``--max-time S``; ABError if bad."""
    from ..measure.paired import look_schedule, sequential_level

    if not (isinstance(runs, int) and runs >= 1):
        raise ABError(f"invalid --runs {runs!r}: expected an integer >= 1")
    top = max(runs, DEFAULT_MAX_RUNS) if max_runs is None else max_runs
    if max_time_s is not None and not (max_time_s > 0 and math.isfinite(max_time_s)):
        raise ABError(f"invalid --max-time {max_time_s!r}: expected seconds > 0")
    try:
        looks = look_schedule(runs, top)
    except ValueError as exc:
        raise ABError(str(exc)) from None
    return Plan(tuple(looks), sequential_level(len(looks)), max_time_s)


def _sequential(
    sides: Mapping[str, Side],
    pytest_args: Sequence[str],
    plan: Plan,
    spec: FailSpec,
    tmp: Path,
    runner: Runner,
    echo: Callable[[str], None],
    clock: Callable[[], float],
) -> tuple[list[tuple[Row, CompareDecision | str]], str]:
    """A B A B ... until every measurement is decided at a look, the last look, or the time
    cap; the rows of the last look made and why it stopped."""
    from ..measure.decisions import INCONCLUSIVE

    reports: dict[str, list[Report]] = {"A": [], "B": []}
    t0 = clock()
    rows: list[tuple[Row, CompareDecision | str]] = []
    for i in range(plan.looks[-1]):
        pair = _one_pair(sides, pytest_args, i, tmp, runner, echo)
        reports["A"].append(pair["A"])
        reports["B"].append(pair["B"])
        n = i + 1
        elapsed = clock() - t0
        out_of_time = plan.max_time_s is not None and elapsed + elapsed / n > plan.max_time_s
        if n not in plan.looks and not out_of_time:
            continue
        rows = decide_rows(reports["A"], reports["B"], spec, plan.level)
        open_ = [r for r, d in rows if not isinstance(d, str) and d.outcome == INCONCLUSIVE]
        if not open_:
            return rows, f"decided after {n} {'pair' if n == 1 else 'pairs'}"
        if n == plan.looks[-1]:
            return rows, f"{len(open_)} still inconclusive after {n} pairs (--max-runs {n})"
        if out_of_time:
            return rows, (
                f"{len(open_)} still inconclusive after {n} pairs: the next pair would pass "
                f"--max-time {fmt_sig(plan.max_time_s or 0)} s"
            )
        echo(f"ab: {len(open_)} inconclusive after {n} pairs: more pairs")
    return rows, "no pairs"  # pragma: no cover - plan.looks is never empty


def run_ab(
    against: str,
    pytest_args: Sequence[str],
    *,
    runs: int = DEFAULT_RUNS,
    max_runs: int | None = None,
    max_time_s: float | None = DEFAULT_MAX_TIME_S,
    fail: str = "energy:10%",
    cwd: Path | None = None,
    runner: Runner = run_pytest,
    env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """The A/B gate; returns 1 when a measurement regressed, else 0; ABError on bad input.

    ``runs`` pairs first; while a measurement is inconclusive, more pairs up to ``max_runs``
    (looks at x1.5 steps, each at the level that keeps the looks together at 95%, see
    :mod:`..measure.paired`); no pair starts that would likely end after ``max_time_s``."""
    plan = make_plan(runs, max_runs, max_time_s)
    spec = parse_spec(fail)
    here = (cwd or Path.cwd()).resolve()
    b_root, sha = _revision(here, against)
    import pytest_co2

    plugin = Path(pytest_co2.__file__).resolve().parent
    base_env = dict(os.environ if env is None else env)
    tmp = Path(tempfile.mkdtemp(prefix="pytest-co2-ab-"))
    a_root = tmp / "a"
    try:
        add = _git(b_root, "worktree", "add", "--detach", "--quiet", str(a_root), sha)
        if add.returncode != 0:
            raise ABError(f"git worktree add of {against!r} failed: {' '.join(add.stderr.split())}")
        rel = here.relative_to(b_root)
        if not (a_root / rel).is_dir():
            raise ABError(
                f"the folder {rel} does not exist at {against!r}: run ab from one that does"
            )
        link = tmp / "plugin"
        link.mkdir()
        (link / plugin.name).symlink_to(plugin, target_is_directory=True)
        sides = {
            "A": Side("A", a_root, a_root / rel, _env(base_env, [str(link), *_python_roots(a_root)], b_root)),
            "B": Side("B", b_root, here, _env(base_env, [str(link), *_python_roots(b_root)], tmp)),
        }  # fmt: skip
        echo(
            f"ab: A = {against} ({sha[:12]}) in a temporary worktree, B = the working tree; "
            f"interleaved A B A B, a decision at {_looks_text(plan)}; both measured by the "
            f"pytest-co2 at {plugin.parent} (A's tests and project code, this meter)"
        )
        rows, why = _sequential(sides, pytest_args, plan, spec, tmp, runner, echo, clock)
    finally:
        _git(b_root, "worktree", "remove", "--force", str(a_root))
        shutil.rmtree(tmp, ignore_errors=True)
    return _print_rows(rows, spec, echo, why)


def _looks_text(plan: Plan) -> str:
    if len(plan.looks) == 1:
        return f"{plan.looks[0]} pairs (95% intervals)"
    return (
        f"{', '.join(map(str, plan.looks))} pairs until decided ({plan.level * 100:.4g}% "
        f"intervals at each look: 95% over all {len(plan.looks)})"
    )


def _print_rows(
    rows: Sequence[tuple[Row, CompareDecision | str]],
    spec: FailSpec,
    echo: Callable[[str], None],
    why: str = "",
) -> int:
    """One line per measurement and a closing line; 1 when one regressed."""
    from ..measure.decisions import REGRESSION
    from ..measure.paired import describe_paired

    if not rows:
        raise ABError(
            "no measurement was made in every run: give tests a co2_meter or --co2-all in the "
            "pytest arguments"
        )
    regressed = 0
    for row, dec in rows:
        where = f"{row.nodeid} [{row.name}]"
        if isinstance(dec, str):
            echo(f"{where}: not decided: {dec}")
            continue
        regressed += dec.outcome == REGRESSION
        echo(
            f"{where}: A {fmt_num(dec.base_mean_j)} J -> B {fmt_num(dec.mean_j)} J per unit "
            f"({fmt_pct(dec.change * 100)}): {describe_paired(dec, row.base, row.current)}"
        )
    echo(
        (
            f"ab: {regressed} of {len(rows)} measurements regressed beyond --fail={spec}"
            if regressed
            else f"ab: no regression beyond --fail={spec} in {len(rows)} measurements"
        )
        + (f"; {why}" if why else "")
    )
    return 1 if regressed else 0
