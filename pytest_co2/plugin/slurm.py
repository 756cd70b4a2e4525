"""``--co2-slurm-reconcile``: this run's measured energy beside SLURM's own figure.

With ``AcctGatherEnergyType`` configured (``acct_gather_energy``), ``sacct`` reports the
energy a job step consumed (``ConsumedEnergyRaw``, joules, the step's whole nodes for its
whole duration). One line in the summary puts ours beside it; they measure different things
(ours: the measured windows of this process's tests), so it is a check, not a correction.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)


def sacct_energy_j(env: Mapping[str, str], run: Runner = _run) -> tuple[float | None, str]:
    """(SLURM's energy of this job step in J, what it is) or (None, why there is none)."""
    job = env.get("SLURM_JOB_ID", "").strip()
    if not job:
        return None, "not in a SLURM job (SLURM_JOB_ID is not set)"
    step = env.get("SLURM_STEP_ID", "").strip()
    target = f"{job}.{step}" if step else job
    argv = ["sacct", "-j", target, "--noheader", "--parsable2", "--format=JobID,ConsumedEnergyRaw"]
    try:
        proc = run(argv)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"sacct could not run: {exc}"
    if proc.returncode != 0:
        return None, f"sacct exited {proc.returncode}: {' '.join(proc.stderr.split())[:200]}"
    for line in proc.stdout.splitlines():
        jobid, _, raw = line.strip().partition("|")
        if jobid == target:
            try:
                return float(
                    raw
                ), f"sacct ConsumedEnergyRaw of {'step' if step else 'job'} {target}"
            except ValueError:
                return None, f"sacct gave no energy for {target} ({raw!r}: acct_gather_energy off?)"
    return None, f"sacct has no line for {target}"


def reconcile_line(ours_j: float, env: Mapping[str, str], run: Runner = _run) -> str:
    theirs, what = sacct_energy_j(env, run)
    if theirs is None:
        return f"co2 slurm reconcile: ours {ours_j:.6g} J measured; no SLURM figure: {what}"
    ratio = f", ours/SLURM {ours_j / theirs:.3g}" if theirs > 0 else ""
    return (
        f"co2 slurm reconcile: ours {ours_j:.6g} J measured (this process's windows) beside "
        f"SLURM's {theirs:.6g} J ({what}; whole nodes, whole step){ratio}"
    )


class SlurmReconcile:
    """Registered with ``--co2-slurm-reconcile``: the line at the end of the summary."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        import os

        from ..reporting.model import Totals, all_results

        if self.state.is_worker:
            return
        ours = Totals.of(all_results(self.state.collector.records())).energy_j
        terminalreporter.write_line(reconcile_line(ours, os.environ))
