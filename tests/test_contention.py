"""Contention: /proc readers on fake trees, the per-measurement record, and what a gate
(compare, budget) concludes from it. Exact numbers throughout: fake trees and fake clocks."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from pytest_co2.backends.base import Device, Method
from pytest_co2.backends.contention import Snapshot, read_snapshot
from pytest_co2.backends.estimate import EstimateBackend
from pytest_co2.carbon.emission import Emission
from pytest_co2.measure.assemble import work_part
from pytest_co2.measure.contention import (
    NO_ALLOWANCE,
    Contention,
    contention_allowance,
    contention_between,
)
from pytest_co2.measure.decisions import (
    INCONCLUSIVE,
    NO_REGRESSION,
    REGRESSION,
    CompareDecision,
    compare_decision,
)
from pytest_co2.measure.meter import Meter
from pytest_co2.measure.records import DeviceEnergy, Measurement, Projection
from pytest_co2.measure.stats import Stats
from pytest_co2.reporting.budget import contended_share, evaluate
from pytest_co2.reporting.delta import WORK_QUANTITY, Delta, FailSpec
from pytest_co2.reporting.model import Budget, Result

STAT = """cpu  100 0 50 800 10 0 0 40 0 0
cpu0 50 0 25 400 5 0 0 20 0 0
cpu1 50 0 25 400 5 0 0 20 0 0
intr 1 2 3
procs_running 3
procs_blocked 0
"""


def fake_proc(root: Path, *, pressure_us: int, stat: str, threads: dict[str, str]) -> Path:
    (root / "proc" / "pressure").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "pressure" / "cpu").write_text(
        f"some avg10=47.00 avg60=30.00 avg300=10.00 total={pressure_us}\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    (root / "proc" / "stat").write_text(stat)
    for tid, text in threads.items():
        d = root / "proc" / "42" / "task" / tid
        d.mkdir(parents=True, exist_ok=True)
        (d / "schedstat").write_text(text)
    return root


def test_snapshot_reads_pressure_stat_and_threads(tmp_path: Path) -> None:
    root = fake_proc(
        tmp_path, pressure_us=6167834, stat=STAT, threads={"42": "909909 77675 1\n", "43": "5 6 7"}
    )
    s = read_snapshot(12.5, root, pid=42)
    assert s == Snapshot(
        wall_s=12.5,
        pressure_some_us=6167834,
        steal_ticks=40,
        total_ticks=1000,
        procs_running=3,
        cpus=2,
        threads={"42": (909909, 77675), "43": (5, 6)},
        main_thread="42",
    )


def test_snapshot_of_a_machine_without_the_files_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "proc" / "pressure").mkdir(parents=True)
    (tmp_path / "proc" / "pressure" / "cpu").write_text("full avg10=0.00 total=12\n")  # no some
    s = read_snapshot(1.0, tmp_path, pid=7)
    assert s == Snapshot(wall_s=1.0, main_thread="7")
    c = contention_between(s, Snapshot(wall_s=3.0, main_thread="7"))
    assert c == Contention(wall_s=2.0)  # every signal None: unknown, never "quiet"
    assert c.describe() == "contention unknown"
    assert c.main_wait_fraction is None


def test_contention_between_two_snapshots() -> None:
    start = Snapshot(
        wall_s=10.0, pressure_some_us=1_000_000, steal_ticks=40, total_ticks=1000,
        procs_running=3, cpus=2,
        threads={"42": (1_000_000_000, 0), "44": (9, 9)}, main_thread="42",
    )  # fmt: skip
    end = Snapshot(
        wall_s=12.0, pressure_some_us=2_000_000, steal_ticks=50, total_ticks=1200,
        procs_running=6, cpus=2,
        # 42 ran 1 s more and waited 0.5 s; 43 was born (0.5 s on a CPU, 0.5 s waiting);
        # 44 ended: not counted
        threads={"42": (2_000_000_000, 500_000_000), "43": (500_000_000, 500_000_000)},
        main_thread="42",
    )  # fmt: skip
    c = contention_between(start, end)
    assert c == Contention(
        wall_s=2.0, wait_share=0.4, main_wait_s=0.5, cpu_pressure=0.5, steal=0.05,
        run_queue=4.5, cpus=2,
    )  # fmt: skip
    assert c.main_wait_fraction == 0.25
    assert c.describe() == (
        "waited for a CPU 40% of its runnable time, CPU pressure 50%, steal 5%, "
        "run queue 4.5 on 2 CPUs"
    )
    assert Contention.from_dict(c.to_dict()) == c


QUIET = Contention(wall_s=1.0, wait_share=0.05, cpu_pressure=0.5, steal=0.0, run_queue=3.0, cpus=2)


@pytest.mark.parametrize(
    "current, score, relative, refuse, text",
    [
        # wait 0.2 above the baseline: 0.2 / 0.3 = 0.67 < 0.75: nothing said
        (Contention(1.0, wait_share=0.25, run_queue=3.0, cpus=2), 0.2 / 0.3, 0.0, False, None),
        # run queue 2.4 more tasks on 2 CPUs: 1.2 per CPU / 1.5 = 0.8: widened by 8%
        (
            Contention(1.0, wait_share=0.05, cpu_pressure=0.9, run_queue=5.4, cpus=2),
            0.8,
            0.08,
            False,
            "the runs' contention differed (run queue 5.4 vs 3 in the baseline on 2 CPUs; "
            "CPU pressure 90% vs 50%)",
        ),
        # wait 0.55 vs 0.05: 0.5 / 0.3 = 1.67: not compared
        (
            Contention(1.0, wait_share=0.55, cpu_pressure=1.0, steal=0.0, run_queue=3.0, cpus=2),
            0.5 / 0.3,
            0.0,
            True,
            "the machine was contended (this process waited for a CPU 55% of its runnable "
            "time vs 5% in the baseline; CPU pressure 100% vs 50%)",
        ),
        # steal 12% vs 0%: 1.2: not compared
        (Contention(1.0, steal=0.12), 1.2, 0.0, True,
         "the machine was contended (steal 12% vs 0% in the baseline)"),
    ],
)  # fmt: skip
def test_allowance_from_two_runs(
    current: Contention, score: float, relative: float, refuse: bool, text: str | None
) -> None:
    a = contention_allowance(QUIET, current)
    assert a.score == pytest.approx(score, abs=1e-12)
    assert a.relative == pytest.approx(relative, abs=1e-12)
    assert (a.refuse, a.text) == (refuse, text)


def test_no_allowance_without_a_common_signal() -> None:
    assert contention_allowance(None, QUIET) is NO_ALLOWANCE  # a baseline from before
    assert contention_allowance(QUIET, None) is NO_ALLOWANCE
    only_psi = Contention(1.0, cpu_pressure=1.0)  # PSI alone does not decide
    assert contention_allowance(QUIET, only_psi) is NO_ALLOWANCE


BASE = [10.0, 10.2, 9.8, 10.1, 9.9]
UP = [13.0, 13.2, 12.8, 13.1, 12.9]  # +30%, a tight interval


def test_refuse_makes_a_clear_regression_inconclusive_with_the_reason() -> None:
    plain = compare_decision(BASE, UP, 0.10)
    assert plain.outcome == REGRESSION
    d = compare_decision(BASE, UP, 0.10, refuse=True, contention="the machine was contended (x)")
    assert (d.outcome, d.low, d.high) == (INCONCLUSIVE, plain.low, plain.high)
    assert d.needed_precision is None
    assert d.describe().endswith("vs 10%; the machine was contended (x)")
    point = compare_decision(10.0, 13.0, 0.10, refuse=True)  # no samples: point compare
    assert point.outcome == INCONCLUSIVE


def test_allowance_widens_the_interval_before_the_threshold() -> None:
    plain = compare_decision(BASE, UP, 0.10)
    # (1 + low) / (1 + a) - 1 falls below 10% once a > (1 + low) / 1.1 - 1
    a = (1 + plain.low) / 1.10 - 1 + 1e-3
    d = compare_decision(BASE, UP, 0.10, allowance=a, contention="the runs' contention differed")
    assert d.outcome == INCONCLUSIVE
    assert "widened to" in d.describe() and "for contention" in d.describe()
    d2 = compare_decision(BASE, UP, 0.10, allowance=a - 2e-3, quantity=WORK_QUANTITY)
    assert d2.outcome == REGRESSION
    assert f"({WORK_QUANTITY})" in d2.describe()
    with pytest.raises(
        ValueError, match=re.escape("invalid allowance -0.1: expected a fraction >= 0")
    ):
        compare_decision(BASE, UP, 0.10, allowance=-0.1)


def test_an_old_decision_dict_loads_with_defaults() -> None:
    d = compare_decision(BASE, BASE, 0.10).to_dict()
    for key in ("quantity", "allowance", "contention"):
        d.pop(key)
    old = CompareDecision.from_dict(d)
    assert (old.outcome, old.quantity, old.allowance, old.contention) == (
        NO_REGRESSION, "energy", 0.0, None,
    )  # fmt: skip


# -- the work part -----------------------------------------------------------------------------


def test_work_part_leaves_out_the_wall_time_charge() -> None:
    totals = [0.0, 3.0, 8.0]  # J, as read
    times = [0.0, 1.0, 3.0]
    per_unit, total = work_part(totals, times, [1, 2], [(0, 1), (1, 2)], 0.5)
    assert per_unit == (2.5, 2.0)  # (3 - 0.5) / 1, (5 - 1) / 2
    assert total == 6.5
    assert work_part(totals, times, [1, 2], [(0, 2)], 0.0) == ((), None)  # a counter


class Fake:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_meter_records_work_and_contention_of_an_estimate(tmp_path: Path) -> None:
    cpu, clock = Fake(100.0), Fake(1000.0)
    backend = EstimateBackend(
        watts_per_thread=(0.5, 2.5), cpus_held=2.0, process_times=cpu, clock=clock,
        rss_bytes=lambda: 0, root=tmp_path,
    )  # fmt: skip
    snaps = iter(
        [
            Snapshot(1000.0, steal_ticks=0, total_ticks=100, threads={"1": (0, 0)},
                     main_thread="1"),
            Snapshot(1003.0, steal_ticks=5, total_ticks=200, threads={"1": (2_000_000_000,
                     1_000_000_000)}, main_thread="1"),
        ]
    )  # fmt: skip
    meter = Meter(backend, clock=clock, sync=lambda: None, contention=lambda t: next(snaps))
    with meter.measure("train") as m:
        for cpu_s, wall_s in ((1.0, 1.0), (1.0, 2.0)):  # the second step waited 1 s more
            cpu.t += cpu_s
            clock.t += wall_s
            m.step()
    rec = m.measurement
    assert rec is not None
    # full: 2 W/thread x CPU s + 1 W idle held x wall s: 3 J and 4 J; work: 2 J and 2 J
    assert rec.unit_energies_j == (3.0, 4.0)
    assert rec.work_unit_energies_j == (2.0, 2.0)
    assert rec.work_energy_j == 4.0
    assert rec.work_basis == (
        "CPU seconds x 2.00 W dynamic per thread; the idle share (1.00 W x wall time) left out"
    )
    c = rec.contention
    assert c is not None
    assert (c.wall_s, c.wait_share, c.main_wait_s, c.steal) == (3.0, 1 / 3, 1.0, 0.05)
    assert (c.cpu_pressure, c.run_queue) == (None, None)
    back = Measurement.from_dict(rec.to_dict())
    assert back == rec


def test_a_window_start_reuses_a_recent_snapshot_and_a_short_window_records_none(
    tmp_path: Path,
) -> None:
    """The /proc counters cost about 0.2 ms a read: under --co2-all every trivial test would
    pay two. A start within CONTENTION_REUSE_S of the last read reuses it; a window shorter
    than that records no contention (unknown), never a made-up one."""
    from pytest_co2.measure.window import CONTENTION_REUSE_S

    cpu, clock = Fake(0.0), Fake(50.0)
    backend = EstimateBackend(
        watts_per_thread=(0.5, 2.5), cpus_held=2.0, process_times=cpu, clock=clock,
        rss_bytes=lambda: 0, root=tmp_path,
    )  # fmt: skip
    reads: list[float] = []

    def reader(t: float) -> Snapshot:
        reads.append(t)
        return Snapshot(t, steal_ticks=int(t * 100), total_ticks=int(t * 1000))

    def window(length_s: float) -> Measurement | None:
        meter = Meter(backend, clock=clock, sync=lambda: None, contention=reader)
        with meter.measure("w") as m:
            clock.t += length_s
            m.step()
        return m.measurement

    short = window(0.001)  # reads at 50.0; too short for an end read
    assert reads == [50.0] and short is not None and short.contention is None
    clock.t += CONTENTION_REUSE_S / 2
    long = window(1.0)  # the start reuses the read at 50.0, the end reads afresh
    assert reads == [50.0, 50.0 + 0.001 + CONTENTION_REUSE_S / 2 + 1.0]
    assert long is not None and long.contention is not None
    assert long.contention.wall_s == pytest.approx(1.0 + 0.001 + CONTENTION_REUSE_S / 2)
    clock.t += CONTENTION_REUSE_S  # the last read is now too old to reuse
    window(1.0)
    assert len(reads) == 4


def test_a_measurement_saved_before_has_no_work_and_unknown_contention() -> None:
    d = _measurement().to_dict()
    assert "contention" not in d and "work_energy_j" not in d  # counters: nothing added
    m = Measurement.from_dict(d)
    assert (m.work_unit_energies_j, m.work_energy_j, m.work_basis, m.contention) == (
        (), None, "", None,
    )  # fmt: skip


def _measurement(
    energy_j: float = 3.0,
    work_j: float | None = None,
    work: tuple[float, ...] = (),
    unit_energies: tuple[float, ...] = (1.0, 1.0, 1.0),
    contention: Contention | None = None,
) -> Measurement:
    dev = DeviceEnergy(Device("cpu:process", "cpu", "est", Method.ESTIMATED), energy_j)
    return Measurement(
        name="m", unit="iteration", steps=3, units=3.0, warmup=0, duration_s=1.0,
        energy_j=energy_j, energy_per_unit_j=Stats(energy_j / 3, 0.0, 0.0, 3),
        unit_energies_j=unit_energies, method="estimated", devices=(dev,),
        backend="estimate", work_energy_j=work_j, work_unit_energies_j=work,
        contention=contention,
    )  # fmt: skip


# -- the compare: what it decides on ------------------------------------------------------------


def _delta(cur: Measurement, base: Measurement) -> Delta:
    return Delta(
        "t", "m", cur.energy_j, 0.0, base.energy_j, 0.0,
        samples=cur.unit_energies_j, base_samples=base.unit_energies_j,
        work_samples=cur.work_unit_energies_j, base_work_samples=base.work_unit_energies_j,
        contention=cur.contention, base_contention=base.contention,
    )  # fmt: skip


def test_compare_decides_on_the_work_part_when_both_runs_have_it() -> None:
    # the full figure doubled (the run waited for a CPU twice as long); the work did not
    base = _measurement(work=(1.0, 1.02, 0.98, 1.01, 0.99), unit_energies=(2.0, 2.04, 1.96, 2.02, 1.98))  # fmt: skip
    cur = _measurement(work=(1.0, 1.02, 0.98, 1.01, 0.99), unit_energies=(4.0, 4.08, 3.92, 4.04, 3.96))  # fmt: skip
    d = _delta(cur, base).decide(FailSpec("energy", 10.0))
    assert d is not None
    assert (d.outcome, d.change, d.quantity) == (NO_REGRESSION, 0.0, WORK_QUANTITY)
    old_base = _measurement(unit_energies=base.unit_energies_j)  # saved before: full only
    d_old = _delta(cur, old_base).decide(FailSpec("energy", 10.0))
    assert d_old is not None
    assert (d_old.outcome, d_old.quantity) == (REGRESSION, "energy")
    assert d_old.change == pytest.approx(1.0)


def test_compare_under_co_tenants_is_inconclusive_with_the_reason() -> None:
    quiet = Contention(1.0, wait_share=0.02, cpu_pressure=0.5, run_queue=3.0, cpus=2)
    busy = Contention(1.0, wait_share=0.5, cpu_pressure=1.0, run_queue=7.0, cpus=2)
    xs = (1.0, 1.02, 0.98, 1.01, 0.99)
    base = _measurement(work=xs, unit_energies=xs, contention=quiet)
    cur = _measurement(work=tuple(1.3 * x for x in xs), unit_energies=xs, contention=busy)
    d = _delta(cur, base).decide(FailSpec("energy", 10.0))
    assert d is not None and d.outcome == INCONCLUSIVE
    assert d.contention == (
        "the machine was contended (this process waited for a CPU 50% of its runnable time vs "
        "2% in the baseline; CPU pressure 100% vs 50%)"
    )
    same = _measurement(work=tuple(1.3 * x for x in xs), unit_energies=xs, contention=quiet)
    assert _delta(same, base).decide(FailSpec("energy", 10.0)).outcome == REGRESSION  # type: ignore[union-attr]


# -- budgets ------------------------------------------------------------------------------------


def _result(m: Measurement, kg: float, ci_kg: float) -> Result:
    p = Projection(n=1000, unit="iteration", energy_kwh=kg, std_kwh=0.0, ci95_kwh=ci_kg)
    e = Emission("SE", None, 7.0, "test", 1.0, kg, kg, kg, 0.0, ci_kg)
    return Result(m, p, e)


def test_budget_over_only_through_the_waiting_idle_charge_is_too_close() -> None:
    # 10 J, 4 J of it work: 6 J idle share; the main thread waited half the wall time:
    # 3 J (30%) of the figure was charged while waiting
    waited = Contention(1.0, wait_share=0.5, main_wait_s=0.5, cpu_pressure=1.0)
    m = _measurement(energy_j=10.0, work_j=4.0, work=(1.0,), contention=waited)
    r = _result(m, kg=1.2, ci_kg=0.05)
    assert contended_share([r]) == pytest.approx(0.3)
    v = evaluate(Budget(kg=1.0), [r])
    assert (v.outcome, v.passed) == ("close", True)
    assert v.message is not None and "only through the idle power charged while" in v.message
    assert "0.840 without it" in v.message
    # the same figure measured without waiting: a confident over
    calm = _measurement(energy_j=10.0, work_j=4.0, work=(1.0,), contention=Contention(1.0, main_wait_s=0.0))  # fmt: skip
    assert evaluate(Budget(kg=1.0), [_result(calm, 1.2, 0.05)]).outcome == "over"
    # far over even without the waiting charge: over
    assert evaluate(Budget(kg=0.5), [r]).outcome == "over"
    # a counter (no work part): unchanged rule
    counter = _measurement(energy_j=10.0, contention=waited)
    assert contended_share([_result(counter, 1.2, 0.05)]) == 0.0
    assert math.isclose(contended_share([]), 0.0)
