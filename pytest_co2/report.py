"""The JSON report (versioned schema), written atomically."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from . import __version__
from .table import totals

SCHEMA_VERSION = 1


def session_info(
    settings: Mapping[str, Any], backend: Any, started: _dt.datetime, accounting: Any
) -> dict[str, Any]:
    """The report's ``session`` block."""
    cpu = (
        getattr(_find_part(backend, "cpu_model_name"), "cpu_model_name", None)
        or platform.processor()
    )
    est = _find_part(backend, "tdp_w")
    gpus = [d.label for d in getattr(backend, "devices", ()) if d.kind == "gpu"]
    return {
        "pytest_co2_version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "cpu_model": cpu,
        "cpu_tdp_w": getattr(est, "tdp_w", None),
        "cpu_tdp_source": getattr(est, "tdp_source", None),
        "gpus": gpus,
        "backend": backend.describe() if backend is not None else None,
        "backend_notes": list(getattr(backend, "notes", ())),
        "intensity": accounting.intensity.to_dict(),
        "settings": dict(settings),
    }


def _find_part(backend: Any, attr: str) -> Any:
    """The backend, or the part of a composite backend, that has ``attr``."""
    if backend is None:
        return None
    if hasattr(backend, attr):
        return backend
    for part in getattr(backend, "parts", ()):
        if hasattr(part, attr):
            return part
    return None


def build_report(
    session: Mapping[str, Any],
    tests: Iterable[Mapping[str, Any]],
    *,
    exit_status: int | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    tests = list(tests)
    return {
        "schema_version": SCHEMA_VERSION,
        "session": {
            **session,
            "exit_status": exit_status,
            "interrupted": interrupted,
            "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        },
        "tests": tests,
        "totals": totals(tests),
    }


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``:
    a reader (or a crash) never sees a half-written report."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".co2-", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON, atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} is not a pytest-co2 report of schema version {SCHEMA_VERSION}"
        )
    return data
