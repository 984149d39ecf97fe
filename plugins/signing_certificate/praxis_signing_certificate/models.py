"""The plugin's own table: each doctor's certificate and private key, the key encrypted (see ``keystore``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


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


class SigningKey(SQLModel, table=True):
    """One uploaded certificate of one doctor in one clinic; the newest active row is the one used."""

    __tablename__ = "signing_certificate_key"
    __table_args__ = (Index("ix_signing_certificate_key_signer", "clinic_id", "user_id", "active"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    user_id: int = Field(description="The Praxis user the certificate belongs to")
    certificate: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="DER")
    chain: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False),
                        description="Intermediate certificates from the PKCS#12, base64 DER")
    certificate_sha256: str = Field(max_length=64)
    subject: str = Field(max_length=500)
    serial: str = Field(max_length=100, description="Hexadecimal serial number")
    not_before: datetime = utc()
    not_after: datetime = utc()
    key_salt: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="HKDF salt")
    key_nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="AES-GCM nonce")
    encrypted_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False),
                                 description="AES-256-GCM of the PKCS#8 DER private key")
    active: bool = True
    uploaded_at: datetime = utc()
    replaced_at: datetime | None = utc(nullable=True)
