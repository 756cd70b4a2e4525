"""SCI per functional unit (``--co2-sci``): ((E x I) + M) / R on the simulated backend with a
fake clock, against values computed by hand; the boundary disclosed in the JSON; the
market-based figure beside it; usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_CLOCK_CONFTEST
from fake_machine import cpuinfo_text, make_tree
from terminal_text import unwrapped

from pytest_co2.backends.cpuinfo import HOST_ROOT_ENV
from pytest_co2.carbon.sci import Embodied, parse_embodied, parse_embodied_gpu, sci_per_unit

RUN = """
def test_train(co2_meter, clock):
    for _ in co2_meter.steps(4, precision=None):
        clock.advance(0.25)
"""
GPUS_CONFTEST = """
from pytest_co2.backends.base import Device, Method


class TwoGpus(ConstantBackend):
    def __init__(self):
        super().__init__(100.0, clock=CLOCK)
        self.devices = tuple(
            Device(f"gpu:{i}", "gpu", "simulated GPU", Method.SIMULATED) for i in range(2)
        )

    def read_j(self):
        e = (self.clock() - self._t0) * 50.0
        return (e, e)


def pytest_co2_backend_names(config):
    return ["twogpus"]


@pytest.hookimpl(tryfirst=True)
def pytest_co2_make_backend(config, spec):
    return TwoGpus() if spec == "twogpus" else None
"""
ARGS = (
    "--co2-backend=constant:100", "--co2-pue=1.5", "--co2-intensity=400",
    "--co2-extrapolate=1000", "--co2-json=r.json", "--co2-sci",
)  # fmt: skip
YEAR_S = 365.25 * 24 * 3600
# 4 steps of 0.25 s at 100 W: 25 J and 0.25 s per iteration
E_KWH = 25 / 3.6e6 * 1.5  # kWh per iteration, with PUE
MACHINE_G = 1000 * 1000 / (4 * YEAR_S) * 0.25  # 1000 kg over 4 years, 0.25 s, all 4 CPUs


@pytest.fixture(autouse=True)
def _not_in_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs are no xdist workers' share, even when this suite runs under -n."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)


def sci(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "r.json").read_text())["sci"]  # type: ignore[no-any-return]


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=0)


def test_sci_per_unit_by_hand(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(RUN)
    result = fake_clock_pytester.inline_run(
        *ARGS, "--co2-embodied=1000,4", "--co2-market-intensity=100"
    )
    result.assertoutcome(passed=1)
    block = sci(fake_clock_pytester)
    (m,) = block["measurements"]
    assert m["functional_unit"] == "iteration"
    assert m["seconds_per_unit"] == approx(0.25)
    assert m["energy_kwh_per_unit"] == approx(E_KWH)
    assert m["operational_g_per_unit"] == approx(E_KWH * 400)
    assert m["embodied_machine_g_per_unit"] == approx(MACHINE_G)
    assert (m["embodied_gpu_g_per_unit"], m["gpus"]) == (0.0, 0)
    assert m["sci_g_per_unit"] == approx(E_KWH * 400 + MACHINE_G)
    assert m["market_based"] == {
        "operational_g_per_unit": approx(E_KWH * 100),
        "total_g_per_unit": approx(E_KWH * 100 + MACHINE_G),
    }
    assert m["projection"] == {
        "n": 1000,
        "unit": "iteration",
        "sci_g": approx(1000 * (E_KWH * 400 + MACHINE_G)),
        "market_based_g": approx(1000 * (E_KWH * 100 + MACHINE_G)),
    }
    assert (m["intensity"]["g_per_kwh"], m["intensity"]["basis"]) == (400.0, "location-based")
    assert block["embodied"] == {
        "machine": {"kg": 1000.0, "years": 4.0, "share": None},
        "machine_share": 1.0,
        "machine_share_basis": "4 of 4 CPUs this run may use",
        "gpu": None,
    }
    assert block["market_g_per_kwh"] == 100.0
    # the operational part times the projection is the emission the report gives
    data = json.loads((fake_clock_pytester.path / "r.json").read_text())
    co2e_kg = data["tests"][0]["measurements"][0]["emission"]["co2e_kg"]
    assert m["operational_g_per_unit"] * 1000 == approx(co2e_kg * 1000)


def test_the_boundary_is_disclosed(fake_clock_pytester: pytest.Pytester) -> None:
    fake_clock_pytester.makepyfile(RUN)
    fake_clock_pytester.inline_run(*ARGS, "--co2-embodied=1000,4").assertoutcome(passed=1)
    assert sci(fake_clock_pytester)["boundary"] == {
        "E": "the measured windows' energy per unit (simulated; devices: simulated device at "
        "100 W (simulated)) x PUE (the data centre's overhead)",
        "I": "location-based: the grid intensity of each measurement's emission (its source is "
        "on each entry)",
        "M": "the machine: 1000 kg CO2e over 4 years x the time reserved per unit x share 1 (4 "
        "of 4 CPUs this run may use)",
        "R": "one unit of each measurement (steps() and measure(): an iteration, a sample, ...)",
        "time_reserved": "the measured windows' wall time / the units measured",
        "excluded": [
            "energy outside the measured windows: warm-up steps, fixtures, collection, the test "
            "runner",
            "devices the backend does not read (e.g. disks, network; memory unless the backend "
            "counts it)",
            "embodied emissions of the network, storage and the rest of the data centre",
            "market-based instruments (certificates, contracts): not in the SCI score",
        ],
    }
    fake_clock_pytester.inline_run(*ARGS).assertoutcome(passed=1)
    block = sci(fake_clock_pytester)
    assert block["boundary"]["M"] == "none given: M = 0, so the score understates"
    assert block["boundary"]["excluded"][0] == (
        "the machine's embodied emissions (no --co2-embodied given)"
    )
    (m,) = block["measurements"]
    assert m["sci_g_per_unit"] == approx(E_KWH * 400) and m["market_based"] is None


def test_the_machine_share_from_the_cpus_held_or_given(
    fake_clock_pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = make_tree(tmp_path / "host", cpuinfo_text(4), cpus_allowed="0")  # 1 of 4 CPUs
    monkeypatch.setenv(HOST_ROOT_ENV, str(host))
    fake_clock_pytester.makepyfile(RUN)
    fake_clock_pytester.inline_run(*ARGS, "--co2-embodied=1000,4").assertoutcome(passed=1)
    block = sci(fake_clock_pytester)
    assert (block["embodied"]["machine_share"], block["embodied"]["machine_share_basis"]) == (
        0.25,
        "1 of 4 CPUs this run may use",
    )
    assert block["measurements"][0]["embodied_machine_g_per_unit"] == approx(MACHINE_G / 4)
    fake_clock_pytester.inline_run(*ARGS, "--co2-embodied=1000,4,0.5").assertoutcome(passed=1)
    block = sci(fake_clock_pytester)
    assert block["embodied"]["machine_share_basis"] == "given in --co2-embodied"
    assert block["measurements"][0]["embodied_machine_g_per_unit"] == approx(MACHINE_G / 2)


def test_each_gpu_read_is_charged_its_embodied_share(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_CLOCK_CONFTEST + GPUS_CONFTEST)
    pytester.makepyfile(RUN)
    args = (*ARGS[1:], "--co2-backend=twogpus", "--co2-embodied-gpu=150,5")
    pytester.inline_run(*args).assertoutcome(passed=1)
    block = sci(pytester)
    (m,) = block["measurements"]
    gpu_g = 2 * 150 * 1000 / (5 * YEAR_S) * 0.25
    assert (m["gpus"], m["embodied_gpu_g_per_unit"]) == (2, approx(gpu_g))
    assert m["sci_g_per_unit"] == approx(E_KWH * 400 + gpu_g)  # 2 x 50 W: the same 25 J
    assert block["boundary"]["M"] == (
        "each GPU a measurement read: 150 kg CO2e over 5 years x the time reserved per unit"
    )
    assert block["boundary"]["excluded"][0] == (
        "the machine's embodied emissions (no --co2-embodied given)"
    )
    pytester.inline_run(*ARGS[1:], "--co2-backend=twogpus").assertoutcome(passed=1)
    assert sci(pytester)["boundary"]["excluded"][1] == (
        "the GPUs' embodied emissions (no --co2-embodied-gpu given)"
    )


def test_the_summary_puts_the_sci_beside_the_projection(
    fake_clock_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    fake_clock_pytester.makepyfile(RUN)
    result = fake_clock_pytester.runpytest(
        *ARGS, "--co2-embodied=1000,4", "--co2-market-intensity=100"
    )
    result.assert_outcomes(passed=1)
    unwrapped(result).fnmatch_lines(
        [
            "co2 SCI per unit (SCI = ((E x I) + M) / R, location-based; boundary in the JSON "
            "report)",
            "test_the_summary_puts_the_sci_beside_the_projection.py::test_train [default]: "
            "0.00615 g/iteration (E x I 0.00417 + M 0.00198); 1,000 iterations: 6.15 g; "
            "market-based 0.00302 g/iteration (not SCI)",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--co2-sci", "--co2-embodied=1000"],
            "*argument --co2-embodied: invalid embodied figure '1000': expected "
            "KG,YEARS?,SHARE? (e.g. 1200,4)",  # ?: the brackets, which fnmatch reads
        ),
        (
            ["--co2-sci", "--co2-embodied=1000,0"],
            "*argument --co2-embodied: invalid lifetime in years '0' in '1000,0': expected a "
            "number > 0 and <= 100",
        ),
        (
            ["--co2-sci", "--co2-embodied=1000,4,1.5"],
            "*argument --co2-embodied: invalid resource share '1.5' in '1000,4,1.5': expected a "
            "number > 0 and <= 1",
        ),
        (
            ["--co2-sci", "--co2-embodied-gpu=150,4,0.5"],
            "*argument --co2-embodied-gpu: invalid embodied figure '150,4,0.5': expected "
            "KG,YEARS (e.g. 150,4)",
        ),
        (
            ["--co2-sci", "--co2-market-intensity=-5"],
            "*argument --co2-market-intensity: invalid intensity '-5': give a carbon intensity "
            "in g CO2e/kWh, a number >= 0",
        ),
        (["--co2-embodied=1000,4"], "ERROR: --co2-embodied needs --co2-sci"),
        (["--co2-market-intensity=50"], "ERROR: --co2-market-intensity needs --co2-sci"),
    ],
)
def test_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_sci_per_unit_pure() -> None:
    machine, gpu = Embodied(1200.0, 4.0), Embodied(150.0, 5.0)
    s = sci_per_unit(
        3.6e6, 3600.0, pue=1.2, g_per_kwh=300.0, machine=machine, machine_share=0.5,
        gpus=2, gpu=gpu, market_g_per_kwh=0.0,
    )  # fmt: skip
    machine_g = 1200e3 * 3600 / (4 * YEAR_S) * 0.5
    gpu_g = 2 * 150e3 * 3600 / (5 * YEAR_S)
    assert (s.energy_kwh, s.operational_g) == (1.2, approx(360.0))
    assert (s.machine_g, s.gpu_g) == (approx(machine_g), approx(gpu_g))
    assert s.sci_g == approx(360 + machine_g + gpu_g)
    assert s.market_g == approx(machine_g + gpu_g)  # a zero market factor leaves M
    assert parse_embodied(" 1200 , 4 ") == Embodied(1200.0, 4.0)
    assert parse_embodied("1200,4,0.25") == Embodied(1200.0, 4.0, 0.25)
    assert parse_embodied_gpu("150,5") == Embodied(150.0, 5.0)
