"""--co2-exclusive: windows on a shared counter device are serialized across processes.

The fake device below is shared by every process of a run: it draws 100 W for each process
that is busy on it, and its counter (read by every process) is 100 W x the busy time of all
processes, logged in a shared directory. Two xdist workers measuring at the same time would
each count the other's work; with the lock their windows do not overlap, so the measured
energies add up to the device's true energy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from terminal_text import unwrapped

from pytest_co2.backends.base import Device, Method
from pytest_co2.measure.lock_dir import lock_file_name
from pytest_co2.measure.lock_policy import decide
from pytest_co2.measure.locks import DeviceLock
from pytest_co2.measure.window_guard import WindowGuard

pytest.importorskip("xdist")

SHARED_COUNTER_CONFTEST = '''
import os
import time

import pytest
from pytest_co2.backends.base import Backend, Device, Method

BUSY_DIR = os.environ["CO2_TEST_BUSY_DIR"]
POWER_W = 100.0


def busy_s():
    """Seconds that processes have been busy on the device, all processes together."""
    total, now = 0.0, time.time()
    for name in os.listdir(BUSY_DIR):
        if name.startswith("busy-"):
            with open(os.path.join(BUSY_DIR, name)) as f:
                for line in f:
                    parts = line.split()
                    if parts:
                        total += (float(parts[1]) if len(parts) > 1 else now) - float(parts[0])
    return total


class SharedCounter(Backend):
    name = "fake-shared"

    def __init__(self):
        super().__init__()
        self.devices = (Device("gpu:7", "gpu", "fake shared GPU", Method.COUNTER, 0.0, True),)

    def read_j(self):
        return (POWER_W * busy_s(),)


def pytest_co2_make_backend(config, spec):
    return SharedCounter()


@pytest.fixture
def work():
    def work(seconds):
        path = os.path.join(BUSY_DIR, f"busy-{os.getpid()}")
        with open(path, "a") as f:
            f.write(repr(time.time()))
            f.flush()
            time.sleep(seconds)
            f.write(" " + repr(time.time()) + "\\n")
    return work


@pytest.fixture
def rendezvous():
    """Wait (outside any window) until both tests arrived, so their windows would overlap."""
    def wait(name):
        open(os.path.join(BUSY_DIR, "arrived-" + name), "w").close()
        deadline = time.time() + 120  # a busy runner can start one xdist worker much later
        while len([n for n in os.listdir(BUSY_DIR) if n.startswith("arrived-")]) < 2:
            assert time.time() < deadline, "the other worker never arrived"
            time.sleep(0.005)
    return wait


@pytest.fixture
def both_busy():
    """Wait until both workers have started their work (inside a window: without the lock)."""
    def wait():
        deadline = time.time() + 120
        while len([n for n in os.listdir(BUSY_DIR) if n.startswith("busy-")]) < 2:
            assert time.time() < deadline, "the other worker never started its work"
            time.sleep(0.005)
    return wait
'''

TWO_TESTS = """
import pytest

@pytest.mark.parametrize("name", ["a", "b"])
def test_work(co2_meter, work, rendezvous, name):
    rendezvous(name)
    with co2_meter.measure("work"):
        work(0.4)
"""

# Without the lock: each window stays open until the other worker's work started, so the two
# windows overlap however late a busy runner started one of the workers.
TWO_OVERLAPPING_TESTS = """
import pytest

@pytest.mark.parametrize("name", ["a", "b"])
def test_work(co2_meter, work, rendezvous, both_busy, name):
    rendezvous(name)
    with co2_meter.measure("work"):
        work(0.4)
        both_busy()
"""


def busy_intervals(busy: Path) -> list[tuple[float, float]]:
    """(start, end) of each worker's work, in time.time() seconds, in order of start."""
    return sorted(
        (float(a), float(b))
        for f in busy.glob("busy-*")
        for a, b in (line.split() for line in f.read_text().splitlines() if line.split())
    )


def run_shared(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    tests: str = TWO_TESTS,
) -> tuple[pytest.RunResult, dict, float]:
    busy = pytester.path / "busy"
    busy.mkdir()
    monkeypatch.setenv("CO2_TEST_BUSY_DIR", str(busy))
    pytester.makeconftest(SHARED_COUNTER_CONFTEST)
    pytester.makepyfile(tests)
    result = pytester.runpytest(
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--co2-json=r.json",
        "--co2-pue=1",
        f"--co2-lock-dir={pytester.path / 'locks'}",
        *args,
    )
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "r.json").read_text())
    true_j = 0.0
    for f in busy.glob("busy-*"):
        for line in f.read_text().split("\n"):
            if line.split():
                start, end = map(float, line.split())
                true_j += 100.0 * (end - start)
    return result, data, true_j


def test_exclusive_lock_prevents_double_counting(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, data, true_j = run_shared(pytester, monkeypatch)  # auto: on under xdist with a counter
    measured = [t["measurements"][0] for t in data["tests"]]
    assert len(measured) == 2
    total_j = sum(m["energy_j"] for m in measured)
    assert true_j >= 80.0  # 2 x 0.4 s x 100 W: sleep(0.4) lasts 0.4 s or longer
    assert total_j == pytest.approx(true_j, rel=1e-9)  # serialized: each window its own work
    (_, end_a), (start_b, _) = busy_intervals(pytester.path / "busy")
    assert start_b >= end_a  # the works did not overlap...
    notes = [n for m in measured for n in m["notes"] if n.startswith("exclusive:")]
    assert len(notes) == 2 and all("held the lock on gpu:7" in n for n in notes)
    waits = sorted(float(n.rsplit("waited ", 1)[1].split(" s")[0]) for n in notes)
    assert waits[1] > 0  # ...because the second window waited for the lock
    ex = data["session"]["exclusive"]
    assert (ex["mode"], ex["devices"], ex["reason"]) == (
        "lock",
        ["gpu:7"],
        "auto: pytest-xdist with a counter backend",
    )
    assert (pytester.path / "locks" / "gpu_7.lock").exists()
    unwrapped(result).fnmatch_lines(
        ["co2: exclusive: measured windows on shared counter devices (gpu:7) are serialized*"]
    )


def test_without_the_lock_workers_double_count(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, data, true_j = run_shared(
        pytester, monkeypatch, "--co2-no-exclusive", tests=TWO_OVERLAPPING_TESTS
    )
    total_j = sum(t["measurements"][0]["energy_j"] for t in data["tests"])
    assert total_j > true_j  # each window also counted some of the other worker's work
    assert data["session"]["exclusive"]["mode"] == "off"
    notes = [n for t in data["tests"] for n in t["measurements"][0]["notes"]]
    assert any("double counting" in n for n in notes)
    unwrapped(result).fnmatch_lines(
        ["co2: not exclusive (--co2-no-exclusive (command line)): concurrent pytest-xdist workers*"]
    )


# -- units -----------------------------------------------------------------------------------

GPU = Device("gpu:0", "gpu", "GPU", Method.COUNTER, 0.1, True)
RAPL = Device("cpu:package-0", "cpu", "RAPL package-0", Method.COUNTER, 0.001, True)
EST = Device("cpu:process", "cpu", "estimate", Method.ESTIMATED, 0.0, False)
SIM = Device("sim:0", "simulated", "sim", Method.SIMULATED, 0.0, False)


@pytest.mark.parametrize(
    "exclusive, devices, concurrent, mode",
    [
        (None, (GPU, EST), True, "lock"),
        (None, (GPU, EST), False, "off"),
        (None, (EST,), True, "not needed"),
        (None, (SIM,), True, "not needed"),
        (True, (SIM,), True, "not needed"),
        (True, (RAPL,), False, "lock"),
        (False, (RAPL,), True, "off"),
    ],
)
def test_decide(
    exclusive: bool | None, devices: tuple[Device, ...], concurrent: bool, mode: str
) -> None:
    policy = decide(exclusive, devices, concurrent=concurrent, lock_dir="/tmp/l")
    assert policy.mode == mode
    if mode == "lock":
        assert policy.devices == tuple(d.id for d in devices if d.shared)
    assert (policy.warning is not None) == (mode == "off" and concurrent)


NOT_NEEDED_PROBE = """
import sys

def pytest_unconfigure(config):
    names = ("lock_dir", "lock_policy", "window_guard", "locks")
    loaded = [n for n in names if f"pytest_co2.measure.{n}" in sys.modules]
    config.rootpath.joinpath("modules.txt").write_text(" ".join(loaded))
"""


def test_without_a_shared_counter_the_policy_is_made_only_for_a_report(
    pytester: pytest.Pytester,
) -> None:
    """The CPU estimate sees no other process: the policy is "not needed" and its guard does
    nothing, so a run whose output needs no policy imports no lock module; the JSON still
    says "not needed", as when it was decided at once."""
    pytester.makeconftest(NOT_NEEDED_PROBE)
    pytester.makepyfile("def test_a():\n    pass\n")
    args = ("-p", "no:cacheprovider", "--co2-all", "--co2-backend=estimate")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert (pytester.path / "modules.txt").read_text() == ""
    pytester.runpytest_subprocess(*args, "--co2-json=r.json").assert_outcomes(passed=1)
    exclusive = json.loads((pytester.path / "r.json").read_text())["session"]["exclusive"]
    assert exclusive == {
        "mode": "not needed",
        "reason": "no shared counter device",
        "devices": [],
        "lock_dir": None,
        "lock_timeout_s": 30.0,
        "concurrent": False,
        "description": "exclusive: not needed: no shared counter device (a per-process "
        "estimate or a simulated device does not see other processes)",
    }
    assert (pytester.path / "modules.txt").read_text() == "lock_dir lock_policy window_guard"


def test_lock_file_names_are_safe() -> None:
    assert lock_file_name("gpu:0") == "gpu_0.lock"
    assert lock_file_name("cpu:package-0") == "cpu_package-0.lock"
    assert lock_file_name("../x y") == "_x_y.lock"


HOLD_CHECK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held")
"""


def _held_elsewhere(path: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", HOLD_CHECK, str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_device_lock_is_reentrant_and_cross_process(tmp_path: Path) -> None:
    lock = DeviceLock(["gpu:1", "cpu:package-0"], str(tmp_path / "locks"))
    assert lock.acquire() >= 0 and lock.acquire() == 0.0  # nested window
    path = tmp_path / "locks" / "gpu_1.lock"
    assert _held_elsewhere(path) == "held"
    lock.release()
    assert lock.held and _held_elsewhere(path) == "held"
    lock.release()
    assert not lock.held and _held_elsewhere(path) == "free"
    lock.release()  # extra release is harmless


def test_window_guard_releases_when_the_block_raises(tmp_path: Path) -> None:
    from pytest_co2.backends.constant import ConstantBackend
    from pytest_co2.meter import Meter

    policy = decide(True, (GPU,), concurrent=False, lock_dir=str(tmp_path))
    guard = WindowGuard(policy)
    meter = Meter(ConstantBackend(10.0), on_window_enter=guard.enter, on_window_exit=guard.exit)
    with pytest.raises(RuntimeError), meter.measure("x"):
        assert guard.lock is not None and guard.lock.held
        raise RuntimeError("boom")
    assert not guard.lock.held
    (m,) = meter.measurements
    assert any(n.startswith("exclusive: held the lock on gpu:0") for n in m.notes)


def test_exclusive_option_resolution(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_x(): pass")
    pytester.makeini("[pytest]\nco2_exclusive = true\n")
    args = ["--co2-backend=constant:1", "--co2-json=r.json", "-p", "no:cacheprovider"]

    def setting(*extra: str) -> tuple[object, object]:
        pytester.runpytest(*args, *extra)
        s = json.loads((pytester.path / "r.json").read_text())["session"]["settings"]
        return s["exclusive"], s["sources"].get("exclusive")

    assert setting() == (True, "ini co2_exclusive")
    monkeypatch.setenv("PYTEST_CO2_EXCLUSIVE", "0")
    assert setting() == (False, "PYTEST_CO2_EXCLUSIVE")
    assert setting("--co2-exclusive") == (True, "command line")
    monkeypatch.delenv("PYTEST_CO2_EXCLUSIVE")
    assert setting("--co2-no-exclusive") == (False, "command line")
    monkeypatch.setenv("PYTEST_CO2_EXCLUSIVE", "maybe")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PYTEST_CO2_EXCLUSIVE: invalid boolean 'maybe'*"])


# -- issue 12: bounded waits, a private lock folder, no links followed -----------------------

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def hold_lock():
    """Start a process that holds the flock on a path until the test ends (or it is killed)."""
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in procs:
        with proc:  # closes the pipe too: a leaked pipe warns later, inside some other test
            proc.kill()


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_lock_held_elsewhere_costs_one_timeout_and_is_said(tmp_path: Path, hold_lock) -> None:
    import time

    from pytest_co2.backends.constant import ConstantBackend
    from pytest_co2.meter import Meter

    locks = _private_dir(tmp_path / "locks")
    holder = hold_lock(locks / "gpu_0.lock")
    policy = decide(True, (GPU,), concurrent=False, lock_dir=str(locks), lock_timeout_s=0.4)
    assert policy.to_dict()["lock_timeout_s"] == 0.4
    events: list[tuple[bool, bool]] = []
    guard = WindowGuard(policy, on_wait=lambda w: events.append((w.done, w.acquired)))
    meter = Meter(ConstantBackend(10.0), on_window_enter=guard.enter, on_window_exit=guard.exit)
    t0 = time.perf_counter()
    with (
        pytest.warns(UserWarning, match="held by another process for 0.4 s"),
        meter.measure("first"),
    ):
        assert guard.waiting is None
    assert time.perf_counter() - t0 >= 0.4  # the timeout, waited in full
    assert events[0] == (False, False) and events[-1] == (True, False)
    with meter.measure("second"):  # the lock is still busy: no second wait ("still held")
        pass
    first, second = meter.measurements
    (n1,) = [n for n in first.notes if n.startswith("exclusive")]
    assert n1.startswith("exclusive: NOT locked: waited 0.4 s (the lock timeout) for ")
    assert n1.endswith(
        "held by another process; measured without the lock, so it may include "
        "other processes' energy on gpu:0"
    )
    assert any(n.startswith("exclusive: NOT locked: ") and "still held" in n for n in second.notes)
    assert (guard.unlocked_windows, guard.timed_out) == (2, 1)
    assert guard.summary() == (
        "2 measured windows ran without the exclusive lock: another process held it for longer "
        "than the lock timeout (0.4 s); their figures may include other processes' energy"
    )
    assert not guard.lock or not guard.lock.held
    holder.kill()
    holder.wait()
    with meter.measure("third"):  # the holder is gone: locked again
        assert guard.lock is not None and guard.lock.held
    assert any("held the lock on gpu:0" in n for n in meter.measurements[2].notes)
    assert guard.unlocked_windows == 2 and guard.to_dict()["timed_out"] == 1


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_run_with_a_lock_held_elsewhere_finishes_and_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, hold_lock
) -> None:
    import time

    pytester.makeconftest(
        "from pytest_co2.backends.base import Backend, Device, Method\n"
        "class Shared(Backend):\n"
        "    name = 'fake-shared'\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.devices = (Device('gpu:7', 'gpu', 'GPU', Method.COUNTER, 0.0, True),)\n"
        "    def read_j(self):\n"
        "        return (0.0,)\n"
        "def pytest_co2_make_backend(config, spec):\n"
        "    return Shared()\n"
    )
    pytester.makepyfile(
        "def test_a(co2_meter):\n    with co2_meter.measure('a'):\n        pass\n"
        "def test_b(co2_meter):\n    with co2_meter.measure('b'):\n        pass\n"
    )
    locks = _private_dir(pytester.path / "locks")
    hold_lock(locks / "gpu_7.lock")
    t0 = time.perf_counter()
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--co2-exclusive", f"--co2-lock-dir={locks}",
        "--co2-lock-timeout=0.5", "--co2-json=r.json",
    )  # fmt: skip
    # before the fix it never ended; it ends now (one 0.5 s timeout, then no wait), and a
    # minute is room for a busy runner, not a claim about its speed
    assert time.perf_counter() - t0 < 0.5 + 60.0
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "r.json").read_text())
    notes = [n for t in data["tests"] for m in t["measurements"] for n in m["notes"]]
    assert sum(n.startswith("exclusive: NOT locked: waited 0.5 s") for n in notes) == 1
    assert sum(n.startswith("exclusive: NOT locked:") for n in notes) == 2
    unwrapped(result).fnmatch_lines(["*held by another process for 0.5 s*"])
    windows = data["session"]["exclusive"]["windows"]
    assert (windows["unlocked_windows"], windows["timed_out"]) == (2, 1)


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_the_default_lock_folder_is_per_user_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat
    import tempfile

    from pytest_co2.measure.lock_dir import default_lock_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmp_path / f"pytest-co2-locks-{os.getuid()}"
    assert default_lock_dir() == str(folder)
    lock = DeviceLock(["gpu:0"], default_lock_dir())
    lock.acquire(1.0)
    lock.release()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "gpu_0.lock").stat().st_mode) == 0o600
    folder.chmod(0o1777)  # an old world-writable default folder of ours is made private
    lock.acquire(1.0)
    lock.release()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def _guard_for(lock_dir: Path) -> WindowGuard:
    return WindowGuard(decide(True, (GPU,), concurrent=False, lock_dir=str(lock_dir)))


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_lock_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = _private_dir(tmp_path / "elsewhere")
    link = tmp_path / "locks"
    link.symlink_to(target)
    guard = _guard_for(link)
    with pytest.warns(UserWarning, match="is a symbolic link: refused"):
        guard.enter("w")
    (note,) = guard.exit("w")
    assert note == (
        f"exclusive lock failed: cannot lock (lock folder {str(link)!r} is a symbolic link: "
        "refused (give --co2-lock-dir a real folder of yours)); windows are not serialized"
    )
    assert list(target.iterdir()) == []
    guard.enter("w2")  # no second warning, the same note
    assert guard.exit("w2") == [note] and guard.unlocked_windows == 2


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_lock_folder_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from pytest_co2.measure import lock_dir as exclusive

    locks = _private_dir(tmp_path / "locks")
    monkeypatch.setattr(exclusive, "_uid", lambda: os.getuid() + 1)
    guard = _guard_for(locks)
    with pytest.warns(UserWarning, match="not to you"):
        guard.enter("w")
    assert guard.failure is not None and f"belongs to uid {os.getuid()}" in guard.failure
    assert list(locks.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_planted_link_as_lock_file_is_not_followed(tmp_path: Path) -> None:
    from pytest_co2.measure.lock_dir import LockDirError

    locks = _private_dir(tmp_path / "locks")
    target = tmp_path / "victim"
    (locks / "gpu_0.lock").symlink_to(target)
    lock = DeviceLock(["gpu:0"], str(locks))
    with pytest.raises(LockDirError, match=r"gpu_0.lock' cannot be opened .*: refused"):
        lock.acquire(1.0)
    assert not target.exists() and not lock.held


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_timeout_on_the_second_file_releases_the_first(tmp_path: Path, hold_lock) -> None:
    from pytest_co2.measure.locks import LockTimeout

    locks = _private_dir(tmp_path / "locks")
    hold_lock(locks / "gpu_1.lock")
    lock = DeviceLock(["gpu:1", "cpu:package-0"], str(locks))  # cpu_... is locked first
    with pytest.raises(LockTimeout) as info:
        lock.acquire(0.2)
    assert info.value.path == str(locks / "gpu_1.lock") and info.value.waited_s >= 0.2
    assert not lock.held and _held_elsewhere(locks / "cpu_package-0.lock") == "free"


@pytest.mark.parametrize(
    "text, seconds", [("30", 30.0), ("0", 0.0), (" 2.5 ", 2.5), ("-0", 0.0), ("1e1", 10.0)]
)
def test_parse_lock_timeout(text: str, seconds: float) -> None:
    from pytest_co2.measure.lock_policy import parse_lock_timeout

    assert parse_lock_timeout(text) == seconds


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "", "soon"])
def test_parse_lock_timeout_rejects(text: str) -> None:
    from pytest_co2.measure.lock_policy import parse_lock_timeout

    with pytest.raises(ValueError) as info:
        parse_lock_timeout(text)
    assert str(info.value) == (
        f"invalid lock timeout {text!r}: expected seconds >= 0 (e.g. 30; 0: do not wait)"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_a_lock_file_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    from pytest_co2.measure import lock_dir as exclusive
    from pytest_co2.measure.lock_dir import LockDirError, open_lock_dir

    locks = _private_dir(tmp_path / "locks")
    (locks / "gpu_0.lock").write_text("")
    fd = open_lock_dir(str(locks))  # the folder is ours
    os.close(fd)
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:  # the file (only) looks like another user's
        st = real_fstat(fd)
        if stat.S_ISREG(st.st_mode):
            fields = list(st)
            fields[stat.ST_UID] = st.st_uid + 1
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(exclusive.os, "fstat", fstat)
    with pytest.raises(LockDirError, match=r"gpu_0.lock' belongs to uid \d+, not to you"):
        DeviceLock(["gpu:0"], str(locks)).acquire(1.0)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.parametrize(
    ("mode", "warned"),
    [(0o777, True), (0o1777, True), (0o775, True), (0o755, False), (0o700, False)],
)
def test_a_lock_folder_others_may_write_to_is_a_warning(
    tmp_path: Path, mode: int, warned: bool
) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    locks.chmod(mode)
    policy = decide(True, (GPU,), concurrent=False, lock_dir=str(locks))
    auto = decide(None, (GPU,), concurrent=True, lock_dir=str(locks))
    expected = (
        f"pytest-co2: lock folder {str(locks)!r} is writable by other users (mode {mode:04o}): "
        "they can remove or pre-create its locks, so windows of two runs may overlap; run "
        f"`chmod go-w {locks}` or give --co2-lock-dir a private folder"
    )
    assert policy.warning == auto.warning == (expected if warned else None)
    # never for --co2-no-exclusive (no lock is taken) nor the default folder (made 0700)
    assert decide(False, (GPU,), concurrent=False, lock_dir=str(locks)).warning is None


def test_the_default_lock_folder_is_never_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmp_path / f"pytest-co2-locks-{os.getuid()}"
    folder.mkdir()
    folder.chmod(0o777)
    assert decide(True, (GPU,), concurrent=False).warning is None
