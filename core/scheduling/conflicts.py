"""Double-booking prevention: serialise bookings per doctor and per room, then look for overlaps.

* PostgreSQL: the exclusion constraints on ``core_appointment`` (btree_gist, ``tstzrange``, active and not
  overbooked rows) are the guarantee. The overlap query runs first so users get the list of conflicts;
  a concurrent overlapping insert then waits for the first transaction and fails, which the service
  reports as the same 409 with the winner listed. Only overbooking takes a transaction-scoped advisory
  lock per (clinic, doctor) and (clinic, room), in a fixed order (no deadlocks). Booking behind such a
  lock (for every booking) made bookings of one room queue behind each other's whole transaction.
* SQLite: ``BEGIN IMMEDIATE`` (core.db) already gives the transaction the database's single write lock
  before its first read, so the check and the insert cannot interleave with another writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, or_, select

from core.models.appointment import Appointment


def _lock_key(clinic_id: int, kind: str, ident: int) -> int:
    digest = hashlib.blake2b(f"praxis:appointment:{clinic_id}:{kind}:{ident}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_resources(session: Session, clinic_id: int, doctor_ids: Iterable[int | None],
                   room_ids: Iterable[int | None]) -> None:
    """Hold, until the transaction ends, the booking locks of these doctors and rooms."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(text("SELECT 1"))  # make sure the transaction (and SQLite's write lock) has begun
        return
    keys = {_lock_key(clinic_id, "doctor", d) for d in doctor_ids if d is not None}
    keys |= {_lock_key(clinic_id, "room", r) for r in room_ids if r is not None}
    for key in sorted(keys):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def find_conflicts(session: Session, clinic_id: int, start: datetime, end: datetime, doctor_id: int,
                   room_id: int | None, exclude_ids: Iterable[int] = ()) -> list[Appointment]:
    """Active appointments of the doctor, or in the room, overlapping ``[start, end)``."""
    who = col(Appointment.doctor_id) == doctor_id
    if room_id is not None:
        who = or_(who, col(Appointment.room_id) == room_id)
    statement = select(Appointment).where(
        Appointment.clinic_id == clinic_id,
        Appointment.active == True,  # noqa: E712
        col(Appointment.start_at) < end,
        col(Appointment.end_at) > start,
        who,
    )
    excluded = [i for i in exclude_ids if i is not None]
    if excluded:
        statement = statement.where(col(Appointment.id).not_in(excluded))
    return list(session.exec(statement.order_by(col(Appointment.start_at))).all())


def describe(conflicts: list[Any], doctor_id: int, room_id: int | None) -> list[dict[str, object]]:
    """The conflicts (appointments, or rows with their columns) as the API lists them: which appointment,
    when, and whether doctor or room clash."""
    out = []
    for a in conflicts:
        reasons = []
        if a.doctor_id == doctor_id:
            reasons.append("doctor")
        if room_id is not None and a.room_id == room_id:
            reasons.append("room")
        out.append({"id": a.id, "start": a.start_at.isoformat(), "end": a.end_at.isoformat(),
                    "doctor_id": a.doctor_id, "room_id": a.room_id, "status": a.status, "on": reasons,
                    "patient_id": str(a.patient_id) if a.patient_id else None,
                    "patient_name": a.new_patient_name if a.patient_id is None else None})
    return out
