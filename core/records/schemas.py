"""Request and response bodies of the records API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

KIND_PATTERN = r"^[a-z][a-z0-9_.-]{0,39}$"
MAX_TEXT = 100_000


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    appointment_id: int | None = Field(None, ge=1, description="The visit this record documents, if any.")
    kind: str = Field("visit_note", pattern=KIND_PATTERN, description="e.g. visit_note, treatment, consent_note")
    title: str = Field("", max_length=200)
    content: dict[str, Any] = Field(default_factory=dict, description="Structured findings (JSON object).")
    text: str = Field("", max_length=MAX_TEXT, description="The free text of the note.")


class RecordUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appointment_id: int | None = Field(None, ge=1)
    kind: str | None = Field(None, pattern=KIND_PATTERN)
    title: str | None = Field(None, max_length=200)
    content: dict[str, Any] | None = None
    text: str | None = Field(None, max_length=MAX_TEXT)
    expected_revision: int | None = Field(None, ge=1, description="Refuse (409) if someone saved a newer revision.")


class AmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="Why the signed version is corrected.")
    title: str | None = Field(None, max_length=200)
    content: dict[str, Any] | None = None
    text: str | None = Field(None, max_length=MAX_TEXT)


class SignatureOut(BaseModel):
    id: int
    kind: str
    provider: str
    signer_id: int
    signer_name: str
    signed_at: datetime
    certificate_serial: str | None
    certificate_subject: str | None
    expires_at: datetime | None
    timestamped_at: datetime | None
    canonical_format: str
    document_sha256: str
    details: dict[str, Any]


class RecordOut(BaseModel):
    id: uuid.UUID
    chain_id: uuid.UUID
    version: int
    previous_version_id: uuid.UUID | None
    superseded_by_id: uuid.UUID | None
    clinic_id: int
    patient_id: uuid.UUID
    author_id: int
    author_name: str
    appointment_id: int | None
    kind: str
    title: str
    content: dict[str, Any]
    text: str
    amendment_reason: str | None
    status: str
    requires_countersign: bool
    locked: bool
    revision: int
    created_at: datetime
    updated_at: datetime
    finalised_at: datetime | None
    signed_at: datetime | None
    locked_at: datetime | None
    signatures: list[SignatureOut]


class RecordRow(BaseModel):
    """One line of the records list: the columns of the "waiting for signature" screen."""

    id: uuid.UUID
    version: int
    patient_id: uuid.UUID
    patient_name: str
    author_id: int
    author_name: str
    kind: str
    title: str
    status: str
    created_at: datetime
    waiting_for: str | None = Field(description="'sign' (the author's signature) or 'countersign', if waiting")
    signer_name: str | None
    signed_at: datetime | None
    expires_at: datetime | None = Field(description="When the signing certificate expires")
    locked: bool
    superseded: bool


class RecordPage(BaseModel):
    items: list[RecordRow]
    total: int


class SigningBegin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)
    provider: str | None = Field(None, max_length=64, description="Signing plugin; default: the first you can use.")
    method: str | None = Field(None, max_length=16, description="Intent check: sms_code or qr_face where offered.")


class ChallengeOut(BaseModel):
    session_id: uuid.UUID
    provider: str
    kind: str = Field(description="none, sms_code or qr_face")
    status: str
    signing: str = Field(description="sign or countersign")
    document_count: int
    record_ids: list[uuid.UUID]
    expires_at: datetime | None
    attempts_left: int | None
    qr_url: str | None
    sent_to: str | None
    message: str


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response: str | None = Field(None, max_length=64, description="The SMS code; empty for none and qr_face.")


class SignedRecord(BaseModel):
    record_id: uuid.UUID
    status: str
    signature: SignatureOut


class SigningOut(BaseModel):
    session_id: uuid.UUID
    status: str
    signed: list[SignedRecord]


class CheckOut(BaseModel):
    name: str
    passed: bool
    message: str


class SignatureReport(BaseModel):
    signature_id: int
    kind: str
    provider: str
    signer_name: str
    signed_at: datetime
    valid: bool
    checks: list[CheckOut]


class VerificationOut(BaseModel):
    record_id: uuid.UUID
    version: int
    status: str
    valid: bool
    checked_at: datetime
    summary: str
    checks: list[CheckOut]
    signatures: list[SignatureReport]


class EnrollmentStepOut(BaseModel):
    name: str
    done: bool
    message: str


class EnrollmentOut(BaseModel):
    ready: bool
    steps: list[EnrollmentStepOut]
    details: dict[str, Any]


class ProviderOut(BaseModel):
    plugin: str
    title: str
    intent_methods: list[str]
    enrollment: EnrollmentOut | None
    problem: str | None = None


class EnrollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict, description="The step's input, e.g. pkcs12 + password.")
