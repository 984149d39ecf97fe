"""Refusals the patient service raises; the API maps each to a status code and a JSON body."""

from __future__ import annotations

from typing import Any

from plugin_sdk.errors import FieldError, ValidationFailed


class PatientError(Exception):
    status = 400
    code = "patient_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class PatientNotFound(PatientError):
    """No such patient in this clinic (a patient of another clinic is not found either)."""

    status = 404
    code = "not_found"


class PatientConflict(PatientError):
    """The change cannot be applied in the record's current state (stale version, wrong status...)."""

    status = 409

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class DuplicateWarning(PatientError):
    """Registration looks like an existing patient; repeat with ``confirm_duplicate`` to proceed."""

    status = 409
    code = "duplicate_warning"

    def __init__(self, candidates: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(candidates)} existing patient(s) look like this one; "
                         "send confirm_duplicate=true to register anyway", candidates=candidates)


def invalid(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed([FieldError(field, message, code)])


class FieldErrors:
    """Collects field errors while a payload is checked, then raises them all at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str, code: str = "invalid") -> None:
        self.errors.append(FieldError(field, message, code))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(list(self.errors))
