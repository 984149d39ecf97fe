"""Typed domain events the core emits after a change is committed.

Each event is written to the outbox in the same transaction as the change, then delivered to every
plugin enabled for the clinic through the ``praxis_on_event`` hook, at least once. Use ``event.id``
to make a handler idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class EventName(StrEnum):
    patient_created = "patient.created"
    patient_updated = "patient.updated"
    patient_deleted = "patient.deleted"
    patient_restored = "patient.restored"
    patient_merged = "patient.merged"
    appointment_created = "appointment.created"
    appointment_changed = "appointment.changed"
    appointment_moved = "appointment.moved"
    appointment_cancelled = "appointment.cancelled"
    appointment_restored = "appointment.restored"
    appointment_status_changed = "appointment.status_changed"
    plugin_enabled = "plugin.enabled"
    plugin_disabled = "plugin.disabled"
    plugin_settings_changed = "plugin.settings_changed"


class DomainEvent(BaseModel):
    """Something that happened in one clinic. ``data`` holds the subject's fields after the change
    and, for changes, ``before`` with the previous values of the fields that changed."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str = Field(description="An EventName value, or '<plugin>.<event>' for events plugins declare.")
    clinic_id: int
    occurred_at: datetime
    actor_id: int | None = None
    subject_type: str
    subject_id: str
    data: dict[str, Any] = Field(default_factory=dict)


EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")


@dataclass(frozen=True)
class EventType:
    """An event a plugin declares (``praxis_event_types``) and reports with ``ctx.emit_event``.

    ``name`` is ``<plugin>.<event>``; ``title`` is a msgid of the plugin's catalog, shown in the rules editor.
    ``concerns`` says what the event is about: ``"patient"`` (``emit_event`` needs ``patient_id``) or
    ``"appointment"`` (it needs ``appointment_id``; the patient is the appointment's, and templates of rules
    listening to it may use the appointment's placeholders such as ``{date}`` and ``{time}``).
    """

    name: str
    title: str
    concerns: str = "patient"
    description: str = ""

    def __post_init__(self) -> None:
        if not EVENT_NAME.match(self.name):
            raise ValueError(f"event {self.name!r}: write '<plugin>.<event>' in lower case, e.g. 'portal.form_signed'")
        if self.concerns not in ("patient", "appointment"):
            raise ValueError(f"event {self.name!r}: concerns must be 'patient' or 'appointment'")
