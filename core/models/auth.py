"""Staff, roles and permissions, login sessions, API tokens, login history and the patient access log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, TypeDecorator, UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on both databases.

    SQLite keeps only the wall-clock digits of an aware datetime (the offset is dropped, not applied),
    so values are converted to UTC before binding and read back as aware UTC.
    """

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


class User(SQLModel, table=True):
    """A member of staff. One account may work in several clinics (see ``Membership``)."""

    __tablename__ = "core_user"

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=100, unique=True, description="Case-folded; unique in the install")
    name: str = Field(max_length=200)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=32, description="E.164 when it could be parsed")
    speciality: str = Field(default="", max_length=200)
    password_hash: str = Field(default="", max_length=500, description="argon2id; empty means no password login")
    active: bool = True
    must_change_password: bool = False
    created_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))
    password_changed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class UserIdentifier(SQLModel, table=True):
    """A professional identifier of a member of staff (e.g. a Hungarian doctor's stamp number), typed by an
    ``IdentifierType`` with ``applies_to="staff"`` that a plugin contributes. Stored normalised by its type.
    These numbers are printed on prescriptions and stamps, so unlike patients' national IDs they are
    not encrypted."""

    __tablename__ = "core_user_identifier"
    __table_args__ = (UniqueConstraint("user_id", "type_code", name="ux_core_user_identifier_type"),
                      Index("ix_core_user_identifier_value", "type_code", "value"))

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    type_code: str = Field(max_length=64, description="e.g. hu.stamp")
    value: str = Field(max_length=200, description="as normalised by the type")
    updated_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))


class Role(SQLModel, table=True):
    """A named set of permissions. Built-in roles' grants live in code; custom roles' in RolePermission."""

    __tablename__ = "core_role"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=200, description="Translatable msgid for built-in roles")
    is_builtin: bool = False
    created_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))


class RolePermission(SQLModel, table=True):
    __tablename__ = "core_role_permission"
    __table_args__ = (UniqueConstraint("role_id", "permission"),)

    id: int | None = Field(default=None, primary_key=True)
    role_id: int = Field(foreign_key="core_role.id", index=True)
    permission: str = Field(max_length=100)


class Membership(SQLModel, table=True):
    """A user works in a clinic with one role there."""

    __tablename__ = "core_membership"
    __table_args__ = (UniqueConstraint("user_id", "clinic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    role_id: int = Field(foreign_key="core_role.id", index=True)
    created_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))


class UserPermissionOverride(SQLModel, table=True):
    """Grant (``granted=True``) or withhold (``False``) one permission from one person in one clinic."""

    __tablename__ = "core_user_permission"
    __table_args__ = (UniqueConstraint("user_id", "clinic_id", "permission"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    permission: str = Field(max_length=100)
    granted: bool


class PasswordHistory(SQLModel, table=True):
    """Every password a user has had (hashed), so the policy can refuse reusing recent ones."""

    __tablename__ = "core_password_history"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    password_hash: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))


class LoginSession(SQLModel, table=True):
    """A browser session. The cookie holds a random id; only its SHA-256 is stored."""

    __tablename__ = "core_login_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    created_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


class ApiToken(SQLModel, table=True):
    """An API token ``prx_<public_id>_<secret>``; the secret is stored as SHA-256 (it has 256 bits of entropy)."""

    __tablename__ = "core_api_token"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=32, unique=True)
    secret_hash: str = Field(max_length=64)
    user_id: int = Field(foreign_key="core_user.id", index=True)
    name: str = Field(max_length=100)
    scopes: list[str] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True),
        description="Permission codes the token is limited to; null means all of the user's permissions",
    )
    created_at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class LoginAttempt(SQLModel, table=True):
    """Every login attempt: the login history, and the counters behind the lockout."""

    __tablename__ = "core_login_attempt"
    __table_args__ = (
        Index("ix_core_login_attempt_login_at", "login", "at"),
        Index("ix_core_login_attempt_ip_at", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=100)
    user_id: int | None = Field(default=None, foreign_key="core_user.id", index=True)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))
    success: bool
    reason: str = Field(max_length=32, description="ok, bad_password, unknown_user, inactive, locked")


class AccessLog(SQLModel, table=True):
    """Who opened which patient, when (read access; changes are in the audit journal)."""

    __tablename__ = "core_access_log"
    __table_args__ = (Index("ix_core_access_log_patient", "clinic_id", "patient_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="core_user.id", index=True)
    user_name: str = Field(default="", max_length=200)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: str = Field(max_length=64)
    action: str = Field(default="view", max_length=32)
    at: datetime = Field(default_factory=now, sa_column=Column(UTCDateTime(), nullable=False))
