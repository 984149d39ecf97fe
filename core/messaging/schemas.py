"""Request shapes of the messaging API (field-level checks; the service checks what needs the database)."""

from __future__ import annotations

import re
import uuid
from datetime import date, time
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from core.models.messaging import RuleKind

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
EVENT = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RuleFilters(_In):
    doctor_ids: list[int] = Field(default_factory=list, max_length=200, description="Only these doctors' appointments")
    type_codes: list[str] = Field(default_factory=list, max_length=100, description="Only these appointment types")
    day_type: Literal["working", "holiday"] | None = Field(
        None, description="Only appointments on working days, or on holidays/days off (clinic calendar)")
    created_today: bool = Field(False, description="Only appointments created on the day the message goes out")


class RuleIn(_In):
    name: str = Field(min_length=1, max_length=200)
    kind: RuleKind
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "days_before: {days, at: 'HH:MM'}; minutes_before: {minutes}; on_booking: {delay_minutes}; "
        "status_changed: {status, delay_minutes}; post_treatment: {type_codes, delay_minutes}; "
        "birthday: {days_before, at}; after_services: {days, services, at}; recall: {months, type_codes, at}; "
        "event: {event, delay_minutes}. Any kind: {link}."))
    filters: RuleFilters = Field(default_factory=RuleFilters)
    channel: Literal["patient", "sms", "email"] = "patient"
    template_code: str = Field(min_length=1, max_length=64)
    set_communication_status: str | None = Field(None, max_length=40)
    enabled: bool = True


class RulePatch(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    params: dict[str, Any] | None = None
    filters: RuleFilters | None = None
    channel: Literal["patient", "sms", "email"] | None = None
    template_code: str | None = Field(None, min_length=1, max_length=64)
    set_communication_status: str | None = Field(None, max_length=40)
    enabled: bool | None = None
    version: int | None = Field(None, description="The version you read; a stale one is refused (409)")


class TemplateIn(_In):
    code: str = Field(min_length=1, max_length=64)
    language: str = Field(min_length=2, max_length=16, description="BCP 47 tag, e.g. 'hu', 'ko', 'ru', 'zh-Hans'")
    channel: Literal["any", "sms", "email"] = "any"
    subject: str = Field("", max_length=200, description="E-mail subject (placeholders allowed)")
    body: str = Field(min_length=1, max_length=4000)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("letters, digits, '_', '.' and '-' only")
        return value


class TemplatePatch(_In):
    subject: str | None = Field(None, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=4000)
    version: int | None = None


class PreviewIn(_In):
    body: str = Field(min_length=1, max_length=4000)
    subject: str = Field("", max_length=200)
    language: str | None = Field(None, max_length=16)
    patient_id: uuid.UUID | None = Field(None, description="Render with this patient's data instead of samples")
    appointment_id: int | None = Field(None, description="Render with this appointment's data")


class QuietHoursIn(_In):
    enabled: bool = True
    start: time
    end: time


class SettingsIn(_In):
    replies_enabled: bool = True
    confirm_replies: list[str] = Field(default_factory=lambda: ["1"], max_length=10)
    cancel_replies: list[str] = Field(default_factory=lambda: ["2"], max_length=10)
    cancel_reason: str = Field("patient_request", min_length=1, max_length=40)
    confirmed_communication_status: str | None = Field("confirmed", max_length=40)
    reply_window_hours: int = Field(72, ge=1, le=24 * 30)
    link: str = Field("", max_length=500)


class OptOutsIn(_In):
    channels: list[Literal["sms", "email"]] = Field(description="The channels the patient does not want; [] for none")
    note: str = Field("", max_length=500)


class PatientFilter(_In):
    tag: str | None = Field(None, max_length=100, description="Patients carrying this tag")
    appointment_from: date | None = Field(None, description="Patients with an appointment on or after this day")
    appointment_to: date | None = Field(None, description="... and on or before this day")
    doctor_id: int | None = Field(None, description="... with this doctor")
    born_month: int | None = Field(None, ge=1, le=12)


class SendIn(_In):
    patient_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20000)
    filter: PatientFilter | None = None
    channel: Literal["patient", "sms", "email"] = "patient"
    template_code: str | None = Field(None, max_length=64)
    body: str | None = Field(None, min_length=1, max_length=4000)
    subject: str = Field("", max_length=200)
    send_at: AwareDatetime | None = Field(None, description="Later instead of now (quiet hours still apply)")
    description: str = Field("", max_length=500)


class ResolveIn(_In):
    outcome: Literal["sent", "failed"] = Field(
        description="'sent': the vendor did send it (checked with the vendor); 'failed': give up, it will not go out")
    note: str = Field("", max_length=1000)


def check_rule_params(kind: str, params: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, message, code) for parameters that do not fit the rule kind."""
    problems: list[tuple[str, str, str]] = []

    def integer(name: str, low: int, high: int, default: int | None = None, required: bool = False) -> None:
        value = params.get(name, default)
        if value is None:
            if required:
                problems.append((f"params.{name}", "required", "required"))
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append((f"params.{name}", f"a whole number from {low} to {high}", "invalid"))

    def hhmm(name: str = "at", required: bool = True) -> None:
        value = params.get(name)
        if value is None:
            if required:
                problems.append((f"params.{name}", "a time of day 'HH:MM' is required", "required"))
            return
        if not isinstance(value, str) or not HHMM.match(value):
            problems.append((f"params.{name}", "a time of day 'HH:MM', e.g. '12:30'", "invalid"))

    def codes(name: str, required: bool = False) -> None:
        value = params.get(name)
        if value is None or value == []:
            if required:
                problems.append((f"params.{name}", "give at least one code", "required"))
            return
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problems.append((f"params.{name}", "a list of codes", "invalid"))

    allowed = {
        RuleKind.days_before: {"days", "at"}, RuleKind.minutes_before: {"minutes"},
        RuleKind.on_booking: {"delay_minutes"}, RuleKind.status_changed: {"status", "delay_minutes"},
        RuleKind.post_treatment: {"type_codes", "delay_minutes"}, RuleKind.birthday: {"days_before", "at"},
        RuleKind.after_services: {"days", "services", "at"}, RuleKind.recall: {"months", "type_codes", "at"},
        RuleKind.event: {"event", "delay_minutes"},
    }[RuleKind(kind)] | {"link"}
    for name in sorted(set(params) - allowed):
        problems.append((f"params.{name}", f"not a parameter of a {kind} rule; use: {', '.join(sorted(allowed))}",
                         "unknown_parameter"))
    if kind == RuleKind.days_before:
        integer("days", 0, 365, required=True)
        hhmm()
    elif kind == RuleKind.minutes_before:
        integer("minutes", 1, 7 * 24 * 60, required=True)
    elif kind in (RuleKind.on_booking, RuleKind.status_changed, RuleKind.post_treatment, RuleKind.event):
        integer("delay_minutes", 0, 30 * 24 * 60)
        if kind == RuleKind.status_changed and not isinstance(params.get("status"), str):
            problems.append(("params.status", "the status code that triggers the message", "required"))
        if kind == RuleKind.post_treatment:
            codes("type_codes")
        if kind == RuleKind.event:
            event = params.get("event")
            if not isinstance(event, str) or not EVENT.match(event):
                problems.append(("params.event", "an event name such as 'lab.result_ready' or '<plugin>.<event>'",
                                 "invalid"))
    elif kind == RuleKind.birthday:
        integer("days_before", 0, 60, default=0)
        hhmm()
    elif kind == RuleKind.after_services:
        integer("days", 0, 3650, required=True)
        codes("services", required=True)
        hhmm()
    elif kind == RuleKind.recall:
        integer("months", 1, 120, required=True)
        codes("type_codes")
        hhmm()
    link = params.get("link")
    if link is not None and (not isinstance(link, str) or len(link) > 500):
        problems.append(("params.link", "a text of at most 500 characters", "invalid"))
    return problems
