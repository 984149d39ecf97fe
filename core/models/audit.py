"""The append-only, hash-chained audit journal."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class AuditEntry(SQLModel, table=True):
    __tablename__ = "core_audit"

    seq: int = Field(primary_key=True, description="1, 2, 3...: gaps mean deleted entries")
    at: datetime = Field(default_factory=now)
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str = Field(default="", max_length=200)
    clinic_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=100, index=True)
    target: str | None = Field(default=None, max_length=200, index=True)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The chain's tip; writers lock this row so entries get consecutive numbers."""

    __tablename__ = "core_audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)
