"""Version-1 reports written by an earlier pytest-co2 (``tests/data``) still load, keep
their session block exactly, and re-render to the same JSON as when they were written.

The files were written by the plugin before the session block became typed: a single
process run (CPU estimate with a user TDP, idle power, advice, a comparison), an xdist
controller's (the workers' facts) and the journal of a killed run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli as cli

from pytest_co2.reporting.storage import load_report

DATA = Path(__file__).parent / "data"
REPORTS = ["report_v1_single.json", "report_v1_xdist.json"]


@pytest.mark.parametrize("name", REPORTS)
def test_a_version_1_report_keeps_its_session_block_exactly(name: str) -> None:
    path = DATA / name
    written = json.loads(path.read_text(encoding="utf-8"))
    report = load_report(path)
    again = report.to_dict()
    assert again["session"] == written["session"]
    assert again["tests"] == written["tests"]
    assert again["totals"] == written["totals"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report_v1_single.json", "report_v1_single.rerendered_PL.json"),
        ("report_v1_xdist.json", "report_v1_xdist.rerendered_PL.json"),
        ("report_v1_killed.json.journal.jsonl", "report_v1_killed.rerendered_PL.json"),
    ],
)
def test_a_version_1_report_re_renders_as_it_did_when_written(
    name: str, expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parent.parent)  # the journal's path is in the output
    rc, out, _ = cli(capsys, "report", f"tests/data/{name}", "--region", "PL", "--json")
    assert rc == 0
    assert json.loads(out) == json.loads((DATA / expected).read_text(encoding="utf-8"))


def test_unknown_session_keys_survive_a_round_trip(tmp_path: Path) -> None:
    data = json.loads((DATA / "report_v1_single.json").read_text(encoding="utf-8"))
    data["session"]["added_by_a_plugin"] = {"ci_job": 42}
    data["session"]["added_by_a_newer_version"] = [1, 2]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    session = load_report(path).to_dict()["session"]
    assert session["added_by_a_plugin"] == {"ci_job": 42}
    assert session["added_by_a_newer_version"] == [1, 2]
    assert list(session) == list(data["session"])
