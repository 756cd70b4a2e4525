"""What users read fits their terminal: distinct row names, whole numbers, notes on what was
left out, a header silent about unset options, and a failed gate as the run's last line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_co2.fmt import fmt_num, row_labels

# long parametrized ids that differ only at their end, in a deep folder, with measurement
# names that carry a note in parentheses (as the benchmarks' do)
LONG_IDS = """
import pytest

CONFIGS = [f"model-{m}-image-{s}x{s}-batch-{b}" for m in ("small", "large")
           for s in (64, 128) for b in (1, 8)]

@pytest.mark.parametrize("config", CONFIGS)
def test_training_step_energy(co2_meter, clock, config):
    seconds = 0.01 * (1 + CONFIGS.index(config))
    with co2_meter.measure(f"train {config} (projected from 4 steps)", unit="step") as m:
        for _ in range(4):
            clock.advance(seconds)
            m.step()
"""
ARGS = ("--co2-backend=constant:100", "--co2-precision=off", "-p", "no:cacheprovider")


def run_at(p: pytest.Pytester, columns: int, *args: str) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(columns))
        return p.runpytest(*ARGS, *args)


def over(result: pytest.RunResult, width: int) -> list[str]:
    """The plugin's lines (its header lines, and all from its summary on) over ``width``,
    except a line that is one word."""
    lines = result.outlines
    start = next((i for i, line in enumerate(lines) if "co2 emissions summary" in line), len(lines))
    ours = [line for line in lines[:start] if line.startswith("co2")] + lines[start:]
    return [line for line in ours if len(line) > width and not _one_word(line)]


def _one_word(line: str) -> bool:
    """A path or node id longer than the width: the plugin never breaks it (it is copied)."""
    return len(line.removeprefix("co2:").split()) == 1


def unwrapped(result: pytest.RunResult) -> str:
    return " ".join(" ".join(result.outlines).split())


def summary_rows(result: pytest.RunResult, n: int) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("-----"))
    return lines[start + 1 : start + 1 + n]


@pytest.fixture
def deep(fake_clock_pytester: pytest.Pytester) -> pytest.Pytester:
    folder = fake_clock_pytester.path / "tests" / "integration" / "energy"
    folder.mkdir(parents=True)
    (folder / "test_model_training_energy_budgets.py").write_text(LONG_IDS)
    return fake_clock_pytester


@pytest.mark.parametrize("columns", [80, 100])
def test_long_ids_stay_distinct_whole_numbered_and_within_the_width(
    deep: pytest.Pytester, columns: int
) -> None:
    result = run_at(deep, columns, "--co2-json=r.json")
    result.assert_outcomes(passed=8)
    assert over(result, columns) == []
    rows = summary_rows(result, 8)
    names = [row.split("  ")[0] for row in rows]
    assert len(set(names)) == 8
    # each row keeps its test's parameters whole, and its kWh figure whole
    tests = json.loads((deep.path / "r.json").read_text())["tests"]
    for t in tests:
        config = t["nodeid"].split("[")[1].rstrip("]")
        assert config.startswith("model-")  # what all share: the cut may take it
        (row,) = [r for r in rows if r.split("  ")[0].endswith(config[len("model-") :] + "]")]
        assert row.startswith("test_training_")
        kwh = t["measurements"][0]["projection"]["energy_kwh"]
        assert f"  {fmt_num(kwh)}  " in row
    assert (
        "test names without their file tests/integration/energy/"
        "test_model_training_energy_budgets.py, measurement names (--co2-report=full: whole ids)"
    ) in unwrapped(result)


def test_row_labels_drop_what_rows_share_then_cut_keeping_them_apart() -> None:
    ids = [f"a/b/test_f.py::test_x[config-{i}] [m (note {i})]" for i in range(12)]
    assert row_labels(ids, 100) == (ids, "")  # fits: unchanged
    labels, dropped = row_labels(ids, 40)
    assert dropped == "file a/b/test_f.py"
    assert labels[11] == "test_x[config-11] [m (note 11)]"
    labels, dropped = row_labels(ids, 24)
    assert dropped == "file a/b/test_f.py, notes in parentheses"
    assert labels[11] == "test_x[config-11] [m]"
    labels, _ = row_labels(ids, 12)
    assert len(set(labels)) == 12 and all(len(s) <= 12 for s in labels)
    # two files with the same test names: only the common directory goes
    twice = ["d/test_a.py::test_x[1]", "d/test_b.py::test_x[1]"]
    assert row_labels(twice, 16) == (["test_a.py::test…", "test_b.py::test…"], "directory d/")
    # nothing tells them apart within the width: an ordinal does
    same = ["t::" + "x" * 30 + "1", "t::" + "x" * 30 + "2"]
    assert len(set(row_labels(same, 3)[0])) == 2


def test_whatif_columns_left_out_are_named_with_how_to_see_them(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile(LONG_IDS)
    regions = "--co2-regions=DE,PL,SE,FR,NO,IS,AT,CH,IT,ES"
    narrow = run_at(fake_clock_pytester, 80, regions)
    assert over(narrow, 80) == []
    text = unwrapped(narrow)
    assert "what-if columns " in text and " left out at 80 columns: --co2-report=full or " in text
    assert "shows them (--co2-json has every figure)" in text
    # the regions asked for come before the other optional columns
    wide = run_at(fake_clock_pytester, 200, "--co2-regions=DE,PL")
    header = next(line for line in wide.outlines if line.startswith("test "))
    assert header.split()[6:11] == ["method", "kg", "DE", "kg", "PL"]
    assert "left out" not in " ".join(wide.outlines)


def test_the_header_says_nothing_of_extrapolation_unless_asked(
    fake_clock_pytester: pytest.Pytester,
) -> None:
    fake_clock_pytester.makepyfile("def test_x(co2_meter):\n    pass\n")
    plain = " ".join(run_at(fake_clock_pytester, 200).outlines)
    assert "extrapolate" not in plain and "PUE 1.55; budget mode fail" in plain
    asked = " ".join(run_at(fake_clock_pytester, 400, "--co2-extrapolate=1000").outlines)
    assert "PUE 1.55; extrapolate 1,000 iterations; budget mode fail" in asked


GATE = """
import pathlib

FACTOR = float(pathlib.Path(__file__).with_name("factor.txt").read_text())

def test_matmul_step(co2_meter, clock):
    for _ in co2_meter.steps(8):
        clock.advance(0.1 * FACTOR)
"""


@pytest.mark.parametrize("columns", [80, 100])
def test_a_failed_gate_ends_the_run_within_the_width(
    fake_clock_pytester: pytest.Pytester, columns: int
) -> None:
    p = fake_clock_pytester
    p.makepyfile(GATE)
    (p.path / "factor.txt").write_text("1.0")
    run_at(p, columns, "--co2-save=b").assert_outcomes(passed=1)
    (p.path / "factor.txt").write_text("1.6")
    result = run_at(p, columns, "--co2-compare=b", "--co2-compare-fail=energy:10%")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert over(result, columns) == []
    assert result.outlines[-1] == (
        "co2: FAILED: 1 regression (test_matmul_step +60.0%, 95% +60.0% to +60.0%)"
    )
    # a gate that passes leaves pytest's count as the last line
    result = run_at(p, columns, "--co2-compare=b", "--co2-compare-fail=energy:70%")
    assert result.ret == pytest.ExitCode.OK and "passed" in result.outlines[-1]


@pytest.mark.parametrize(
    ("headers", "rows"),
    [
        (["test", "kWh", "kg CO2e ± std"], [["a::b", "1.5", " 2e-05 ± 0 "], ["TOTAL", "", "x"]]),
        (["t", "Δ kWh"], [["é", "-12.0%"], ["长名", "3"], ["", "0"]]),
        (["a very long header", "b"], [["1", "22"]]),
    ],
)
def test_the_summary_table_is_tabulates_simple_format(
    headers: list[str], rows: list[list[str]]
) -> None:
    """The summary lays out its table itself (tabulate costs several ms to import): the
    same lines as tabulate's "simple" format with numbers kept as text."""
    from tabulate import tabulate

    from pytest_co2.reporting.terminal import simple_table

    expected = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    assert simple_table(rows, headers) == expected.splitlines()


@pytest.mark.parametrize(("cell", "looked_for"), [("kWh", False), ("Δ kWh", True), ("a\tb", True)])
def test_wcwidth_is_looked_for_only_for_a_cell_that_is_not_printable_ascii(
    cell: str, looked_for: bool
) -> None:
    """Printable ASCII is as wide as it is long: the summary needs no wcwidth for it (nor a
    search of sys.path where it is not installed)."""
    code = (
        "import sys\n"
        "seen = []\n"
        "class Finder:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        seen.append(name)\n"
        "sys.meta_path.insert(0, Finder())\n"
        "from pytest_co2.reporting.terminal import simple_table\n"
        f"simple_table([[{cell!r}, '1']], ['t', 'n'])\n"
        "print('wcwidth' in seen)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(looked_for)
