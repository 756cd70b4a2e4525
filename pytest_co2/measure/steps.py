"""The ``steps()`` loop and its stopping rule: measure at least ``n`` steps, then until the
per-unit energy is precise enough or the time is up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .drift import MIN_BLOCKS, MIN_PER_BLOCK
from .window import Window

if TYPE_CHECKING:
    from .stopping import StopRule

#: A run that saves or compares a baseline (``stop_on_work``) goes on measuring, past the
#: precision target, until its measured steps took this long and made enough windows to
#: show the machine's drift (:mod:`.drift`): a compare of two short runs on a drifting
#: machine cannot tell the drift from a change (time and step caps still end it).
GATE_MIN_S = 2.0


def steps_loop(
    w: Window,
    n: int,
    time_budget_s: float | None,
    min_steps: int,
    precision: float | None,
    cap_s: float | None,
    stop_on_work: bool = False,
) -> Iterator[int]:
    """The generator behind ``Meter.steps``: yields step indices into window ``w`` until
    ``n`` steps are measured and, with a ``precision``, until the 95% interval of the
    per-unit energy (of the work part with ``stop_on_work``, and then for at least
    :data:`GATE_MIN_S` and enough windows to see drift) is that tight or ``cap_s`` measured
    seconds have passed; ``time_budget_s`` ends it early (after ``min_steps``)."""
    from .stopping import StopRule

    rule = (
        None
        if precision is None
        else StopRule(precision=float(precision), max_time_s=cap_s, method="trimmed")
    )  # the trimmed mean: one slow step (a GC pause, an interrupt) does not prolong it
    next_check_s = 0.0
    held = False
    with w:
        try:
            i = 0
            while True:
                if rule is None and i >= w.warmup + n:
                    break
                yield i
                i += 1
                w.step()
                done = w.steps_done
                if done < n:
                    if (
                        time_budget_s is not None
                        and done >= min_steps
                        and w.measured_s >= time_budget_s
                    ):
                        break
                    continue
                if rule is None or w.failure is not None or not done:
                    if rule is not None:
                        break
                    continue
                if w.measured_s < next_check_s and done > n:
                    continue  # check about 20 times a second, not at every fast step
                next_check_s = w.measured_s + 0.05
                verdict = _precision_check(w, rule, done, stop_on_work, held)
                if verdict is None:
                    held = True  # precise enough, but too short to show drift
                elif verdict:
                    break
        except GeneratorExit:  # a `break` in the caller, or an exception unwinding it
            w.left_early = True
            raise


def _precision_check(
    w: Window, rule: StopRule, done: int, stop_on_work: bool, held: bool
) -> bool | None:
    """After ``done`` steps: True to stop (``w.stop_reason`` set), False to go on, None when
    precise enough but a gating run too short to show drift (:data:`GATE_MIN_S`)."""
    windows = w.grouped_unit_energies_j()
    on_work = stop_on_work and (work := w.grouped_work_unit_energies_j())
    if on_work:
        windows = work
    spread = max(windows) - min(windows) if windows else 0.0
    if len(windows) >= 2 and spread <= 1e-9 * abs(windows[0]):
        w.stop_reason = f"no spread: {len(windows)} identical windows"
        return True  # a simulated or constant device: exact, nothing to gain
    decision = rule.check(windows, w.measured_s, steps=done)
    if not decision.stop:
        return False
    short = w.measured_s < GATE_MIN_S or len(windows) < MIN_BLOCKS * MIN_PER_BLOCK
    if decision.reason == "precision" and stop_on_work and short:
        return None
    w.stop_reason = decision.describe() + (
        " (of the CPU work part, which a compare decides on)" if on_work else ""
    )
    if held and decision.reason == "precision":
        w.stop_reason += (
            f"; measured for at least {GATE_MIN_S:g} s and {MIN_BLOCKS * MIN_PER_BLOCK} "
            "windows, to show the machine's drift"
        )
    return True
