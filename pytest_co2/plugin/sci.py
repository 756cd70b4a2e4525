"""``--co2-sci``: the Software Carbon Intensity per unit beside each projection (summary
lines) and its boundary (JSON ``sci``), in the process that reports (single or controller).

The machine's resource share, unless ``--co2-embodied`` gives it: the CPUs this process may
use (affinity, cgroup quota) / the CPUs the kernel shows, split evenly between pytest-xdist
workers (each measures with its share, as the CPU estimate charges idle power). A GPU's share
is 1 per GPU a measurement read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..options import Settings
from . import xdist

if TYPE_CHECKING:
    from ..reporting.sci import SciSetup
    from .session import Co2Session

_NEED_SCI = ("embodied", "embodied_gpu", "market_intensity")


def check(s: Settings) -> None:
    """The SCI's inputs need ``--co2-sci`` (a usage error otherwise)."""
    if s.sci:
        return
    given = [name for name in _NEED_SCI if getattr(s, name) is not None]
    if given:
        raise pytest.UsageError(f"--co2-{given[0].replace('_', '-')} needs --co2-sci")


def setup_of(config: pytest.Config, s: Settings) -> SciSetup:
    """The run's M inputs, the machine's share found now."""
    from ..reporting.sci import SciSetup

    share, basis = 1.0, ""
    if s.embodied is not None and s.embodied.share is not None:
        share, basis = s.embodied.share, "given in --co2-embodied"
    elif s.embodied is not None:
        from ..backends.cpu_allowance import cpu_allowance
        from ..backends.cpuinfo import host_root

        allowance = cpu_allowance(host_root())
        workers = xdist.worker_count(config)
        share = allowance.cpus / workers / allowance.visible
        basis = f"{allowance.cpus:g} of {allowance.visible} CPUs this run may use"
        if workers > 1:
            basis += f", split between {workers} xdist workers"
    return SciSetup(
        machine=s.embodied,
        machine_share=share,
        share_basis=basis,
        gpu=s.embodied_gpu,
        market_g_per_kwh=s.market_intensity,
        subtract_idle=s.subtract_idle,
    )


class SciHooks:
    """Registered with ``--co2-sci``; an xdist worker adds nothing (the controller reports)."""

    def __init__(self, state: Co2Session) -> None:
        self.state = state
        self.setup = setup_of(state.config, state.settings)

    def pytest_co2_update_json(self, config: pytest.Config, report: dict[str, Any]) -> None:
        from ..reporting.sci import sci_block

        report["sci"] = sci_block(self.state.collector.records(), self.setup)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        records = state.collector.records()
        if state.is_worker or state.settings.report == "off" or not records:
            return
        from ..fmt import printable, wrap
        from ..reporting.sci import sci_lines
        from .terminal import SUMMARY_ROWS, terminal_width

        width = terminal_width(terminalreporter)
        rows = None if state.settings.report == "full" else SUMMARY_ROWS
        for line in sci_lines(records, self.setup, rows):
            for part in wrap(line, width, indent="co2:   "):
                terminalreporter.write_line(printable(part))
