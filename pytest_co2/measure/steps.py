"""The ``steps()`` loop and its stopping rule: measure at least ``n`` steps, then until the
per-unit energy is precise enough or the time is up."""

from __future__ import annotations

from collections.abc import Iterator

from .window import Window


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
    per-unit energy (of the work part with ``stop_on_work``) is that tight or ``cap_s``
    measured seconds have passed; ``time_budget_s`` ends it early (after ``min_steps``)."""
    from .decisions import StopRule

    rule = (
        None
        if precision is None
        else StopRule(precision=float(precision), max_time_s=cap_s, method="trimmed")
    )  # the trimmed mean: one slow step (a GC pause, an interrupt) does not prolong it
    next_check_s = 0.0
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
                windows = w.grouped_unit_energies_j()
                on_work = stop_on_work and (work := w.grouped_work_unit_energies_j())
                if on_work:
                    windows = work
                spread = max(windows) - min(windows) if windows else 0.0
                if len(windows) >= 2 and spread <= 1e-9 * abs(windows[0]):
                    w.stop_reason = f"no spread: {len(windows)} identical windows"
                    break  # a simulated or constant device: exact, nothing to gain
                decision = rule.check(windows, w.measured_s, steps=done)
                if decision.stop:
                    w.stop_reason = decision.describe() + (
                        " (of the CPU work part, which a compare decides on)" if on_work else ""
                    )
                    break
        except GeneratorExit:  # a `break` in the caller, or an exception unwinding it
            w.left_early = True
            raise
