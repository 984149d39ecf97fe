"""What the core hands a plugin: the clinic it acts for, its settings, and a few services.

The core implements these protocols; plugins only use them, so their code never imports the core.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel
from sqlmodel import Session


@dataclass(frozen=True)
class ClinicInfo:
    """The tenant a hook call is made for."""

    id: int
    name: str
    country: str
    timezone: str
    locale: str


@dataclass(frozen=True)
class PatientView:
    """A patient as a plugin sees it. ``identifiers`` are in clear ({type code: value}); reading them is
    recorded in the audit journal under the plugin's name."""

    id: str
    chart_number: str
    family_name: str
    given_name: str
    family_name_latin: str | None
    given_name_latin: str | None
    birth_date: Any
    sex: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    preferred_language: str | None
    identifiers: dict[str, str]
    status: str


@dataclass(frozen=True)
class RecordView:
    """One version of a clinical record; ``signed`` is true only with a stored, verified signature."""

    id: str
    patient_id: str
    author_id: int
    appointment_id: int | None
    kind: str
    title: str
    text: str
    content: dict[str, Any]
    status: str
    version: int
    signed: bool
    signed_at: datetime | None


@dataclass(frozen=True)
class MessageView:
    """A message to a patient as a placeholder resolver sees it (read-only). ``kind`` is the rule's kind
    (``days_before``, ``event``, ...) or ``manual``; ``event`` and ``data`` are set for messages of event
    rules; ``appointment_start`` is aware UTC (``None`` without an appointment). ``sample`` is true when an
    admin previews a template with sample data, where no patient stands behind the message."""

    clinic_id: int
    language: str
    channel: str
    kind: str
    recipient_kind: str
    recipient_name: str
    patient_id: str | None = None
    appointment_id: int | None = None
    appointment_start: datetime | None = None
    doctor_name: str | None = None
    event: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    sample: bool = False


@dataclass(frozen=True)
class OutboxMessage:
    """One unit of outgoing work handed to a plugin's outbox handler.

    ``idempotency_key`` is stable across retries: pass it to the vendor (Idempotency-Key header, HL7
    MSH-10, FHIR identifier) so a retried delivery is not acted on twice.
    """

    id: UUID
    topic: str
    clinic_id: int | None
    payload: dict[str, Any]
    attempt: int
    idempotency_key: str
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


class PluginContext(Protocol):
    """Services available to a plugin while the core calls it for one clinic."""

    plugin: str
    clinic: ClinicInfo
    log: logging.Logger

    @property
    def settings(self) -> BaseModel | None:
        """The plugin's validated settings for this clinic, secrets decrypted, or None if it has none."""
        ...

    def now(self) -> datetime:
        """The current time in UTC (controllable in tests)."""
        ...

    def session(self) -> AbstractContextManager[Session]:
        """A database session whose block is one transaction, committed on success."""
        ...

    def enqueue(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        available_at: datetime | None = None,
        session: Session | None = None,
    ) -> UUID:
        """Queue outgoing work for this plugin's handler of ``topic``.

        Pass ``session`` to write it in the same transaction as your own change. A second enqueue with
        the same ``dedupe_key`` is ignored and returns the first item's id.
        """
        ...

    def emit_event(
        self,
        name: str,
        *,
        patient_id: str | UUID | None = None,
        appointment_id: int | None = None,
        data: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> UUID:
        """Report one of the events the plugin declares (``praxis_event_types``) for a patient or an
        appointment of this clinic. The messaging rules listening to it send their messages, and plugins get it
        through ``praxis_on_event``. Pass ``session`` to write it in the same transaction as your own change.
        ``data`` (JSON) reaches placeholder resolvers as ``message.data``. Returns the event's id; raises
        ``ValueError`` for an undeclared name or a patient or appointment that is not this clinic's."""
        ...

    def audit(self, action: str, *, target: str | None = None, data: dict[str, Any] | None = None,
              session: Session | None = None) -> None:
        """Append an entry to the tamper-evident audit journal."""
        ...

    def patient(self, patient_id: str) -> PatientView | None:
        """Read a patient of this clinic (None if unknown or of another clinic). Only plugins whose manifest
        says ``handles_patient_data`` may; each read is audited."""
        ...

    def appointment(self, appointment_id: int) -> dict[str, Any] | None:
        """Read an appointment of this clinic as the REST API shows it (None if unknown)."""
        ...

    def staff_identifiers(self, user_id: int) -> dict[str, str]:
        """A member of this clinic's staff's professional identifiers ({type code: value}, e.g. a Hungarian
        stamp number under ``hu.stamp``); empty for someone who does not work in this clinic."""
        ...

    def records(self, *, appointment_id: int | None = None, patient_id: str | None = None) -> list[RecordView]:
        """Current (not superseded) clinical records of a visit or a patient of this clinic, oldest first.
        Needs ``handles_patient_data``; each call is audited."""
        ...
