"""``pytest-co2 history``: the saved runs in commit order, each measurement's energy per unit
with its 95% interval, the first significant change flagged by the compare's decision; the
commit a saved run records (``session.vcs``); the PNG plot."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli
from history_runs import commit, record, result, save, scaled

from pytest_co2.measure.stats import t975
from pytest_co2.reporting.session import SessionInfo
from pytest_co2.reporting.vcs import CommitInfo, detect_commit, git_runner

TRAIN = "tests/test_model.py::test_train"
SAMPLE = "tests/test_model.py::test_sample"


def runs_at(factor: float) -> list:
    """test_train's train steps scaled by ``factor``; test_sample unchanged."""
    return [
        record(TRAIN, result("train", scaled(factor))),
        record(SAMPLE, result("sample", scaled(2.0), unit="sample")),
    ]


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """Three runs with a +30% step at the second commit, saved out of commit order (their
    save times and file times: third, first, second)."""
    d = tmp_path / ".co2"
    save(d, "third", runs_at(1.3), saved_day=10, vcs=commit(3, 3))
    save(d, "first", runs_at(1.0), saved_day=11, vcs=commit(1, 1))
    save(d, "second", runs_at(1.3), saved_day=12, vcs=commit(2, 2, dirty=True))
    return d


def history_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    rc, out, err = run_cli(capsys, "history", *argv, "--json")
    assert (rc, err) == (0, "")
    return json.loads(out)


def series(data: dict, name: str) -> dict:
    (s,) = [s for s in data["series"] if s["name"] == name]
    return s


def test_the_step_is_flagged_at_its_commit(
    capsys: pytest.CaptureFixture[str], storage: Path
) -> None:
    data = history_json(capsys, "--storage-dir", str(storage))
    assert [r["name"] for r in data["runs"]] == ["first", "second", "third"]  # commit order
    assert [r["vcs"]["short"] for r in data["runs"]] == ["1111111", "2222222", "3333333"]
    assert [r["ordered_by"] for r in data["runs"]] == ["commit time"] * 3
    assert data["threshold"] == "energy:10%"
    train = series(data, "train")
    assert (train["nodeid"], train["first_change"]) == (TRAIN, "second")
    points = train["points"]
    assert [p["run"] for p in points] == ["first", "second", "third"]
    assert [p["verdict"] for p in points] == [None, "regression", "no significant change"]
    assert [p["flagged"] for p in points] == [False, True, False]
    assert [p["reference"] for p in points] == [None, "first", "second"]  # the step re-bases
    # mean +- t(0.975, 4) x sem of the five windows: sem = sqrt(0.001 / 4 / 5)
    half = t975(4) * math.sqrt(0.001 / 4 / 5)
    assert half == pytest.approx(0.01963, abs=1e-5)
    assert [p["energy_per_unit_j"] for p in points] == pytest.approx([1.0, 1.3, 1.3], rel=1e-12)
    assert points[0]["low_j"] == pytest.approx(1.0 - half, rel=1e-12)
    assert points[1]["high_j"] == pytest.approx(1.3 + 1.3 * half, rel=1e-12)
    step = points[1]["decision"]
    assert (step["outcome"], step["method"], step["n"]) == ("regression", "trimmed", 5)
    # Yuen's trimmed means: log(1.3) +- t(0.975, 4) x sqrt(2 x 4 x 0.0001 / (3 x 2)), the
    # winsorized variance 0.0001 of each run's windows (relative to its trimmed mean)
    log_half = t975(4) * math.sqrt(2 * 4 * 0.0001 / 6)
    assert step["change"] == pytest.approx(0.3, rel=1e-12)
    assert (step["low"], step["high"]) == pytest.approx(
        (math.expm1(math.log(1.3) - log_half), math.expm1(math.log(1.3) + log_half)), abs=2e-5
    )
    assert points[2]["decision"]["change"] == pytest.approx(0.0, abs=1e-12)
    sample = series(data, "sample")
    assert sample["first_change"] is None
    assert [p["verdict"] for p in sample["points"]] == [None, *["no significant change"] * 2]


def test_the_table(
    capsys: pytest.CaptureFixture[str], storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    rc, out, err = run_cli(capsys, "history", "test_train", "--storage-dir", str(storage))
    assert (rc, err) == (0, "")
    # the first line names the storage path: as long as the tmp path, it may wrap
    assert " ".join(out.split()).startswith(
        f"3 saved runs in {storage}, in commit order (the commit time, then the save time):"
    )
    lines = out.splitlines()
    runs = lines.index("  #  run     commit    branch  committed (UTC)")
    assert lines[runs : runs + 5] == [
        "  #  run     commit    branch  committed (UTC)",
        "  1  first   1111111   main    2026-01-01 10:00",
        "  2  second  2222222*  main    2026-01-02 10:00",
        "  3  third   3333333   main    2026-01-03 10:00",
        "*: the work tree had uncommitted changes",
    ]
    start = lines.index("  #  J/step  95%            change (95%)               vs #  verdict")
    assert lines[start + 1 :] == [
        "  1  1.00    0.980 to 1.02                                   reference",
        "  2  1.30    1.27 to 1.33   +30.0% (+25.9% to +34.2%)  1     regression",
        "  3  1.30    1.27 to 1.33   +0.0% (-3.2% to +3.3%)     2     no change",
        "first significant change at #2 second (2222222*): regression: +30.0% (95% +25.9% to "
        "+34.2%) > 10%",
    ]
    assert "test_sample" not in out  # the pattern


def test_every_line_fits_80_columns(capsys: pytest.CaptureFixture[str], storage: Path) -> None:
    rc, out, _ = run_cli(capsys, "history", "--storage-dir", str(storage))
    # a path longer than that is the one word of its line, whole (it is copied)
    assert rc == 0 and all(len(line) <= 80 or len(line.split()) == 1 for line in out.splitlines())
    assert "  3  1.30    1.27 to 1.33   +0.0% (-3.2% to +3.3%)     2     no change" in out


def test_runs_without_a_commit_are_listed_by_save_time(
    capsys: pytest.CaptureFixture[str], storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(storage, "old", runs_at(1.0), saved_day=1)  # before commits were recorded
    save(storage, "late", runs_at(1.3), saved_day=5)  # outside git
    data = history_json(capsys, "--storage-dir", str(storage))
    runs = [(r["name"], r["ordered_by"], r["vcs"]) for r in data["runs"]]
    assert [r[0] for r in runs] == ["first", "old", "second", "third", "late"]
    assert runs[1] == ("old", "save time", None) and runs[4] == ("late", "save time", None)
    assert data["runs"][1]["saved"] == "2026-01-01T12:00:00+00:00"
    assert [p["run"] for p in series(data, "train")["points"]][1] == "old"
    monkeypatch.setenv("COLUMNS", "200")
    rc, out, _ = run_cli(capsys, "history", "--storage-dir", str(storage))
    assert rc == 0
    assert "  2  old     -         -       saved 2026-01-01 12:00" in out.splitlines()
    assert (
        "2 runs have no commit (saved before commits were recorded, or outside git), placed "
        "by save time: old, late"
    ) in out.splitlines()


def test_an_improvement_is_flagged_and_last_n(
    capsys: pytest.CaptureFixture[str], storage: Path
) -> None:
    save(storage, "fourth", runs_at(0.9), saved_day=13, vcs=commit(4, 4))  # -30.8% of 1.3
    data = history_json(capsys, "--storage-dir", str(storage), "--last", "2", "train")
    assert [r["name"] for r in data["runs"]] == ["third", "fourth"]
    (train,) = data["series"]
    assert [p["verdict"] for p in train["points"]] == [None, "improvement"]
    assert train["first_change"] == "fourth"
    assert train["points"][1]["decision"]["change"] == pytest.approx(0.9 / 1.3 - 1, rel=1e-12)
    # a threshold above the drop: inconclusive or no change, never flagged
    data = history_json(capsys, "--storage-dir", str(storage), "--threshold", "50%")
    assert series(data, "train")["first_change"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--last", "0"], "argument --last: invalid --last '0': expected a whole number >= 1"),
        (
            ["--threshold", "ten"],
            "argument --threshold: invalid --threshold 'ten': expected a percentage >= 0, e.g. 10%",
        ),
        (["nothing-like-it"], "no measurement of the 3 saved runs matches 'nothing-like-it'"),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], storage: Path, argv: list[str], message: str
) -> None:
    rc, out, err = run_cli(capsys, "history", "--storage-dir", str(storage), *argv)
    assert (rc, out) == (2, "")
    assert err.splitlines() == [f"pytest-co2: error: {message}"]


def test_one_run_has_nothing_to_compare(capsys: pytest.CaptureFixture[str], storage: Path) -> None:
    rc, out, _ = run_cli(capsys, "history", "train", "--last", "1", "--storage-dir", str(storage))
    lines = out.splitlines()
    assert rc == 0 and " ".join(out.split()).startswith(f"1 saved run in {storage}")
    assert lines[-1] == "one run: nothing to compare yet"


def test_an_unreadable_file_is_skipped_with_a_warning(
    capsys: pytest.CaptureFixture[str], storage: Path
) -> None:
    (storage / "broken.json").write_text("{not json")
    rc, out, err = run_cli(capsys, "history", "--storage-dir", str(storage), "--json")
    assert rc == 0 and [r["name"] for r in json.loads(out)["runs"]] == ["first", "second", "third"]
    (line,) = err.splitlines()
    assert line.startswith(f"pytest-co2: warning: skipped saved run '{storage / 'broken.json'}'")
    assert "is not JSON" in line


def test_no_saved_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "history", "--storage-dir", str(tmp_path / "none"))
    assert rc == 2
    assert err.splitlines() == [
        f"pytest-co2: error: no saved run in {tmp_path / 'none'}: save runs with "
        "pytest --co2-save=NAME"
    ]


def test_the_plot_is_a_png(capsys: pytest.CaptureFixture[str], storage: Path) -> None:
    pytest.importorskip("matplotlib")
    png = storage.parent / "out" / "history.png"
    rc, out, err = run_cli(capsys, "history", "--storage-dir", str(storage), "--plot", str(png))
    # wrapped to the terminal (COLUMNS): the path, whole, may be on a line of its own
    assert (rc, err) == (0, "") and " ".join(out.split()).endswith(f"wrote {png}")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert not list(png.parent.glob(".co2-*"))  # written atomically


def test_the_plot_without_matplotlib_is_one_line(
    capsys: pytest.CaptureFixture[str], storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    png = storage.parent / "h.png"
    rc, out, err = run_cli(capsys, "history", "--storage-dir", str(storage), "--plot", str(png))
    assert (rc, out) == (2, "")
    assert err.splitlines() == [
        "pytest-co2: error: --plot needs matplotlib: pip install 'pytest-co2[plot]'"
    ]
    assert not png.exists()


# -- the commit of a saved run ------------------------------------------------------------


def git(repo: Path, *args: str, day: int = 1) -> str:
    when = f"2026-01-{day:02d}T10:00:00+00:00"
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    proc = subprocess.run(
        ["git", *ident, "-C", str(repo), *args],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    return proc.stdout.strip()


WORKLOAD = """
import pathlib

FACTOR = float(pathlib.Path(__file__).with_name("factor.txt").read_text())

def test_train(co2_meter, clock):
    for _ in co2_meter.steps(8, name="train"):
        clock.advance(0.125 * FACTOR)
"""


def test_saved_runs_of_a_git_repo_in_commit_order(
    fake_clock_pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three commits (the second makes a step 30% dearer), saved third, first, second: the
    history puts them in commit order and flags the second commit."""
    repo = fake_clock_pytester.path
    fake_clock_pytester.makepyfile(test_work=WORKLOAD)
    git(repo, "init", "-q", "-b", "main")
    hashes = []
    for day, factor in ((1, 1.0), (2, 1.3), (3, 1.3)):
        (repo / "factor.txt").write_text(repr(factor) + "\n" * day)  # a change to commit
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"day {day}", day=day)
        hashes.append(git(repo, "rev-parse", "HEAD"))
    args = ["--co2-backend=constant:100", "-p", "no:cacheprovider", "-p", "no:randomly"]
    for name, index in (("third", 2), ("first", 0), ("second", 1)):
        git(repo, "checkout", "-q", hashes[index])
        assert fake_clock_pytester.runpytest(*args, f"--co2-save={name}").ret == 0
    saved = json.loads((repo / ".co2" / "first.json").read_text())["session"]["vcs"]
    assert saved == {
        "system": "git",
        "commit": hashes[0],
        "short": hashes[0][:7],
        "branch": None,  # a detached HEAD
        "dirty": False,  # the untracked .co2 folder does not count
        "committed": "2026-01-01T10:00:00+00:00",
    }
    capsys.readouterr()  # the inner runs' output
    data = history_json(capsys, "--storage-dir", str(repo / ".co2"))
    assert [r["vcs"]["commit"] for r in data["runs"]] == hashes
    (train,) = data["series"]
    assert train["first_change"] == "second"
    # 100 W x 0.125 s per step: 12.5 J, then 16.25 J
    assert [p["energy_per_unit_j"] for p in train["points"]] == pytest.approx([12.5, 16.25, 16.25])
    assert [p["flagged"] for p in train["points"]] == [False, True, False]


def test_no_git_no_commit(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(test_work=WORKLOAD)
    (fake_clock_pytester.path / "factor.txt").write_text("1.0")
    result = fake_clock_pytester.runpytest("--co2-backend=constant:100", "--co2-save=x")
    assert result.ret == 0
    session = json.loads((fake_clock_pytester.path / ".co2" / "x.json").read_text())["session"]
    assert "vcs" not in session  # not a repository: absent, not an error


def test_detect_commit_branch_and_dirty(tmp_path: Path) -> None:
    assert detect_commit(tmp_path) is None  # not a repository
    git(tmp_path, "init", "-q", "-b", "trunk")
    assert detect_commit(tmp_path) is None  # no commit yet
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".co2").mkdir()
    (tmp_path / ".co2" / "main.json").write_text("{}")  # saved runs kept in git
    git(tmp_path, "add", "a.txt", ".co2")
    git(tmp_path, "commit", "-q", "-m", "a", day=7)
    (tmp_path / ".co2" / "main.json").write_text("{} ")  # saved over
    assert detect_commit(tmp_path).dirty is True  # type: ignore[union-attr]
    assert detect_commit(tmp_path, ignore=[".co2"]).dirty is False  # type: ignore[union-attr]
    info = detect_commit(tmp_path, ignore=[".co2"])
    assert info is not None
    assert (info.branch, info.dirty, info.committed) == (
        "trunk",
        False,
        "2026-01-07T10:00:00+00:00",
    )
    assert info.commit == git(tmp_path, "rev-parse", "HEAD") and info.label() == info.short
    (tmp_path / "untracked.txt").write_text("u")
    assert detect_commit(tmp_path, ignore=[".co2"]).dirty is False  # type: ignore[union-attr]
    (tmp_path / "a.txt").write_text("changed")
    info = detect_commit(tmp_path, ignore=[".co2"])
    assert info is not None and info.dirty is True and info.label() == info.short + "*"


def test_git_missing_or_hanging_is_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert detect_commit(tmp_path) is None
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 30\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    assert detect_commit(tmp_path, git=git_runner(tmp_path, timeout_s=0.2)) is None


def test_a_fake_runner_and_the_session_round_trip() -> None:
    answers = {
        "log": f"{'a' * 40}\naaaaaaa\n2026-01-02T03:04:05+01:00\n",
        "symbolic-ref": None,  # detached
        "status": " M x.py\n",
    }
    info = detect_commit("/nowhere", git=lambda args: answers[args[0]])
    assert info == CommitInfo("a" * 40, "aaaaaaa", None, True, "2026-01-02T03:04:05+01:00")
    assert info.committed_at is not None and info.committed_at.hour == 3
    session = SessionInfo(started="2026-01-02T04:00:00+01:00", vcs=info)
    d = session.to_dict()
    assert d["vcs"]["commit"] == "a" * 40 and SessionInfo.from_dict(d) == session
    assert "vcs" not in SessionInfo().to_dict()  # absent when none: older readers unaffected
    assert SessionInfo.from_dict({"started": "x"}).vcs is None  # a report before commits
