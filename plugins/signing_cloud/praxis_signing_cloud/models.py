"""The plugin's tables: each doctor's verified identity and seal at the vendor, and the signing sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, TypeDecorator
from sqlmodel import Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on both databases."""

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


class CloudSigner(SQLModel, table=True):
    """A doctor's account at the vendor after the real-name check. Only masked identifiers are kept here: the
    vendor holds the verified identity."""

    __tablename__ = "signing_cloud_signer"
    __table_args__ = (Index("ix_signing_cloud_signer_user", "clinic_id", "user_id", "active"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    user_id: int
    psn_id: str = Field(max_length=100, description="The vendor's person id")
    name: str = Field(max_length=200)
    id_type: str = Field(max_length=40)
    id_number_masked: str = Field(max_length=40)
    mobile_masked: str = Field(max_length=40)
    verified_at: datetime = utc()
    seal_id: str | None = Field(default=None, max_length=100)
    seal_sha256: str | None = Field(default=None, max_length=64)
    seal_uploaded_at: datetime | None = utc(nullable=True)
    active: bool = True


class CloudSession(SQLModel, table=True):
    """One intent check (the vendor's "willingness" flow) covering a batch of documents."""

    __tablename__ = "signing_cloud_session"

    id: str = Field(primary_key=True, max_length=32, description="The session id handed to the core")
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    user_id: int
    psn_id: str = Field(max_length=100)
    seal_id: str = Field(max_length=100)
    willingness_id: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    failed_attempts: int = 0
    document_count: int
    signed_count: int = 0
    expires_at: datetime = utc()
    created_at: datetime = utc()
    passed_at: datetime | None = utc(nullable=True)
