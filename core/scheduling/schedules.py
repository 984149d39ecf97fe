"""Clinic set-up writes: working hours, days off, doctors' templates, exceptions and breaks.

Every write is one transaction with its audit entry. Reads return plain dicts for the API.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from core import audit
from core.db import transaction
from core.models.clinic import Clinic
from core.models.schedule import ClinicDay, ClinicHours, DoctorSchedule, Room, ScheduleBreak, ScheduleException
from core.scheduling.errors import FieldErrors, NotFound
from core.scheduling.holidays import public_calendar
from core.scheduling.people import check_staff
from core.scheduling.setup import bump as bump_setup


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"clinic {clinic_id} not found")
    return clinic


def _t(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def _check_span(errors: FieldErrors, prefix: str, start: time | None, end: time | None) -> None:
    if start is None or end is None:
        errors.add(f"{prefix}start_time" if start is None else f"{prefix}end_time", "a time is required", "required")
    elif start >= end:
        errors.add(f"{prefix}end_time", "must be after the start time", "end_before_start")


def _check_weekday(errors: FieldErrors, field: str, weekday: int | None) -> None:
    if weekday is None or not 0 <= weekday <= 6:
        errors.add(field, "weekday is 0 (Monday) to 6 (Sunday)", "invalid_weekday")


def check_room(session: Session, clinic_id: int, room_id: int | None, errors: FieldErrors, field: str = "room_id",
               *, must_be_active: bool = True) -> Room | None:
    if room_id is None:
        return None
    room = session.get(Room, room_id)
    if room is None or room.clinic_id != clinic_id:
        errors.add(field, f"room {room_id} not found in this clinic", "unknown_room")
        return None
    if must_be_active and not room.active:
        errors.add(field, f"room {room.name!r} is not in use", "room_inactive")
    return room


# --- working hours --------------------------------------------------------------------------------


def hours_out(rows: list[ClinicHours]) -> list[dict[str, Any]]:
    return [{"weekday": r.weekday, "start_time": _t(r.start_time), "end_time": _t(r.end_time)}
            for r in sorted(rows, key=lambda r: (r.weekday, r.start_time))]


def get_hours(session: Session, clinic_id: int) -> list[dict[str, Any]]:
    return hours_out(list(session.exec(select(ClinicHours).where(ClinicHours.clinic_id == clinic_id)).all()))


def set_hours(engine: Engine, clinic_id: int, items: list[dict[str, Any]], actor: audit.Actor) -> list[dict[str, Any]]:
    """Replace the clinic's weekly opening hours. An empty list removes the clinic-wide limit."""
    errors = FieldErrors()
    for i, item in enumerate(items):
        _check_weekday(errors, f"items.{i}.weekday", item.get("weekday"))
        _check_span(errors, f"items.{i}.", item.get("start_time"), item.get("end_time"))
    _check_overlaps(errors, [(item.get("weekday"), item.get("start_time"), item.get("end_time")) for item in items])
    errors.raise_if_any()
    with transaction(engine) as session:
        get_clinic(session, clinic_id)
        before = get_hours(session, clinic_id)
        session.exec(delete(ClinicHours).where(col(ClinicHours.clinic_id) == clinic_id))  # type: ignore[call-overload]
        bump_setup(session, clinic_id)  # a bulk delete: the flush hook does not see it
        rows = [ClinicHours(clinic_id=clinic_id, weekday=i["weekday"], start_time=i["start_time"],
                            end_time=i["end_time"]) for i in items]
        session.add_all(rows)
        session.flush()
        after = hours_out(rows)
        audit.record(session, actor, "clinic.hours_set", clinic_id=clinic_id, target=f"clinic:{clinic_id}",
                     data={"before": before, "after": after})
    return after


def _check_overlaps(errors: FieldErrors, spans: list[tuple[Any, Any, Any]], field: str = "items") -> None:
    by_day: dict[Any, list[tuple[time, time]]] = {}
    for weekday, start, end in spans:
        if start is not None and end is not None and start < end:
            by_day.setdefault(weekday, []).append((start, end))
    for weekday, day_spans in by_day.items():
        day_spans.sort()
        for (_, prev_end), (next_start, _) in zip(day_spans, day_spans[1:], strict=False):
            if next_start < prev_end:
                errors.add(field, f"intervals overlap on weekday {weekday}", "overlap")


# --- days off and holidays ------------------------------------------------------------------------


def day_out(row: ClinicDay) -> dict[str, Any]:
    return {"id": row.id, "date": row.day.isoformat(), "closed": row.closed, "reason": row.reason}


def list_days(session: Session, clinic_id: int, year: int | None = None) -> list[dict[str, Any]]:
    statement = select(ClinicDay).where(ClinicDay.clinic_id == clinic_id)
    if year is not None:
        statement = statement.where(col(ClinicDay.day) >= date(year, 1, 1), col(ClinicDay.day) <= date(year, 12, 31))
    return [day_out(r) for r in session.exec(statement.order_by(col(ClinicDay.day))).all()]


def add_day(engine: Engine, clinic_id: int, day: date, closed: bool, reason: str, actor: audit.Actor) -> dict[str, Any]:
    """Mark a day closed (a day off) or open (working on a public holiday). One entry per date."""
    with transaction(engine) as session:
        get_clinic(session, clinic_id)
        existing = session.exec(select(ClinicDay).where(ClinicDay.clinic_id == clinic_id, ClinicDay.day == day)).first()
        if existing is not None:
            errors = FieldErrors()
            errors.add("date", f"{day.isoformat()} already has an entry; delete it first", "duplicate")
            errors.raise_if_any()
        row = ClinicDay(clinic_id=clinic_id, day=day, closed=closed, reason=reason, created_by=actor.id)
        session.add(row)
        session.flush()
        out = day_out(row)
        audit.record(session, actor, "clinic.day_added", clinic_id=clinic_id, target=f"clinic_day:{row.id}", data=out)
    return out


def delete_day(engine: Engine, clinic_id: int, day_id: int, actor: audit.Actor) -> None:
    with transaction(engine) as session:
        row = session.get(ClinicDay, day_id)
        if row is None or row.clinic_id != clinic_id:
            raise NotFound(f"day entry {day_id} not found")
        out = day_out(row)
        session.delete(row)
        audit.record(session, actor, "clinic.day_deleted", clinic_id=clinic_id, target=f"clinic_day:{day_id}",
                     data=out)


def holidays_for(session: Session, clinic_id: int, year: int) -> dict[str, Any]:
    clinic = get_clinic(session, clinic_id)
    public = public_calendar(clinic.country, year, clinic.locale)
    return {
        "country": clinic.country,
        "year": year,
        "public_holidays": [{"date": d.isoformat(), "name": n} for d, n in sorted(public.holidays.items())],
        "makeup_workdays": [{"date": d.isoformat(), "replaces": r.isoformat() if r else None}
                            for d, r in sorted(public.makeup_workdays.items())],
        "clinic_days": list_days(session, clinic_id, year),
    }


# --- rooms ----------------------------------------------------------------------------------------


def room_out(room: Room) -> dict[str, Any]:
    return {"id": room.id, "name": room.name, "kind": room.kind, "position": room.position, "active": room.active}


def list_rooms(session: Session, clinic_id: int, include_inactive: bool = True) -> list[dict[str, Any]]:
    statement = select(Room).where(Room.clinic_id == clinic_id)
    if not include_inactive:
        statement = statement.where(Room.active == True)  # noqa: E712
    return [room_out(r) for r in session.exec(statement.order_by(col(Room.position), col(Room.id))).all()]


def _check_room_fields(session: Session, clinic_id: int, values: dict[str, Any], room_id: int | None) -> None:
    errors = FieldErrors()
    if "name" in values:
        name = (values["name"] or "").strip()
        if not name:
            errors.add("name", "a name is required", "required")
        else:
            other = session.exec(select(Room).where(Room.clinic_id == clinic_id, Room.name == name)).first()
            if other is not None and other.id != room_id:
                errors.add("name", f"a room named {name!r} exists", "duplicate")
            values["name"] = name
    if "kind" in values and values["kind"] not in ("room", "chair"):
        errors.add("kind", "use room or chair", "invalid_choice")
    errors.raise_if_any()


def create_room(engine: Engine, clinic_id: int, values: dict[str, Any], actor: audit.Actor) -> dict[str, Any]:
    with transaction(engine) as session:
        get_clinic(session, clinic_id)
        _check_room_fields(session, clinic_id, values, None)
        room = Room(clinic_id=clinic_id, **values)
        session.add(room)
        session.flush()
        out = room_out(room)
        audit.record(session, actor, "room.created", clinic_id=clinic_id, target=f"room:{room.id}", data=out)
    return out


def update_room(engine: Engine, clinic_id: int, room_id: int, values: dict[str, Any],
                actor: audit.Actor) -> dict[str, Any]:
    with transaction(engine) as session:
        room = session.get(Room, room_id)
        if room is None or room.clinic_id != clinic_id:
            raise NotFound(f"room {room_id} not found")
        _check_room_fields(session, clinic_id, values, room_id)
        before = room_out(room)
        for key, value in values.items():
            setattr(room, key, value)
        session.add(room)
        session.flush()
        out = room_out(room)
        audit.record(session, actor, "room.changed", clinic_id=clinic_id, target=f"room:{room_id}",
                     data={"before": before, "after": out})
    return out


# --- doctors' schedules ---------------------------------------------------------------------------


def template_out(r: DoctorSchedule) -> dict[str, Any]:
    return {"id": r.id, "weekday": r.weekday, "start_time": _t(r.start_time), "end_time": _t(r.end_time),
            "room_id": r.room_id, "valid_from": r.valid_from.isoformat() if r.valid_from else None,
            "valid_to": r.valid_to.isoformat() if r.valid_to else None}


def exception_out(r: ScheduleException) -> dict[str, Any]:
    return {"id": r.id, "date": r.day.isoformat(), "kind": r.kind, "start_time": _t(r.start_time),
            "end_time": _t(r.end_time), "room_id": r.room_id, "reason": r.reason}


def break_out(r: ScheduleBreak) -> dict[str, Any]:
    return {"id": r.id, "weekday": r.weekday, "date": r.day.isoformat() if r.day else None,
            "start_time": _t(r.start_time), "end_time": _t(r.end_time), "label": r.label}


def get_schedule(session: Session, clinic_id: int, doctor_id: int, first: date | None = None,
                 last: date | None = None) -> dict[str, Any]:
    templates = session.exec(select(DoctorSchedule).where(
        DoctorSchedule.clinic_id == clinic_id, DoctorSchedule.doctor_id == doctor_id)).all()
    exceptions_q = select(ScheduleException).where(ScheduleException.clinic_id == clinic_id,
                                                   ScheduleException.doctor_id == doctor_id)
    breaks_q = select(ScheduleBreak).where(ScheduleBreak.clinic_id == clinic_id, ScheduleBreak.doctor_id == doctor_id)
    if first is not None:
        exceptions_q = exceptions_q.where(col(ScheduleException.day) >= first)
    if last is not None:
        exceptions_q = exceptions_q.where(col(ScheduleException.day) <= last)
    return {
        "doctor_id": doctor_id,
        "templates": [template_out(r) for r in sorted(templates, key=lambda r: (r.weekday, r.start_time))],
        "exceptions": [exception_out(r) for r in session.exec(exceptions_q.order_by(col(ScheduleException.day))).all()],
        "breaks": [break_out(r) for r in session.exec(breaks_q.order_by(col(ScheduleBreak.id))).all()],
    }


def set_templates(engine: Engine, clinic_id: int, doctor_id: int, items: list[dict[str, Any]],
                  actor: audit.Actor) -> dict[str, Any]:
    """Replace the doctor's weekly template in the clinic."""
    errors = FieldErrors()
    for i, item in enumerate(items):
        _check_weekday(errors, f"items.{i}.weekday", item.get("weekday"))
        _check_span(errors, f"items.{i}.", item.get("start_time"), item.get("end_time"))
        if item.get("valid_from") and item.get("valid_to") and item["valid_to"] < item["valid_from"]:
            errors.add(f"items.{i}.valid_to", "must not be before valid_from", "end_before_start")
    with transaction(engine) as session:
        get_clinic(session, clinic_id)
        check_staff(session, clinic_id, errors, doctor_id=doctor_id)
        for i, item in enumerate(items):
            check_room(session, clinic_id, item.get("room_id"), errors, f"items.{i}.room_id")
        errors.raise_if_any()
        before = get_schedule(session, clinic_id, doctor_id)["templates"]
        session.exec(delete(DoctorSchedule).where(  # type: ignore[call-overload]
            col(DoctorSchedule.clinic_id) == clinic_id, col(DoctorSchedule.doctor_id) == doctor_id))
        bump_setup(session, clinic_id)  # a bulk delete: the flush hook does not see it
        rows = [DoctorSchedule(clinic_id=clinic_id, doctor_id=doctor_id, weekday=i["weekday"],
                               start_time=i["start_time"], end_time=i["end_time"], room_id=i.get("room_id"),
                               valid_from=i.get("valid_from"), valid_to=i.get("valid_to")) for i in items]
        session.add_all(rows)
        session.flush()
        after = [template_out(r) for r in rows]
        audit.record(session, actor, "schedule.templates_set", clinic_id=clinic_id, target=f"doctor:{doctor_id}",
                     data={"before": before, "after": after})
        return get_schedule(session, clinic_id, doctor_id)


def add_exception(engine: Engine, clinic_id: int, doctor_id: int, values: dict[str, Any],
                  actor: audit.Actor) -> dict[str, Any]:
    """A day off (``kind="off"``) or other hours (``kind="hours"``, several rows per date allowed)."""
    errors = FieldErrors()
    kind = values.get("kind", "off")
    if kind not in ("off", "hours"):
        errors.add("kind", "use off or hours", "invalid_choice")
    if kind == "hours":
        _check_span(errors, "", values.get("start_time"), values.get("end_time"))
    elif values.get("start_time") or values.get("end_time"):
        errors.add("start_time", "a day off has no hours", "not_allowed")
    with transaction(engine) as session:
        get_clinic(session, clinic_id)
        check_staff(session, clinic_id, errors, doctor_id=doctor_id)
        check_room(session, clinic_id, values.get("room_id"), errors)
        existing = session.exec(select(ScheduleException).where(
            ScheduleException.clinic_id == clinic_id, ScheduleException.doctor_id == doctor_id,
            ScheduleException.day == values["day"])).all()
        if existing and (kind == "off" or any(e.kind == "off" for e in existing)):
            errors.add("date", "this date already has an exception that a day off cannot combine with", "duplicate")
        errors.raise_if_any()
        row = ScheduleException(clinic_id=clinic_id, doctor_id=doctor_id, day=values["day"], kind=kind,
                                start_time=values.get("start_time"), end_time=values.get("end_time"),
                                room_id=values.get("room_id"), reason=values.get("reason") or "")
        session.add(row)
        session.flush()
        out = exception_out(row)
        audit.record(session, actor, "schedule.exception_added", clinic_id=clinic_id,
                     target=f"doctor:{doctor_id}", data=out)
    return out


def add_break(engine: Engine, clinic_id: int, doctor_id: int, values: dict[str, Any],
              actor: audit.Actor) -> dict[str, Any]:
    """A weekly break (``weekday``) or a one-off break (``day``)."""
    errors = FieldErrors()
    if (values.get("weekday") is None) == (values.get("day") is None):
        errors.add("weekday", "give either a weekday (every week) or a date (once)", "required")
    elif values.get("weekday") is not None:
        _check_weekday(errors, "weekday", values["weekday"])
    _check_span(errors, "", values.get("start_time"), values.get("end_time"))
    with transaction(engine) as session:
        get_clinic(session, clinic_id)
        check_staff(session, clinic_id, errors, doctor_id=doctor_id)
        errors.raise_if_any()
        row = ScheduleBreak(clinic_id=clinic_id, doctor_id=doctor_id, weekday=values.get("weekday"),
                            day=values.get("day"), start_time=values["start_time"], end_time=values["end_time"],
                            label=values.get("label") or "")
        session.add(row)
        session.flush()
        out = break_out(row)
        audit.record(session, actor, "schedule.break_added", clinic_id=clinic_id, target=f"doctor:{doctor_id}",
                     data=out)
    return out


def delete_entry(engine: Engine, clinic_id: int, doctor_id: int, kind: str, entry_id: int,
                 actor: audit.Actor) -> None:
    """Delete one exception (``kind="exception"``) or break (``kind="break"``) of the doctor."""
    model: type[ScheduleException] | type[ScheduleBreak] = ScheduleException if kind == "exception" else ScheduleBreak
    with transaction(engine) as session:
        row = session.get(model, entry_id)
        if row is None or row.clinic_id != clinic_id or row.doctor_id != doctor_id:
            raise NotFound(f"{kind} {entry_id} not found")
        out = exception_out(row) if isinstance(row, ScheduleException) else break_out(row)
        session.delete(row)
        audit.record(session, actor, f"schedule.{kind}_deleted", clinic_id=clinic_id, target=f"doctor:{doctor_id}",
                     data=out)
