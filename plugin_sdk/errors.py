"""Errors a plugin raises to tell the core what happened.

Outbox handlers and connectors raise ``RetryableError`` for failures worth trying again (timeouts,
5xx, rate limits) and ``PermanentError`` for failures that will never succeed (an invalid phone
number, a rejected certificate). Any other exception counts as retryable and as a plugin failure.
"""

from __future__ import annotations

from dataclasses import dataclass


class PluginError(Exception):
    """Base of every error the SDK defines."""


class RetryableError(PluginError):
    """Try again later. ``retry_after`` (seconds) overrides the backoff, e.g. from a 429 Retry-After."""

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


class PermanentError(PluginError):
    """Never retry. ``code`` is the vendor's own error code, kept for the admin."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class UnknownOutcomeError(PluginError):
    """The vendor may or may not have acted (e.g. a timeout after sending) and cannot be asked.

    The outbox parks the item for a person to decide instead of sending it again.
    """


@dataclass(frozen=True)
class FieldError:
    """One field-level problem, as returned by validation hooks and shown next to the field."""

    field: str
    message: str
    code: str = "invalid"


class ValidationFailed(PluginError):
    """Raised by the core when a write is vetoed; carries every field error and who raised it."""

    def __init__(self, errors: list[FieldError], plugin: str | None = None) -> None:
        self.errors = errors
        self.plugin = plugin
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
