"""Shared helpers: one fake host for every test, and a pytester conftest whose backend is a
simulated 100 W device on a fake clock that tests advance by hand, so that every number is
exact."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy  # noqa: F401  (C extensions load once per process: import before pytester snapshots sys.modules)
import pytest
from fake_machine import fake_host
from hypothesis import HealthCheck, settings

from pytest_co2.backends.cpuinfo import HOST_ROOT_ENV

# Property tests judge the code, not the runner: no per-example deadline and no "data
# generation too slow" check, both of which a loaded CI machine trips.
settings.register_profile("any-load", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("any-load")


def pytest_configure(config: pytest.Config) -> None:
    # A file or pipe a test leaves open is said in the warnings summary (Python hides
    # ResourceWarning by default): the garbage collector reports it later, inside some other
    # test, where it can break an assertion on recorded warnings.
    config.addinivalue_line("filterwarnings", "always::ResourceWarning")


# pytester runs whose assertions read terminal text get this width (pytest reads COLUMNS).
COLUMNS = "80"

FAKE_CLOCK_CONFTEST = """
import numpy  # noqa: F401  (C extensions load once per process: import before pytester snapshots sys.modules)
import pytest
from pytest_co2.backends.constant import ConstantBackend


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


CLOCK = FakeClock()


def pytest_co2_make_backend(config, spec):
    if spec.startswith("constant:"):
        return ConstantBackend(float(spec.split(":", 1)[1]), clock=CLOCK)
    return None


@pytest.fixture
def clock():
    return CLOCK
"""


@pytest.fixture
def fake_clock_pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose ``constant:<W>`` backend runs on a fake clock (fixture ``clock``)."""
    pytester.makeconftest(FAKE_CLOCK_CONFTEST)
    return pytester


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's pytester, whose inner runs keep their files' test order: their assertions
    read outputs in that order, while this outer run may be shuffled by pytest-randomly.
    (pytester clears PYTEST_ADDOPTS when it starts, so it is set after that.)"""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


@pytest.fixture(scope="session")
def fake_host_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake machine's ``/`` (see :func:`tests.fake_machine.fake_host`)."""
    return fake_host(tmp_path_factory.mktemp("host"))


@pytest.fixture(autouse=True)
def _fake_host(
    request: pytest.FixtureRequest, fake_host_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test, and every pytest run it starts (in process or as a subprocess), sees the
    fake host instead of this machine's CPU, RAPL and GPUs, and one terminal width. Except
    the ``hardware`` tests: they are about this machine's real counters."""
    if request.node.get_closest_marker("hardware") is not None:
        return
    monkeypatch.setenv(HOST_ROOT_ENV, str(fake_host_root))
    # A GPU library that an earlier test imported (pynvml where it is installed) would skip
    # the driver check and find this machine's GPUs: each test imports its own, or a fake.
    for module in ("pynvml", "amdsmi"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setenv("COLUMNS", COLUMNS)
    # When this suite itself runs under pytest-xdist (-n), its worker variables would make
    # every inner pytester run believe it is an xdist worker.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    # Nor the backend that an outer pytest-co2 session hands to its DDP ranks.
    monkeypatch.delenv("PYTEST_CO2_HANDOFF", raising=False)
