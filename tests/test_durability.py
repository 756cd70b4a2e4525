"""Nothing is lost: a killed run keeps every finished test in its journal, the next run and
``pytest-co2 report`` recover it, and SIGTERM ends a run like Ctrl-C (reports written)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import FAKE_CLOCK_CONFTEST

FIVE_TESTS = """
import os, signal
import pytest

@pytest.mark.parametrize("k", range(5))
def test_step(co2_meter, clock, k):
    if k == KILL_AT:
        (HOW)()
    with co2_meter.measure("m"):
        clock.advance(0.5 * (k + 1))
"""


def run(tmp_path: Path, kill_at: int, how: str, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(FAKE_CLOCK_CONFTEST)
    body = FIVE_TESTS.replace("KILL_AT", str(kill_at)).replace("HOW", how)
    (tmp_path / "test_five.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_ADDOPTS"] = "-p no:randomly -p no:cacheprovider"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--co2-backend=constant:100", "--co2-json=r.json", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "how", ["lambda: os.kill(os.getpid(), signal.SIGKILL)", "lambda: os._exit(3)"]
)
def test_a_killed_run_keeps_every_finished_test(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = run(tmp_path, 3, how)
    assert proc.returncode in (-signal.SIGKILL, 3)
    assert not (tmp_path / "r.json").exists()  # the run never reached its end
    journal = tmp_path / "r.json.journal.jsonl"
    lines = journal.read_text().splitlines()
    assert json.loads(lines[0])["journal"] == 1
    records = [json.loads(x) for x in lines[1:]]
    assert [r["nodeid"].split("::")[1] for r in records] == [f"test_step[{k}]" for k in range(3)]
    assert [r["measurements"][0]["energy_j"] for r in records] == [50.0, 100.0, 150.0]  # exact

    # pytest-co2 report reads the journal of the killed run
    from cli_helpers import run_cli

    rc, out, err = run_cli(capsys, "report", str(tmp_path / "r.json"), "--json")
    assert rc == 0 and "recovered from the journal" in err
    data = json.loads(out)
    assert data["totals"]["energy_j"] == 300.0 and data["session"]["recovered_from"] == str(journal)

    # the next run recovers it into r.recovered.json and starts a journal of its own
    proc = run(tmp_path, 99, "print")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "an earlier run was killed: its 3 finished tests were recovered" in proc.stdout
    recovered = json.loads((tmp_path / "r.recovered.json").read_text())
    assert len(recovered["tests"]) == 3 and recovered["totals"]["energy_j"] == 300.0
    assert len(json.loads((tmp_path / "r.json").read_text())["tests"]) == 5
    assert not journal.exists()  # removed once the report is written


def test_a_torn_last_line_is_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(tmp_path, 2, "lambda: os._exit(3)")
    journal = tmp_path / "r.json.journal.jsonl"
    with journal.open("a") as f:
        f.write('{"nodeid": "half-writ')  # the kill came in the middle of a write
    from cli_helpers import run_cli

    rc, out, _ = run_cli(capsys, "report", str(journal), "--json")
    assert rc == 0 and len(json.loads(out)["tests"]) == 2


def test_sigterm_ends_the_run_like_ctrl_c(tmp_path: Path) -> None:
    proc = run(tmp_path, 2, "lambda: os.kill(os.getpid(), signal.SIGTERM)")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["session"]["interrupted"] is True and data["session"]["exit_status"] == 2
    assert [t["measurements"][0]["energy_j"] for t in data["tests"]] == [50.0, 100.0]
    assert not (tmp_path / "r.json.journal.jsonl").exists()
    # the output says the run was stopped, and why the banner points at the handler
    out = " ".join(proc.stdout.split())
    assert (
        "co2: the run was interrupted (Ctrl-C or SIGTERM): these figures cover the 2 measured "
        "tests that finished before it stopped (an interrupted run saves no baseline)"
    ) in out
    assert (
        "KeyboardInterrupt: SIGTERM (a CI timeout or kill): the run was stopped, not a crash" in out
    )


SYNC_TESTS = """
import pytest

def test_short(clock):
    clock.advance(0.5)

def test_long(clock):
    clock.advance(2.0)

@pytest.mark.co2_budget(kg=1.0)
def test_budget(clock):
    clock.advance(0.1)
"""


def test_journal_lines_are_synced_after_tests_that_measured_long_or_have_a_budget(
    fake_clock_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync costs milliseconds on a disk: under --co2-all a trivial test's line is written
    at once (a killed process keeps it) and synced with the next long test's."""
    from pytest_co2.reporting.storage import Journal

    appended: list[tuple[str, bool]] = []
    append = Journal.append

    def spy(self: Journal, record: dict, session: object, *, sync: bool = True) -> None:
        appended.append((record["nodeid"].split("::")[1], sync))
        append(self, record, session, sync=sync)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "append", spy)
    fake_clock_pytester.makepyfile(SYNC_TESTS)
    fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-json=r.json", "--co2-all"
    ).assert_outcomes(passed=3)
    assert appended == [("test_short", False), ("test_long", True), ("test_budget", True)]


def test_a_journal_that_stays_is_synced_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_co2.reporting import storage

    synced: list[int] = []
    monkeypatch.setattr(storage.os, "fsync", synced.append)
    journal = storage.Journal(str(tmp_path / "r.json.journal.jsonl"))
    session = SimpleNamespace(to_dict=dict)  # the head line's session block
    journal.append({"nodeid": "t"}, lambda: session, sync=False)  # type: ignore[arg-type,return-value]
    assert synced == []
    journal.close(remove=False)
    assert len(synced) == 1 and (tmp_path / "r.json.journal.jsonl").exists()
