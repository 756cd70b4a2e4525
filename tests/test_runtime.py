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


def test_the_environment_part_sets_passive_unless_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    env: dict[str, str] = {}
    assert runtime.line(runtime.apply_environment(env, numpy_loaded=False)) == (
        "runtime: OMP_WAIT_POLICY=PASSIVE, OpenBLAS on 1 thread (idle threads sleep, not spin, "
        "so CPU figures are stable; --co2-no-quiet-runtime keeps the defaults)"
    )
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "4"}
    assert runtime.line(runtime.apply_environment(env, numpy_loaded=False)).startswith(
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


def test_the_process_part_is_made_on_first_use_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment at once; ctypes (OpenBLAS in a loaded numpy, glibc) only when the line
    is first asked for: the header, a measuring test, the JSON."""
    import sys

    calls: list[str] = []
    monkeypatch.setattr(runtime, "_keep_freed_memory", lambda: calls.append("glibc") or True)
    monkeypatch.setattr(runtime, "_one_blas_thread", lambda: calls.append("blas") or True)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setitem(sys.modules, "numpy", sys)  # numpy loaded before the plugin
    env: dict[str, str] = {}
    quiet = runtime.QuietRuntime(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"} and calls == []
    expected = (
        "runtime: OMP_WAIT_POLICY=PASSIVE, OpenBLAS on 1 thread, glibc keeps freed memory up "
        "to 1 GiB (idle threads sleep, not spin, so CPU figures are stable; "
        "--co2-no-quiet-runtime keeps the defaults)"
    )
    assert quiet.line() == expected and calls == ["blas", "glibc"]
    assert quiet.line() == expected and calls == ["blas", "glibc"]  # once
    monkeypatch.delitem(sys.modules, "numpy")  # numpy not loaded yet: the variable says it
    calls.clear()
    env = {}
    quiet = runtime.QuietRuntime(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    assert quiet.line() == expected and calls == ["glibc"]


def test_the_process_part_is_made_only_where_a_test_measures(pytester: pytest.Pytester) -> None:
    """A run whose tests measure nothing makes it at no verbosity (its header is deferred to
    after collection, and then not needed); a measuring run makes it before its first test,
    quiet or not."""
    probe = (
        "import pytest\n"
        "from pytest_co2.plugin import runtime\n"
        "def pytest_configure(config):\n"
        "    runtime._keep_freed_memory = lambda: config.rootpath.joinpath('made').touch() or 1\n"
    )
    pytester.makeconftest(probe)
    pytester.makepyfile(test_rt_plain="def test_a():\n    pass\n")
    pytester.makepyfile(
        test_rt_meter="def test_m(co2_meter):\n    with co2_meter.measure('m'):\n        pass\n"
    )
    made = pytester.path / "made"
    for args in (["-q"], []):
        result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", "test_rt_plain.py")
        result.assert_outcomes(passed=1)
        assert not made.exists(), args
        assert "co2: backend" not in result.stdout.str()
    runs = (["test_rt_meter.py"], ["-q", "test_rt_meter.py"])
    runs += tuple(["-q", m, "test_rt_plain.py"] for m in ("--co2-all", "--co2-profile=p.folded"))
    for args in runs:
        result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        assert made.exists(), args
        made.unlink()
