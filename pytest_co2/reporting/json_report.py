"""The JSON report (versioned schema): built from the typed model, written atomically,
read back and validated."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import __version__
from .model import SCHEMA_VERSION, ReportError, TestRecord, Totals, all_results, tests_from_dicts

if TYPE_CHECKING:
    from ..backends.base import Backend
    from .baseline import Comparison


def session_info(
    settings: Mapping[str, Any], backend: Backend | None, started: _dt.datetime, accounting: Any
) -> dict[str, Any]:
    """The report's ``session`` block (``backend`` None in an xdist controller)."""
    from ..backends import find_part
    from ..backends.estimate import EstimateBackend

    est = find_part(backend, EstimateBackend)
    gpus = [d.label for d in getattr(backend, "devices", ()) if d.kind == "gpu"]
    return {
        "pytest_co2_version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "cpu_model": (est.cpu_model_name if est is not None else None) or platform.processor(),
        "cpu_estimate": None
        if est is None
        else {
            "basis": est.basis,
            "idle_w_per_thread": est.idle_w_per_thread,
            "full_w_per_thread": est.full_w_per_thread,
            "cpus_held": est.cpus_held,
            "source": est.power.source,
        },
        "cpu_tdp_w": est.tdp_w if est is not None and est.tdp_source.startswith("user") else None,
        "gpus": gpus,
        "backend": backend.describe() if backend is not None else None,
        "backend_notes": list(getattr(backend, "notes", ())),
        "intensity": accounting.intensity.to_dict(),
        "settings": dict(settings),
    }


@dataclass
class Report:
    """A whole run: session facts (a JSON-safe block), test records and a comparison."""

    session: dict[str, Any]
    tests: list[TestRecord]
    comparison: Comparison | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # blocks added by other plugins

    @property
    def totals(self) -> Totals:
        return Totals.of(all_results(self.tests))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "session": self.session,
            "tests": [t.to_dict() for t in self.tests],
            "totals": self.totals.to_dict(),
        }
        if self.comparison is not None:
            data["comparison"] = self.comparison.to_dict()
        data.update(self.extra)
        return data


def finished_session(
    session: Mapping[str, Any], *, exit_status: int | None, interrupted: bool
) -> dict[str, Any]:
    """The session block with how and when the run ended."""
    return {
        **session,
        "exit_status": exit_status,
        "interrupted": interrupted,
        "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``:
    a reader (or a crash) never sees a half-written report. A target that exists and is not
    a regular file (``/dev/stdout``, a pipe) is written in place, never replaced."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
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


def load_report(path: str | os.PathLike[str], *, what: str = "report") -> Report:
    """Read and validate a saved report. ValueError (one line) naming the file and the first
    bad field: unreadable, not UTF-8, not JSON, another schema, a missing or bad field."""
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ReportError(f"cannot read {what} {where!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ReportError(
            f"{what} {where!r} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{what} {where!r} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReportError(
            f"{what} {where!r} is not a pytest-co2 report of schema version {SCHEMA_VERSION}"
        )
    session = data.get("session")
    if not isinstance(session, dict):
        raise ReportError(f"{what} {where!r}: missing field 'session'")
    try:
        tests = tests_from_dicts(data.get("tests"))
    except ReportError as exc:
        raise ReportError(f"{what} {where!r}: {exc}") from None
    return Report(session=session, tests=tests)
