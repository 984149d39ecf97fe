"""Plan appointment messages in the same transaction as the appointment change, without touching the
appointment book's code.

Every write of the appointment book (book, change, move, resize, status, cancel, no-show, delete, restore,
pin, copy, series) adds one ``AppointmentChange`` history row in its transaction. Two SQLAlchemy session
hooks watch for those rows: ``after_flush`` notes the appointments they name, and ``before_commit`` plans
their messages (``core.messaging.planner.plan_appointments``) before the transaction commits. Messages are
therefore created, re-timed or cancelled atomically with the booking: a rolled-back booking leaves no
message, and a committed one always has its reminders. This is the least invasive hook: the scheduling
module stays unaware of messaging, and nothing runs for sessions that changed no appointment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.models.appointment import AppointmentChange

KEY = "praxis.messaging.changed_appointments"


def _note(session: Session, change: AppointmentChange) -> None:
    from core.messaging.planner import AppointmentChange as Change

    noted: dict[int, dict[int, Change]] = session.info.setdefault(KEY, {})
    entry = noted.setdefault(change.clinic_id, {}).setdefault(change.appointment_id, Change())
    if change.action == "created":
        entry.created = True
        entry.status_changed = True
    elif "status" in (change.after or {}):
        entry.status_changed = True


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    for obj in session.new:
        if isinstance(obj, AppointmentChange):
            _note(session, obj)


@event.listens_for(Session, "before_commit")
def _plan(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint: the outer commit plans
    if KEY not in session.info and not any(isinstance(o, AppointmentChange) for o in session.new):
        return
    session.flush()
    noted = session.info.pop(KEY, None)
    if not noted:
        return
    from core.messaging.planner import plan_appointments

    for clinic_id, changes in noted.items():
        plan_appointments(session, clinic_id, changes)  # type: ignore[arg-type]
    session.info.pop(KEY, None)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(KEY, None)
