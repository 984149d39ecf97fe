"""Refusals of the records service; the API answers each with its status and ``{"error", "message", ...}``."""

from __future__ import annotations

from typing import Any


class RecordError(Exception):
    status = 400
    code = "record_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class RecordNotFound(RecordError):
    """No such record (or signing session) in this clinic; another clinic's looks the same."""

    status = 404
    code = "not_found"


class RecordForbidden(RecordError):
    status = 403
    code = "forbidden"


class RecordConflict(RecordError):
    """The record is not in a state that allows this (e.g. editing a signed record: amend it instead)."""

    status = 409
    code = "conflict"


class SigningUnavailable(RecordError):
    """The provider's vendor or the time-stamp authority cannot be reached now; nothing was stored."""

    status = 503
    code = "signing_unavailable"


class SigningFailed(RecordError):
    """The provider refused, or produced a signature that did not verify; nothing was stored."""

    status = 424
    code = "signing_failed"


class IntentCheckFailed(RecordError):
    """A wrong answer to the intent check (answered 422 naming the ``response`` field)."""

    status = 422
    code = "intent_check_failed"


class SessionLocked(RecordError):
    status = 423
    code = "session_locked"


class SessionExpired(RecordError):
    status = 410
    code = "session_expired"
