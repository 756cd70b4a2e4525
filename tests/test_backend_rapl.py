"""RAPL backend against a fake powercap tree under tmp_path."""

from __future__ import annotations

import errno
import itertools
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from warned import backend_messages

from pytest_co2.backends import BackendError, BackendUnavailable, BackendWarning, Method, rapl
from pytest_co2.backends.rapl import (
    MAX_POLL_INTERVAL_S,
    RaplBackend,
    default_poll_interval_s,
    discover_domains,
)

REAL_RANGE_UJ = 262_143_328_850  # a typical max_energy_range_uj


def add_domain(
    root: Path, entry: str, name: str, energy_uj: int = 0, max_uj: int | None = REAL_RANGE_UJ
) -> Path:
    d = root / entry
    d.mkdir(parents=True)
    (d / "name").write_text(f"{name}\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_uj(domain: Path, value: int) -> None:
    (domain / "energy_uj").write_text(f"{value}\n")


# How long a test waits for the poller thread to see something: the loop ends as soon as it
# has (a few ms); the limit is for a runner whose CPUs other jobs keep busy, not a wait.
POLLER_PATIENCE_S = 60.0


def wait_for(seen: Callable[[], bool], what: str) -> None:
    """Until ``seen()``: the poller thread has caught up, however long a busy runner took."""
    deadline = time.monotonic() + POLLER_PATIENCE_S
    while not seen():
        assert time.monotonic() < deadline, f"the poller never saw {what}"
        time.sleep(0.001)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """Two packages; package 0 with core and dram sub-domains; decoys that must not count."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type directory
    return {
        "root": root,
        "pkg0": add_domain(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": add_domain(root, "intel-rapl:0:0", "core", 500_000),
        "dram0": add_domain(root, "intel-rapl:0:1", "dram", 200_000),
        "pkg1": add_domain(root, "intel-rapl:1", "package-1", 3_000_000),
        "psys": add_domain(root, "intel-rapl:2", "psys", 9_000_000),
        "mmio": add_domain(root, "intel-rapl-mmio:0", "package-0", 1_000_000),
    }


def test_counts_each_package_once_plus_dram_never_core(tree: dict[str, Path]) -> None:
    with RaplBackend(tree["root"]) as backend:
        assert [d.id for d in backend.devices] == ["cpu:package-0", "cpu:package-1", "dram:0"]
        assert [d.kind for d in backend.devices] == ["cpu", "cpu", "dram"]
        assert [d.label for d in backend.devices] == [
            "RAPL package-0",
            "RAPL package-1",
            "RAPL dram (package-0)",
        ]
        assert all(d.method is Method.COUNTER and d.shared for d in backend.devices)
        assert backend.update_period_s == pytest.approx(0.001)
        assert backend.method == "counter"
        assert list(backend.read_j()) == [0.0, 0.0, 0.0]
        set_uj(tree["pkg0"], 1_000_000 + 5_000_000)
        set_uj(tree["core0"], 500_000 + 3_000_000)  # inside package-0: must not add
        set_uj(tree["dram0"], 200_000 + 2_000_000)
        set_uj(tree["pkg1"], 3_000_000 + 7_000_000)
        set_uj(tree["psys"], 9_000_000 + 100_000_000)  # contains the packages: skipped
        set_uj(tree["mmio"], 1_000_000 + 5_000_000)  # a second view of package-0: skipped
        assert list(backend.read_j()) == [5.0, 7.0, 2.0]


def test_discovery_order_and_ranges(tree: dict[str, Path]) -> None:
    domains = discover_domains(tree["root"])
    assert [(d.name, d.kind, d.package) for d in domains] == [
        ("package-0", "cpu", 0),
        ("package-1", "cpu", 1),
        ("dram", "dram", 0),
    ]
    assert all(d.max_range_uj == REAL_RANGE_UJ for d in domains)


@pytest.mark.parametrize("make", ["missing", "empty", "decoys_only"])
def test_no_domains_is_unavailable(tmp_path: Path, make: str) -> None:
    root = tmp_path / "powercap"
    if make != "missing":
        root.mkdir()
    if make == "decoys_only":
        add_domain(root, "intel-rapl-mmio:0", "package-0")
        add_domain(root, "intel-rapl:0", "psys")
    with pytest.raises(BackendUnavailable, match=f"no RAPL powercap domains under {root}"):
        RaplBackend(root)


def test_wraparound_between_reads_is_exact(tmp_path: Path) -> None:
    """Max range 3 J; 10 J consumed in 0.5 J increments from 1 J: the counter wraps 3 times."""
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        raw, wraps = 1_000_000, 0
        for _ in range(20):
            new = (raw + 500_000) % 3_000_000
            wraps += new < raw
            raw = new
            set_uj(dom, raw)
            backend.read_j()
        assert wraps == 3
        assert list(backend.read_j()) == [10.0]


def test_poller_counts_several_wraps_without_reads(tmp_path: Path) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=0.002) as backend:
        assert backend.poll_interval_s == 0.002
        raw = 1_000_000
        for _ in range(20):
            raw = (raw + 500_000) % 3_000_000
            set_uj(dom, raw)
            # no read_j in the window: only the poller sees each step (and each wrap)
            wait_for(lambda: backend._last_uj[0] == raw, f"{raw} uJ")  # noqa: B023
        (energy_j,) = backend.read_j()
    assert energy_j == pytest.approx(10.0, rel=1e-12)


def test_without_polling_wraps_are_lost(tmp_path: Path) -> None:
    """Why the poller exists: reading only at the ends of a window sees one wrap at most."""
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, (1_000_000 + 10_000_000) % 3_000_000)  # 10 J later, 3 wraps unseen
        assert list(backend.read_j()) == [1.0]


def test_default_poll_interval_is_shorter_than_the_wrap_period(tmp_path: Path) -> None:
    domains = discover_domains(tmp_path)  # none
    assert default_poll_interval_s(domains) == MAX_POLL_INTERVAL_S
    add_domain(tmp_path, "intel-rapl:0", "package-0", max_uj=REAL_RANGE_UJ)
    add_domain(tmp_path, "intel-rapl:1", "package-1", max_uj=3_000_000)
    # 262 kJ wraps after 524 s at 500 W: poll every 10 s (the cap)
    assert default_poll_interval_s(discover_domains(tmp_path)[:1]) == 10.0
    # 3 J wraps after 6 ms at 500 W: a quarter of that
    assert default_poll_interval_s(discover_domains(tmp_path)) == pytest.approx(0.0015)
    with RaplBackend(tmp_path) as backend:
        assert backend.poll_interval_s == pytest.approx(0.0015)


def test_permission_denied_on_open_gives_the_fix(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(RaplBackend, "_open_uj", staticmethod(deny))
    with pytest.raises(BackendError) as info:
        RaplBackend(tree["root"])
    assert not isinstance(info.value, BackendUnavailable)  # present but unusable: a warning
    message = str(info.value)
    assert "permission denied" in message
    assert f"sudo chmod -R a+r {tree['root']}/intel-rapl:*/energy_uj" in message
    assert "run as root" in message


def test_permission_denied_on_read_gives_the_fix(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permissions revoked mid-run: a fault like any other (frozen, noted, warned once)."""
    backend = RaplBackend(tree["root"], poll_interval_s=3600)
    try:

        def deny(fd: int) -> int:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(RaplBackend, "_read_uj", staticmethod(deny))
        with pytest.warns(BackendWarning, match=r"sudo chmod -R a\+r"):
            assert list(backend.read_j()) == [0.0, 0.0, 0.0]
        assert set(backend.failed) == {"cpu:package-0", "cpu:package-1", "dram:0"}
        assert all("run as root" in n for n in backend.notes[-3:])
    finally:
        monkeypatch.undo()
        backend.close()


# -- issue 12: hardware faults mid-run -----------------------------------------------------


def break_fds(monkeypatch: pytest.MonkeyPatch, broken: dict[int, BaseException]) -> None:
    """Make ``_read_uj`` raise for some fds (a device that fails), read the others."""
    real = RaplBackend._read_uj

    def read(fd: int) -> int:
        if fd in broken:
            raise broken[fd]
        return real(fd)

    monkeypatch.setattr(RaplBackend, "_read_uj", staticmethod(read))


@pytest.mark.parametrize(
    "error, why",
    [
        (OSError(errno.EIO, "Input/output error"), "reading failed (Input/output error)"),
        (OSError(errno.ENODEV, "No such device"), "reading failed (No such device)"),
    ],
)
def test_a_read_that_fails_mid_run_freezes_that_domain_only(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch, error: OSError, why: str
) -> None:
    with RaplBackend(tree["root"], poll_interval_s=3600) as backend:
        set_uj(tree["pkg0"], 1_000_000 + 5_000_000)
        set_uj(tree["pkg1"], 3_000_000 + 7_000_000)
        assert list(backend.read_j()) == [5.0, 7.0, 0.0]
        break_fds(monkeypatch, {backend._fds[0]: error})
        set_uj(tree["pkg0"], 1_000_000 + 9_000_000)  # not seen any more
        set_uj(tree["pkg1"], 3_000_000 + 8_000_000)
        with pytest.warns(BackendWarning) as caught:
            assert list(backend.read_j()) == [5.0, 8.0, 0.0]
        note = (
            f"RAPL package-0: {why}; its energy is frozen at the last good reading (5 J) "
            "and not counted after that"
        )
        assert backend_messages(caught) == [f"pytest-co2: {note}"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once: no second warning
            set_uj(tree["dram0"], 200_000 + 2_000_000)
            assert list(backend.read_j()) == [5.0, 8.0, 2.0]
            assert list(backend.read_j()) == [5.0, 8.0, 2.0]
        assert backend.failed == {"cpu:package-0": why}
        assert backend.notes == [note] and backend.faults == [note]


@pytest.mark.parametrize("garbage", ["garbage", "-5", "1_000", "", "12 34"])
def test_an_unparsable_reading_is_a_fault_never_a_silent_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, garbage: str
) -> None:
    monkeypatch.setattr(rapl, "UNPARSABLE_RETRY_S", 0.005)
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 4_000_000)
        assert list(backend.read_j()) == [3.0]
        (dom / "energy_uj").write_text(garbage + "\n")
        with pytest.warns(BackendWarning, match="unparsable reading"):
            assert list(backend.read_j()) == [3.0]
        (why,) = backend.failed.values()
        assert why == f"unparsable reading {(garbage + chr(10)).encode()!r} for 5 ms"
    (dom / "energy_uj").write_text(garbage + "\n")
    with pytest.raises(BackendError, match="could not be read: unparsable reading"):
        RaplBackend(tmp_path, poll_interval_s=3600)


def test_a_counter_that_goes_backwards_without_a_wrap_adds_nothing(
    tmp_path: Path,
) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 6_000_000)
        assert list(backend.read_j()) == [5.0]
        set_uj(dom, 5_999_000)  # 1 mJ down, right away: not a 262 kJ wrap
        with pytest.warns(BackendWarning, match="went backwards"):
            assert list(backend.read_j()) == [5.0]
        set_uj(dom, 7_999_000)  # counted again from the new value
        assert list(backend.read_j()) == [7.0]
        assert backend.notes == [
            "RAPL package-0: the counter went backwards (6000000 -> 5999000 uJ) without a "
            "plausible wrap; no energy is counted for that interval"
        ]
        assert backend.failed == {}  # a glitch, not the end of the device


def test_a_counter_without_a_range_that_goes_backwards_adds_nothing(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 9_000_000, max_uj=None)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        # 8 J since a restart in no time (fake time; the real clock allows it after 16 ms)
        set_uj(dom, 8_000_000)
        with pytest.warns(BackendWarning, match=r"went backwards \(9000000 -> 8000000 uJ\)"):
            assert list(backend.read_j()) == [0.0]


def test_a_fault_seen_by_the_poller_is_warned_from_the_next_read(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with RaplBackend(tree["root"], poll_interval_s=0.002) as backend:
        break_fds(monkeypatch, {backend._fds[1]: OSError(errno.EIO, "Input/output error")})
        wait_for(lambda: bool(backend.failed), "the fault")
        assert backend.failed == {"cpu:package-1": "reading failed (Input/output error)"}
        with pytest.warns(BackendWarning, match="RAPL package-1: reading failed"):
            assert list(backend.read_j()) == [0.0, 0.0, 0.0]
        assert backend._thread is not None and backend._thread.is_alive()


def test_close_stops_the_poller_and_is_idempotent(tree: dict[str, Path]) -> None:
    backend = RaplBackend(tree["root"], poll_interval_s=0.001)
    thread = backend._thread
    assert thread is not None and thread.is_alive() and thread.daemon
    backend.close()
    backend.close()
    assert not thread.is_alive()
    with pytest.raises(BackendError, match="closed"):
        backend.read_j()


def test_invalid_poll_interval(tree: dict[str, Path]) -> None:
    with pytest.raises(BackendError, match="poll interval"):
        RaplBackend(tree["root"], poll_interval_s=0)


POWER_W = 80.0
TICK_S = 0.001


class MillisecondCounter(RaplBackend):
    """A counter that, like RAPL, advances every 1 ms at a known power (no file I/O), on a
    clock in whole microseconds that the test advances."""

    now_us = 0

    @staticmethod
    def _read_uj(fd: int) -> int:
        ticks = MillisecondCounter.now_us // round(TICK_S * 1e6)
        return round(ticks * POWER_W * TICK_S * 1e6)


@pytest.mark.parametrize("start_us", [0, 1, 400, 999, 2500])
def test_1ms_counter_measures_a_10ms_region_within_10_percent(
    tmp_path: Path, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch, start_us: int
) -> None:
    """Wherever the region starts between two updates, a 10.5 ms region reads 10 or 11 ticks:
    within 10% of the truth (one tick of the counter is the whole error)."""
    add_domain(tmp_path, "intel-rapl:0", "package-0")
    monkeypatch.setattr(MillisecondCounter, "now_us", 7_000 + start_us)
    with MillisecondCounter(tmp_path, poll_interval_s=3600) as backend:
        (e_a,) = backend.read_j()
        MillisecondCounter.now_us += 10_500
        (e_b,) = backend.read_j()
    truth_j = POWER_W * 0.0105
    ticks = 10 if start_us % 1000 < 500 else 11
    assert e_b - e_a == pytest.approx(POWER_W * TICK_S * ticks, rel=1e-12)
    assert e_b - e_a == pytest.approx(truth_j, rel=0.10)


def test_file_rewritten_every_1ms_by_a_thread_reads_consistently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real read path (pread of a file another thread rewrites every 1 ms), with the
    poller thread and this one reading: readings never go backwards, torn reads are skipped,
    and the total ends exact. Counted, not timed: 50 reads while the writer wrote 20 times,
    however long a busy runner takes (the writer may be descheduled between truncating the
    file and writing it, so a torn read may last that long: retried for up to 60 s here)."""
    monkeypatch.setattr(rapl, "UNPARSABLE_RETRY_S", POLLER_PATIENCE_S)
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 123_000)
    stop = threading.Event()
    step_uj = int(POWER_W * TICK_S * 1e6)
    writes = [0]

    def writer() -> None:
        value = 123_000
        while not stop.is_set():
            value += step_uj
            set_uj(dom, value)
            writes[0] += 1
            time.sleep(TICK_S)

    with RaplBackend(tmp_path, poll_interval_s=0.002) as backend:
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            readings = []
            deadline = time.monotonic() + POLLER_PATIENCE_S
            while len(readings) < 50 or writes[0] < 20:
                assert time.monotonic() < deadline, (len(readings), writes[0])
                readings.append(backend.read_j()[0])
                time.sleep(0.0003)
        finally:
            stop.set()
            thread.join()
        set_uj(dom, 123_000 + 1000 * step_uj)
        final = backend.read_j()[0]
    assert backend.faults == []
    assert all(b >= a for a, b in itertools.pairwise(readings))
    assert readings[-1] > 0
    assert final == 1000 * step_uj / 1e6


def test_a_window_whose_domain_fails_finishes_with_the_note(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_co2.meter import Meter

    with RaplBackend(tree["root"], poll_interval_s=3600) as backend:
        meter = Meter(backend)
        with pytest.warns(BackendWarning), meter.measure("work"):
            set_uj(tree["pkg0"], 1_000_000 + 2_000_000)
            backend.read_j()
            break_fds(monkeypatch, {backend._fds[0]: OSError(errno.EIO, "Input/output error")})
            set_uj(tree["pkg1"], 3_000_000 + 4_000_000)
        (m,) = meter.measurements
        assert m.energy_j == 6.0 and not m.complete  # the meter marks the window partial
        assert any(
            n.startswith("partial: RAPL package-0: reading failed (Input/output error)")
            for n in m.notes
        )


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_an_energy_file_that_vanishes_is_a_fault(tree: dict[str, Path], how: str) -> None:
    with RaplBackend(tree["root"], poll_interval_s=0.002) as backend:
        set_uj(tree["pkg1"], 3_000_000 + 1_000_000)
        path = tree["pkg1"] / "energy_uj"
        # the poller counts the +1 J before the file goes (package-0, package-1, dram)
        wait_for(lambda: backend._last_uj[1] == 4_000_000, "the +1 J")
        if how == "replaced":
            # a new file in one rename, so that the poller never sees the path missing (an
            # unlink then a write raced it: CI once saw "vanished"); the open fd reads the old one
            new = path.with_name("energy_uj.new")
            new.write_text("99000000\n")
            new.replace(path)
        else:
            path.unlink()
        wait_for(lambda: bool(backend.failed), "the file go")
        what = "vanished" if how == "removed" else "was replaced by another file"
        assert backend.failed == {"cpu:package-1": f"{path} {what}"}
        with pytest.warns(BackendWarning, match=what):
            assert list(backend.read_j()) == [0.0, 1.0, 0.0]


# -- issue 16: data that exposes each formula -------------------------------------------------


class FakeTime:
    """Stands in for the ``time`` module inside ``rapl``: a settable clock, recorded sleeps."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(rapl, "time", clock)
    return clock


def test_wraps_that_land_mid_range_several_in_one_window(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """Range 3 J, counter from 2.5 J: each read sees one wrap landing well inside the range,
    so ``max - last + raw`` is the only formula that gives the energy (a wrap to 0 hides it).
    No time passes between reads (fake time): on the real clock a busy runner can take the
    5.8 ms in which 500 W makes the last, implausible wrap plausible."""
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 2_500_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 700_000)  # 0.5 J to the top, 0.7 J after the wrap
        assert list(backend.read_j()) == [1.2]
        set_uj(dom, 2_000_000)  # up 1.3 J, no wrap
        assert list(backend.read_j()) == [2.5]
        set_uj(dom, 400_000)  # 1 J to the top, 0.4 J after: the second wrap
        assert list(backend.read_j()) == [3.9]
        set_uj(dom, 2_900_000)
        assert list(backend.read_j()) == [6.4]
        set_uj(dom, 300_000)  # the third: 0.1 J to the top, 0.3 J after
        assert list(backend.read_j()) == [6.8]
        assert backend.faults == []
        set_uj(dom, 200_000)  # down 0.1 J: a wrap would be 2.9 J, in no time
        with pytest.warns(BackendWarning, match="without a plausible wrap"):
            assert list(backend.read_j()) == [6.8]
        assert backend.faults == [
            "RAPL package-0: the counter went backwards (300000 -> 200000 uJ) without a "
            "plausible wrap; no energy is counted for that interval"
        ]


def test_a_wrap_of_exactly_half_the_range_counts(tmp_path: Path, fake_time: FakeTime) -> None:
    """No time passes (the 500 W bound allows nothing): half the range is the limit."""
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 2_000_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 500_000)  # 1 J + 0.5 J = half of 3 J: still a plausible wrap
        assert list(backend.read_j()) == [1.5]
        assert backend.faults == []
        set_uj(dom, 2_000_000)
        assert list(backend.read_j()) == [3.0]
        set_uj(dom, 1_000_000)  # 1 J + 1 J: two thirds of the range in no time, a fault
        with pytest.warns(BackendWarning, match=r"\(2000000 -> 1000000 uJ\)"):
            assert list(backend.read_j()) == [3.0]
        set_uj(dom, 2_000_000)
        assert list(backend.read_j()) == [4.0]
        set_uj(dom, 500_001)  # one microjoule past half: a fault again, noted and warned once
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert list(backend.read_j()) == [4.0]
        assert [f.split("(")[1] for f in backend.faults] == [
            "2000000 -> 1000000 uJ) without a plausible wrap; no energy is counted for that "
            "interval",
            "2000000 -> 500001 uJ) without a plausible wrap; no energy is counted for that "
            "interval",
        ]
        assert len([n for n in backend.notes if "backwards" in n]) == 1


def test_a_wrap_between_a_third_and_half_of_the_range_counts(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 2_000_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 300_000)  # 1 J + 0.3 J: more than a third of 3 J, less than half
        assert list(backend.read_j()) == [1.3]
        assert backend.faults == []


def test_a_counter_at_its_maximum_wraps(tmp_path: Path) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 3_000_000, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 250_000)
        assert list(backend.read_j()) == [0.25]
        assert backend.faults == []


def test_a_counter_above_its_range_is_not_a_wrap(tmp_path: Path) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 3_000_001, max_uj=3_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        set_uj(dom, 1_000)
        with pytest.warns(BackendWarning, match=r"\(3000001 -> 1000 uJ\)"):
            assert list(backend.read_j()) == [0.0]


def test_a_long_interval_makes_a_large_wrap_plausible(tmp_path: Path, fake_time: FakeTime) -> None:
    """More than half the range, but no more than 500 W can use in the time since the last
    read: a wrap. One microjoule more is not."""
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 150_000_000, max_uj=200_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        fake_time.t += 0.25  # 500 W x 0.25 s = 125 J
        set_uj(dom, 75_000_000)  # 50 J to the top + 75 J
        assert list(backend.read_j()) == [125.0]
        assert backend.faults == []
        set_uj(dom, 150_000_000)
        assert list(backend.read_j()) == [200.0]
        fake_time.t += 0.25
        set_uj(dom, 75_000_001)
        with pytest.warns(BackendWarning, match="without a plausible wrap"):
            assert list(backend.read_j()) == [200.0]


def test_a_counter_without_a_range_that_restarts_counts_from_0(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 900_000_000, max_uj=None)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        assert backend.notes == [
            "RAPL: max_energy_range_uj is missing for some domains; a counter wrap there "
            "cannot be corrected"
        ]
        fake_time.t += 1.0  # up to 500 J in a second
        set_uj(dom, 500_000_000)  # restarted from 0: exactly 500 J since
        assert list(backend.read_j()) == [500.0]
        fake_time.t += 1.0
        set_uj(dom, 600_000_000)
        assert list(backend.read_j()) == [600.0]
        fake_time.t += 1.0
        set_uj(dom, 500_000_001)  # more than 500 J in a second: not a restart
        with pytest.warns(BackendWarning, match="without a plausible wrap"):
            assert list(backend.read_j()) == [600.0]


def test_an_unchanged_counter_is_no_fault(tree: dict[str, Path]) -> None:
    with RaplBackend(tree["root"], poll_interval_s=3600) as backend, warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            assert list(backend.read_j()) == [0.0, 0.0, 0.0]
        assert backend.faults == [] and backend.notes == []


def test_torn_reads_at_open_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    add_domain(tmp_path, "intel-rapl:0", "package-0", 7_000_000)
    real = RaplBackend._read_uj
    torn = iter([ValueError("torn"), ValueError("torn")])

    def read(fd: int) -> int:
        err = next(torn, None)
        if err is not None:
            raise err
        return real(fd)

    monkeypatch.setattr(RaplBackend, "_read_uj", staticmethod(read))
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        assert fake_time.sleeps == [0.0005, 0.0005]
        assert backend._last_uj == [7_000_000]


def test_lasting_garbage_mid_run_is_retried_for_the_retry_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    monkeypatch.setattr(rapl, "UNPARSABLE_RETRY_S", 0.001)
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        garbage = "x" * 30
        (dom / "energy_uj").write_text(garbage + "\n")
        with pytest.warns(BackendWarning, match="unparsable reading"):
            assert list(backend.read_j()) == [0.0]
        assert fake_time.sleeps == [0.0005, 0.0005]  # 1 ms of retries, then a fault
        (why,) = backend.failed.values()
        assert why == f"unparsable reading {garbage[:24].encode()!r} for 1 ms"


def test_the_poll_interval_is_clamped_and_ignores_unknown_ranges(tmp_path: Path) -> None:
    add_domain(tmp_path, "intel-rapl:0", "package-0", max_uj=0)  # unknown range: ignored
    add_domain(tmp_path, "intel-rapl:1", "package-1", max_uj=3_000_000)
    assert default_poll_interval_s(discover_domains(tmp_path)) == pytest.approx(0.0015)
    assert default_poll_interval_s(discover_domains(tmp_path), max_power_w=50.0) == 0.015
    add_domain(tmp_path, "intel-rapl:2", "package-2", max_uj=1_000)  # wraps in 2 us
    assert default_poll_interval_s(discover_domains(tmp_path)) == rapl.MIN_POLL_INTERVAL_S
    assert rapl.MIN_POLL_INTERVAL_S == 0.001


def test_discovery_of_top_level_dram_package_order_and_broken_domains(tmp_path: Path) -> None:
    add_domain(tmp_path, "intel-rapl:10", "package-10")
    add_domain(tmp_path, "intel-rapl:2", "package-2", max_uj=None)
    add_domain(tmp_path, "intel-rapl:0", "package-0")
    add_domain(tmp_path, "intel-rapl:10:0", "dram")
    add_domain(tmp_path, "intel-rapl:3", "dram")  # top-level DRAM on some servers
    add_domain(tmp_path, "intel-rapl:0:0", "uncore")
    (tmp_path / "intel-rapl:1").mkdir()  # no name file: skipped, and the later ones still read
    (tmp_path / "intel-rapl:0:1").mkdir()
    (tmp_path / "intel-rapl:0:1" / "name").write_text("dram\n")
    (tmp_path / "intel-rapl:0:1" / "max_energy_range_uj").write_text("n/a\n")
    (tmp_path / "intel-rapl:0:1" / "energy_uj").write_text("0\n")
    domains = discover_domains(tmp_path)
    assert [(d.name, d.kind, d.package, d.max_range_uj) for d in domains] == [
        ("package-0", "cpu", 0, REAL_RANGE_UJ),
        ("package-2", "cpu", 2, 0),
        ("package-10", "cpu", 10, REAL_RANGE_UJ),
        ("dram", "dram", 0, 0),
        ("dram", "dram", 3, REAL_RANGE_UJ),
        ("dram", "dram", 10, REAL_RANGE_UJ),
    ]
    assert domains[0].path == tmp_path / "intel-rapl:0"
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        assert [d.id for d in backend.devices] == [
            "cpu:package-0",
            "cpu:package-2",
            "cpu:package-10",
            "dram:0",
            "dram:3",
            "dram:10",
        ]
        assert backend.devices[4].label == "RAPL dram (package-3)"


def test_messages_users_read(tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree["root"]
    assert rapl.permission_fix(root) == (
        f"RAPL counters under {root} are not readable (permission denied): run "
        f"`sudo chmod -R a+r {root}/intel-rapl:*/energy_uj` "
        f"(and `{root}/intel-rapl:*:*/energy_uj` for DRAM) or run as root"
    )
    for bad in (0, -1.0):
        with pytest.raises(BackendError) as info:
            RaplBackend(root, poll_interval_s=bad)
        assert str(info.value) == f"invalid RAPL poll interval {bad!r}: expected seconds > 0"

    def eio(path: Path) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(RaplBackend, "_open_uj", staticmethod(eio))
    with pytest.raises(BackendError) as err:
        RaplBackend(root)
    assert str(err.value) == (
        f"RAPL counters under {root} could not be read: [Errno 5] Input/output error"
    )


def test_the_poller_thread_and_its_default_interval(tree: dict[str, Path]) -> None:
    with RaplBackend(tree["root"]) as backend:
        assert backend.poll_interval_s == MAX_POLL_INTERVAL_S  # 262 kJ ranges: the 10 s cap
        assert backend._thread is not None and backend._thread.name == "pytest-co2-rapl-poller"
        assert backend.name == "rapl"


# -- issue 16: edges of the rest ---------------------------------------------------------------


def test_a_range_of_one_microjoule_is_known(tmp_path: Path) -> None:
    d = rapl.RaplDomain(tmp_path, "package-0", "cpu", 0, 1)
    assert default_poll_interval_s([d]) == rapl.MIN_POLL_INTERVAL_S
    assert default_poll_interval_s([rapl.RaplDomain(tmp_path, "p", "cpu", 0, 0)]) == 10.0
    dom = add_domain(tmp_path, "intel-rapl:0", "package-0", 5, max_uj=1)
    with RaplBackend(tmp_path, poll_interval_s=3600) as backend:
        assert not [n for n in backend.notes if "max_energy_range_uj" in n]
        set_uj(dom, 2)  # above the range of 1 uJ: not a wrap, and not a restart either
        with pytest.warns(BackendWarning, match=r"\(5 -> 2 uJ\)"):
            assert list(backend.read_j()) == [0.0]


def test_counter_files_are_opened_close_on_exec(tree: dict[str, Path]) -> None:
    import fcntl

    with RaplBackend(tree["root"], poll_interval_s=3600) as backend:
        assert all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd in backend._fds)
        assert all(d.shared for d in backend.devices)


def test_the_exact_messages_of_a_revoked_permission_and_a_closed_backend(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = RaplBackend(tree["root"], poll_interval_s=3600)
    set_uj(tree["pkg0"], 11_000_052)  # 10.000052 J counted before the fault

    def deny(fd: int) -> int:
        raise PermissionError(13, "Permission denied")

    assert backend.read_j()[0] == 10.000052
    monkeypatch.setattr(RaplBackend, "_read_uj", staticmethod(deny))
    with pytest.warns(BackendWarning):
        backend.read_j()
    monkeypatch.undo()
    assert backend.faults[0] == (
        "RAPL package-0: reading failed (permission denied): "
        + rapl.permission_fix(tree["root"])
        + "; its energy is frozen at the last good reading (10.0001 J) and not counted after that"
    )
    backend.close()
    with pytest.raises(BackendError, match=r"^the RAPL backend is closed$"):
        backend.read_j()


def test_the_presence_check_goes_on_past_failed_and_unstatable_domains(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with RaplBackend(tree["root"], poll_interval_s=3600) as backend:
        backend._failed[0] = "broken"  # package-0 (first in order) is frozen
        (tree["pkg1"] / "energy_uj").unlink()
        (tree["dram0"] / "energy_uj").unlink()  # a second vanished file after the first
        backend._check_present_locked()
        assert set(backend.failed) == {"cpu:package-0", "cpu:package-1", "dram:0"}
    set_uj(tree["pkg1"], 0)
    set_uj(tree["dram0"], 0)
    with RaplBackend(tree["root"], poll_interval_s=3600) as backend:
        real_stat = rapl.os.stat
        pkg0 = tree["pkg0"] / "energy_uj"

        def stat(path: Path) -> object:
            if Path(path) == pkg0:
                raise PermissionError(13, "Permission denied")
            return real_stat(path)

        monkeypatch.setattr(rapl.os, "stat", stat)
        (tree["dram0"] / "energy_uj").unlink()
        backend._check_present_locked()
        monkeypatch.undo()
        assert set(backend.failed) == {"dram:0"}


def test_the_poller_swallows_errors_and_close_is_safe_on_a_half_built_backend(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    with RaplBackend(tree["root"], poll_interval_s=3600) as backend:

        def boom() -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(backend, "_check_present_locked", boom)
        backend._poll_once()  # no exception escapes into the poller thread
        monkeypatch.setattr(backend, "close", boom)
        backend.__del__()  # nor out of __del__
        monkeypatch.undo()
        os.close(backend._fds[0])  # an fd closed behind its back: close() still succeeds
    assert backend._fds == []
    RaplBackend.__new__(RaplBackend).close()  # __init__ failed before any attribute was set
