"""``make_backend``: spec parsing, and what ``auto`` picks (here, and with fake hardware)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_co2.backends import (
    BACKEND_NAMES,
    BackendError,
    BackendUnavailable,
    BackendWarning,
    Method,
    check_backend_spec,
    gpu_presence,
    make_backend,
)
from pytest_co2.backends import rapl as rapl_module


def test_auto_on_a_machine_without_counters_is_the_estimate(fake_host_root: Path) -> None:
    """The fake host of tests/conftest.py: no GPU driver, no RAPL, whatever this machine has."""
    with make_backend("auto") as backend:
        assert backend.name == "auto (estimate)"
        assert backend.method == "estimated"
        assert [d.id for d in backend.devices] == ["cpu:process", "memory:process"]
        assert all(d.method is Method.ESTIMATED for d in backend.devices)
        assert backend.notes[:3] == [
            "no NVML GPU: no NVIDIA driver (no /proc/driver/nvidia, /dev/nvidiactl or /dev/dxg)",
            "no AMD GPU: no AMD GPU driver (no /dev/kfd or /sys/module/amdgpu)",
            f"no RAPL: no RAPL powercap domains under {fake_host_root / 'sys/class/powercap'}; "
            "CPU energy is estimated",
        ]
        assert "[estimated]" in backend.describe()
        assert len(backend.read_j()) == 2


def test_auto_passes_the_cpu_tdp_to_the_estimate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_hardware(monkeypatch, tmp_path)
    with make_backend("auto", cpu_tdp_w=42.0) as backend:
        assert backend.tdp_w == 42.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", ["rapl", "nvml", "amdsmi"])
def test_named_hardware_backends_are_unavailable_on_the_fake_host(spec: str) -> None:
    with pytest.raises(BackendUnavailable):
        make_backend(spec)


def test_estimate_and_constant_specs() -> None:
    with make_backend("estimate", cpu_tdp_w=50.0) as backend:
        assert backend.tdp_w == 50.0 and backend.tdp_source == "user --co2-cpu-tdp"  # type: ignore[attr-defined]
    with make_backend(" Constant:300 ") as backend:
        assert backend.method == "simulated"


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("auto", "auto"),
        (" RAPL ", "rapl"),
        ("nvml", "nvml"),
        ("Estimate", "estimate"),
        ("carbontracker", "carbontracker"),
        ("constant:300", "constant:300"),
        ("CONSTANT:2.5", "constant:2.5"),
    ],
)
def test_check_backend_spec_accepts(text: str, normalized: str) -> None:
    assert check_backend_spec(text) == normalized


@pytest.mark.parametrize("text", ["gpu", "", "rapl,nvml", "constant", "constant<watts>"])
def test_check_backend_spec_rejects_unknown_names(text: str) -> None:
    with pytest.raises(ValueError) as info:
        check_backend_spec(text)
    message = str(info.value)
    assert repr(text) in message and "expected one of" in message
    assert all(name in message for name in BACKEND_NAMES)
    with pytest.raises(ValueError):
        make_backend(text)


@pytest.mark.parametrize(
    "text",
    ["constant:abc", "constant:0", "constant:-5", "constant:nan", "constant:inf", "constant:"],
)
def test_check_backend_spec_rejects_bad_watts(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected watts as a number > 0, e.g. constant:300"):
        check_backend_spec(text)


# -- auto with fake hardware ---------------------------------------------------------------
def _fake_powercap(root: Path) -> Path:
    for entry, name in [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:0:1", "dram"),
    ]:
        d = root / entry
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text("1000\n")
        (d / "max_energy_range_uj").write_text("262143328850\n")
    return root


def _patch_rapl_root(monkeypatch: pytest.MonkeyPatch, root: Path, deny: bool = False) -> None:
    class FakeRootRapl(rapl_module.RaplBackend):
        def __init__(self, root_: Any = root, poll_interval_s: float | None = None) -> None:
            super().__init__(root_, poll_interval_s)

    if deny:

        def denied(path: Path) -> int:
            raise PermissionError(13, "Permission denied", str(path))

        FakeRootRapl._open_uj = staticmethod(denied)  # type: ignore[method-assign]
    monkeypatch.setattr(rapl_module, "RaplBackend", FakeRootRapl)
    # auto's cheap look for powercap domains (before importing the module) looks there too
    monkeypatch.setattr(gpu_presence, "rapl_root", lambda: str(root))


def _fake_pynvml(gpus: int) -> types.ModuleType:
    module = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    energy = {i: 10_000 for i in range(gpus)}
    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.NVMLError_NotSupported = type("NVMLError_NotSupported", (NVMLError,), {})  # type: ignore[attr-defined]
    module.energy = energy  # type: ignore[attr-defined]
    module.nvmlInit = lambda: None  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: gpus  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: "NVIDIA A100-SXM4-40GB"  # type: ignore[attr-defined]
    module.nvmlDeviceGetUUID = lambda h: f"GPU-{h:08d}"  # type: ignore[attr-defined]
    module.nvmlDeviceGetTotalEnergyConsumption = lambda h: energy[h]  # type: ignore[attr-defined]
    module.nvmlDeviceGetPowerUsage = lambda h: 100_000  # type: ignore[attr-defined]
    return module


def _no_hardware(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _patch_rapl_root(monkeypatch, tmp_path / "no-powercap")
    monkeypatch.setitem(sys.modules, "pynvml", None)


def test_auto_prefers_readable_rapl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _patch_rapl_root(monkeypatch, _fake_powercap(tmp_path / "powercap"))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with make_backend("auto") as backend:
        assert backend.name == "auto (rapl)"
        assert backend.method == "counter"
        assert [d.id for d in backend.devices] == ["cpu:package-0", "dram:0"]
        assert any("pynvml is not installed" in n for n in backend.notes)


def test_auto_warns_with_the_fix_and_estimates_when_rapl_is_denied(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _patch_rapl_root(monkeypatch, _fake_powercap(tmp_path / "powercap"), deny=True)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.warns(BackendWarning, match=r"RAPL unavailable.*sudo chmod -R a\+r"):
        backend = make_backend("auto")
    with backend:
        assert backend.name == "auto (estimate)"
        assert backend.method == "estimated"
        assert any(
            "permission denied" in n and "CPU energy is estimated" in n for n in backend.notes
        )


def test_auto_combines_nvml_gpus_with_the_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _patch_rapl_root(monkeypatch, tmp_path / "no-powercap")
    fake = _fake_pynvml(gpus=2)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with make_backend("auto") as backend:
        assert backend.name == "auto"
        assert [(d.id, d.method) for d in backend.devices] == [
            ("gpu:1", Method.COUNTER),
            ("cpu:process", Method.ESTIMATED),
            ("memory:process", Method.ESTIMATED),
        ]
        assert backend.method == "counter+estimated"
        e0 = backend.read_j()
        fake.energy[1] += 5_000  # type: ignore[attr-defined]
        assert backend.read_j()[0] - e0[0] == 5.0


def test_named_backend_errors_propagate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _patch_rapl_root(monkeypatch, _fake_powercap(tmp_path / "powercap"), deny=True)
    with pytest.raises(BackendError, match="permission denied") as info:
        make_backend("rapl")
    assert not isinstance(info.value, BackendUnavailable)


def test_no_pytest_co2_hardware_import_at_package_import() -> None:
    """``import pytest_co2.backends`` must not import pynvml or carbontracker."""
    import subprocess

    code = (
        "import sys, pytest_co2.backends; "
        "print([m for m in ('pynvml', 'carbontracker', 'torch') if m in sys.modules])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def _printed_by(code: str) -> list[str]:
    """The lines a new Python process running ``code`` prints (a fresh ``sys.modules``)."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_auto_without_a_gpu_driver_imports_no_gpu_module(tmp_path: Path) -> None:
    """The fake host has no GPU driver: ``auto`` says so in its notes, as the GPU backends
    would, without importing their modules (several ms at start-up)."""
    code = (
        "import sys; from pytest_co2.backends import make_backend; b = make_backend('auto'); "
        "print([m for m in ('pytest_co2.backends.nvml', 'pytest_co2.backends.amdsmi') "
        "if m in sys.modules]); print(b.notes[:2])"
    )
    assert _printed_by(code) == [
        "[]",
        "['no NVML GPU: no NVIDIA driver (no /proc/driver/nvidia, /dev/nvidiactl or /dev/dxg)', "
        "'no AMD GPU: no AMD GPU driver (no /dev/kfd or /sys/module/amdgpu)']",
    ]


def test_auto_without_powercap_domains_does_not_import_the_rapl_module(
    fake_host_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A VM or container (no ``intel-rapl:*`` under powercap) is told apart by a directory
    listing: the ``rapl`` module is not imported, and the note is the one it would give."""
    import shutil

    from pytest_co2.backends.cpuinfo import HOST_ROOT_ENV

    host = tmp_path / "host"
    shutil.copytree(fake_host_root, host, symlinks=True)
    (host / "sys/class/powercap/dtpm").mkdir(parents=True)  # a powercap zone, not RAPL
    monkeypatch.setenv(HOST_ROOT_ENV, str(host))
    code = (
        "import sys\n"
        "from pytest_co2.backends import make_backend\n"
        "b = make_backend('auto')\n"
        "print('pytest_co2.backends.rapl' in sys.modules)\n"
        "print(b.name)\n"
        "print([n for n in b.notes if n.startswith('no RAPL')][0])\n"
    )
    root = host / "sys/class/powercap"
    assert _printed_by(code) == [
        "False",
        "auto (estimate)",
        f"no RAPL: no RAPL powercap domains under {root}; CPU energy is estimated",
    ]
    with pytest.raises(BackendUnavailable, match=f"^no RAPL powercap domains under {root}$"):
        rapl_module.RaplBackend()  # the module's own verdict on the same tree
