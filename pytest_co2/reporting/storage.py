"""Where reports live and how they are written and read: saved runs (``.co2/NAME.json``),
atomic file writes, report loading, and the journal that keeps a killed run's results.

A reader (or a crash) never sees a half-written file: every report is written beside its
target and renamed over it. The journal is appended and fsync'd test by test, and read
back into a :class:`~pytest_co2.reporting.json_report.Report` when a run was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import files
from ..constants import LATEST, STORAGE_DIR
from .json_report import Report
from .model import SCHEMA_VERSION, ReportError, tests_from_dicts
from .session import SessionInfo

if TYPE_CHECKING:
    from .baseline import Baseline

__all__ = [
    "JOURNAL_SUFFIX",
    "JOURNAL_VERSION",
    "STORAGE_DIR",
    "Journal",
    "journal_path_for",
    "load_baseline",
    "load_report",
    "parse_json",
    "read_journal",
    "read_text_bounded",
    "resolve_baseline",
    "saved_path",
    "saved_runs",
    "write_atomic",
]

# -- saved runs ----------------------------------------------------------------------------


def saved_path(storage_dir: str | os.PathLike[str], name: str) -> Path:
    return Path(storage_dir) / f"{name}.json"


def saved_runs(storage_dir: str | os.PathLike[str]) -> list[Path]:
    """The saved reports in ``storage_dir``, oldest first (by modification time, then name)."""
    d = Path(storage_dir)
    if not d.is_dir():
        return []
    files = [p for p in d.glob("*.json") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def resolve_baseline(value: str | None, storage_dir: str | os.PathLike[str]) -> Path:
    """The file ``--co2-compare=value`` names: the latest saved (None, '' or 'latest'), a
    saved NAME, or a PATH to a report. ValueError with one line when there is none."""
    runs = saved_runs(storage_dir)
    if value in (None, "", LATEST):
        if not runs:
            raise ValueError(
                f"--co2-compare: no saved run in {os.fspath(storage_dir)}: save one first with "
                "--co2-save=NAME"
            )
        return runs[-1]
    named = saved_path(storage_dir, value[:-5] if value.endswith(".json") else value)
    if named.is_file():
        return named
    if os.path.isfile(value):
        return Path(value)
    have = ", ".join(p.stem for p in runs) or "none"
    raise ValueError(
        f"--co2-compare: no baseline {value!r}: neither {os.fspath(named)} nor a file {value!r} "
        f"exists (saved runs: {have})"
    )


# -- reading -------------------------------------------------------------------------------


#: The largest report or journal file read (bytes): a bigger one is refused, not read.
MAX_READ_BYTES = 256 * 1024 * 1024


def read_text_bounded(path: str | os.PathLike[str], what: str) -> str:
    """The text of a regular file of at most :data:`MAX_READ_BYTES`, opened without blocking
    (a FIFO, ``/dev/zero`` or a folder is refused); ReportError (one line) naming the file."""
    where = os.fspath(path)
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ReportError(f"cannot read {what} {where!r}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ReportError(f"cannot read {what} {where!r}: not a regular file")
        if st.st_size > MAX_READ_BYTES:
            raise ReportError(
                f"cannot read {what} {where!r}: {st.st_size} bytes, expected at most "
                f"{MAX_READ_BYTES}"
            )
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_READ_BYTES:  # grew while read
                raise ReportError(f"cannot read {what} {where!r}: more than {MAX_READ_BYTES} bytes")
    except OSError as exc:
        raise ReportError(f"cannot read {what} {where!r}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(
            f"{what} {where!r} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a report holds (expected finite numbers)")


def parse_json(text: str, what: str) -> Any:
    """JSON as a report reader accepts it: no NaN or Infinity, nesting within Python's
    recursion limit; ReportError (one line, ``what`` names the file) otherwise."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{what} is not JSON: {exc}") from None
    except ValueError as exc:
        raise ReportError(f"{what}: {exc}") from None
    except RecursionError:
        raise ReportError(f"{what}: JSON nested too deeply") from None


_READ_KEYS = ("schema_version", "session", "tests", "totals", "comparison")


def load_report(path: str | os.PathLike[str], *, what: str = "report") -> Report:
    """Read and validate a saved report. ValueError (one line) naming the file and the first
    bad field: unreadable, not a regular file, too large, not UTF-8, not JSON (NaN included),
    nested too deeply, another schema, a missing or bad field."""
    where = os.fspath(path)
    data = parse_json(read_text_bounded(where, what), f"{what} {where!r}")
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReportError(
            f"{what} {where!r} is not a pytest-co2 report of schema version {SCHEMA_VERSION}"
        )
    if not isinstance(data.get("session"), dict):
        raise ReportError(f"{what} {where!r}: missing field 'session'")
    try:
        session = SessionInfo.from_dict(data["session"])
        tests = tests_from_dicts(data.get("tests"))
    except ReportError as exc:
        raise ReportError(f"{what} {where!r}: {exc}") from None
    extra = {k: v for k, v in data.items() if k not in _READ_KEYS}  # other hooks' blocks
    return Report(session=session, tests=tests, extra=extra)


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read and validate a saved report as a baseline; ValueError with one line naming the
    file and the first bad field when it is not one."""
    from .baseline import Baseline

    report = load_report(path, what="baseline")
    return Baseline(session=report.session, tests=report.tests)


# -- atomic writes -------------------------------------------------------------------------


def write_atomic(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON, atomically (see :func:`files.write_text_atomic`)."""
    files.write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


# -- the journal ---------------------------------------------------------------------------

JOURNAL_SUFFIX = ".journal.jsonl"
JOURNAL_VERSION = 1


def journal_path_for(report_path: str) -> str:
    """``co2.json`` -> ``co2.json.journal.jsonl``: the journal lies beside its report."""
    return report_path + JOURNAL_SUFFIX


def open_journal_fd(path: str) -> int:
    """A fresh journal file at ``path``, for writing. Never follows a symbolic link (a link
    planted there, dangling or not, is ELOOP) and never blocks or truncates a non-regular
    file (a FIFO, a device): OSError naming why."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


JOURNAL_PROFILE_KEY = "profile_test"  # a journal line holding one test's profile tree
PROFILE_RECOVERED = (
    "recovered from the journal of a killed run: the trees of the tests that finished "
    "(the profile's own notes were not kept)"
)


class Journal:
    """Durable results: each finished test's record is appended as one JSON line at once, so
    that a killed run (SIGKILL, ``os._exit``) loses at most the test in flight; ``sync``
    records (the caller's choice: tests that measured for long) are fsync'd with every line
    before them, so a power cut loses at most the short tests since the last one. The first
    line holds the session facts. Removed once the report is written; a journal left behind
    is recovered by the next run or by ``pytest-co2 report``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self.error: str | None = None

    def append(
        self, record: dict[str, Any], session: Callable[[], SessionInfo], *, sync: bool = True
    ) -> None:
        """Append one test's record (``session``: the session block, asked for once); with
        ``sync``, fsync the file (a few ms on a disk: not worth it for a trivial test)."""
        try:
            if self._fd is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._fd = open_journal_fd(self.path)
                head = {"journal": JOURNAL_VERSION, "session": session().to_dict()}
                os.write(self._fd, (json.dumps(head, allow_nan=False) + "\n").encode())
            os.write(self._fd, (json.dumps(record, allow_nan=False) + "\n").encode())
            if sync:
                os.fsync(self._fd)
        except (OSError, ValueError) as exc:
            self.error = f"pytest-co2: could not append to the journal {self.path}: {exc}"

    def close(self, *, remove: bool) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if not remove:  # the journal stays: the lines not yet synced too
                    os.fsync(self._fd)
                os.close(self._fd)
            self._fd = None
        if remove:
            with contextlib.suppress(OSError):  # never there, or its folder is gone
                os.unlink(self.path)


def read_journal(path: str) -> Report:
    """The report a killed run's journal holds (its complete lines; a torn last line is
    dropped). ValueError (one line) naming the file when it is not a journal."""
    lines = read_text_bounded(path, "journal").split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(parse_json(line, f"journal {path!r}: line {i + 1}"))
        except ReportError:
            if i >= len(lines) - 2:  # the line being written when the run was killed
                break
            raise
    if not rows or not isinstance(rows[0], dict) or rows[0].get("journal") != JOURNAL_VERSION:
        raise ReportError(f"{path!r} is not a pytest-co2 journal (version {JOURNAL_VERSION})")
    if not isinstance(rows[0].get("session") or {}, dict):
        raise ReportError(f"journal {path!r}: line 1: 'session' is not an object")
    head = dict(rows[0].get("session") or {})
    head["recovered_from"] = path
    head.setdefault("exit_status", None)
    head.setdefault("interrupted", True)
    trees = [
        r[JOURNAL_PROFILE_KEY] for r in rows[1:] if isinstance(r, dict) and JOURNAL_PROFILE_KEY in r
    ]
    records = [r for r in rows[1:] if not (isinstance(r, dict) and JOURNAL_PROFILE_KEY in r)]
    try:
        session = SessionInfo.from_dict(head, where="journal session")
        tests = tests_from_dicts(records, where="journal records")
        extra = {"profile": _recovered_profile(trees)} if trees else {}
    except (ReportError, KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"journal {path!r}: {exc}") from None
    return Report(session=session, tests=tests, extra=extra)


def _recovered_profile(trees: list[Any]) -> dict[str, Any]:
    """The ``profile`` block of the test trees a killed run's journal kept."""
    from .profile import TOP, Node, Profile

    profile = Profile(notes=[PROFILE_RECOVERED])
    for t in trees:
        profile.processes.setdefault(str(t["process"]), []).append(Node.from_dict(t["tree"]))
    return profile.to_dict(TOP)
