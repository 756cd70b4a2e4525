"""The on-disk cache of provider readings: one JSON file per provider and zone, with the
time it was fetched, written atomically (a temporary file renamed over the old one)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import tempfile
from collections.abc import Mapping

from .base import ProviderError, Reading, iso, parse_time

FORMAT = "pytest-co2 intensity cache 1"
DEFAULT_TTL_S = 3600.0


class CacheError(ProviderError):
    """A cache file that exists but cannot be used (it is then ignored and rewritten)."""


class Cache:
    """Readings under ``folder`` (None: no cache), fresh for ``ttl_s`` seconds."""

    def __init__(self, folder: str | os.PathLike[str] | None, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.folder = None if folder is None else os.fspath(folder)
        self.ttl_s = ttl_s

    def path(self, provider: str, zone: str) -> str | None:
        if self.folder is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", f"{provider}-{zone}")
        return os.path.join(self.folder, f"intensity-{safe}.json")

    def load(self, provider: str, zone: str) -> tuple[Reading, _dt.datetime] | None:
        """The cached reading and when it was fetched; None when there is none; CacheError
        naming the file when it is unreadable, not JSON or of another provider or zone."""
        path = self.path(provider, zone)
        if path is None or not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CacheError(f"intensity cache {path!r} is unreadable ({exc})") from None
        try:
            if not isinstance(data, Mapping) or data.get("format") != FORMAT:
                raise ProviderError(f"not a {FORMAT!r} file")
            reading = Reading.from_dict(data.get("reading"))  # type: ignore[arg-type]
            fetched = parse_time(data.get("fetched_at"), "'fetched_at'")
        except ProviderError as exc:
            raise CacheError(f"intensity cache {path!r} is unusable: {exc}") from None
        if (reading.provider, reading.zone) != (provider, zone):
            raise CacheError(
                f"intensity cache {path!r} holds {reading.provider} zone {reading.zone}, "
                f"not {provider} zone {zone}"
            )
        return reading, fetched

    def store(self, reading: Reading, fetched: _dt.datetime) -> str | None:
        """Write the reading atomically; the path, or None (no cache folder). OSError passes."""
        path = self.path(reading.provider, reading.zone)
        if path is None:
            return None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        text = json.dumps(
            {"format": FORMAT, "fetched_at": iso(fetched), "reading": reading.to_dict()}, indent=1
        )
        fd, tmp = tempfile.mkstemp(prefix=".intensity-", suffix=".tmp", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path
