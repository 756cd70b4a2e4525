"""``pytest-co2 ab``: the paired A/B gate, with a fake runner over a real temporary git repo."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli as cli

import pytest_co2
from pytest_co2.reporting.ab import ABError, Side, run_ab

RUN = """
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(4):
        clock.advance(0.25)
"""  # constant:100 on a fake clock: 25 J per step in every window


@pytest.fixture
def template(fake_clock_pytester: pytest.Pytester) -> dict[str, Any]:
    """A real report of one measurement, to scale per fake run."""
    fake_clock_pytester.makepyfile(RUN)
    fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-json=r.json", "-p", "no:cacheprovider"
    ).assert_outcomes(passed=1)
    data: dict[str, Any] = json.loads((fake_clock_pytester.path / "r.json").read_text())
    assert data["tests"][0]["measurements"][0]["unit_energies_j"] == [25.0] * 4
    return data


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with one commit (tag ``v1``: code.txt "old") and a working-tree edit."""
    r = tmp_path / "proj"
    (r / "tests").mkdir(parents=True)
    git(r, "init", "-q")
    (r / "code.txt").write_text("old")
    (r / "tests" / "test_x.py").write_text("")
    git(r, "add", ".")
    git(r, "commit", "-qm", "one")
    git(r, "tag", "v1")
    (r / "code.txt").write_text("new")
    return r


class FakeRunner:
    """Writes the template report with every window scaled: A by 1, B by ``factors[i]``."""

    def __init__(self, template: dict[str, Any], factors: Sequence[float]) -> None:
        self.template, self.factors = template, factors
        self.calls: list[tuple[str, str, list[str], str]] = []
        self.plugins: list[Path] = []

    def __call__(self, side: Side, args: Sequence[str], report: Path) -> tuple[int, str]:
        i = sum(c[0] == side.label for c in self.calls)
        self.calls.append(
            (side.label, (side.root / "code.txt").read_text(), list(args), side.env["PYTHONPATH"])
        )
        self.plugins.append(Path(side.env["PYTHONPATH"].split(":")[0], "pytest_co2").resolve())
        f = 1.0 if side.label == "A" else self.factors[i]
        data = json.loads(json.dumps(self.template))
        m = data["tests"][0]["measurements"][0]
        m["unit_energies_j"] = [x * f for x in m["unit_energies_j"]]
        m["energy_per_unit_j"]["mean"] *= f
        report.write_text(json.dumps(data))
        return 0, ""


def test_a_25_percent_regression_fails_and_the_worktree_is_removed(
    repo: Path, template: dict[str, Any]
) -> None:
    factors = [math.exp(d) for d in (0.20, 0.22, 0.24, 0.26)]
    runner, lines = FakeRunner(template, factors), []
    rc = run_ab("v1", ["-q", "tests"], cwd=repo / "tests", runner=runner, echo=lines.append, env={"PYTHONPATH": str(repo)})  # fmt: skip
    assert rc == 1
    assert [c[0] for c in runner.calls] == ["A", "B"] * 4  # interleaved
    assert {c[1] for c in runner.calls if c[0] == "A"} == {"old"}  # A: the revision's files
    assert {c[1] for c in runner.calls if c[0] == "B"} == {"new"}  # B: the working tree
    assert all(c[2] == ["-q", "tests"] for c in runner.calls)
    a_path, b_path = runner.calls[0][3].split(":"), runner.calls[1][3].split(":")
    assert set(runner.plugins) == {Path(pytest_co2.__file__).resolve().parent}  # B's, for both
    assert a_path[1].endswith("/a") and str(repo) not in a_path  # B's code not on A's path
    assert b_path[1:] == [str(repo.resolve()), str(repo)]
    assert lines[1].startswith("test_a_25_percent_regression_fails_and_the_worktree_is_removed.py::test_train [default]: A 25.0 J -> B 31.5 J per unit (+25.9%): regression: +25.9% (99.17% +16.1% to +36.4%) > 10%")  # fmt: skip
    assert lines[-1] == (
        "ab: 1 of 1 measurements regressed beyond --fail=energy:10%; decided after 4 pairs"
    )
    assert "4, 6, 9, 14, 21, 32 pairs until decided (99.17% intervals at each look" in lines[0]
    assert git(repo, "worktree", "list").count("\n") == 0  # only the main checkout is left
    assert not Path(a_path[1]).exists()


def test_unchanged_passes_and_one_run_is_a_point_compare(
    repo: Path, template: dict[str, Any]
) -> None:
    lines: list[str] = []
    rc = run_ab("HEAD", [], runs=4, cwd=repo, runner=FakeRunner(template, [1.0, 1.01, 0.99, 1.02]), echo=lines.append)  # fmt: skip
    assert rc == 0 and lines[1].endswith(
        "(+0.5%): no regression: +0.5% (99.17% -3.4% to +4.6%) < 10%"
    )
    assert lines[-1] == (
        "ab: no regression beyond --fail=energy:10% in 1 measurements; decided after 4 pairs"
    )
    lines.clear()
    rc = run_ab("HEAD", [], runs=1, fail="energy:5%", cwd=repo, runner=FakeRunner(template, [1.2]), echo=lines.append)  # fmt: skip
    assert rc == 1 and lines[1].endswith(
        ": A 25.0 J -> B 30.0 J per unit (+20.0%): regression: +20.0% (point: one pair, no spread) > 5%"
    )


@pytest.mark.parametrize(
    ("against", "kwargs", "message"),
    [
        ("nosuch", {}, "unknown revision 'nosuch': expected a commit, branch or tag of "),
        ("v1", {"runs": 0}, "invalid --runs 0: expected an integer >= 1"),
        (
            "v1",
            {"runs": 5, "max_runs": 4},
            "invalid --max-runs 4: expected an integer >= --runs (5)",
        ),
        ("v1", {"max_time_s": 0.0}, "invalid --max-time 0.0: expected seconds > 0"),
        ("v1", {"fail": "co2e:5%"}, "invalid --fail 'co2e:5%': expected one energy threshold"),
        ("v1", {"fail": "energy"}, "invalid --fail 'energy': expected FIELD:PERCENT%"),
    ],
)
def test_bad_input_is_one_line(
    repo: Path, against: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ABError) as exc:
        run_ab(against, [], cwd=repo, runner=FakeRunner({}, []), **kwargs)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_outside_a_checkout_and_a_run_without_report(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    with pytest.raises(ABError, match=r"plain is not inside a git checkout: ab makes a worktree"):
        run_ab("HEAD", [], cwd=tmp_path / "plain")
    with pytest.raises(ABError, match=r"^run 1 of A wrote no report \(pytest exit 4\): boom$"):
        run_ab("HEAD", [], cwd=repo, runner=lambda s, a, r: (4, "boom"), echo=lambda _: None)
    assert git(repo, "worktree", "list").count("\n") == 0
    monkeypatch.chdir(tmp_path / "plain")
    rc, out, err = cli(capsys, "ab", "--against", "HEAD", "--", "-q")
    assert (
        rc == 2
        and out == ""
        and err.startswith("pytest-co2: error: ")
        and "not inside a git" in err
    )


def test_end_to_end_measures_the_revisions_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real pytest runs on the fake clock: A's step.py takes 0.25 s a step, the working
    tree's 0.30 s, so every window of B is exactly 20% above A's."""
    from conftest import FAKE_CLOCK_CONFTEST

    r = tmp_path / "proj"
    r.mkdir()
    git(r, "init", "-q")
    (r / "conftest.py").write_text(FAKE_CLOCK_CONFTEST)
    (r / "step.py").write_text("DT = 0.25\n")
    (r / "test_energy.py").write_text(
        "from step import DT\n\n\ndef test_train(co2_meter, clock):\n"
        "    for _ in co2_meter.steps(4, name='train'):\n        clock.advance(DT)\n"
    )
    git(r, "add", ".")
    git(r, "commit", "-qm", "one")
    (r / "step.py").write_text("DT = 0.30\n")
    monkeypatch.chdir(r)
    rc, out, err = cli(capsys, "ab", "--against", "HEAD", "--runs", "2", "--", "--co2-backend=constant:100", "-q")  # fmt: skip
    lines = out.splitlines()
    assert rc == 1, err
    assert lines[1] == (
        "test_energy.py::test_train [train]: A 25.0 J -> B 30.0 J per unit (+20.0%): "
        "regression: +20.0% (99.38% +20.0% to +20.0%) > 10%"
    )
    assert git(r, "worktree", "list").count("\n") == 0


def test_inconclusive_pairs_ask_for_more_until_decided(
    repo: Path, template: dict[str, Any]
) -> None:
    """Looks at 4, 6, 9, 14, 16 pairs (--max-runs 16) at 99% each: the first 4 ratios are
    too spread to decide (+22.1%, 99% -3.8% to +55.0%), the next two make it a regression
    at 6 pairs."""
    ds = [0.1, 0.3, 0.2, 0.2, 0.2, 0.2]
    runner, lines = FakeRunner(template, [math.exp(d) for d in ds]), []
    rc = run_ab("HEAD", [], max_runs=16, cwd=repo, runner=runner, echo=lines.append)
    assert rc == 1 and len(runner.calls) == 12
    assert lines[1] == "ab: 1 inconclusive after 4 pairs: more pairs"
    assert "regression: +22.1% (99% +10.1% to +35.5%) > 10%" in lines[2]
    assert lines[-1].endswith("regressed beyond --fail=energy:10%; decided after 6 pairs")


def test_the_last_look_and_the_time_cap_end_an_undecided_ab(
    repo: Path, template: dict[str, Any]
) -> None:
    spread = [1.0, 1.2] * 8  # +9.5% with a wide spread: inconclusive at every look
    lines: list[str] = []
    rc = run_ab("HEAD", [], runs=2, max_runs=5, cwd=repo, runner=FakeRunner(template, spread), echo=lines.append)  # fmt: skip
    assert rc == 0 and [x for x in lines if "more pairs" in x] == [
        "ab: 1 inconclusive after 2 pairs: more pairs",
        "ab: 1 inconclusive after 3 pairs: more pairs",
    ]
    assert lines[-1].endswith("; 1 still inconclusive after 5 pairs (--max-runs 5)")
    ticks = iter(range(0, 1000, 10))  # 10 s a pair (one tick per pair, one at the start)
    lines.clear()
    runner = FakeRunner(template, spread)
    rc = run_ab("HEAD", [], max_time_s=35.0, cwd=repo, runner=runner, echo=lines.append, clock=lambda: float(next(ticks)))  # fmt: skip
    assert len(runner.calls) == 6  # 3 pairs: 30 s; a 4th would end at 40 s
    assert lines[-1].endswith(
        "; 1 still inconclusive after 3 pairs: the next pair would pass --max-time 35 s"
    )


def test_the_cli_passes_the_caps(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = cli(capsys, "ab", "--against", "HEAD", "--runs", "5", "--max-runs", "4")
    assert rc == 2 and err.startswith(
        "pytest-co2: error: invalid --max-runs 4: expected an integer >= --runs (5)"
    )
    rc, _out, err = cli(capsys, "ab", "--against", "HEAD", "--max-time", "-1")
    assert rc == 2 and "invalid --max-time -1.0: expected seconds > 0" in err
