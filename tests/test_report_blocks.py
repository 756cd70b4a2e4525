"""The ``profile``, ``defer`` and ``sci`` blocks through ``pytest-co2 combine``, ``pytest-co2
report`` and the markdown, on hand-made reports of two shards with round figures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli

from pytest_co2.carbon.emission import emission
from pytest_co2.carbon.intensity import lookup
from pytest_co2.carbon.intensity_value import Intensity
from pytest_co2.carbon.sci import YEAR_S, Embodied
from pytest_co2.reporting.json_report import Report
from pytest_co2.reporting.markdown import render_markdown
from pytest_co2.reporting.model import Result, TestRecord
from pytest_co2.reporting.origin import OriginInfo
from pytest_co2.reporting.profile import Node, Profile
from pytest_co2.reporting.sci import SciSetup, sci_block
from pytest_co2.reporting.storage import load_report, write_atomic

V1 = Path(__file__).parent / "data" / "report_v1_single.json"
J_PER_KWH = 3.6e6
MACHINE = Embodied(1200.0, 4.0, 0.5)  # 1200 kg over 4 years, half the machine
SETUP = SciSetup(machine=MACHINE, machine_share=0.5, share_basis="given", market_g_per_kwh=100.0)
# both measurements: 36 J (1e-5 kWh) and 0.5 s per unit, PUE 1.5, 200 g/kWh
E_KWH = 1e-5 * 1.5
OPERATIONAL_G = E_KWH * 200.0  # 3e-3 g per unit
M_G = 1200e3 / (4.0 * YEAR_S) * 0.5 * 0.5  # g/s of the machine x 0.5 s x share 0.5
RAN = "ran: DE 150 g/kWh now (Test provider; live) is not above 300 g/kWh"
DEFERRED = "defer: DE 412 g/kWh now (Test provider; live) is above 300 g/kWh; 181 g/kWh at 13:00"


def _result(base: Result, name: str, unit: str, units: int, n: int) -> Result:
    """A measurement of ``units`` units at 36 J and 0.5 s each, projected to ``n``."""
    m = base.measurement
    stats = replace(m.energy_per_unit_j, mean=36.0, std=0.0, sem=0.0, n=units)
    m = replace(
        m, name=name, unit=unit, steps=units, units=float(units), duration_s=0.5 * units,
        energy_j=36.0 * units, energy_per_unit_j=stats, unit_energies_j=(36.0,) * units,
        work_unit_energies_j=(), work_energy_j=None,
    )  # fmt: skip
    p = replace(base.projection, n=n, unit=unit, energy_kwh=1e-5 * n, std_kwh=0.0, ci95_kwh=0.0)
    grid = Intensity("XX", "Test grid", 200.0, 2024, None, "test data")
    return replace(base, measurement=m, projection=p, emission=emission(p.energy_kwh, grid, 1.5))


def _tree(test: str, start: int, spans: list[tuple[str, str, int, int, list[Node]]]) -> Node:
    kids = [
        Node(n, k, a, "simulated", end_uj=b, duration_s=0.1, children=c) for n, k, a, b, c in spans
    ]
    return Node(test, "test", start, "simulated", end_uj=kids[-1].end_uj, children=kids)  # fmt: skip


def _region(name: str, kind: str, a: int, b: int) -> Node:
    return Node(name, kind, a, "simulated", end_uj=b, duration_s=0.1)


TRAIN = _tree("t.py::test_train", 0, [
    ("setup", "phase", 0, 300_000, [_region("model", "fixture", 0, 250_000)]),
    ("call", "phase", 300_000, 900_000, [_region("fit", "region", 400_000, 800_000)]),
    ("teardown", "phase", 900_000, 1_000_000, []),
])  # fmt: skip
SAMPLE = _tree("t.py::test_sample", 5_000_000, [
    ("call", "phase", 5_000_000, 5_700_000, [_region("sample", "region", 5_100_000, 5_400_000)]),
])  # fmt: skip


def _shard(k: int, test: TestRecord, process: str, tree: Node, defer: dict[str, Any],
           setup: SciSetup) -> Report:  # fmt: skip
    base = load_report(V1)
    origin = OriginInfo(host=f"h{k}", run_id="r1", shard=f"{k}/2", shard_index=k, shard_total=2)
    profile = Profile(processes={process: [tree]}, notes=[f"note {k}"])
    extra = {
        "profile": profile.to_dict(5),
        "defer": {"deferred": int(defer["deferred"]), "ran": 1 - int(defer["deferred"]),
                  "tests": {"t.py::test_heavy_" + str(k): defer}},
        "sci": sci_block([test], setup),
    }  # fmt: skip
    return Report(replace(base.session, origin=origin), [test], extra=extra)


@pytest.fixture
def shards(tmp_path: Path) -> tuple[Path, Path]:
    base = load_report(V1).tests[0]
    train = TestRecord("t.py::test_train", "passed", [_result(base.results[0], "fit", "iteration", 4, 1000)])  # fmt: skip
    sample = TestRecord("t.py::test_sample", "passed", [_result(base.results[0], "sample", "sample", 2, 10)])  # fmt: skip
    ran = {"deferred": False, "reason": RAN, "above_g_per_kwh": 300.0, "now_g_per_kwh": 150.0}
    deferred = {"deferred": True, "reason": DEFERRED, "above_g_per_kwh": 300.0, "now_g_per_kwh": 412.0}  # fmt: skip
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_atomic(a, _shard(1, train, "main", TRAIN, ran, SETUP).to_dict())
    write_atomic(b, _shard(2, sample, "gw0", SAMPLE, deferred, SETUP).to_dict())
    return a, b


def _combine(capsys: pytest.CaptureFixture[str], out: Path, *inputs: Path) -> dict[str, Any]:
    rc, _, err = run_cli(capsys, "combine", *map(str, inputs), "-o", str(out))
    assert (rc, err) == (0, "")
    return json.loads(out.read_text())


def test_the_sci_rows_by_hand(shards: tuple[Path, Path]) -> None:
    rows = json.loads(shards[0].read_text())["sci"]["measurements"]
    assert rows[0]["operational_g_per_unit"] == pytest.approx(OPERATIONAL_G, rel=1e-12)
    assert rows[0]["embodied_machine_g_per_unit"] == pytest.approx(M_G, rel=1e-12)
    assert rows[0]["market_based"]["operational_g_per_unit"] == pytest.approx(E_KWH * 100.0)


def test_combine_joins_the_profiles_decisions_and_sci_rows(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = (json.loads(p.read_text()) for p in shards)
    data = _combine(capsys, tmp_path / "all.json", *shards)
    profile = data["profile"]
    assert list(profile["processes"]) == ["shard 1/2: main", "shard 2/2: gw0"]
    assert profile["processes"]["shard 1/2: main"] == a["profile"]["processes"]["main"]
    assert profile["total_uj"] == 1_700_000 and profile["notes"] == ["note 1", "note 2"]
    top = [(e["path"][-1], e["self_uj"]) for e in profile["top"]]
    assert top == [("[fit]", 400_000), ("call", 400_000), ("[sample]", 300_000),
                   ("model", 250_000), ("call", 200_000)]  # fmt: skip
    assert profile["top"][1]["path"] == ["t.py::test_sample", "call"]

    defer = data["defer"]
    assert (defer["deferred"], defer["ran"]) == (1, 1)
    assert list(defer["tests"]) == ["t.py::test_heavy_1", "t.py::test_heavy_2"]
    assert [(s["input"], s["shard"], s["deferred"]) for s in defer["shards"]] == [
        (str(shards[0]), "1/2", 0), (str(shards[1]), "2/2", 1),
    ]  # fmt: skip

    sci = data["sci"]
    assert sci["measurements"] == [
        {**a["sci"]["measurements"][0], "input": str(shards[0])},
        {**b["sci"]["measurements"][0], "input": str(shards[1])},
    ]
    assert "boundaries" not in sci  # the same boundary in both: kept once
    assert sci["boundary"] == a["sci"]["boundary"] and sci["embodied"] == a["sci"]["embodied"]


def test_two_boundaries_are_both_kept(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = load_report(shards[1])
    setup = replace(SETUP, machine=Embodied(600.0, 4.0), machine_share=0.25, market_g_per_kwh=50.0)
    other.extra["sci"] = sci_block(other.tests, setup)
    write_atomic(shards[1], other.to_dict())
    data = _combine(capsys, tmp_path / "all.json", *shards)
    sci = data["sci"]
    assert sci["boundary"] is None and sci["embodied"] is None
    assert [(b["inputs"], b["embodied"]["machine"]["kg"], b["market_g_per_kwh"])
            for b in sci["boundaries"]] == [([str(shards[0])], 1200.0, 100.0),
                                            ([str(shards[1])], 600.0, 50.0)]  # fmt: skip
    second = sci["measurements"][1]
    assert second["embodied_machine_g_per_unit"] == pytest.approx(M_G / 4, rel=1e-12)

    # re-rendered, each row keeps its input's market-based factor
    rc, out, _ = run_cli(capsys, "report", str(tmp_path / "all.json"), "--pue", "2", "--json")
    rows = json.loads(out)["sci"]["measurements"]
    assert rc == 0
    assert [r["market_based"]["operational_g_per_unit"] for r in rows] == pytest.approx(
        [2e-5 * 100.0, 2e-5 * 50.0], rel=1e-12
    )


def test_report_re_renders_the_sci_and_keeps_the_profile_and_decisions(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    combined = _combine(capsys, tmp_path / "all.json", *shards)
    rc, out, _ = run_cli(
        capsys, "report", str(tmp_path / "all.json"), "--region", "PL", "--pue", "1.2", "--json"
    )
    assert rc == 0
    data = json.loads(out)
    pl = lookup("PL", None).g_per_kwh
    row = data["sci"]["measurements"][0]
    assert row["energy_kwh_per_unit"] == pytest.approx(1e-5 * 1.2, rel=1e-12)
    assert row["operational_g_per_unit"] == pytest.approx(1e-5 * 1.2 * pl, rel=1e-12)
    assert row["intensity"]["region"] == "PL"
    assert row["embodied_machine_g_per_unit"] == pytest.approx(M_G, rel=1e-12)  # M: kept
    assert row["sci_g_per_unit"] == pytest.approx(1e-5 * 1.2 * pl + M_G, rel=1e-12)
    assert row["projection"]["sci_g"] == pytest.approx(1000 * (1e-5 * 1.2 * pl + M_G))
    assert row["market_based"]["operational_g_per_unit"] == pytest.approx(1.2e-5 * 100.0)
    assert data["profile"] == combined["profile"] and data["defer"] == combined["defer"]
    assert "advice" not in data

    monkeypatch.setenv("COLUMNS", "400")  # one line each
    rc, text, _ = run_cli(capsys, "report", str(tmp_path / "all.json"))
    lines = text.splitlines()
    assert rc == 0
    sci = lines.index(next(x for x in lines if x.startswith("co2 SCI per unit")))
    assert lines[sci + 1].startswith("t.py::test_train [fit]: ")
    assert lines[sci + 2].startswith("t.py::test_sample [sample]: ")
    assert "; 1,000 iterations: " in lines[sci + 1] and "(not SCI)" in lines[sci + 1]
    top = lines.index(next(x for x in lines if x.startswith("top 5 of 7 phases")))
    assert lines[top + 1].startswith("0.4 J 24% t.py::test_train > call > [fit] (region, ")


def test_markdown_sections(shards: tuple[Path, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    _combine(capsys, tmp_path / "all.json", *shards)
    text = render_markdown(load_report(tmp_path / "all.json"))
    lines = text.splitlines()
    assert "- shard 2/2: 1 test deferred (skipped): DE 412 g/kWh now (Test provider; live) is " \
           "above 300 g/kWh; 181 g/kWh at 13:00" in lines  # fmt: skip
    assert any(x.startswith("- shard 1/2: 1 test subject to deferral ran: ") for x in lines)
    # 3e-3 g + 1.2e6 g / (4 x 31,557,600 s) x 0.5 s x 0.5 = 0.00238 g; market: 1.5e-3 g + M
    assert (
        "| `t.py::test_train` | fit | 0.00538 g/iteration | 0.00300 | 0.00238 | 5.38 g for 1,000 "
        "iterations | 0.00388 g/iteration |"
    ) in lines
    assert lines.count("**Carbon-aware deferral:**") == 1
    assert any(x.startswith("**SCI per unit**") for x in lines)
    assert any(x.startswith("**Energy profile:** top 5 of 7") for x in lines)
    assert "- 0.4 J 24% t.py::test\\_train \\> call \\> [fit] (region, simulated)" in lines

    plain = render_markdown(Report(load_report(V1).session, load_report(V1).tests))
    assert "SCI" not in plain and "deferral" not in plain and "profile" not in plain


def test_an_input_without_the_blocks(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = load_report(shards[1])
    bare.extra.clear()
    write_atomic(shards[1], bare.to_dict())
    data = _combine(capsys, tmp_path / "all.json", *shards)
    assert list(data["profile"]["processes"]) == ["shard 1/2: main"]
    assert data["profile"]["notes"][-1] == "no profile in shard 2/2 (run without --co2-profile)"
    assert data["sci"]["without_sci"] == [str(shards[1])]
    assert [s["shard"] for s in data["defer"]["shards"]] == ["1/2"]


def test_a_node_device_counted_once_leaves_the_sci_row_its_own_energy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two shards on one host read the same node-level device over the same time: combine
    keeps it in the first, and the second's SCI row is recomputed without it."""
    from pytest_co2.backends.base import Device, Method
    from pytest_co2.measure.records import DeviceEnergy

    node = Device("sim:node", "simulated", "node meter", Method.SIMULATED, shared=True)
    own = Device("cpu:process", "cpu", "process", Method.SIMULATED, shared=False)
    paths = []
    for k, name in ((1, "fit"), (2, "sample")):
        base = load_report(V1).tests[0].results[0]
        r = _result(base, name, "sample", 2, 10)  # 72 J: 36 J of the node, 36 J its own
        devices = (DeviceEnergy(node, 36.0), DeviceEnergy(own, 36.0))
        r = replace(r, measurement=replace(r.measurement, devices=devices))
        report = _shard(
            k,
            TestRecord(f"t.py::test_{k}", "passed", [r]),
            "main",
            TRAIN,
            {"deferred": False},
            SETUP,
        )
        report.session = replace(report.session, origin=replace(report.session.origin, host="h"))
        report.extra.pop("defer")
        paths.append(tmp_path / f"{k}.json")
        write_atomic(paths[-1], report.to_dict())
    rows = _combine(capsys, tmp_path / "all.json", *paths)["sci"]["measurements"]
    assert rows[0]["operational_g_per_unit"] == pytest.approx(OPERATIONAL_G, rel=1e-12)
    # 18 J per unit left: 5e-6 kWh x 1.5 x 200 g/kWh; M as before (the time is the same)
    assert rows[1]["operational_g_per_unit"] == pytest.approx(OPERATIONAL_G / 2, rel=1e-12)
    assert rows[1]["embodied_machine_g_per_unit"] == pytest.approx(M_G, rel=1e-12)


KILLED = """
import os
import pytest

@pytest.mark.parametrize("k", range(4))
def test_step(co2_meter, clock, k):
    if k == 2:
        os._exit(3)
    with co2_meter.measure("m"):
        clock.advance(0.5 * (k + 1))
"""


def test_a_killed_runs_journal_keeps_the_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess
    import sys

    from conftest import FAKE_CLOCK_CONFTEST

    from pytest_co2.reporting.storage import PROFILE_RECOVERED

    (tmp_path / "conftest.py").write_text(FAKE_CLOCK_CONFTEST)
    (tmp_path / "test_killed.py").write_text(KILLED)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_ADDOPTS"] = "-p no:randomly -p no:cacheprovider"
    args = ["--co2-backend=constant:100", "--co2-json=r.json", "--co2-profile=p.folded"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout + proc.stderr
    rc, out, _ = run_cli(capsys, "report", str(tmp_path / "r.json"), "--json")
    assert rc == 0
    profile = json.loads(out)["profile"]
    trees = profile["processes"]["main"]
    assert [t["name"].split("::")[1] for t in trees] == ["test_step[0]", "test_step[1]"]
    # 100 W on the fake clock, which only the measured regions advance: 50 J and 100 J
    assert [t["energy_uj"] for t in trees] == [50_000_000, 100_000_000]
    assert profile["total_uj"] == 150_000_000 and profile["notes"] == [PROFILE_RECOVERED]
    assert profile["top"][0]["path"][-1] == "[m]" and profile["top"][0]["self_uj"] == 100_000_000


def test_the_runs_own_markdown_has_the_sections(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(
        test_md="""
        def test_x(co2_meter, clock):
            with co2_meter.measure("m", unit="sample") as m:
                clock.advance(2.0)
                m.step(units=2)
        """
    )
    result = fake_clock_pytester.runpytest(
        "--co2-backend=constant:100", "--co2-pue=1.5", "--co2-intensity=200", "--co2-sci",
        "--co2-embodied=1200,4,0.5", "--co2-profile=p.folded", "--co2-markdown=r.md",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    lines = (fake_clock_pytester.path / "r.md").read_text().splitlines()
    # 100 J per sample: 2.78e-5 kWh x 1.5 x 200 g = 0.00833 g; M: 1.2e6 g / 4 years x 1 s x 0.5
    m_g = 1.2e6 / (4 * YEAR_S) * 1.0 * 0.5
    assert m_g == pytest.approx(0.0047533, rel=1e-4)
    assert (
        "| `test_md.py::test_x` | m | 0.0131 g/sample | 0.00833 | 0.00475 | 0.0262 g for 2 "
        "samples |  |"
    ) in lines
    assert any(x.startswith("**Energy profile:** top 5 of 6 phases") for x in lines)
    assert "- 200 J 100% test\\_md.py::test\\_x \\> call \\> [m] (region, simulated)" in lines


def test_a_bad_block_is_a_one_line_error(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(shards[1].read_text())
    data["profile"]["processes"]["gw0"] = [{"name": "t.py::test_sample"}]
    shards[1].write_text(json.dumps(data))
    rc, _, err = run_cli(capsys, "combine", *map(str, shards), "-o", str(tmp_path / "all.json"))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"a bad 'profile' block in {shards[0]}, {shards[1]}: KeyError: " in err


@pytest.mark.parametrize("fmt", [(), ("--markdown",)])  # --json carries the row as it is
def test_report_with_a_malformed_sci_row_is_a_one_line_error(
    shards: tuple[Path, Path], capsys: pytest.CaptureFixture[str], fmt: tuple[str, ...]
) -> None:
    data = json.loads(shards[0].read_text())
    data["sci"]["measurements"] = [{"nodeid": "t.py::test_sample"}]  # loads, lacks its figures
    shards[0].write_text(json.dumps(data))
    rc, out, err = run_cli(capsys, "report", str(shards[0]), *fmt)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{shards[0]}: cannot re-render: a malformed report (KeyError: " in err
    assert "Traceback" not in out + err
