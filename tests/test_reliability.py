"""Fault classes: no path the plugin writes destroys data, no input crashes or hangs it.

One test per class, parametrized over its cases: (1) every path written, (2) numbers from
outside, (3) backends that misbehave, (4) control characters printed, (5) silent misuse.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from pytest_co2 import cli
from pytest_co2.fmt import printable
from pytest_co2.plugin import sigterm
from pytest_co2.reporting import storage
from pytest_co2.reporting.storage import (
    JOURNAL_SUFFIX,
    load_report,
    open_journal_fd,
    read_journal,
)

pytest_plugins = ["pytester"]

ONE_TEST = """
def test_a(co2_meter):
    with co2_meter.measure("w") as m:
        m.step()
"""

# -- class 1: every path the plugin writes ---------------------------------------------------


def _journal_of_a_killed_run(pytester: pytest.Pytester, target: str) -> Path:
    """A journal as a SIGKILLed run leaves it: the head line and one finished test."""
    pytester.makepyfile(ONE_TEST)
    pytester.runpytest("--co2-backend=constant:100", f"--co2-json={target}")
    report = json.loads((pytester.path / target).read_text())
    (pytester.path / target).unlink()
    journal = pytester.path / (target + JOURNAL_SUFFIX)
    head = {"journal": 1, "session": report["session"]}
    journal.write_text(json.dumps(head) + "\n" + json.dumps(report["tests"][0]) + "\n")
    return journal


def test_a_planted_journal_link_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / ("o.json" + JOURNAL_SUFFIX)
    link.symlink_to(victim)
    with pytest.raises(OSError):
        open_journal_fd(str(link))
    dangling = tmp_path / ("d.json" + JOURNAL_SUFFIX)
    dangling.symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(OSError):
        open_journal_fd(str(dangling))
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "elsewhere.txt").exists()


@pytest.mark.parametrize(
    "case",
    ["journal link", "recovery target a folder", "json=markdown", "markdown=baseline",
     "json=intensity file", "fifo json", "another writer"],
)  # fmt: skip
def test_class1_no_path_written_destroys_data(pytester: pytest.Pytester, case: str) -> None:
    pytester.makepyfile(ONE_TEST)
    args = ["--co2-backend=constant:100", "-p", "no:cacheprovider"]
    if case == "journal link":
        (pytester.path / "victim.txt").write_text("keep me")
        (pytester.path / ("o.json" + JOURNAL_SUFFIX)).symlink_to(pytester.path / "victim.txt")
        result = pytester.runpytest(*args, "--co2-json=o.json")
        assert result.ret == 0
        assert (pytester.path / "victim.txt").read_text() == "keep me"
        result.stdout.fnmatch_lines(["*is not a regular file (a link?): left alone*"])
    elif case == "recovery target a folder":
        journal = _journal_of_a_killed_run(pytester, "o.json")
        (pytester.path / "o.recovered.json").mkdir()  # an earlier name is never overwritten
        pytester.runpytest(*args, "--co2-json=o.json")
        assert len(load_report(pytester.path / "o-2.recovered.json").tests) == 1
        assert not journal.exists()
        journal = _journal_of_a_killed_run(pytester, "o.json")
        real_write = storage.write_atomic

        def failing(path: str, data: object) -> None:
            if "recovered" in os.fspath(path):
                raise OSError(21, "Is a directory")
            real_write(path, data)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(storage, "write_atomic", failing)
            result = pytester.runpytest(*args, "--co2-json=o.json")
        assert result.ret == 0
        assert len(read_journal(str(journal)).tests) == 1  # kept, not unlinked
        assert "pytest-co2: could not write o-3.recovered.json: [Errno 21] Is a directory" in (
            result.outlines
        )
    elif case in ("json=markdown", "markdown=baseline", "json=intensity file"):
        if case == "json=markdown":
            extra, message = (
                ["--co2-json=out", "--co2-markdown=out"],
                "--co2-json and --co2-markdown",
            )
        elif case == "markdown=baseline":
            pytester.runpytest(*args, "--co2-save=main")
            extra = ["--co2-compare=main", "--co2-markdown=.co2/main.json"]
            message = "--co2-markdown and --co2-compare"
        else:
            (pytester.path / "my.csv").write_text("region,year,month,g_co2e_per_kwh\nSE,2023,,40\n")
            extra = ["--co2-json=my.csv", "--co2-intensity-file=my.csv"]
            message = "--co2-json and --co2-intensity-file"
        before = {p.name: p.read_bytes() for p in pytester.path.rglob("*") if p.is_file()}
        result = pytester.runpytest(*args, *extra)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"{message} name one file" in result.stderr.str()
        after = {p.name: p.read_bytes() for p in pytester.path.rglob("*") if p.is_file()}
        assert {k: v for k, v in after.items() if k in before} == before
    elif case == "fifo json":
        os.mkfifo(pytester.path / "pipe")
        result = pytester.runpytest(*args, "--co2-json=pipe")  # no reader: never blocks
        assert result.ret == 0
        assert any("could not write pipe" in line for line in result.outlines)
    else:  # another run wrote the same report while this one ran
        pytester.makepyfile(
            test_other="""
import json

def test_b(co2_meter):
    with open("o.json", "w") as f:
        json.dump({"other": "run"}, f)
    with co2_meter.measure("w") as m:
        m.step()
"""
        )
        result = pytester.runpytest(*args, "--co2-json=o.json")
        assert result.ret == 0
        assert json.loads((pytester.path / "o.json").read_text()) == {"other": "run"}
        beside = pytester.path / f"o.{result_pid(result)}.json"
        assert len(load_report(beside).tests) == 2
        assert any("was written by another run meanwhile" in line for line in result.outlines)


def result_pid(result: pytest.RunResult) -> int:
    return os.getpid()  # runpytest runs the inner session in this process


# -- class 2: numbers from outside ------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--co2-pue=1e300"], "invalid PUE '1e300': expected at most 100"),
        (["--co2-intensity=1e300"], "invalid intensity '1e300'"),
        (["--co2-extrapolate=" + "9" * 400], "invalid count '99999999"),
    ],
)
def test_class2_options_bound_their_products(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(ONE_TEST)
    result = pytester.runpytest("--co2-backend=constant:100", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize(
    "case, message",
    [
        ("1e308", "energy_j: unexpected value 1e+308"),
        ("-5", "energy_j: unexpected value -5"),
        ("NaN", "NaN is not a number a report holds"),
        ("nested", "JSON nested too deeply"),
        ("journal session a list", "'session' is not an object"),
        ("/dev/zero", "not a regular file"),
        ("fifo", "not a regular file"),
    ],
)
def test_class2_bad_reports_are_one_line(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    path = str(pytester.path / "r.json")
    if case in ("1e308", "-5", "NaN"):
        pytester.makepyfile(ONE_TEST)
        pytester.runpytest("--co2-backend=constant:100", "--co2-json=r.json")
        data = json.loads(Path(path).read_text())
        data["tests"][0]["measurements"][0]["energy_j"] = "ENERGY"
        Path(path).write_text(json.dumps(data).replace('"ENERGY"', case))
    elif case == "nested":
        Path(path).write_text("[" * 200_000 + "]" * 200_000)
    elif case == "journal session a list":
        path += JOURNAL_SUFFIX
        Path(path).write_text('{"journal": 1, "session": [["a", 1]]}\n')
    elif case == "fifo":
        os.mkfifo(path)
    else:
        path = case
    for command in ("report", "advise"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, path])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err  # one line


def test_class2_convert_bounds_the_energy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["convert", "--energy-kwh", "1e308", "--pue", "10"])
    assert exit_.value.code == 2
    assert (
        "invalid energy '1e308': give the energy in kWh, at most 1e+09" in capsys.readouterr().err
    )


# -- class 3: backends that misbehave ---------------------------------------------------------

BACKEND_CONFTEST = """
import math, threading
from pytest_co2.backends.base import Backend, BackendError, Device, Method

RELEASE = threading.Event()

class Odd(Backend):
    name = "odd"

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.reads = 0
        self.devices = (Device("odd:0", "simulated", "odd device", Method.COUNTER),)

    def read_j(self):
        self.reads += 1
        good = [float(self.reads)]
        if self.mode == "nan":
            return [math.nan]
        if self.reads < 5:  # test_a's window and test_b's first step read well
            return good
        if self.mode == "hang":
            RELEASE.wait()
            return good
        return {"two": [1.0, 2.0], "none": None, "empty": [], "text": ["1.0"],
                "huge": [1e307], "ok": good}[self.mode]

    def close(self):
        RELEASE.set()
        if self.mode == "close":
            raise RuntimeError("the device went away")

def pytest_co2_make_backend(config, spec):
    kind = spec.split(":", 1)[1] if spec.startswith("odd:") else None
    if kind == "ctor":
        raise BackendError("no odd device here: plug one in")
    if kind == "ctor-any":
        raise KeyError("odd")
    if kind == "42":
        return 42
    return None if kind is None else Odd(kind)
"""

TWO_TESTS = """
def test_a(co2_meter):
    with co2_meter.measure("w") as m:
        m.step()

def test_b(co2_meter):
    with co2_meter.measure("w") as m:
        for _ in range(3):
            m.step()
"""


@pytest.mark.parametrize(
    "mode, why",
    [
        ("nan", "for device 0: expected a finite number"),
        ("two", "returned 2 values for 1 device(s)"),
        ("none", "returned None: expected a list of 1 numbers"),
        ("empty", "returned 0 values for 1 device(s)"),
        ("text", "returned '1.0' for device 0: expected a number"),
        ("huge", "returned 1e+307 for device 0: expected a finite number"),
        ("hang", "did not return within 2 s (--co2-read-timeout)"),
    ],
)
def test_class3_a_bad_reading_is_a_fault_never_a_figure(
    pytester: pytest.Pytester, mode: str, why: str
) -> None:
    pytester.makeconftest(
        BACKEND_CONFTEST
        + "\ndef pytest_co2_backend_names(config):\n    return ['odd:"
        + mode
        + "']\n"
    )
    pytester.makepyfile(TWO_TESTS)
    result = pytester.runpytest(f"--co2-backend=odd:{mode}", "--co2-json=o.json",
                                "--co2-read-timeout=2", "-W", "ignore::RuntimeWarning")  # fmt: skip
    assert result.ret == 0  # the user's tests pass: the plugin's fault is not theirs
    report = load_report(pytester.path / "o.json")
    measured = {t.nodeid.rsplit("::", 1)[1]: t.results for t in report.tests}
    if mode == "nan":  # not even the start reads: nothing is recorded, never a 0 J figure
        assert all(not results for results in measured.values())
        return
    assert (
        measured["test_a"][0].measurement.energy_j == 1.0
        and measured["test_a"][0].measurement.complete
    )
    partial = measured["test_b"][0].measurement
    assert not partial.complete
    assert any(why in note for note in partial.notes), partial.notes


@pytest.mark.parametrize(
    "mode, message",
    [
        ("ctor", "could not be opened: BackendError: no odd device here: plug one in"),
        ("ctor-any", "could not be opened: KeyError: 'odd'"),
        ("42", "could not be opened: the pytest_co2_make_backend hook returned 42"),
        ("close", None),
    ],
)
def test_class3_a_backend_that_cannot_open_or_close_is_one_line(
    pytester: pytest.Pytester, mode: str, message: str | None
) -> None:
    pytester.makeconftest(
        BACKEND_CONFTEST
        + "\ndef pytest_co2_backend_names(config):\n    return ['odd:"
        + mode
        + "']\n"
    )
    pytester.makepyfile(TWO_TESTS)
    result = pytester.runpytest_subprocess(f"--co2-backend=odd:{mode}")
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "provider.py" not in text
    if message is None:
        assert result.ret == 0
        assert "pytest-co2: closing the backend failed: RuntimeError: the device went away" in text
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"pytest-co2: backend 'odd:{mode}' {message}" in text


# -- class 4: control characters ---------------------------------------------------------------

EVIL = "ok\x1b[2J\x1b[31mFAKE PASS\rX"


def test_class4_control_characters_are_escaped(pytester: pytest.Pytester) -> None:
    assert printable(EVIL) == "ok\\x1b[2J\\x1b[31mFAKE PASS\\x0dX"
    assert printable("a\nb\u202ec", keep="\n") == "a\nb\\u202ec"
    pytester.makepyfile(
        f"""
def test_a(co2_meter):
    with co2_meter.measure({EVIL!r}) as m:
        m.step()
"""
    )
    result = pytester.runpytest_subprocess(
        "--co2-backend=constant:100", "--co2-json=o.json", "--co2-markdown=o.md"
    )
    assert result.ret == 0
    text = result.stdout.str()
    assert "\x1b" not in text and "\r" not in text and "ok\\x1b[2J" in text
    assert "\x1b" not in (pytester.path / "o.md").read_text()
    # the command through this interpreter: a console script on PATH is the environment's
    # (an unactivated venv has none), not what this test is about
    out = pytester.run(sys.executable, "-m", "pytest_co2", "report", "o.json")
    assert out.ret == 0 and "\x1b" not in out.stdout.str()


# -- class 5: silent misuse ----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["kept meter", "sigterm twice"])
def test_class5_misuse_is_said(pytester: pytest.Pytester, case: str) -> None:
    if case == "sigterm twice":
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            sigterm.install()
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            with pytest.raises(KeyboardInterrupt):
                handler(signal.SIGTERM, None)
            assert handler(signal.SIGTERM, None) is None  # the second: ignored, no traceback
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    pytester.makepyfile(
        """
KEPT = []

def test_a(co2_meter):
    KEPT.append(co2_meter)

def test_b():
    with KEPT[0].measure("late") as m:
        m.step()
"""
    )
    result = pytester.runpytest("--co2-backend=constant:100")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*this co2_meter belongs to the test*test_a*which has ended*"])


@pytest.mark.parametrize("value", ["1e308", "NaN"])
def test_class2_a_bad_baseline_is_a_usage_error_at_start(
    pytester: pytest.Pytester, value: str
) -> None:
    pytester.makepyfile(ONE_TEST)
    pytester.runpytest("--co2-backend=constant:100", "--co2-save=main")
    saved = pytester.path / ".co2" / "main.json"
    data = json.loads(saved.read_text())
    data["tests"][0]["measurements"][0]["energy_j"] = "ENERGY"
    saved.write_text(json.dumps(data).replace('"ENERGY"', value))
    result = pytester.runpytest("--co2-backend=constant:100", "--co2-compare=main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "baseline" in err and "main.json" in err and "Traceback" not in err
