"""Every command in the README's code blocks runs as written (in a scratch copy of the
project's example, as a user's project), except the set-up lines and the long main job."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = (
    "python3 -m venv",  # set-up: the environment exists already
    ". .venv",
    "pip install",
    "pytest benchmarks",  # the main job (minutes) and the smoke suite (CI runs it itself)
    "pytest tests",  # this very suite
)


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                cmd = " ".join(shlex.quote(w) for w in words)
                if cmd and not any(cmd.startswith(s) for s in SKIP):
                    commands.append(cmd)
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_commands_to_run() -> None:
    assert len(COMMANDS) >= 10 and any(c.startswith("pytest-co2 report") for c in COMMANDS)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project: the example test, nothing else."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", root / "examples")
    (root / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    pytest_script = str(Path(sys.executable).parent / "pytest")
    subprocess.run(  # the report that `pytest-co2 report co2.json` re-renders, whatever the order
        [pytest_script, "examples", "--co2-json=co2.json", "-p", "no:cacheprovider", "-q"],
        cwd=root, env=env, capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    return root


def test_every_readme_command_runs_in_order(project: Path) -> None:
    """In README order (a command may need what an earlier one wrote: a saved baseline)."""
    failures = [f for command in COMMANDS if (f := run_command(project, command))]
    assert not failures, "\n\n".join(failures)


def run_command(project: Path, command: str) -> str | None:
    bin_dir = Path(sys.executable).parent
    argv = shlex.split(command)
    if argv[0] in ("pytest", "pytest-co2"):
        argv[0] = str(bin_dir / argv[0])  # the console scripts, as a newcomer types them
    elif argv[0] == "python":
        argv[0] = sys.executable
    argv = [str(REPO / a) if a.startswith("tools/") else a for a in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_ADDOPTS"] = "-p no:cacheprovider"
    proc = subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    out = proc.stdout + proc.stderr
    if "Traceback" in out or not (proc.returncode == 0 or judged_regression(command, proc)):
        return f"{command}: exit {proc.returncode}\n{out[-3000:]}"
    return None


def judged_regression(command: str, proc: subprocess.CompletedProcess[str]) -> bool:
    """Whether a compare gate failed the run on a regression it judged, and nothing else.

    The compare step measures the example again and compares it with the run saved just
    before: on a runner that other jobs make slower meanwhile, the example really did use
    more energy, and a confident regression is the right verdict. Either verdict shows the
    command works; what it must show is the comparison, and no failure but the gate's."""
    return (
        "--co2-compare-fail=" in command
        and proc.returncode == pytest.ExitCode.TESTS_FAILED
        # a long path or node id goes on a line of its own: match across the break
        and re.search(r"co2 compared with\s", proc.stdout) is not None
        and re.search(r"co2 regression:\s", proc.stdout) is not None
        and re.search(r"\b\d+ (failed|errors?)\b", proc.stdout) is None
    )
