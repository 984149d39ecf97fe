"""Messages to patients: reminder rules, templates, the message log, opt-outs, replies and per-clinic settings.

A message is data before it is a delivery: a ``core_message`` row with the time it is planned for, written
in the same transaction as the change that caused it (an appointment booked, moved or cancelled), plus an
outbox item that delivers it when it is due. ``dedupe_key`` is unique per rule, appointment (or other
occurrence: a birthday's year, a recall's last visit) and recipient, so a rule that runs twice or a worker
that restarts never creates a second message.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from core.models.schedule import UTCDateTime, utc_column, utc_now_column


class MessageStatus(StrEnum):
    queued = "queued"  # planned; waits for its time, a provider or a retry
    sending = "sending"  # handed to a vendor whose answer has not been recorded (yet)
    sent = "sent"  # the vendor accepted it
    delivered = "delivered"  # the vendor reported delivery to the handset or mailbox
    failed = "failed"  # will not be sent (vendor refused, invalid address, expired, given up)
    unknown = "unknown"  # the vendor may or may not have sent it and cannot tell: a person decides
    cancelled = "cancelled"  # no longer wanted (appointment cancelled or moved away, patient opted out)


OPEN_STATUSES = (MessageStatus.queued, MessageStatus.sending)


class RuleKind(StrEnum):
    days_before = "days_before"  # N days before the appointment, at HH:MM clinic time
    minutes_before = "minutes_before"  # N minutes before the appointment
    on_booking = "on_booking"  # confirmation when the appointment is booked
    status_changed = "status_changed"  # N minutes after the appointment's status changed to S
    post_treatment = "post_treatment"  # instructions when an appointment of given types is done
    birthday = "birthday"  # on the birthday or N days before, at HH:MM
    after_services = "after_services"  # N days after the patient received given services, at HH:MM
    recall = "recall"  # N months after the last visit of given types, at HH:MM
    event = "event"  # a domain event (lab.result_ready or a plugin's own), N minutes later


APPOINTMENT_KINDS = frozenset({RuleKind.days_before, RuleKind.minutes_before, RuleKind.on_booking,
                               RuleKind.status_changed, RuleKind.post_treatment})
DAILY_KINDS = frozenset({RuleKind.birthday, RuleKind.after_services, RuleKind.recall})


class MessageRule(SQLModel, table=True):
    __tablename__ = "core_message_rule"
    __table_args__ = (UniqueConstraint("clinic_id", "name", name="ux_core_message_rule_name"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    filters: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    channel: str = Field(default="patient", max_length=16,
                         description="'patient' (the patient's preferred channel, falling back), 'sms' or 'email'")
    template_code: str = Field(max_length=64)
    set_communication_status: str | None = Field(default=None, max_length=40)
    enabled: bool = True
    version: int = 1
    created_at: datetime = utc_now_column()
    updated_at: datetime = utc_now_column()


class MessageTemplate(SQLModel, table=True):
    """One language (and optionally one channel) of a template; rules name templates by ``code``."""

    __tablename__ = "core_message_template"
    __table_args__ = (UniqueConstraint("clinic_id", "code", "language", "channel", name="ux_core_message_template"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    code: str = Field(max_length=64)
    language: str = Field(max_length=16)
    channel: str = Field(default="any", max_length=8, description="'sms', 'email' or 'any'")
    subject: str = Field(default="", max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    version: int = 1
    updated_at: datetime = utc_now_column()


class MessageBatch(SQLModel, table=True):
    """A manual sending to one patient or a filtered list; its messages point back to it."""

    __tablename__ = "core_message_batch"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    description: str = Field(default="", max_length=500)
    filters: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    total: int = 0
    skipped: int = 0
    created_at: datetime = utc_now_column()
    created_by: int | None = None


class Message(SQLModel, table=True):
    __tablename__ = "core_message"
    __table_args__ = (
        Index("ix_core_message_clinic_planned", "clinic_id", "planned_for"),
        Index("ix_core_message_clinic_status", "clinic_id", "status", "planned_for"),
        Index("ix_core_message_vendor", "provider_plugin", "vendor_message_id"),
        Index("ix_core_message_address", "clinic_id", "address", "sent_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="core_patient.id", index=True)
    appointment_id: int | None = Field(default=None, foreign_key="core_appointment.id", index=True)
    rule_id: int | None = Field(default=None, foreign_key="core_message_rule.id", index=True)
    batch_id: uuid.UUID | None = Field(default=None, foreign_key="core_message_batch.id", index=True)
    kind: str = Field(max_length=32, description="The rule's kind, or 'manual'")
    recipient_kind: str = Field(default="patient", max_length=16, description="'patient' or 'guardian'")
    guardian_id: uuid.UUID | None = None
    recipient_name: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=254, description="E.164 phone number or e-mail address")
    channel: str = Field(max_length=8)
    language: str = Field(default="", max_length=16)
    subject: str = Field(default="", max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    length: int = 0
    segments: int = 0
    encoding: str = Field(default="", max_length=8, description="gsm7 or ucs2 for SMS; empty for e-mail")
    status: str = Field(default=MessageStatus.queued, max_length=16)
    error_code: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=1000, description="Readable reason of the last problem")
    provider_plugin: str | None = Field(default=None, max_length=64)
    vendor_message_id: str | None = Field(default=None, max_length=100)
    idempotency_key: str = Field(max_length=64, description="Handed to the vendor; the message id's hex")
    dedupe_key: str = Field(max_length=200, unique=True)
    set_communication_status: str | None = Field(default=None, max_length=40)
    attempts: int = 0
    outbox_item_id: uuid.UUID | None = None
    planned_for: datetime = utc_column()
    expires_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_now_column()
    updated_at: datetime = utc_now_column()
    sent_at: datetime | None = utc_column(nullable=True)
    delivered_at: datetime | None = utc_column(nullable=True)
    finished_at: datetime | None = utc_column(nullable=True)
    polled_at: datetime | None = utc_column(nullable=True)
    resolved_by: int | None = None
    resolved_at: datetime | None = utc_column(nullable=True)


class OptOut(SQLModel, table=True):
    """The patient does not want automatic or manual messages on this channel."""

    __tablename__ = "core_message_opt_out"
    __table_args__ = (UniqueConstraint("patient_id", "channel", name="ux_core_message_opt_out"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id")
    channel: str = Field(max_length=8)
    note: str = Field(default="", max_length=500)
    created_at: datetime = utc_now_column()
    created_by: int | None = None


class InboundReply(SQLModel, table=True):
    """A message a patient sent back, and what the core did with it."""

    __tablename__ = "core_message_reply"
    __table_args__ = (
        UniqueConstraint("clinic_id", "plugin", "vendor_message_id", name="ux_core_message_reply_vendor"),
        Index("ix_core_message_reply_clinic", "clinic_id", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    plugin: str = Field(max_length=64)
    sender: str = Field(max_length=254)
    body: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    vendor_message_id: str | None = Field(default=None, max_length=100)
    message_id: uuid.UUID | None = Field(default=None, foreign_key="core_message.id")
    appointment_id: int | None = Field(default=None, foreign_key="core_appointment.id", index=True)
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="core_patient.id")
    action: str = Field(default="none", max_length=16, description="confirmed, cancelled, unmatched, ignored, failed")
    detail: str = Field(default="", max_length=1000)
    created_at: datetime = utc_now_column()


class QuietHours(SQLModel, table=True):
    """No message leaves between ``start`` and ``end`` (clinic time; may span midnight)."""

    __tablename__ = "core_message_quiet_hours"

    clinic_id: int = Field(foreign_key="core_clinic.id", primary_key=True)
    enabled: bool = True
    start: time = Field(default=time(21, 0))
    end: time = Field(default=time(9, 0))
    updated_at: datetime = utc_now_column()


class MessagingSettings(SQLModel, table=True):
    """Per-clinic behaviour of replies and the ``{link}`` placeholder."""

    __tablename__ = "core_messaging_settings"

    clinic_id: int = Field(foreign_key="core_clinic.id", primary_key=True)
    replies_enabled: bool = True
    confirm_replies: list = Field(default_factory=lambda: ["1"], sa_column=Column(JSON, nullable=False))
    cancel_replies: list = Field(default_factory=lambda: ["2"], sa_column=Column(JSON, nullable=False))
    cancel_reason: str = Field(default="patient_request", max_length=40)
    confirmed_communication_status: str | None = Field(default="confirmed", max_length=40)
    reply_window_hours: int = 72
    link: str = Field(default="", max_length=500, description="What {link} stands for unless a rule sets its own")
    updated_at: datetime = utc_now_column()


__all__ = ["APPOINTMENT_KINDS", "DAILY_KINDS", "InboundReply", "Message", "MessageBatch", "MessageRule",
           "MessageStatus", "MessageTemplate", "MessagingSettings", "OPEN_STATUSES", "OptOut", "QuietHours",
           "RuleKind"]

# Plan appointment messages in the transaction of every appointment change (see core.messaging.listener).
import core.messaging.listener  # noqa: E402,F401
