"""Write the run's outputs: the JSON report, the saved baseline, the markdown table, and the
journal that keeps finished tests while the run goes on.

A failure to write (disk full, folder removed) is one line in the terminal summary, never
a traceback; every file is replaced atomically (see ``files``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a report is written: a run without one skips them
    from ..reporting.json_report import Report
    from ..reporting.storage import Journal


class ReportWriter:
    """Writes reports and remembers what could not be written."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.notes: list[str] = []  # reports written beside their path (see ``claim``)
        self._seen: dict[str, tuple[int, int, int, int] | None] = {}

    def _write(self, writer: Callable[[str, Any], None], path: str, data: Any) -> bool:
        path = self.claim(path)
        try:
            writer(path, data)
        except OSError as exc:
            message = f"pytest-co2: could not write {path}: {exc}"
            if message not in self.errors:
                self.errors.append(message)
            return False
        if path in self._seen:
            self._seen[path] = _identity(path)  # this run's own version
        return True

    def json(self, path: str, data: dict[str, Any]) -> bool:
        """The JSON report (``Report.to_dict()`` after the ``pytest_co2_update_json`` hooks)."""
        from ..reporting import storage

        return self._write(storage.write_atomic, path, data)

    def markdown(self, path: str, report: Report) -> bool:
        from .. import files
        from ..fmt import printable
        from ..reporting.markdown import render_markdown

        text = printable(render_markdown(report), keep="\n")  # names never drive a viewer
        return self._write(files.write_text_atomic, path, text)

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

    def open_journal(self, target: str) -> tuple[Journal | None, str | None]:
        """The journal beside the report ``target``, and a line for the header when a journal
        a killed run left there was recovered first, into ``<report>.recovered.json``.

        The old journal is removed only once its recovery file is written and read back;
        when that fails (or the journal is a link or not a regular file) it is left as it is
        and this run keeps no journal (None), so that nothing it held is overwritten."""
        from ..reporting import storage

        path = storage.journal_path_for(target)
        try:
            st = os.lstat(path)
        except OSError:
            return storage.Journal(path), None
        if not stat.S_ISREG(st.st_mode):
            return None, (
                f"co2: {path} is not a regular file (a link?): left alone, and this run keeps "
                "no journal"
            )
        try:
            old = storage.read_journal(path)
        except ValueError as exc:
            return None, (
                f"co2: a journal of an earlier run could not be read ({exc}); it is left as it "
                "is, and this run keeps no journal"
            )
        recovered = _free_name(target[: -len(".json")] if target.endswith(".json") else target)
        if self.json(recovered, old.to_dict()):
            try:
                if len(storage.load_report(recovered).tests) != len(old.tests):
                    raise ValueError("it holds other tests")
            except ValueError as exc:
                self.errors.append(f"pytest-co2: could not read back {recovered}: {exc}")
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                return storage.Journal(path), (
                    f"co2: an earlier run was killed: its {len(old.tests)} finished tests were "
                    f"recovered from {path} into {recovered}"
                )
        return None, (
            f"co2: an earlier run was killed, and its {len(old.tests)} finished tests could not "
            f"be recovered into {recovered}: {path} is kept (read it with pytest-co2 report "
            f"{path}), and this run keeps no journal"
        )

    # -- one writer per path -----------------------------------------------------------------
    def watch(self, paths: list[str]) -> None:
        """Remember how ``paths`` look now (at start): a report another process writes there
        while this run goes on is not replaced at the end (see :meth:`claim`)."""
        for path in paths:
            self._seen[path] = _identity(path)

    def claim(self, path: str) -> str:
        """Where to write ``path``'s report: ``path`` itself, or, when another process wrote
        it since :meth:`watch` (two sessions with one ``--co2-json``), a free name beside
        it, with a line saying so."""
        if path not in self._seen or _identity(path) == self._seen[path]:
            return path
        stem, ext = os.path.splitext(path)
        beside = _free_name(stem, ext or ".json", first=f"{stem}.{os.getpid()}{ext or '.json'}")
        self.notes.append(
            f"pytest-co2: {path} was written by another run meanwhile: this run's report is "
            f"{beside}"
        )
        self._seen[beside] = _identity(beside)
        return beside


def _identity(path: str) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from another (None: no file there)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _free_name(stem: str, ext: str = ".recovered.json", first: str | None = None) -> str:
    """``first`` (default ``stem + ext``) or ``stem-2`` ... ``ext``: the first name that does not
    exist (an earlier recovery is never overwritten)."""
    candidate = first or stem + ext
    k = 1
    while os.path.lexists(candidate):
        k += 1
        candidate = f"{stem}-{k}{ext}"
    return candidate


def check_paths(outputs: dict[str, str | None], inputs: dict[str, str | None]) -> None:
    """UsageError naming both options when two outputs, or an output and an input, are one
    file (resolved once, links followed): one would destroy the other."""
    seen: dict[str, str] = {}
    for option, path in [*outputs.items(), *inputs.items()]:
        if not path:
            continue
        key = os.path.realpath(path)
        other = seen.get(key)
        if other is not None and (option in outputs or other in outputs):
            raise pytest.UsageError(
                f"{other} and {option} name one file {path!r}: expected a separate file for each"
            )
        seen.setdefault(key, option)
