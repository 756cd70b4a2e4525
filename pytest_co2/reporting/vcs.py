"""The git commit a saved run measured (``session.vcs``): full and short hash, branch, whether
the work tree had uncommitted changes, and the commit time.

Asked only when a run is saved (``--co2-save``), once, with a timeout per git call. Outside a
repository, without git, or when git hangs or fails, there is no commit (None): never an
error. Untracked files do not make a tree dirty (as ``git describe --dirty``).
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from typing import Any

from ..frozen import Frozen, record

#: The longest one git call may take (seconds) before the commit is left out.
GIT_TIMEOUT_S = 5.0

#: Runs a git command (its arguments after ``git``) and returns its stdout, or None when it
#: failed; replaceable in tests.
GitRunner = Callable[[Sequence[str]], "str | None"]


@record
class CommitInfo(Frozen):
    """A saved run's commit. ``branch`` is None on a detached HEAD; ``dirty`` None when git
    could not say; ``committed`` is the commit time (ISO 8601 with its offset)."""

    commit: str
    short: str
    branch: str | None
    dirty: bool | None
    committed: str
    system: str = "git"
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("system", "commit", "short", "branch", "dirty", "committed")

    @property
    def committed_at(self) -> _dt.datetime | None:
        """The commit time, aware (None when unreadable)."""
        return parse_time(self.committed)

    def label(self) -> str:
        """``abc1234`` or ``abc1234*`` (uncommitted changes)."""
        return self.short + ("*" if self.dirty else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "commit": self.commit,
            "short": self.short,
            "branch": self.branch,
            "dirty": self.dirty,
            "committed": self.committed,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CommitInfo:
        commit = str(d["commit"])
        return cls(
            commit=commit,
            short=str(d.get("short") or commit[:7]),
            branch=None if d.get("branch") is None else str(d["branch"]),
            dirty=None if d.get("dirty") is None else bool(d["dirty"]),
            committed=str(d.get("committed") or ""),
            system=str(d.get("system") or "git"),
            extra={k: v for k, v in d.items() if k not in cls._KEYS},
        )


def parse_time(text: str | None) -> _dt.datetime | None:
    """An ISO 8601 time as an aware datetime (a naive one is taken as local time); None when
    absent or unreadable."""
    if not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.astimezone()


def git_runner(root: str | os.PathLike[str], timeout_s: float = GIT_TIMEOUT_S) -> GitRunner:
    """Runs ``git -C root ...`` with a timeout, no prompt and no optional lock; None on any
    failure (git missing, not a repository, a timeout, a non-zero exit)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}

    def run(args: Sequence[str]) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", os.fspath(root), *args],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
                env=env,
                check=False,
            )
        except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    return run


def detect_commit(
    root: str | os.PathLike[str], *, git: GitRunner | None = None, ignore: Sequence[str] = ()
) -> CommitInfo | None:
    """The commit checked out at ``root`` (None: no git, no repository, no commit yet).
    Changes under ``ignore`` (paths relative to ``root``: the saved runs' folder, which a
    project may keep in git) do not make the tree dirty."""
    run = git or git_runner(root)
    head = run(["log", "-1", "--format=%H%n%h%n%cI"])
    lines = (head or "").split()
    if len(lines) != 3:
        return None
    full, short, committed = lines
    branch = run(["symbolic-ref", "--short", "-q", "HEAD"])  # fails on a detached HEAD
    excluded = [f":(exclude){path}" for path in ignore]
    status = run(["status", "--porcelain", "--untracked-files=no", "--", ":(top)", *excluded])
    return CommitInfo(
        commit=full,
        short=short,
        branch=(branch or "").strip() or None,
        dirty=None if status is None else bool(status.strip()),
        committed=committed,
    )
