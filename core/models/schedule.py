"""Clinic set-up for the appointment book: rooms or chairs, working hours, days off, doctors' schedules.

Times of day (``start``/``end``) and dates are local to the clinic's time zone; instants are UTC.
Weekdays are numbered like ``date.weekday()``: 0 = Monday ... 6 = Sunday.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from core.clock import now
from core.models.auth import UTCDateTime


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def utc_now_column() -> Any:
    return Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))


class Room(SQLModel, table=True):
    """A treatment room or dental chair."""

    __tablename__ = "core_room"
    __table_args__ = (UniqueConstraint("clinic_id", "name", name="ux_core_room_name"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    name: str = Field(max_length=100)
    kind: str = Field(default="room", max_length=16, description="room or chair")
    position: int = 0
    active: bool = True
    created_at: datetime = utc_now_column()


class ClinicHours(SQLModel, table=True):
    """When the clinic is open on a weekday; several rows per weekday give split hours.

    A clinic without any rows has no clinic-wide limit: only doctors' schedules count.
    """

    __tablename__ = "core_clinic_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_core_clinic_hours_weekday"),
        CheckConstraint("start_time < end_time", name="ck_core_clinic_hours_order"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    weekday: int
    start_time: time
    end_time: time


class ClinicDay(SQLModel, table=True):
    """A clinic's own calendar entry: a day off (``closed``) or a public holiday it works on (not closed)."""

    __tablename__ = "core_clinic_day"
    __table_args__ = (UniqueConstraint("clinic_id", "day", name="ux_core_clinic_day"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    day: date
    closed: bool = True
    reason: str = Field(default="", max_length=200)
    created_at: datetime = utc_now_column()
    created_by: int | None = None


class DoctorSchedule(SQLModel, table=True):
    """One weekly working interval of a doctor in a clinic (a template row)."""

    __tablename__ = "core_doctor_schedule"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_core_doctor_schedule_weekday"),
        CheckConstraint("start_time < end_time", name="ck_core_doctor_schedule_order"),
        Index("ix_core_doctor_schedule_doctor", "clinic_id", "doctor_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    doctor_id: int = Field(foreign_key="core_user.id")
    weekday: int
    start_time: time
    end_time: time
    room_id: int | None = Field(default=None, foreign_key="core_room.id")
    valid_from: date | None = None
    valid_to: date | None = None


class ScheduleException(SQLModel, table=True):
    """A dated change to a doctor's template: a day off, or other hours (rows of one date replace the week)."""

    __tablename__ = "core_schedule_exception"
    __table_args__ = (
        CheckConstraint("kind IN ('off', 'hours')", name="ck_core_schedule_exception_kind"),
        Index("ix_core_schedule_exception_doctor", "clinic_id", "doctor_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    doctor_id: int = Field(foreign_key="core_user.id")
    day: date
    kind: str = Field(default="off", max_length=8)
    start_time: time | None = None
    end_time: time | None = None
    room_id: int | None = Field(default=None, foreign_key="core_room.id")
    reason: str = Field(default="", max_length=200)


class ScheduleBreak(SQLModel, table=True):
    """A break in a doctor's day: every week on ``weekday``, or once on ``day``."""

    __tablename__ = "core_schedule_break"
    __table_args__ = (
        CheckConstraint("(weekday IS NULL) <> (day IS NULL)", name="ck_core_schedule_break_when"),
        CheckConstraint("start_time < end_time", name="ck_core_schedule_break_order"),
        Index("ix_core_schedule_break_doctor", "clinic_id", "doctor_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    doctor_id: int = Field(foreign_key="core_user.id")
    weekday: int | None = None
    day: date | None = None
    start_time: time
    end_time: time
    label: str = Field(default="", max_length=100)


class ClinicSetupGeneration(SQLModel, table=True):
    """A counter per clinic, raised in the same transaction as any change to its hours, days off, doctors'
    schedules, breaks, rooms or appointment option lists, so every process can cache that set-up and
    notice a change with one indexed read (``core.scheduling.setup``)."""

    __tablename__ = "core_clinic_setup_generation"

    clinic_id: int = Field(primary_key=True)
    generation: int = 0
