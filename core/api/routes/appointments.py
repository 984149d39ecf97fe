"""The appointment book API: list, book, change, move, copy, resize, status, cancel, no-show, trash and
restore, history, pinboard, waitlist and recurring series.

Times: send ISO 8601 instants with an offset (``2026-03-03T09:00:00+09:00``) or clinic-local wall times
without one (``2026-03-03T09:00:00``). Responses carry both: ``start_at`` (UTC) and ``start_local``.
Overbooking (``"overbook": true``) needs ``appointments.overbook``. A taken time answers 409 with the
conflicting appointments; a time outside the doctor's working hours answers 422 with the field ``start_at``
and code ``outside_working_hours`` unless overbooking.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.scheduling import appointments as ap
from core.scheduling import recurrence, waitlist
from core.scheduling.errors import invalid
from core.scheduling.schedules import get_clinic

router = APIRouter(prefix="/api/clinics/{clinic_id}", tags=["appointments"])

VIEW = clinic_permission("appointments.view")
EDIT = clinic_permission("appointments.edit")


def _tz(praxis: Praxis, clinic_id: int) -> ZoneInfo:
    with Session(praxis.engine) as session:
        return ZoneInfo(get_clinic(session, clinic_id).timezone)


def _utc(value: datetime | None, tz: ZoneInfo, field: str) -> datetime | None:
    """An instant from an aware datetime, or from a clinic-local wall time (refused in a DST gap)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    aware = value.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise invalid(field, f"{value.isoformat()} does not exist in {tz.key} (clock change)", "nonexistent_time")
    return aware.astimezone(UTC)


def _caller(who: Principal, clinic_id: int) -> ap.Caller:
    return ap.Caller(who.actor, can_overbook=who.has("appointments.overbook", clinic_id))


class AppointmentFields(BaseModel):
    patient_id: uuid.UUID | None = None
    new_patient_name: str | None = Field(None, max_length=200, description="a person without a card yet")
    new_patient_phone: str | None = Field(None, max_length=32)
    doctor_id: int | None = None
    room_id: int | None = None
    assistant_id: int | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    type_code: str | None = Field(None, max_length=40)
    source_code: str | None = Field(None, max_length=40)
    services: list[str | dict[str, Any]] | None = None
    notes: str | None = Field(None, max_length=4000)
    communication_status: str | None = Field(None, max_length=40)


class AppointmentIn(AppointmentFields):
    doctor_id: int  # type: ignore[assignment]
    start_at: datetime  # type: ignore[assignment]
    end_at: datetime | None = None
    duration_minutes: int | None = Field(None, ge=5, le=1440, description="instead of end_at")
    overbook: bool = False


class AppointmentPatch(AppointmentFields):
    version: int | None = Field(None, description="the version you read; a stale one answers 409")
    overbook: bool = False


def _values(body: AppointmentFields, tz: ZoneInfo, *, exclude_unset: bool) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=exclude_unset, exclude={"version", "overbook", "duration_minutes"})
    for key in ("start_at", "end_at"):
        if key in values:
            values[key] = _utc(values[key], tz, key)
    return values


@router.get("/appointments")
def list_appointments(
    clinic_id: int,
    day: date | None = Query(None, description="one local day"),
    week: date | None = Query(None, description="the Monday-Sunday week holding this date"),
    from_: date | None = Query(None, alias="from"),
    to: date | None = None,
    doctor_id: list[int] = Query(default_factory=list),
    room_id: list[int] = Query(default_factory=list),
    status: list[str] = Query(default_factory=list),
    patient_id: uuid.UUID | None = None,
    include_cancelled: bool = False,
    limit: int = Query(500, ge=1, le=2000),
    offset: int = Query(0, ge=0),
    praxis: Praxis = Depends(get_praxis),
    _: Principal = Depends(VIEW),
) -> dict[str, Any]:
    """Appointments in the grid overlapping a range of local days (not deleted, not on the pinboard;
    cancelled ones only with ``include_cancelled`` or a ``status`` filter)."""
    tz = _tz(praxis, clinic_id)
    first = last = None
    if day is not None:
        first = last = day
    elif week is not None:
        first = week - timedelta(days=week.weekday())
        last = first + timedelta(days=6)
    elif from_ is not None or to is not None:
        first, last = from_ or to, to or from_
    start = end = None
    if first is not None and last is not None:
        if last < first:
            raise invalid("to", "must not be before from", "end_before_start")
        start, end = ap.local_range(tz, first, last)
    query = ap.Query(start, end, doctor_id, room_id, status, patient_id, include_cancelled, limit, offset)
    return ap.list_appointments(praxis, clinic_id, query)


@router.post("/appointments", status_code=201)
def create_appointment(clinic_id: int, body: AppointmentIn, praxis: Praxis = Depends(get_praxis),
                       who: Principal = Depends(EDIT)) -> dict[str, Any]:
    tz = _tz(praxis, clinic_id)
    values = _values(body, tz, exclude_unset=False)
    if values.get("end_at") is None:
        if body.duration_minutes is None:
            raise invalid("end_at", "give end_at or duration_minutes", "required")
        values["end_at"] = values["start_at"] + timedelta(minutes=body.duration_minutes)
    values = {k: v for k, v in values.items() if v is not None or k in ("room_id",)}
    if values.get("room_id") is None:
        values.pop("room_id", None)
    return ap.create(praxis, clinic_id, values, _caller(who, clinic_id), overbook=body.overbook)


@router.get("/appointments/trash")
def trash(clinic_id: int, from_: date | None = Query(None, alias="from"), to: date | None = None,
          limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
          praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """Cancelled and deleted appointments, most recently changed first."""
    start = end = None
    if from_ is not None or to is not None:
        start, end = ap.local_range(_tz(praxis, clinic_id), from_ or to, to or from_)  # type: ignore[arg-type]
    return ap.trash(praxis, clinic_id, start=start, end=end, limit=limit, offset=offset)


@router.get("/appointments/{appointment_id}")
def get_appointment(clinic_id: int, appointment_id: int, praxis: Praxis = Depends(get_praxis),
                    _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return ap.get(praxis, clinic_id, appointment_id)


@router.patch("/appointments/{appointment_id}")
def update_appointment(clinic_id: int, appointment_id: int, body: AppointmentPatch,
                       praxis: Praxis = Depends(get_praxis), who: Principal = Depends(EDIT)) -> dict[str, Any]:
    values = _values(body, _tz(praxis, clinic_id), exclude_unset=True)
    for key in ("doctor_id", "start_at", "end_at", "services"):
        if key in values and values[key] is None:
            raise invalid(key, "may not be empty", "required")
    return ap.update(praxis, clinic_id, appointment_id, values, _caller(who, clinic_id), version=body.version,
                     overbook=body.overbook)


class MoveIn(BaseModel):
    start_at: datetime
    end_at: datetime | None = Field(None, description="default: keep the duration")
    doctor_id: int | None = None
    room_id: int | None = Field(None, description="omit to keep the room; null to clear it")
    version: int | None = None
    overbook: bool = False


@router.post("/appointments/{appointment_id}/move")
def move(clinic_id: int, appointment_id: int, body: MoveIn, praxis: Praxis = Depends(get_praxis),
         who: Principal = Depends(EDIT)) -> dict[str, Any]:
    """Move (drag) to another time, doctor or room; also places an appointment from the pinboard."""
    tz = _tz(praxis, clinic_id)
    room = body.room_id if "room_id" in body.model_fields_set else False
    return ap.move(praxis, clinic_id, appointment_id, _caller(who, clinic_id),
                   start_at=_utc(body.start_at, tz, "start_at"), end_at=_utc(body.end_at, tz, "end_at"),  # type: ignore[arg-type]
                   doctor_id=body.doctor_id, room_id=room, version=body.version, overbook=body.overbook)


class CopyIn(BaseModel):
    start_at: datetime
    doctor_id: int | None = None
    room_id: int | None = None
    overbook: bool = False


@router.post("/appointments/{appointment_id}/copy", status_code=201)
def copy(clinic_id: int, appointment_id: int, body: CopyIn, praxis: Praxis = Depends(get_praxis),
         who: Principal = Depends(EDIT)) -> dict[str, Any]:
    """Book the same patient, type and services again (e.g. with a second doctor)."""
    room = body.room_id if "room_id" in body.model_fields_set else False
    return ap.copy(praxis, clinic_id, appointment_id, _caller(who, clinic_id),
                   start_at=_utc(body.start_at, _tz(praxis, clinic_id), "start_at"),  # type: ignore[arg-type]
                   doctor_id=body.doctor_id, room_id=room, overbook=body.overbook)


class ResizeIn(BaseModel):
    end_at: datetime | None = None
    duration_minutes: int | None = Field(None, ge=5, le=1440)
    version: int | None = None
    overbook: bool = False


@router.post("/appointments/{appointment_id}/resize")
def resize(clinic_id: int, appointment_id: int, body: ResizeIn, praxis: Praxis = Depends(get_praxis),
           who: Principal = Depends(EDIT)) -> dict[str, Any]:
    if body.end_at is None and body.duration_minutes is None:
        raise invalid("end_at", "give end_at or duration_minutes", "required")
    if body.end_at is not None:
        end = _utc(body.end_at, _tz(praxis, clinic_id), "end_at")
    else:
        current = ap.get(praxis, clinic_id, appointment_id)
        end = datetime.fromisoformat(current["start_at"]) + timedelta(minutes=body.duration_minutes or 0)
    return ap.resize(praxis, clinic_id, appointment_id, _caller(who, clinic_id), end_at=end,  # type: ignore[arg-type]
                     version=body.version, overbook=body.overbook)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=40, description="a code from the clinic's reason list")
    note: str = Field("", max_length=1000)
    version: int | None = None


@router.post("/appointments/{appointment_id}/cancel")
def cancel(clinic_id: int, appointment_id: int, body: ReasonIn, praxis: Praxis = Depends(get_praxis),
           who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return ap.cancel(praxis, clinic_id, appointment_id, _caller(who, clinic_id), reason=body.reason, note=body.note,
                     version=body.version)


@router.post("/appointments/{appointment_id}/no-show")
def no_show(clinic_id: int, appointment_id: int, body: ReasonIn, praxis: Praxis = Depends(get_praxis),
            who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return ap.no_show(praxis, clinic_id, appointment_id, _caller(who, clinic_id), reason=body.reason,
                      version=body.version)


class StatusIn(BaseModel):
    status: str = Field(min_length=1, max_length=40)
    version: int | None = None
    overbook: bool = False


@router.post("/appointments/{appointment_id}/status")
def set_status(clinic_id: int, appointment_id: int, body: StatusIn, praxis: Praxis = Depends(get_praxis),
               who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return ap.set_status(praxis, clinic_id, appointment_id, _caller(who, clinic_id), status=body.status,
                         version=body.version, overbook=body.overbook)


@router.delete("/appointments/{appointment_id}")
def delete(clinic_id: int, appointment_id: int, reason: str = Query(..., min_length=1, max_length=1000),
           version: int | None = None, praxis: Praxis = Depends(get_praxis),
           who: Principal = Depends(EDIT)) -> dict[str, Any]:
    """Move to the trash with a reason; restorable."""
    return ap.delete(praxis, clinic_id, appointment_id, _caller(who, clinic_id), reason=reason, version=version)


class RestoreIn(BaseModel):
    start_at: datetime | None = Field(None, description="restore at another time (default: its own)")
    doctor_id: int | None = None
    room_id: int | None = None
    version: int | None = None
    overbook: bool = False


@router.post("/appointments/{appointment_id}/restore")
def restore(clinic_id: int, appointment_id: int, body: RestoreIn | None = None, praxis: Praxis = Depends(get_praxis),
            who: Principal = Depends(EDIT)) -> dict[str, Any]:
    body = body or RestoreIn()
    room = body.room_id if "room_id" in body.model_fields_set else False
    return ap.restore(praxis, clinic_id, appointment_id, _caller(who, clinic_id),
                      start_at=_utc(body.start_at, _tz(praxis, clinic_id), "start_at"), doctor_id=body.doctor_id,
                      room_id=room, version=body.version, overbook=body.overbook)


@router.get("/appointments/{appointment_id}/history")
def history(clinic_id: int, appointment_id: int, praxis: Praxis = Depends(get_praxis),
            _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """Every create, change, move, status change, cancel and restore: who, when, before and after."""
    return ap.history(praxis, clinic_id, appointment_id)


class ToWaitlistIn(BaseModel):
    desired_date: date | None = None
    notes: str | None = Field(None, max_length=2000)


@router.post("/appointments/{appointment_id}/to-waitlist", status_code=201)
def to_waitlist(clinic_id: int, appointment_id: int, body: ToWaitlistIn | None = None,
                praxis: Praxis = Depends(get_praxis), who: Principal = Depends(EDIT)) -> dict[str, Any]:
    body = body or ToWaitlistIn()
    return waitlist.from_appointment(praxis, clinic_id, appointment_id, _caller(who, clinic_id),
                                     desired_date=body.desired_date, notes=body.notes)


# --- pinboard -------------------------------------------------------------------------------------


class PinIn(BaseModel):
    appointment_id: int
    note: str = Field("", max_length=1000)
    version: int | None = None


@router.get("/pinboard")
def pinboard(clinic_id: int, praxis: Praxis = Depends(get_praxis),
             _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """Appointments taken out of the grid to be rescheduled (place them with ``move``)."""
    return ap.pinboard(praxis, clinic_id)


@router.post("/pinboard", status_code=201)
def pin(clinic_id: int, body: PinIn, praxis: Praxis = Depends(get_praxis),
        who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return ap.pin(praxis, clinic_id, body.appointment_id, _caller(who, clinic_id), note=body.note,
                  version=body.version)


# --- waitlist -------------------------------------------------------------------------------------


class WaitlistFields(BaseModel):
    patient_id: uuid.UUID | None = None
    new_patient_name: str | None = Field(None, max_length=200)
    new_patient_phone: str | None = Field(None, max_length=32)
    doctor_id: int | None = None
    desired_date: date | None = None
    window_start: time | None = Field(None, description="HH:MM, clinic-local")
    window_end: time | None = Field(None, description="HH:MM, clinic-local")
    duration_minutes: int | None = Field(None, ge=5, le=1440)
    type_code: str | None = Field(None, max_length=40)
    services: list[str | dict[str, Any]] | None = None
    notes: str | None = Field(None, max_length=2000)


class WaitlistIn(WaitlistFields):
    duration_minutes: int = Field(30, ge=5, le=1440)


def _wait_values(body: WaitlistFields, *, exclude_unset: bool) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=exclude_unset)
    if "services" in values and values["services"] is None:
        values["services"] = []
    if "notes" in values and values["notes"] is None:
        values["notes"] = ""
    return values


class WaitlistBookIn(BaseModel):
    start_at: datetime
    doctor_id: int | None = None
    room_id: int | None = None
    overbook: bool = False


@router.get("/waitlist")
def list_waitlist(clinic_id: int, day: date | None = None, doctor_id: int | None = None,
                  state: str = Query("waiting", pattern="^(waiting|booked|removed)$"),
                  limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0),
                  praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """Waiting entries; with ``day``, those wanting that day plus those without a date."""
    return waitlist.listing(praxis, clinic_id, day=day, doctor_id=doctor_id, state=state, limit=limit, offset=offset)


@router.post("/waitlist", status_code=201)
def add_waitlist(clinic_id: int, body: WaitlistIn, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(EDIT)) -> dict[str, Any]:
    values = {k: v for k, v in _wait_values(body, exclude_unset=False).items() if v is not None}
    return waitlist.create(praxis, clinic_id, values, who.actor)


@router.patch("/waitlist/{entry_id}")
def update_waitlist(clinic_id: int, entry_id: int, body: WaitlistFields, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return waitlist.update(praxis, clinic_id, entry_id, _wait_values(body, exclude_unset=True), who.actor)


@router.delete("/waitlist/{entry_id}")
def remove_waitlist(clinic_id: int, entry_id: int, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return waitlist.remove(praxis, clinic_id, entry_id, who.actor)


@router.post("/waitlist/{entry_id}/book", status_code=201)
def book_waitlist(clinic_id: int, entry_id: int, body: WaitlistBookIn, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(EDIT)) -> dict[str, Any]:
    return waitlist.book(praxis, clinic_id, entry_id, _caller(who, clinic_id),
                         start_at=_utc(body.start_at, _tz(praxis, clinic_id), "start_at"),  # type: ignore[arg-type]
                         doctor_id=body.doctor_id, room_id=body.room_id, overbook=body.overbook)


# --- recurring series -----------------------------------------------------------------------------


class SeriesIn(BaseModel):
    template: AppointmentFields = Field(description="the appointment to repeat (doctor, patient, type, services...)")
    rrule: str = Field(min_length=1, max_length=500, description="RFC 5545, e.g. FREQ=WEEKLY;BYDAY=TU;COUNT=6")
    first_start: datetime = Field(description="the first occurrence; without an offset: clinic-local")
    duration_minutes: int = Field(30, ge=5, le=1440)
    skip_conflicts: bool = Field(False, description="book the rest when some occurrences are taken")
    overbook: bool = False


def _series_args(body: SeriesIn, tz: ZoneInfo) -> tuple[dict[str, Any], datetime]:
    template = {k: v for k, v in body.template.model_dump(exclude_unset=True).items()
                if k not in ("start_at", "end_at")}
    first = body.first_start
    local = first.astimezone(tz).replace(tzinfo=None) if first.tzinfo is not None else first
    _utc(local, tz, "first_start")
    return template, local


@router.post("/series/preview")
def preview_series(clinic_id: int, body: SeriesIn, praxis: Praxis = Depends(get_praxis),
                   _: Principal = Depends(EDIT)) -> dict[str, Any]:
    """Each occurrence with its conflicts and working-hours problems; nothing is booked."""
    template, local = _series_args(body, _tz(praxis, clinic_id))
    return recurrence.preview(praxis, clinic_id, template, body.rrule, local, body.duration_minutes)


@router.post("/series", status_code=201)
def create_series(clinic_id: int, body: SeriesIn, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(EDIT)) -> dict[str, Any]:
    template, local = _series_args(body, _tz(praxis, clinic_id))
    return recurrence.create_series(praxis, clinic_id, template, body.rrule, local, body.duration_minutes,
                                    _caller(who, clinic_id), skip_conflicts=body.skip_conflicts,
                                    overbook=body.overbook)

