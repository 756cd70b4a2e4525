"""The shared power poller: exact trapezoid sums on a fake clock, held values, read errors."""

from __future__ import annotations

from pytest_co2.backends.poller import PowerPoller


class _Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> float:
        return self.t


def test_trapezoid_sum_held_value_and_extension_to_now() -> None:
    clock = _Clock()
    samples = iter([100.0, 300.0, None, 200.0])
    poller = PowerPoller(
        [lambda: next(samples), lambda: 50.0], 0.1, errors=(OSError,), what="GPU", name="t",
        clock=clock,
    )  # fmt: skip
    assert poller.power_w == [100.0, 50.0]
    clock.t = 12.0
    poller.poll_once()  # 100 -> 300 W over 2 s: 400 J
    clock.t = 13.0
    poller.poll_once()  # None holds 300 W: 300 J
    clock.t = 13.5
    poller.poll_once()  # 300 -> 200 W over 0.5 s: 125 J
    assert poller.energy_j == [825.0, 175.0]
    clock.t = 14.0  # extended with the last power: +100 J and +25 J
    assert poller.read_j() == [925.0, 200.0]
    assert poller.failed == [None, None]


def test_a_read_error_freezes_that_source_only_until_it_reads_again() -> None:
    clock = _Clock()
    calls = iter([5.0, 5.0, OSError("device gone"), OSError("device gone"), 8.0, 8.0])

    def read() -> float:
        value = next(calls)
        if isinstance(value, OSError):
            raise value
        return value

    poller = PowerPoller(
        [read, lambda: 1.0], 0.1, errors=(OSError,), what="AMD GPU", name="t", clock=clock
    )
    clock.t = 11.0
    poller.poll_once()  # 5 W, 1 W for 1 s
    clock.t = 12.0
    poller.poll_once()  # source 0 fails: this second is not counted for it
    assert poller.failed == ["device gone", None]
    clock.t = 13.0
    poller.poll_once()
    assert poller.read_j() == [5.0, 3.0]  # not extended while it fails
    assert poller.take_faults() == ({0: "device gone"}, [])
    clock.t = 14.0
    poller.poll_once()  # reads again (8 W): counts from here
    clock.t = 15.0
    poller.poll_once()
    assert poller.read_j() == [13.0, 5.0]
    assert poller.take_faults() == ({}, [0])
    assert poller.take_faults() == ({}, [])  # taken once
    poller.close()  # never started: nothing to join
    assert poller.stop.is_set()
