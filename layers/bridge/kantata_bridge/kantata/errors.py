"""Typed Kantata OX errors, built in one place from a response (``error_from_response``).

Every error says whether a retry can help (``retryable``). No error message or repr ever contains the
bearer token: messages are built only from the status code, the method, the path and Kantata's ``errors[]``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One entry of Kantata's ``errors`` array: ``type`` (oauth/system/validation), ``message``, ``field``."""

    type: str
    message: str
    field: str | None = None


class KantataError(Exception):
    """Base of every error the Kantata client raises."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        body: str | None = None,
        payload: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.errors = errors
        # The response body, truncated: kept for parked records and debugging. Kantata never echoes the token.
        self.body = body[:2000] if body else body
        # The decoded JSON error body (None when it was not JSON), whole: a bulk update's per-workspace reasons
        # may not fit the ``errors[]`` shape, so nothing of them is lost.
        self.payload = payload
        # The server's Retry-After hint in seconds (429, 503), if it sent one.
        self.retry_after = retry_after
        # How many times the client sent the request before giving up (set by the client's retry loop).
        self.attempts = 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"

    def __str__(self) -> str:
        return self.message


class KantataValueError(KantataError, ValueError):
    """The request was refused before sending: a value is outside Kantata's enumeration or missing."""


class BadRequestError(KantataError):
    """400: Kantata could not understand the request."""


class AuthenticationError(KantataError):
    """401: the token is missing, wrong or revoked."""


class PermissionDeniedError(KantataError):
    """403: the token's user may not do this."""


class NotFoundError(KantataError):
    """404: the object does not exist or is hidden by a default filter (e.g. an archived project)."""


class ValidationError(KantataError):
    """422: Kantata refused the values. ``field_errors`` maps each field to its messages."""

    @property
    def field_errors(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for err in self.errors:
            out.setdefault(err.field or "", []).append(err.message)
        return out


class RateLimitError(KantataError):
    """429: too many requests. ``retry_after`` is the server's hint in seconds, if it sent one."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


class UnavailableError(KantataError):
    """503 or another 5xx: Kantata is down or overloaded."""

    retryable = True


class MalformedResponseError(KantataError):
    """A 2xx response that is not the JSON envelope Kantata documents (not JSON, or ``results`` pointing nowhere)."""


class KantataConnectionError(KantataError):
    """The connection failed or was dropped before a response arrived."""

    retryable = True


class KantataTimeoutError(KantataConnectionError):
    """The connect or read timeout expired."""


_BY_STATUS: dict[int, type[KantataError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitError,
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    None when absent or unreadable. A date in the past gives 0. ``now`` (epoch seconds) is for tests.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT; a zone-less one is read as such
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    return seconds if seconds >= 0 else None


def _details(payload: Any) -> tuple[ErrorDetail, ...]:
    if not isinstance(payload, Mapping):
        return ()
    raw = payload.get("errors")
    if isinstance(raw, Mapping):
        # Rails-style ``{"errors": {"field": ["message", ...]}}``: not documented by Kantata, read leniently.
        return tuple(
            ErrorDetail(type="validation", message=str(msg), field=str(key))
            for key, msgs in raw.items()
            for msg in (msgs if isinstance(msgs, list) else [msgs])
        )
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if isinstance(item, Mapping):
            field = item.get("field")
            out.append(
                ErrorDetail(
                    type=str(item.get("type", "")),
                    message=str(item.get("message", "")),
                    field=str(field) if field is not None else None,
                )
            )
        elif isinstance(item, str):
            out.append(ErrorDetail(type="", message=item))
    return tuple(out)


def error_from_response(
    status: int,
    payload: Any,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
) -> KantataError:
    """Map an HTTP error response to its error class. ``payload`` is the decoded JSON body (or None)."""
    details = _details(payload)
    summary = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in details if d.message)
    message = f"Kantata {method} {path} returned {status}" + (f": {summary}" if summary else "")
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = UnavailableError if status >= 500 else BadRequestError
    kwargs: dict[str, Any] = {
        "status": status,
        "method": method,
        "path": path,
        "errors": details,
        "body": body,
        "payload": payload,
    }
    if cls is RateLimitError or cls is UnavailableError:
        kwargs["retry_after"] = parse_retry_after(_header(headers, "Retry-After"))
    return cls(message, **kwargs)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by name, case-insensitively (a plain dict is accepted as well as requests' CaseInsensitiveDict)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
