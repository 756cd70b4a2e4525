"""The typed session block: exact round trips, lenient on unknown keys, one-line errors
naming the bad field, and the user-TDP flag the report reads from the estimate backend."""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

import pytest
from test_backend_estimate import backend_on, zen5_guest

from pytest_co2.backends.base import Device, Method
from pytest_co2.plugin.provider import HandedFacts
from pytest_co2.reporting.model import ReportError
from pytest_co2.reporting.session import SessionInfo, session_info
from pytest_co2.reporting.session_parts import ExclusiveInfo, IdleInfo, WorkerFacts
from pytest_co2.reporting.storage import load_report

EXCLUSIVE = {
    "mode": "lock", "reason": "--co2-exclusive", "devices": ["gpu:0"], "lock_dir": "/tmp/l",
    "lock_timeout_s": 3.0, "concurrent": True, "description": "exclusive: ...",
    "windows": {"unlocked_windows": 1, "timed_out": 1, "waited_s": 3.5, "failure": None},
}  # fmt: skip


def test_worker_facts_round_trip_exactly() -> None:
    assert WorkerFacts().to_dict() == {"backend": None}  # a worker that measured nothing
    assert WorkerFacts.from_dict({"backend": None}) == WorkerFacts()
    dev = Device("gpu:0", "gpu", "A100", Method.COUNTER, 0.1, True)
    facts = WorkerFacts(
        backend="nvml: A100",
        notes=("n",),
        devices=(dev,),
        idle_w={"gpu:0": 61.5},
        exclusive=ExclusiveInfo.from_dict(EXCLUSIVE),
        lock_summary="1 measured window ran without the exclusive lock",
    )
    d = facts.to_dict()
    assert d == {
        "backend": "nvml: A100",
        "notes": ["n"],
        "devices": [dev.to_dict()],
        "idle_w": {"gpu:0": 61.5},
        "exclusive": EXCLUSIVE,
        "lock_summary": "1 measured window ran without the exclusive lock",
    }
    assert WorkerFacts.from_dict(json.loads(json.dumps(d))) == facts


def test_the_controllers_hand_down_round_trips() -> None:
    facts = HandedFacts(concurrent=True, lock_dir="/run/co2")
    assert facts.to_dict() == {"concurrent": True, "lock_dir": "/run/co2"}
    assert HandedFacts.from_dict(facts.to_dict()) == facts
    assert HandedFacts.from_dict({}) == HandedFacts(concurrent=False, lock_dir=None)


def test_unknown_keys_are_kept_in_every_block() -> None:
    d = {**EXCLUSIVE, "future": 1}
    info = ExclusiveInfo.from_dict(d)
    assert info.extra == {"future": 1} and info.to_dict() == d
    idle = {"seconds": 2.0, "power_w": {"sim:0": 300.0}, "subtracted": False, "x": [1]}
    assert IdleInfo.from_dict(idle).to_dict() == idle
    session = SessionInfo.from_dict({"started": "s", "idle": idle, "by_a_plugin": {"a": 1}})
    assert session.idle == IdleInfo(2.0, {"sim:0": 300.0}, False, {"x": [1]})
    assert session.extra == {"by_a_plugin": {"a": 1}}
    assert session.to_dict()["by_a_plugin"] == {"a": 1}


@pytest.mark.parametrize(
    ("session", "message"),
    [
        ({"idle": {"seconds": "two"}}, "session.idle: bad value (ValueError: "),
        ({"intensity": {"g_per_kwh": 7.0}}, "session.intensity: bad value (KeyError: 'region')"),
        ({"settings": [1]}, "session.settings: bad value (TypeError: expected an object"),
        ({"workers": {"gw0": {"devices": [{"id": "x"}]}}}, "session.workers: bad value"),
    ],
)
def test_a_bad_session_field_is_named(tmp_path: Path, session: dict, message: str) -> None:
    with pytest.raises(ReportError, match="^" + re.escape(message)):
        SessionInfo.from_dict(session)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema_version": 1, "session": session, "tests": []}))
    with pytest.raises(ValueError, match=r"^report '.*r\.json': " + re.escape(message)):
        load_report(path)


def test_nulls_read_back_as_empty() -> None:
    s = SessionInfo.from_dict({"gpus": None, "backend_notes": None, "settings": None})
    assert (s.gpus, s.backend_notes, s.settings) == ((), (), {})
    assert s.setting("pue", 1.55) == 1.55


def test_only_a_tdp_the_user_gave_is_reported(tmp_path: Path) -> None:
    started = _dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=_dt.timezone.utc)
    given, _, _ = backend_on(zen5_guest(tmp_path / "a"), cpu_tdp_w=100.0, n_cpus=4)
    derived, _, _ = backend_on(zen5_guest(tmp_path / "b"))
    assert (given.tdp_from_user, derived.tdp_from_user) == (True, False)
    assert derived.tdp_w > 0  # a figure, but not a TDP: not reported as one
    info = session_info({}, given, started)
    assert info.cpu_tdp_w == 100.0 and info.started == "2026-01-02T03:04:05+00:00"
    assert info.cpu_estimate is not None and info.cpu_estimate.full_w_per_thread == 25.0
    assert session_info({}, derived, started).cpu_tdp_w is None
    assert session_info({}, None, started, backend="by the workers").backend == "by the workers"
