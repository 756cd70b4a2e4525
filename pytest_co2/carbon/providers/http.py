"""A tiny HTTP GET for the providers (standard library only, short timeout, one-line errors)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from .base import ProviderError

MAX_BYTES = 2_000_000  # an intensity answer is a few kB; a forecast some tens
USER_AGENT = "pytest-co2 (https://pypi.org/project/pytest-co2/)"


def build_url(base: str, path: str, query: Mapping[str, str] | None = None) -> str:
    """``base`` (no trailing slash needed) + ``path`` + an encoded query."""
    url = base.rstrip("/") + "/" + path.lstrip("/")
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


def _error_detail(body: bytes) -> str:
    """The message of an error answer: ``{"error": "..."}`` (Electricity Maps),
    ``{"error": {"code", "message"}}`` (UK grid), ``{"message": "..."}``, else its text."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):
            err = err.get("message") or err.get("code")
        message = err or data.get("message") or data.get("detail")
        if message:
            return " ".join(str(message).split())[:200]
    return " ".join(text.split())[:200]


_PUBLIC_HEADERS = frozenset({"accept", "user-agent"})
REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (a token, a key) replaced: an error answer that echoes
    the token must not put it into a CI log."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def get_json(url: str, *, timeout_s: float, headers: Mapping[str, str] | None = None) -> Any:
    """GET ``url`` and decode its JSON. ProviderError (one line) on a timeout, a connection
    failure, an HTTP error status (with the answer's message) or a body that is not JSON,
    too large or nested too deeply; the values of the caller's headers (tokens) never
    appear in a message."""
    secrets = [v for k, v in (headers or {}).items() if k.lower() not in _PUBLIC_HEADERS]
    try:
        return _get_json(url, timeout_s=timeout_s, headers=headers)
    except ProviderError as exc:
        raise ProviderError(redact(str(exc), secrets)) from None


def _get_json(url: str, *, timeout_s: float, headers: Mapping[str, str] | None) -> Any:
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    )
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc.read(4000) if exc.fp is not None else b"")
        hint = {401: " (check the token)", 403: " (the token lacks this zone or endpoint)"}
        limited = " (rate limited: try again later)" if exc.code == 429 else ""
        raise ProviderError(
            f"HTTP {exc.code} from {host}: {detail or exc.reason}{hint.get(exc.code, '')}{limited}"
        ) from None
    except TimeoutError:
        raise ProviderError(f"no answer from {host} within {timeout_s:g} s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise ProviderError(f"no answer from {host} within {timeout_s:g} s") from None
        raise ProviderError(f"cannot reach {host}: {reason}") from None
    except (OSError, ValueError) as exc:  # a reset connection, a bad URL
        raise ProviderError(f"cannot read from {host}: {exc}") from None
    if len(body) > MAX_BYTES:
        raise ProviderError(f"the answer from {host} is larger than {MAX_BYTES:,} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except RecursionError:
        raise ProviderError(
            f"the answer from {host} is nested too deeply to be an intensity answer"
        ) from None
    except (UnicodeDecodeError, ValueError):
        start = " ".join(body[:60].decode("utf-8", "replace").split())
        raise ProviderError(f"the answer from {host} is not JSON: {start!r}") from None
