"""Request and response shapes of the patient service; the REST API uses them as they are."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from core.models.patient import AlertType, Channel, PatientStatus, PhoneKind, Severity, Sex


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PhoneIn(_In):
    id: uuid.UUID | None = Field(None, description="Id of an existing phone to keep or change; omit for a new one.")
    number: str = Field(min_length=1, max_length=40, description="As typed; national numbers use the clinic's "
                        "country, e.g. '06 30 123 4567' in Hungary or '010-1234-5678' in Korea.")
    kind: PhoneKind = Field(PhoneKind.mobile, description="mobile, home, work or other")


class EmailIn(_In):
    id: uuid.UUID | None = Field(None, description="Id of an existing address to keep; omit for a new one.")
    email: str = Field(min_length=3, max_length=254)


class GuardianIn(_In):
    id: uuid.UUID | None = Field(None, description="Id of an existing guardian to change; omit for a new one.")
    name: str = Field(min_length=1, max_length=200)
    relation: str = Field("", max_length=50, description="e.g. mother, father, legal guardian")
    phone: str | None = Field(None, max_length=40, description="Normalised to E.164 like the patient's phones.")
    email: str | None = Field(None, max_length=254)


class AlertIn(_In):
    id: uuid.UUID | None = Field(None, description="Id of an existing alert to change; omit for a new one.")
    type: AlertType = Field(description="allergy, disease, medication or other")
    text: str = Field(min_length=1, max_length=1000, description="Shown prominently on the card, e.g. 'Penicillin'.")
    severity: Severity = Severity.medium


class ConsentIn(_In):
    id: uuid.UUID | None = Field(None, description="Id of an existing consent to change; omit for a new one.")
    type: str = Field(min_length=1, max_length=64, description="e.g. privacy, treatment, marketing_sms")
    version: str = Field("", max_length=32, description="Version of the consent text that was signed.")
    signed_at: AwareDatetime
    revoked_at: AwareDatetime | None = None


class _PatientFields(_In):
    family_name_latin: str | None = Field(None, max_length=100, description="Family name in Latin letters.")
    given_name_latin: str | None = Field(None, max_length=100)
    birth_date: date | None = None
    sex: Sex = Sex.unknown
    address: str = Field("", max_length=500)
    preferred_channel: Channel = Field(Channel.sms, description="How reminders reach the patient: sms, email, none.")
    preferred_language: str | None = Field(None, max_length=16, description="BCP 47 tag, e.g. 'hu', 'ko', 'ru'.")
    vip: bool = False
    notes: str = Field("", max_length=10000)
    tags: list[str] = Field(default_factory=list, max_length=50, description="Free labels, e.g. 'orthodontics'.")


class PatientCreate(_PatientFields):
    chart_number: str | None = Field(None, max_length=40, description="Leave empty to take the clinic's next number.")
    family_name: str = Field(min_length=1, max_length=100, description="Family name in the local script.")
    given_name: str = Field("", max_length=100, description="Given name(s) in the local script.")
    phones: list[PhoneIn] = Field(default_factory=list, max_length=10)
    emails: list[EmailIn] = Field(default_factory=list, max_length=10)
    identifiers: dict[str, str] = Field(default_factory=dict, description="National identifiers by type code "
                                        "(types come from the country plugins enabled in the clinic), "
                                        "e.g. {'hu.taj': '037 687 210'}.")
    guardians: list[GuardianIn] = Field(default_factory=list, max_length=10)
    alerts: list[AlertIn] = Field(default_factory=list, max_length=50)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)
    confirm_duplicate: bool = Field(False, description="Register even though the duplicate check found candidates.")


class PatientUpdate(_In):
    """Only the fields present change. A list, when present, is the new list: items with an ``id`` keep that
    row, items without one are added, rows not listed are removed. ``identifiers`` changes only the codes
    given; ``null`` removes one."""

    version: int = Field(description="The version you read; a newer one on the server answers 409.")
    chart_number: str | None = Field(None, min_length=1, max_length=40)
    family_name: str | None = Field(None, min_length=1, max_length=100)
    given_name: str | None = Field(None, max_length=100)
    family_name_latin: str | None = Field(None, max_length=100)
    given_name_latin: str | None = Field(None, max_length=100)
    birth_date: date | None = None
    sex: Sex | None = None
    address: str | None = Field(None, max_length=500)
    preferred_channel: Channel | None = None
    preferred_language: str | None = Field(None, max_length=16)
    vip: bool | None = None
    notes: str | None = Field(None, max_length=10000)
    tags: list[str] | None = Field(None, max_length=50)
    phones: list[PhoneIn] | None = Field(None, max_length=10)
    emails: list[EmailIn] | None = Field(None, max_length=10)
    identifiers: dict[str, str | None] | None = None
    guardians: list[GuardianIn] | None = Field(None, max_length=10)
    alerts: list[AlertIn] | None = Field(None, max_length=50)
    consents: list[ConsentIn] | None = Field(None, max_length=50)


class TrashIn(_In):
    reason: str = Field(min_length=1, max_length=500, description="Why the card is deleted; required.")


class MergeIn(_In):
    survivor_id: uuid.UUID = Field(description="The card that stays.")
    merged_id: uuid.UUID = Field(description="The card folded into the survivor; it can be unmerged later.")


class UnmergeIn(_In):
    merged_id: uuid.UUID = Field(description="The card that was folded into another one.")


class ChartFormatIn(_In):
    format: str = Field(min_length=1, max_length=64, description="Python format with {seq} and optionally {year} "
                        "or {yy}, e.g. '{year}-{seq:05d}' or 'P{seq:06d}'. A format with a year restarts at 1 "
                        "each year.")


# --- responses -------------------------------------------------------------------------------------


class PhoneOut(BaseModel):
    id: uuid.UUID
    e164: str = Field(description="E.164, e.g. '+36301234567'")
    kind: str


class EmailOut(BaseModel):
    id: uuid.UUID
    email: str


class IdentifierOut(BaseModel):
    id: uuid.UUID
    type_code: str
    title: str = Field(description="The type's display name (msgid of the contributing plugin).")
    masked: str = Field(description="What staff see, e.g. '*** *** 210'.")
    value: str | None = Field(None, description="The full value; only with ?reveal=1 and patients.view_identifiers.")


class GuardianOut(BaseModel):
    id: uuid.UUID
    name: str
    relation: str
    phone: str | None
    email: str | None


class AlertOut(BaseModel):
    id: uuid.UUID
    type: str
    text: str
    severity: str


class ConsentOut(BaseModel):
    id: uuid.UUID
    type: str
    version: str
    signed_at: datetime
    revoked_at: datetime | None


class PatientOut(BaseModel):
    id: uuid.UUID
    clinic_id: int
    chart_number: str
    family_name: str
    given_name: str
    family_name_latin: str | None
    given_name_latin: str | None
    birth_date: date | None
    sex: str
    address: str
    preferred_channel: str
    preferred_language: str | None
    vip: bool
    notes: str
    tags: list[str]
    status: PatientStatus
    deleted_at: datetime | None
    deleted_by: int | None
    delete_reason: str | None
    merged_into: uuid.UUID | None
    created_at: datetime
    created_by: int | None
    updated_at: datetime
    updated_by: int | None
    version: int
    phones: list[PhoneOut]
    emails: list[EmailOut]
    identifiers: list[IdentifierOut]
    guardians: list[GuardianOut]
    alerts: list[AlertOut] = Field(description="Medical alerts, to be shown prominently.")
    consents: list[ConsentOut]


class PatientSummary(BaseModel):
    id: uuid.UUID
    chart_number: str
    family_name: str
    given_name: str
    family_name_latin: str | None
    given_name_latin: str | None
    birth_date: date | None
    sex: str
    vip: bool
    tags: list[str]
    status: PatientStatus
    phones: list[str] = Field(description="E.164 numbers")
    deleted_at: datetime | None = None
    delete_reason: str | None = None
    version: int


class PatientPage(BaseModel):
    items: list[PatientSummary]
    total: int = Field(description="Matches in all pages.")
    limit: int
    offset: int


class DuplicateCandidate(BaseModel):
    patient: PatientSummary
    reasons: list[str] = Field(description="'name_birth_date' and/or 'phone'")


class MergeOut(BaseModel):
    merge_id: uuid.UUID
    survivor: PatientOut
    moved: dict[str, int] = Field(description="How many rows of each kind moved to the survivor.")


class ChartFormatOut(BaseModel):
    format: str
    example: str = Field(description="The number the next registration would get.")


class HistoryEntry(BaseModel):
    seq: int
    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    data: dict[str, Any]
