"""The append-only, hash-chained audit journal.

Entries form several independent hash chains: each clinic has its own chains (entries without a clinic
share the ``global`` ones), split into a few lanes chosen by the entry's target, so writers in different
clinics, or about different things, never wait for one another's lock. Within a chain, entries are
numbered 1, 2, 3... (``chain_seq``) and each carries the hash of the one before it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class AuditEntry(SQLModel, table=True):
    __tablename__ = "core_audit"
    __table_args__ = (Index("uq_core_audit_chain_seq", "chain", "chain_seq", unique=True),)

    seq: int | None = Field(default=None, primary_key=True,
                            description="journal-wide entry number, in the order entries were written")
    chain: str = Field(max_length=40, description="the hash chain: 'clinic:<id>/<lane>' or 'global/<lane>'")
    chain_seq: int = Field(description="1, 2, 3... within the chain: gaps mean deleted entries")
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
    """A chain's tip; writers lock this row so the chain's entries get consecutive numbers."""

    __tablename__ = "core_audit_head"

    chain: str = Field(primary_key=True, max_length=40)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)
