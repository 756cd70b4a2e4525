"""The update period of GPU energy counters, measured at open from the probe's own reads.

The probe reads the counters in a loop (a read every ``step_s``, nominally 1 ms). A change
seen at a read happened somewhere between that read and the one before, so the time
between two changes is known only to within the gaps of the reads around them: from the
changes seen at reads ``i`` and ``j`` (none in between), the period lies in
``[t[j-1] - t[i], t[j] - t[i-1]]``. On a busy machine the loop runs late (reads 80 ms
apart instead of 1 ms), and then that range is wide: such pairs are not used. The period is

- ``measured``: the median of the pairs located to within :data:`PRECISE` of their value;
- ``at most``: every read saw a change, so the period is at most about the read gap; the
  read gap is not taken as the period: the driver's documented period is used, capped at
  the bound the reads prove (``c`` changes in distinct refreshes over a span ``T`` of reads
  need a period of at most ``T / (c - 1)``);
- ``too sparse``: the reads were too far apart to locate two changes: the documented period;
- ``unchanged``: the counter did not change during the probe: the documented period.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

from ...frozen import Frozen, record

#: A pair of changes is used where its period is located to within this fraction of it.
PRECISE = 0.25
#: The probe stops once every counter has this many precisely located pairs.
PAIRS = 3

MEASURED, AT_MOST, SPARSE, UNCHANGED = "measured", "at most", "too sparse", "unchanged"


@record
class PeriodProbe(Frozen):
    """What the probe found for one counter: ``kind`` (see the module), the period it
    measured (``measured_s``, None otherwise), and the facts behind it."""

    kind: str
    measured_s: float | None
    reads: int  # reads of this counter
    changes: int  # reads that saw it change
    pairs: int  # pairs of changes located precisely enough to use
    read_gap_s: float  # the median gap between the probe's reads
    bound_s: float  # the longest period the changes seen allow (inf: fewer than 2)

    def period_s(self, assumed_s: float) -> float:
        """The period to use: measured, else ``assumed_s`` (capped in the ``at most`` case)."""
        if self.measured_s is not None:
            return self.measured_s
        if self.kind == AT_MOST:
            return min(assumed_s, self.bound_s)
        return assumed_s

    def describe(self, assumed_s: float) -> str:
        """How the period was obtained, for the device's note (and so the JSON)."""
        ms = 1e3
        gap = f"{self.read_gap_s * ms:.3g} ms"
        if self.measured_s is not None:
            return (
                f"updates every {self.measured_s * ms:.3g} ms (measured at open: the median of "
                f"{self.pairs} intervals between counter changes, each located by reads a "
                f"median {gap} apart)"
            )
        used = self.period_s(assumed_s)
        if self.kind == AT_MOST:
            capped = (
                ""
                if used == assumed_s
                else f", capped at the {self.bound_s * ms:.3g} ms the reads prove"
            )
            return (
                f"period taken as {used * ms:.3g} ms (the documented {assumed_s * ms:g} ms"
                f"{capped}): at open every one of {self.changes} reads, a median {gap} apart "
                "(the probe ran late), saw the counter change, so its period is at most about "
                "that gap; the read gap is not taken as the period"
            )
        if self.kind == SPARSE:
            return (
                f"assumed to update every {assumed_s * ms:g} ms (the documented period): at "
                f"open the probe's reads, a median {gap} apart (it ran late), were too sparse "
                f"to locate the counter's {self.changes} changes"
            )
        return (
            f"assumed to update every {assumed_s * ms:g} ms (the documented period): the "
            f"counter did not change in {self.reads} reads at open"
        )


def probe_periods(
    read: Callable[[], Sequence[int | None]],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    max_s: float,
    step_s: float = 0.001,
) -> list[PeriodProbe]:
    """Read the counters every ``step_s`` for at most ``max_s`` (stops once each has
    :data:`PAIRS` precise pairs) and judge each one's period (see the module)."""
    t0 = clock()
    last = list(read())
    n = len(last)
    t_prev = [t0 if v is not None else None for v in last]  # the last read of each counter
    # per counter, the reads around its last change: (the read before, the read that saw it)
    changed_at: list[tuple[float, float] | None] = [None] * n
    ranges: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    gaps: list[list[float]] = [[] for _ in range(n)]
    changes = [0] * n
    reads = [0] * n
    precise = [0] * n
    while clock() - t0 < max_s and not all(p >= PAIRS for p in precise):
        sleep(step_s)
        now, values = clock(), read()
        for k, v in enumerate(values):
            before = t_prev[k]
            if v is None or before is None or last[k] is None:
                if v is None:  # an unreadable moment: the chain of changes starts again
                    changed_at[k] = None
                t_prev[k] = None if v is None else now
                last[k] = v
                continue
            reads[k] += 1
            gaps[k].append(now - before)
            if v != last[k]:
                changes[k] += 1
                prev = changed_at[k]
                if prev is not None:
                    lo, hi = before - prev[1], now - prev[0]
                    ranges[k].append((lo, hi))
                    if _is_precise(lo, hi):
                        precise[k] += 1
                changed_at[k] = (before, now)
            t_prev[k], last[k] = now, v
    return [_judge(ranges[k], gaps[k], changes[k], reads[k]) for k in range(n)]


def _is_precise(lo: float, hi: float) -> bool:
    mid = (lo + hi) / 2
    return mid > 0 and (hi - lo) / 2 <= PRECISE * mid


def _judge(
    ranges: list[tuple[float, float]], gaps: list[float], changes: int, reads: int
) -> PeriodProbe:
    good = [(lo + hi) / 2 for lo, hi in ranges if _is_precise(lo, hi)]
    gap = statistics.median(gaps) if gaps else 0.0
    bound = sum(gaps) / (changes - 1) if changes >= 2 else math.inf
    if len(good) >= 2:
        return PeriodProbe(MEASURED, statistics.median(good), reads, changes, len(good), gap, bound)
    if changes == 0:
        kind = UNCHANGED
    elif changes == reads and reads >= 2:
        kind = AT_MOST
    else:
        kind = SPARSE
    return PeriodProbe(kind, None, reads, changes, len(good), gap, bound)


def period_facts(found: PeriodProbe | None, period_s: float) -> dict[str, object]:
    """For the JSON: the period used and ``how`` (a probe kind, or ``assumed``: not probed),
    with the probe's reads, changes and median read gap."""
    if found is None:
        return {"period_s": period_s, "how": "assumed"}
    return {
        "period_s": period_s,
        "how": found.kind,
        "probe_reads": found.reads,
        "probe_changes": found.changes,
        "probe_read_gap_s": found.read_gap_s,
    }
