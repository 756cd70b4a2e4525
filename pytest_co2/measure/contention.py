"""The contention a measurement ran under, and what it allows a gate to conclude (pure).

A :class:`Contention` is made from two :class:`~pytest_co2.backends.contention.Snapshot`
(the start and the end of a measurement) and stored with the measurement in the JSON. Its
fractions, each None when unknown (an old report, a kernel without the file):

- ``wait_share``: of the time this process's threads were runnable, the share they waited
  for a CPU (schedstat run delay / (run delay + CPU time)): the process's own view of its
  neighbours. Also ``main_wait_s``, the main thread's wait in seconds.
- ``cpu_pressure``: the share of the wall time during which some task of the machine (or
  cgroup) waited for a CPU (PSI ``some``); it counts this process's own threads too.
- ``steal``: the share of all CPU ticks the hypervisor gave to other guests.
- ``run_queue``: runnable tasks of the machine (``procs_running``), mean of start and end.

How a comparison uses it (:func:`contention_allowance`): each signal's gap between the two
runs is divided by its scale (:data:`SCALES`); the largest is the score S. S >= 1: the runs
are not compared (inconclusive, "the machine was contended (...)"); 0.75 <= S < 1: the
change's interval is widened by ``ALLOWANCE x S`` on each side and the line says why.
CPU pressure is recorded and named, but does not decide: it counts the process's own
threads (a two-thread test on two CPUs reads 80-100% with nothing else running).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ..backends.contention import Snapshot
from ..frozen import Frozen, record

#: How far apart two runs' contention may be before a comparison of them is refused, per
#: signal: this process's wait share (fraction), the run queue (extra runnable tasks per
#: CPU) and steal (fraction). The gap of each signal is divided by its scale; the largest
#: quotient is the score S. Measured on the project's 2-vCPU VM (tools/gate_check.py):
#: unchanged reruns beside other jobs scored up to 0.6 (a torch test's own two threads make
#: its wait share move 0.19-0.37 from run to run); with two co-tenant processes 1.2-2.3.
SCALES = {"wait": 0.3, "run_queue": 1.5, "steal": 0.1}
#: S at or above this: inconclusive, "the machine was contended (...)".
REFUSE_SCORE = 1.0
#: S at or above this (and below REFUSE_SCORE; unchanged quiet reruns stayed below it): the change's interval is widened on each
#: side by ALLOWANCE x S, and the line names the difference.
MENTION_SCORE = 0.75
ALLOWANCE = 0.1
#: The run-to-run spread (relative SD of a run's per-unit CPU work) per runnable task beyond
#: one per CPU (the machine's run queue, the larger of the two runs): a run beside other
#: jobs shares caches, memory bandwidth and SMT siblings with them, and its CPU seconds move
#: between runs in a way its own windows do not show. Measured on the project's 2-vCPU VM
#: beside other jobs (tools/gate_check.py, run queue 6-13): unchanged numpy reruns spread
#: with an SD of 0.07-0.09 of the CPU work, whatever their own wait share (0.08-0.85), and
#: a torch rerun read +21%. A compare allows ``RUN_QUEUE_CV x (run queue / CPUs - 1)`` as
#: the ``between_run_cv`` of :func:`.decisions.compare_decision` (±6% at 6 tasks on 2
#: CPUs); a budget that of its run. The process's own threads count in the run queue (a
#: two-thread torch test alone on 2 CPUs: about 3 tasks, ±1.5%), so no allowance is made
#: for the first task per CPU. The wait share was not chosen: a torch test's own threads
#: make it 0.2-0.4 on a quiet machine, and numpy reruns that waited 10% spread as widely as
#: those that waited 70%.
RUN_QUEUE_CV = 0.03
#: The line names that allowance from this size on (±2%).
MENTION_CV = 0.02


@record
class Contention(Frozen):
    """What the machine was doing while a measurement ran (fractions in [0, 1], or None)."""

    wall_s: float
    wait_share: float | None = None
    main_wait_s: float | None = None
    cpu_pressure: float | None = None
    steal: float | None = None
    run_queue: float | None = None
    cpus: int | None = None

    @property
    def main_wait_fraction(self) -> float | None:
        """The main thread's wait as a share of the wall time (None if unknown)."""
        if self.main_wait_s is None or not self.wall_s > 0:
            return None
        return min(max(self.main_wait_s / self.wall_s, 0.0), 1.0)

    def describe(self) -> str:
        """e.g. ``waited for a CPU 61% of its runnable time, CPU pressure 98%, steal 0%``."""
        parts = []
        if self.wait_share is not None:
            parts.append(f"waited for a CPU {_pct(self.wait_share)} of its runnable time")
        if self.cpu_pressure is not None:
            parts.append(f"CPU pressure {_pct(self.cpu_pressure)}")
        if self.steal is not None:
            parts.append(f"steal {_pct(self.steal)}")
        if self.run_queue is not None:
            of = f" on {self.cpus} CPUs" if self.cpus else ""
            parts.append(f"run queue {self.run_queue:.3g}{of}")
        return ", ".join(parts) or "contention unknown"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Contention:
        def opt(key: str) -> float | None:
            v = d.get(key)
            return None if v is None else float(v)

        return cls(
            wall_s=float(d.get("wall_s") or 0.0),
            wait_share=opt("wait_share"),
            main_wait_s=opt("main_wait_s"),
            cpu_pressure=opt("cpu_pressure"),
            steal=opt("steal"),
            run_queue=opt("run_queue"),
            cpus=None if d.get("cpus") is None else int(d["cpus"]),
        )


def _share(part: float, whole: float) -> float | None:
    return min(max(part / whole, 0.0), 1.0) if whole > 0 else None


def contention_between(start: Snapshot, end: Snapshot) -> Contention:
    """The :class:`Contention` from ``start`` to ``end`` (same process, same root)."""
    wall = end.wall_s - start.wall_s
    pressure = None
    if start.pressure_some_us is not None and end.pressure_some_us is not None:
        pressure = _share((end.pressure_some_us - start.pressure_some_us) / 1e6, wall)
    steal = None
    if None not in (start.steal_ticks, start.total_ticks, end.steal_ticks, end.total_ticks):
        steal = _share(
            end.steal_ticks - start.steal_ticks,  # type: ignore[operator]
            end.total_ticks - start.total_ticks,  # type: ignore[operator]
        )
    queue = None
    if start.procs_running is not None and end.procs_running is not None:
        queue = (start.procs_running + end.procs_running) / 2
    wait_share = main_wait = None
    if end.threads:
        # threads alive at both ends count their growth; threads born during the
        # measurement count from zero; threads that ended are lost (not seen at the end)
        cpu_ns = wait_ns = 0
        for tid, (run, wait) in end.threads.items():
            run0, wait0 = start.threads.get(tid, (0, 0))
            cpu_ns += max(run - run0, 0)
            wait_ns += max(wait - wait0, 0)
        wait_share = _share(wait_ns, cpu_ns + wait_ns)
        main = end.main_thread
        if main is not None and main in end.threads and main in start.threads:
            main_wait = max(end.threads[main][1] - start.threads[main][1], 0) / 1e9
    return Contention(
        wall_s=wall,
        wait_share=wait_share,
        main_wait_s=main_wait,
        cpu_pressure=pressure,
        steal=steal,
        run_queue=queue,
        cpus=end.cpus,
    )


@record
class Allowance(Frozen):
    """What the contention of two runs allows a comparison of them to conclude.

    ``score``: the contention difference S (see :data:`SCALES`; NaN when no signal is known
    on both sides); ``relative``: the widening of the change's interval on each side (a
    fraction of the ratio); ``refuse``: too differently contended to compare; ``text``:
    the reason, for the decision's line (None when the difference is small);
    ``between_run_cv``: the run-to-run spread to allow for the CPU wait of the runs
    (:func:`between_run_cv`).
    """

    score: float
    relative: float
    refuse: bool
    text: str | None
    between_run_cv: float = 0.0


NO_ALLOWANCE = Allowance(math.nan, 0.0, False, None)


def _gaps(base: Contention, cur: Contention) -> list[tuple[float, str]]:
    """(gap / scale, text) of each signal both runs have."""
    out: list[tuple[float, str]] = []
    if base.wait_share is not None and cur.wait_share is not None:
        out.append(
            (
                abs(cur.wait_share - base.wait_share) / SCALES["wait"],
                f"this process waited for a CPU {_pct(cur.wait_share)} of its runnable time vs "
                f"{_pct(base.wait_share)} in the baseline",
            )
        )
    if base.run_queue is not None and cur.run_queue is not None:
        cpus = cur.cpus or base.cpus
        if cpus:
            out.append(
                (
                    abs(cur.run_queue - base.run_queue) / cpus / SCALES["run_queue"],
                    f"run queue {cur.run_queue:.3g} vs {base.run_queue:.3g} in the baseline on "
                    f"{cpus} CPUs",
                )
            )
    if base.steal is not None and cur.steal is not None:
        out.append(
            (
                abs(cur.steal - base.steal) / SCALES["steal"],
                f"steal {_pct(cur.steal)} vs {_pct(base.steal)} in the baseline",
            )
        )
    return out


def between_run_cv(*runs: Contention | None) -> float:
    """The run-to-run spread to allow: :data:`RUN_QUEUE_CV` x the largest known run queue
    per CPU beyond one (0 where none is known: the windows are then all there is to go on)."""
    excess = [
        max(c.run_queue / c.cpus - 1, 0.0)
        for c in runs
        if c is not None and c.run_queue is not None and c.cpus
    ]
    return RUN_QUEUE_CV * max(excess) if excess else 0.0


def contention_allowance(base: Contention | None, current: Contention | None) -> Allowance:
    """The :class:`Allowance` between a baseline's contention and the current run's.

    Unknown on either side (an old baseline, no /proc): no widening or refusal, nothing to
    go on, but the between-run spread for the side that is known. The reason names the
    signal with the largest gap, and the CPU pressure of both runs where known (PSI counts
    this process's own threads too, so it does not decide).
    """
    cv = between_run_cv(base, current)
    cv_text = None
    if cv >= MENTION_CV:
        rq, cpus = max(
            ((c.run_queue, c.cpus) for c in (current, base) if c is not None and c.cpus),
            key=lambda q: -1.0 if q[0] is None else q[0] / q[1],
        )
        cv_text = (
            f"±{cv * 100:.3g}% allowed between runs for a run queue of {rq:.3g} on {cpus} CPUs"
        )
    if base is None or current is None:
        return NO_ALLOWANCE if cv == 0 else Allowance(math.nan, 0.0, False, cv_text, cv)
    gaps = _gaps(base, current)
    if not gaps:
        return NO_ALLOWANCE if cv == 0 else Allowance(math.nan, 0.0, False, cv_text, cv)
    score, why = max(gaps, key=lambda g: g[0])
    if score < MENTION_SCORE:
        return Allowance(score, 0.0, False, cv_text, cv)
    if base.cpu_pressure is not None and current.cpu_pressure is not None:
        why += f"; CPU pressure {_pct(current.cpu_pressure)} vs {_pct(base.cpu_pressure)}"
    refuse = score >= REFUSE_SCORE
    head = "the machine was contended" if refuse else "the runs' contention differed"
    text = f"{head} ({why})" + (f"; {cv_text}" if cv_text and not refuse else "")
    return Allowance(score, 0.0 if refuse else ALLOWANCE * score, refuse, text, cv)


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"
