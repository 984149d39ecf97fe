"""A fixture plugin that owns a table: ``notes_plugin_note``, pointing at ``core_clinic``.

Its base revision was written with ``praxis db revision --plugin notes_plugin -m "notes"``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Field, SQLModel

from core.clock import now
from plugin_sdk import Category, PluginManifest, hookimpl

manifest = PluginManifest(
    name="notes_plugin", version="1.0.0", title="Notes", description="Free-text notes per clinic.",
    category=Category.other, api=">=1.0,<2",
)


class Note(SQLModel, table=True):
    __tablename__ = "notes_plugin_note"

    id: int | None = Field(default=None, primary_key=True)
    # ON DELETE CASCADE makes SQLite's batch copy of core_clinic dangerous: with foreign keys on,
    # dropping the old core_clinic deletes every note.
    clinic_id: int = Field(foreign_key="core_clinic.id", ondelete="CASCADE", index=True)
    text: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=now)


@hookimpl
def praxis_migrations_dir() -> Path:
    return Path(__file__).parent / "versions"
