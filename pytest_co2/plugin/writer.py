"""Write the run's outputs: the JSON report, the saved baseline, the markdown table.

A failure to write (disk full, folder removed) is one line in the terminal summary, never
a traceback; every file is replaced atomically (see ``reporting.json_report``).
"""

from __future__ import annotations

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
