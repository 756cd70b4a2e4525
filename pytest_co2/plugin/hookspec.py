"""pytest-co2's own hooks, so a conftest or another plugin can extend it."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_co2_make_backend(config: pytest.Config, spec: str) -> Any:
    """Return a ``pytest_co2.backends.Backend`` for ``spec`` (e.g. an AMD GPU or a wall-plug
    meter), or None to let pytest-co2 build its own. Called once per process."""


def pytest_co2_update_json(config: pytest.Config, report: dict[str, Any]) -> None:
    """Modify the JSON report (a dict) in place before it is written."""


def pytest_co2_backend_names(config: pytest.Config) -> list[str]:
    """Return the backend names this plugin serves through ``pytest_co2_make_backend``, so
    that ``--co2-backend=NAME`` accepts them (checked at start-up, listed in errors)."""
    return []
