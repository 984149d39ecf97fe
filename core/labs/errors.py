"""Errors of the lab service. Field problems raise ``plugin_sdk.errors.ValidationFailed`` (422 with fields)."""

from __future__ import annotations

from typing import Any

from plugin_sdk.errors import FieldError, ValidationFailed


class LabError(Exception):
    status = 400
    code = "lab_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class NotFound(LabError):
    status = 404
    code = "not_found"


class Conflict(LabError):
    """The change does not fit the record's state (e.g. cancelling an order that is final)."""

    status = 409
    code = "conflict"


class PrinterUnavailable(LabError):
    """The label printer could not be reached or did not take the label."""

    status = 502
    code = "printer_unavailable"


def invalid(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed([FieldError(field, message, code)])


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
