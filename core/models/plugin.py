"""Per-clinic plugin state shared by every process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from core.clock import now


class PluginState(SQLModel, table=True):
    """Whether a plugin is enabled in a clinic, and its settings there (secrets encrypted)."""

    __tablename__ = "core_plugin_state"
    __table_args__ = (UniqueConstraint("clinic_id", "plugin"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    plugin: str = Field(max_length=64)
    enabled: bool = False
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets: dict = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="field name -> AES-GCM ciphertext (base64); never leaves the server",
    )
    updated_at: datetime = Field(default_factory=now)
    updated_by: int | None = None


class PluginHealth(SQLModel, table=True):
    """Failure counts per plugin per clinic; an open circuit means the plugin is skipped there."""

    __tablename__ = "core_plugin_health"
    __table_args__ = (UniqueConstraint("clinic_id", "plugin"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    plugin: str = Field(max_length=64)
    consecutive_failures: int = 0
    total_failures: int = 0
    circuit_open: bool = False
    last_error: str | None = None
    last_failure_at: datetime | None = None
    opened_at: datetime | None = None


class RuntimeGeneration(SQLModel, table=True):
    """A single counter bumped with every plugin state change, so processes notice cheaply."""

    __tablename__ = "core_runtime_generation"

    id: int = Field(default=1, primary_key=True)
    generation: int = 0
