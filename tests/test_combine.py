"""Beyond one machine: a report's origin, ``pytest-co2 combine`` and ``pytest-co2 compare``.

Sharded runs use the simulated constant backend on the fake clock (tests/conftest.py), so
every figure is exact. Processes sharing a host run concurrently as subprocesses, with a
simulated node-level device and a fake host reader (``origin.HOST_READER``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

from pytest_co2.reporting import origin
from pytest_co2.reporting.combine import combine, load_parts
from pytest_co2.reporting.session import SessionInfo
from pytest_co2.reporting.storage import load_report

# -- origin --------------------------------------------------------------------------------


@pytest.fixture
def fake_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(origin, "HOST_READER", lambda: ("node-a", "b00t"))


def test_the_origin_of_a_slurm_task(fake_host: None) -> None:
    env = {"SLURM_JOB_ID": "77", "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1"}
    o = origin.detect(env)
    assert (o.host_key, o.run_id, o.run_source) == ("node-a/b00t", "77", "SLURM_JOB_ID")
    assert (o.rank, o.local_rank, o.node_rank, o.rank_source) == (3, 1, 1, "SLURM_LOCALID")
    assert o.node_reader is False and o.shard is None
    assert origin.OriginInfo.from_dict(o.to_dict()) == o


def test_torchrun_variables_come_before_slurms(fake_host: None) -> None:
    env = {
        "SLURM_JOB_ID": "77", "SLURM_LOCALID": "1", "LOCAL_RANK": "0", "RANK": "4",
        "GROUP_RANK": "2", "LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "tr",
    }  # fmt: skip
    o = origin.detect(env)
    assert (o.rank, o.local_rank, o.node_rank, o.local_world_size) == (4, 0, 2, 2)
    assert o.rank_source == "LOCAL_RANK" and o.node_reader is True
    assert o.run_id == "77"  # the SLURM job comes before the torchrun id


def test_the_run_and_shard_from_ci_and_options(fake_host: None) -> None:
    gh = {"GITHUB_RUN_ID": "123", "GITHUB_RUN_ATTEMPT": "2", "PYTEST_CO2_SHARD": "py3.12"}
    o = origin.detect(gh)
    assert (o.run_id, o.run_source, o.shard) == (
        "123-2",
        "GITHUB_RUN_ID+GITHUB_RUN_ATTEMPT",
        "py3.12",
    )
    gl = {"CI_PIPELINE_ID": "9", "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "4"}
    o = origin.detect(gl, run_id="mine")
    assert (o.run_id, o.run_source) == ("mine", "--co2-run-id")
    assert (o.shard, o.shard_index, o.shard_total) == ("2/4", 2, 4)
    o = origin.detect(gl, group=3, splits=5)  # pytest-split's --group/--splits first
    assert (o.shard, o.shard_index, o.shard_total) == ("3/5", 3, 5)
    bare = origin.detect({})
    assert (bare.run_id, bare.shard, bare.local_rank, bare.node_reader) == (None, None, None, True)


def test_a_host_without_a_boot_id_is_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(origin, "HOST_READER", lambda: ("h", None))
    assert origin.detect({}).host_key == "h"


def test_an_old_session_block_loads_without_an_origin() -> None:
    info = SessionInfo.from_dict({"host": "x", "settings": {}})
    assert info.origin is None and info.combined is None
    assert "origin" not in info.to_dict() and "combined" not in info.to_dict()


def test_a_bad_run_id_is_a_one_line_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--co2-run-id=a b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid --co2-run-id 'a b': expected 1 to 200 printable*"])


# -- three shards and one run, exact ---------------------------------------------------------

SUITE = """
import os

def _work(co2_meter, clock, name, dt):
    dt *= float(os.environ.get("SLOW_" + name, "1"))
    with co2_meter.measure(name) as m:
        for _ in range(4):
            clock.advance(dt)
            m.step()

def test_a(co2_meter, clock):
    _work(co2_meter, clock, "a", 0.125)

def test_b(co2_meter, clock):
    _work(co2_meter, clock, "b", 0.25)

def test_c(co2_meter, clock):
    _work(co2_meter, clock, "c", 0.5)
"""
BASE = ["--co2-backend=constant:100", "--co2-pue=1", "--co2-region=SE", "-p", "no:cacheprovider"]
SHARDS = ("test_a", "test_b", "test_c")


def _run_shards(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run: str) -> Path:
    out = pytester.path / f"shards-{run}"
    monkeypatch.setenv("CI_NODE_TOTAL", str(len(SHARDS)))
    for k, name in enumerate(SHARDS, 1):
        monkeypatch.setenv("CI_NODE_INDEX", str(k))
        result = pytester.runpytest(
            *BASE, f"--co2-run-id={run}", "-k", name, f"--co2-json={out}/shard{k}.json"
        )
        assert result.ret == 0
    monkeypatch.delenv("CI_NODE_INDEX")
    monkeypatch.delenv("CI_NODE_TOTAL")
    return out


def test_three_shards_combine_to_the_whole_run_and_gate_alike(
    fake_clock_pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = fake_clock_pytester
    p.makepyfile(test_suite=SUITE)
    assert p.runpytest(*BASE, "--co2-run-id=base", "--co2-save=base").ret == 0

    folder = _run_shards(p, monkeypatch, "r1")
    rc, out, err = run_cli(capsys, "combine", str(folder), "-o", str(p.path / "all.json"))
    assert rc == 0, err
    assert "note: all 3 shards" in out
    combined = json.loads((p.path / "all.json").read_text())
    nodeids = [t["nodeid"] for t in combined["tests"]]
    assert sorted(nodeids) == [f"test_suite.py::{n}" for n in SHARDS]
    shards = [json.loads((folder / f"shard{k}.json").read_text()) for k in (1, 2, 3)]
    for key in ("energy_j", "energy_kwh", "co2e_kg", "duration_s"):
        assert math.isclose(
            combined["totals"][key], math.fsum(s["totals"][key] for s in shards), rel_tol=1e-12
        )
    assert combined["totals"]["energy_j"] == 100.0 * 4 * (0.125 + 0.25 + 0.5)  # exact: 350 J
    inputs = combined["session"]["combined"]["inputs"]
    assert [(x["shard"], x["tests"]) for x in inputs] == [
        (f"{k}/3", [f"test_suite.py::{n}"]) for k, n in enumerate(SHARDS, 1)
    ]
    assert load_report(p.path / "all.json").totals.energy_j == 350.0  # a normal report
    rc, out, _ = run_cli(capsys, "report", str(p.path / "all.json"), "--json")
    assert rc == 0 and json.loads(out)["totals"]["energy_j"] == 350.0

    # a regression of test_b: the in-session gate of one run and the command's on the shards
    monkeypatch.setenv("SLOW_b", "2")
    whole = p.runpytest(
        *BASE, "--co2-run-id=r2", "--co2-compare=base", "--co2-compare-fail=energy:10%",
        "--co2-json=whole.json",
    )  # fmt: skip
    assert whole.ret == pytest.ExitCode.TESTS_FAILED
    in_session = json.loads((p.path / "whole.json").read_text())["comparison"]
    folder = _run_shards(p, monkeypatch, "r2")
    assert run_cli(capsys, "combine", str(folder), "-o", str(p.path / "r2.json"))[0] == 0
    rc, out, _ = run_cli(
        capsys, "compare", str(p.path / "r2.json"), "--baseline", str(p.path / ".co2/base.json"),
        "--fail", "energy:10%",
    )  # fmt: skip
    assert rc == 1
    regressions = [ln for ln in out.splitlines() if ln.startswith("co2 regression: ")]
    assert [ln[len("co2 regression: ") :] for ln in regressions] == in_session["failures"]
    assert len(in_session["failures"]) == 1 and "test_b [b]" in in_session["failures"][0]

    monkeypatch.delenv("SLOW_b")  # no regression: both gates pass
    folder = _run_shards(p, monkeypatch, "r3")
    assert run_cli(capsys, "combine", str(folder), "-o", str(p.path / "r3.json"))[0] == 0
    rc, _, _ = run_cli(
        capsys, "compare", str(p.path / "r3.json"), "--baseline", "base",
        "--storage-dir", str(p.path / ".co2"), "--fail", "energy:10%",
    )  # fmt: skip
    assert rc == 0
    same = p.runpytest(*BASE, "--co2-compare=base", "--co2-compare-fail=energy:10%")
    assert same.ret == 0


def test_a_missing_shard_a_shard_twice_and_mixed_runs(
    fake_clock_pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = fake_clock_pytester
    p.makepyfile(test_suite=SUITE)
    folder = _run_shards(p, monkeypatch, "r1")
    s1, s2, s3 = (str(folder / f"shard{k}.json") for k in (1, 2, 3))

    rc, out, _ = run_cli(capsys, "combine", s1, s3, "-o", "two.json")
    assert rc == 0
    assert "note: 2 of 3 shards: shard(s) 2 missing" in out
    assert "missing shard(s): 2/3: the totals are partial" in out
    assert json.loads((p.path / "two.json").read_text())["session"]["combined"][
        "missing_shards"
    ] == ["2/3"]

    rc, _, err = run_cli(capsys, "combine", s1, s1, s2, s3, "-o", "dup.json")
    assert rc == 0 and f"warning: {s1} is {s1} given again: read once" in err
    assert json.loads((p.path / "dup.json").read_text())["totals"]["energy_j"] == 350.0

    copy = p.path / "copy.json"
    copy.write_text(Path(s1).read_text())
    parts, _ = load_parts([s1, str(copy), s2, s3])
    report = combine(parts)
    assert report.totals.energy_j == 350.0
    assert f"{copy} is the same report as {s1}: counted once" in report.session.combined.notes  # type: ignore[union-attr]

    other = json.loads(Path(s2).read_text())  # shard 2 of run r1 again, measured otherwise
    other["tests"][0]["measurements"][0]["energy_j"] = 1.0
    (p.path / "retry.json").write_text(json.dumps(other))
    rc, _, err = run_cli(capsys, "combine", s1, s2, str(p.path / "retry.json"), "-o", "x.json")
    assert rc == 2 and "are two reports of the same run 'r1' and shard: keep one" in err

    monkeypatch.setenv("CI_NODE_INDEX", "1")
    monkeypatch.setenv("CI_NODE_TOTAL", "3")
    assert p.runpytest(*BASE, "--co2-run-id=r9", "-k", "test_a", "--co2-json=r9.json").ret == 0
    rc, _, err = run_cli(capsys, "combine", s2, "r9.json", "-o", "x.json")
    assert rc == 2 and "are of 2 different runs" in err and "--allow-mixed" in err
    assert err.count("\n") == 1
    rc, out, _ = run_cli(capsys, "combine", s2, "r9.json", "-o", "x.json", "--allow-mixed")
    assert rc == 0 and "note: --allow-mixed: 2 runs combined" in out

    rc, _, err = run_cli(capsys, "combine", "nowhere", "-o", "x.json")
    assert rc == 2 and "no file or folder 'nowhere'" in err


def test_compare_refuses_a_missing_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"schema_version": 1, "session": {}, "tests": []}))
    rc, _, err = run_cli(
        capsys, "compare", str(tmp_path / "r.json"), "--storage-dir", str(tmp_path / "none")
    )
    assert rc == 2 and "no saved run in" in err


# -- processes sharing a host ------------------------------------------------------------------

NODE_CONFTEST = """
import os
from dataclasses import replace

import pytest

from pytest_co2.backends.constant import ConstantBackend
from pytest_co2.reporting import origin

origin.HOST_READER = lambda: (os.environ["FAKE_HOST"], "boot-" + os.environ["FAKE_HOST"])


class Clock:
    t = 1000.0

    def __call__(self):
        return self.t


CLOCK = Clock()


def pytest_co2_make_backend(config, spec):
    if spec.startswith("constant:"):
        backend = ConstantBackend(float(spec.split(":", 1)[1]), clock=CLOCK)
        dev = replace(backend.devices[0], id="node:0", label="simulated node device", shared=True)
        backend.devices = (dev,)
        return backend
    return None


@pytest.fixture
def clock():
    return CLOCK
"""

NODE_TEST = """
import os
import time
from pathlib import Path


def test_work(co2_meter, clock):
    me, other = os.environ["ME"], os.environ["OTHER"]
    Path(f"ready-{me}").touch()
    deadline = time.monotonic() + 120  # both processes run at once: their spans overlap
    while not Path(f"ready-{other}").exists():
        assert time.monotonic() < deadline, "the other process never started"
        time.sleep(0.05)
    with co2_meter.measure("work") as m:
        for _ in range(4):
            clock.t += 0.5
            m.step()
"""


def _two_processes(path: Path, envs: list[dict[str, str]], tag: str) -> list[str]:
    """Run two pytest processes at once, each with its variables; their report paths."""
    procs, outs = [], []
    for i, extra in enumerate(envs):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PYTEST_"))}
        env.update(extra, ME=f"{tag}{i}", OTHER=f"{tag}{1 - i}", PYTEST_ADDOPTS="-p no:randomly")
        out = str(path / f"{tag}{i}.json")
        outs.append(out)
        cmd = [sys.executable, "-m", "pytest", *BASE, f"--co2-json={out}", "-q", "test_node.py"]
        procs.append(subprocess.Popen(cmd, cwd=path, env=env, stdout=subprocess.PIPE, text=True))
    for proc in procs:
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, stdout
    return outs


@pytest.fixture
def node_dir(pytester: pytest.Pytester) -> Path:
    pytester.makeconftest(NODE_CONFTEST)
    pytester.makepyfile(test_node=NODE_TEST)
    return pytester.path


def _combined(outs: list[str]) -> dict:
    report = combine(load_parts(outs)[0])
    return report.to_dict()


def test_slurm_tasks_on_one_host_count_the_node_device_once(node_dir: Path) -> None:
    task = {"SLURM_JOB_ID": "5", "SLURM_NTASKS_PER_NODE": "2", "FAKE_HOST": "n1"}
    outs = _two_processes(
        node_dir,
        [{**task, "SLURM_LOCALID": "1", "SLURM_PROCID": "1"},  # the higher rank first
         {**task, "SLURM_LOCALID": "0", "SLURM_PROCID": "0"}],
        "slurm",
    )  # fmt: skip
    each = [load_report(o) for o in outs]
    assert [r.totals.energy_j for r in each] == [200.0, 200.0]  # 100 W x 2 s, each read it
    assert [r.session.origin.node_reader for r in each] == [False, True]  # type: ignore[union-attr]
    data = json.loads(Path(outs[0]).read_text())["session"]["origin"]
    assert data["election"].startswith("local rank 1 (SLURM_LOCALID): local rank 0 reads")
    combined = _combined(outs)
    assert combined["totals"]["energy_j"] == 200.0  # once, by local rank 0
    (note,) = [n for n in combined["session"]["combined"]["notes"] if "node-level" in n]
    assert "node:0 of host n1/boot-n1" in note and note.endswith(f"not in {outs[0]} (rank 1)")
    kept = {x["rank"]: x for x in combined["session"]["combined"]["inputs"]}
    assert set(kept) == {0, 1}


def test_torchrun_ranks_on_one_host_count_it_once(node_dir: Path) -> None:
    run = {"TORCHELASTIC_RUN_ID": "tr1", "LOCAL_WORLD_SIZE": "2", "FAKE_HOST": "n1"}
    outs = _two_processes(
        node_dir,
        [{**run, "RANK": "0", "LOCAL_RANK": "0"}, {**run, "RANK": "1", "LOCAL_RANK": "1"}],
        "torch",
    )
    assert _combined(outs)["totals"]["energy_j"] == 200.0


def test_two_hosts_count_it_twice(node_dir: Path) -> None:
    task = {"SLURM_JOB_ID": "6", "SLURM_LOCALID": "0"}
    outs = _two_processes(
        node_dir,
        [{**task, "SLURM_PROCID": "0", "SLURM_NODEID": "0", "FAKE_HOST": "n1"},
         {**task, "SLURM_PROCID": "1", "SLURM_NODEID": "1", "FAKE_HOST": "n2"}],
        "hosts",
    )  # fmt: skip
    combined = _combined(outs)
    assert combined["totals"]["energy_j"] == 400.0
    assert not [n for n in combined["session"]["combined"]["notes"] if "node-level" in n]


# -- multi-node torchrun on localhost ------------------------------------------------------------


def _node_rank_main(rank: int, store: str, out_dir: str) -> None:
    """One rank of a two-node job on localhost: its node is its fake host (node-a, node-b)."""
    from dataclasses import replace

    import torch
    import torch.distributed as dist

    from pytest_co2.backends.constant import ConstantBackend
    from pytest_co2.distributed import combine_across_ranks
    from pytest_co2.meter import Meter

    origin.HOST_READER = lambda: (f"node-{'ab'[rank]}", f"boot-{rank}")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        t = [1000.0]
        backend = ConstantBackend(100.0 * (rank + 1), clock=lambda: t[0])
        backend.devices = (replace(backend.devices[0], id="node:0", shared=True),)
        meter = Meter(backend)
        with meter.measure("train") as w:
            for _ in range(4):
                t[0] += 0.25
                w.step()
        two_nodes = combine_across_ranks(w.measurement)  # the host keys name the nodes
        one_node = combine_across_ranks(w.measurement, node="same")
        out = {"two": two_nodes.to_dict(), "one": one_node.to_dict()}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def test_a_two_node_gloo_job_counts_each_nodes_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import torch.multiprocessing as mp

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    mp.spawn(_node_rank_main, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1  # every rank has the job's figure
    two, one = r0["two"], r0["one"]
    assert two["energy_j"] == 100.0 + 200.0 and two["nodes"] == 2  # each node's device once
    assert [d["label"].rsplit("(", 1)[1] for d in two["devices"]] == [
        "rank 0, node-a/boot-0)", "rank 1, node-b/boot-1)",
    ]  # fmt: skip
    assert one["energy_j"] == 100.0 and one["nodes"] == 1  # one node: rank 0 keeps it


# -- --co2-slurm-reconcile ---------------------------------------------------------------------

FAKE_SACCT = """#!/bin/sh
# a fake sacct: the arguments it was given, then SLURM's figures
echo "$@" > "$(dirname "$0")/sacct-args"
echo "5|3000"
echo "5.batch|"
echo "5.0|1500"
"""


def test_slurm_reconcile_prints_sacct_beside_ours(
    fake_clock_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = fake_clock_pytester
    bin_dir = p.path / "bin"
    bin_dir.mkdir()
    sacct = bin_dir / "sacct"
    sacct.write_text(FAKE_SACCT)
    sacct.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    p.makepyfile(test_suite=SUITE)
    result = p.runpytest(*BASE, "--co2-slurm-reconcile", "-k", "test_c")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["co2 slurm reconcile: ours 200 J measured (this process's windows) beside SLURM's "
         "1500 J (sacct ConsumedEnergyRaw of step 5.0; whole nodes, whole step), ours/SLURM 0.133"]
    )  # fmt: skip
    args = (bin_dir / "sacct-args").read_text().split()
    assert args[:2] == ["-j", "5.0"] and "--format=JobID,ConsumedEnergyRaw" in args

    monkeypatch.setenv("SLURM_STEP_ID", "7")
    result = p.runpytest(*BASE, "--co2-slurm-reconcile", "-k", "test_c")
    result.stdout.fnmatch_lines(
        ["co2 slurm reconcile: ours 200 J measured; no SLURM figure: sacct has no line for 5.7"]
    )
    monkeypatch.delenv("SLURM_JOB_ID")
    result = p.runpytest(*BASE, "--co2-slurm-reconcile", "-k", "test_c")
    result.stdout.fnmatch_lines(["*no SLURM figure: not in a SLURM job (SLURM_JOB_ID is not set)"])
    assert "co2 slurm reconcile" not in p.runpytest(*BASE, "-k", "test_c").stdout.str()


def test_reports_written_before_origins_combine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = Path(__file__).parent / "data"
    single, xdist = str(data / "report_v1_single.json"), str(data / "report_v1_xdist.json")
    out = tmp_path / "old.json"
    rc, text, err = run_cli(capsys, "combine", single, xdist, "-o", str(out))
    assert rc == 0, err
    parts = [load_report(single), load_report(xdist)]
    combined = load_report(out)
    assert [t.nodeid for t in combined.tests] == [t.nodeid for p in parts for t in p.tests]
    assert combined.totals.energy_j == math.fsum(t.totals.energy_j for t in parts)
    assert [x["run_id"] for x in combined.session.combined.inputs] == [None, None]  # type: ignore[union-attr]
    assert "note: node-level" not in text
