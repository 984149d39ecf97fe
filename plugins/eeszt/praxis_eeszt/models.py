"""The plugin's own tables (prefix ``eeszt_``, created by its Alembic branch ``eeszt``).

* ``eeszt_doctor``: a doctor's stamp number (pecsétszám) per clinic; the core keeps no staff identifiers yet.
  Also the one-time-code replay guard of token logins.
* ``eeszt_session``: doctors' EESZT logins (eID card or token), the session token sealed with a key derived
  from the institution's certificate; reused until ``expires_at`` (7 hours by default), then asked again.
* ``eeszt_certificate``: certificates activated for the clinic (fingerprint, dates, who, when).
* ``eeszt_visit``: per appointment, the event catalogue entry (EKAT) and the outpatient report sent for it.
* ``eeszt_sync``: every outbox item the plugin queued for a visit, with its last state and error, so a visit
  shows what was sent, what waits and why.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on SQLite and PostgreSQL (SQLite drops offsets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use ctx.now() or an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class Doctor(SQLModel, table=True):
    __tablename__ = "eeszt_doctor"
    __table_args__ = (UniqueConstraint("clinic_id", "user_id", name="ux_eeszt_doctor_user"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    user_id: int = Field(foreign_key="core_user.id")
    stamp_number: str = Field(max_length=5)
    last_otp_digest: str | None = Field(default=None, max_length=64)
    last_otp_at: datetime | None = utc(nullable=True)
    updated_at: datetime = utc()
    updated_by: int | None = None

    @property
    def eeszt_user(self) -> str:
        """The doctor's EESZT user id: 'O' followed by the stamp number."""
        return f"O{self.stamp_number}"


class DoctorSession(SQLModel, table=True):
    __tablename__ = "eeszt_session"

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    method: str = Field(max_length=8, description="eid or token")
    sealed_token: str = Field(sa_column=Column(Text, nullable=False))
    certificate_fingerprint: str = Field(max_length=64)
    started_at: datetime = utc()
    expires_at: datetime = utc()
    ended_at: datetime | None = utc(nullable=True)
    end_reason: str | None = Field(default=None, max_length=32)


class Certificate(SQLModel, table=True):
    __tablename__ = "eeszt_certificate"

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    fingerprint: str = Field(max_length=64)
    subject: str = Field(max_length=500)
    not_before: datetime = utc()
    not_after: datetime = utc()
    activated_at: datetime = utc()
    activated_by: int | None = None


class Visit(SQLModel, table=True):
    __tablename__ = "eeszt_visit"
    __table_args__ = (UniqueConstraint("clinic_id", "appointment_id", name="ux_eeszt_visit_appointment"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    appointment_id: int = Field(foreign_key="core_appointment.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id")
    doctor_id: int = Field(foreign_key="core_user.id")
    event_id: str | None = Field(default=None, max_length=64)
    event_status: str = Field(default="queued", max_length=16, description="queued, open or closed")
    opened_at: datetime | None = utc(nullable=True)
    closed_at: datetime | None = utc(nullable=True)
    document_id: str | None = Field(default=None, max_length=64)
    document_sent_at: datetime | None = utc(nullable=True)
    created_at: datetime = utc()
    updated_at: datetime = utc()


class SyncItem(SQLModel, table=True):
    __tablename__ = "eeszt_sync"

    id: uuid.UUID = Field(primary_key=True, description="The outbox item's id")
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    appointment_id: int = Field(foreign_key="core_appointment.id", index=True)
    step: str = Field(max_length=16, description="open_event, close_event or send_report")
    status: str = Field(default="queued", max_length=16, description="queued, done, retrying or failed")
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc()
    updated_at: datetime = utc()
