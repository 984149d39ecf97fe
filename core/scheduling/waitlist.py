"""The waitlist: patients waiting for a time, with or without a doctor, a date and a time window. An entry
is booked into the grid (becoming an appointment) or removed; an appointment can be moved onto it."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, or_, select

from core import audit
from core.clock import now
from core.db import transaction
from core.models.appointment import Appointment, WaitlistEntry
from core.scheduling import appointments as appts
from core.scheduling.appointments import Book, Caller, normalise_phone
from core.scheduling.errors import FieldErrors, NotFound, invalid
from core.scheduling.options import Options
from core.scheduling.people import check_patient, check_staff
from core.scheduling.schedules import get_clinic
from plugin_sdk.events import EventName

if TYPE_CHECKING:
    from core.app_context import Praxis

FIELDS = ("patient_id", "new_patient_name", "new_patient_phone", "doctor_id", "desired_date", "window_start",
          "window_end", "duration_minutes", "type_code", "services", "notes")


def entry_out(e: WaitlistEntry) -> dict[str, Any]:
    return {"id": e.id, "clinic_id": e.clinic_id, "patient_id": str(e.patient_id) if e.patient_id else None,
            "new_patient_name": e.new_patient_name, "new_patient_phone": e.new_patient_phone,
            "doctor_id": e.doctor_id, "desired_date": e.desired_date.isoformat() if e.desired_date else None,
            "window_start": e.window_start.strftime("%H:%M") if e.window_start else None,
            "window_end": e.window_end.strftime("%H:%M") if e.window_end else None,
            "duration_minutes": e.duration_minutes, "type_code": e.type_code, "services": e.services,
            "notes": e.notes, "state": e.state, "appointment_id": e.appointment_id,
            "from_appointment_id": e.from_appointment_id, "created_at": e.created_at.isoformat(),
            "created_by": e.created_by}


def _validate(session: Session, clinic_id: int, e: WaitlistEntry, touched: set[str]) -> None:
    errors = FieldErrors()
    clinic = get_clinic(session, clinic_id)
    if e.patient_id is not None:
        if "patient_id" in touched:
            check_patient(session, clinic_id, e.patient_id, errors)
        e.new_patient_name = e.new_patient_phone = None
    else:
        if not (e.new_patient_name or "").strip():
            errors.add("new_patient_name", "give a patient, or the name and phone of a new one", "required")
        if not e.new_patient_phone:
            errors.add("new_patient_phone", "a new patient needs a phone number", "required")
        elif "new_patient_phone" in touched:
            phone = normalise_phone(e.new_patient_phone, clinic.country)
            if phone is None:
                errors.add("new_patient_phone", "not a valid phone number", "invalid_phone")
            e.new_patient_phone = phone
    if e.doctor_id is not None and "doctor_id" in touched:
        check_staff(session, clinic_id, errors, doctor_id=e.doctor_id)
    if (e.window_start is None) != (e.window_end is None):
        errors.add("window_end" if e.window_end is None else "window_start", "give both ends of the window",
                   "required")
    elif e.window_start is not None and e.window_end is not None and e.window_start >= e.window_end:
        errors.add("window_end", "must be after the window start", "end_before_start")
    if not 5 <= e.duration_minutes <= 24 * 60:
        errors.add("duration_minutes", "between 5 and 1440 minutes", "out_of_range")
    if e.type_code is not None and "type_code" in touched:
        option = Options(session, clinic_id).get("type", e.type_code)
        if option is None or not option.active:
            errors.add("type_code", f"unknown type {e.type_code!r}", "unknown_code")
    errors.raise_if_any()


def _load(session: Session, clinic_id: int, entry_id: int) -> WaitlistEntry:
    entry = session.exec(select(WaitlistEntry).where(WaitlistEntry.id == entry_id,
                                                     WaitlistEntry.clinic_id == clinic_id).with_for_update()).first()
    if entry is None:
        raise NotFound(f"waitlist entry {entry_id} not found")
    return entry


def create(praxis: Praxis, clinic_id: int, values: dict[str, Any], actor: audit.Actor) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise invalid(sorted(unknown)[0], "this field cannot be set", "not_allowed")
    with transaction(praxis.engine) as session:
        entry = WaitlistEntry(clinic_id=clinic_id, created_by=actor.id, **values)
        if entry.services is None:
            entry.services = []
        _validate(session, clinic_id, entry, set(FIELDS))
        session.add(entry)
        session.flush()
        out = entry_out(entry)
        audit.record(session, actor, "waitlist.added", clinic_id=clinic_id, target=f"waitlist:{entry.id}", data=out)
        return out


def update(praxis: Praxis, clinic_id: int, entry_id: int, values: dict[str, Any], actor: audit.Actor) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise invalid(sorted(unknown)[0], "this field cannot be changed", "not_allowed")
    with transaction(praxis.engine) as session:
        entry = _load(session, clinic_id, entry_id)
        if entry.state != "waiting":
            raise invalid("state", f"the entry is {entry.state}", "not_waiting")
        before = entry_out(entry)
        for key, value in values.items():
            setattr(entry, key, value)
        _validate(session, clinic_id, entry, set(values))
        entry.updated_at = now()
        session.add(entry)
        session.flush()
        out = entry_out(entry)
        audit.record(session, actor, "waitlist.changed", clinic_id=clinic_id, target=f"waitlist:{entry_id}",
                     data={"before": before, "after": out})
        return out


def remove(praxis: Praxis, clinic_id: int, entry_id: int, actor: audit.Actor) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        entry = _load(session, clinic_id, entry_id)
        if entry.state != "waiting":
            raise invalid("state", f"the entry is {entry.state}", "not_waiting")
        entry.state, entry.updated_at = "removed", now()
        session.add(entry)
        session.flush()
        out = entry_out(entry)
        audit.record(session, actor, "waitlist.removed", clinic_id=clinic_id, target=f"waitlist:{entry_id}", data=out)
        return out


def listing(praxis: Praxis, clinic_id: int, *, day: date | None = None, doctor_id: int | None = None,
            state: str = "waiting", limit: int = 200, offset: int = 0) -> dict[str, Any]:
    """Entries in ``state``, undated first. With ``day``: those wanting that day plus those without a date."""
    with transaction(praxis.engine) as session:
        get_clinic(session, clinic_id)
        conditions: list[Any] = [WaitlistEntry.clinic_id == clinic_id, WaitlistEntry.state == state]
        if day is not None:
            conditions.append(or_(col(WaitlistEntry.desired_date).is_(None), WaitlistEntry.desired_date == day))
        if doctor_id is not None:
            conditions.append(or_(col(WaitlistEntry.doctor_id).is_(None), WaitlistEntry.doctor_id == doctor_id))
        rows = session.exec(select(WaitlistEntry).where(*conditions)
                            .order_by(col(WaitlistEntry.desired_date).is_not(None), col(WaitlistEntry.desired_date),
                                      col(WaitlistEntry.id))
                            .offset(offset).limit(limit)).all()
        return {"items": [entry_out(e) for e in rows], "limit": limit, "offset": offset}


def book(praxis: Praxis, clinic_id: int, entry_id: int, caller: Caller, *, start_at: datetime,
         doctor_id: int | None = None, room_id: int | None = None, overbook: bool = False) -> dict[str, Any]:
    """Turn the entry into an appointment at ``start_at`` (same checks as any booking)."""
    appts._may_overbook(caller, overbook)
    with appts.write(praxis) as session:
        entry = _load(session, clinic_id, entry_id)
        if entry.state != "waiting":
            raise invalid("state", f"the entry is {entry.state}", "not_waiting")
        doctor = doctor_id if doctor_id is not None else entry.doctor_id
        if doctor is None:
            raise invalid("doctor_id", "the entry names no doctor: choose one", "required")
        values: dict[str, Any] = {"doctor_id": doctor, "room_id": room_id, "start_at": start_at,
                                  "end_at": start_at + timedelta(minutes=entry.duration_minutes),
                                  "type_code": entry.type_code, "services": list(entry.services or []),
                                  "notes": entry.notes}
        if entry.patient_id is not None:
            values["patient_id"] = entry.patient_id
        else:
            values["new_patient_name"], values["new_patient_phone"] = entry.new_patient_name, entry.new_patient_phone
        if room_id is None:
            values.pop("room_id")
        bk = Book(praxis, session, clinic_id, caller)
        appt, placement = bk.create(values, overbook=overbook)
        out = bk.record(appt, "created", EventName.appointment_created, {}, placement, {"waitlist_entry": entry_id})
        entry.state, entry.appointment_id, entry.updated_at = "booked", appt.id, now()
        session.add(entry)
        audit.record(session, caller.actor, "waitlist.booked", clinic_id=clinic_id, target=f"waitlist:{entry_id}",
                     data={"appointment_id": appt.id})
        return {"entry": entry_out(entry), "appointment": out}


def from_appointment(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *,
                     desired_date: date | None = None, notes: str | None = None) -> dict[str, Any]:
    """Take an appointment out of the grid onto the waitlist: the appointment goes to the trash (reason:
    moved to the waitlist) and a waiting entry with its patient, doctor, duration and services is added."""
    made: dict[str, Any] = {}

    def add_entry(bk: Book, appt: Appointment) -> None:
        entry = WaitlistEntry(
            clinic_id=clinic_id, patient_id=appt.patient_id, new_patient_name=appt.new_patient_name,
            new_patient_phone=appt.new_patient_phone, doctor_id=appt.doctor_id, desired_date=desired_date,
            duration_minutes=max(5, int((appt.end_at - appt.start_at).total_seconds() // 60)),
            type_code=appt.type_code, services=list(appt.services or []),
            notes=appt.notes if notes is None else notes, from_appointment_id=appt.id, created_by=caller.actor.id)
        bk.session.add(entry)
        bk.session.flush()
        made.update(entry_out(entry))
        audit.record(bk.session, caller.actor, "waitlist.added", clinic_id=clinic_id, target=f"waitlist:{entry.id}",
                     data=made)

    appointment = appts.delete(praxis, clinic_id, appointment_id, caller, reason="moved to the waitlist",
                               also=add_entry)
    return {"entry": made, "appointment": appointment}


__all__ = ["book", "create", "from_appointment", "listing", "remove", "update", "uuid"]
