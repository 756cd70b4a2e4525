"""The quiet runtime: OMP_WAIT_POLICY=PASSIVE unless the user set it or switched it off."""

from __future__ import annotations

import pytest
from terminal_text import unwrapped

from pytest_co2.plugin import runtime


def test_on_by_default_off_by_option_or_env() -> None:
    assert runtime.wanted([], {}) is True
    assert runtime.wanted(["--co2-no-quiet-runtime"], {}) is False
    assert runtime.wanted(["--co2-no-quiet-runtime", "--co2-quiet-runtime"], {}) is True
    assert runtime.wanted([], {"PYTEST_CO2_QUIET_RUNTIME": "off"}) is False
    assert runtime.wanted(["--co2-quiet-runtime"], {"PYTEST_CO2_QUIET_RUNTIME": "0"}) is True


def test_apply_sets_passive_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    env: dict[str, str] = {}
    assert runtime.apply(env, process=False) == (
        "runtime: OMP_WAIT_POLICY=PASSIVE, OpenBLAS on 1 thread (idle threads sleep, not spin, "
        "so CPU figures are stable; --co2-no-quiet-runtime keeps the defaults)"
    )
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "4"}
    assert runtime.apply(env, process=False).startswith(
        "runtime: OMP_WAIT_POLICY=ACTIVE as set by the user (idle"
    )
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "4"}


def test_the_header_and_json_say_what_was_done(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(co2_meter):\n    with co2_meter.measure('m'):\n        pass\n")
    result = pytester.runpytest_subprocess(
        "--co2-backend=constant:1", "--co2-json=r.json", "-p", "no:cacheprovider"
    )
    unwrapped(result).fnmatch_lines(["co2: runtime: OMP_WAIT_POLICY=*"])
    import json

    assert json.loads((pytester.path / "r.json").read_text())["session"]["runtime"].startswith(
        "runtime: OMP_WAIT_POLICY="
    )
