"""Mutation score of the core modules with mutmut 3, per module.

Not part of CI (it takes tens of minutes on two cores). Run it before changing a formula::

    pip install "mutmut==3.8.1"
    python tools/mutation.py                         # the pure modules, all cores
    python tools/mutation.py carbon/equivalents.py   # one module (path under pytest_co2/)
    python tools/mutation.py --survivors --show      # list and diff every surviving mutant

The tree (tracked and untracked, not ignored files) is copied to a work folder
(``--workdir``, default ``.mutation/``, git-ignored), a ``[tool.mutmut]`` table selecting the
modules is written into the copy's pyproject.toml, and ``mutmut run`` runs there, so the
checkout itself never holds mutants and two runs on different folders do not collide. The
copy is reused on the next run with the same folder: mutmut then retests only what changed.

Settings that this machine needs: ``process_isolation = "forkserver"`` (mutmut's default
fork mode segfaults here once torch or numpy have been imported), pytest-randomly off (the
per-test statistics need a stable order), and a ``sitecustomize`` for test subprocesses
(pytester's and xdist's workers import the mutated package, whose trampoline reads mutmut's
config from the working directory: it is loaded from the work folder first).

Score = (killed + timeout) / mutants, per module; "no tests" counts as surviving.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pytest_co2"

# The pure modules: accounting, intensity, equivalents, statistics and projection, compare and
# gate decisions, budget, RAPL and the CPU estimate, and the result model.
PURE_MODULES = (
    "reporting/model.py",
    "carbon/emission.py",
    "carbon/accounting.py",
    "carbon/intensity.py",
    "carbon/intensity_value.py",
    "carbon/intensity_tables.py",
    "carbon/intensity_file.py",
    "carbon/equivalents.py",
    "measure/stats.py",
    "measure/records.py",
    "measure/estimates.py",
    "measure/stopping.py",
    "measure/decisions.py",
    "measure/budget_decision.py",
    "measure/drift.py",
    "reporting/baseline.py",
    "reporting/delta.py",
    "reporting/budget.py",
    "backends/rapl.py",
    "backends/estimate.py",
    "backends/cpu_power.py",
    "frozen.py",
)

KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # killed, pytest internal error, timeouts, type check
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34}


def _copy_tree(dest: Path) -> None:
    """Copy the checkout's files (tracked and untracked, not ignored) into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src, dst = ROOT / rel, dest / rel
        if not src.is_file():
            continue
        if dst.exists() and dst.stat().st_mtime_ns == src.stat().st_mtime_ns:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def _forget_plain_copies(workdir: Path, modules: list[str]) -> None:
    """Delete the unmutated copies of ``modules`` that an earlier run on other modules left.

    mutmut regenerates a file's mutants only when its source is newer than the file under
    ``mutants/``; a module that an earlier run copied there unmutated would stay unmutated.
    """
    for m in modules:
        target = workdir / "mutants" / PACKAGE / m
        if target.is_file() and "mutmut" not in target.read_text("utf-8"):
            target.unlink()


def _forget_other_selection(workdir: Path, modules: list[str]) -> None:
    """After a run on other modules: collect mutmut's test statistics again and retest the
    mutants it then found no tests for (which tests cover a function is recorded only for
    the functions a run mutates, and mutmut never retests a mutant that has a verdict)."""
    marker = workdir / "mutants" / "pytest-co2-modules.json"
    if marker.exists() and json.loads(marker.read_text("utf-8")) == sorted(modules):
        return
    (workdir / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    for m in modules:
        meta = workdir / "mutants" / PACKAGE / (m + ".meta")
        if meta.exists():
            data = json.loads(meta.read_text("utf-8"))
            codes = data.get("exit_code_by_key", {})
            data["exit_code_by_key"] = {k: None if c in NO_TESTS else c for k, c in codes.items()}
            meta.write_text(json.dumps(data, indent=4), "utf-8")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(sorted(modules)), "utf-8")


def _retest_survivors(workdir: Path, modules: list[str]) -> None:
    """Clear the verdict of every surviving mutant so that this run tests it again.

    mutmut keeps a verdict until the mutated function's source changes; new tests alone
    would otherwise never turn a survivor into a kill. Killed mutants keep their verdict.
    """
    for m in modules:
        meta = workdir / "mutants" / PACKAGE / (m + ".meta")
        if not meta.exists():
            continue
        data = json.loads(meta.read_text("utf-8"))
        codes = data.get("exit_code_by_key", {})
        if any(c in SURVIVED for c in codes.values()):
            data["exit_code_by_key"] = {k: None if c in SURVIVED else c for k, c in codes.items()}
            meta.write_text(json.dumps(data, indent=4), "utf-8")


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _write_config(dest: Path, modules: list[str]) -> None:
    """Append the ``[tool.mutmut]`` table for ``modules`` to the copy's pyproject.toml."""
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    if "[tool.mutmut]" in pyproject:
        raise SystemExit("pyproject.toml already has a [tool.mutmut] table; remove it first")
    table = "\n".join(
        [
            "",
            "[tool.mutmut]",
            f'source_paths = ["{PACKAGE}"]',
            f"only_mutate = {_toml_list([f'{PACKAGE}/{m}' for m in modules])}",
            'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider"]',
            'also_copy = ["benchmarks", "examples", "tools", "README.md"]',
            'pytest_add_cli_args_test_selection = ["tests"]',
            'process_isolation = "forkserver"',
            "",
        ]
    )
    target = dest / "pyproject.toml"
    target.write_text(pyproject + table, "utf-8")


# Test subprocesses (pytester's, xdist's workers) import the mutated package too, and its
# trampoline loads mutmut's config from the working directory, which there is a temporary
# folder: this sitecustomize loads it from the work folder first. (The variable's name does
# not start with PYTEST_: tests that run pytest in a subprocess drop those.)
_SITECUSTOMIZE = """\
import os

if os.environ.get("MUTANT_UNDER_TEST") and os.environ.get("CO2_MUTATION_ROOT"):
    _cwd = os.getcwd()
    os.chdir(os.environ["CO2_MUTATION_ROOT"])
    try:
        import mutmut.configuration

        mutmut.configuration.config()
    finally:
        os.chdir(_cwd)
"""


def _environment(workdir: Path) -> dict[str, str]:
    """The environment of ``mutmut run``: the sitecustomize above on the path, no addopts."""
    site = workdir / "_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE, "utf-8")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", CO2_MUTATION_ROOT=str(workdir))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _exit_codes(workdir: Path, module: str) -> dict[str, int | None]:
    meta = workdir / "mutants" / PACKAGE / (module + ".meta")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text("utf-8"))
    codes: dict[str, int | None] = data.get("exit_code_by_key", {})
    return codes


def _table(workdir: Path, modules: list[str]) -> tuple[list[str], list[str]]:
    """The per-module score lines and the names of the surviving mutants."""
    lines = [
        f"{'module':<26} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'score':>7}"
    ]
    survivors: list[str] = []
    total = caught_all = 0
    for module in modules:
        codes = _exit_codes(workdir, module)
        n = sum(1 for c in codes.values() if c not in SKIPPED)
        killed = sum(1 for c in codes.values() if c in KILLED)
        survived = [k for k, c in codes.items() if c in SURVIVED]
        untested = [k for k, c in codes.items() if c in NO_TESTS]
        survivors += survived + untested
        total += n
        caught_all += killed
        score = f"{100 * killed / n:.1f}%" if n else "-"
        lines.append(
            f"{module:<26} {n:>7} {killed:>7} {len(survived):>8} {len(untested):>8} {score:>7}"
        )
    overall = f"{100 * caught_all / total:.1f}%" if total else "-"
    lines.append(f"{'all':<26} {total:>7} {caught_all:>7} {'':>8} {'':>8} {overall:>7}")
    return lines, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules", nargs="*", help="paths under pytest_co2/ (default: the pure modules)"
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".mutation")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fresh", action="store_true", help="delete the work folder first")
    parser.add_argument("--report-only", action="store_true", help="print the last run's table")
    parser.add_argument(
        "--survivors", action="store_true", help="list the last run's surviving mutants (no run)"
    )
    parser.add_argument("--show", action="store_true", help="with --survivors: print each diff")
    args = parser.parse_args(argv)

    modules = [m.removeprefix(f"{PACKAGE}/") for m in args.modules] or list(PURE_MODULES)
    for m in modules:
        if not (ROOT / PACKAGE / m).is_file():
            parser.error(f"no module {m!r} under {PACKAGE}/: expected e.g. carbon/equivalents.py")
    workdir: Path = args.workdir.resolve()
    failed = False
    if not (args.report_only or args.survivors):
        if args.fresh and workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        _copy_tree(workdir)
        _forget_plain_copies(workdir, modules)
        _forget_other_selection(workdir, modules)
        _retest_survivors(workdir, modules)
        _write_config(workdir, modules)
        env = _environment(workdir)
        run = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)],
            cwd=workdir,
            env=env,
            check=False,
        )
        if run.returncode != 0:
            failed = True
            print(
                f"mutmut run exited with {run.returncode}: the table below holds the verdicts"
                " it reached; mutmut's own output above says which stage failed",
                file=sys.stderr,
            )
    lines, survivors = _table(workdir, modules)
    print("\n".join(lines))
    if args.survivors:
        for name in survivors:
            print(name)
            if args.show:
                subprocess.run(
                    [sys.executable, "-m", "mutmut", "show", name], cwd=workdir, check=False
                )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
