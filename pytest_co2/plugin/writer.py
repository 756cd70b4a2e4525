"""Write the run's outputs: the JSON report, the saved baseline, the markdown table, and the
journal that keeps finished tests while the run goes on.

A failure to write (disk full, folder removed) is one line in the terminal summary, never
a traceback; every file is replaced atomically (see ``reporting.storage``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a report is written: a run without one skips them
    from ..reporting.json_report import Report
    from ..reporting.storage import Journal


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
        from ..reporting import storage

        return self._write(storage.write_atomic, path, data)

    def markdown(self, path: str, report: Report) -> bool:
        from ..reporting import storage
        from ..reporting.markdown import render_markdown

        return self._write(storage.write_text_atomic, path, render_markdown(report))

    def failed(self, path: str | os.PathLike[str] | None) -> bool:
        return path is not None and any(os.fspath(path) in m for m in self.errors)

    def outputs(
        self,
        data: dict[str, Any],
        report: Report,
        *,
        json_path: str | None,
        saved: str | None,
        markdown: str | None,
        interrupted: bool,
    ) -> tuple[bool, bool]:
        """Write every output asked for: (the run is kept on disk, the baseline was saved or
        none was asked for). An interrupted run saves no baseline."""
        written = True
        if json_path:
            written = self.json(json_path, data)
        saved_ok = True
        if saved and not interrupted and not self.json(saved, data):
            written = written and not json_path  # the journal still holds the run
            saved_ok = False
        if markdown:
            self.markdown(markdown, report)
        return written, saved_ok

    def open_journal(self, target: str) -> tuple[Journal, str | None]:
        """The journal beside the report ``target``, and a line for the header when a journal
        a killed run left there was recovered first, into ``<report>.recovered.json``."""
        from ..reporting import storage

        path = storage.journal_path_for(target)
        note = None
        if os.path.exists(path):
            try:
                old = storage.read_journal(path)
            except ValueError as exc:
                note = f"co2: a journal of an earlier run could not be read: {exc}"
            else:
                out = target[: -len(".json")] if target.endswith(".json") else target
                recovered = out + ".recovered.json"
                self.json(recovered, old.to_dict())
                note = (
                    f"co2: an earlier run was killed: its {len(old.tests)} finished tests were "
                    f"recovered from {path} into {recovered}"
                )
                with contextlib.suppress(OSError):
                    os.unlink(path)
        return storage.Journal(path), note
