"""How much a run's per-window figures drifted over its own course (pure, stdlib only).

A machine whose speed changes over seconds (a busy sibling hyperthread on the host, a
frequency change: things a guest's /proc does not show) moves a run's mean by more than its
windows' standard error says, and moves the next run's mean again. The windows, in the
order they were measured, show that drift: split into consecutive blocks, the block means
spread more than independent windows would make them.

:func:`drift_cv` is that extra spread, as a fraction of the mean: the square root of the
block means' relative variance less the part the windows' own scatter explains. It is
taken as the between-run spread of that run (a run's mean carries an error of that size
that its windows' standard error leaves out), so a compare of two runs on a drifting
machine widens its interval instead of calling the drift a regression.

Measured on the project's 2-vCPU VM with nothing else running in the guest: a fixed
pure-Python loop took about 1.16 ms or 2.0 ms of CPU time, switching in blocks of seconds
on each vCPU; a numpy step's block means over 0.7 s to 13 s spread by 9-13% while its
windows' standard error said 1-3%.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Blocks the windows are split into (at most), and the fewest windows per block.
MAX_BLOCKS = 6
MIN_PER_BLOCK = 3
#: Fewer blocks than this: the drift is unknown (None).
MIN_BLOCKS = 4
#: The block means' variance must exceed what the windows' scatter explains by this factor
#: before any drift is reported: the 95% point of chi-square / df for B - 1 degrees of
#: freedom (so that on a steady machine 19 runs in 20 report no drift at all).
CHANCE_RATIO = {3: 2.605, 4: 2.372, 5: 2.214}
#: Below this between-run spread (±1%) a compare neither allows nor mentions drift.
MENTION_CV = 0.01


def drift_cv(samples: Sequence[float]) -> float | None:
    """The relative between-block spread of ``samples`` (per-window figures in the order
    measured) beyond what their scatter explains; 0.0 when none shows, None when there
    are too few windows (fewer than ``MIN_BLOCKS x MIN_PER_BLOCK``) or the mean is not
    positive. The earliest windows that do not fill a block are left out."""
    blocks = min(MAX_BLOCKS, len(samples) // MIN_PER_BLOCK)
    if blocks < MIN_BLOCKS:
        return None
    import statistics  # here: the meter imports this module's constants at start-up

    size = len(samples) // blocks
    used = samples[len(samples) - blocks * size :]
    mean = statistics.fmean(used)
    if not mean > 0:
        return None
    rel = [x / mean for x in used]
    block_means = [statistics.fmean(rel[i * size : (i + 1) * size]) for i in range(blocks)]
    between = statistics.variance(block_means)
    explained = statistics.variance(rel) / size
    if between <= CHANCE_RATIO[blocks - 1] * explained:
        return 0.0
    return float((between - explained) ** 0.5)


def combined_cv(*drifts: float | None) -> float:
    """The between-run spread per run that two runs' drifts amount to: the root mean square
    of the known ones (0.0 when none is known), so that ``2 x cv^2`` is their sum of
    squares when both are known."""
    known = [d for d in drifts if d is not None]
    if not known:
        return 0.0
    return float((sum(d * d for d in known) / len(known)) ** 0.5)
