"""Appointments, their change history, recurring series, the waitlist and per-clinic option lists."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import DDL, CheckConstraint, Index, UniqueConstraint, and_, event, func
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from core.models.schedule import UTCDateTime, utc_column, utc_now_column

OPTION_KINDS = ("status", "communication_status", "cancel_reason", "no_show_reason", "type", "source")


class AppointmentOption(SQLModel, table=True):
    """One entry of a clinic's configurable list (statuses with colours, reasons, types, sources...).

    A clinic without rows of a kind uses the built-in defaults (core.scheduling.options). For statuses,
    ``role`` gives the entry its meaning to the core: booked, confirmed, arrived, in_progress, done,
    no_show, cancelled, or none for a clinic's own intermediate status.
    """

    __tablename__ = "core_appointment_option"
    __table_args__ = (UniqueConstraint("clinic_id", "kind", "code", name="ux_core_appointment_option"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    kind: str = Field(max_length=32)
    code: str = Field(max_length=40)
    label: str = Field(max_length=100)
    color: str | None = Field(default=None, max_length=9)
    role: str | None = Field(default=None, max_length=16)
    position: int = 0
    active: bool = True


class AppointmentSeries(SQLModel, table=True):
    """A recurring series: the rule it was created from; its appointments point back to it."""

    __tablename__ = "core_appointment_series"

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    rrule: str = Field(max_length=500)
    first_start_local: datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False),
        description="DTSTART: the first occurrence; read in the clinic's zone it is the wall time the rule repeats")
    duration_minutes: int
    created_at: datetime = utc_now_column()
    created_by: int | None = None


class Appointment(SQLModel, table=True):
    __tablename__ = "core_appointment"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="ck_core_appointment_order"),
        Index("ix_core_appointment_clinic_start", "clinic_id", "start_at"),
        Index("ix_core_appointment_doctor_start", "clinic_id", "doctor_id", "start_at"),
        Index("ix_core_appointment_room_start", "clinic_id", "room_id", "start_at"),
        Index("ix_core_appointment_patient", "patient_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="core_patient.id")
    new_patient_name: str | None = Field(default=None, max_length=200)
    new_patient_phone: str | None = Field(default=None, max_length=32)
    is_new_patient: bool = False
    doctor_id: int = Field(foreign_key="core_user.id")
    room_id: int | None = Field(default=None, foreign_key="core_room.id")
    assistant_id: int | None = Field(default=None, foreign_key="core_user.id")
    start_at: datetime = utc_column()
    end_at: datetime = utc_column()
    type_code: str | None = Field(default=None, max_length=40)
    source_code: str | None = Field(default=None, max_length=40)
    services: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: str = Field(default="", max_length=4000)
    status: str = Field(default="booked", max_length=40)
    status_changed_at: datetime | None = utc_column(nullable=True)
    communication_status: str | None = Field(default=None, max_length=40)
    arrived_at: datetime | None = utc_column(nullable=True)
    seated_at: datetime | None = utc_column(nullable=True)
    done_at: datetime | None = utc_column(nullable=True)
    cancel_reason: str | None = Field(default=None, max_length=40)
    cancel_note: str = Field(default="", max_length=1000)
    cancelled_at: datetime | None = utc_column(nullable=True)
    no_show_reason: str | None = Field(default=None, max_length=40)
    deleted_at: datetime | None = utc_column(nullable=True)
    deleted_by: int | None = None
    delete_reason: str = Field(default="", max_length=1000)
    pinned_at: datetime | None = utc_column(nullable=True)
    pin_note: str = Field(default="", max_length=1000)
    overbooked: bool = False
    active: bool = Field(default=True, description="blocks its time: not cancelled, no-show, deleted or pinned")
    series_id: int | None = Field(default=None, foreign_key="core_appointment_series.id", index=True)
    copied_from: int | None = None
    version: int = 1
    created_at: datetime = utc_now_column()
    created_by: int | None = None
    updated_at: datetime = utc_now_column()
    updated_by: int | None = None


# The database's own guarantee on PostgreSQL: two active, not overbooked appointments of one doctor (or one
# room) in a clinic never overlap, whatever code writes them. The service checks first (under a lock) so
# users get a list of conflicts; this constraint is the backstop. SQLite serialises writers instead.
_table = Appointment.__table__  # type: ignore[attr-defined]
event.listen(_table, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(dialect="postgresql"))
for _name, _column in (("doctor", _table.c.doctor_id), ("room", _table.c.room_id)):
    _table.append_constraint(
        ExcludeConstraint(
            (_table.c.clinic_id, "="), (_column, "="),
            (func.tstzrange(_table.c.start_at, _table.c.end_at), "&&"),
            using="gist", name=f"ex_core_appointment_{_name}_overlap",
            where=and_(_table.c.active, ~_table.c.overbooked),
        ).ddl_if(dialect="postgresql")
    )


class AppointmentChange(SQLModel, table=True):
    """One entry of an appointment's history: who did what, when, with the values before and after."""

    __tablename__ = "core_appointment_change"
    __table_args__ = (Index("ix_core_appointment_change_appt", "appointment_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: int = Field(foreign_key="core_appointment.id")
    clinic_id: int = Field(foreign_key="core_clinic.id")
    at: datetime = utc_now_column()
    actor_id: int | None = None
    actor_name: str = Field(default="", max_length=200)
    action: str = Field(max_length=32)
    before: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WaitlistEntry(SQLModel, table=True):
    """A patient waiting for a time, with or without a preferred doctor, date and time window."""

    __tablename__ = "core_waitlist_entry"
    __table_args__ = (
        CheckConstraint("state IN ('waiting', 'booked', 'removed')", name="ck_core_waitlist_state"),
        Index("ix_core_waitlist_clinic_state", "clinic_id", "state", "desired_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="core_patient.id")
    new_patient_name: str | None = Field(default=None, max_length=200)
    new_patient_phone: str | None = Field(default=None, max_length=32)
    doctor_id: int | None = Field(default=None, foreign_key="core_user.id")
    desired_date: date | None = None
    window_start: time | None = None
    window_end: time | None = None
    duration_minutes: int = 30
    type_code: str | None = Field(default=None, max_length=40)
    services: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: str = Field(default="", max_length=2000)
    state: str = Field(default="waiting", max_length=16)
    appointment_id: int | None = Field(default=None, foreign_key="core_appointment.id")
    from_appointment_id: int | None = None
    created_at: datetime = utc_now_column()
    created_by: int | None = None
    updated_at: datetime = utc_now_column()


__all__ = ["Appointment", "AppointmentChange", "AppointmentOption", "AppointmentSeries", "OPTION_KINDS",
           "UTCDateTime", "WaitlistEntry"]
