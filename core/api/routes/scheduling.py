"""Clinic set-up for the appointment book: rooms, working hours, days off, holidays, doctors' schedules,
the configurable lists (statuses with colours, reasons, types...) and free-slot search.

Reading needs ``appointments.view``; changing the set-up needs ``schedules.manage``.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.clock import now
from core.db import transaction
from core.models.appointment import OPTION_KINDS
from core.scheduling import options, schedules, slots
from core.scheduling.errors import NotFound

router = APIRouter(prefix="/api/clinics/{clinic_id}", tags=["schedules"])

VIEW = clinic_permission("appointments.view")
MANAGE = clinic_permission("schedules.manage")


def _session(praxis: Praxis) -> Session:
    return Session(praxis.engine)


# --- rooms ----------------------------------------------------------------------------------------


class RoomIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["room", "chair"] = "room"
    position: int = 0
    active: bool = True


class RoomPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    kind: Literal["room", "chair"] | None = None
    position: int | None = None
    active: bool | None = None


class RoomOut(BaseModel):
    id: int
    name: str
    kind: str
    position: int
    active: bool


@router.get("/rooms", response_model=list[RoomOut])
def list_rooms(clinic_id: int, include_inactive: bool = True, praxis: Praxis = Depends(get_praxis),
               _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with _session(praxis) as session:
        return schedules.list_rooms(session, clinic_id, include_inactive)


@router.post("/rooms", response_model=RoomOut, status_code=201)
def create_room(clinic_id: int, body: RoomIn, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return schedules.create_room(praxis.engine, clinic_id, body.model_dump(), who.actor)


@router.patch("/rooms/{room_id}", response_model=RoomOut)
def update_room(clinic_id: int, room_id: int, body: RoomPatch, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return schedules.update_room(praxis.engine, clinic_id, room_id, values, who.actor)


# --- working hours, days off, holidays ------------------------------------------------------------


class HoursIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start_time: time
    end_time: time


class HoursOut(BaseModel):
    weekday: int
    start_time: str
    end_time: str


@router.get("/working-hours", response_model=list[HoursOut])
def get_hours(clinic_id: int, praxis: Praxis = Depends(get_praxis),
              _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with _session(praxis) as session:
        return schedules.get_hours(session, clinic_id)


@router.put("/working-hours", response_model=list[HoursOut])
def set_hours(clinic_id: int, body: list[HoursIn], praxis: Praxis = Depends(get_praxis),
              who: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    """Replace the weekly opening hours (several intervals per weekday allowed; none: no clinic-wide limit)."""
    return schedules.set_hours(praxis.engine, clinic_id, [h.model_dump() for h in body], who.actor)


class DayIn(BaseModel):
    date: dt.date
    closed: bool = Field(True, description="true: a day off; false: open on a public holiday")
    reason: str = Field("", max_length=200)


class DayOut(BaseModel):
    id: int
    date: str
    closed: bool
    reason: str


@router.get("/days-off", response_model=list[DayOut])
def list_days(clinic_id: int, year: int | None = Query(None, ge=1900, le=2200), praxis: Praxis = Depends(get_praxis),
              _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with _session(praxis) as session:
        return schedules.list_days(session, clinic_id, year)


@router.post("/days-off", response_model=DayOut, status_code=201)
def add_day(clinic_id: int, body: DayIn, praxis: Praxis = Depends(get_praxis),
            who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return schedules.add_day(praxis.engine, clinic_id, body.date, body.closed, body.reason, who.actor)


@router.delete("/days-off/{day_id}", status_code=204)
def delete_day(clinic_id: int, day_id: int, praxis: Praxis = Depends(get_praxis),
               who: Principal = Depends(MANAGE)) -> Response:
    schedules.delete_day(praxis.engine, clinic_id, day_id, who.actor)
    return Response(status_code=204)


@router.get("/holidays")
def holidays(clinic_id: int, year: int | None = Query(None, ge=1900, le=2200), praxis: Praxis = Depends(get_praxis),
             _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """The country's public holidays (``holidays`` package), make-up workdays, and the clinic's own days."""
    with _session(praxis) as session:
        return schedules.holidays_for(session, clinic_id, year or now().year)


# --- doctors' schedules ---------------------------------------------------------------------------


class TemplateIn(BaseModel):
    weekday: int = Field(ge=0, le=6)
    start_time: time
    end_time: time
    room_id: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class ExceptionIn(BaseModel):
    date: dt.date
    kind: Literal["off", "hours"] = "off"
    start_time: time | None = None
    end_time: time | None = None
    room_id: int | None = None
    reason: str = Field("", max_length=200)


class BreakIn(BaseModel):
    weekday: int | None = Field(None, ge=0, le=6, description="every week on this weekday...")
    date: dt.date | None = Field(None, description="...or once on this date")
    start_time: time
    end_time: time
    label: str = Field("", max_length=100)


@router.get("/doctors/{doctor_id}/schedule")
def get_schedule(clinic_id: int, doctor_id: int, from_: date | None = Query(None, alias="from"),
                 to: date | None = None, praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """Weekly templates, dated exceptions (optionally within from..to) and breaks."""
    with _session(praxis) as session:
        schedules.get_clinic(session, clinic_id)
        return schedules.get_schedule(session, clinic_id, doctor_id, from_, to)


@router.put("/doctors/{doctor_id}/schedule/templates")
def set_templates(clinic_id: int, doctor_id: int, body: list[TemplateIn], praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return schedules.set_templates(praxis.engine, clinic_id, doctor_id, [t.model_dump() for t in body], who.actor)


@router.post("/doctors/{doctor_id}/schedule/exceptions", status_code=201)
def add_exception(clinic_id: int, doctor_id: int, body: ExceptionIn, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    values = body.model_dump()
    values["day"] = values.pop("date")
    return schedules.add_exception(praxis.engine, clinic_id, doctor_id, values, who.actor)


@router.delete("/doctors/{doctor_id}/schedule/exceptions/{entry_id}", status_code=204)
def delete_exception(clinic_id: int, doctor_id: int, entry_id: int, praxis: Praxis = Depends(get_praxis),
                     who: Principal = Depends(MANAGE)) -> Response:
    schedules.delete_entry(praxis.engine, clinic_id, doctor_id, "exception", entry_id, who.actor)
    return Response(status_code=204)


@router.post("/doctors/{doctor_id}/schedule/breaks", status_code=201)
def add_break(clinic_id: int, doctor_id: int, body: BreakIn, praxis: Praxis = Depends(get_praxis),
              who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    values = body.model_dump()
    values["day"] = values.pop("date")
    return schedules.add_break(praxis.engine, clinic_id, doctor_id, values, who.actor)


@router.delete("/doctors/{doctor_id}/schedule/breaks/{entry_id}", status_code=204)
def delete_break(clinic_id: int, doctor_id: int, entry_id: int, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(MANAGE)) -> Response:
    schedules.delete_entry(praxis.engine, clinic_id, doctor_id, "break", entry_id, who.actor)
    return Response(status_code=204)


# --- configurable lists ---------------------------------------------------------------------------


class OptionIn(BaseModel):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")
    label: str = Field(min_length=1, max_length=100)
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
    role: str | None = Field(None, description="statuses only: booked, confirmed, arrived, in_progress, done, "
                                               "no_show, cancelled (or none)")
    active: bool = True


class OptionOut(BaseModel):
    code: str
    label: str
    color: str | None
    role: str | None
    position: int
    active: bool


def _get_options(praxis: Praxis, clinic_id: int, kind: str) -> list[dict[str, Any]]:
    if kind not in OPTION_KINDS:
        raise NotFound(f"no list {kind!r}; lists: {', '.join(OPTION_KINDS)}")
    with _session(praxis) as session:
        schedules.get_clinic(session, clinic_id)
        return [o.as_dict() for o in options.load(session, clinic_id, kind)]


def _set_options(praxis: Praxis, clinic_id: int, kind: str, body: list[OptionIn], who: Principal) -> list[dict]:
    if kind not in OPTION_KINDS:
        raise NotFound(f"no list {kind!r}; lists: {', '.join(OPTION_KINDS)}")
    with transaction(praxis.engine) as session:
        schedules.get_clinic(session, clinic_id)
        saved = options.replace(session, clinic_id, kind, [o.model_dump() for o in body], who.actor)
        return [o.as_dict() for o in saved]


@router.get("/appointment-statuses", response_model=list[OptionOut])
def get_statuses(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    return _get_options(praxis, clinic_id, "status")


@router.put("/appointment-statuses", response_model=list[OptionOut])
def set_statuses(clinic_id: int, body: list[OptionIn], praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    """Replace the status list (order = display order). Roles booked, no_show and cancelled are required."""
    return _set_options(praxis, clinic_id, "status", body, who)


@router.get("/appointment-options/{kind}", response_model=list[OptionOut])
def get_options(clinic_id: int, kind: str, praxis: Praxis = Depends(get_praxis),
                _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """One of the lists: status, communication_status, cancel_reason, no_show_reason, type, source."""
    return _get_options(praxis, clinic_id, kind)


@router.put("/appointment-options/{kind}", response_model=list[OptionOut])
def set_options(clinic_id: int, kind: str, body: list[OptionIn], praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> list[dict[str, Any]]:
    return _set_options(praxis, clinic_id, kind, body, who)


# --- free slots -----------------------------------------------------------------------------------


@router.get("/free-slots")
def free_slots(
    clinic_id: int,
    doctor_id: list[int] = Query(..., description="one or several doctors"),
    duration: int = Query(30, description="minutes"),
    from_: date = Query(..., alias="from", description="first local date"),
    to: date | None = Query(None, description="last local date (default: from)"),
    step: int = Query(15, description="grid step in minutes"),
    room_id: int | None = None,
    limit: int = Query(500, ge=1, le=5000),
    praxis: Praxis = Depends(get_praxis),
    _: Principal = Depends(VIEW),
) -> dict[str, Any]:
    """Free start times, earliest first, in UTC and clinic-local time."""
    return slots.search(praxis, clinic_id, doctor_id, duration, from_, to or from_, step_minutes=step,
                        room_id=room_id, limit=limit)
