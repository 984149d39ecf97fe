"""Patients and what hangs off a patient card: phones, e-mails, national identifiers, guardians,
medical alerts, consents, name search keys, chart numbering and merges.

Primary keys are UUIDs generated in Python, so the AAD that binds an encrypted identifier to its
patient (``core_patient_identifier:<patient id>:<type>``) exists before the row is inserted.
Every table carries ``clinic_id``: a query always names the clinic it reads.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DDL, BigInteger, DateTime, Index, String, TypeDecorator, UniqueConstraint, event
from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on both databases (SQLite alone would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use core.clock.now() or an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Byte-order comparison for prefix ranges: PostgreSQL's default collation would order by language
# rules, where ``key >= 'ab' AND key < 'ac'`` is not a prefix match. SQLite compares bytes already.
SearchText = String(200).with_variant(String(200, collation="C"), "postgresql")


class PatientStatus(StrEnum):
    active = "active"
    trashed = "trashed"
    merged = "merged"  # folded into ``merged_into``; comes back with an unmerge


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Channel(StrEnum):
    sms = "sms"
    email = "email"
    none = "none"


class PhoneKind(StrEnum):
    mobile = "mobile"
    home = "home"
    work = "work"
    other = "other"


class AlertType(StrEnum):
    allergy = "allergy"
    disease = "disease"
    medication = "medication"
    other = "other"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Patient(SQLModel, table=True):
    __tablename__ = "core_patient"
    __table_args__ = (
        UniqueConstraint("clinic_id", "chart_number", name="uq_core_patient_chart"),
        Index("ix_core_patient_dupe", "clinic_id", "name_key", "birth_date"),
        Index("ix_core_patient_list", "clinic_id", "status", "family_name", "given_name"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    chart_number: str = Field(max_length=40)
    family_name: str = Field(max_length=100, description="Family name in the local script")
    given_name: str = Field(default="", max_length=100, description="Given name(s) in the local script")
    family_name_latin: str | None = Field(default=None, max_length=100)
    given_name_latin: str | None = Field(default=None, max_length=100)
    name_key: str = Field(default="", max_length=210, description="Normalised full name for duplicate checks")
    birth_date: date | None = None
    sex: str = Field(default=Sex.unknown, max_length=16)
    address: str = Field(default="", max_length=500)
    preferred_channel: str = Field(default=Channel.sms, max_length=8)
    preferred_language: str | None = Field(default=None, max_length=16)
    vip: bool = False
    notes: str = Field(default="", max_length=10000)
    tags: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=PatientStatus.active, max_length=16)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_by: int | None = None
    delete_reason: str | None = Field(default=None, max_length=500)
    merged_into: uuid.UUID | None = Field(default=None, foreign_key="core_patient.id")
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    created_by: int | None = None
    updated_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    updated_by: int | None = None
    version: int = Field(default=1, description="Bumped by every change; a stale version is refused (409)")


class PatientPhone(SQLModel, table=True):
    """A phone in E.164; ``digits`` holds its international and national digits for substring search.

    Substring search (``LIKE '%1234%'``) is indexed on both databases: a trigram GIN index on
    PostgreSQL, and on SQLite an FTS5 trigram table ``core_patient_phone_fts`` kept in step by
    triggers, whose rowid is the phone's ``search_rowid``.
    """

    __tablename__ = "core_patient_phone"
    __table_args__ = (
        Index("ix_core_patient_phone_e164", "clinic_id", "e164"),
        Index("ix_core_patient_phone_digits_trgm", "digits", postgresql_using="gin",
              postgresql_ops={"digits": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    e164: str = Field(max_length=20)
    kind: str = Field(default=PhoneKind.mobile, max_length=16)
    digits: str = Field(max_length=50, description="International and national digits, space-separated")
    position: int = 0
    search_rowid: int = Field(default_factory=lambda: secrets.randbits(62), sa_type=BigInteger, unique=True,
                              description="Row id of the phone in the SQLite full-text index")


# Run these after creating core_patient_phone (migrations included). PostgreSQL needs the extension
# before the trigram index; SQLite gets the FTS5 trigram table and the triggers that maintain it.
POSTGRESQL_PHONE_SEARCH_DDL = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
SQLITE_PHONE_SEARCH_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS core_patient_phone_fts USING fts5(digits, tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS core_patient_phone_fts_ai AFTER INSERT ON core_patient_phone BEGIN "
    "INSERT INTO core_patient_phone_fts(rowid, digits) VALUES (new.search_rowid, new.digits); END",
    "CREATE TRIGGER IF NOT EXISTS core_patient_phone_fts_ad AFTER DELETE ON core_patient_phone BEGIN "
    "DELETE FROM core_patient_phone_fts WHERE rowid = old.search_rowid; END",
    "CREATE TRIGGER IF NOT EXISTS core_patient_phone_fts_au AFTER UPDATE OF digits, search_rowid "
    "ON core_patient_phone BEGIN DELETE FROM core_patient_phone_fts WHERE rowid = old.search_rowid; "
    "INSERT INTO core_patient_phone_fts(rowid, digits) VALUES (new.search_rowid, new.digits); END",
]
SQLITE_PHONE_SEARCH_DROP = [
    "DROP TRIGGER IF EXISTS core_patient_phone_fts_au",
    "DROP TRIGGER IF EXISTS core_patient_phone_fts_ad",
    "DROP TRIGGER IF EXISTS core_patient_phone_fts_ai",
    "DROP TABLE IF EXISTS core_patient_phone_fts",
]

for _statement in POSTGRESQL_PHONE_SEARCH_DDL:
    event.listen(PatientPhone.__table__, "before_create",  # type: ignore[attr-defined]
                 DDL(_statement).execute_if(dialect="postgresql"))
for _statement in SQLITE_PHONE_SEARCH_DDL:
    event.listen(PatientPhone.__table__, "after_create",  # type: ignore[attr-defined]
                 DDL(_statement).execute_if(dialect="sqlite"))
for _statement in SQLITE_PHONE_SEARCH_DROP:
    event.listen(PatientPhone.__table__, "before_drop",  # type: ignore[attr-defined]
                 DDL(_statement).execute_if(dialect="sqlite"))


class PatientEmail(SQLModel, table=True):
    __tablename__ = "core_patient_email"
    __table_args__ = (Index("ix_core_patient_email", "clinic_id", "email"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    email: str = Field(max_length=254)
    position: int = 0


class PatientIdentifier(SQLModel, table=True):
    """A national identifier: AES-GCM ciphertext, a keyed hash for exact search, and a masked form."""

    __tablename__ = "core_patient_identifier"
    __table_args__ = (
        UniqueConstraint("patient_id", "type_code", name="uq_core_patient_identifier_type"),
        Index("ix_core_patient_identifier_lookup", "clinic_id", "type_code", "blind_index"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    type_code: str = Field(max_length=64)
    ciphertext: str = Field(max_length=400)
    blind_index: str = Field(max_length=16)
    masked: str = Field(max_length=64)


class PatientGuardian(SQLModel, table=True):
    __tablename__ = "core_patient_guardian"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    name: str = Field(max_length=200)
    relation: str = Field(default="", max_length=50)
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=254)


class PatientAlert(SQLModel, table=True):
    __tablename__ = "core_patient_alert"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    type: str = Field(max_length=16)
    text: str = Field(max_length=1000)
    severity: str = Field(default=Severity.medium, max_length=8)


class PatientConsent(SQLModel, table=True):
    __tablename__ = "core_patient_consent"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    type: str = Field(max_length=64)
    version: str = Field(default="", max_length=32)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PatientSearchKey(SQLModel, table=True):
    """Lower-cased name forms; a patient is found by a prefix of any of them."""

    __tablename__ = "core_patient_search_key"
    __table_args__ = (Index("ix_core_patient_search_key", "clinic_id", "key", "patient_id"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    key: str = Field(sa_type=SearchText)
    kind: str = Field(max_length=16, description="family, given, compact, latin or plugin")


class ChartSequence(SQLModel, table=True):
    """Chart number allocation per clinic. The row is locked while a patient is created, so numbers
    are gap-free: a rolled-back registration gives its number back."""

    __tablename__ = "core_chart_sequence"

    clinic_id: int = Field(foreign_key="core_clinic.id", primary_key=True)
    format: str = Field(default="{seq:06d}", max_length=64)
    period: str = Field(default="", max_length=8, description="The year the counter belongs to, if the format has one")
    last_value: int = 0


class PatientMerge(SQLModel, table=True):
    """One merge: which rows moved from the merged patient to the survivor, so it can be undone."""

    __tablename__ = "core_patient_merge"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    survivor_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    merged_id: uuid.UUID = Field(foreign_key="core_patient.id", index=True)
    moved: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    merged_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    merged_by: int | None = None
    unmerged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unmerged_by: int | None = None
