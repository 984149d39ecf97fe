"""Checks that the people an appointment or schedule names exist in the clinic."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from core.models.auth import Membership, User
from core.models.patient import Patient
from core.scheduling.errors import FieldErrors


def staff_names(session: Session, clinic_id: int, user_ids: set[int]) -> dict[int, str]:
    """Active users among ``user_ids`` who work in the clinic, with their names."""
    if not user_ids:
        return {}
    rows = session.exec(
        select(User.id, User.name)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.clinic_id == clinic_id, col(User.id).in_(sorted(user_ids)), User.active == True)  # noqa: E712
    ).all()
    return {int(uid): name for uid, name in rows if uid is not None}


def check_staff(session: Session, clinic_id: int, errors: FieldErrors, **people: int | None) -> None:
    """Add an error for each named user (``doctor_id=5``) who is not an active member of the clinic."""
    wanted = {v for v in people.values() if v is not None}
    known = staff_names(session, clinic_id, wanted)
    staff_errors({field: user_id in known for field, user_id in people.items()}, errors, **people)


def check_patient(session: Session, clinic_id: int, patient_id: uuid.UUID, errors: FieldErrors,
                  field: str = "patient_id") -> None:
    patient = session.get(Patient, patient_id)
    found = None if patient is None else (patient.clinic_id, patient.deleted_at, patient.merged_into)
    patient_errors(clinic_id, patient_id, found, errors, field)


def patient_errors(clinic_id: int, patient_id: uuid.UUID, found: tuple[Any, Any, Any] | None, errors: FieldErrors,
                   field: str = "patient_id") -> None:
    """Add the error, if any, for a patient whose (clinic_id, deleted_at, merged_into) were read (None: no row)."""
    if found is None or found[0] != clinic_id:
        errors.add(field, f"patient {patient_id} not found in this clinic", "unknown_patient")
    elif found[1] is not None:
        errors.add(field, "the patient's card is in the trash", "patient_deleted")
    elif found[2] is not None:
        errors.add(field, f"the patient was merged into {found[2]}", "patient_merged")


def staff_errors(known: dict[str, bool], errors: FieldErrors, **people: int | None) -> None:
    """``check_staff`` over answers already read: ``known[field]`` tells whether that user works here."""
    for field, user_id in people.items():
        if user_id is not None and not known.get(field):
            errors.add(field, f"user {user_id} does not work in this clinic", "unknown_user")
