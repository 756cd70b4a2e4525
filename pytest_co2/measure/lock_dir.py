"""The lock folder and its files: where device locks live, and which folders are refused.

The default lock folder is per user (``<tempdir>/pytest-co2-locks-<uid>``, created 0700); a
lock folder that is a symbolic link or not owned by the user is refused, and lock files are
opened with ``O_NOFOLLOW`` and ``O_CLOEXEC`` (a planted link is never followed, a child
process never inherits a lock).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile

LOCK_DIR_NAME = "pytest-co2-locks"


def _uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def default_lock_dir() -> str:
    """``<tempdir>/pytest-co2-locks-<uid>``: one folder per user of this machine."""
    uid = _uid()
    name = LOCK_DIR_NAME if uid is None else f"{LOCK_DIR_NAME}-{uid}"
    return os.path.join(tempfile.gettempdir(), name)


def lock_file_name(device_id: str) -> str:
    """``gpu:0`` -> ``gpu_0.lock``: a device id made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", device_id).strip(".") + ".lock"


class LockDirError(OSError):
    """A lock folder that must not be used (a symbolic link, someone else's); one line."""


def open_to_others(path: str) -> str | None:
    """A warning when the lock folder ``path`` (of this user) is writable by other users:
    they could remove or pre-create its lock files. None when private or absent, and for
    the default folder, which is made 0700 when it is opened."""
    if os.path.abspath(path) == os.path.abspath(default_lock_dir()):
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o022:
        return None
    return (
        f"lock folder {path!r} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
        "they can remove or pre-create its locks, so windows of two runs may overlap; run "
        f"`chmod go-w {path}` or give --co2-lock-dir a private folder"
    )


def check_lock_dir(path: str) -> str | None:
    """Why ``path`` cannot be a lock folder (one line), or None (also when it is absent)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"lock folder {path!r} cannot be inspected: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return (
            f"lock folder {path!r} is a symbolic link: refused (give --co2-lock-dir a real "
            "folder of yours)"
        )
    if not stat.S_ISDIR(st.st_mode):
        return f"lock folder {path!r} is not a folder"
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return (
            f"lock folder {path!r} belongs to uid {st.st_uid}, not to you (uid {uid}): refused "
            "(another user could hold or replace its locks; give --co2-lock-dir a folder of yours)"
        )
    return None


def open_lock_dir(path: str, *, private: bool = True) -> int:
    """Create ``path`` (mode 0700) if absent, check it and return an fd of it (``O_NOFOLLOW``).

    Raises :class:`LockDirError` for a symbolic link or a folder of another user. A folder of
    the user's that others may write to is made 0700 when ``private`` (the default folder).
    """
    parent = os.path.dirname(os.path.abspath(path))
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    problem = check_lock_dir(path)
    if problem is not None:
        raise LockDirError(problem)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:  # swapped for a link between the check and the open
        raise LockDirError(f"lock folder {path!r} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        uid = _uid()
        if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
            raise LockDirError(f"lock folder {path!r} changed while it was opened: refused")
        if private and st.st_mode & 0o077:
            os.fchmod(fd, 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_lock_file(dir_fd: int, name: str, where: str) -> int:
    """Open (create 0600) one lock file inside the folder; never through a link."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise LockDirError(
            f"lock file {os.path.join(where, name)!r} cannot be opened ({exc.strerror}): refused"
        ) from None
    st = os.fstat(fd)
    uid = _uid()
    problem = (
        "is not a regular file"
        if not stat.S_ISREG(st.st_mode)
        else f"belongs to uid {st.st_uid}, not to you: refused"
        if uid is not None and st.st_uid != uid
        else None
    )
    if problem is not None:
        os.close(fd)
        raise LockDirError(f"lock file {os.path.join(where, name)!r} {problem}")
    return fd
