"""The README's sharded-CI and SLURM examples, run locally with their variables set.

The ```yaml blocks' ``run:`` / ``script:`` lines and the SLURM ```sh block are taken from
the README as written and run with bash in a scratch project: a three-test suite on the
simulated constant backend and a fake clock (exact figures), with a stand-in for
pytest-split's ``--splits``/``--group`` (every N-th test), and each CI job's variables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CONFTEST = """
from pytest_co2.backends.constant import ConstantBackend


class Clock:
    t = 1000.0

    def __call__(self):
        return self.t


CLOCK = Clock()


def pytest_co2_make_backend(config, spec):
    if spec.startswith("constant:"):
        return ConstantBackend(float(spec.split(":", 1)[1]), clock=CLOCK)
    return None


def pytest_addoption(parser):  # a stand-in for pytest-split
    parser.addoption("--splits", type=int, default=None)
    parser.addoption("--group", type=int, default=None)


def pytest_collection_modifyitems(config, items):
    n, k = config.getoption("splits"), config.getoption("group")
    if n and k:
        keep = items[k - 1 :: n]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
"""

SUITE = """
import os

import pytest

from conftest import CLOCK


@pytest.mark.parametrize("name,dt", [("a", 0.125), ("b", 0.25), ("c", 0.5)])
def test_work(co2_meter, name, dt):
    dt *= float(os.environ.get("SLOW_" + name, "1"))
    with co2_meter.measure(name) as m:
        for _ in range(4):
            CLOCK.t += dt
            m.step()
"""
TOTAL_J = 100.0 * 4 * (0.125 + 0.25 + 0.5)  # 350 J, exact


def _blocks(kind: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.S)


def _github_jobs() -> dict[str, list[str]]:
    (block,) = [b for b in _blocks("yaml") if "GITHUB" in b or "actions/" in b]
    jobs: dict[str, list[str]] = {}
    job = ""
    for line in block.splitlines():
        if m := re.fullmatch(r"  (\w+):", line):
            job = m.group(1)
        elif m := re.fullmatch(r"\s+- run: (.*)", line):
            jobs.setdefault(job, []).append(m.group(1))
    return jobs


def _gitlab_jobs() -> dict[str, list[str]]:
    (block,) = [b for b in _blocks("yaml") if "parallel:" in b]
    jobs: dict[str, list[str]] = {}
    job = ""
    for line in block.splitlines():
        if m := re.fullmatch(r"(\w+):", line):
            job = m.group(1)
        elif m := re.fullmatch(r"    - (.*)", line):
            jobs.setdefault(job, []).append(m.group(1))
    return jobs


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def _env(**more: str) -> dict[str, str]:
    skip = ("PYTEST_", "GITHUB_", "CI_", "SLURM_", "LOCAL_RANK", "RANK", "TORCHELASTIC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(
        PYTEST_ADDOPTS="-p no:randomly -p no:cacheprovider -q",
        PYTEST_CO2_BACKEND="constant:100",
        PYTEST_CO2_REGION="SE",
        PYTEST_CO2_PUE="1",
        **more,
    )
    return env


def _sh(project: Path, line: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run(
        ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode in ok and "Traceback" not in out, f"{line}: {proc.returncode}\n{out}"
    return proc.stdout


def _save_main(project: Path) -> None:
    _sh(project, "pytest tests --co2-save=main", _env())


def _run_github(project: Path, attempt: str, **more: str) -> tuple[dict[str, str], Path]:
    """The test job of each matrix shard, its artifact downloaded; the final job's env."""
    jobs = _github_jobs()
    assert list(jobs) == ["test", "carbon"]
    run = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": attempt, "GITHUB_ACTIONS": "true"}
    for shard in (1, 2, 3):
        for line in jobs["test"]:
            if line.startswith("pip install"):
                continue
            _sh(project, line.replace("${{ matrix.shard }}", str(shard)), _env(**run, **more))
        artifact = project / "co2-shards" / f"co2-{shard}"  # download-artifact's layout
        artifact.mkdir(parents=True)
        shutil.move(project / f"co2-{shard}.json", artifact / f"co2-{shard}.json")
    summary = project / "step-summary.md"
    return _env(**run, GITHUB_STEP_SUMMARY=str(summary)), summary


def test_the_github_actions_example(project: Path) -> None:
    _save_main(project)
    env, summary = _run_github(project, "1")
    final = [line for line in _github_jobs()["carbon"] if not line.startswith("pip install")]
    outputs = [_sh(project, line, env) for line in final]
    print("\n".join(f"$ {cmd}\n{out}" for cmd, out in zip(final, outputs, strict=True)))
    combined = json.loads((project / "co2-all.json").read_text())
    assert combined["totals"]["energy_j"] == TOTAL_J
    assert sorted(t["nodeid"] for t in combined["tests"]) == [
        f"tests/test_suite.py::test_work[{n}-{dt}]"
        for n, dt in (("a", 0.125), ("b", 0.25), ("c", 0.5))
    ]
    assert "note: all 3 shards" in outputs[0]
    assert [x["run_id"] for x in combined["session"]["combined"]["inputs"]] == ["4242-1"] * 3
    md = summary.read_text()
    assert md.count("tests/test_suite.py::test_work[") == 3
    assert "co2 regression" not in outputs[2]


def test_the_github_actions_gate_fails_on_a_regression(project: Path) -> None:
    _save_main(project)
    env, _ = _run_github(project, "2", SLOW_b="2")
    *prepare, gate = [line for line in _github_jobs()["carbon"] if not line.startswith("pip")]
    for line in prepare:
        _sh(project, line, env)
    out = _sh(project, gate, env, ok=(1,))
    (line,) = [x for x in out.splitlines() if x.startswith("co2 regression: ")]
    assert line.startswith(
        "co2 regression: tests/test_suite.py::test_work[b-0.25] [b]: energy 2.78e-5 -> "
        "5.56e-5 kWh exceeds --co2-compare-fail=energy:10%: regression: +100.0%"
    )


def test_the_gitlab_example(project: Path) -> None:
    _save_main(project)
    jobs = _gitlab_jobs()
    assert list(jobs) == ["test", "carbon"]
    for k in (1, 2, 3):
        env = _env(CI_PIPELINE_ID="77", CI_NODE_INDEX=str(k), CI_NODE_TOTAL="3")
        for line in jobs["test"]:
            _sh(project, line, env)
    env = _env(CI_PIPELINE_ID="77")
    out = [_sh(project, line, env) for line in jobs["carbon"]]
    assert "note: all 3 shards" in out[0]
    combined = json.loads((project / "co2-all.json").read_text())
    assert combined["totals"]["energy_j"] == TOTAL_J
    assert [x["shard"] for x in combined["session"]["combined"]["inputs"]] == ["1/3", "2/3", "3/3"]


def test_the_slurm_example(project: Path) -> None:
    (block,) = [b for b in _blocks("sh") if "srun" in b]
    srun_line, combine_line = block.strip().splitlines()
    prefix = "srun --ntasks-per-node=2 "
    assert srun_line.startswith(prefix)
    task = srun_line[len(prefix) :]
    for rank in (0, 1):  # srun's two tasks on one node, one after the other here
        env = _env(
            SLURM_JOB_ID="9", SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
            SLURM_NTASKS_PER_NODE="2",
        )  # fmt: skip
        _sh(project, task, env)
    out = _sh(project, combine_line, _env(SLURM_JOB_ID="9"))
    assert "combined 2 report(s)" in out
    combined = json.loads((project / "co2-job.json").read_text())
    # per-process simulated devices: both tasks' work counts
    assert combined["totals"]["energy_j"] == 2 * TOTAL_J
    inputs = combined["session"]["combined"]["inputs"]
    assert [(x["rank"], x["local_rank"]) for x in inputs] == [(0, 0), (1, 1)]
