"""Outgoing work, written in the same transaction as the change that caused it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class OutboxStatus(StrEnum):
    pending = "pending"  # waiting for available_at, or retrying
    done = "done"
    dead = "dead"  # permanent failure or attempts exhausted; an admin may retry
    unknown = "unknown"  # the vendor may have acted; a person decides


class OutboxItem(SQLModel, table=True):
    __tablename__ = "core_outbox"
    __table_args__ = (
        Index("ix_core_outbox_claim", "status", "available_at"),
        Index("ix_core_outbox_purge", "status", "finished_at"),
        Index("ix_core_outbox_clinic_status", "clinic_id", "status", "plugin"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    clinic_id: int | None = Field(default=None, foreign_key="core_clinic.id", index=True)
    plugin: str = Field(max_length=64, index=True)
    topic: str = Field(max_length=100)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.pending, max_length=16)
    available_at: datetime = Field(default_factory=now)
    locked_by: str | None = Field(default=None, max_length=100)
    locked_until: datetime | None = None
    attempts: int = 0
    max_attempts: int = 12
    last_error: str | None = None
    result: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None


class JobRun(SQLModel, table=True):
    """One row per due run of a periodic job: the unique key makes each run happen once."""

    __tablename__ = "core_job_run"
    __table_args__ = (
        Index("ux_core_job_run_slot", "job", "clinic_id", "slot", unique=True),
        Index("ix_core_job_run_started", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=150, description="'<plugin>.<job name>'")
    clinic_id: int = Field(foreign_key="core_clinic.id")
    slot: datetime
    claimed_by: str = Field(max_length=100)
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    error: str | None = None
