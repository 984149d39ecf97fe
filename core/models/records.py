"""Clinical records (visit notes, chart entries), their signatures and the signing sessions that made them.

A record is one *version*: an amendment is a new row in the same ``chain_id`` with ``version + 1`` and
``previous_version_id`` pointing at the version it corrects. Versions are never rewritten once signed, so
every old version and its signatures stay verifiable. Primary keys of records and sessions are UUIDs made
in Python: a record's id is part of the bytes that get signed, so it exists before the row is inserted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from core.models.schedule import utc_column, utc_now_column


class RecordStatus(StrEnum):
    draft = "draft"  # the author is still writing; editable, deletable
    final = "final"  # finished and frozen, waiting for the author's signature
    signed = "signed"  # signed by its author, waiting for a supervisor's countersignature (trainee records)
    locked = "locked"  # every signature it needs is stored; it never changes again (corrections are amendments)


class SignatureKind(StrEnum):
    sign = "sign"  # the author's own signature
    countersign = "countersign"  # a supervisor's signature over a trainee's record


class SessionStatus(StrEnum):
    pending = "pending"  # the intent check waits for the signer's answer
    passed = "passed"  # the intent check passed; signing may proceed (again, after a vendor outage)
    done = "done"  # every record of the session got its signature
    locked = "locked"  # too many wrong answers
    expired = "expired"
    failed = "failed"  # the provider refused for good; begin a new session


class ClinicalRecord(SQLModel, table=True):
    __tablename__ = "core_clinical_record"
    __table_args__ = (
        UniqueConstraint("chain_id", "version", name="ux_core_clinical_record_version"),
        Index("ix_core_clinical_record_clinic_status", "clinic_id", "status", "created_at"),
        Index("ix_core_clinical_record_clinic_author", "clinic_id", "author_id", "created_at"),
        Index("ix_core_clinical_record_patient", "patient_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    chain_id: uuid.UUID = Field(index=True, description="The id of the first version; shared by its amendments")
    version: int = Field(default=1, ge=1)
    previous_version_id: uuid.UUID | None = Field(default=None, foreign_key="core_clinical_record.id")
    previous_sha256: str | None = Field(default=None, max_length=64,
                                        description="SHA-256 of the previous version's canonical bytes")
    superseded_by_id: uuid.UUID | None = Field(default=None, description="The amendment that corrects this version")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id")
    author_id: int = Field(foreign_key="core_user.id")
    appointment_id: int | None = Field(default=None, foreign_key="core_appointment.id", index=True)
    kind: str = Field(default="visit_note", max_length=40)
    title: str = Field(default="", max_length=200)
    content: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    amendment_reason: str | None = Field(default=None, max_length=1000)
    status: str = Field(default=RecordStatus.draft, max_length=16)
    requires_countersign: bool = Field(default=False, description="Set at signing: the author lacked records.sign")
    revision: int = Field(default=1, description="Bumped by every edit of a draft (optimistic concurrency)")
    created_at: datetime = utc_now_column()
    updated_at: datetime = utc_now_column()
    finalised_at: datetime | None = utc_column(nullable=True)
    signed_at: datetime | None = utc_column(nullable=True)
    locked_at: datetime | None = utc_column(nullable=True)


class RecordSignature(SQLModel, table=True):
    """One signature over one record version's canonical bytes, stored only after it verified."""

    __tablename__ = "core_record_signature"
    __table_args__ = (
        UniqueConstraint("record_id", "kind", name="ux_core_record_signature_kind"),
        Index("ix_core_record_signature_clinic_signed", "clinic_id", "signed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    record_id: uuid.UUID = Field(foreign_key="core_clinical_record.id", index=True)
    kind: str = Field(max_length=16)
    provider: str = Field(max_length=64, description="The signing plugin")
    signer_id: int = Field(foreign_key="core_user.id")
    signer_name: str = Field(max_length=300, description="The name the provider reports (certificate subject)")
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    canonical_format: str = Field(max_length=40, description="The canonical byte form that was signed")
    document_sha256: str = Field(max_length=64, description="SHA-256 of the signed canonical bytes")
    signed_at: datetime = utc_column()
    certificate_serial: str | None = Field(default=None, max_length=200)
    certificate_subject: str | None = Field(default=None, max_length=500)
    expires_at: datetime | None = utc_column(nullable=True)
    timestamped_at: datetime | None = utc_column(nullable=True)
    details: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    session_id: uuid.UUID | None = Field(default=None, foreign_key="core_record_signing_session.id")
    created_at: datetime = utc_now_column()


class RecordSigningSession(SQLModel, table=True):
    """One intent check covering a batch of records, from ``begin`` to the stored signatures."""

    __tablename__ = "core_record_signing_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    kind: str = Field(max_length=16)
    provider: str = Field(max_length=64)
    provider_session_id: str = Field(max_length=200)
    challenge_kind: str = Field(max_length=16)
    record_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    digests: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False),
                          description="record id -> SHA-256 of its canonical bytes when the session began")
    status: str = Field(default=SessionStatus.pending, max_length=16)
    failed_attempts: int = 0
    expires_at: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc_now_column()
    completed_at: datetime | None = utc_column(nullable=True)
