"""Write the run's outputs: the JSON report, the saved baseline, the markdown table.

A failure to write (disk full, folder removed) is one line in the terminal summary, never
a traceback; every file is replaced atomically (see ``reporting.json_report``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from ..reporting.json_report import Report, write_atomic, write_text_atomic


class ReportWriter:
    """Writes reports and remembers what could not be written."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def _write(self, writer: Callable[[str, Any], None], path: str, data: Any) -> bool:
        try:
            writer(path, data)
        except OSError as exc:
            message = f"pytest-co2: could not write {path}: {exc}"
            if message not in self.errors:
                self.errors.append(message)
            return False
        return True

    def json(self, path: str, data: dict[str, Any]) -> bool:
        """The JSON report (``Report.to_dict()`` after the ``pytest_co2_update_json`` hooks)."""
        return self._write(write_atomic, path, data)

    def markdown(self, path: str, report: Report) -> bool:
        from ..reporting.markdown import render_markdown

        return self._write(write_text_atomic, path, render_markdown(report))

    def failed(self, path: str | os.PathLike[str] | None) -> bool:
        return path is not None and any(os.fspath(path) in m for m in self.errors)


JOURNAL_SUFFIX = ".journal.jsonl"
JOURNAL_VERSION = 1


def journal_path_for(report_path: str) -> str:
    """``co2.json`` -> ``co2.json.journal.jsonl``: the journal lies beside its report."""
    return report_path + JOURNAL_SUFFIX


class Journal:
    """Durable results: each finished test's record is appended as one JSON line and
    fsync'd, so that a killed run (SIGKILL, ``os._exit``, a power cut) loses at most the test
    in flight. The first line holds the session facts. Removed once the report is written;
    a journal left behind is recovered by the next run or by ``pytest-co2 report``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self.error: str | None = None

    def append(self, record: dict[str, Any], session: Callable[[], dict[str, Any]]) -> None:
        import json

        try:
            if self._fd is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
                self._fd = os.open(self.path, flags, 0o644)
                head = {"journal": JOURNAL_VERSION, "session": session()}
                os.write(self._fd, (json.dumps(head, allow_nan=False) + "\n").encode())
            os.write(self._fd, (json.dumps(record, allow_nan=False) + "\n").encode())
            os.fsync(self._fd)
        except (OSError, ValueError) as exc:
            self.error = f"pytest-co2: could not append to the journal {self.path}: {exc}"

    def close(self, *, remove: bool) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if remove:
            with contextlib.suppress(OSError):  # never there, or its folder is gone
                os.unlink(self.path)


def read_journal(path: str) -> Report:
    """The report a killed run's journal holds (its complete lines; a torn last line is
    dropped). ValueError (one line) naming the file when it is not a journal."""
    import json

    from ..reporting.model import ReportError, tests_from_dicts

    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read journal {path!r}: {exc}") from None
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # the line being written when the run was killed
                break
            raise ReportError(f"journal {path!r}: line {i + 1} is not JSON") from None
    if not rows or not isinstance(rows[0], dict) or rows[0].get("journal") != JOURNAL_VERSION:
        raise ReportError(f"{path!r} is not a pytest-co2 journal (version {JOURNAL_VERSION})")
    session = dict(rows[0].get("session") or {})
    session["recovered_from"] = path
    session.setdefault("exit_status", None)
    session.setdefault("interrupted", True)
    try:
        tests = tests_from_dicts(rows[1:], where="journal records")
    except ReportError as exc:
        raise ReportError(f"journal {path!r}: {exc}") from None
    return Report(session=session, tests=tests)
