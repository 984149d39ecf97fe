"""Checks that the people an appointment or schedule names exist in the clinic."""

from __future__ import annotations

import uuid

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
    for field, user_id in people.items():
        if user_id is not None and user_id not in known:
            errors.add(field, f"user {user_id} does not work in this clinic", "unknown_user")


def check_patient(session: Session, clinic_id: int, patient_id: uuid.UUID, errors: FieldErrors,
                  field: str = "patient_id") -> None:
    patient = session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        errors.add(field, f"patient {patient_id} not found in this clinic", "unknown_patient")
    elif patient.deleted_at is not None:
        errors.add(field, "the patient's card is in the trash", "patient_deleted")
    elif patient.merged_into is not None:
        errors.add(field, f"the patient was merged into {patient.merged_into}", "patient_merged")
