"""Errors of the scheduling service. The API maps them to 404 / 403 / 409; field problems raise
``plugin_sdk.errors.ValidationFailed`` (422 with field details), the same as plugin vetoes."""

from __future__ import annotations

from typing import Any

from plugin_sdk.errors import FieldError, ValidationFailed


class SchedulingError(Exception):
    status = 400
    code = "scheduling_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class NotFound(SchedulingError):
    status = 404
    code = "not_found"


class Forbidden(SchedulingError):
    """The caller lacks a permission this particular request needs (e.g. overbooking)."""

    status = 403
    code = "forbidden"


class Conflict(SchedulingError):
    """The time is taken. ``details["conflicts"]`` lists the appointments in the way."""

    status = 409
    code = "conflict"


class VersionConflict(SchedulingError):
    """Someone else changed the appointment since the caller read it."""

    status = 409
    code = "version_conflict"


class FieldErrors:
    """Collect field errors, then raise them all at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str, code: str = "invalid") -> None:
        self.errors.append(FieldError(field, message, code))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(list(self.errors))


def invalid(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed([FieldError(field, message, code)])
